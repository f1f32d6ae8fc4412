"""Checkpoints: a killed or preempted training job resumes and ends with exactly the numbers of an uninterrupted run
(on the CPU): in process for every method, under every protocol (a crash or a SIGTERM at a chosen step), as a
`plasticity train` process killed with SIGKILL or stopped with SIGTERM, and under Snakemake.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import plasticity.engine.checkpoint
import plasticity.engine.online
import plasticity.engine.tasks
from plasticity.benchmarks import build_benchmark
from plasticity.benchmarks.bit_flipping import BitFlipping
from plasticity.benchmarks.contexts import ContextBenchmark
from plasticity.models.mlp import SeedMLP
from plasticity.benchmarks.permuted_mnist import PermutedMnist
from plasticity.engine.checkpoint import Checkpoints, Terminated
from plasticity.config import deep_merge, expand_runs, job_spec, load_protocol
from plasticity.methods import METHODS
from plasticity.methods.cbp import ContinualBackprop
from plasticity.methods.shrink_perturb import Perturbation
from plasticity.engine.job import train
from test_tasks import CBP as TASKS_CBP, tasks_job
from workflow_helpers import copy_workflow, snakemake

REPO = Path(__file__).resolve().parents[1]
PROTOCOL = load_protocol(REPO / "config/experiments.yaml")
# CBP replaces a unit every few dozen steps with these, so that generate-and-test runs across the checkpoints.
FREQUENT_REPLACEMENT = {"replacement_rate": 0.01, "maturity_threshold": 5}


def bit_flipping(run_group: str, examples: int) -> dict:
    """The job spec of the first run of a bit-flipping run group, shortened, on seeds 0 and 1."""
    experiment = deep_merge(PROTOCOL["bit_flipping"],
                            {"examples": examples, "bin_size": 500, "benchmark_args": {"flip_every": 700}})
    if run_group == "cbp":
        experiment["runs"]["cbp"]["hparams"].update(FREQUENT_REPLACEMENT)
    run = next(run for run in expand_runs(experiment) if run == run_group or run.startswith(f"{run_group}-"))
    return job_spec("bit_flipping", experiment, run, [0, 1], "cpu")


def permuted_mnist_cbp() -> dict:
    """CBP with SGD on tiny permuted MNIST (5 tasks of 300 examples, probed), as the paper runs it: replacements so
    rare that the |weight| sums the CPU kernels keep run for hundreds of steps without a fresh sum."""
    experiment = deep_merge(PROTOCOL["pmnist_methods"], {
        "examples": 1500, "bin_size": 300, "model": {"width": 12}, "probe": {"size": 30},
        "benchmark_args": {"examples_per_task": 300}})
    return job_spec("pmnist_methods", experiment, "cbp", [0, 1], "cpu")


def bit_flipping_with(method: str, hparams: dict) -> dict:
    """A method that no bit-flipping run names (e.g. the stability-gap paper's baselines) on bit-flipping BP's run."""
    spec = bit_flipping("bp", 3000)
    spec["method"], spec["hparams"] = method, hparams
    return spec


def bit_flipping_cbp_adam() -> dict:
    """CBP with Adam (whose moments and step counts it resets) and accumulated replacements."""
    spec = bit_flipping("cbp", 3000)
    spec["hparams"].update(optimizer="adam", accumulate=True)
    return spec


def joint(experiment: str, run: str, iterations_per_context: int, **overrides) -> dict:
    """A joint-protocol (stability-gap) job on seeds 0 and 1, on a small network with small evaluation sets."""
    experiment_spec = deep_merge(PROTOCOL[experiment], deep_merge({
        "iterations_per_context": iterations_per_context, "batch_size": 16, "model": {"width": 16},
        "evaluation": {"samples_per_task": 50}}, overrides))
    return job_spec(experiment, experiment_spec, run, [0, 1], "cpu")


def tasks_cbp(optimizer: str) -> dict:
    """CBP (SGD or Adam) on kumar_cnn under the tasks protocol: 3 class-incremental synthetic tasks (3×16×16), each
    training on every class seen so far (4, 8 and 12 batches an epoch, 2 epochs: 48 steps), evaluated every epoch with validation and best-weights reloads, the head zeroed
    at task starts, a step-size schedule, probes, logits of unseen classes masked; units replaced every few steps."""
    run = {"method": "cbp", "hparams": {**TASKS_CBP["hparams"], "optimizer": optimizer}}
    return tasks_job(run=run, benchmark_args={"incremental": True}, mask_unseen_classes=True, reset_head="zero",
                     evaluation={"every": "epoch", "best_validation": True}, probe={"size": 8},
                     schedule={"epochs": [0, 1], "factors": [1.0, 0.5]})


def steps_per_task(spec: dict) -> int:
    if spec.get("protocol") == "joint":
        return spec["iterations_per_context"]
    if spec.get("protocol") == "tasks":
        task = build_benchmark(spec["benchmark"], spec["benchmark_args"], spec["seeds"], "cpu", None).task(0)
        return spec["epochs_per_task"] * math.ceil(task.train.inputs.shape[1] / spec["batch_size"])
    return spec["benchmark_args"]["examples_per_task"] // spec["batch_size"]


# spec, checkpoint schedule, and the steps at which the run crashes first and, resumed, again: every method of the
# online protocol, permuted MNIST checkpointed at task boundaries (every 300 examples), and the joint protocol
# (steps are iterations): NGM-SGD checkpointed at context boundaries and evaluating every task from its context's
# start (so a resume at a boundary adds the new task's evaluation set), G0-SGD every 256 iterations (mid-context),
# and baselines with optimizer state (momentum, Adam's moments) on the other two benchmarks; the tasks protocol
# (steps are batches): CBP on a conv net checkpointed at task boundaries, and with Adam every 3 steps (`check_every`
# stands in for CHECK_EVERY_STEPS), so that it resumes mid-epoch (a permutation half used, the epoch's sums, the
# task's best weights so far).
CASES = {
    **{run: (bit_flipping(run, 3000), {"minutes": 0}, (700, 1900))
       for run in ("bp", "adam", "l2", "shrink_perturb", "cbp")},
    "cbp_adam": (bit_flipping_cbp_adam(), {"minutes": 0}, (700, 1900)),
    **{method: (bit_flipping_with(method, {"lr": 0.01}), {"minutes": 0}, (700, 1900)) for method in ("sgd", "msgd")},
    "l2_init": (bit_flipping_with("l2_init", {"lr": 0.001, "weight_decay": 0.01}), {"minutes": 0}, (700, 1900)),
    # Checks every 300 steps, so saves fall between checks (mid-accumulation); threshold 0.5 recycles units.
    "redo": (bit_flipping_with("redo", {"lr": 0.001, "every": 300, "threshold": 0.5}), {"minutes": 0}, (700, 1900)),
    "permuted_mnist_cbp": (permuted_mnist_cbp(), {"minutes": None, "tasks": 1}, (400, 1000)),
    "joint_ngm_sgd": (joint("ngm_split_mnist", "ngm_sgd", 20, evaluation={"tasks": "seen"}),
                      {"minutes": None, "tasks": 1}, (30, 70)),
    "joint_g0_sgd": (joint("ngm_split_mnist", "g0_sgd", 120), {"minutes": 0}, (300, 550)),
    "joint_msgd": (joint("ngm_permuted_mnist", "msgd", 20), {"minutes": None, "tasks": 1}, (25, 50)),
    "joint_adam": (joint("ngm_rotated_mnist", "adam", 20), {"minutes": None, "tasks": 1}, (25, 45)),
    "tasks_cbp": (tasks_cbp("sgd"), {"minutes": None, "tasks": 1}, (11, 30)),    # saves at steps 8 and 24
    "tasks_cbp_adam": (tasks_cbp("adam"), {"minutes": 0, "check_every": 3}, (11, 23)),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Crash(Exception):
    """Stands for a kill: the process ends in the middle of a step."""


# The functions a protocol calls in each step, with the steps a call covers: the online loop's loss (step by step)
# or the kernels' many steps in one call (`SeedMLP.train_steps`: SGD or Adam at batch 1; CBP's, S&P's), the joint loop's batch draw,
# the tasks loop's training step.
def one_step(*args) -> int:
    return 1


PER_STEP_CALLS = {"online": [(plasticity.engine.online, "loss_and_output_grad", one_step),
                             (SeedMLP, "train_steps", lambda model, inputs, *rest: inputs.shape[1]),
                             (ContinualBackprop, "train_steps", lambda cbp, model, inputs, *rest: inputs.shape[1]),
                             (Perturbation, "train_steps", lambda noise, model, inputs, *rest: inputs.shape[1])],
                  "joint": [(ContextBenchmark, "next_batch", one_step)],
                  "tasks": [(plasticity.engine.tasks, "autograd_step", one_step)]}


def at_call(monkeypatch, call: int, action, spec: dict) -> None:
    """Run `action()` in the call that runs step `call` - 1 (counted from 0) of the next training run of `spec`."""
    done = 0

    def counting(original, steps_of):
        def call_counting(*args, **options):
            nonlocal done
            steps = steps_of(*args)
            if done < call <= done + steps:
                action()
            done += steps
            return original(*args, **options)
        return call_counting

    for owner, name, steps_of in PER_STEP_CALLS[spec.get("protocol", "online")]:
        monkeypatch.setattr(owner, name, counting(getattr(owner, name), steps_of))


def crash():
    raise Crash


def load(checkpoint: Path) -> dict:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)


def scheduled(checkpoint: Path, schedule: dict, monkeypatch) -> Checkpoints:
    """Checkpoints to `checkpoint` on a case's schedule; its `check_every`, if any, replaces CHECK_EVERY_STEPS."""
    schedule = dict(schedule)
    if "check_every" in schedule:
        monkeypatch.setattr(plasticity.engine.checkpoint, "CHECK_EVERY_STEPS", schedule.pop("check_every"))
    return Checkpoints(checkpoint, **schedule)


def crashed_run(spec: dict, mnist: str | None, checkpoint: Path, schedule: dict, monkeypatch, step: int) -> dict:
    """Train (resuming from `checkpoint` if it is there) until step `step` crashes; the checkpoint it left."""
    resumed_step = load(checkpoint)["step"] if checkpoint.exists() else 0
    at_call(monkeypatch, step - resumed_step + 1, crash, spec)
    with pytest.raises(Crash):
        train(spec, mnist, progress=False, checkpoints=scheduled(checkpoint, schedule, monkeypatch))
    monkeypatch.undo()
    return load(checkpoint)


def assert_same_state(got, expected, where: str = "state") -> None:
    """Equal to the last bit, NaN included, through nested dicts, lists and tuples."""
    if isinstance(expected, torch.Tensor):
        same = (got.dtype == expected.dtype and got.shape == expected.shape
                and torch.equal(got.isnan(), expected.isnan())
                and torch.equal(got.nan_to_num(), expected.nan_to_num()))
        assert same, f"{where} differs"
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys(), where
        for key in expected:
            assert_same_state(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), where
        for index, (mine, theirs) in enumerate(zip(got, expected)):
            assert_same_state(mine, theirs, f"{where}[{index}]")
    else:
        assert got == expected, where


def assert_units_were_replaced(saved: dict) -> None:
    """A unit's CBP age counts the steps since it was (re)initialised: below the step count once it was replaced."""
    assert any((age < saved["step"]).any() for age in saved["state"]["method"]["age"]), "no unit was replaced"


@pytest.mark.parametrize("case", sorted(CASES))
def test_resumed_run_equals_uninterrupted_run(case, tmp_path, monkeypatch, mnist_file):
    """Crashed twice and resumed twice, a run saves the same state (every tensor, to the last bit) as one that
    crashed once at the same step, and ends with the results of an uninterrupted run."""
    spec, schedule, (first_crash, second_crash) = CASES[case]
    mnist = mnist_file if spec["benchmark"] != "bit_flipping" else None
    uninterrupted = train(spec, mnist, progress=False)
    once = crashed_run(spec, mnist, tmp_path / "once.ckpt", schedule, monkeypatch, second_crash)

    checkpoint = tmp_path / "twice.ckpt"
    first = crashed_run(spec, mnist, checkpoint, schedule, monkeypatch, first_crash)
    assert 0 < first["step"] <= first_crash
    twice = crashed_run(spec, mnist, checkpoint, schedule, monkeypatch, second_crash)
    assert twice["step"] == once["step"] > first["step"] and twice["resumed_at"] == [first["examples"]]
    assert_same_state(twice["state"], once["state"])
    if "tasks" in schedule:
        assert twice["step"] % (schedule["tasks"] * steps_per_task(spec)) == 0, "saved at task boundaries"

    resumed = scheduled(checkpoint, schedule, monkeypatch)
    frame = train(spec, mnist, progress=False, checkpoints=resumed)
    assert resumed.resumed_at == [first["examples"], twice["examples"]]
    pd.testing.assert_frame_equal(frame, uninterrupted, check_exact=True)


def test_cbp_cases_replace_units(tmp_path, monkeypatch):
    """The CBP cases above do exercise generate-and-test (besides its utilities) before they are resumed."""
    for case in ("cbp", "cbp_adam", "tasks_cbp", "tasks_cbp_adam"):
        spec, schedule, (first_crash, _) = CASES[case]
        assert_units_were_replaced(crashed_run(spec, None, tmp_path / f"{case}.ckpt", schedule, monkeypatch,
                                               first_crash))


def test_every_method_is_checked():
    """The checkpoint protocol (docs/architecture.md) holds for every method: a new one gets a case in CASES."""
    missing = set(METHODS) - {spec["method"] for spec, _, _ in CASES.values()}
    assert not missing, f"add a resume case for method(s) {sorted(missing)} to CASES"


@pytest.mark.parametrize("case, step", [("cbp", 1000), ("joint_ngm_sgd", 37), ("tasks_cbp_adam", 14)])
def test_sigterm_saves_at_the_next_step_boundary_and_stops(case, step, tmp_path, monkeypatch, mnist_file):
    spec = CASES[case][0]
    mnist = mnist_file if spec["benchmark"] != "bit_flipping" else None
    uninterrupted = train(spec, mnist, progress=False)
    checkpoint = tmp_path / "job.ckpt"
    handler = signal.getsignal(signal.SIGTERM)
    at_call(monkeypatch, step, lambda: os.kill(os.getpid(), signal.SIGTERM), spec)
    with pytest.raises(Terminated):
        train(spec, mnist, progress=False, checkpoints=Checkpoints(checkpoint, minutes=None))
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGTERM) is handler, "the SIGTERM handler is put back"
    assert load(checkpoint)["step"] == step, f"the signal came during step {step - 1}: saved before step {step}"
    frame = train(spec, mnist, progress=False, checkpoints=Checkpoints(checkpoint, minutes=None))
    pd.testing.assert_frame_equal(frame, uninterrupted, check_exact=True)


