"""One training job: one run (method × hyperparameters) on one block of seeds, trained together under its
experiment's protocol. Output: a tidy long-format parquet and a provenance JSON, both written atomically, so a
killed job never leaves a result that looks complete; meanwhile the job saves checkpoints
(plasticity.engine.checkpoint), from which a rerun resumes."""
from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from plasticity.config import RESULT_LABELS, ConfigError, training_identity
from plasticity.engine.checkpoint import Checkpoints
from plasticity.engine.common import resolve_device
from plasticity.engine.joint import train_joint
from plasticity.engine.online import train_online
from plasticity.engine.tasks import train_tasks
from plasticity.io import write_atomically

# Training protocols by name (an experiment's `protocol`, default online), each with its one-line description.
PROTOCOLS = {"online": train_online, "joint": train_joint, "tasks": train_tasks}
PROTOCOL_DESCRIPTIONS = {
    "online": "one stream, every example seen once, the online metric in bins (loss of plasticity, AdaLin)",
    "joint": "contexts trained on the union of all data so far, evaluated every iteration (stability gap)",
    "tasks": "tasks of several epochs each, test and validation accuracy per task or epoch (vision)",
}


def train(spec: dict, data_path: str | None = None, progress: bool = True,
          checkpoints: Checkpoints | None = None) -> pd.DataFrame:
    """Train the job `spec` under its protocol and return its tidy results; with `checkpoints`, resume from a
    matching checkpoint, save as it says, and on SIGTERM save and raise Terminated at the next step boundary (a
    step is an iteration of the protocol's loop)."""
    protocol = spec.get("protocol", "online")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; valid: {', '.join(sorted(PROTOCOLS))}")
    frame = PROTOCOLS[protocol](spec, data_path, progress, checkpoints or Checkpoints())
    # Every row says whether it was trained on the synthetic stand-in data, so that no aggregate, figure or
    # verdict downstream can take it for a result.
    synthetic = bool((data_source(data_path) or {}).get("synthetic"))
    frame.insert(frame.columns.get_loc("seed"), "synthetic_data", synthetic)
    return frame


def data_source(data_path: str | None) -> dict | None:
    """The provenance of the materialised data file the job read (`<data>.source.json`), None without one."""
    if data_path and Path(f"{data_path}.source.json").exists():
        return json.loads(Path(f"{data_path}.source.json").read_text())
    return None


def _code_version() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        from plasticity import __version__
        return __version__


def provenance(spec: dict, device: torch.device, wall_seconds: float, data_path: str | None,
               resumed_at: list[int]) -> dict:
    """Where and how the job ran; `resumed_at`: the examples seen at each resume from a checkpoint (then
    `wall_seconds` counts the last attempt only)."""
    return {"spec": spec, "code_version": _code_version(), "python": platform.python_version(),
            "packages": {"torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__},
            "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine(), "host": platform.node(),
            "wall_seconds": round(wall_seconds, 3), "resumed_at_examples": resumed_at,
            "data_source": data_source(data_path)}


def run_job(spec: dict, out: str, data_path: str | None = None, checkpoint: str | None = None,
            checkpoint_minutes: float | None = 10.0, checkpoint_tasks: int | None = None) -> None:
    """Train and write `out` (.parquet) and its provenance (.json), saving checkpoints to `checkpoint` (default:
    `out` with suffix .ckpt; see plasticity.engine.checkpoint): a rerun after a kill resumes from it, and it is deleted
    once the results are written."""
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    checkpoints = Checkpoints(checkpoint or out_path.with_suffix(".ckpt"), checkpoint_minutes, checkpoint_tasks)
    start = time.perf_counter()
    frame = train(spec, data_path, checkpoints=checkpoints)
    info = provenance(spec, resolve_device(spec["device"]), time.perf_counter() - start, data_path,
                      checkpoints.resumed_at)
    write_atomically(out_path.with_suffix(".json"), lambda p: Path(p).write_text(json.dumps(info, indent=2)))
    write_atomically(out_path, lambda p: frame.to_parquet(p, index=False))
    checkpoints.remove()


def relabel_job(spec: dict, out: str, trained: str) -> None:
    """Write `out` and its provenance from `trained`, the results of a job of another experiment that trains the
    same thing (equal specs but for RESULT_LABELS): its rows under this spec's labels, bit for bit the numbers this
    job would train. The workflow runs this instead of training such a job twice."""
    start = time.perf_counter()
    trained_path = Path(trained)
    trained_info = json.loads(trained_path.with_suffix(".json").read_text())
    if training_identity(trained_info["spec"]) != training_identity(spec):
        raise ConfigError(f"{trained} was trained from another spec than this job's: it cannot stand in for "
                          f"{spec['experiment']}/{spec['run']}")
    frame = pd.read_parquet(trained_path)
    for label in RESULT_LABELS:
        frame[label] = spec[label]
    info = {**trained_info, "spec": spec, "trained_as": str(trained_path),
            "trained_seconds": trained_info["wall_seconds"], "wall_seconds": round(time.perf_counter() - start, 3)}
    out_path = Path(out)
    write_atomically(out_path.with_suffix(".json"), lambda p: Path(p).write_text(json.dumps(info, indent=2)))
    write_atomically(out_path, lambda p: frame.to_parquet(p, index=False))

