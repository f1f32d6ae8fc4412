"""Seed-batched layers: parameters with a leading seed dimension S, so that one module holds S independent networks
and a seed's numbers do not depend on the other seeds of its block.

Feature maps are (S, B, C, H, W), seed first like the MLP's (S, B, F); their memory layout follows the device.
On a GPU they are B-major: the tensor is a `.transpose(0, 1)` view of a contiguous (B, S, C, H, W) one, which,
viewed as (B, S·C, H, W), is an ordinary batch of images whose channels are the seeds' channels side by side, so
one grouped convolution (groups = S), one BatchNorm over S·C channels or one pooling call serves every seed, without
copies (`to_channels`, `from_channels`). On the CPU, convolutions and BatchNorms run one call per seed instead, for
bit-for-bit block invariance (`per_seed`), and the maps are S-major (contiguous), so that a seed's slice, and its
gradient, is a contiguous block in any block of seeds: no copy on the way into a call, none on the way back.
A chain of such layers may pass the seeds' maps on as a list instead (`SeedMaps`, `each_seed`): then the block's
maps are never stacked, nor their gradients concatenated.
Pooling takes either layout as a batch of images without a copy.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.activations import build_activation
from plasticity.models.units import InitialWeights, uniform_init


def kaiming_uniform_bound(activation_name: str, fan_in: int) -> float:
    """Bound b of U(-b, b) = torch's kaiming_uniform_ for the layer feeding this activation (the reference's init;
    swish, elu and gelu use ReLU's gain, as the reference does for the first two)."""
    gain = nn.init.calculate_gain(build_activation(activation_name, 1).init_gain)
    return gain * math.sqrt(3.0 / fan_in)


