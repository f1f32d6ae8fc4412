"""Benchmarks of the joint-training protocol (the stability-gap paper): a sequence of tasks over MNIST.

A task is a set of MNIST images (by index) seen through a pixel map: the identity (Split MNIST), a rotation
(Rotated MNIST) or a permutation (Permuted MNIST). Context k of the protocol trains on the union of tasks 1..k:
every batch is drawn uniformly, with replacement, from all training examples of the tasks seen so far, one
independent stream per seed. Evaluation uses each task's test images through the same pixel map, either all of
them or a fixed random subset per task and seed.

Pixel maps are index maps into the flattened image with one extra, always-black pixel (index 784), so a
rotation's corners outside the source image are black, as torchvision's rotate fills them. Images are scaled to
[0, 1] and standardised with MNIST's mean 0.1307 and std 0.3081, as the reference's transforms do.

Subclasses set `tasks` (a list of `Task`) in `__init__`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from plasticity.config import ConfigError
from plasticity.data.mnist import load_mnist
from plasticity.gain import FillShiftedInputs
from plasticity.seeding import generator, generators

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
PIXELS = 784
BLACK = PIXELS  # index of the padding pixel
# Below this fraction of non-black input pixels the evaluation's first layer skips black pixels (FillShiftedInputs):
# measured twice as fast as the dense product at MNIST's ~19%; its work grows with the fraction, the dense one's
# does not (break-even near 40%).
SPARSE_EVALUATION_DENSITY = 0.3


@dataclass
class Task:
    name: str
    train_indices: torch.Tensor   # (n,) indices of the MNIST training images
    test_indices: torch.Tensor    # (m,) indices of the MNIST test images
    pixel_map: torch.Tensor       # (S, 784) long: output pixel p reads input pixel pixel_map[s, p] (784 = black)


def identity_map(num_seeds: int) -> torch.Tensor:
    return torch.arange(PIXELS).expand(num_seeds, PIXELS).clone()


def rotation_map(degrees: float, side: int = 28) -> torch.Tensor:
    """(784,) nearest-neighbour index map rotating a side×side image counter-clockwise by `degrees` about its
    centre (as PIL/torchvision `rotate` does, without expanding); pixels from outside the image are black."""
    theta = math.radians(degrees)
    rows, cols = torch.meshgrid(torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64),
                                indexing="ij")
    dx, dy = cols + 0.5 - side / 2, rows + 0.5 - side / 2        # output pixel centres, y pointing down
    source_x = math.cos(theta) * dx - math.sin(theta) * dy + side / 2
    source_y = math.sin(theta) * dx + math.cos(theta) * dy + side / 2
    col, row = source_x.floor().long(), source_y.floor().long()
    inside = (col >= 0) & (col < side) & (row >= 0) & (row < side)
    return torch.where(inside, row * side + col, BLACK).flatten()


class ContextBenchmark:
    """Tasks over MNIST for S seeds, with the joint sampler and the evaluation sets (see the module docstring)."""

    protocol = "joint"
    in_features = PIXELS
    out_features = 10
    tasks: list[Task]

    def __init__(self, seeds: list[int], device: torch.device, mnist_path=None):
        if mnist_path is None:
            raise ConfigError(f"{type(self).__name__} needs MNIST: pass --mnist resources/mnist.npz "
                              "(made by `snakemake resources/mnist.npz` or `plasticity data mnist`)")
        self.seeds, self.device = seeds, torch.device(device)
        data = load_mnist(mnist_path)
        self.images = {split: torch.cat([data[f"x_{split}"].reshape(-1, PIXELS),
                                         torch.zeros(len(data[f"x_{split}"]), 1, dtype=torch.uint8)], dim=1)
                       for split in ("train", "test")}
        self.labels = {split: data[f"y_{split}"] for split in ("train", "test")}
        self.gens = generators(seeds, "data")
        self.context = -1

    @property
    def num_contexts(self) -> int:
        return len(self.tasks)

    def labels_in(self, split: str, classes) -> torch.Tensor:
        return torch.nonzero(torch.isin(self.labels[split], torch.as_tensor(classes))).flatten()

    def standardise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels -> the network's float32 inputs, on the device."""
        return pixels.to(self.device, torch.float32).div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)

    def inputs(self, split: str, examples: torch.Tensor, tasks: torch.Tensor | int) -> torch.Tensor:
        """Standardised inputs (S, n, 784) of images `examples` (S, n) seen through the pixel maps of their
        tasks (S, n), or of one task for all."""
        if isinstance(tasks, int):
            maps = self.tasks[tasks].pixel_map.unsqueeze(1).expand(*examples.shape, PIXELS)
        else:
            seed_index = torch.arange(len(self.seeds)).unsqueeze(1).expand_as(examples)
            maps = torch.stack([task.pixel_map for task in self.tasks])[tasks, seed_index]
        return self.standardise(torch.gather(self.images[split][examples], 2, maps))    # from (S, n, 784) uint8

    # --- the joint sampler --------------------------------------------------------------------------------------

    def start_context(self, context: int) -> None:
        """From now on, batches come from the union of the training data of tasks 0..context."""
        if not 0 <= context < self.num_contexts:
            raise ValueError(f"context {context} out of range; this benchmark has {self.num_contexts}")
        self.context = context
        seen = self.tasks[:context + 1]
        self._pool_examples = torch.cat([task.train_indices for task in seen])
        self._pool_tasks = torch.cat([torch.full((len(task.train_indices),), index)
                                      for index, task in enumerate(seen)])

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(examples, tasks), each (S, batch): uniform with replacement over the seen tasks' training examples."""
        if self.context < 0:
            raise RuntimeError("call start_context before drawing batches")
        draws = torch.stack([torch.randint(len(self._pool_examples), (batch_size,), generator=g)
                             for g in self.gens])
        return self._pool_examples[draws], self._pool_tasks[draws]

    def next_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (S, B, 784) and labels (S, B) of the next training batch."""
        examples, tasks = self.sample(batch_size)
        return self.inputs("train", examples, tasks), self.labels["train"][examples].to(self.device)

    def state_dict(self) -> dict:
        return {"context": self.context, "gens": [g.get_state() for g in self.gens]}

    def load_state_dict(self, state: dict) -> None:
        for g, saved in zip(self.gens, state["gens"]):
            g.set_state(saved)
        if state["context"] >= 0:
            self.start_context(state["context"])

    # --- evaluation sets ----------------------------------------------------------------------------------------

    def test_examples(self, task: int, samples: int | None) -> torch.Tensor:
        """(S, m) test-image indices of `task`: all of them (samples None), or a fixed random subset of `samples`
        per seed, drawn from the seed's own stream for that task (so it does not depend on the seed block)."""
        indices = self.tasks[task].test_indices
        if samples is None:
            return indices.expand(len(self.seeds), -1)
        if samples > len(indices):
            raise ConfigError(f"evaluation samples_per_task {samples} exceeds the {len(indices)} test images of "
                              f"task {task + 1} ({self.tasks[task].name})")
        return torch.stack([indices[torch.randperm(len(indices), generator=generator(seed, f"eval:{task}"))[:samples]]
                            for seed in self.seeds])


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
        if self.inputs.device.type == "cpu":
            black = bench.standardise(torch.zeros((), dtype=torch.uint8)).item()
            shifted = FillShiftedInputs(self.inputs, black)
            if shifted.density < SPARSE_EVALUATION_DENSITY:
                self.model_inputs = shifted

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = model(self.model_inputs)
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