def test_checkpoint_of_another_spec_or_unreadable_is_ignored_with_a_warning(tmp_path, monkeypatch, capsys):
    checkpoint = tmp_path / "job.ckpt"
    crashed_run(bit_flipping("l2", 2000), None, checkpoint, {"minutes": 0}, monkeypatch, 1500)
    spec = bit_flipping("bp", 2000)
    resumed = Checkpoints(checkpoint, minutes=None)
    frame = train(spec, progress=False, checkpoints=resumed)
    assert "written for a job spec that differs in hparams, method, run; starting afresh" in capsys.readouterr().err
    assert resumed.resumed_at == []
    pd.testing.assert_frame_equal(frame, train(spec, progress=False), check_exact=True)

    checkpoint.write_bytes(b"truncated")
    train(spec, progress=False, checkpoints=Checkpoints(checkpoint, minutes=None))
    assert f"ignoring unreadable {checkpoint}" in capsys.readouterr().err


@pytest.mark.parametrize("make", [
    lambda mnist: BitFlipping([0, 1], "cpu", flip_every=70),
    lambda mnist: PermutedMnist([0, 1], "cpu", examples_per_task=90, data_path=mnist),
], ids=["bit_flipping", "permuted_mnist"])
def test_benchmark_resumes_its_stream_exactly(make, mnist_file):
    """Saved anywhere (mid-chunk, at a chunk's end, after a peek across chunks), the stream goes on identically."""
    stream = make(mnist_file)
    stream.chunk = 50
    for batch in (1, 49, 20, 30):
        stream.next_batch(batch)
        resumed = make(mnist_file)
        resumed.chunk = 50
        resumed.load_state_dict(stream.state_dict())
        assert torch.equal(resumed.peek(120), stream.peek(120))
        for size in (7, 60, 3):
            for expected, got in zip(stream.next_batch(size), resumed.next_batch(size)):
                assert torch.equal(got, expected)


