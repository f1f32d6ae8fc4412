"""The joint-training protocol of the stability-gap paper (Rodriguez-Garcia et al. 2025), with continual
evaluation after every iteration.

Contexts 1..T of `iterations_per_context` iterations each; every iteration draws a batch uniformly from the union
of the training data of all tasks seen so far (the benchmark's joint sampler) and takes one optimizer step on the
mean cross-entropy. After every iteration the model, in evaluation mode (gains frozen), is evaluated on the test
data of every task seen so far (`evaluation.tasks: seen`) or of those the metrics use (`ended`, see
EVALUATED_TASKS) — all of it or a fixed subset per task (`evaluation.samples_per_task`) — held on the device and
run in one batched forward. The network is the paper's gain-modulated MLP for every method (with
gain 1 unless the method drives it), so any registered method runs under the same protocol.

Recorded per seed, x = iterations (0 = before training; tidy schema of docs/architecture.md, x_unit
"iterations"): `task_accuracy` and `task_loss` (layer = task number, from the first iteration it is evaluated),
`test_accuracy` (all seen tasks' evaluation data pooled), `gain` (mean gain of each layer, layer = 1..L: the gain
of that iteration's forward pass), `train_loss`, `train_accuracy` and `entropy` of the training batch; at the end
the metrics of `plasticity.stability_gap` (`stability_gap` with layer = k for the transition k → k+1);
`eval_samples` (layer = task) records the evaluation set's size.
"""
from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from plasticity import stability_gap
from plasticity.benchmarks import BENCHMARKS, build_benchmark
from plasticity.benchmarks.contexts import ContinualEvaluator
from plasticity.config import ConfigError
from plasticity.gain import GainMLP
from plasticity.methods import build_learner
from plasticity.methods.ngm_sgd import prediction_entropy
from plasticity.train import Recorder, resolve_device


# Which tasks are evaluated after every iteration: "seen", every task from the start of its context; "ended",
# task 1 throughout and every later task from the last iteration of its own context on (all that the figures and
# the metrics of plasticity.stability_gap use: SG needs task 1, min-ACC task k after its context, WC-ACC and the
# final average every task at the end), which saves a third of the evaluation on these benchmarks.
EVALUATED_TASKS = ("seen", "ended")


def joint_benchmarks() -> list[str]:
    return sorted(name for name, cls in BENCHMARKS.items() if getattr(cls, "protocol", "online") == "joint")


class CurveRecorder(Recorder):
    """A Recorder that also takes whole curves (S, n) at once."""

    def add_curve(self, xs: np.ndarray, metric: str, values: torch.Tensor, layer: int = 0) -> None:
        values = values.detach().double().cpu().numpy()
        count, points = values.shape
        self.columns["seed"].append(np.repeat(self.seeds, points))
        self.columns["x"].append(np.tile(np.asarray(xs, dtype=np.int64), count))
        self.columns["metric"].append(np.full(count * points, metric, dtype=object))
        self.columns["layer"].append(np.full(count * points, layer, dtype=np.int64))
        self.columns["value"].append(values.reshape(-1))


def build_model(spec: dict, benchmark, seeds: list[int]) -> GainMLP:
    model_spec = spec["model"]
    return GainMLP(benchmark.in_features, benchmark.out_features, model_spec["width"], model_spec["depth"],
                   model_spec["activation"], seeds, **(model_spec.get("init") or {}))


