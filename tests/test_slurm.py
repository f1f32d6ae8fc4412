"""The workflow on a real one-node Slurm cluster, through profiles/slurm: every training job of the smoke scale goes
through sbatch, the cheap rules run locally, and the results equal a local run's. The profile's resources in dry
runs, which need no cluster, are in test_slurm_profile.py.

The cluster (munged, slurmctld, slurmd) runs as root from a temporary directory, with its own ports, munge key and
socket, so that it leaves any other Slurm on the machine alone; it is stopped through its pid files afterwards.
Debian's slurm-wlm and munge are installed with apt-get when missing (as on CI). Skipped where that cannot work.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from workflow_helpers import SMOKE, copy_workflow, jobs_in_log, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("smoke_dag")]   # see pyproject.toml

PARTITION = "plasticity"
BINARIES = ["munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "scancel"]
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])

SLURM_CONF = """\
ClusterName=plasticitytest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# The node as declared here, not as detected: twice the CPUs (grouped jobs spend much of their time starting
# Snakemake and srun, which overlaps), memory enough for any request (not enforced: CR_CPU, no cgroups), and two
# GPUs that are only names (/dev/null, /dev/zero) for the GPU requests to be granted.
SlurmdParameters=config_overrides
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
# Finished jobs stay visible to squeue (the status command without accounting) and scontrol for 10 minutes.
MinJobAge=600
ReturnToService=2
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
NodeName=localhost CPUs={cpus} RealMemory=64000 Gres=gpu:2 State=UNKNOWN
PartitionName={partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
GRES_CONF = "NodeName=localhost Name=gpu File=/dev/null\nNodeName=localhost Name=gpu File=/dev/zero\n"


def which(name: str) -> str | None:
    return shutil.which(name, path=SBIN_PATH)


def install_slurm():
    """Debian's slurm-wlm and munge, unless present; skip where they cannot be installed or run."""
    if os.geteuid() != 0:
        pytest.skip("a local Slurm cluster needs root (munged, slurmctld and slurmd run as root)")
    if all(which(name) for name in BINARIES):
        return
    if not which("apt-get"):
        pytest.skip("Slurm is not installed and there is no apt-get to install slurm-wlm and munge")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "slurm-wlm", "munge"]
    result = subprocess.run(install, env=env, capture_output=True, text=True)
    if result.returncode != 0:  # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
    missing = [name for name in BINARIES if not which(name)]
    assert not missing, f"apt-get install slurm-wlm munge left {missing} missing:\n{result.stdout}{result.stderr}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def stop_daemon(pid_file: Path, root: Path):
    """SIGTERM the daemon named in `pid_file` (if it is still the one started from `root`), SIGKILL it if it is
    still there after 20 s."""
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])

    def gone():
        try:
            return str(root) not in Path(f"/proc/{pid}/cmdline").read_text()
        except OSError:
            return True

    if gone():
        return
    os.kill(pid, signal.SIGTERM)
    try:
        wait_for(gone, f"pid {pid} ({pid_file.name}) to exit", timeout=20)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)


def start_daemon(command: list[str], env: dict[str, str], log: Path):
    """Run a daemon's start command (it forks into the background); fail with its log if it does not start."""
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed: {result.stdout}{result.stderr}\n{log.read_text()[-3000:]}"
                    if log.exists() else f"{' '.join(command)} failed: {result.stdout}{result.stderr}")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> dict[str, str]:
    """A running one-node cluster; yields the environment that points Slurm's commands at it."""
    install_slurm()
    root = tmp_path_factory.mktemp("slurm")
    for name in ("state", "spool", "munge"):
        (root / name).mkdir(mode=0o700)
    key = root / "munge/munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    munge_socket = root / "munge/munge.socket"
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(root=root, ctld_port=free_port(), d_port=free_port(),
                                      cpus=2 * os.cpu_count(), munge_socket=munge_socket, partition=PARTITION))
    (root / "gres.conf").write_text(GRES_CONF)
    # The plugin starts each job with a nested srun, from an environment without SLURM_* variables: srun would read
    # only the system's /etc/slurm/slurm.conf. This srun, first on PATH, reads this cluster's.
    shims = root / "bin"
    shims.mkdir()
    (shims / "srun").write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {which("srun")} "$@"\n')
    (shims / "srun").chmod(0o755)
    env = dict(os.environ, SLURM_CONF=str(conf), PATH=os.pathsep.join([str(shims), SBIN_PATH]))
    pid_files = [root / "slurmd.pid", root / "slurmctld.pid", root / "munge/munged.pid"]  # the order to stop them

    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")  # pytest then still runs the teardown below

    on_sigterm = signal.signal(signal.SIGTERM, interrupted)  # e.g. from `timeout pytest ...`
    try:
        start_daemon([which("munged"), "--force", f"--socket={munge_socket}", f"--key-file={key}",
                      f"--pid-file={root}/munge/munged.pid", f"--log-file={root}/munge/munged.log",
                      f"--seed-file={root}/munge/munged.seed"], env, root / "munge/munged.log")
        start_daemon([which("slurmctld"), "-f", str(conf)], env, root / "slurmctld.log")
        start_daemon([which("slurmd"), "-f", str(conf), "-N", "localhost"], env, root / "slurmd.log")

        def node_idle():
            state = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-o", "%t"], env=env, capture_output=True,
                                   text=True)
            return state.stdout.strip() == "idle"

        try:
            wait_for(node_idle, "the Slurm node to come up idle")
        except TimeoutError as error:
            logs = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in sorted(root.glob("*.log")))
            pytest.fail(f"{error}\n{logs}")
        yield env
    finally:
        if (root / "slurmctld.pid").exists():
            subprocess.run(["scancel", "--partition", PARTITION], env=env, capture_output=True)
        for pid_file in pid_files:
            stop_daemon(pid_file, root)
        signal.signal(signal.SIGTERM, on_sigterm)


