"""The joint-training protocol of the stability-gap paper (Rodriguez-Garcia et al. 2025), with continual
evaluation after every iteration.

Contexts 1..T of `iterations_per_context` iterations each; every iteration draws a batch uniformly from the union
of the training data of all tasks seen so far (the benchmark's joint sampler) and takes one optimizer step on the
mean cross-entropy. After every iteration the model, in evaluation mode (gains frozen), is evaluated on the test
data of every task seen so far (`evaluation.tasks: seen`) or of those the metrics use (`ended`, see
EVALUATED_TASKS) — all of it or a fixed subset per task (`evaluation.samples_per_task`) — held on the device and
run in one batched forward. The network is the paper's gain-modulated one for every method (with gain 1 unless
the method drives it): the MLP with a gain on every layer (MNIST), or the slim ResNet-18 with a gain on its head
(`model: {arch: slim_resnet18, gain_head: true}`, the vision benchmarks), so any registered method runs under the
same protocol.

Recorded per seed, x = iterations (0 = before training; tidy schema of docs/architecture.md, x_unit
"iterations"): `task_accuracy` and `task_loss` (layer = task number, from the first iteration it is evaluated),
`test_accuracy` (the evaluated tasks' data pooled), `gain` (mean gain of each gain-modulated layer, layer = 1..L,
input side first: the gain of that iteration's forward pass), `train_loss`, `train_accuracy` and `entropy` of the
training batch; at the end the metrics of `plasticity.stability_gap` (`stability_gap` with layer = k for the
transition k → k+1);
`eval_samples` (layer = task) records the evaluation set's size.

Checkpoints as for every training job (plasticity.engine.checkpoint, through plasticity.engine.common.TrainingState): a step is
an iteration, a task a context.
"""
from __future__ import annotations

import sys

import torch
from tqdm import tqdm

from plasticity import stability_gap
from plasticity.benchmarks import BENCHMARKS, benchmark_shapes, build_benchmark
from plasticity.engine.evaluation import ContinualEvaluator
from plasticity.engine.checkpoint import Checkpoints
from plasticity.config import ConfigError
from plasticity.models import build_model
from plasticity.methods import build_learner
from plasticity.methods.ngm_sgd import prediction_entropy
from plasticity.engine.common import Recorder, TrainingState, autograd_step, resolve_device


# Which tasks are evaluated after every iteration: "seen", every task from the start of its context; "ended",
# task 1 throughout and every later task from the last iteration of its own context on (all that the figures and
# the metrics of plasticity.stability_gap use: SG needs task 1, min-ACC task k after its context, WC-ACC and the
# final average every task at the end), which saves a third of the evaluation on these benchmarks.
EVALUATED_TASKS = ("seen", "ended")


def joint_benchmarks() -> list[str]:
    return sorted(name for name, cls in BENCHMARKS.items() if getattr(cls, "protocol", "online") == "joint")


class JointRecord:
    """Everything the joint protocol measures, as curves over iterations 0..N (NaN where not measured yet);
    state_dict()/load_state_dict() for checkpoints."""

    def __init__(self, num_seeds: int, contexts: int, layers: int, total: int):
        nan = float("nan")
        self.curves = {"task_accuracy": torch.full((num_seeds, contexts, total + 1), nan),
                       "task_loss": torch.full((num_seeds, contexts, total + 1), nan),
                       "test_accuracy": torch.full((num_seeds, total + 1), nan),
                       "gain": torch.full((num_seeds, layers, total + 1), nan),
                       **{name: torch.full((num_seeds, total + 1), nan)
                          for name in ("train_loss", "train_accuracy", "entropy")}}
        self.evaluated_from: list[int] = []     # per task, the first iteration it was evaluated at
        self.diverged_at = torch.full((num_seeds,), -1, dtype=torch.long)   # the iteration its loss stopped being finite

    def mark_diverged(self, losses: torch.Tensor, iteration: int) -> None:
        newly = (~torch.isfinite(losses)).cpu() & (self.diverged_at < 0)
        self.diverged_at[newly] = iteration

    def state_dict(self) -> dict:
        return {"curves": {name: curve.clone() for name, curve in self.curves.items()},
                "evaluated_from": list(self.evaluated_from), "diverged_at": self.diverged_at.clone()}

    def load_state_dict(self, state: dict) -> None:
        for name, curve in self.curves.items():
            curve.copy_(state["curves"][name])
        self.evaluated_from = list(state["evaluated_from"])
        self.diverged_at.copy_(state["diverged_at"])

    def _blank_diverged(self) -> None:
        """NaN from each diverged seed's divergence on: a diverged network's accuracies are no measurement."""
        for seed, at in enumerate(self.diverged_at.tolist()):
            if at >= 0:
                for curve in self.curves.values():
                    curve[seed, ..., at:] = float("nan")

    def emit(self, recorder: Recorder, per_context: int) -> None:
        """Add every measured point, then the stability-gap metrics of every seed, to `recorder` (NaN for a seed
        from its divergence on, and `diverged`, `diverged_at`)."""
        self._blank_diverged()
        curves, total = self.curves, self.curves["test_accuracy"].shape[1] - 1

        def add(curve: torch.Tensor, metric: str, start: int, layer: int = 0) -> None:
            for x in range(start, total + 1):
                recorder.add(x, metric, curve[:, x], layer)

        for task, start in enumerate(self.evaluated_from):
            add(curves["task_accuracy"][:, task], "task_accuracy", start, task + 1)
            add(curves["task_loss"][:, task], "task_loss", start, task + 1)
        add(curves["test_accuracy"], "test_accuracy", 0)
        for layer in range(curves["gain"].shape[1]):
            add(curves["gain"][:, layer], "gain", 0, layer + 1)
        for name in ("train_loss", "train_accuracy", "entropy"):
            add(curves[name], name, 1)
        for name, values in stability_gap.summary(curves["task_accuracy"].numpy(), per_context).items():
            values = torch.as_tensor(values)
            if values.dim() == 1:
                recorder.add(total, name, values)
            else:
                for transition in range(values.shape[1]):
                    recorder.add(total, name, values[:, transition], layer=transition + 1)
        recorder.add(total, "diverged", (self.diverged_at >= 0).double())
        recorder.add(total, "diverged_at", self.diverged_at.double())


