"""Plain convolutional networks for S seeds: convolutions (no padding), each followed by its activation and a 2×2
max-pool, then fully connected hidden layers and the output layer, all with PyTorch's default init. The shape of
lop_convnet (Dohare et al.) and kumar_cnn (Kumar et al.).

Unit layers are every convolution (a unit is a channel) and every hidden linear layer. A convolution's features are
its output after the activation and the pooling, as the loss-of-plasticity reference measures them; the last
convolution's channels each feed H·W consecutive inputs of the first linear layer (`positions`).

An activation with more outputs than units (CReLU: 2 per channel or neuron) gets parameter-matched layers, as the
MLP's parameter-matched width: every convolution's channels and every hidden layer's width shrunk by one common
factor, the one whose network's parameter count is closest to the plain network's (`parameter_matched_layers`;
kumar_cnn on 3×32×32 with 10 classes: 11 channels and width 71 instead of 16 and 100, 57,601 parameters instead of
58,842). One factor for all layers is our choice (the papers say only that the width is matched).

A replaced unit is drawn from its layer's own default init, U(±1/√fan_in). The loss-of-plasticity reference's
ConvGnT does so for convolutions but draws linear units from Kaiming-uniform with the ReLU gain, U(±√(6/fan_in)),
wider than those layers started (quirk); here every architecture redraws from the layer's initial distribution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.activations import build_activation
from plasticity.config import ConfigError
from plasticity.models.layers import (SeedConv2d, SeedLinear, SeedMaps, default_unit_init, flatten, init_default_,
                                      max_pool, on_cpu, stacked)
from plasticity.models.units import UnitLayer
from plasticity.models.vision import GainHead, SeedVisionNet, hidden_activations, image_shape
from plasticity.seeding import generators

POOL = 2


def convnet_parameter_count(input_shape: tuple[int, int, int], out_features: int, convs: list[tuple[int, int]],
                            widths: list[int], expansion: int = 1) -> int:
    """Weights and biases of a ConvNet whose every activation passes on `expansion` features per unit."""
    channels, height, width = input_shape
    count = 0
    for out, kernel in convs:
        count += channels * kernel * kernel * out + out
        channels, height, width = expansion * out, (height - kernel + 1) // POOL, (width - kernel + 1) // POOL
    fan_in = channels * height * width
    for units in [*widths, out_features]:
        count += fan_in * units + units
        fan_in = expansion * units
    return count


def parameter_matched_layers(input_shape: tuple[int, int, int], out_features: int, convs: list[tuple[int, int]],
                             widths: list[int], expansion: int) -> tuple[list[tuple[int, int]], list[int]]:
    """(convs, widths) with every layer's units scaled by n / (the largest layer's units), for the n whose network
    with an activation of `expansion` outputs per unit has the parameter count closest to the plain network's."""
    target = convnet_parameter_count(input_shape, out_features, convs, widths)
    largest = max([out for out, _ in convs] + list(widths))

    def shrunk(n: int) -> tuple[list[tuple[int, int]], list[int]]:
        return ([(max(1, round(out * n / largest)), kernel) for out, kernel in convs],
                [max(1, round(units * n / largest)) for units in widths])

    best = min(range(1, largest + 1), key=lambda n: abs(
        convnet_parameter_count(input_shape, out_features, *shrunk(n), expansion) - target))
    return shrunk(best)


class ConvNet(SeedVisionNet):
    """convs: (channels, kernel size) of each convolution; widths: the hidden linear layers' units."""

    def __init__(self, arch: str, input_shape: tuple[int, ...], out_features: int, seeds: list[int],
                 convs: list[tuple[int, int]], widths: list[int], activation: str, head_std: float):
        super().__init__(seeds, head_std)
        self.maps: list[SeedMaps] = []
        channels, height, width = image_shape(input_shape, arch)
        expansion = build_activation(activation, 1).expansion
        if expansion > 1:
            convs, widths = parameter_matched_layers((channels, height, width), out_features, convs, widths,
                                                     expansion)
        in_channels = [channels] + [expansion * out for out, _ in convs[:-1]]
        self.convs = nn.ModuleList(SeedConv2d(a, out, kernel, self.num_seeds)
                                   for a, (out, kernel) in zip(in_channels, convs))
        for _, kernel in convs:
            height, width = (height - kernel + 1) // POOL, (width - kernel + 1) // POOL
        if height < 1 or width < 1:
            raise ConfigError(f"{arch}: input shape {tuple(input_shape)} is too small for its "
                              f"{len(convs)} convolutions and {POOL}×{POOL} poolings")
        self.positions = height * width
        fan_ins = [expansion * convs[-1][0] * self.positions] + [expansion * units for units in widths]
        self.fcs = nn.ModuleList(SeedLinear(a, b, self.num_seeds) for a, b in zip(fan_ins, widths))
        self.head = self.build_head(fan_ins[-1], out_features)
        self.activations = hidden_activations(activation, [out for out, _ in convs] + list(widths), seeds,
                                              expanding=True)
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
        self.maps = []
        activations = iter(self.activations)
        maps: SeedMaps = x
        for conv in self.convs:
            activation = next(activations)
            if activation.pointwise and on_cpu(x):
                # per seed, and kept per seed from one convolution to the next: the block's maps are never
                # stacked, nor their gradients concatenated (`each_seed`)
                maps = conv.each_seed(maps, lambda y, activation=activation: F.max_pool2d(activation(y), POOL))
            else:                       # parameters per seed: on the block's maps
                maps = max_pool(activation(conv(stacked(maps))), POOL)
            self.maps.append(maps)
        x = flatten(maps)
        for fc in self.fcs:
            x = next(activations)(fc(x))
            self.maps.append(x)
        return self.head(x)

    @property
    def features(self) -> list[torch.Tensor]:
        """Each unit layer's features of the last forward pass, (S, B, units, *spatial): stacked when asked for."""
        return [stacked(maps) for maps in self.maps]

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