# --- `plasticity train` as a process -------------------------------------------------------------------------------

def start_training(spec: dict, out: Path, *options: str) -> subprocess.Popen:
    """`plasticity train` in a process of its own (one torch thread, as under Snakemake), its stderr in out.log."""
    command = [sys.executable, "-m", "plasticity.cli", "train", "--spec", json.dumps(spec), "--out", str(out),
               *options]
    with open(out.with_suffix(".log"), "a") as log:
        return subprocess.Popen(command, cwd=REPO, stderr=log, env=dict(os.environ, OMP_NUM_THREADS="1"))


def train_to_the_end(spec: dict, out: Path) -> pd.DataFrame:
    assert start_training(spec, out).wait(timeout=300) == 0, out.with_suffix(".log").read_text()
    return pd.read_parquet(out)


def wait_for_saves(checkpoint: Path, process: subprocess.Popen, saves: int) -> None:
    """Wait until the job (saving every 256 steps) has saved `checkpoint` `saves` times: each save replaces the
    file (a new inode, a new modification time). Waiting on progress, not on time, keeps most of the job ahead of
    the signal however fast the machine is."""
    deadline, seen = time.monotonic() + 120, set()
    while len(seen) < saves:
        assert process.poll() is None, f"the job ended after {len(seen)} saves"
        assert time.monotonic() < deadline, f"{len(seen)} saves of {checkpoint} after 2 minutes"
        try:
            status = checkpoint.stat()
            seen.add((status.st_ino, status.st_mtime_ns))
        except FileNotFoundError:
            pass
        time.sleep(0.005)


