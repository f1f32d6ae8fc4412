"""Running the real workflow from tests: a copy of its files in a temporary directory, and `snakemake` there."""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from figures import FIGURES
from plasticity.config import block_label, expand_runs, load_protocol, resolve_experiments, seed_blocks
from plasticity.workflow import CATALOG_CACHE

REPO = Path(__file__).resolve().parents[1]
COPIED = ["Snakefile", "workflow", "config", "envs", "plasticity", "profiles"]  # envs: recorded in job metadata
SMOKE = "config/smoke.yaml"
# One catalog cache (plasticity.workflow.load_catalog) for every copy this test session makes: its entries are keyed
# by the hash of the library's sources and the runs, so copies with the same sources share them, and a copy whose
# sources a test edits gets entries of its own. Without it each copy would start the catalog's child process anew.
# `--config` values that let a paper- or vision-scale DAG build on a machine without the data sets that need an
# account (Imagenet32, mini-ImageNet): their synthetic stand-ins. For dry runs only.
WITHOUT_ACCOUNT_DATA = "data={imagenet32: synthetic, mini_imagenet: synthetic}"
SHARED_CATALOG = Path(tempfile.mkdtemp(prefix="plasticity-catalog-"))
atexit.register(shutil.rmtree, SHARED_CATALOG, ignore_errors=True)


def copy_workflow(workdir: Path) -> Path:
    """The workflow's files (plasticity/ included: its sources are inputs of the training jobs) under `workdir`."""
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, workdir / name)
    (workdir / CATALOG_CACHE).parent.mkdir(parents=True, exist_ok=True)
    (workdir / CATALOG_CACHE).symlink_to(SHARED_CATALOG, target_is_directory=True)
    return workdir


def snakemake(workdir: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake (this interpreter's) in `workdir`; the jobs find `plasticity` beside it on PATH."""
    env = dict(env or os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    result = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=env,
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        logs = "\n".join(f"--- {log}\n{log.read_text()[-2000:]}" for log in sorted(workdir.glob("logs/**/*.log")))
        pytest.fail(f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-6000:]}\n"
                    f"{result.stderr[-6000:]}\n{logs[-8000:]}")
    return result


def dry_run(workdir: Path, *args: str) -> list[tuple[str, list[str]]]:
    """The jobs of `snakemake -n` as (rule, outputs), checked against the dry run's own job-count table (the jobs
    of a group are listed indented under it)."""
    output = snakemake(workdir, *args, "-n", "--cores", "2", "--configfile", SMOKE).stdout
    jobs = []
    for line in output.splitlines():
        rule = re.match(r"^\s*(?:local)?rule (\w+):$", line)
        if rule:
            jobs.append((rule.group(1), []))
            continue
        outputs = re.match(r"^\s+output: (.*)$", line)
        if outputs and jobs:
            jobs[-1][1].extend(path.strip() for path in outputs.group(1).split(","))
    if "Nothing to be done" in output:
        assert not jobs, output
        return jobs
    total = re.search(r"^total\s+(\d+)$", output, re.MULTILINE)
    assert total, output
    assert len(jobs) == int(total.group(1)), output
    return jobs


def train_outputs(jobs) -> set[str]:
    return {path for rule, outputs in jobs if rule == "train" for path in outputs if path.endswith(".parquet")}


def outputs_of(jobs, rule: str) -> set[str]:
    return {path for name, outputs in jobs if name == rule for path in outputs}


def smoke_jobs(workdir: Path) -> dict[tuple[str, str, str], str]:
    """{(experiment, run, block): method} of the copied smoke config, as plasticity.config expands it."""
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    scale = yaml.safe_load((workdir / SMOKE).read_text())
    overrides = {**(config.get("overrides") or {}), **(scale.get("overrides") or {})}
    config = {**config, **scale, "overrides": overrides}
    experiments = resolve_experiments(config, load_protocol(workdir / "config/experiments.yaml"))
    return {(name, run_id, block_label(seeds)): run["method"]
            for name, experiment in experiments.items()
            for run_id, run in expand_runs(experiment).items()
            for seeds in seed_blocks(experiment["seeds"], config["seeds_per_job"])}


def downstream(experiments: set[str]) -> tuple[set[str], set[str]]:
    """The aggregate and figure outputs that depend on these experiments."""
    aggregates = {f"results/aggregate/{name}.parquet" for name in experiments}
    figures = {f"results/figures/{figure}.{ext}" for figure, module in FIGURES.items()
               if set(module.EXPERIMENTS) & experiments for ext in ("pdf", "png")}
    return aggregates, figures


def assert_reruns_exactly(jobs, train_keys: set[tuple[str, str, str]]):
    """Exactly these training jobs plus what depends on them: their aggregates, figures, the reproduction table
    (and a paper's own tables when a job of that paper reruns), `all`."""
    assert train_outputs(jobs) == {f"results/runs/{e}/{r}/seeds{b}.parquet" for e, r, b in train_keys}
    aggregates, figures = downstream({key[0] for key in train_keys})
    assert outputs_of(jobs, "aggregate") == aggregates
    assert outputs_of(jobs, "figure") == figures
    assert outputs_of(jobs, "reproduction") == {"results/reproduction.csv", "results/reproduction.md"}
    assert bool(outputs_of(jobs, "stability_gap_tables")) == any(key[0].startswith("ngm_") for key in train_keys)
    assert bool(outputs_of(jobs, "adalin_table")) == any(key[0].startswith("adalin_") for key in train_keys)
    assert {rule for rule, _ in jobs} <= {"train", "aggregate", "figure", "reproduction", "stability_gap_tables",
                                          "adalin_table", "all"}


def edit_smoke(change):
    """An edit of the copied smoke scale: `change(overrides of the smoke scale, whole config)`."""
    def edit(text):
        # Through JSON: YAML aliases (experiments sharing one override) become separate objects to edit.
        config = json.loads(json.dumps(yaml.safe_load(text)))
        change(config["overrides"]["smoke"], config)
        return yaml.safe_dump(config, sort_keys=False)
    return edit


def jobs_in_log(log: str, rule: str) -> list[str]:
    """The entries of the `rule` jobs (not local ones) a Snakemake log lists, each from its `rule` line on
    (indented when the job is part of a group job)."""
    return [block for block in re.split(r"\n(?=[ \t]*(?:local)?rule \w+:)", log)
            if re.match(rf"[ \t]*rule {rule}:", block)]
