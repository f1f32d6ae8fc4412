"""Plain convolutional networks for S seeds: convolutions (no padding), each followed by its activation and a 2×2
max-pool, then fully connected hidden layers and the output layer, all with PyTorch's default init. The shape of
lop_convnet (Dohare et al.) and kumar_cnn (Kumar et al.).

Unit layers are every convolution (a unit is a channel) and every hidden linear layer. A convolution's features are
its output after the activation and the pooling, as the loss-of-plasticity reference measures them; the last
convolution's channels each feed H·W consecutive inputs of the first linear layer (`positions`).

A replaced unit is drawn from its layer's own default init, U(±1/√fan_in). The loss-of-plasticity reference's
ConvGnT does so for convolutions but draws linear units from Kaiming-uniform with the ReLU gain, U(±√(6/fan_in)),
wider than those layers started (quirk); here every architecture redraws from the layer's initial distribution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.config import ConfigError
from plasticity.models.layers import (SeedConv2d, SeedLinear, default_unit_init, flatten, init_default_,
                                      max_pool)
from plasticity.models.units import UnitLayer
from plasticity.models.vision import GainHead, SeedVisionNet, hidden_activations, image_shape
from plasticity.seeding import generators

POOL = 2


class ConvNet(SeedVisionNet):
    """convs: (channels, kernel size) of each convolution; widths: the hidden linear layers' units."""

    def __init__(self, arch: str, input_shape: tuple[int, ...], out_features: int, seeds: list[int],
                 convs: list[tuple[int, int]], widths: list[int], activation: str, head_std: float):
        super().__init__(seeds, head_std)
        channels, height, width = image_shape(input_shape, arch)
        in_channels = [channels] + [out for out, _ in convs[:-1]]
        self.convs = nn.ModuleList(SeedConv2d(a, out, kernel, self.num_seeds)
                                   for a, (out, kernel) in zip(in_channels, convs))
        for _, kernel in convs:
            height, width = (height - kernel + 1) // POOL, (width - kernel + 1) // POOL
        if height < 1 or width < 1:
            raise ConfigError(f"{arch}: input shape {tuple(input_shape)} is too small for its "
                              f"{len(convs)} convolutions and {POOL}×{POOL} poolings")
        self.positions = height * width
        sizes = [convs[-1][0] * self.positions] + list(widths)
        self.fcs = nn.ModuleList(SeedLinear(a, b, self.num_seeds) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = self.build_head(sizes[-1], out_features)
        self.activations = hidden_activations(activation, [out for out, _ in convs] + list(widths), seeds)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, gens: list[torch.Generator] | None = None) -> None:
        """PyTorch's default init of every layer, from `gens` (default: each seed's "init" stream; the tasks
        protocol's `reset_network` passes fresh ones), the gain head N(0, head_std²)."""
        gens = gens or generators(self.seeds, "init")
        for layer in [*self.convs, *self.fcs]:
            init_default_(layer, gens)
        self.reset_head(gens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (S, B, C, H, W) -> logits (S, B, out)."""
        self.features = []
        activations = iter(self.activations)
        for conv in self.convs:
            activation = next(activations)
            if activation.pointwise:    # on the CPU per seed: the block's full-size maps are never made
                x = conv(x, lambda y, activation=activation: F.max_pool2d(activation(y), POOL))
            else:                       # parameters per seed: on the block's maps
                x = max_pool(activation(conv(x)), POOL)
            self.features.append(x)
        x = flatten(x)
        for fc in self.fcs:
            x = next(activations)(fc(x))
            self.features.append(x)
        return self.head(x)

    def unit_layers(self) -> list[UnitLayer]:
        """Every convolution's channels and every hidden layer's neurons, redrawn from the layer's default init."""
        layers = [*self.convs, *self.fcs]
        positions = [1] * len(layers)
        positions[len(self.convs) - 1] = self.positions
        return [UnitLayer(layer, next_layer, default_unit_init(layer), positions=count)
                for layer, next_layer, count in zip(layers, layers[1:] + [self.head], positions)]


class GainConvNet(GainHead, ConvNet):
    """ConvNet with a gain-modulated head."""


def build_convnet(*args, gain_head: bool, **kwargs) -> ConvNet:
    """ConvNet's arguments; a gain-modulated head if `gain_head`."""
    return (GainConvNet if gain_head else ConvNet)(*args, **kwargs)