def interrupt_after_saves(spec: dict, out: Path, sig: int) -> int:
    """Start the job saving at every check, send `sig` after its third save; its exit code."""
    process = start_training(spec, out, "--checkpoint-minutes", "0")
    wait_for_saves(out.with_suffix(".ckpt"), process, saves=3)
    process.send_signal(sig)
    code = process.wait(timeout=120)
    assert not out.exists(), "the job finished before the signal"
    assert out.with_suffix(".ckpt").exists()
    return code


PROCESS_JOBS = {"bp": bit_flipping("bp", 6000), "cbp": bit_flipping("cbp", 4000)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROCESS_JOBS))
def test_job_killed_mid_run_resumes_to_the_same_results(name, tmp_path):
    spec, out = PROCESS_JOBS[name], tmp_path / "seeds0-1.parquet"
    assert interrupt_after_saves(spec, out, signal.SIGKILL) == -signal.SIGKILL
    saved = load(out.with_suffix(".ckpt"))
    assert 0 < saved["examples"] < spec["examples"]
    if spec["method"] == "cbp":
        assert_units_were_replaced(saved)
    frame = train_to_the_end(spec, out)
    pd.testing.assert_frame_equal(frame, train(spec, progress=False), check_exact=True)
    log = out.with_suffix(".log").read_text()
    assert f"resuming from {out.with_suffix('.ckpt')} at {saved['examples']} examples" in log
    assert json.loads(out.with_suffix(".json").read_text())["resumed_at_examples"] == [saved["examples"]]
    assert [path.name for path in tmp_path.iterdir() if path.suffix == ".ckpt"] == [], "checkpoints are removed"


