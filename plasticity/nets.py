"""Multi-layer perceptrons holding S independent seeds at once (parameters with a leading seed dimension).

Small continual-learning nets trained online (batch 1) are bound by per-call overhead, not arithmetic: stacking
seeds into one batched matmul makes 100 seeds cost little more than one. The forward pass is ordinary
differentiable PyTorch, so autograd works; `backward_from_output_grad` is a hand-derived backward pass for the
training hot path (no graph, gradients written into preallocated `.grad` buffers), checked against autograd in the
tests.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.seeding import generators

# name -> (function, derivative(pre_activation, post_activation), name used by torch.nn.init.calculate_gain)
ACTIVATIONS = {
    "relu": (F.relu, lambda z, h: (z > 0).to(z.dtype), "relu"),
    "tanh": (torch.tanh, lambda z, h: 1 - h * h, "tanh"),
    "sigmoid": (torch.sigmoid, lambda z, h: h * (1 - h), "sigmoid"),
    "elu": (F.elu, lambda z, h: torch.where(z > 0, 1.0, h + 1), "relu"),
    "leaky_relu": (F.leaky_relu, lambda z, h: torch.where(z > 0, 1.0, 0.01), "leaky_relu"),
    "swish": (F.silu, lambda z, h: torch.sigmoid(z) * (1 + z * (1 - torch.sigmoid(z))), "relu"),
    "linear": (lambda z: z, lambda z, h: torch.ones_like(z), "linear"),
}


def activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def kaiming_uniform_bound(activation_name: str, fan_in: int) -> float:
    """Bound b of U(-b, b) = torch's kaiming_uniform_ for this activation (the reference's init; swish and elu
    use ReLU's gain, as the reference does)."""
    gain = nn.init.calculate_gain(ACTIVATIONS[activation_name][2])
    return gain * math.sqrt(3.0 / fan_in)


class SeedLinear(nn.Module):
    """`nn.Linear` for S seeds: weight (S, out, in), bias (S, out); input (S, B, in) -> (S, B, out)."""

    def __init__(self, in_features: int, out_features: int, num_seeds: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.zeros(num_seeds, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(num_seeds, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class SeedMLP(nn.Module):
    """`depth` hidden layers of `width` units with one activation, Kaiming-uniform weights and zero biases
    (the loss-of-plasticity reference's init); the output layer uses the linear gain."""

    def __init__(self, in_features: int, out_features: int, width: int, depth: int, activation_name: str,
                 seeds: list[int]):
        super().__init__()
        self.activation_name = activation_name
        self.act, self.act_derivative, _ = activation(activation_name)
        sizes = [in_features] + [width] * depth + [out_features]
        self.layers = nn.ModuleList(SeedLinear(a, b, len(seeds)) for a, b in zip(sizes[:-1], sizes[1:]))
        gens = generators(seeds, "init")
        with torch.no_grad():
            for index, layer in enumerate(self.layers):
                hidden = index < depth
                bound = kaiming_uniform_bound(activation_name if hidden else "linear", layer.in_features)
                layer.weight.copy_(torch.stack([
                    torch.empty(layer.out_features, layer.in_features).uniform_(-bound, bound, generator=g)
                    for g in gens]))
        # Plain lists of the parameters: nn.Module attribute lookup costs more than a small batched matmul.
        # (`.to(device)` swaps the parameters' data in place, so these stay valid.)
        self._weights = [layer.weight for layer in self.layers]
        self._biases = [layer.bias for layer in self.layers]
        self._inputs: list[torch.Tensor] = []
        self._pre: list[torch.Tensor] = []
        self.hidden: list[torch.Tensor] = []

    @property
    def num_seeds(self) -> int:
        return self.layers[0].weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (S, B, in) -> output (S, B, out); keeps each layer's input and the hidden activations
        (`self.hidden`, used by CBP and the probes)."""
        self._inputs, self._pre, self.hidden = [], [], []
        last = len(self._weights) - 1
        for index, (weight, bias) in enumerate(zip(self._weights, self._biases)):
            self._inputs.append(x)
            z = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
            if index == last:
                return z
            x = self.act(z)
            self._pre.append(z)
            self.hidden.append(x)

    def _deltas(self, grad_output: torch.Tensor):
        """Yield (layer index, d(loss)/d(layer output)) from the last layer down. The delta of the layer below
        is computed before each yield, so the caller may update the yielded layer's weights in place."""
        delta = grad_output
        for index in range(len(self._weights) - 1, -1, -1):
            below = None
            if index > 0:
                below = torch.bmm(delta, self._weights[index]) * self.act_derivative(self._pre[index - 1],
                                                                                     self.hidden[index - 1])
            yield index, delta
            delta = below

    @torch.no_grad()
    def backward_from_output_grad(self, grad_output: torch.Tensor) -> None:
        """Backpropagate d(loss)/d(output) (S, B, out) from the last forward into every parameter's `.grad`
        (overwritten, not accumulated: no `zero_grad` needed)."""
        for index, delta in self._deltas(grad_output):
            weight, bias = self._weights[index], self._biases[index]
            if weight.grad is None:
                weight.grad, bias.grad = torch.empty_like(weight), torch.empty_like(bias)
            torch.bmm(delta.transpose(1, 2), self._inputs[index], out=weight.grad)
            torch.sum(delta, dim=1, out=bias.grad)

    @torch.no_grad()
    def sgd_step_from_output_grad(self, grad_output: torch.Tensor, lr: float, weight_decay: float = 0.0) -> None:
        """Backward pass fused with torch.optim.SGD's update (no momentum): p <- (1 - lr·wd)·p - lr·grad, applied
        by one in-place batched matmul per layer instead of writing and re-reading gradient buffers — the
        memory traffic that dominates a wide net at batch 1."""
        keep = 1.0 - lr * weight_decay
        for index, delta in self._deltas(grad_output):
            self._weights[index].baddbmm_(delta.transpose(1, 2), self._inputs[index], beta=keep, alpha=-lr)
            if weight_decay:
                self._biases[index].mul_(keep)
            self._biases[index].add_(delta.sum(dim=1), alpha=-lr)


LOSSES = ("mse", "cross_entropy")


def loss_and_output_grad(output: torch.Tensor, target: torch.Tensor, loss: str):
    """Per-seed loss (S,) averaged over the batch (as F.mse_loss / F.cross_entropy do) and its gradient."""
    batch = output.shape[1]
    if loss == "mse":
        error = output - target
        per_seed = error.pow(2).mean(dim=(1, 2))
        return per_seed, error * (2.0 / error[0].numel())
    if loss == "cross_entropy":
        log_probs = torch.log_softmax(output, dim=-1)
        per_seed = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1).mean(dim=1)
        grad = log_probs.exp()
        grad.scatter_add_(-1, target.unsqueeze(-1), torch.full_like(grad[..., :1], -1.0))
        return per_seed, grad / batch
    raise ValueError(f"unknown loss {loss!r}; valid: {list(LOSSES)}")
