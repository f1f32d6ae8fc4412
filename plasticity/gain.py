"""Gain-modulated networks for S seeds at once (the stability-gap paper's MLP, Rodriguez-Garcia et al. 2025).

A gain-modulated layer computes z = (x Wᵀ) ⊙ g + b: every output neuron i has a gain g_i that scales its
effective weights, W_eff = g ⊙ W. The gain is a buffer, not a parameter: it is never trained by gradient, it is
saved with the model's state_dict, and only an optimizer that drives it (NGM-SGD, `plasticity/methods/ngm_sgd.py`)
changes it. With g = 1 (every other method) the network is an ordinary MLP.

Weights carry a leading seed dimension (S, out, in), gains are (S, out), as in `plasticity.nets.SeedMLP`, so one
job trains a block of seeds with batched matmuls. The paper's MLP: ReLU, weights N(0, 0.01²) in the hidden layers
and N(0, 0.05²) in the output layer, biases zero and frozen (the reference trains them with learning rate 0: "no
biases in effect"; here they do not require grad, so no optimizer moves them).
"""
from __future__ import annotations

import torch
from torch import nn

from plasticity import kernels
from plasticity.activations import build_activation
from plasticity.config import ConfigError
from plasticity.seeding import generators


# In-place versions of pointwise activations (plasticity.activations.POINTWISE), bit for bit the same numbers.
IN_PLACE_ACTIVATIONS = {"relu": torch.relu_, "tanh": torch.tanh_, "sigmoid": torch.sigmoid_}


class FillShiftedInputs:
    """First-layer inputs x (S, N, in) most of whose entries equal one value `fill` (black MNIST pixels after
    standardisation), for a layer's product without autograd on the CPU.

    They are kept as x − fill, exactly zero at those entries, and x Wᵀ = (x − fill) Wᵀ + fill · Σ_i W[:, :, i] reads
    only the weight rows of the other entries (`plasticity.kernels.linear_forward`, the online protocol's kernel):
    for the ~19% non-black pixels of MNIST about twice as fast as the dense product, which the joint protocol's
    evaluation of thousands of test images after every iteration is bound by. The same numbers but for float
    rounding (another order of summation); each seed's are computed on their own, in a fixed order.
    """

    def __init__(self, x: torch.Tensor, fill: float):
        if x.device.type != "cpu":
            raise ValueError("FillShiftedInputs runs on the CPU kernels; keep inputs on other devices dense")
        self.fill = fill
        self.shifted = (x - fill).contiguous()

    @property
    def density(self) -> float:
        """The fraction of entries that differ from `fill`: the share of the dense product's work left."""
        return (self.shifted != 0).float().mean().item()

    def product(self, weight: torch.Tensor) -> torch.Tensor:
        """x Wᵀ for weight (S, out, in): (S, N, out)."""
        weight = weight.detach()
        seeds, batch, _ = self.shifted.shape
        out = self.shifted.new_empty(seeds, batch, weight.shape[1])
        offset = weight.sum(2).mul_(self.fill)
        kernels.linear_forward(weight.transpose(1, 2).contiguous().numpy(), offset.numpy(), self.shifted.numpy(),
                               out.numpy())
        return out


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


class GainMLP(nn.Module):
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
        with torch.no_grad():
            for index, layer in enumerate(self.layers):
                std = hidden_std if index < depth else output_std
                layer.weight.copy_(torch.stack([torch.randn(layer.out_features, layer.in_features, generator=g)
                                                for g in generators(seeds, f"init:{index}")]) * std)
        activation_gens = generators(seeds, "activation")
        self.activations = nn.ModuleList(build_activation(activation_name, width, activation_gens)
                                         for _ in range(depth))
        self.hidden: list[torch.Tensor] = []

    @property
    def num_seeds(self) -> int:
        return self.layers[0].weight.shape[0]

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