@pytest.mark.slow
def test_sigterm_checkpoints_exits_non_zero_and_the_rerun_completes(tmp_path):
    spec, out = PROCESS_JOBS["cbp"], tmp_path / "seeds0-1.parquet"
    assert interrupt_after_saves(spec, out, signal.SIGTERM) == 128 + signal.SIGTERM
    assert "stopping after SIGTERM" in out.with_suffix(".log").read_text()
    pd.testing.assert_frame_equal(train_to_the_end(spec, out), train(spec, progress=False), check_exact=True)


# --- under Snakemake ------------------------------------------------------------------------------------------------

def training_process(workdir: Path) -> int | None:
    """The pid of the `plasticity train` process that runs in `workdir` (not the shell around it), if any."""
    for entry in Path("/proc").iterdir():
        try:
            if b"train" in (entry / "cmdline").read_bytes().split(b"\0") and \
                    os.readlink(entry / "cwd") == os.path.realpath(workdir):
                return int(entry.name)
        except OSError:
            continue
    return None


RESUME_SCALE = {"scale": "resume", "experiments": ["bit_flipping"], "seeds_per_job": 2, "device": "cpu",
                "checkpoint": {"minutes": 0, "tasks": None},
                "overrides": {"resume": {"bit_flipping": {"examples": 6000, "bin_size": 500, "seeds": 2}}}}
