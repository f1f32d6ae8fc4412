"""README, "Adding a method", followed step by step on a copy of the smoke run (workflow, library and results).

A method file `my_sgd` (plain SGD under another name) and a run `my_method` of it in three experiments of
config/experiments.yaml (one of each paper; AdaLin's MNIST and CIFAR experiments share their runs, so all get it).
Only the new jobs and what depends on them run; the new run is then drawn in every figure of its experiments that compares
runs (EVERY_RUN), by its run id, and is a row of its papers' tables; a claim about it, added to config/claims.yaml,
is a row of the reproduction table (the paper's claims do not name it, so without one it is not there).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from figures import FIGURES, load_aggregates
from plasticity.analysis.reproduction import NOT_REPRODUCED, REPRODUCED
from workflow_helpers import SMOKE, assert_reruns_exactly, dry_run, smoke_jobs, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("smoke_dag")]   # see pyproject.toml

METHOD_FILE = '''"""My method: plain SGD, under a name of its own."""
import torch

from plasticity.methods import Learner, register


@register("my_sgd")
def build(model, seeds, lr: float) -> Learner:
    return Learner(torch.optim.SGD([param for param in model.parameters() if param.requires_grad], lr=lr))
'''
RUN = "    my_method: {method: my_sgd, hparams: {lr: 0.01}}\n"
EXPERIMENTS = ["pmnist_methods", "ngm_split_mnist", "adalin_pmnist"]
# AdaLin's other experiments take adalin_pmnist's runs (a YAML anchor), so they get the run too
WITH_RUN = EXPERIMENTS + ["adalin_random_label_mnist", "adalin_random_label_cifar10", "adalin_shuffled_cifar10",
                          "adalin_class_split_cifar100"]
CLAIM = """
- id: my_method_beats_bp
  claim: My method keeps a higher online accuracy than BP on permuted MNIST.
  paper_value: "(not in the paper)"
  source: my experiment
  experiment: pmnist_methods
  test: {kind: compare_average, run_a: my_method, run_b: bp, metric: online_accuracy, direction: greater}
"""


def add_run(text: str, experiment: str) -> str:
    """config/experiments.yaml with RUN as the first run of `experiment`, written in as one would by hand."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{experiment}:"))
    runs = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("  runs:"))
    return "".join(lines[:runs + 1] + [RUN] + lines[runs + 1:])


@pytest.fixture(scope="module")
def added(smoke_run, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("adding") / "repository"
    shutil.copytree(smoke_run, workdir, ignore=shutil.ignore_patterns("report.html", "__pycache__"))
    before = set(smoke_jobs(workdir))
    # 1. the method file (a package module: registered without editing a list)
    (workdir / "plasticity/methods/my_sgd.py").write_text(METHOD_FILE)
    # 2. a run of it in experiments
    protocol = workdir / "config/experiments.yaml"
    text = protocol.read_text()
    for experiment in EXPERIMENTS:
        text = add_run(text, experiment)
    protocol.write_text(text)
    # 3. no state of its own (torch.optim.SGD keeps its state in the optimizer): nothing to add for checkpoints.
    # 4. `snakemake -n` lists the new jobs and what depends on them, nothing else.
    new = set(smoke_jobs(workdir)) - before
    assert {(experiment, run) for experiment, run, _ in new} == {(name, "my_method") for name in WITH_RUN}
    assert_reruns_exactly(dry_run(workdir), new)
    # 5. a claim about it
    with (workdir / "config/claims.yaml").open("a") as claims:
        claims.write(CLAIM)
    # The jobs import `plasticity` from this copy, as they do from an editable install of one's repository.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(workdir), os.environ.get("PYTHONPATH")]))}
    snakemake(workdir, "--cores", "2", "--configfile", SMOKE, env=env)
    return workdir


def test_every_figure_that_compares_runs_draws_it(added):
    aggregates = load_aggregates([str(added / f"results/aggregate/{name}.parquet") for name in WITH_RUN])
    for name, module in FIGURES.items():
        if not set(module.EXPERIMENTS) & set(WITH_RUN):
            continue
        assert (added / f"results/figures/{name}.pdf").stat().st_mtime > \
            (added / "results/figures/ngm2025/fig2.pdf").stat().st_mtime, f"{name} was not redrawn"
        if getattr(module, "EVERY_RUN", False):
            fig = module.draw({experiment: aggregates[experiment] for experiment in module.EXPERIMENTS}, "smoke")
            labels = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
            assert "my_method" in labels, (name, labels)


def test_the_papers_tables_have_a_row_of_it(added):
    for table in ("table1", "table2"):
        rows = pd.read_csv(added / f"results/tables/ngm2025/{table}.csv")
        assert rows.loc[rows["run"] == "my_method", ["experiment", "method"]].values.tolist() == [
            ["ngm_split_mnist", "my_method"]]
    rows = pd.read_csv(added / "results/tables/adalin2025/table.csv")
    assert sorted(rows.loc[rows["variant"] == "my_method", "experiment"]) == sorted(
        name for name in WITH_RUN if name.startswith("adalin_"))
    assert "| my_method " in (added / "results/tables/adalin2025/table.md").read_text()


def test_the_reproduction_table_has_its_claim(added):
    table = pd.read_csv(added / "results/reproduction.csv").set_index("claim_id")
    assert table.index[-1] == "my_method_beats_bp"
    assert table.loc["my_method_beats_bp", "verdict"] in (REPRODUCED, NOT_REPRODUCED)
    assert table.loc["my_method_beats_bp", "our_value"].startswith("my_method ")
