"""The tasks protocol (Dohare et al.'s continual ImageNet and class-incremental CIFAR-100): a sequence of tasks, each
trained for `epochs_per_task` epochs over its training set in shuffled mini-batches.

Per task: at its start the output layer may be reset (`reset_head: zero`: weights and bias set to 0, as LOP's
continual ImageNet does; `init`: redrawn from the architecture's own init, LOP's head resetting on CIFAR-100;
optimizer state kept, as in both), or the whole network replaced by a fresh one (`reset_network: true`, the
retrained-from-scratch baseline of class-incremental CIFAR-100; see `reset_network`), and the network probed on the task's first `probe.size`
training images (dead units, ranks, weight magnitude); every epoch draws a fresh permutation of the training set
per seed, sets each parameter group's learning rate to its initial value times the schedule's factor at that
epoch of the task (`schedule: {epochs: [0, 60, ...], factors: [1, 0.2, ...]}`), and trains with augmentation
(the benchmark's, training only) and, with `mask_unseen_classes`, the logits of classes not seen yet at −inf;
after each epoch (`evaluation.every: epoch`) or the task's last (`task`), the model, in evaluation mode, is
measured on the test set and, where the benchmark has one, the validation set. With `evaluation.best_validation`
each seed's weights of its best validation epoch of the task are reloaded at the task's end (the method's own
state is not rolled back, as in LOP).

Recorded per seed, x = epochs trained (x_unit "epochs"): `train_loss`, `train_accuracy` per epoch;
`test_accuracy` (and `validation_accuracy`) at each evaluation; at each task's end (x = its last epoch)
`task_accuracy` (test accuracy of the final, or best-validation, weights) and `best_test_accuracy` (the maximum
over the task's evaluations, the number LOP plots); the probes at each task start (x = epochs before it); a seed
whose loss stops being finite is recorded as diverged (`diverged`, `diverged_at` in epochs) and NaN from then on.
Checkpoints (plasticity.engine.checkpoint): a step is a training batch, a task a task.
"""
from __future__ import annotations

import bisect
import inspect
import math
import sys

import pandas as pd
import torch
from tqdm import tqdm

from plasticity.benchmarks import benchmark_shapes, build_benchmark
from plasticity.benchmarks.tasks import Split
from plasticity.config import ConfigError
from plasticity.engine.checkpoint import Checkpoints
from plasticity.engine.common import Recorder, TrainingState, autograd_step, nonfinite_seeds, resolve_device
from plasticity.engine.probes import probe
from plasticity.methods import build_learner
from plasticity.models import build_model
from plasticity.seeding import generators

HEAD_RESETS = ("zero", "init")
EVALUATION_CHUNK = 1000     # examples per seed per evaluation forward (bounds the activations' memory)


class Progress:
    """The protocol's own state between steps, for checkpoints: the epoch's permutation and the generators that
    drew it, the epoch's running sums, the best validation epoch's weights, and the divergence epochs."""

    def __init__(self, seeds: list[int], device: torch.device):
        self.gens = generators(seeds, "shuffle")
        self.permutation: torch.Tensor | None = None
        self.loss_sum = torch.zeros(len(seeds), device=device)
        self.correct_sum = torch.zeros(len(seeds), device=device)
        self.best_validation = torch.full((len(seeds),), -math.inf, device=device)
        self.best_test = torch.full((len(seeds),), -math.inf, device=device)
        self.best_state: dict | None = None
        self.diverged_at = torch.full((len(seeds),), -1, dtype=torch.long)

    def state_dict(self) -> dict:
        return {"gens": [g.get_state() for g in self.gens], "permutation": self.permutation,
                "loss_sum": self.loss_sum, "correct_sum": self.correct_sum, "best_validation": self.best_validation,
                "best_test": self.best_test, "best_state": self.best_state, "diverged_at": self.diverged_at}

    def load_state_dict(self, state: dict) -> None:
        for g, saved in zip(self.gens, state["gens"]):
            g.set_state(saved)
        device = self.loss_sum.device
        self.permutation = state["permutation"]
        for name in ("loss_sum", "correct_sum", "best_validation", "best_test"):
            getattr(self, name).copy_(state[name])
        self.best_state = None if state["best_state"] is None else \
            {key: value.to(device) for key, value in state["best_state"].items()}
        self.diverged_at.copy_(state["diverged_at"])


