"""The Snakemake workflow end to end: the smoke DAG, caching, targeted reruns and bad-input errors.

The workflow files (and plasticity/, whose sources are inputs of the training jobs) are copied into a temporary
directory and real `snakemake` runs there. One full run of the smoke scale is shared by the session (`smoke_run`
in conftest.py); the tests after it only dry-run (`-n`) against it, after changing the copied config or sources
and putting them back. The dry runs that need no finished run are in test_workflow_dry_runs.py, which the
other test worker takes while this one runs the DAG.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from figures import FIGURES
from workflow_helpers import SMOKE, assert_reruns_exactly, dry_run, edit_smoke, smoke_jobs, snakemake, train_outputs

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


def test_a_job_identical_to_another_experiments_relabels_its_results(smoke_run):
    """pmnist_methods' BP equals pmnist_step_size's BP at 0.003 but for its labels: its results are those rows,
    relabelled, and its provenance names the job that trained them."""
    trained = smoke_run / "results/runs/pmnist_step_size/bp-lr_0.003/seeds0-1.parquet"
    copy = smoke_run / "results/runs/pmnist_methods/bp/seeds0-1.parquet"
    relabelled = pd.read_parquet(copy)
    assert set(relabelled["experiment"]) == {"pmnist_methods"} and set(relabelled["run"]) == {"bp"}
    original = pd.read_parquet(trained).assign(experiment="pmnist_methods", run="bp")
    assert_frame_equal(relabelled, original, check_exact=True)
    provenance = json.loads(copy.with_suffix(".json").read_text())
    assert provenance["trained_as"] == "results/runs/pmnist_step_size/bp-lr_0.003/seeds0-1.parquet"
    assert provenance["spec"]["experiment"] == "pmnist_methods"


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
