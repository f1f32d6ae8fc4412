"""Learning methods, one file each, registered by name.

A method turns a model into a `Learner`: a `torch.optim.Optimizer` over the model's parameters and, for methods
that act between steps (CBP's generate-and-test), an `after_step(hidden_features)` hook. Add a method by writing
`plasticity/methods/<name>.py` with a function decorated `@register("<name>")` taking
`(model, seeds, **hyperparameters)` and naming it in a run of `config/experiments.yaml` (modules here are
imported automatically).
"""
from __future__ import annotations

import importlib
import pkgutil

import inspect
from dataclasses import dataclass
from typing import Callable

import torch

from plasticity.config import ConfigError, check_arguments


@dataclass
class Learner:
    """optimizer: steps the parameters; after_step(hidden features): runs after every optimizer step;
    state: an object with state_dict()/load_state_dict() holding the method's own state (for checkpoints);
    train_steps(model, inputs, targets, loss, metric_total, lr, weight_decay): optional, the same as plain-SGD
    steps each followed by after_step, taken many at a time in the model's kernels (`SeedMLP.step_arguments`),
    which the online protocol then uses at batch 1 on the CPU."""
    optimizer: torch.optim.Optimizer
    after_step: Callable[[list[torch.Tensor]], None] | None = None
    state: object | None = None
    train_steps: Callable[..., None] | None = None


METHODS: dict[str, Callable[..., Learner]] = {}


def register(name: str):
    def decorate(build: Callable[..., Learner]):
        METHODS[name] = build
        return build
    return decorate


def build_learner(name: str, model: torch.nn.Module, seeds: list[int], hparams: dict) -> Learner:
    """The named method on `model`; an unknown name or hyperparameter is a ConfigError listing what is valid."""
    check_hyperparameters(name, hparams)
    return METHODS[name](model, seeds, **hparams)


def check_hyperparameters(name: str, hparams: dict) -> None:
    """ConfigError unless `name` is a registered method taking exactly these hyperparameters (or defaults)."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; valid: {sorted(METHODS)}")
    check_arguments(f"hyperparameter(s) of method {name!r}", METHODS[name], hparams, ("model", "seeds"))


# Register every module of this package: adding a file needs no edit here (so no rerun of other jobs).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