def _check(spec: dict, benchmark) -> None:
    if spec["loss"] != "cross_entropy":
        raise ConfigError(f"the tasks protocol trains classifiers: loss {spec['loss']!r}; valid: cross_entropy")
    if spec.get("reset_head") not in (None, *HEAD_RESETS):
        raise ConfigError(f"reset_head {spec['reset_head']!r}; valid: {', '.join(HEAD_RESETS)} or null")
    if spec.get("reset_network") not in (None, False, True):
        raise ConfigError(f"reset_network {spec['reset_network']!r}; valid: true or false")
    if spec.get("reset_network") and spec.get("reset_head"):
        raise ConfigError("reset_network replaces the head too: give reset_head or reset_network, not both")
    schedule = spec.get("schedule")
    if schedule and (len(schedule["epochs"]) != len(schedule["factors"]) or schedule["epochs"][0] != 0):
        raise ConfigError(f"schedule {schedule}: epochs and factors need the same length, epochs starting at 0")
    if getattr(benchmark, "protocol", None) != "tasks":
        raise ConfigError(f"benchmark {spec['benchmark']!r} is not a tasks-protocol benchmark")


def schedule_factor(schedule: dict | None, epoch: int) -> float:
    """The learning-rate factor at `epoch` of a task: that of the last schedule epoch at or before it."""
    if not schedule:
        return 1.0
    return [factor for start, factor in zip(schedule["epochs"], schedule["factors"]) if start <= epoch][-1]


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: Split, mask: torch.Tensor | None) -> torch.Tensor:
    """Accuracy (S,) of the model in evaluation mode on a split, in chunks."""
    training = model.training
    model.eval()
    correct = torch.zeros(split.inputs.shape[0], device=split.inputs.device)
    for start in range(0, split.inputs.shape[1], EVALUATION_CHUNK):
        logits = model(split.inputs[:, start:start + EVALUATION_CHUNK])
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        correct += (logits.argmax(-1) == split.targets[:, start:start + EVALUATION_CHUNK]).float().sum(1)
    model.train(training)
    return correct / split.inputs.shape[1]


def _check_model(spec: dict, model: torch.nn.Module) -> None:
    if spec.get("reset_head") == "init" and not hasattr(model, "reset_head"):
        raise ConfigError(f"reset_head: init needs an architecture with its own head init (the vision networks, "
                          f"linear); {spec['model']} has none")
    if spec.get("reset_network") and "gens" not in inspect.signature(model.reset_parameters).parameters:
        raise ConfigError(f"reset_network needs an architecture that re-initialises from given generators (the "
                          f"vision networks, linear); {spec['model']} does not")


@torch.no_grad()
def reset_head(model: torch.nn.Module, how: str, gens: list[torch.Generator]) -> None:
    """`zero`: the output layer's weights and bias set to 0; `init`: redrawn from the architecture's own init
    (a Kaiming-normal fc for LOP's ResNet-18), from `gens`, fresh per task."""
    if how == "init":
        model.reset_head(gens)
        return
    model.head.weight.zero_()
    if model.head.bias.requires_grad:
        model.head.bias.zero_()


@torch.no_grad()
def reset_network(model: torch.nn.Module, optimizer: torch.optim.Optimizer, gens: list[torch.Generator]) -> None:
    """A network trained from scratch from here on: every layer redrawn from the architecture's init (from `gens`,
    fresh per task), BatchNorm's running statistics reset and the optimizer's state (momentum) cleared. LOP's
    retrained network keeps BN's running statistics and the momentum buffers of the previous network (quirk, not
    copied: a network trained from scratch has neither). A method's own state (S&P's noise stream) continues."""
    model.reset_parameters(gens)
    optimizer.state.clear()


