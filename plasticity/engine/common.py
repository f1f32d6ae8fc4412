"""Parts every training protocol shares: the device, the recorder of tidy results, and the training state a
checkpoint holds (plasticity.engine.checkpoint). The protocols (`online`, `joint`, `tasks`) import this module; it
imports none of them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from plasticity.config import ConfigError, canonical_json
from plasticity.methods import Learner


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


def per_seed_loss(output: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """Each seed's loss (S,) averaged over the batch, as F.mse_loss / F.cross_entropy compute it; output
    (S, B, out), targets (S, B, out) (mse) or (S, B) class indices (cross_entropy)."""
    if loss == "mse":
        return (output - targets).pow(2).mean(dim=(1, 2))
    if loss == "cross_entropy":
        return F.cross_entropy(output.transpose(1, 2), targets, reduction="none").mean(1)
    raise ConfigError(f"unknown loss {loss!r}; valid: cross_entropy, mse")


def autograd_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
                  targets: torch.Tensor, loss: str, logit_mask: torch.Tensor | None = None):
    """One training step of any model: forward, loss, `backward`, `optimizer.step()`; returns the output
    (detached) and each seed's loss (S,). The seeds are independent, so the gradient of the sum of their losses
    is each seed's own. `logit_mask` (out,) bool: logits of classes outside it are set to −inf first (the classes
    not seen yet under the tasks protocol)."""
    with torch.enable_grad():
        output = model(inputs)
        if logit_mask is not None:
            output = output.masked_fill(~logit_mask, float("-inf"))
        losses = per_seed_loss(output, targets, loss)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
    optimizer.step()
    return output.detach(), losses.detach()


@torch.no_grad()
def nonfinite_seeds(model: torch.nn.Module) -> torch.Tensor:
    """(S,) bool on the CPU: the seeds with a NaN or infinite parameter. Such a network's accuracy (the argmax of
    NaN logits) would look like chance rather than divergence, so the protocols test the weights themselves."""
    bad = None
    for param in model.parameters():
        seed_bad = ~torch.isfinite(param).flatten(1).all(dim=1)
        bad = seed_bad if bad is None else bad | seed_bad
    return bad.cpu()