@torch.enable_grad()     # plasticity.engine.job.train, which dispatches here, runs without autograd
def train_joint(spec: dict, data_path: str | None = None, progress: bool = True,
                checkpoints: Checkpoints | None = None):
    """Train the joint-protocol job `spec` and return its tidy results, with the checkpoints of
    plasticity.engine.job.train: a step is a training iteration, a task a context, and the examples a checkpoint
    reports are the training examples drawn so far (iterations × batch size)."""
    seeds, batch_size = spec["seeds"], spec["batch_size"]
    per_context = spec["iterations_per_context"]
    checkpoints = checkpoints or Checkpoints()
    if spec["loss"] != "cross_entropy":
        raise ConfigError(f"the joint protocol trains classifiers: loss {spec['loss']!r}; valid: cross_entropy")
    if spec["benchmark"] in BENCHMARKS and spec["benchmark"] not in joint_benchmarks():
        raise ConfigError(f"benchmark {spec['benchmark']!r} is not a joint-training benchmark; valid: "
                          f"{', '.join(joint_benchmarks())}")
    tasks_evaluated = spec["evaluation"].get("tasks", "seen")
    if tasks_evaluated not in EVALUATED_TASKS:
        raise ConfigError(f"evaluation tasks {tasks_evaluated!r}; valid: {', '.join(EVALUATED_TASKS)}")
    device = resolve_device(spec["device"])
    torch.set_flush_denormal(True)
    benchmark = build_benchmark(spec["benchmark"], spec["benchmark_args"], seeds, device, data_path)
    input_shape, outputs = benchmark_shapes(spec["benchmark"], spec["benchmark_args"])
    model = build_model(spec["model"], input_shape, outputs, seeds, "joint").to(device)
    learner = build_learner(spec["method"], model, seeds, spec["hparams"])
    evaluator = ContinualEvaluator(benchmark, spec["evaluation"]["samples_per_task"])

    num_seeds, contexts = len(seeds), benchmark.num_contexts
    total = contexts * per_context
    record = JointRecord(num_seeds, contexts, len(model.gains()), total)
    curves = record.curves
    state = TrainingState(model, learner, benchmark, evaluator=evaluator, record=record)

    def evaluate(n: int) -> None:
        model.eval()
        accuracy, loss, pooled = evaluator.evaluate(model)
        seen = accuracy.shape[1]
        curves["task_accuracy"][:, :seen, n], curves["task_loss"][:, :seen, n] = accuracy.cpu(), loss.cpu()
        curves["test_accuracy"][:, n] = pooled.cpu()
        curves["gain"][:, :, n] = torch.stack([gain.mean(1) for gain in model.gains()], dim=1).cpu()

    def evaluate_task_from(task: int, n: int) -> None:
        evaluator.add_task(task)
        record.evaluated_from.append(n)

    # A checkpoint is taken at the boundary before an iteration: everything up to the previous iteration's
    # evaluation is in it, and the sampler's context is restored with the benchmark's state.
    saved = checkpoints.resume(spec)
    if saved is not None:
        state.load_state_dict(saved["state"])
        first = saved["step"]
    else:
        evaluate_task_from(0, 0)
        evaluate(0)
        first = 0
    checkpoints.start(first, per_context)

    with checkpoints.stopping_on_sigterm(), tqdm(
            total=total, initial=first, unit="it", disable=not progress, mininterval=5, file=sys.stderr,
            desc=f"{spec['experiment']}/{spec['run']} seeds {seeds[0]}-{seeds[-1]}") as bar:
        for iteration in range(first, total):
            if iteration >= checkpoints.next_check:
                checkpoints.at_step(iteration, iteration * batch_size, state.state_dict)
            context, step = divmod(iteration, per_context)
            if step == 0:
                if context > 0 and tasks_evaluated == "seen":
                    evaluate_task_from(context, iteration + 1)
                benchmark.start_context(context)
            model.train()
            inputs, targets = benchmark.next_batch(batch_size)
            output, per_seed = autograd_step(model, learner.optimizer, inputs, targets, "cross_entropy")
            if learner.after_step is not None:
                learner.after_step([hidden.detach() for hidden in model.features])
            n = iteration + 1
            record.mark_diverged(per_seed, n)
            curves["train_loss"][:, n] = per_seed.cpu()
            curves["train_accuracy"][:, n] = (output.argmax(-1) == targets).float().mean(1).cpu()
            curves["entropy"][:, n] = prediction_entropy(output).cpu()
            if context > 0 and tasks_evaluated == "ended" and step == per_context - 1:
                evaluate_task_from(context, n)
            evaluate(n)
            bar.update(1)

    recorder = Recorder(seeds)
    for task, size in enumerate(evaluator.sizes):
        recorder.add(0, "eval_samples", torch.full((num_seeds,), float(size)), layer=task + 1)
    record.emit(recorder, per_context)
    frame = recorder.frame(spec)
    frame["x_unit"] = "iterations"
    return frame
