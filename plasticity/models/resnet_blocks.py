"""ResNet-18s for S seeds (resnet18: Dohare et al.'s; slim_resnet18: De Lange et al.'s), built from one BasicBlock.

A 3×3 stride-1 stem conv + BatchNorm + activation (no max-pool), four stages of two BasicBlocks (the first block
of stages 2–4 halves the map), average pooling, and the linear head. Layer names follow torchvision's (conv1, bn1,
layer1.0.conv1, ..., layer1.0.downsample_conv).

Unit layers (17): the stem conv and both convs of every block, each with its BatchNorm; downsample convs are not
unit layers. Features: the stem's output, each block's conv1 output (after BN and activation) and each block's
output (after the residual add and activation), except the last block's, which is replaced by the pooled features
the head reads. A unit layer's next layer is the next conv in that order; the last block's conv2 feeds the head.
"""
from __future__ import annotations

import torch
from torch import nn

from plasticity.config import ConfigError
from plasticity.models.layers import (SeedBatchNorm2d, SeedConv2d, avg_pool, default_unit_init, flatten,
                                      init_default_, init_normal_, kaiming_std)
from plasticity.models.units import InitialWeights, UnitLayer, normal_init
from plasticity.models.vision import GainHead, SeedVisionNet, hidden_activations, image_shape
from plasticity.seeding import generators

BLOCKS_PER_STAGE = 2


