"""Bad values stop the workflow before any job runs, with one line naming the value and what is valid; a seed that
diverges is recorded as diverged, never a crash. Through real `snakemake` on a copy of the workflow."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from workflow_helpers import SMOKE, copy_workflow, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, mnist_file):
    """A copy of the workflow with the session's materialised MNIST in place (the mnist rule need not run)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("bad_input"))
    (workdir / "resources").mkdir()
    for suffix in ("", ".source.json"):
        shutil.copy2(f"{mnist_file}{suffix}", workdir / f"resources/mnist.npz{suffix}")
    return workdir


def with_smoke_overrides(workdir, change) -> str:
    """A copy of the smoke scale with `change(overrides)` applied; returns its path."""
    config = json.loads(json.dumps(yaml.safe_load((workdir / SMOKE).read_text())))
    change(config["overrides"]["smoke"])
    path = workdir / "config/bad.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def configuration_error(result) -> str:
    """The run's one `Configuration error:` line (and no traceback)."""
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("Configuration error:")]
    assert len(errors) == 1, output
    return errors[0]


BAD_VALUES = {
    "learning rate <= 0": (lambda o: o["bit_flipping"].update(runs={"bp": {"hparams": {"lr": -1}}}),
                           ["hparams.lr", "-1", "'bit_flipping'", "minimum"]),
    "rate outside [0, 1]": (lambda o: o["bit_flipping"].update(runs={"cbp": {"hparams": {"replacement_rate": 2}}}),
                            ["hparams.replacement_rate", "2", "maximum"]),
    "negative width": (lambda o: o["pmnist_methods"].update(runs={"bp": {"model": {"width": -3}}}),
                       ["model.width", "-3", "'pmnist_methods'"]),
    "unknown architecture": (lambda o: o["pmnist_methods"].update(model={"arch": "resnet19"}),
                             ["'resnet19'", "resnet18", "lop_convnet", "'pmnist_methods'"]),
    "setting the architecture does not take": (
        lambda o: o["ngm_split_mnist"].update(model={"arch": "mlp"}),
        ["'init'", "'mlp'", "'ngm_split_mnist'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_value_stops_before_any_job(workdir, case):
    change, words = BAD_VALUES[case]
    result = snakemake(workdir, "-n", "--cores", "1", "--configfile", with_smoke_overrides(workdir, change),
                       check=False)
    line = configuration_error(result)
    for word in words:
        assert word in line, (word, line)


def test_model_that_does_not_fit_the_benchmark_stops_before_any_job(workdir):
    protocol = workdir / "config/experiments.yaml"
    original = protocol.read_text()
    experiments = yaml.safe_load(original)
    experiments["pmnist_methods"]["model"] = {"arch": "lop_convnet"}     # MNIST's flat 784 pixels into a conv net
    for run in experiments["pmnist_methods"]["runs"].values():
        run.pop("model", None)
    protocol.write_text(yaml.safe_dump(experiments, sort_keys=False))
    scale = with_smoke_overrides(workdir, lambda overrides: overrides["pmnist_methods"].pop("model"))
    try:
        result = snakemake(workdir, "-n", "--cores", "1", "--configfile", scale, check=False)
    finally:
        protocol.write_text(original)
    line = configuration_error(result)
    for word in ("lop_convnet", "(784,)", "'pmnist_methods'"):
        assert word in line, (word, line)


def test_diverging_seeds_are_recorded_not_crashed_on(workdir):
    """Permuted MNIST at lr 1000 (its probes take the SVD of non-finite features) and joint training at lr 1e6."""
    def diverge(overrides):
        overrides["pmnist_methods"]["runs"] = {"bp": {"hparams": {"lr": 1000.0}}}
        overrides["ngm_split_mnist"] = {**overrides["ngm_split_mnist"],
                                        "runs": {"sgd": {"hparams": {"lr": 1.0e6}}}}
    targets = ["results/runs/pmnist_methods/bp/seeds0-1.parquet", "results/runs/ngm_split_mnist/sgd/seeds0-1.parquet"]
    snakemake(workdir, *targets, "--cores", "2", "--configfile", with_smoke_overrides(workdir, diverge))
    for target in targets:
        frame = pd.read_parquet(workdir / target)
        diverged = frame[frame.metric == "diverged"]
        assert (diverged.value == 1).all(), target
        for seed, at in frame[frame.metric == "diverged_at"].set_index("seed").value.items():
            accuracy = frame[frame.metric.isin(["online_accuracy", "test_accuracy"]) & (frame.seed == seed)]
            after = accuracy[accuracy.x >= at]
            assert len(after) and after.value.isna().all(), (target, seed)
            assert accuracy[accuracy.x < at].value.notna().all(), (target, seed)
