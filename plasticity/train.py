"""One training job: one run (method × hyperparameters) on one block of seeds, trained together.

Online protocol shared by the loss-of-plasticity benchmarks: every example is seen once; the online metric
(squared error or accuracy, measured on the batch *before* the update) is averaged in bins of `bin_size`
examples; at each task start the hidden representation of the task's first `probe.size` examples is probed
(dead units, ranks, weight magnitude). Output: a tidy long-format parquet and a provenance JSON, both written
atomically, so a killed job never leaves a result that looks complete; meanwhile the job saves checkpoints
(plasticity.checkpoint), from which a rerun resumes.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from plasticity import metrics
from plasticity.benchmarks import build_benchmark
from plasticity.checkpoint import Checkpoints
from plasticity.config import ConfigError, canonical_json
from plasticity.io import write_atomically
from plasticity.methods import Learner, build_learner
from plasticity.nets import SeedMLP, loss_and_output_grad

ONLINE_METRIC = {"mse": "squared_error", "cross_entropy": "online_accuracy"}
RANKS = {"effective_rank": metrics.effective_rank, "stable_rank": metrics.stable_rank_cumulative,
         "stable_rank_norm": metrics.stable_rank_norm_ratio, "approximate_rank": metrics.approximate_rank}


def plain_sgd_hyperparameters(optimizer: torch.optim.Optimizer) -> tuple[float, float] | None:
    """(lr, weight_decay) if `optimizer` is exactly torch.optim.SGD without momentum, whose step the engine then
    fuses with the backward pass (`SeedMLP.sgd_step_from_output_grad`); None for any other optimizer."""
    if type(optimizer) is not torch.optim.SGD or len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if group["momentum"] or group["nesterov"] or group["maximize"]:
        return None
    return group["lr"], group["weight_decay"]


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is visible; use device: auto or cpu")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


class Recorder:
    """Collects (seed-vector) measurements and turns them into the tidy long table; its state_dict() holds those
    recorded so far (for checkpoints)."""

    def __init__(self, seeds: list[int]):
        self.seeds = np.asarray(seeds)
        self.entries: list[tuple[int, str, int, torch.Tensor]] = []     # (x, metric, layer, value per seed)

    def add(self, x: int, metric: str, values: torch.Tensor, layer: int = 0) -> None:
        self.entries.append((x, metric, layer, values.detach().double().cpu()))

    def state_dict(self) -> dict:
        return {"entries": list(self.entries)}

    def load_state_dict(self, state: dict) -> None:
        self.entries = list(state["entries"])

    def frame(self, spec: dict) -> pd.DataFrame:
        count = len(self.seeds)
        frame = pd.DataFrame({
            "seed": np.tile(self.seeds, len(self.entries)),
            "x": np.repeat(np.array([x for x, _, _, _ in self.entries], dtype=np.int64), count),
            "metric": np.repeat(np.array([metric for _, metric, _, _ in self.entries], dtype=object), count),
            "layer": np.repeat(np.array([layer for _, _, layer, _ in self.entries], dtype=np.int64), count),
            "value": torch.cat([values for _, _, _, values in self.entries]).numpy() if self.entries else [],
        })
        hparams = canonical_json({"hparams": spec["hparams"], "model": spec["model"],
                                  "benchmark_args": spec["benchmark_args"]})
        for column, value in (("paper", spec["paper"]), ("experiment", spec["experiment"]), ("run", spec["run"]),
                              ("method", spec["method"]), ("hparams", hparams), ("x_unit", "examples")):
            frame[column] = value
        return frame[["paper", "experiment", "run", "method", "hparams", "seed", "x", "x_unit", "metric", "layer",
                      "value"]]


@torch.no_grad()
def probe(model: SeedMLP, inputs: torch.Tensor, recorder: Recorder, x: int) -> None:
    """Plasticity correlates of the current network on a fixed probe batch (S, n, in)."""
    model(inputs)
    for layer, hidden in enumerate(model.hidden, start=1):
        recorder.add(x, "dead_units_pct", metrics.dead_unit_percent(hidden), layer)
        singular = metrics.singular_values(hidden)
        for name, rank in RANKS.items():
            recorder.add(x, name, rank(singular), layer)
    recorder.add(x, "weight_magnitude", metrics.weight_magnitude([layer.weight for layer in model.layers]))
    for layer, activation in enumerate(model.activations, start=1):
        for name, value in activation.probe_metrics().items():     # e.g. AdaLin's α distribution
            recorder.add(x, name, value, layer)


class TrainingState:
    """Everything that changes while a job trains, with state_dict()/load_state_dict(): what a checkpoint holds.

    The model's parameters and buffers, the optimizer's state, the method's own state (`Learner.state`), the data
    stream's position, and the protocol's own `parts` by name: objects with state_dict()/load_state_dict() or
    tensors updated in place (online: the results recorded so far, the online metric's running bin and divergence
    steps; joint: the evaluation sets and the curves so far).
    """

    def __init__(self, model: torch.nn.Module, learner: Learner, benchmark, **parts):
        self.model, self.learner, self.benchmark, self.parts = model, learner, benchmark, parts

    def state_dict(self) -> dict:
        method = self.learner.state
        return {"model": self.model.state_dict(), "optimizer": self.learner.optimizer.state_dict(),
                "method": None if method is None else method.state_dict(),
                "benchmark": self.benchmark.state_dict(),
                **{name: part if isinstance(part, torch.Tensor) else part.state_dict()
                   for name, part in self.parts.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore a saved state, also one saved on another device (each part copies onto its own device)."""
        self.model.load_state_dict(state["model"])
        self.learner.optimizer.load_state_dict(state["optimizer"])
        if self.learner.state is not None:
            self.learner.state.load_state_dict(state["method"])
        self.benchmark.load_state_dict(state["benchmark"])
        for name, part in self.parts.items():
            if isinstance(part, torch.Tensor):
                part.copy_(state[name])
            else:
                part.load_state_dict(state[name])


