"""Running the real workflow from tests: a copy of its files in a temporary directory, and `snakemake` there."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COPIED = ["Snakefile", "workflow", "config", "envs", "plasticity", "profiles"]  # envs: recorded in job metadata
SMOKE = "config/smoke.yaml"


def copy_workflow(workdir: Path) -> Path:
    """The workflow's files (plasticity/ included: its sources are inputs of the training jobs) under `workdir`."""
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, workdir / name)
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
