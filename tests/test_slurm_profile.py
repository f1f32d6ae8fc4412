"""profiles/slurm in dry runs, which need no Slurm: every training job's resources (GPUs, runtime, memory) and which
jobs are grouped, for the paper scale and for an experiment's own `resources`. Not in the smoke DAG's test group
(test_slurm.py), so the other test worker takes them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from plasticity.config import load_protocol
from workflow_helpers import WITHOUT_ACCOUNT_DATA, copy_workflow, jobs_in_log, snakemake

pytestmark = pytest.mark.slow


def dry_run_resources(workdir: Path, *args: str) -> list[tuple[str, dict[str, str], bool]]:
    """(experiment, resources, grouped) of each training job that `snakemake -n` lists through profiles/slurm."""
    output = snakemake(workdir, "-n", "--workflow-profile", "profiles/slurm", *args).stdout
    jobs = jobs_in_log(output, "train")
    assert len(jobs) == int(re.search(r"^train\s+(\d+)$", output, re.MULTILINE).group(1))
    return [(re.search(r"wildcards: experiment=(\w+)", job).group(1),
             dict(re.findall(r"(\w+)=([^,\s]*)", re.search(r"resources: (.*)", job).group(1))),
             job.startswith(" "))  # a job of group train_cpu is indented under its group job
            for job in jobs]


def test_paper_scale_dry_run_with_the_slurm_profile(tmp_path):
    """Needs no Slurm: the whole paper-scale DAG through profiles/slurm, every training job with its resources,
    GPUs as its experiment asks, the CPU jobs of an hour or less grouped."""
    workdir = copy_workflow(tmp_path)
    protocol = load_protocol(workdir / "config/experiments.yaml")
    jobs = dry_run_resources(workdir, "--configfile", "config/paper.yaml", "--config", WITHOUT_ACCOUNT_DATA)
    assert {experiment for experiment, _, _ in jobs} == set(protocol)
    for experiment, resources, grouped in jobs:
        gpus = (protocol[experiment].get("resources") or {}).get("gpu", 0)
        short = int(resources["runtime"]) <= 60
        assert (int(resources["gpu"]), grouped) == (gpus, gpus == 0 and short), (experiment, resources)
        assert int(resources["runtime"]) >= 10 and int(resources["mem_mb"]) > 1000, (experiment, resources)


def test_gpu_resources_of_an_experiment_reach_slurm(tmp_path):
    """`gpu` + `gpu_model`, or `gres`, and `max_runtime` from an experiment's `resources`; none with device: cpu."""
    workdir = copy_workflow(tmp_path)
    scale = workdir / "config/gpus.yaml"
    # The paper's permuted-MNIST experiments with overrides, beside a CPU one and a vision one that keep their
    # protocol's resources (the whole paper-scale DAG is the test above)
    experiments = ["bit_flipping", "pmnist_step_size", "pmnist_rate", "pmnist_width", "pmnist_methods",
                   "incremental_cifar100"]
    scale.write_text(yaml.safe_dump({"scale": "gpus", "device": "auto", "experiments": experiments, "overrides": {"gpus": {
        "pmnist_width": {"resources": {"gpu": 2, "gpu_model": "a100"}},
        "pmnist_methods": {"resources": {"gres": "gpu:h100:1", "max_runtime": 60}}}}}))
    expected = {"pmnist_step_size": ("1", None, ""), "pmnist_rate": ("1", None, ""),
                "pmnist_width": ("2", "a100", ""), "pmnist_methods": ("0", None, "gpu:h100:1")}
    protocol = load_protocol(workdir / "config/experiments.yaml")
    jobs = dry_run_resources(workdir, "--configfile", "config/paper.yaml", str(scale), "--config", WITHOUT_ACCOUNT_DATA)
    assert {experiment for experiment, _, _ in jobs} == set(experiments)
    for experiment, resources, grouped in jobs:
        # the other experiments: their protocol's GPUs (the vision ones 1, the rest CPU jobs)
        own = str((protocol[experiment].get("resources") or {}).get("gpu", 0))
        gpus = expected.get(experiment, (own, None, ""))
        assert (resources["gpu"], resources.get("gpu_model"), resources["gres"]) == gpus, experiment
        assert grouped == (gpus[0] == "0" and not gpus[2] and int(resources["runtime"]) <= 60), experiment
    # every job that trains runs to its experiment's max_runtime; BP, which relabels pmnist_step_size's, the least
    assert {resources["runtime"] for experiment, resources, _ in jobs if experiment == "pmnist_methods"} == {"60", "10"}
    cpu = dry_run_resources(workdir, "--configfile", "config/paper.yaml", str(scale), "--config", "device=cpu",
                            WITHOUT_ACCOUNT_DATA)
    assert {(resources["gpu"], resources["gres"]) for _, resources, _ in cpu} == {("0", "")}
    assert all(grouped == (int(resources["runtime"]) <= 60) for _, resources, grouped in cpu)
