"""Layers of units: the interface through which methods (CBP, ReDo) and probes act on any architecture.

A unit is a neuron of a linear layer or an output channel of a convolution. A `UnitLayer` names everything a
method that replaces units needs: the layer computing the units (its incoming weights (S, units, *fan_in) and
bias (S, units)), the layer reading them (`next_layer`, whose weight's dim 2 indexes its inputs; a channel of the
last convolution before a flatten is `positions` consecutive inputs of the linear layer after it), the per-seed
BatchNorm of the units if any, and the layer's own initial distribution, so a replaced unit is drawn from the
distribution its layer started from. The model's `features[i]` (S, B, units, *spatial) is the output of
`unit_layers()[i]` that the methods measure (after activation, and after pooling where the reference measures it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

# draw(count, generator) -> fresh incoming weights of `count` units, shape (count, *fan_in), on the CPU
InitialWeights = Callable[[int, torch.Generator], torch.Tensor]


def uniform_init(bound: float, fan_in: tuple[int, ...]) -> InitialWeights:
    return lambda count, generator: torch.empty(count, *fan_in).uniform_(-bound, bound, generator=generator)


def normal_init(std: float, fan_in: tuple[int, ...]) -> InitialWeights:
    return lambda count, generator: torch.randn(count, *fan_in, generator=generator) * std


@dataclass
class UnitLayer:
    layer: nn.Module
    next_layer: nn.Module
    init: InitialWeights
    norm: nn.Module | None = None
    positions: int = 1

    @property
    def units(self) -> int:
        return self.layer.weight.shape[1]

    @property
    def trainable_bias(self) -> bool:
        """False where the layer has no bias or keeps it frozen (the gain MLP's zero biases): methods leave it."""
        return self.layer.bias is not None and self.layer.bias.requires_grad

    @property
    def next_trainable_bias(self) -> bool:
        bias = self.next_layer.bias
        return bias is not None and bias.requires_grad

    def incoming_magnitude(self) -> torch.Tensor:
        """Mean |incoming weight| of each unit, (S, units)."""
        return self.layer.weight.detach().abs().flatten(2).mean(dim=2)

    def outgoing_magnitude(self) -> torch.Tensor:
        """Mean |outgoing weight| of each unit per position it feeds, (S, units, positions): over the next layer's
        outputs (and kernel positions, for a convolution)."""
        weight = self.next_layer.weight.detach().abs()
        per_input = weight.mean(dim=1) if weight.dim() == 3 else weight.mean(dim=(1, 3, 4))
        return per_input.unflatten(1, (self.units, self.positions))

    def outgoing_index(self, units: torch.Tensor) -> torch.Tensor:
        """The next layer's input indices that read `units`."""
        if self.positions == 1:
            return units
        return (units.unsqueeze(1) * self.positions + torch.arange(self.positions, device=units.device)).flatten()

    @torch.no_grad()
    def reinitialise(self, seed: int, units: torch.Tensor, generator: torch.Generator) -> None:
        """Fresh incoming weights for `units` of one seed from the layer's init, zero bias (if trainable), and
        BatchNorm entries reset to the identity (weight 1, bias 0, running mean 0, running variance 1)."""
        weight = self.layer.weight
        weight[seed, units] = self.init(len(units), generator).to(weight.device, weight.dtype)
        if self.trainable_bias:
            self.layer.bias[seed, units] = 0
        if self.norm is not None:
            self.norm.weight[seed, units] = 1
            self.norm.bias[seed, units] = 0
            self.norm.running_mean[seed, units] = 0
            self.norm.running_var[seed, units] = 1

    @torch.no_grad()
    def cut_outgoing(self, seed: int, units: torch.Tensor) -> None:
        """Zero the next layer's weights from `units` of one seed (their output no longer reaches it)."""
        self.next_layer.weight[seed][:, self.outgoing_index(units)] = 0


def feature_statistic_dims(features: torch.Tensor) -> tuple[int, ...]:
    """The dims of seed-batched features (S, B, units, *spatial) that a per-unit statistic averages over: the
    batch and every spatial position (a conv channel is one unit)."""
    return (1,) + tuple(range(3, features.dim()))


def seed_major(features: torch.Tensor) -> torch.Tensor:
    """Features (S, B, units, *spatial) laid out S-major before a method reduces them to per-unit statistics.

    A conv net's maps are B-major views (`plasticity.models.layers`), and the CPU's reduction over the batch of a
    B-major map (measured: one of 1×1 positions, kumar_cnn's last map at 16×16 or slim_resnet18's pooled map at
    32×32) sums in an order that depends on S, so a seed's utilities, and then which units it replaces, would depend
    on its block. S-major, each seed's features are laid out as they are alone. The MLPs' features are S-major
    already (no copy); on other devices, which are not bit for bit block-invariant anyway, nothing is copied."""
    return features.contiguous() if features.device.type == "cpu" else features