class SeedLinear(nn.Module):
    """`nn.Linear` for S seeds: weight (S, out, in), bias (S, out); input (S, B, in) -> (S, B, out).
    input_major: the weight's memory is (S, in, out) contiguous, as `plasticity.models.kernels` reads it; otherwise
    (S, out, in) as torch's, which elementwise optimizers step about twice as fast (fused Adam: 1.0 vs 2.3 ms a step
    for five 784-100-100-10 nets)."""

    def __init__(self, in_features: int, out_features: int, num_seeds: int, input_major: bool = False):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.zeros(num_seeds, in_features, out_features).transpose(1, 2) if input_major
                                   else torch.zeros(num_seeds, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(num_seeds, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


def fan_in(layer: nn.Module) -> int:
    """Inputs per unit of a seed-batched layer, weight (S, units, *fan_in): in·kh·kw for a convolution."""
    return math.prod(layer.weight.shape[2:])


def default_bound(layer: nn.Module) -> float:
    """PyTorch's default init of nn.Linear / nn.Conv2d, kaiming_uniform_(a=√5) for the weight and the same bound for
    the bias: U(±1/√fan_in)."""
    return 1 / math.sqrt(fan_in(layer))


def kaiming_std(layer: nn.Module, nonlinearity: str) -> float:
    """Standard deviation of nn.init.kaiming_normal_(mode="fan_in"): gain/√fan_in."""
    return nn.init.calculate_gain(nonlinearity) / math.sqrt(fan_in(layer))


def _fill_per_seed(tensor: torch.Tensor, gens: list[torch.Generator],
                   draw: Callable[[tuple[int, ...], torch.Generator], torch.Tensor]) -> None:
    """Seed s's slice drawn on the CPU from its own generator, so it does not depend on the block."""
    tensor.copy_(torch.stack([draw(tuple(tensor.shape[1:]), g) for g in gens]))


@torch.no_grad()
def init_default_(layer: nn.Module, gens: list[torch.Generator]) -> None:
    """PyTorch's default init of the layer, per seed: weight and bias U(±1/√fan_in)."""
    bound = default_bound(layer)
    tensors = [layer.weight] + ([layer.bias] if layer.bias is not None else [])
    for tensor in tensors:
        _fill_per_seed(tensor, gens, lambda shape, g: torch.empty(shape).uniform_(-bound, bound, generator=g))


@torch.no_grad()
def init_normal_(layer: nn.Module, std: float, gens: list[torch.Generator]) -> None:
    """Weight N(0, std²) per seed, bias 0."""
    _fill_per_seed(layer.weight, gens, lambda shape, g: torch.randn(shape, generator=g) * std)
    if layer.bias is not None:
        layer.bias.zero_()


def default_unit_init(layer: nn.Module) -> InitialWeights:
    """A replaced unit's incoming weights from the layer's PyTorch default init."""
    return uniform_init(default_bound(layer), tuple(layer.weight.shape[2:]))


def to_channels(x: torch.Tensor) -> torch.Tensor:
    """(S, B, C, H, W) -> (B, S·C, H, W): free for a B-major tensor, a copy otherwise."""
    return x.transpose(0, 1).flatten(1, 2)


def from_channels(y: torch.Tensor, num_seeds: int) -> torch.Tensor:
    """(B, S·C, H, W) -> (S, B, C, H, W), a B-major view."""
    return y.unflatten(1, (num_seeds, -1)).transpose(0, 1)


# Maps between seed-batched layers: one (S, B, C, H, W) tensor, or on the CPU a list of each seed's (B, C, H, W).
SeedMaps = torch.Tensor | list[torch.Tensor]


def per_seed(function: Callable[..., torch.Tensor], x: torch.Tensor, *arguments: list) -> torch.Tensor:
    """`function(x_s, *arguments_s)` for each seed's (B, C, H, W) slice, stacked into an S-major (S, B, C', H', W').

    The CPU path of the layers below. PyTorch's CPU convolution picks its algorithm from the shape and layout of
    its input, so one grouped call over S·C channels could compute a seed's numbers differently for another S;
    one call per seed, on a contiguous slice, gives every seed the call it would get alone. `arguments`: per-seed
    lists (`seed_slices`). `each_seed` without the stacking."""
    return stack_seeds(each_seed(function, x, *arguments))


def each_seed(function: Callable[..., torch.Tensor], maps: SeedMaps, *arguments: list) -> list[torch.Tensor]:
    """`function(x_s, *arguments_s)` for each seed's map, kept as a list of per-seed outputs: a chain of per-seed
    layers (`SeedConv2d.each_seed`) then never stacks, nor, in the backward pass, concatenates, a block's maps.
    The backward pass gets the same care as the forward: the CPU BatchNorm backward sums a strided gradient in
    another order, so each call receives its gradient contiguous (as it comes, for the S-major maps these layers
    pass on; made so otherwise)."""
    return [_contiguous_grad(function(x_s.contiguous(), *arguments_s))
            for x_s, *arguments_s in zip(seed_list(maps), *arguments)]


def seed_list(maps: SeedMaps) -> list[torch.Tensor] | tuple[torch.Tensor, ...]:
    """Each seed's map: the list itself, or the tensor's `seed_slices`."""
    return maps if isinstance(maps, list) else seed_slices(maps)


def stacked(maps: SeedMaps) -> torch.Tensor:
    """The maps as one (S, B, ...) tensor: the tensor itself, or the list stacked (`stack_seeds`)."""
    return stack_seeds(maps) if isinstance(maps, list) else maps


def stack_seeds(outputs: list[torch.Tensor]) -> torch.Tensor:
    """Per-seed tensors stacked into an S-major (S, ...) one; a block of one seed is its seed's tensor itself,
    unsqueezed: no copy."""
    return outputs[0].unsqueeze(0) if len(outputs) == 1 else torch.stack(outputs)


def seed_slices(tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each seed's slice of a (S, ...) tensor, as views (`unbind`, whose backward stacks the slices' gradients
    into one tensor); for one seed the squeezed tensor, a view whose gradient is passed on without that copy."""
    return tensor.unbind(0) if tensor.shape[0] != 1 else (tensor.squeeze(0),)


def _contiguous_grad(y: torch.Tensor) -> torch.Tensor:
    if y.requires_grad:
        y.register_hook(torch.Tensor.contiguous)
    return y


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def on_cpu(x: torch.Tensor) -> bool:
    return x.device.type == "cpu"


class SeedConv2d(nn.Module):
    """`nn.Conv2d` for S seeds: weight (S, out, in, kh, kw), bias (S, out) or None; input (S, B, in, H, W) ->
    (S, B, out, H', W'). One F.conv2d per seed on the CPU (see `per_seed`; S-major out), one grouped convolution
    elsewhere (B-major out; GPU runs are not bit for bit block-invariant anyway)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, num_seeds: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding = stride, padding
        self.weight = nn.Parameter(torch.zeros(num_seeds, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(num_seeds, out_channels)) if bias else None

    def forward(self, x: torch.Tensor, epilogue: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """The convolution, then `epilogue` if given: a function of a batch of images (N, C, H, W) that treats
        each image's channel on its own (a pointwise activation, a pooling). On the CPU it runs inside the per-seed
        loop, on each seed's output, so that the convolution's full-size output is never stacked for the block:
        each big map stays one seed's, and one copy is saved. Elsewhere it runs on the block's (B, S·C, H, W)."""
        return self.per_seed(x, epilogue) if on_cpu(x) else self.grouped(x, epilogue)

    def per_seed(self, x: torch.Tensor, epilogue: Callable | None = None) -> torch.Tensor:
        return stack_seeds(self.each_seed(x, epilogue))

    def each_seed(self, maps: SeedMaps, epilogue: Callable | None = None) -> list[torch.Tensor]:
        """The CPU path, each seed's output in a list (see `each_seed`)."""
        biases = seed_slices(self.bias) if self.bias is not None else [None] * len(self.weight)
        then = epilogue or _identity
        return each_seed(lambda x_s, weight, bias: then(F.conv2d(x_s, weight, bias, self.stride, self.padding)),
                         maps, seed_slices(self.weight), biases)

    def grouped(self, x: torch.Tensor, epilogue: Callable | None = None) -> torch.Tensor:
        num_seeds = self.weight.shape[0]
        bias = self.bias.flatten() if self.bias is not None else None
        y = F.conv2d(to_channels(x), self.weight.flatten(0, 1), bias, self.stride, self.padding, groups=num_seeds)
        return from_channels((epilogue or _identity)(y), num_seeds)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}, seeds={self.weight.shape[0]}")


class SeedBatchNorm2d(nn.Module):
    """`nn.BatchNorm2d` for S seeds: weight, bias, running_mean, running_var (S, C). Training mode normalises with
    each seed-channel's batch statistics and updates the running ones (momentum 0.1, unbiased variance, as torch);
    evaluation mode uses the running statistics. One F.batch_norm per seed on the CPU, as SeedConv2d."""

    def __init__(self, num_features: int, num_seeds: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_seeds, num_features))
        self.bias = nn.Parameter(torch.zeros(num_seeds, num_features))
        self.register_buffer("running_mean", torch.zeros(num_seeds, num_features))
        self.register_buffer("running_var", torch.ones(num_seeds, num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The identity transform and fresh statistics, as nn.BatchNorm2d starts."""
        self.weight.fill_(1)
        self.bias.zero_()
        self.running_mean.zero_()
        self.running_var.fill_(1)
        self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.num_batches_tracked.add_(1)
        return self.per_seed(x) if on_cpu(x) else self.grouped(x)

    def _normalise(self, x, running_mean, running_var, weight, bias) -> torch.Tensor:
        # The running statistics are views of the (S, C) buffers, which F.batch_norm updates in place.
        return F.batch_norm(x, running_mean, running_var, weight, bias, self.training, self.momentum, self.eps)

    def per_seed(self, x: torch.Tensor) -> torch.Tensor:
        return per_seed(self._normalise, x, *map(seed_slices, (self.running_mean, self.running_var, self.weight,
                                                               self.bias)))

    def grouped(self, x: torch.Tensor) -> torch.Tensor:
        y = self._normalise(to_channels(x), self.running_mean.view(-1), self.running_var.view(-1),
                            self.weight.flatten(), self.bias.flatten())
        return from_channels(y, x.shape[0])

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, seeds={self.weight.shape[0]}"


# Pooling runs on all seeds at once, also on the CPU: a max is exact, and torch's average pooling of a contiguous
# map sums each window on its own in a fixed order, so neither mixes channels nor depends on their number.
def _as_images(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """`function` of (S, B, C, H, W) maps viewed, without a copy, as one batch of images: (S·B, C, H, W) for
    S-major (contiguous) maps, (B, S·C, H, W) for B-major ones."""
    if x.is_contiguous():
        return function(x.flatten(0, 1)).unflatten(0, x.shape[:2])
    return from_channels(function(to_channels(x)), x.shape[0])


def max_pool(x: torch.Tensor, kernel_size: int | tuple[int, int]) -> torch.Tensor:
    """F.max_pool2d (stride = kernel) of (S, B, C, H, W) maps."""
    return _as_images(lambda images: F.max_pool2d(images, kernel_size), x)


def avg_pool(x: torch.Tensor, kernel_size: int | tuple[int, int]) -> torch.Tensor:
    """F.avg_pool2d (stride = kernel) of (S, B, C, H, W) maps."""
    return _as_images(lambda images: F.avg_pool2d(images, kernel_size), x)


def flatten(maps: SeedMaps) -> torch.Tensor:
    """(S, B, C, H, W) maps -> (S, B, C·H·W) in torch's (C, H, W) order, made S-major contiguous: the seed-batched
    matmul of the linear layer after it then reads each seed's inputs as one dense matrix, as in any block."""
    if isinstance(maps, list):
        return stack_seeds([m.flatten(1) for m in maps])
    return maps.flatten(2).contiguous()


class LinearStack:
    """The model interface (plasticity.models) of a stack of seed-batched linear layers, `layers`, whose forward
    keeps the hidden activations in `hidden`: the MLPs'."""

    @property
    def num_seeds(self) -> int:
        return self.layers[0].weight.shape[0]

    @property
    def head(self) -> nn.Module:
        return self.layers[-1]

    @property
    def features(self) -> list[torch.Tensor]:
        return self.hidden

    def probe_weights(self) -> list[torch.Tensor]:
        """The weights whose mean |w| the probes record: every layer's (not the biases), as the reference's."""
        return [layer.weight for layer in self.layers]
