"""A linear classifier on the flattened input, for S seeds: the linear baseline of Dohare et al.'s Fig. 1
(continual ImageNet, 77.1% in the paper), trained under the same protocol as the networks it is drawn beside.

It has no unit layers and no features (nothing for CBP or the probes' per-layer measures), and its head is the
whole model, initialised as PyTorch's nn.Linear (U(±1/√fan_in)).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from plasticity.models import register
from plasticity.models.layers import SeedLinear, init_default_
from plasticity.models.units import UnitLayer
from plasticity.seeding import generators


class SeedLinearClassifier(nn.Module):
    """Inputs (S, B, *input_shape) -> logits (S, B, classes) through one seed-batched linear layer."""

    def __init__(self, input_shape: tuple[int, ...], out_features: int, seeds: list[int]):
        super().__init__()
        self.seeds = list(seeds)
        self.head = SeedLinear(math.prod(input_shape), out_features, len(self.seeds))
        self.activations = nn.ModuleList()
        self.features: list[torch.Tensor] = []
        self.reset_parameters()

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    @torch.no_grad()
    def reset_parameters(self, gens: list[torch.Generator] | None = None) -> None:
        """PyTorch's default init from `gens` (default: each seed's "init" stream)."""
        self.reset_head(gens or generators(self.seeds, "init"))

    @torch.no_grad()
    def reset_head(self, gens: list[torch.Generator]) -> None:
        init_default_(self.head, gens)

    def probe_weights(self) -> list[torch.Tensor]:
        return [self.head.weight]

    def unit_layers(self) -> list[UnitLayer]:
        return []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(2))


@register("linear")
def build(input_shape: tuple[int, ...], out_features: int, seeds: list[int]) -> SeedLinearClassifier:
    """Linear classifier on the flattened input (the linear baseline of continual ImageNet)."""
    return SeedLinearClassifier(input_shape, out_features, seeds)
