"""What the seed-batched vision networks share (lop_convnet, kumar_cnn in `convnet`; resnet18, slim_resnet18 in
`resnet_blocks`): the image-shape check, their hidden activations, and the output layer, plain or gain-modulated.

A network with a gain head is an instance of a `GainHead` subclass: only those have `gains()`, which is how NGM-SGD
tells a gain-modulated network from another (`hasattr(model, "gains")`).
"""
from __future__ import annotations

import torch
from torch import nn

from plasticity.activations import build_activation
from plasticity.config import ConfigError
from plasticity.models.gain_mlp import GainLinear
from plasticity.models.layers import SeedLinear, init_default_, init_normal_
from plasticity.seeding import generators


def image_shape(input_shape: tuple[int, ...], arch: str) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ConfigError(f"{arch} needs images of shape (channels, height, width); the benchmark gives "
                          f"{tuple(input_shape)}")
    return tuple(input_shape)


def hidden_activations(name: str, units: list[int], seeds: list[int], expanding: bool = False) -> nn.ModuleList:
    """One activation module per unit layer (its parameters per seed and per unit, or per channel of a map),
    drawn from each seed's "activation" stream in layer order. `expanding`: the network sizes its layers for an
    activation with more outputs than units (CReLU; the plain conv nets do, the ResNets' residual sums cannot)."""
    if build_activation(name, 1).expansion != 1 and not expanding:
        raise ConfigError(f"activation {name!r} changes the number of features; this network needs one "
                          "output per unit or channel (CReLU runs on the plain conv nets, e.g. kumar_cnn)")
    gens = generators(seeds, "activation")
    return nn.ModuleList(build_activation(name, count, gens) for count in units)


class SeedVisionNet(nn.Module):
    """Images (S, B, C, H, W) -> logits (S, B, classes) for S seeds. Subclasses build their layers, `head` (through
    `build_head`), `activations` (one per unit layer) and give `features` (one per unit layer) of the last forward
    pass."""

    def __init__(self, seeds: list[int], head_std: float):
        super().__init__()
        self.seeds, self.head_std = list(seeds), head_std

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    def probe_weights(self) -> list[torch.Tensor]:
        """Every parameter, whose mean |w| the probes record (Dohare et al.'s conv-net measure)."""
        return list(self.parameters())

    def build_head(self, in_features: int, out_features: int) -> nn.Module:
        head_type = GainLinear if isinstance(self, GainHead) else SeedLinear
        return head_type(in_features, out_features, self.num_seeds)

    def plain_head_init(self, head: nn.Module, gens: list[torch.Generator]) -> None:
        """The architecture's init of a plain head: PyTorch's default unless a subclass says otherwise."""
        init_default_(head, gens)

    def reset_head(self, gens: list[torch.Generator]) -> None:
        """The head as the architecture initialises it, from `gens`: a gain head's weights N(0, head_std²) (its
        bias stays zero and frozen), a plain head's by `plain_head_init`. Also the tasks protocol's
        `reset_head: init` (LOP's head resetting on class-incremental CIFAR-100)."""
        if isinstance(self, GainHead):
            init_normal_(self.head, self.head_std, gens)
        else:
            self.plain_head_init(self.head, gens)


class GainHead:
    """Mixin for a network whose head is a GainLinear (weights N(0, head_std²), zero frozen bias)."""

    def gains(self) -> list[torch.Tensor]:
        """The gain buffer NGM-SGD drives: the head's, (S, classes)."""
        return [self.head.gain]
