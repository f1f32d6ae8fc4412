"""The tasks protocol (plasticity/engine/tasks.py): its schedule and best-weights bookkeeping by hand, and short runs
of the synthetic benchmark (3×16×16 images) with kumar_cnn: what is recorded and when, masked logits, head resets,
best-validation reloads, seed-block invariance with CBP's replacements, diverged seeds."""
import math

import pandas as pd
import pytest
import torch
from torch import nn

import plasticity.engine.tasks as tasks
from plasticity.config import ConfigError, job_spec
from plasticity.engine.job import train
from plasticity.engine.tasks import keep_best, schedule_factor
from plasticity.methods.cbp import ContinualBackprop

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# 3 tasks of 2 classes, 20 training images a class: 4 batches of 10 an epoch, 2 epochs a task (24 steps in all).
EXPERIMENT = {
    "paper": "test", "protocol": "tasks", "benchmark": "synthetic_tasks", "loss": "cross_entropy",
    "benchmark_args": {"num_tasks": 3, "classes_per_task": 2, "validation_per_class": 5, "noise": 0.5},
    "model": {"arch": "kumar_cnn"}, "batch_size": 10, "epochs_per_task": 2, "probe": None,
    "runs": {"bp": {"method": "bp", "hparams": {"lr": 0.1}}},
}
STEPS_PER_EPOCH, EPOCHS, TASKS = 4, 2, 3
CBP = {"method": "cbp", "hparams": {"lr": 0.1, "replacement_rate": 0.2, "maturity_threshold": 2}}


def tasks_job(seeds=(0, 1), run=None, **settings) -> dict:
    """The job spec of the experiment above with `settings` replacing its keys (a dict merges one level down) and,
    if given, another run (method and hyperparameters)."""
    experiment = dict(EXPERIMENT)
    for key, value in settings.items():
        experiment[key] = {**experiment[key], **value} if isinstance(experiment.get(key), dict) else value
    if run is not None:
        experiment["runs"] = {"bp": run}
    return job_spec("tasks_test", experiment, "bp", list(seeds), "cpu")