def train_joint(spec: dict, mnist_path: str | None = None, progress: bool = True):
    """Train the joint-protocol job `spec` and return its tidy results."""
    seeds, batch_size = spec["seeds"], spec["batch_size"]
    per_context = spec["iterations_per_context"]
    if spec["loss"] != "cross_entropy":
        raise ConfigError(f"the joint protocol trains classifiers: loss {spec['loss']!r}; valid: cross_entropy")
    if spec["benchmark"] in BENCHMARKS and spec["benchmark"] not in joint_benchmarks():
        raise ConfigError(f"benchmark {spec['benchmark']!r} is not a joint-training benchmark; valid: "
                          f"{', '.join(joint_benchmarks())}")
    device = resolve_device(spec["device"])
    torch.set_flush_denormal(True)
    benchmark = build_benchmark(spec["benchmark"], spec["benchmark_args"], seeds, device, mnist_path)
    model = build_model(spec, benchmark, seeds).to(device)
    learner = build_learner(spec["method"], model, seeds, spec["hparams"])
    evaluator = ContinualEvaluator(benchmark, spec["evaluation"]["samples_per_task"])

    num_seeds, contexts, layers = len(seeds), benchmark.num_contexts, len(model.layers)
    total = contexts * per_context
    task_accuracy = torch.full((num_seeds, contexts, total + 1), float("nan"))
    task_loss = torch.full_like(task_accuracy, float("nan"))
    test_accuracy = torch.full((num_seeds, total + 1), float("nan"))
    gains = torch.full((num_seeds, layers, total + 1), float("nan"))
    batch = {name: torch.full((num_seeds, total), float("nan")) for name in ("train_loss", "train_accuracy",
                                                                             "entropy")}

    def evaluate(n: int) -> None:
        model.eval()
        accuracy, loss, pooled = evaluator.evaluate(model)
        seen = accuracy.shape[1]
        task_accuracy[:, :seen, n], task_loss[:, :seen, n], test_accuracy[:, n] = accuracy.cpu(), loss.cpu(), \
            pooled.cpu()
        gains[:, :, n] = torch.stack([gain.mean(1) for gain in model.gains()], dim=1).cpu()

    tasks_evaluated = spec["evaluation"].get("tasks", "seen")
    if tasks_evaluated not in EVALUATED_TASKS:
        raise ConfigError(f"evaluation tasks {tasks_evaluated!r}; valid: {', '.join(EVALUATED_TASKS)}")
    evaluated_from = [0]
    evaluator.add_task(0)
    evaluate(0)
    n = 0
    with tqdm(total=total, unit="it", disable=not progress, mininterval=5, file=sys.stderr,
              desc=f"{spec['experiment']}/{spec['run']} seeds {seeds[0]}-{seeds[-1]}") as bar:
        for context in range(contexts):
            if context > 0 and tasks_evaluated == "seen":
                evaluator.add_task(context)
                evaluated_from.append(n + 1)
            benchmark.start_context(context)
            for step in range(per_context):
                model.train()
                inputs, targets = benchmark.next_batch(batch_size)
                output = model(inputs)
                per_seed = F.cross_entropy(output.transpose(1, 2), targets, reduction="none").mean(1)
                learner.optimizer.zero_grad(set_to_none=True)
                per_seed.sum().backward()       # seeds are independent: the sum's gradient is each seed's own
                learner.optimizer.step()
                if learner.after_step is not None:
                    learner.after_step([hidden.detach() for hidden in model.hidden])
                batch["train_loss"][:, n] = per_seed.detach().cpu()
                batch["train_accuracy"][:, n] = (output.argmax(-1) == targets).float().mean(1).cpu()
                batch["entropy"][:, n] = prediction_entropy(output).cpu()
                n += 1
                if context > 0 and tasks_evaluated == "ended" and step == per_context - 1:
                    evaluator.add_task(context)
                    evaluated_from.append(n)
                evaluate(n)
                bar.update(1)

    recorder = CurveRecorder(seeds, x_unit="iterations")
    xs = np.arange(total + 1)
    for task, start in enumerate(evaluated_from):
        recorder.add_curve(xs[start:], "task_accuracy", task_accuracy[:, task, start:], layer=task + 1)
        recorder.add_curve(xs[start:], "task_loss", task_loss[:, task, start:], layer=task + 1)
        recorder.add(0, "eval_samples", torch.full((num_seeds,), float(evaluator.sizes[task])), layer=task + 1)
    recorder.add_curve(xs, "test_accuracy", test_accuracy)
    for layer in range(layers):
        recorder.add_curve(xs, "gain", gains[:, layer], layer=layer + 1)
    for name, values in batch.items():
        recorder.add_curve(xs[1:], name, values)
    for name, values in stability_gap.summary(task_accuracy.numpy(), per_context).items():
        values = torch.as_tensor(values)
        if values.dim() == 1:
            recorder.add(total, name, values)
        else:
            for transition in range(values.shape[1]):
                recorder.add(total, name, values[:, transition], layer=transition + 1)
    return recorder.frame(spec)
