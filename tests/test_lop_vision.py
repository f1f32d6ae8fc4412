"""Loss of plasticity's vision experiments (Figs. 1-2) on tiny synthetic data files of the materialised formats:
the continual-ImageNet task stream, class-incremental CIFAR-100's splits, schedule, best-validation reloads and
masked logits, head resets and the retrained network, resume after a kill in the middle of a task, the derived
measures and figures, and the experiments planned and run through `plasticity train`."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import plasticity.engine.tasks as tasks
from plasticity.analysis.aggregate import aggregate
from plasticity.analysis.task_metrics import binned_task_accuracy, relative_accuracy, with_task_metrics
from plasticity.benchmarks import build_benchmark
from plasticity.config import ConfigError, deep_merge, job_spec, load_protocol
from plasticity.engine.job import train
from plasticity.models import build_model
from plasticity.seeding import generators
from test_checkpoint import crashed_run, scheduled
from test_tasks import metric, spy_on_steps
from vision_helpers import write_vision_npz

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PROTOCOL = load_protocol("config/experiments.yaml")
IMAGENET_ARGS = {"num_tasks": 4, "num_classes": 6, "train_per_class": 7, "test_per_class": 3}
CIFAR_ARGS = {"num_tasks": 3, "classes_per_task": 1, "initial_classes": 2, "num_classes": 4,
              "validation_per_class": 2}


def images(count: int) -> np.ndarray:
    """`count` 32×32 RGB images, image i filled with the value i (so an image is known by any pixel)."""
    return np.broadcast_to(np.arange(count, dtype=np.uint8)[:, None, None, None], (count, 32, 32, 3)).copy()


@pytest.fixture(scope="module")
def imagenet_file(tmp_path_factory):
    """6 classes × 10 images (image 10c + i is class c's i-th), stored as the data layer splits Imagenet32: each
    class's first 7 in x_train, its last 3 in x_test."""
    train_ids = np.array([10 * c + i for c in range(6) for i in range(7)])
    test_ids = np.array([10 * c + i for c in range(6) for i in range(7, 10)])
    return write_vision_npz(tmp_path_factory.mktemp("imagenet") / "imagenet32.npz", "imagenet32",
                            images(60)[train_ids], train_ids // 10, images(60)[test_ids], test_ids // 10)


@pytest.fixture(scope="module")
def cifar_file(tmp_path_factory):
    """4 classes, 6 training images each (interleaved, as CIFAR's), 2 test images each."""
    return write_vision_npz(tmp_path_factory.mktemp("cifar") / "cifar100.npz", "cifar100", images(24),
                            np.tile(np.arange(4), 6), images(8) + 100, np.tile(np.arange(4), 2))


def ids(split) -> set[int]:
    """The images of a split (S, n, ...) by their id (the first pixel; CIFAR's are normalised, so rounded)."""
    return set(split.inputs[..., 0, 0, 0].flatten().round(decimals=3).tolist())


def vision_job(name: str, run: str, seeds=(0, 1), **settings) -> dict:
    """The job spec of an experiment's run at a tiny size (the given settings merged over the protocol's)."""
    base = {"imagenet_methods": {"benchmark_args": IMAGENET_ARGS, "epochs_per_task": 2, "batch_size": 7},
            "incremental_cifar100": {"benchmark_args": CIFAR_ARGS, "epochs_per_task": 2, "batch_size": 4,
                                     "probe": {"size": 4}, "model": {"arch": "kumar_cnn"},
                                     "schedule": {"epochs": [0, 1], "factors": [1.0, 0.2]}}}[name]
    experiment = deep_merge(deep_merge(PROTOCOL[name], base), settings)
    return job_spec(name, experiment, run, list(seeds), "cpu")


# --- continual ImageNet ---------------------------------------------------------------------------------------------

def test_imagenet_tasks_are_fresh_pairs_labelled_0_1_per_seed(imagenet_file):
    """Each permutation's 3 tasks use every class once; the next 3 a fresh permutation; seeds differ; labels 0/1,
    7 images a class; no test image is ever a training image."""
    bench = build_benchmark("continual_imagenet", {**IMAGENET_ARGS, "num_tasks": 9}, [0, 1, 2], "cpu",
                            imagenet_file)
    pairs = {seed: [tuple(bench.pair(seed, t).tolist()) for t in range(9)] for seed in (0, 1, 2)}
    for seed, sequence in pairs.items():
        for cycle in range(3):
            assert sorted(c for pair in sequence[3 * cycle:3 * cycle + 3] for c in pair) == list(range(6))
        assert sequence[:3] != sequence[3:6] or sequence[3:6] != sequence[6:], "a fresh permutation per cycle"
    assert pairs[0] != pairs[1] != pairs[2], "per-seed permutations"
    for t in range(9):
        task = bench.task(t)
        assert task.train.inputs.shape == (3, 14, 3, 32, 32) and task.test.inputs.shape == (3, 6, 3, 32, 32)
        assert torch.equal(task.train.targets, torch.tensor([0] * 7 + [1] * 7).expand(3, -1))
        for s, seed in enumerate((0, 1, 2)):
            first, second = pairs[seed][t]
            train_ids = set(task.train.inputs[s, :, 0, 0, 0].mul(255).round().int().tolist())
            test_ids = set(task.test.inputs[s, :, 0, 0, 0].mul(255).round().int().tolist())
            assert train_ids == {10 * c + i for c in (first, second) for i in range(7)}
            assert test_ids == {10 * c + i for c in (first, second) for i in range(7, 10)}


def test_imagenet_needs_enough_images_per_class(imagenet_file):
    with pytest.raises(ConfigError, match="needed"):
        build_benchmark("continual_imagenet", {**IMAGENET_ARGS, "train_per_class": 8}, [0], "cpu", imagenet_file)


def test_imagenet_head_is_zeroed_each_task_and_linear_baseline_trains(imagenet_file, monkeypatch):
    heads = []
    spy_on_steps(monkeypatch, lambda step, model, optimizer, output: heads.append(model.head.weight.abs().sum()))
    original = tasks.reset_head
    monkeypatch.setattr(tasks, "reset_head", lambda model, how, gens: (original(model, how, gens),
                                                                       heads.append(model.head.weight.abs().sum())))
    frame = train(vision_job("imagenet_methods", "bp"), imagenet_file, progress=False)
    assert [float(h) for h in heads[4::5]] == [0.0] * 3, "zero at the start of tasks 2-4 (4 steps a task)"
    assert metric(frame, "task_accuracy").shape == (4, 2)
    linear = vision_job("imagenet_methods", "bp", model={"arch": "linear"})
    assert metric(train(linear, imagenet_file, progress=False), "task_accuracy").notna().all().all()


# --- class-incremental CIFAR-100 ------------------------------------------------------------------------------------

def test_cifar_splits_classes_and_augmentation(cifar_file):
    """Task t trains on the seed's first 2 + t classes: validation = each class's first 2 training images in dataset
    order, training = the other 4, test = its test images; labels = positions in the seed's class order."""
    bench = build_benchmark("incremental_cifar100", CIFAR_ARGS, [0, 1], "cpu", cifar_file)
    assert not torch.equal(bench.class_order[0], bench.class_order[1])
    for t, seen in enumerate((2, 3, 4)):
        task = bench.task(t)
        assert task.seen_classes.tolist() == [True] * seen + [False] * (4 - seen)
        assert task.train.inputs.shape[:2] == (2, 4 * seen) and task.validation.inputs.shape[:2] == (2, 2 * seen)
        assert not ids(task.train) & ids(task.validation) and not ids(task.test) & (ids(task.train) | ids(task.validation))
        classes = bench.class_order[0, :seen].tolist()
        label_of = {c: position for position, c in enumerate(classes)}
        raw = task.validation.inputs[0, :, 0, 0, 0] * 0.2673 + 0.5071       # un-normalised red channel
        expected = [4 * i + c for c in classes for i in range(2)]            # the first 2 of each class
        assert torch.allclose(raw * 255, torch.tensor(expected, dtype=torch.float), atol=1e-3)
        assert task.validation.targets[0].tolist() == [label_of[c] for c in classes for _ in range(2)]
    batch = bench.task(0).train.inputs[:, :3]
    out = bench.augment(batch, generators([0, 1], "a"))
    assert out.shape == batch.shape and not torch.equal(out, batch)
    assert torch.equal(out, bench.augment(batch, generators([0, 1], "a"))), "a function of the seeds' generators"
    assert torch.equal(out[1:], bench.augment(batch[1:], generators([1], "a"))), "each seed's own draws"


def test_cifar_schedule_growth_masking_and_best_weights(cifar_file, monkeypatch):
    """Classes added at epochs 0, 2, 4 (2 epochs a task): 3, 4, 5 batches of 4 an epoch (5 training images a class
    after 1 for validation; 2, 3, 4 classes); the step size x0.2 from epoch 1
    of each task; logits of unseen classes −inf; each task ends on its best-validation weights."""
    seen = []
    spy_on_steps(monkeypatch, lambda step, model, optimizer, output: seen.append(
        (optimizer.param_groups[0]["lr"], output.shape[1], int(torch.isfinite(output[0, 0]).sum()))))
    frame = train(vision_job("incremental_cifar100", "shrink_perturb", benchmark_args={"validation_per_class": 1}),
                  cifar_file, progress=False)
    batches = [3, 3, 4, 4, 5, 5]
    assert len(seen) == sum(batches)
    lrs = [lr for lr, _, _ in seen]
    expected = []
    for epoch, count in enumerate(batches):
        expected += [0.1 * (1.0 if epoch % 2 == 0 else 0.2)] * count
    assert lrs == pytest.approx(expected)
    assert [finite for _, _, finite in seen] == [2] * 6 + [3] * 8 + [4] * 10
    test, validation = metric(frame, "test_accuracy"), metric(frame, "validation_accuracy")
    for end in (2, 4, 6):
        for seed in (0, 1):
            best = validation.loc[[end - 1, end], seed].idxmax()
            assert metric(frame, "task_accuracy").loc[end, seed] == test.loc[best, seed]
    assert sorted(frame[frame.metric == "dead_units_pct"].x.unique()) == [0, 2, 4], "probes at each task start"


def test_head_reset_init_and_retrained_network():
    """`init` redraws the head (and only the head) as the architecture initialises it; `reset_network` gives the
    architecture's init from the given generators everywhere, BatchNorm statistics and the optimizer's state reset."""
    model = build_model({"arch": "resnet18"}, (3, 8, 8), 5, [0, 1], "tasks")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    tasks.autograd_step(model, optimizer, torch.rand(2, 4, 3, 8, 8), torch.randint(0, 5, (2, 4)), "cross_entropy")
    trained = {key: value.clone() for key, value in model.state_dict().items()}
    fresh = build_model({"arch": "resnet18"}, (3, 8, 8), 5, [0, 1], "tasks")
    tasks.reset_head(model, "init", generators([0, 1], "head"))
    fresh.reset_head(generators([0, 1], "head"))
    for key, value in model.state_dict().items():
        expected = fresh.state_dict()[key] if key.startswith("head.") else trained[key]
        assert torch.equal(value, expected), key
    assert model.head.weight.std().item() == pytest.approx(1 / 512 ** 0.5, rel=0.2), "Kaiming-normal, linear gain"
    tasks.reset_network(model, optimizer, generators([0, 1], "again"))
    fresh.reset_parameters(generators([0, 1], "again"))
    assert all(torch.equal(value, fresh.state_dict()[key]) for key, value in model.state_dict().items())
    assert not optimizer.state and model.bn1.running_var.eq(1).all()


def test_retrained_run_restarts_each_task_and_relative_accuracy(cifar_file):
    """The retrained run's first task is BP's, bit for bit; later tasks start from fresh weights; the derived
    relative accuracy is BP's task accuracy minus the retrained run's, seed by seed."""
    bp = train(vision_job("incremental_cifar100", "bp"), cifar_file, progress=False)
    retrained = train(vision_job("incremental_cifar100", "retrained"), cifar_file, progress=False)
    first = lambda frame: metric(frame, "task_accuracy").loc[2]     # noqa: E731
    pd.testing.assert_series_equal(first(bp), first(retrained))
    assert not metric(bp, "weight_magnitude").loc[2].equals(metric(retrained, "weight_magnitude").loc[2])
    relative = relative_accuracy(pd.concat([bp, retrained]))
    expected = (metric(bp, "task_accuracy") - metric(retrained, "task_accuracy")).reset_index(drop=True)
    got = relative.pivot(index="x", columns="seed", values="value").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_names=False)
    with pytest.raises(ConfigError, match="not both"):
        train(vision_job("incremental_cifar100", "retrained", reset_head="zero"), cifar_file, progress=False)


@pytest.mark.parametrize("name, run", [("imagenet_methods", "cbp"), ("incremental_cifar100", "shrink_perturb")])
def test_resume_after_a_kill_mid_task_is_bit_exact(name, run, cifar_file, imagenet_file, tmp_path, monkeypatch):
    """Checked every 5 steps and killed in step 7: resumed from step 5, in the middle of an epoch of the second
    task (ImageNet: CBP with momentum; CIFAR: S&P with augmentation and best weights so far), the run ends with
    the uninterrupted run's numbers."""
    data = imagenet_file if name == "imagenet_methods" else cifar_file
    hparams = {"replacement_rate": 0.2, "maturity_threshold": 2} if run == "cbp" else {}
    spec = vision_job(name, run)
    spec["hparams"].update(hparams)
    uninterrupted = train(spec, data, progress=False)
    schedule = {"minutes": 0, "check_every": 5}
    assert crashed_run(spec, data, tmp_path / "job.ckpt", schedule, monkeypatch, 7)["step"] == 5
    resumed = train(spec, data, progress=False, checkpoints=scheduled(tmp_path / "job.ckpt", schedule, monkeypatch))
    pd.testing.assert_frame_equal(resumed, uninterrupted, check_exact=True)


# --- analysis, figures, workflow ------------------------------------------------------------------------------------

def tidy(run: str, values: dict[int, list[float]], metric_name: str = "task_accuracy") -> pd.DataFrame:
    """Hand-built tidy rows: {seed: value per task}, task t ending at x = 10 t."""
    rows = [{"paper": "p", "experiment": "e", "run": run, "method": "bp", "hparams": "{}", "synthetic_data": False,
             "seed": seed,
             "x": 10 * (t + 1), "x_unit": "epochs", "metric": metric_name, "layer": 0, "value": value}
            for seed, series in values.items() for t, value in enumerate(series)]
    return pd.DataFrame(rows)


def test_binned_and_relative_accuracy_by_hand():
    frame = pd.concat([tidy("bp", {0: [0.5, 0.7, 0.9], 1: [0.1, 0.3, float("nan")]}),
                       tidy("retrained", {0: [0.6, 0.6, 0.6], 1: [0.2, 0.2, 0.2]}),
                       tidy("bp", {0: [9.0]}, "dead_units_pct")])
    binned = binned_task_accuracy(frame, tasks_per_bin=2)
    bp = binned[binned.run == "bp"].set_index(["seed", "x"])["value"]
    assert bp.to_dict() == pytest.approx({(0, 2): 0.6, (0, 3): 0.9, (1, 2): 0.2, (1, 3): float("nan")},
                                         nan_ok=True)
    relative = relative_accuracy(frame).set_index(["run", "seed", "x"])["value"]
    assert set(relative.index.get_level_values("run")) == {"bp"}
    assert relative.loc["bp", 0].tolist() == pytest.approx([-0.1, 0.1, 0.3])
    assert (with_task_metrics(frame).x_unit == "tasks").sum() == len(binned_task_accuracy(frame)) + len(relative)


def test_joint_protocol_task_accuracy_gets_no_derived_rows():
    """The joint protocol's `task_accuracy` (x in iterations) is another measure: nothing is derived from it."""
    joint = tidy("sgd", {0: [0.5, 0.7]}).assign(x_unit="iterations")
    pd.testing.assert_frame_equal(with_task_metrics(joint), joint)


def test_figures_draw_from_tiny_runs(imagenet_file, cifar_file, tmp_path):
    """Figs. 1 and 2 from the aggregates of tiny runs of every run of their experiments."""
    from figures import draw_figure
    paths = {}
    for name, runs in (("imagenet_step_size", ["bp-lr_0.01", "linear"]), ("imagenet_methods", ["bp", "cbp"]),
                       ("incremental_cifar100", ["bp", "retrained", "head_reset"])):
        frames = []
        for run in runs:
            spec = vision_job("imagenet_methods" if name.startswith("imagenet") else name, run.split("-")[0],
                              seeds=(0,)) if name != "imagenet_step_size" else None
            if spec is None:
                experiment = deep_merge(PROTOCOL[name], {"benchmark_args": IMAGENET_ARGS, "epochs_per_task": 1,
                                                         "batch_size": 7})
                spec = job_spec(name, experiment, run, [0, 1], "cpu")
            frames.append(train(spec, imagenet_file if name.startswith("imagenet") else cifar_file, progress=False))
        tidy_frame = pd.concat(frames)
        tidy_frame["experiment"] = name
        paths[name] = tmp_path / f"{name}.parquet"
        aggregate(with_task_metrics(tidy_frame)).to_parquet(paths[name])
    for figure, names in (("dohare2024/fig1", ["imagenet_step_size", "imagenet_methods"]),
                          ("dohare2024/fig2", ["incremental_cifar100"])):
        draw_figure(figure, [str(paths[n]) for n in names], str(tmp_path / "f.pdf"), str(tmp_path / "f.png"), "test")
        assert (tmp_path / "f.png").stat().st_size > 10_000


def test_experiments_plan_and_a_smoke_job_runs_through_the_cli(imagenet_file, tmp_path):
    """The smoke scale with the vision experiments selected: validated, planned (steps, GPUs: none on the CPU), and
    one of its jobs run by `plasticity train --spec` on a synthetic file."""
    from plasticity.workflow import Workflow
    config = deep_merge(yaml.safe_load(open("config/config.yaml")), yaml.safe_load(open("config/smoke.yaml")))
    config["experiments"] = ["imagenet_step_size", "imagenet_methods", "incremental_cifar100"]
    workflow = Workflow(config, ".")
    assert {run for (name, run, _) in workflow.jobs if name == "incremental_cifar100"} == \
        {"bp", "head_reset", "retrained", "shrink_perturb", "cbp"}
    assert workflow.train_inputs("imagenet_methods", "cbp", "0-1")["data"] == "resources/imagenet32.npz"
    assert workflow._steps("imagenet_methods", "cbp") == 3 * 2 * 2
    spec = json.loads(workflow.train_spec("imagenet_methods", "cbp", "0-1"))
    assert spec["reset_head"] == "zero" and spec["hparams"]["momentum"] == 0.9
    head_reset = json.loads(workflow.train_spec("incremental_cifar100", "head_reset", "0-1"))
    assert head_reset["reset_head"] == "init" and "reset_network" not in head_reset
    spec["benchmark_args"].update(num_classes=6, train_per_class=7, test_per_class=3)
    out = tmp_path / "job.parquet"
    subprocess.run([sys.executable, "-m", "plasticity.cli", "train", "--spec", json.dumps(spec), "--out", str(out),
                    "--data", imagenet_file], check=True, capture_output=True)
    assert metric(pd.read_parquet(out), "task_accuracy").shape == (3, 2)
