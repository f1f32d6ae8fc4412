"""Continual evaluation for the joint protocol: every seen task's test data on the device, evaluated after every
training iteration in one batched forward (in fixed-size chunks of samples for the conv nets)."""
from __future__ import annotations

import torch

from plasticity.benchmarks.contexts import ContextBenchmark
from plasticity.models.kernels import FillShiftedInputs

# Below this fraction of non-black input pixels the evaluation's first layer skips black pixels (FillShiftedInputs):
# measured twice as fast as the dense product at MNIST's ~19%; its work grows with the fraction, the dense one's
# does not (break-even near 40%).
SPARSE_EVALUATION_DENSITY = 0.3


class ContinualEvaluator:
    """The test data of every task seen so far, held on the device, evaluated in one batched forward.

    `add_task(k)` appends task k's evaluation set; `evaluate(model)` returns per-task accuracy and mean
    cross-entropy, each (S, tasks so far), and the accuracy over all of them pooled (S,). On the CPU the model's
    first layer gets the inputs as FillShiftedInputs (black pixels skipped) while they are sparse enough.
    """

    def __init__(self, benchmark: ContextBenchmark, samples_per_task: int | None):
        self.benchmark, self.samples_per_task = benchmark, samples_per_task
        self.examples: list[torch.Tensor] = []
        self.inputs = self.targets = self.model_inputs = None
        self.sizes: list[int] = []

    def add_task(self, task: int) -> None:
        if task != len(self.examples):
            raise ValueError(f"tasks are added in order: expected task {len(self.examples)}, got {task}")
        examples = self.benchmark.test_examples(task, self.samples_per_task)
        self._append(task, examples)

    def _append(self, task: int, examples: torch.Tensor) -> None:
        bench = self.benchmark
        inputs = bench.inputs("test", examples, task)
        targets = bench.labels["test"][examples].to(bench.device)
        self.examples.append(examples)
        self.sizes.append(examples.shape[1])
        self.inputs = inputs if self.inputs is None else torch.cat([self.inputs, inputs], dim=1)
        self.targets = targets if self.targets is None else torch.cat([self.targets, targets], dim=1)
        self.model_inputs = self.inputs
        if bench.sparse_inputs and self.inputs.device.type == "cpu":
            black = bench.standardise(torch.zeros((), dtype=torch.uint8)).item()
            shifted = FillShiftedInputs(self.inputs, black)
            if shifted.density < SPARSE_EVALUATION_DENSITY:
                self.model_inputs = shifted

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        chunk = self.benchmark.evaluation_chunk
        if chunk is None:
            logits = model(self.model_inputs)
        else:       # a conv net's activations for every test sample of every seed at once would not fit
            logits = torch.cat([model(part) for part in self.model_inputs.split(chunk, dim=1)], dim=1)
        correct = (logits.argmax(-1) == self.targets).float()
        losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), self.targets, reduction="none")
        accuracy = torch.stack([part.mean(1) for part in correct.split(self.sizes, dim=1)], dim=1)
        loss = torch.stack([part.mean(1) for part in losses.split(self.sizes, dim=1)], dim=1)
        return accuracy, loss, correct.mean(1)

    def state_dict(self) -> dict:
        return {"samples_per_task": self.samples_per_task, "examples": list(self.examples)}

    def load_state_dict(self, state: dict) -> None:
        self.examples, self.sizes, self.inputs, self.targets, self.model_inputs = [], [], None, None, None
        self.samples_per_task = state["samples_per_task"]
        for task, examples in enumerate(state["examples"]):
            self._append(task, examples)
