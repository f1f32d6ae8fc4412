"""Dry runs of the workflow on a fresh copy, which need no finished run: the other scales' DAGs, single targets,
bad configs and bad targets stopping with one clear message, and the linter. They are not in the smoke DAG's test
group (test_workflow.py), so the other test worker takes them while that one runs the DAG."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from workflow_helpers import SMOKE, WITHOUT_ACCOUNT_DATA, copy_workflow, edit_smoke, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/paper.yaml", "config/vision.yaml"])
def test_other_scales_dry_run(workflow_copy, configfile):
    result = snakemake(workflow_copy, "-n", "--cores", "2", "--configfile", configfile, "--config", WITHOUT_ACCOUNT_DATA)
    assert "train" in result.stdout and "reproduction" in result.stdout


def test_one_stability_gap_figure_target(workflow_copy):
    result = snakemake(workflow_copy, "-n", "--cores", "2", "results/figures/ngm2025/fig3.pdf")
    assert "results/runs/ngm_split_mnist/" in result.stdout and "results/runs/ngm_rotated_mnist/" not in result.stdout
    assert "results/runs/bit_flipping/" not in result.stdout
    result = snakemake(workflow_copy, "-n", "--cores", "2", "results/figures/ngm2025/fig2.pdf")
    assert set(re.findall(r"^(?:local)?rule (\w+):$", result.stdout, re.MULTILINE)) == {"figure"}


def test_one_figure_target(workflow_copy):
    result = snakemake(workflow_copy, "-n", "--cores", "2", "results/figures/dohare2024/ext_data_fig2.pdf")
    ran = set(re.findall(r"^\s*(?:local)?rule (\w+):$", result.stdout, re.MULTILINE))
    assert ran <= {"train", "aggregate", "figure"} and "figure" in ran
    assert "pmnist" not in result.stdout


BAD_CONFIGS = {
    "unknown method": (lambda o, c: o["pmnist_methods"].update(runs={"bp": {"method": "sgd_typo"}}),
                       ["'sgd_typo'", "'pmnist_methods'", "cbp"]),
    "unknown experiment": (lambda o, c: c.update(experiments=["bit_flipping", "nonexistent_experiment"]),
                           ["'nonexistent_experiment'", "bit_flipping"]),
    "unknown override": (lambda o, c: o.update(bit_flipp={"seeds": 1}), ["'bit_flipp'"]),
    "schema: seeds_per_job 0": (lambda o, c: c.update(seeds_per_job=0), ["seeds_per_job", "0", "minimum"]),
    "schema: checkpoint minutes -1": (lambda o, c: c.update(checkpoint={"minutes": -1, "tasks": None}),
                                      ["checkpoint.minutes", "-1", "minimum"]),
    "schema: width 0": (lambda o, c: o["bit_flipping"].update(model={"width": 0}),
                        ["'bit_flipping'", "model.width", "minimum"]),
    "unknown hyperparameter": (
        lambda o, c: o["bit_flipping"].update(runs={"cbp": {"hparams": {"replacment_rate": 0.1}}}),
        ["'replacment_rate'", "'cbp'", "replacement_rate"]),
    "unknown benchmark argument": (lambda o, c: o["bit_flipping"].update(benchmark_args={"num_inputz": 3}),
                                   ["'num_inputz'", "'bit_flipping'", "num_inputs"]),
    "unknown benchmark": (lambda o, c: o["bit_flipping"].update(benchmark="bit_flopping"),
                          ["'bit_flopping'", "permuted_mnist"]),
    "online benchmark under the joint protocol": (
        lambda o, c: o["ngm_split_mnist"].update(benchmark="permuted_mnist", benchmark_args={}),
        ["'permuted_mnist'", "'ngm_split_mnist'", "'joint'", "split_mnist"]),
    "schema: joint protocol without iterations": (
        lambda o, c: o["ngm_split_mnist"].update(iterations_per_context=0),
        ["'ngm_split_mnist'", "iterations_per_context", "minimum"]),
    "schema: evaluation tasks": (   # (the smoke scale's ngm_* overrides are one YAML alias: the first one reports)
        lambda o, c: o["ngm_split_mnist"].update(evaluation={"samples_per_task": 10, "tasks": "some"}),
        ["'ngm_split_mnist'", "evaluation.tasks", "'some'"]),
    "schema: resources": (lambda o, c: o["bit_flipping"].update(resources={"gpus": 1}),
                          ["'bit_flipping'", "resources", "'gpus'"]),
    "unknown activation": (lambda o, c: o["bit_flipping"].update(model={"activation": "adalin_sigmoid"}),
                           ["'adalin_sigmoid'", "'bit_flipping'", "adalin_relu", "prelu"]),
}


def assert_one_clear_message(result, words):
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output and 'File "' not in output, output
    errors = [line for line in output.splitlines() if line.startswith("Configuration error:")]
    assert len(errors) == 1, output
    for word in words:
        assert word in errors[0], (word, errors[0])


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_stops_with_one_clear_message(workflow_copy, case):
    change, words = BAD_CONFIGS[case]
    name = re.sub(r"\W+", "_", case)
    bad = workflow_copy / f"config/bad_{name}.yaml"
    bad.write_text(edit_smoke(change)((workflow_copy / SMOKE).read_text()))
    try:
        result = snakemake(workflow_copy, "-n", "--cores", "1", "--configfile", str(bad), check=False)
    finally:
        bad.unlink()
    assert_one_clear_message(result, words)


@pytest.mark.parametrize("target, words", [
    ("results/figures/no_such_figure.pdf", ["'no_such_figure'", "dohare2024/ext_data_fig2", "ngm2025/fig3"]),
    ("results/figures/ngm2025/fig9.pdf", ["'ngm2025/fig9'", "ngm2025/fig5", "adalin2025/alpha"]),
    ("results/figures/fig3.pdf", ["'fig3'", "did you mean ngm2025/fig3?", "dohare2024/ext_data_fig4"]),
    ("results/runs/bit_flipping/no_such_run/seeds0-1.parquet", ["'no_such_run'", "cbp"]),
    ("results/runs/bit_flipping/cbp/seeds0-5.parquet", ["'0-5'", "0-1"]),
])
def test_bad_target_stops_with_one_clear_message(workflow_copy, target, words):
    result = snakemake(workflow_copy, target, "-n", "--cores", "1", "--configfile", SMOKE, check=False)
    assert_one_clear_message(result, words)


def test_lint_is_clean(workflow_copy):
    result = snakemake(workflow_copy, "--lint")
    assert "Congratulations" in result.stdout + result.stderr