@torch.no_grad()
def train(spec: dict, mnist_path: str | None = None, progress: bool = True,
          checkpoints: Checkpoints | None = None) -> pd.DataFrame:
    """Train the job `spec` (see docs/architecture.md) and return its tidy results.

    With `checkpoints`, resume from its checkpoint if one matches, save the state as it says, and on SIGTERM save
    and raise Terminated at the next step boundary (a step is a training iteration under the joint protocol)."""
    checkpoints = checkpoints or Checkpoints()
    protocol = spec.get("protocol", "online")
    if protocol == "joint":
        from plasticity.joint import train_joint
        return train_joint(spec, mnist_path, progress, checkpoints)
    if protocol != "online":
        raise ConfigError(f"unknown protocol {protocol!r}; valid: joint, online")
    seeds, batch_size, bin_size = spec["seeds"], spec["batch_size"], spec["bin_size"]
    if bin_size % batch_size or spec["examples"] % bin_size:
        raise ConfigError(f"bin_size {bin_size} must be a multiple of batch_size {batch_size} and divide "
                          f"examples {spec['examples']}")
    device = resolve_device(spec["device"])
    # Confident softmax outputs leave subnormal floats in the gradients, which make CPU arithmetic ~50x slower;
    # flushing them to zero changes values below 1.2e-38 only (GPUs flush them in most kernels too).
    torch.set_flush_denormal(True)
    benchmark = build_benchmark(spec["benchmark"], spec["benchmark_args"], seeds, device, mnist_path)
    model_spec = spec["model"]
    # The CPU kernels serve every CPU run at batch 1 (whatever its number of seeds, so a seed's numbers never depend
    # on the size of its block); larger batches are BLAS's.
    model = SeedMLP(benchmark.in_features, benchmark.out_features, model_spec["width"], model_spec["depth"],
                    model_spec["activation"], seeds, row_kernels=device.type == "cpu" and batch_size == 1).to(device)
    learner = build_learner(spec["method"], model, seeds, spec["hparams"])
    fused_sgd = plain_sgd_hyperparameters(learner.optimizer)
    recorder = Recorder(seeds)
    online_metric = ONLINE_METRIC[spec["loss"]]
    task_length = benchmark.examples_per_task if spec.get("probe") else None
    bin_total = torch.zeros(len(seeds), device=device)
    diverged_at = torch.full((len(seeds),), -1, dtype=torch.long)
    state = TrainingState(model, learner, benchmark, recorder=recorder, bin_total=bin_total,
                          diverged_at=diverged_at)

    first_step = 0
    saved = checkpoints.resume(spec)
    if saved is not None:
        state.load_state_dict(saved["state"])
        first_step = saved["step"]
    steps_per_task = benchmark.examples_per_task // batch_size if benchmark.examples_per_task else None
    checkpoints.start(first_step, steps_per_task)

    steps = spec["examples"] // batch_size
    binned = first_step * batch_size // bin_size * bin_size
    with checkpoints.stopping_on_sigterm(), tqdm(
            total=spec["examples"], initial=binned, unit="ex", unit_scale=True, disable=not progress, mininterval=5,
            desc=f"{spec['experiment']}/{spec['run']} seeds {seeds[0]}-{seeds[-1]}", file=sys.stderr) as bar:
        for step in range(first_step, steps):
            seen = step * batch_size
            if step >= checkpoints.next_check:
                checkpoints.at_step(step, seen, state.state_dict)
            if task_length and seen % task_length == 0:
                probe(model, benchmark.peek(spec["probe"]["size"]), recorder, seen)
            inputs, targets = benchmark.next_batch(batch_size)
            output = model(inputs)
            loss, output_grad = loss_and_output_grad(output, targets, spec["loss"])
            if online_metric == "squared_error":
                bin_total += loss
            else:
                bin_total += (output.argmax(dim=-1) == targets).float().mean(dim=1)
            if fused_sgd:
                model.sgd_step_from_output_grad(output_grad, *fused_sgd)
            else:
                model.backward_from_output_grad(output_grad)
                learner.optimizer.step()
            if learner.after_step is not None:
                learner.after_step(model.hidden)
            if (seen + batch_size) % bin_size == 0:
                value = bin_total / (bin_size // batch_size)
                newly = (~torch.isfinite(value)).cpu() & (diverged_at < 0)
                diverged_at[newly] = seen + batch_size
                recorder.add(seen + batch_size, online_metric, torch.where(diverged_at.to(device) >= 0,
                                                                           torch.nan, value))
                bin_total.zero_()
                bar.update(bin_size)
                if bool((diverged_at >= 0).all()):
                    break        # every seed has diverged: nothing left to learn
    recorder.add(spec["examples"], "diverged", (diverged_at >= 0).double())
    recorder.add(spec["examples"], "diverged_at", diverged_at.double())
    return recorder.frame(spec)


def _code_version() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        from plasticity import __version__
        return __version__


def provenance(spec: dict, device: torch.device, wall_seconds: float, mnist_path: str | None,
               resumed_at: list[int]) -> dict:
    """Where and how the job ran; `resumed_at`: the examples seen at each resume from a checkpoint (then
    `wall_seconds` counts the last attempt only)."""
    data_source = None
    if mnist_path and Path(f"{mnist_path}.source.json").exists():
        data_source = json.loads(Path(f"{mnist_path}.source.json").read_text())
    return {"spec": spec, "code_version": _code_version(), "python": platform.python_version(),
            "packages": {"torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__},
            "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine(), "host": platform.node(),
            "wall_seconds": round(wall_seconds, 3), "resumed_at_examples": resumed_at, "data_source": data_source}


def run_job(spec: dict, out: str, mnist_path: str | None = None, checkpoint: str | None = None,
            checkpoint_minutes: float | None = 10.0, checkpoint_tasks: int | None = None) -> None:
    """Train and write `out` (.parquet) and its provenance (.json), saving checkpoints to `checkpoint` (default:
    `out` with suffix .ckpt; see plasticity.checkpoint): a rerun after a kill resumes from it, and it is deleted
    once the results are written."""
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    checkpoints = Checkpoints(checkpoint or out_path.with_suffix(".ckpt"), checkpoint_minutes, checkpoint_tasks)
    start = time.perf_counter()
    frame = train(spec, mnist_path, checkpoints=checkpoints)
    info = provenance(spec, resolve_device(spec["device"]), time.perf_counter() - start, mnist_path,
                      checkpoints.resumed_at)
    write_atomically(out_path.with_suffix(".json"), lambda p: Path(p).write_text(json.dumps(info, indent=2)))
    write_atomically(out_path, lambda p: frame.to_parquet(p, index=False))
    checkpoints.remove()
