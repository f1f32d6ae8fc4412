"""Activations of hidden units, one file per family, registered by name (the model's `activation` in the config).

An activation is an `nn.Module`. It works on ordinary features (B, F, ...) and on the training engine's
seed-batched features (S, B, F, ...): the feature (channel) dimension is the one after the batch. Besides
`forward` it gives `backward(z, h, grad_h)`, the hand-derived gradient the engine uses instead of autograd (and,
for an activation with parameters, the gradients of those, written into their `.grad`).

Add an activation by writing `plasticity/activations/<name>.py` with a factory decorated `@register("<name>")`
taking `(num_features, gens)`: `gens` is a list of per-seed generators for the engine's seed-batched networks
(parameters get a leading seed dimension, drawn from each seed's own stream) or None for an ordinary network.
"""
from __future__ import annotations

import importlib
import math
import pkgutil
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.config import ConfigError


class Activation(nn.Module):
    """expansion: output features per unit (CReLU: 2); init_gain: the `nn.init.calculate_gain` name for the
    Kaiming init of the layer that feeds it; pointwise: no parameters and one output per unit, so that the CPU
    kernels (which take ∂h/∂z from `derivative`) can train it."""

    expansion = 1
    init_gain = "relu"
    pointwise = False

    def derivative(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """∂h/∂z elementwise, from the pre-activation z and the output h."""
        raise NotImplementedError

    def backward(self, z: torch.Tensor, h: torch.Tensor, grad_h: torch.Tensor) -> torch.Tensor:
        """d(loss)/dz from d(loss)/dh; an activation with parameters also overwrites their `.grad`."""
        return grad_h * self.derivative(z, h)

    def probe_metrics(self) -> dict[str, torch.Tensor]:
        """Per-seed (S,) summaries of the activation's own state, recorded at each probe (none by default)."""
        return {}


class Pointwise(Activation):
    """A fixed elementwise function with its derivative (the plain activations)."""

    pointwise = True

    def __init__(self, name: str, function: Callable, derivative: Callable, init_gain: str):
        super().__init__()
        self.name, self.function, self._derivative, self.init_gain = name, function, derivative, init_gain

    @property
    def description(self) -> str:
        return f"{self.name}, elementwise"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.function(z)

    def derivative(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self._derivative(z, h)

    def extra_repr(self) -> str:
        return self.name


def gelu_derivative(z: torch.Tensor) -> torch.Tensor:
    """d/dz z·Φ(z) = Φ(z) + z·φ(z) (the exact GELU, torch's default)."""
    return 0.5 * (1 + torch.erf(z / math.sqrt(2))) + z * torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


# name -> (function, derivative(pre-activation, output), name for nn.init.calculate_gain). Swish, ELU and GELU use
# ReLU's gain, as the loss-of-plasticity reference does for the first two.
POINTWISE = {
    "relu": (F.relu, lambda z, h: (z > 0).to(z.dtype), "relu"),
    "tanh": (torch.tanh, lambda z, h: 1 - h * h, "tanh"),
    "sigmoid": (torch.sigmoid, lambda z, h: h * (1 - h), "sigmoid"),
    "elu": (F.elu, lambda z, h: torch.where(z > 0, 1.0, h + 1), "relu"),
    "leaky_relu": (F.leaky_relu, lambda z, h: torch.where(z > 0, 1.0, 0.01), "leaky_relu"),
    "swish": (F.silu, lambda z, h: torch.sigmoid(z) * (1 + z * (1 - torch.sigmoid(z))), "relu"),
    "gelu": (F.gelu, lambda z, h: gelu_derivative(z), "relu"),
    "linear": (lambda z: z, lambda z, h: torch.ones_like(z), "linear"),
}

ACTIVATIONS: dict[str, Callable[[int, list[torch.Generator] | None], Activation]] = {}


def register(name: str):
    def decorate(build):
        ACTIVATIONS[name] = build
        return build
    return decorate


def _pointwise(name: str):
    return lambda num_features, gens: Pointwise(name, *POINTWISE[name])


for _name in POINTWISE:
    register(_name)(_pointwise(_name))


def check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}")


def build_activation(name: str, num_features: int, gens: list[torch.Generator] | None = None) -> Activation:
    """The named activation for a layer of `num_features` units (seed-batched when `gens` are given)."""
    check_activation(name)
    return ACTIVATIONS[name](num_features, gens)


class PerUnitParameter(Activation):
    """An activation with one learnable scalar `alpha` per unit (or one per layer, `per_unit=False`), of shape
    (S, units or 1) for seed-batched networks and (units or 1,) otherwise."""

    def __init__(self, alpha: torch.Tensor):
        super().__init__()
        self.alpha = nn.Parameter(alpha)

    @classmethod
    def initial(cls, num_features: int, per_unit: bool, gens, draw: Callable[[int, torch.Generator | None], torch.Tensor]):
        count = num_features if per_unit else 1
        return draw(count, None) if gens is None else torch.stack([draw(count, g) for g in gens])

    @property
    def seeded(self) -> bool:
        return self.alpha.dim() == 2

    def _feature_dim(self, z: torch.Tensor) -> int:
        """(S, B, F, ...) seed-batched; (B, F, ...) or a single example (F,) otherwise (as torch.nn.PReLU)."""
        return 2 if self.seeded else min(1, z.dim() - 1)

    def broadcast_alpha(self, z: torch.Tensor) -> torch.Tensor:
        """alpha viewed to broadcast against z: along the seed dimension and the feature dimension."""
        shape = [1] * z.dim()
        shape[self._feature_dim(z)] = self.alpha.shape[-1]
        if self.seeded:
            shape[0] = self.alpha.shape[0]
        return self.alpha.view(shape)

    def set_alpha_grad(self, per_element: torch.Tensor) -> None:
        """alpha.grad = ∑ of d(loss)/d(alpha) contributions over everything alpha is shared by."""
        keep = ((0,) if self.seeded else ()) + ((self._feature_dim(per_element),) if self.alpha.shape[-1] > 1 else ())
        summed = per_element.sum(dim=[d for d in range(per_element.dim()) if d not in keep])
        self.alpha.grad = summed.reshape(self.alpha.shape).to(self.alpha.dtype)

    @torch.no_grad()
    def probe_metrics(self) -> dict[str, torch.Tensor]:
        alpha = self.alpha if self.seeded else self.alpha.unsqueeze(0)
        quantiles = torch.quantile(alpha.double(), torch.tensor([0.1, 0.5, 0.9], dtype=torch.double), dim=1)
        return {"alpha_mean": alpha.double().mean(dim=1), "alpha_q10": quantiles[0], "alpha_median": quantiles[1],
                "alpha_q90": quantiles[2]}


# Register every module of this package: adding a file needs no edit here.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