class SeedBasicBlock(nn.Module):
    """torchvision's BasicBlock for S seeds: conv 3×3 (stride) – BN – activation – conv 3×3 – BN, plus the shortcut
    (identity, or 1×1 conv (stride) – BN where the shape changes), then the activation. The activations belong to
    the network (`activations`), which passes them in."""

    def __init__(self, in_channels: int, channels: int, stride: int, num_seeds: int, bias: bool):
        super().__init__()
        self.conv1 = SeedConv2d(in_channels, channels, 3, num_seeds, stride=stride, padding=1, bias=bias)
        self.bn1 = SeedBatchNorm2d(channels, num_seeds)
        self.conv2 = SeedConv2d(channels, channels, 3, num_seeds, padding=1, bias=bias)
        self.bn2 = SeedBatchNorm2d(channels, num_seeds)
        self.downsample_conv = self.downsample_bn = None
        if stride != 1 or in_channels != channels:
            self.downsample_conv = SeedConv2d(in_channels, channels, 1, num_seeds, stride=stride, bias=bias)
            self.downsample_bn = SeedBatchNorm2d(channels, num_seeds)

    def convs(self) -> list[SeedConv2d]:
        return [self.conv1, self.conv2] + ([self.downsample_conv] if self.downsample_conv is not None else [])

    def forward(self, x: torch.Tensor, inner_activation: nn.Module,
                outer_activation: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(conv1's features, the block's output)."""
        inner = inner_activation(self.bn1(self.conv1(x)))
        shortcut = x if self.downsample_conv is None else self.downsample_bn(self.downsample_conv(x))
        return inner, outer_activation(self.bn2(self.conv2(inner)) + shortcut)


class SeedResNet(SeedVisionNet):
    """widths: the four stages' channels; bias: whether convs have biases; kaiming: LOP's init (convs and replaced
    units N(0, 2/fan_in), the ReLU gain whatever the activation, as the reference; head N(0, 1/fan_in); biases 0)
    instead of PyTorch's default (every layer and replaced unit U(±1/√fan_in)); pool_kernel: average pooling of the
    last map with that kernel, keeping the pooled map (S, B, C, h, w) as the last features, or None for global
    average pooling to (S, B, C)."""

    def __init__(self, arch: str, input_shape: tuple[int, ...], out_features: int, seeds: list[int],
                 widths: list[int], bias: bool, kaiming: bool, pool_kernel: int | None, activation: str,
                 head_std: float):
        super().__init__(seeds, head_std)
        self.features: list[torch.Tensor] = []
        channels, height, width = image_shape(input_shape, arch)
        self.kaiming, self.pool_kernel = kaiming, pool_kernel
        self.conv1 = SeedConv2d(channels, widths[0], 3, self.num_seeds, padding=1, bias=bias)
        self.bn1 = SeedBatchNorm2d(widths[0], self.num_seeds)
        in_channels = widths[0]
        for stage, stage_width in enumerate(widths, start=1):
            blocks = []
            for index in range(BLOCKS_PER_STAGE):
                stride = 2 if stage > 1 and index == 0 else 1
                blocks.append(SeedBasicBlock(in_channels, stage_width, stride, self.num_seeds, bias))
                in_channels = stage_width
                if stride == 2:     # a 3×3 conv with padding 1: ceil(size / 2)
                    height, width = (height + 1) // 2, (width + 1) // 2
            self.add_module(f"layer{stage}", nn.ModuleList(blocks))
        self.positions = 1
        if pool_kernel is not None:
            self.positions = (height // pool_kernel) * (width // pool_kernel)
            if not self.positions:
                raise ConfigError(f"{arch}: input shape {tuple(input_shape)} leaves a {height}×{width} map, smaller "
                                  f"than the {pool_kernel}×{pool_kernel} average pooling")
        self.head = self.build_head(widths[-1] * self.positions, out_features)
        self.activations = hidden_activations(
            activation, [widths[0]] + [block.conv1.out_channels for block in self.blocks for _ in range(2)], seeds)
        self.reset_parameters()

    @property
    def blocks(self) -> list[SeedBasicBlock]:
        return [block for stage in (self.layer1, self.layer2, self.layer3, self.layer4) for block in stage]

    def _norms(self) -> list[SeedBatchNorm2d]:
        return [module for module in self.modules() if isinstance(module, SeedBatchNorm2d)]

    @torch.no_grad()
    def reset_parameters(self, gens: list[torch.Generator] | None = None) -> None:
        """The architecture's init, layer by layer, from `gens` (default: each seed's "init" stream; the tasks
        protocol's `reset_network` passes fresh ones); BatchNorms to the identity, running statistics included."""
        gens = gens or generators(self.seeds, "init")
        for conv in [self.conv1] + [conv for block in self.blocks for conv in block.convs()]:
            self._init_layer(conv, "relu", gens)
        for norm in self._norms():
            norm.reset_parameters()
        self.reset_head(gens)

    def plain_head_init(self, head: nn.Module, gens: list[torch.Generator]) -> None:
        self._init_layer(head, "linear", gens)

    def _init_layer(self, layer: nn.Module, nonlinearity: str, gens: list[torch.Generator]) -> None:
        if self.kaiming:
            init_normal_(layer, kaiming_std(layer, nonlinearity), gens)
        else:
            init_default_(layer, gens)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_kernel is None:
            return flatten(avg_pool(x, x.shape[3:]))
        return avg_pool(x, self.pool_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (S, B, C, H, W) -> logits (S, B, out)."""
        x = self.activations[0](self.bn1(self.conv1(x)))
        self.features = [x]
        for index, block in enumerate(self.blocks):
            inner, x = block(x, self.activations[1 + 2 * index], self.activations[2 + 2 * index])
            self.features += [inner, x]
        self.features[-1] = pooled = self.pool(x)
        return self.head(flatten(pooled))

    def _unit_init(self, conv: SeedConv2d) -> InitialWeights:
        if self.kaiming:
            return normal_init(kaiming_std(conv, "relu"), tuple(conv.weight.shape[2:]))
        return default_unit_init(conv)

    def unit_layers(self) -> list[UnitLayer]:
        """The stem conv's and every block conv's channels, with their BatchNorms (see the module docstring)."""
        layers = [(self.conv1, self.bn1)]
        for block in self.blocks:
            layers += [(block.conv1, block.bn1), (block.conv2, block.bn2)]
        next_layers = [conv for conv, _ in layers[1:]] + [self.head]
        positions = [1] * (len(layers) - 1) + [self.positions]
        return [UnitLayer(conv, next_layer, self._unit_init(conv), norm=norm, positions=count)
                for (conv, norm), next_layer, count in zip(layers, next_layers, positions)]


class GainSeedResNet(GainHead, SeedResNet):
    """SeedResNet with a gain-modulated head."""


def build_resnet(*args, gain_head: bool, **kwargs) -> SeedResNet:
    """SeedResNet's arguments; a gain-modulated head if `gain_head`."""
    return (GainSeedResNet if gain_head else SeedResNet)(*args, **kwargs)