def metric(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """One metric as a table: a row per x, a column per seed."""
    return frame[frame.metric == name].pivot(index="x", columns="seed", values="value")


def spy_on_steps(monkeypatch, inspect) -> None:
    """Call `inspect(step, model, optimizer, output)` after every training step of the next run."""
    original, steps = tasks.autograd_step, iter(range(10**9))

    def step(model, optimizer, inputs, targets, loss, mask):
        index = next(steps)
        output, losses = original(model, optimizer, inputs, targets, loss, mask)
        inspect(index, model, optimizer, output)
        return output, losses

    monkeypatch.setattr(tasks, "autograd_step", step)


# --- by hand --------------------------------------------------------------------------------------------------------

def test_schedule_factor_is_that_of_the_last_schedule_epoch_at_or_before():
    schedule = {"epochs": [0, 60, 120, 160], "factors": [1.0, 0.2, 0.04, 0.008]}
    assert [schedule_factor(schedule, epoch) for epoch in (0, 59, 60, 119, 120, 159, 160, 199)] == \
        [1.0, 1.0, 0.2, 0.2, 0.04, 0.04, 0.008, 0.008]
    assert schedule_factor(None, 7) == schedule_factor({}, 7) == 1.0


class SeedBatched(nn.Module):
    """Two seeds' weights (2, 3) and a counter without a seed dimension, as BatchNorm's num_batches_tracked."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        self.register_buffer("count", torch.tensor(1))


def test_keep_best_takes_each_seeds_own_best_weights():
    model = SeedBatched()
    best = keep_best(model, None, torch.tensor([False, False]))     # the first evaluation: the model as it is
    assert torch.equal(best["weight"], torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    with torch.no_grad():
        model.weight.mul_(10)
        model.count.fill_(2)
    best = keep_best(model, best, torch.tensor([False, True]))      # only seed 1 improved
    assert torch.equal(best["weight"], torch.tensor([[1.0, 2.0, 3.0], [40.0, 50.0, 60.0]]))
    assert best["count"] == 2, "a tensor without the seed dimension is the latest"
    with torch.no_grad():
        model.weight.fill_(0)
    assert best["weight"].abs().min() > 0, "a copy, not a view of the model's weights"
    best = keep_best(model, best, torch.tensor([True, False]))
    assert torch.equal(best["weight"], torch.tensor([[0.0, 0.0, 0.0], [40.0, 50.0, 60.0]]))


@pytest.mark.parametrize("settings, message", [
    ({"schedule": {"epochs": [1, 5], "factors": [1.0, 0.1]}}, "epochs starting at 0"),
    ({"schedule": {"epochs": [0, 5], "factors": [1.0]}}, "the same length"),
    ({"reset_head": "random"}, "reset_head 'random'; valid: zero"),
    ({"loss": "mse"}, "trains classifiers"),
])
def test_bad_settings_are_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        train(tasks_job(**settings), progress=False)


# --- short runs -----------------------------------------------------------------------------------------------------

def test_records_every_metric_at_its_epoch(monkeypatch):
    """x = epochs trained: training metrics and evaluations after every epoch, the task's accuracies at its last
    epoch, the probes at each task's start; the schedule's factor per epoch of each task; the head zeroed at the
    start of every task but the first."""
    seen = []
    spy_on_steps(monkeypatch, lambda step, model, optimizer, output: seen.append(
        (optimizer.param_groups[0]["lr"], bool(model.head.weight.any() or model.head.bias.any()))))
    original_reset = tasks.reset_head
    heads_at_reset = []

    def reset_head(model, how, gens):
        heads_at_reset.append(model.head.weight.detach().clone())
        original_reset(model, how, gens)
        assert not model.head.weight.any() and not model.head.bias.any()

    monkeypatch.setattr(tasks, "reset_head", reset_head)
    frame = train(tasks_job(evaluation={"every": "epoch"}, probe={"size": 8}, reset_head="zero",
                            schedule={"epochs": [0, 1], "factors": [1.0, 0.5]}), progress=False)

    assert (frame.x_unit == "epochs").all() and sorted(frame.seed.unique()) == [0, 1]
    xs = frame.groupby("metric").x.apply(lambda x: sorted(x.unique())).to_dict()
    every_epoch, task_ends, task_starts = [1, 2, 3, 4, 5, 6], [2, 4, 6], [0, 2, 4]
    for name in ("train_loss", "train_accuracy", "test_accuracy", "validation_accuracy"):
        assert xs.pop(name) == every_epoch, name
    for name in ("task_accuracy", "best_test_accuracy"):
        assert xs.pop(name) == task_ends, name
    assert xs.pop("diverged") == xs.pop("diverged_at") == [6]
    for name in ("dead_units_pct", "effective_rank", "stable_rank", "stable_rank_norm", "approximate_rank",
                 "weight_magnitude"):
        assert xs.pop(name) == task_starts, name
    assert not xs, f"unexpected metrics {sorted(xs)}"
    assert frame.groupby(["metric", "x", "seed", "layer"]).size().max() == 1
    assert sorted(frame[frame.metric == "dead_units_pct"].layer.unique()) == [1, 2, 3, 4], "per unit layer"
    assert not frame[frame.metric == "diverged"].value.any()

    test = metric(frame, "test_accuracy")
    best = metric(frame, "best_test_accuracy")
    for end in task_ends:
        pd.testing.assert_series_equal(best.loc[end], test.loc[[end - 1, end]].max(), check_names=False)
    assert (metric(frame, "train_accuracy") > 0.5).any().all(), "it learns"

    steps_per_task = STEPS_PER_EPOCH * EPOCHS
    assert [lr for lr, _ in seen] == ([0.1] * STEPS_PER_EPOCH + [0.05] * STEPS_PER_EPOCH) * TASKS
    assert len(heads_at_reset) == TASKS - 1 and all(head.any() for head in heads_at_reset), "tasks 2 and 3 only"
    assert all(trained for _, trained in seen), "a step after a reset trains the head again"
    assert len(seen) == steps_per_task * TASKS


def test_unseen_classes_are_never_predicted(monkeypatch):
    """Class-incremental: the last class's bias is huge, so an unmasked net predicts it everywhere; with
    `mask_unseen_classes` its logit is −inf until its task, in training and in evaluation."""
    original_build = tasks.build_model

    def build_model(*args, **kwargs):
        model = original_build(*args, **kwargs)
        with torch.no_grad():
            model.head.bias[:, -1] = 1e3
        return model

    monkeypatch.setattr(tasks, "build_model", build_model)
    predicted = []
    spy_on_steps(monkeypatch, lambda step, model, optimizer, output: predicted.append(
        (step // (STEPS_PER_EPOCH * EPOCHS), output)))
    args, slow = {"incremental": True}, {"method": "bp", "hparams": {"lr": 1e-3}}     # too slow to unlearn the bias
    masked = train(tasks_job(benchmark_args=args, run=slow, mask_unseen_classes=True), progress=False)
    for task, output in predicted:
        seen = 2 * (task + 1)
        assert torch.isneginf(output[..., seen:]).all() and (output.argmax(-1) < seen).all(), f"task {task + 1}"
    assert (metric(masked, "test_accuracy").loc[2] > 0).all(), "evaluation is masked too"

    unmasked = train(tasks_job(benchmark_args=args, run=slow, epochs_per_task=1), progress=False)
    assert (metric(unmasked, "test_accuracy").loc[1] == 0).all(), "unmasked, the unseen class wins"


def test_best_validation_weights_are_reloaded_at_each_task_end():
    """`task_accuracy` is the test accuracy of each seed's first epoch of best validation accuracy in the task."""
    frame = train(tasks_job(epochs_per_task=3, evaluation={"every": "epoch", "best_validation": True},
                            benchmark_args={"noise": 1.5}), progress=False)
    test, validation = metric(frame, "test_accuracy"), metric(frame, "validation_accuracy")
    task_accuracy = metric(frame, "task_accuracy")
    rolled_back = 0
    for end in (3, 6, 9):
        epochs = [end - 2, end - 1, end]
        for seed in (0, 1):
            best_epoch = validation.loc[epochs, seed].idxmax()           # the first of equal maxima
            assert task_accuracy.loc[end, seed] == test.loc[best_epoch, seed], f"task ending at {end}, seed {seed}"
            rolled_back += test.loc[best_epoch, seed] != test.loc[end, seed]
    assert rolled_back, "some task's best validation epoch is not its last (else the test shows nothing)"


def test_a_seed_trains_the_same_in_any_block(monkeypatch):
    """Seed 1 trained beside seed 0 records what seed 1 trained alone does, bit for bit, with CBP replacing
    channels and neurons along the way (and validation, best-weight reloads and probes)."""
    replacements = []
    original = ContinualBackprop._reinitialise

    def count(self, layer, seed, units, means):
        replacements.append(len(units))
        original(self, layer, seed, units, means)

    monkeypatch.setattr(ContinualBackprop, "_reinitialise", count)
    settings = dict(run=CBP, evaluation={"every": "epoch", "best_validation": True}, probe={"size": 8},
                    reset_head="zero")
    pair = train(tasks_job(seeds=(0, 1), **settings), progress=False)
    assert sum(replacements) > 50, "CBP replaced units"
    alone = train(tasks_job(seeds=(1,), **settings), progress=False)
    pd.testing.assert_frame_equal(pair[pair.seed == 1].reset_index(drop=True), alone, check_exact=True)


def test_diverged_seeds_are_recorded_not_crashed():
    """A step size of 10⁶: every seed's loss stops being finite in the first epoch; the job records them as
    diverged, NaN metrics, and stops training."""
    frame = train(tasks_job(run={**CBP, "hparams": {**CBP["hparams"], "lr": 1e6}}, probe={"size": 8}),
                  progress=False)
    assert (metric(frame, "diverged").loc[6] == 1).all() and (metric(frame, "diverged_at").loc[6] == 1).all()
    measured = frame[~frame.metric.isin(["diverged", "diverged_at"]) & (frame.x > 0)]
    assert len(measured) and measured.value.isna().all()
    assert measured.x.max() == 1, "training stops once every seed has diverged"


def test_a_diverged_seed_leaves_the_other_seeds_unchanged(monkeypatch):
    """Seed 0's head made NaN in the 6th step (epoch 2): seed 0 is diverged from that epoch on, with NaN metrics
    and probes, even once the task's end has reloaded its best (epoch 1, finite) weights and it trains again; seed
    1's rows are those of a run where nothing happened."""
    finite_head = []

    def poison(step, model, optimizer, output):
        if step == 5:
            with torch.no_grad():
                model.head.weight[0] = math.nan
        finite_head.append(bool(torch.isfinite(model.head.weight[0]).all()))

    spec = tasks_job(evaluation={"every": "epoch", "best_validation": True}, probe={"size": 8})
    clean = train(spec, progress=False)
    spy_on_steps(monkeypatch, poison)
    frame = train(spec, progress=False)
    steps_per_task = STEPS_PER_EPOCH * EPOCHS
    assert not any(finite_head[5:steps_per_task]) and all(finite_head[steps_per_task:]), "revived by the reload"
    assert metric(frame, "diverged").loc[6].tolist() == [1.0, 0.0]
    assert metric(frame, "diverged_at").loc[6].tolist() == [2.0, -1.0], "the epoch of step 6"
    later = frame[(frame.seed == 0) & (frame.x >= 2) & ~frame.metric.isin(["diverged", "diverged_at"])]
    assert set(later.metric) >= {"dead_units_pct", "effective_rank", "weight_magnitude", "test_accuracy"}
    assert later.value.isna().all()
    pd.testing.assert_frame_equal(frame[frame.seed == 1].reset_index(drop=True),
                                  clean[clean.seed == 1].reset_index(drop=True), check_exact=True)
