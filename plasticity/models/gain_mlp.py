"""Gain-modulated networks for S seeds at once (the stability-gap paper's MLP, Rodriguez-Garcia et al. 2025).

A gain-modulated layer computes z = (x Wᵀ) ⊙ g + b: every output neuron i has a gain g_i that scales its
effective weights, W_eff = g ⊙ W. The gain is a buffer, not a parameter: it is never trained by gradient, it is
saved with the model's state_dict, and only an optimizer that drives it (NGM-SGD, `plasticity/methods/ngm_sgd.py`)
changes it. With g = 1 (every other method) the network is an ordinary MLP.

Weights carry a leading seed dimension (S, out, in), gains are (S, out), as in `plasticity.models.mlp.SeedMLP`, so one
job trains a block of seeds with batched matmuls. The paper's MLP: ReLU, weights N(0, 0.01²) in the hidden layers
and N(0, 0.05²) in the output layer, biases zero and frozen (the reference trains them with learning rate 0: "no
biases in effect"; here they do not require grad, so no optimizer moves them).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from plasticity.models.kernels import FillShiftedInputs
from plasticity.models.layers import LinearStack
from plasticity.activations import build_activation
from plasticity.config import ConfigError
from plasticity.models import register
from plasticity.models.units import UnitLayer, normal_init
from plasticity.seeding import generators


# In-place versions of pointwise activations (plasticity.activations.POINTWISE), bit for bit the same numbers.
IN_PLACE_ACTIVATIONS = {"relu": torch.relu_, "tanh": torch.tanh_, "sigmoid": torch.sigmoid_}


class GainLinear(nn.Module):
    """A seed-batched linear layer with a per-neuron gain: input (S, B, in) -> (S, B, out)."""

    def __init__(self, in_features: int, out_features: int, num_seeds: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.zeros(num_seeds, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(num_seeds, out_features), requires_grad=False)
        self.register_buffer("gain", torch.ones(num_seeds, out_features))

    def forward(self, x: torch.Tensor | FillShiftedInputs) -> torch.Tensor:
        product = x.product(self.weight) if isinstance(x, FillShiftedInputs) else torch.bmm(x, self.weight.mT)
        # Gain and bias act in place on the product: the joint protocol's evaluation runs thousands of test samples
        # through every layer after every iteration, and two fresh (S, N, out) tensors per layer cost ~15% of its
        # time. Autograd allows it (the product's gradient needs neither the product nor the result) and the
        # numbers are those of `(x Wᵀ) * g + b`, bit for bit.
        return product.mul_(self.gain.unsqueeze(1)).add_(self.bias.unsqueeze(1))


class GainMLP(LinearStack, nn.Module):
    """`depth` hidden layers of `width` units, every layer gain-modulated; weights N(0, hidden_std²) in the
    hidden layers and N(0, output_std²) in the output layer, drawn from each seed's own "init" stream."""

    def __init__(self, in_features: int, out_features: int, width: int, depth: int, activation_name: str,
                 seeds: list[int], hidden_std: float = 0.01, output_std: float = 0.05):
        super().__init__()
        self.activation_name = activation_name
        if build_activation(activation_name, 1).expansion != 1:
            raise ConfigError(f"activation {activation_name!r} changes the number of features; the gain-modulated "
                              "network needs one output per unit")
        sizes = [in_features] + [width] * depth + [out_features]
        self.layers = nn.ModuleList(GainLinear(a, b, len(seeds)) for a, b in zip(sizes[:-1], sizes[1:]))
        self.seeds, self.stds = list(seeds), [hidden_std] * depth + [output_std]
        self.reset_parameters()
        activation_gens = generators(seeds, "activation")
        self.activations = nn.ModuleList(build_activation(activation_name, width, activation_gens)
                                         for _ in range(depth))
        self.hidden: list[torch.Tensor] = []

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Weights N(0, std²) of each layer from each seed's own "init:<layer>" stream; biases and gains stay."""
        for index, (layer, std) in enumerate(zip(self.layers, self.stds)):
            layer.weight.copy_(torch.stack([torch.randn(layer.out_features, layer.in_features, generator=g)
                                            for g in generators(self.seeds, f"init:{index}")]) * std)

    def unit_layers(self) -> list[UnitLayer]:
        """Every hidden layer's neurons, redrawn from N(0, hidden_std²) like the layer's initial weights (their
        biases are frozen at zero, so methods leave them)."""
        return [UnitLayer(self.layers[index], self.layers[index + 1],
                          normal_init(self.stds[index], (self.layers[index].in_features,)))
                for index in range(len(self.activations))]

    def gains(self) -> list[torch.Tensor]:
        """The gain buffers, one (S, units) tensor per layer (input side first)."""
        return [layer.gain for layer in self.layers]

    def forward(self, x: torch.Tensor | FillShiftedInputs) -> torch.Tensor:
        """x (S, B, in) -> logits (S, B, out); keeps the hidden activations in `self.hidden` (CBP uses them).
        x may be FillShiftedInputs (evaluation on the CPU)."""
        self.hidden = []
        last = len(self.layers) - 1
        # Without autograd (evaluation), the activation overwrites the layer's output, for the reason given in
        # GainLinear.forward.
        in_place = None if torch.is_grad_enabled() else IN_PLACE_ACTIVATIONS.get(self.activation_name)
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < last:
                x = in_place(x) if in_place else self.activations[index](x)
                self.hidden.append(x)
        return x


@register("gain_mlp")
def build(input_shape: tuple[int, ...], out_features: int, seeds: list[int], width: int, depth: int,
          activation: str, init: dict | None = None) -> GainMLP:
    """Stability-gap MLP: a gain on every neuron, weights N(0, 0.01²) hidden and N(0, 0.05²) output, zero frozen
    biases."""
    return GainMLP(math.prod(input_shape), out_features, width, depth, activation, seeds, **(init or {}))
