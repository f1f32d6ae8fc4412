"""The Snakemake workflow end to end: the smoke DAG, caching, targeted reruns and bad-input errors.

The workflow files (and plasticity/, whose sources are inputs of the training jobs) are copied into a temporary
directory and real `snakemake` runs there. One full run of the smoke scale is shared by the session (`smoke_run`
in conftest.py); the tests after it only dry-run (`-n`) against it, after changing the copied config or sources
and putting them back.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from figures import FIGURES
from workflow_helpers import (SMOKE, WITHOUT_ACCOUNT_DATA, assert_reruns_exactly, copy_workflow, dry_run,
                              smoke_jobs, snakemake, train_outputs)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("smoke_dag")]   # see pyproject.toml


class edited:
    """Context manager: rewrite a copied file, and put the original bytes back afterwards."""

    def __init__(self, path: Path, edit):
        self.path, self.edit = path, edit

    def __enter__(self):
        self.original = self.path.read_bytes()
        self.path.write_text(self.edit(self.path.read_text()))
        return self.path

    def __exit__(self, *exc):
        self.path.write_bytes(self.original)


def edit_smoke(change):
    """An edit of the copied smoke scale: `change(overrides of the smoke scale, whole config)`."""
    def edit(text):
        # Through JSON: YAML aliases (experiments sharing one override) become separate objects to edit.
        config = json.loads(json.dumps(yaml.safe_load(text)))
        change(config["overrides"]["smoke"], config)
        return yaml.safe_dump(config, sort_keys=False)
    return edit


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


def test_smoke_dag_produces_every_figure_and_the_table(smoke_run):
    for figure in FIGURES:
        for ext in ("pdf", "png"):
            path = smoke_run / f"results/figures/{figure}.{ext}"
            assert path.stat().st_size > 0, path
    folder = smoke_run / "results/figures"   # one folder per paper, nothing else
    assert {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()} == {
        f"{figure}.{ext}" for figure in FIGURES for ext in ("pdf", "png")}
    table = (smoke_run / "results/reproduction.md").read_text()
    assert "smoke" in table
    assert (smoke_run / "results/reproduction.csv").stat().st_size > 0
    for experiment, run, block in smoke_jobs(smoke_run):
        stem = smoke_run / f"results/runs/{experiment}/{run}/seeds{block}"
        assert stem.with_suffix(".parquet").exists() and stem.with_suffix(".json").exists()
        assert (smoke_run / f"logs/train/{experiment}/{run}/seeds{block}.log").exists()


def test_report_has_figures_with_captions_and_the_table(smoke_run):
    snakemake(smoke_run, "--configfile", SMOKE, "--report", "report.html")
    report = (smoke_run / "report.html").read_text()
    for figure in FIGURES:
        assert f"{figure}.png" in report
    assert "reproduction.md" in report
    assert "Scale <strong>smoke</strong>" in report  # the figure caption, rendered with the run's config
    assert "seeds per run (paper: 100)" in report     # bit_flipping: 3 seeds at smoke scale, 100 in the paper
    assert "This report was built at scale <strong>smoke</strong>" in report


def test_second_run_has_nothing_to_do(smoke_run):
    assert dry_run(smoke_run) == []


def test_touching_a_source_without_changing_it_reruns_nothing(smoke_run):
    os.utime(smoke_run / "plasticity/methods/cbp.py")
    assert dry_run(smoke_run) == []


def test_changed_hyperparameter_reruns_only_that_methods_jobs(smoke_run):
    def set_replacement_rate(overrides, config):
        overrides["bit_flipping"]["runs"]["cbp"] = {"hparams": {"replacement_rate": 0.001}}

    before = smoke_jobs(smoke_run)
    with edited(smoke_run / SMOKE, edit_smoke(set_replacement_rate)):
        jobs = dry_run(smoke_run)
    expected = {key for key, method in before.items() if method == "cbp" and key[0] == "bit_flipping"}
    assert expected
    assert_reruns_exactly(jobs, expected)


def test_edited_method_source_reruns_only_that_methods_jobs(smoke_run):
    with edited(smoke_run / "plasticity/methods/cbp.py", lambda text: text + "\n# an edit\n"):
        jobs = dry_run(smoke_run)
    expected = {key for key, method in smoke_jobs(smoke_run).items() if method == "cbp"}
    assert {key[0] for key in expected} == {"bit_flipping", "pmnist_methods", "ngm_split_mnist", "imagenet_methods",
                                            "incremental_cifar100", "adalin_random_label_cifar10",
                                            "adalin_shuffled_cifar10", "adalin_class_split_cifar100",
                                            "adalin_incremental_cifar100"}
    assert_reruns_exactly(jobs, expected)


def test_edited_joint_protocol_source_reruns_only_joint_jobs(smoke_run):
    with edited(smoke_run / "plasticity/engine/joint.py", lambda text: text + "\n# an edit\n"):
        jobs = dry_run(smoke_run)
    expected = {key for key in smoke_jobs(smoke_run) if key[0].startswith("ngm_")}
    assert {key[0] for key in expected} == {"ngm_split_mnist", "ngm_rotated_mnist", "ngm_permuted_mnist",
                                            "ngm_split_cifar10", "ngm_domain_cifar100", "ngm_split_mini_imagenet"}
    assert_reruns_exactly(jobs, expected)


def test_stability_gap_outputs(smoke_run):
    for table in ("ngm2025/table1", "ngm2025/table2", "adalin2025/table"):
        for ext in ("csv", "md", "tex"):
            assert (smoke_run / f"results/tables/{table}.{ext}").stat().st_size > 0
    table = (smoke_run / "results/reproduction.md").read_text()
    assert "Split MNIST avg-SG of MSGD." in table and "0.267" in table


def test_edited_shared_engine_source_reruns_every_training_job(smoke_run):
    with edited(smoke_run / "plasticity/engine/common.py", lambda text: text + "\n# an edit\n"):
        jobs = dry_run(smoke_run)
    assert_reruns_exactly(jobs, set(smoke_jobs(smoke_run)))


def test_more_seeds_add_jobs_and_rerun_none(smoke_run):
    def more_seeds(overrides, config):
        overrides["pmnist_methods"]["seeds"] = 4  # smoke: 2 seeds per job, so one new block per run

    before = set(smoke_jobs(smoke_run))
    with edited(smoke_run / SMOKE, edit_smoke(more_seeds)):
        jobs = dry_run(smoke_run)
        after = set(smoke_jobs(smoke_run))
    added = after - before
    assert added and all(block == "2-3" for _, _, block in added)
    assert_reruns_exactly(jobs, added)
    assert not any((smoke_run / path).exists() for path in train_outputs(jobs))


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