def slurm_jobs(env) -> dict[str, dict[str, str]]:
    """Every job slurmctld knows: {job id: its fields as `scontrol show job --oneliner` prints them}."""
    out = subprocess.run(["scontrol", "show", "job", "--oneliner"], env=env, capture_output=True, text=True,
                         check=True).stdout
    jobs = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" in fields:
            jobs[fields["JobId"]] = fields
    return jobs


def outputs_in_log(log: str, rule: str) -> set[str]:
    """The outputs of the `rule` jobs a Snakemake log lists."""
    return {path.strip() for block in jobs_in_log(log, rule)
            for path in re.search(r"^\s+output: (.*)$", block, re.MULTILINE).group(1).split(",")}


def run_on_slurm(workdir: Path, env: dict[str, str], *args: str) -> tuple[str, dict[str, str]]:
    """Snakemake with profiles/slurm, its site placeholders overridden for this cluster (no accounts, so squeue
    for the job status); returns its output and {Slurm job id: that job's log}."""
    result = snakemake(
        workdir, "--workflow-profile", "profiles/slurm", "--configfile", SMOKE,
        "--default-resources", f"slurm_partition={PARTITION}", "--slurm-no-account",
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs", *args, env=env)
    output = result.stdout + result.stderr
    return output, dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+?)\)", output))


# The smoke DAG through Slurm for the two smallest experiments of the two protocols that read MNIST (online, joint):
# every path through the profile (grouped CPU submissions, the data rule and the cheap rules run here), in a
# fraction of the whole smoke scale's time.
SLURM_EXPERIMENTS = ["pmnist_width", "ngm_rotated_mnist"]


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    """The smoke DAG of SLURM_EXPERIMENTS through profiles/slurm."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm_workflow"))
    return (workdir, *run_on_slurm(workdir, slurm, "--config", f"experiments=[{','.join(SLURM_EXPERIMENTS)}]"))


def of_slurm_experiments(paths: set[str]) -> set[str]:
    """The result files (results/runs/<experiment>/... or results/aggregate/<experiment>.parquet) of
    SLURM_EXPERIMENTS."""
    return {path for path in paths if Path(path).parts[2].removesuffix(".parquet") in SLURM_EXPERIMENTS}


def training_results(workdir: Path) -> set[str]:
    return {str(path.relative_to(workdir)) for path in workdir.glob("results/runs/**/*.parquet")}


def assert_completed(jobs: dict[str, dict[str, str]], job_id: str):
    assert (jobs[job_id]["JobState"], jobs[job_id]["ExitCode"]) == ("COMPLETED", "0:0"), jobs[job_id]


def test_every_training_job_ran_through_sbatch(slurm, slurm_run, smoke_run):
    workdir, output, submitted = slurm_run
    trained = training_results(workdir)
    assert trained == of_slurm_experiments(training_results(smoke_run))

    # Snakemake's record of its submissions, and Slurm's of the jobs: the same ids, all completed, none with a GPU
    # (the smoke scale runs on the CPU).
    assert submitted, output[-4000:]
    jobs = slurm_jobs(slurm)
    for job_id in submitted:
        assert_completed(jobs, job_id)
        assert "gpu" not in jobs[job_id].get("TresPerJob", ""), jobs[job_id]

    # What each Slurm job ran, from its own log (Snakemake on the node lists the jobs it runs): together, every
    # training job, each once, several to a submission.
    ran = [{path for path in outputs_in_log(Path(log).read_text(), "train") if path.endswith(".parquet")}
           for log in submitted.values()]
    assert set().union(*ran) == trained
    assert sum(map(len, ran)) == len(trained)
    assert len(submitted) < len(trained)

    # Nothing else was submitted: the other rules ran here, and no training job did.
    assert set(re.findall(r"^[ \t]*rule (\w+):", output, re.MULTILINE)) == {"train"}
    assert "localrule train:" not in output
    for rule in ("mnist", "aggregate", "figure", "reproduction"):
        assert f"localrule {rule}:" in output, rule


def test_results_equal_a_local_run(slurm_run, smoke_run):
    """Training results and aggregates equal the local smoke run's (the reproduction table differs: it lists the
    other experiments' claims as not run)."""
    workdir = slurm_run[0]
    parquets = sorted(str(path.relative_to(workdir)) for path in workdir.glob("results/**/*.parquet"))
    assert any(Path(path).parts[1] == "aggregate" for path in parquets)
    for path in parquets:
        pd.testing.assert_frame_equal(pd.read_parquet(workdir / path), pd.read_parquet(smoke_run / path),
                                      check_exact=True, obj=path)


def test_gpu_experiment_job_gets_a_gpu_and_a_submission_of_its_own(slurm, tmp_path_factory):
    """With device: auto, a permuted-MNIST job asks Slurm for the GPU its experiment's `resources` name (the
    CPU build of torch then runs it on the CPU)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm_gpu"))
    target = "results/runs/pmnist_width/bp-width_8/seeds0-1.parquet"
    output, submitted = run_on_slurm(workdir, slurm, target, "--config", "device=auto")
    assert len(submitted) == 1, output[-4000:]
    job_id, log = submitted.popitem()
    jobs = slurm_jobs(slurm)
    assert_completed(jobs, job_id)
    assert jobs[job_id]["TresPerJob"] == "gres:gpu:1", jobs[job_id]
    assert outputs_in_log(Path(log).read_text(), "train") == {target, target.replace(".parquet", ".json")}