@torch.no_grad()
def keep_best(model: torch.nn.Module, best: dict | None, improved: torch.Tensor) -> dict:
    """The model's state where `improved` (S,) is set, `best` elsewhere: per-seed best weights (every tensor of a
    seed-batched model's state has the seed dimension first; others, e.g. BatchNorm's counters, are the latest)."""
    state = {key: value.detach().clone() for key, value in model.state_dict().items()
             if isinstance(value, torch.Tensor)}
    if best is None:
        return state
    for key, value in state.items():
        if value.dim() and value.shape[0] == improved.shape[0]:
            keep = improved.view(-1, *[1] * (value.dim() - 1))
            state[key] = torch.where(keep, value, best[key])
    return state


@torch.no_grad()
def train_tasks(spec: dict, data_path: str | None = None, progress: bool = True,
                checkpoints: Checkpoints | None = None) -> pd.DataFrame:
    """Train the tasks-protocol job `spec` and return its tidy results (x = epochs), with the checkpoints of
    plasticity.engine.job.train: a step is a training batch, a task a task."""
    checkpoints = checkpoints or Checkpoints()
    seeds, batch_size, epochs = spec["seeds"], spec["batch_size"], spec["epochs_per_task"]
    device = resolve_device(spec["device"])
    torch.set_flush_denormal(True)
    benchmark = build_benchmark(spec["benchmark"], spec["benchmark_args"], seeds, device, data_path)
    _check(spec, benchmark)
    input_shape, outputs = benchmark_shapes(spec["benchmark"], spec["benchmark_args"])
    model = build_model(spec["model"], input_shape, outputs, seeds, "tasks").to(device)
    _check_model(spec, model)
    learner = build_learner(spec["method"], model, seeds, spec["hparams"])
    initial_lrs = [group["lr"] for group in learner.optimizer.param_groups]
    evaluation = spec.get("evaluation") or {}
    mask_unseen = spec.get("mask_unseen_classes", False)
    recorder, run = Recorder(seeds), Progress(seeds, device)
    state = TrainingState(model, learner, benchmark, recorder=recorder, progress=run)

    # Steps (training batches) per epoch of each task: a class-incremental task trains on every class seen so far,
    # so tasks grow. A step is identified by its global index, which locates its task, epoch and batch.
    steps_per_epoch = [math.ceil(benchmark.train_examples(t) / batch_size) for t in range(benchmark.num_tasks)]
    task_starts = [0]
    for steps in steps_per_epoch:
        task_starts.append(task_starts[-1] + epochs * steps)
    first_step = 0
    saved = checkpoints.resume(spec)
    if saved is not None:
        state.load_state_dict(saved["state"])
        first_step = saved["step"]
    checkpoints.start(first_step, None, task_starts[:-1])

    def finite(values: torch.Tensor) -> torch.Tensor:
        return torch.where(run.diverged_at.to(device) >= 0, torch.nan, values)

    total = task_starts[-1]
    with checkpoints.stopping_on_sigterm(), tqdm(
            total=total, initial=first_step, unit="batch", disable=not progress, mininterval=5, file=sys.stderr,
            desc=f"{spec['experiment']}/{spec['run']} seeds {seeds[0]}-{seeds[-1]}") as bar:
        task, task_index = None, -1
        for step in range(first_step, total):
            if step == task_starts[task_index + 1] or task is None:
                task_index = bisect.bisect_right(task_starts, step) - 1
                task = benchmark.task(task_index)
                mask = task.seen_classes if mask_unseen else None
            within = step - task_starts[task_index]
            epoch, batch = divmod(within, steps_per_epoch[task_index])
            done_epochs = task_index * epochs + epoch
            if step >= checkpoints.next_check:
                checkpoints.at_step(step, step * batch_size, state.state_dict)
            if within == 0:
                if task_index > 0 and spec.get("reset_head"):
                    reset_head(model, spec["reset_head"], generators(seeds, f"head_reset:{task_index}"))
                if task_index > 0 and spec.get("reset_network"):
                    reset_network(model, learner.optimizer, generators(seeds, f"init:task{task_index}"))
                run.best_validation.fill_(-math.inf)
                run.best_test.fill_(-math.inf)
                run.best_state = None
                if spec.get("probe"):
                    probe_inputs = task.train.inputs[:, :spec["probe"]["size"]]
                    probe(model, probe_inputs, recorder, done_epochs, diverged=run.diverged_at >= 0)
            if batch == 0:
                for group, lr in zip(learner.optimizer.param_groups, initial_lrs):
                    group["lr"] = lr * schedule_factor(spec.get("schedule"), epoch)
                count = task.train.inputs.shape[1]
                run.permutation = torch.stack([torch.randperm(count, generator=g) for g in run.gens]).to(device)
            index = run.permutation[:, batch * batch_size:(batch + 1) * batch_size]
            inputs = torch.stack([x[i] for x, i in zip(task.train.inputs, index)])
            targets = torch.gather(task.train.targets, 1, index)
            output, loss = autograd_step(model, learner.optimizer, benchmark.augment(inputs, run.gens), targets,
                                         spec["loss"], mask)
            if learner.after_step is not None:
                learner.after_step(model.features)
            run.loss_sum += loss * index.shape[1]
            run.correct_sum += (output.argmax(-1) == targets).float().sum(1)
            bar.update(1)
            if batch == steps_per_epoch[task_index] - 1:
                _end_epoch(model, task, mask, run, recorder, done_epochs + 1, epoch == epochs - 1,
                           evaluation, finite)
                if bool((run.diverged_at >= 0).all()):
                    break            # every seed has diverged: nothing left to learn
    end = benchmark.num_tasks * epochs
    recorder.add(end, "diverged", (run.diverged_at >= 0).double())
    recorder.add(end, "diverged_at", run.diverged_at.double())
    frame = recorder.frame(spec)
    frame["x_unit"] = "epochs"
    return frame