KILLED_JOB = "results/runs/bit_flipping/bp-activation_relu-lr_0.01/seeds0-1"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="finds the training process through /proc")
def test_killed_job_is_rerun_by_snakemake_and_resumes(tmp_path):
    workdir = copy_workflow(tmp_path)
    (workdir / "config/resume.yaml").write_text(yaml.safe_dump(RESUME_SCALE))
    arguments = [f"{KILLED_JOB}.parquet", "--cores", "1", "--configfile", "config/resume.yaml"]
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    run = subprocess.Popen([sys.executable, "-m", "snakemake", *arguments], cwd=workdir, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_saves(workdir / f"{KILLED_JOB}.ckpt", run, saves=3)
    os.kill(training_process(workdir), signal.SIGKILL)
    assert run.wait(timeout=120) != 0
    assert not (workdir / f"{KILLED_JOB}.parquet").exists() and (workdir / f"{KILLED_JOB}.ckpt").exists()

    planned = snakemake(workdir, "-n", *arguments).stdout
    assert f"output: {KILLED_JOB}.parquet" in planned, planned
    snakemake(workdir, *arguments)
    log = workdir / "logs/train" / Path(KILLED_JOB).relative_to("results/runs").with_suffix(".log")
    assert f"resuming from {KILLED_JOB}.ckpt" in log.read_text()
    assert json.loads((workdir / f"{KILLED_JOB}.json").read_text())["resumed_at_examples"]
    assert not (workdir / f"{KILLED_JOB}.ckpt").exists()

    other_schedule = {**RESUME_SCALE, "checkpoint": {"minutes": 5, "tasks": 2}}
    (workdir / "config/resume.yaml").write_text(yaml.safe_dump(other_schedule))
    assert "Nothing to be done" in snakemake(workdir, "-n", *arguments).stdout, "checkpoint settings rerun nothing"


# --- GPU -------------------------------------------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def on(device: str, spec: dict) -> dict:
    return {**spec, "device": device}


def assert_close_frames(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal but for float rounding: CPU and GPU sum in different orders (docs/architecture.md)."""
    pd.testing.assert_frame_equal(got.drop(columns="value"), expected.drop(columns="value"))
    torch.testing.assert_close(torch.tensor(got.value.values), torch.tensor(expected.value.values),
                               rtol=1e-4, atol=1e-5, equal_nan=True)


@needs_cuda
@pytest.mark.parametrize("case", ["bp", "permuted_mnist_cbp"])
def test_cuda_agrees_with_cpu_within_float_tolerance(case, mnist_file):
    """A few hundred steps: 500 of bit-flipping regression, 600 of permuted MNIST (probes included)."""
    spec, _, _ = CASES[case]
    mnist = mnist_file if spec["benchmark"] == "permuted_mnist" else None
    spec = {**spec, "examples": 600, "bin_size": 300} if mnist else {**spec, "examples": 500, "bin_size": 500}
    assert_close_frames(train(on("cuda", spec), mnist, progress=False), train(spec, mnist, progress=False))


@needs_cuda
@pytest.mark.parametrize("case", ["shrink_perturb", "cbp_adam"])   # method state with streams and Adam's steps
@pytest.mark.parametrize("first, then", [("cpu", "cuda"), ("cuda", "cpu")])
def test_checkpoint_resumes_on_another_device(case, first, then, tmp_path, monkeypatch):
    spec = {**CASES[case][0], "examples": 1000}
    checkpoint = tmp_path / "job.ckpt"
    crashed_run(on(first, spec), None, checkpoint, {"minutes": 0}, monkeypatch, 700)
    resumed = Checkpoints(checkpoint, minutes=0)
    frame = train(on(then, spec), progress=False, checkpoints=resumed)
    assert resumed.resumed_at == [512]
    assert_close_frames(frame, train(spec, progress=False))