def _end_epoch(model, task, mask, run: Progress, recorder: Recorder, x: int, last: bool, evaluation: dict,
               finite) -> None:
    """Record the epoch's training loss and accuracy, evaluate as `evaluation` says, keep the best validation
    weights, and at the task's last epoch record the task's accuracies (reloading the best weights first)."""
    examples = task.train.inputs.shape[1]
    epoch_loss = run.loss_sum / examples
    newly = ((~torch.isfinite(epoch_loss)).cpu() | nonfinite_seeds(model)) & (run.diverged_at < 0)
    run.diverged_at[newly] = x
    recorder.add(x, "train_loss", finite(epoch_loss))
    recorder.add(x, "train_accuracy", finite(run.correct_sum / examples))
    run.loss_sum.zero_()
    run.correct_sum.zero_()
    if evaluation.get("every", "task") == "epoch" or last:
        test = evaluate(model, task.test, mask)
        recorder.add(x, "test_accuracy", finite(test))
        run.best_test = torch.maximum(run.best_test, test)
        if task.validation is not None:
            validation = evaluate(model, task.validation, mask)
            recorder.add(x, "validation_accuracy", finite(validation))
            if evaluation.get("best_validation"):
                improved = validation > run.best_validation
                run.best_validation = torch.where(improved, validation, run.best_validation)
                run.best_state = keep_best(model, run.best_state, improved)
    if last:
        if run.best_state is not None:
            model.load_state_dict({**model.state_dict(), **run.best_state})
            recorder.add(x, "task_accuracy", finite(evaluate(model, task.test, mask)))
        else:
            recorder.add(x, "task_accuracy", finite(test))
        recorder.add(x, "best_test_accuracy", finite(run.best_test))
