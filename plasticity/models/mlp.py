"""Multi-layer perceptrons holding S independent seeds at once (parameters with a leading seed dimension).

Small continual-learning nets trained online (batch 1) are bound by per-call overhead, not arithmetic: stacking
seeds into one batched matmul makes 100 seeds cost little more than one. The forward pass is ordinary
differentiable PyTorch, so autograd works; `backward_from_output_grad` is a hand-derived backward pass for the
training hot path (no graph, gradients written into preallocated `.grad` buffers), checked against autograd in the
tests.

On CPU, `row_kernels=True` runs training steps through `plasticity.models.kernels` (numba): the forward pass and the
fused backward + SGD read only the weight rows of nonzero inputs, and keep CBP's weight magnitudes up to date in
the same pass; their weights are then stored input-major (the parameter is a transposed view).
"""
from __future__ import annotations

import math

import numpy as np

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.activations import build_activation
from plasticity.models import kernels, register
from plasticity.models.layers import LinearStack, SeedLinear, kaiming_uniform_bound
from plasticity.models.units import UnitLayer, uniform_init
from plasticity.seeding import generators


def parameter_count(in_features: int, out_features: int, width: int, depth: int, expansion: int = 1) -> int:
    """Weights and biases of an MLP whose hidden layers of `width` units pass on `expansion`·width features."""
    sizes = [in_features] + [width] * depth + [out_features]
    fan_ins = [sizes[0]] + [expansion * units for units in sizes[1:-1]]
    return sum(fan_in * units + units for fan_in, units in zip(fan_ins, sizes[1:]))


def parameter_matched_width(in_features: int, out_features: int, width: int, depth: int, expansion: int) -> int:
    """The hidden width whose network, with an activation that multiplies features by `expansion` (CReLU: 2), has
    the parameter count closest to the plain network of `width` units (e.g. 784-100-100-10 ReLU: CReLU width 91)."""
    target = parameter_count(in_features, out_features, width, depth)
    return min(range(1, width + 1),
               key=lambda units: abs(parameter_count(in_features, out_features, units, depth, expansion) - target))


class SeedMLP(LinearStack, nn.Module):
    """`depth` hidden layers of `width` units with one activation (by name, `plasticity.activations`; each hidden
    layer has its own module, holding its parameters, if any, per seed), Kaiming-uniform weights and zero biases
    (the loss-of-plasticity reference's init); the output layer uses the linear gain. An activation that passes on
    more features than it has units (CReLU) gets the parameter-matched width instead of `width`.

    row_kernels: run batch-1 forward passes without autograd, and the fused SGD steps that follow them, through
    the CPU kernels of `plasticity.models.kernels` (online learning's case; larger batches, e.g. the probes, are
    BLAS's). The caller decides: results differ from the BLAS path in the last bits."""


    def __init__(self, in_features: int, out_features: int, width: int, depth: int, activation_name: str,
                 seeds: list[int], row_kernels: bool = False):
        super().__init__()
        self.activation_name = activation_name
        expansion = build_activation(activation_name, 1).expansion
        if expansion > 1:
            width = parameter_matched_width(in_features, out_features, width, depth, expansion)
        activation_gens = generators(seeds, "activation")
        self.activations = nn.ModuleList(build_activation(activation_name, width, activation_gens)
                                         for _ in range(depth))
        # The kernels take ∂h/∂z from a parameter-free pointwise activation; others train through BLAS.
        self.row_kernels = row_kernels and all(act.pointwise for act in self.activations)
        fan_ins = [in_features] + [expansion * width] * depth
        units = [width] * depth + [out_features]
        self.layers = nn.ModuleList(SeedLinear(a, b, len(seeds), input_major=self.row_kernels)
                                    for a, b in zip(fan_ins, units))
        self.seeds = list(seeds)
        self.reset_parameters()
        # Plain lists of the parameters: nn.Module attribute lookup costs more than a small batched matmul.
        # (`.to(device)` swaps the parameters' data in place, so these stay valid.)
        self._weights = [layer.weight for layer in self.layers]
        self._biases = [layer.bias for layer in self.layers]
        self._trace = ForwardTrace()
        # Sums of |weight| per row (input unit) and column (output unit) of each layer, kept by the kernels;
        # `_magnitudes_version` is each weight's autograd version counter when they were last exact (any
        # in-place change from PyTorch, e.g. CBP replacing a unit or another optimizer, bumps it).
        self._row_abs_sums: list[torch.Tensor] | None = None
        self._col_abs_sums: list[torch.Tensor] | None = None
        self._magnitudes_version: list[int] = []
        self._mean_magnitudes: list | None = None       # numpy views for `unit_magnitudes` on the CPU
        self._kernel_storage: list = []                   # see `_kernel_arrays`
        self._kernel_views: list = []
        # Checkpoints carry the sums (see get_extra_state); they are restored once the parameters are loaded.
        self._loaded_magnitudes: dict | None = None
        self.register_load_state_dict_post_hook(SeedMLP._restore_magnitudes)

    @property
    def hidden(self) -> list[torch.Tensor]:
        """The hidden activations of the last forward pass, one (S, B, units) tensor per hidden layer."""
        return self._trace.hidden

    @property
    def _last_forward_by_kernels(self) -> bool:
        return self._trace.by_kernels

    def _bound(self, index: int) -> float:
        hidden = index < len(self.activations)
        return kaiming_uniform_bound(self.activation_name if hidden else "linear", self.layers[index].in_features)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Kaiming-uniform weights (the activation's gain; linear for the output layer) from each seed's "init"
        stream, zero biases."""
        gens = generators(self.seeds, "init")
        for index, layer in enumerate(self.layers):
            bound = self._bound(index)
            layer.weight.copy_(torch.stack([
                torch.empty(layer.out_features, layer.in_features).uniform_(-bound, bound, generator=g)
                for g in gens]))
            layer.bias.zero_()

    def unit_layers(self) -> list[UnitLayer]:
        """Every hidden layer's neurons, redrawn from the layer's Kaiming-uniform init."""
        return [UnitLayer(self.layers[index], self.layers[index + 1],
                          uniform_init(self._bound(index), (self.layers[index].in_features,)))
                for index in range(len(self.activations))]

    def _uses_kernels(self, x: torch.Tensor) -> bool:
        return (self.row_kernels and not torch.is_grad_enabled() and x.device.type == "cpu"
                and x.shape[1] == 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (S, B, in) -> output (S, B, out); keeps each layer's input and the hidden activations
        (`self.hidden`, used by CBP and the probes)."""
        trace = self._trace
        trace.inputs, trace.pre, trace.hidden = inputs, pre, hidden = [], [], []
        trace.by_kernels = by_kernels = self._uses_kernels(x)
        arrays = self._kernel_arrays() if by_kernels else None
        last = len(self._weights) - 1
        for index, (weight, bias) in enumerate(zip(self._weights, self._biases)):
            if by_kernels:
                x = x.contiguous()
                z = x.new_empty(x.shape[0], x.shape[1], weight.shape[1])
                kernels.linear_forward(*arrays[index], x.numpy(), z.numpy())
            else:
                z = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
            inputs.append(x)
            if index == last:
                return z
            x = self.activations[index](z)
            pre.append(z)
            hidden.append(x)

    def _deltas(self, grad_output: torch.Tensor):
        """Yield (layer index, d(loss)/d(layer output)) from the last layer down. The delta of the layer below
        is computed before each yield, so the caller may update the yielded layer's weights in place."""
        delta, trace = grad_output, self._trace
        for index in range(len(self._weights) - 1, -1, -1):
            below = None
            if index > 0:
                below = self.activations[index - 1].backward(trace.pre[index - 1], trace.hidden[index - 1],
                                                             torch.bmm(delta, self._weights[index]))
            yield index, delta
            delta = below

    @torch.no_grad()
    def backward_from_output_grad(self, grad_output: torch.Tensor) -> None:
        """Backpropagate d(loss)/d(output) (S, B, out) from the last forward into every parameter's `.grad`
        (overwritten, not accumulated: no `zero_grad` needed; activations write their own parameters')."""
        for index, delta in self._deltas(grad_output):
            weight, bias = self._weights[index], self._biases[index]
            if weight.grad is None:
                weight.grad, bias.grad = torch.empty_like(weight), torch.empty_like(bias)
            torch.bmm(delta.transpose(1, 2), self._trace.inputs[index], out=weight.grad)
            torch.sum(delta, dim=1, out=bias.grad)

    @torch.no_grad()
    def sgd_step_from_output_grad(self, grad_output: torch.Tensor, lr: float, weight_decay: float = 0.0) -> None:
        """Backward pass fused with torch.optim.SGD's update (no momentum): p <- (1 - lr·wd)·p - lr·grad, without
        writing and re-reading gradient buffers — the memory traffic that dominates a wide net at batch 1.
        After a forward by the kernels (and without weight decay, which changes every weight) the kernels do it
        touching only the rows of nonzero inputs; otherwise one in-place batched matmul per layer."""
        if self._last_forward_by_kernels and not weight_decay:
            self._kernel_sgd_step(grad_output.contiguous(), lr)
            return
        keep = 1.0 - lr * weight_decay
        for index, delta in self._deltas(grad_output):
            self._weights[index].baddbmm_(delta.transpose(1, 2), self._trace.inputs[index], beta=keep, alpha=-lr)
            if weight_decay:
                self._biases[index].mul_(keep)
            self._biases[index].add_(delta.sum(dim=1), alpha=-lr)
        for param in self.activations.parameters():     # their grads were written by `_deltas`
            param.mul_(keep).add_(param.grad, alpha=-lr)

    def trains_steps_in_kernels(self, loss: str) -> bool:
        """Whether `train_steps` can train this network: CPU kernels and hidden activations that they compute."""
        return (self.row_kernels and self._weights[0].device.type == "cpu" and loss in LOSSES
                and len(self._weights) <= kernels.MAX_STEP_LAYERS
                and self.activation_name in kernels.STEP_ACTIVATIONS)

    @torch.no_grad()
    def train_steps(self, inputs: torch.Tensor, targets: torch.Tensor, loss: str, metric_total: torch.Tensor,
                    lr: float, weight_decay: float = 0.0, adam: tuple | None = None) -> None:
        """Online training at batch 1 on every example of inputs (S, n, in), in one `kernels.train_steps` call:
        the step-by-step path (forward, `loss_and_output_grad`, the update) without its per-step calls. Each
        step's online metric (accuracy, or the squared error), measured before its update, is added to
        metric_total (S,).

        The update is torch.optim.SGD's (no momentum; `weight_decay` coupled), or with adam = (beta1, beta2, eps,
        steps taken, [(exp_avg, exp_avg_sq) of every parameter in `parameters()` order]) torch.optim.Adam's
        without weight decay, its moments updated in place. The same numbers as the step-by-step path for SGD on
        ReLU and linear networks under the squared error without weight decay; elsewhere the last bits of the
        log-softmax, tanh, the decayed update (BLAS's there) and Adam's arithmetic are the kernels' own."""
        kernels.train_steps(*self.step_arguments(inputs, targets, loss, lr, weight_decay, adam), metric_total.numpy())

    def step_arguments(self, inputs: torch.Tensor, targets: torch.Tensor, loss: str, lr: float,
                       weight_decay: float = 0.0, adam: tuple | None = None) -> tuple:
        """`kernels.train_steps`' arguments but the last (metric_total) for `train_steps`: also for a method that
        takes the kernels' steps with its own work between them (CBP's `train_steps`). The |weight| sums of
        `unit_magnitudes`, where tracked, are made exact first and passed on for the kernels to keep (plain SGD
        only)."""
        arrays = self._kernel_arrays()
        dtype = arrays[0][0].dtype

        def padded(parts, dims, dtype=dtype):
            """Every tuple the kernel takes has MAX_STEP_LAYERS entries (empty ones after the layers): one compiled
            kernel for every depth, where a tuple of each length would be compiled anew (seconds per depth)."""
            return tuple(parts) + tuple(np.empty((0,) * dims, dtype)
                                        for _ in range(kernels.MAX_STEP_LAYERS - len(parts)))

        tracked = self._magnitudes_exact()
        if tracked and (adam or weight_decay):
            raise ValueError("the kernels keep the |weight| sums of plain SGD only (no Adam, no weight decay)")
        weights, biases = padded([weight for weight, _ in arrays], 3), padded([bias for _, bias in arrays], 2)
        labels = targets.contiguous().numpy() if loss == "cross_entropy" else np.empty((0, 0), dtype=np.int64)
        values = np.empty((0, 0, 0), dtype=dtype) if loss == "cross_entropy" else targets.contiguous().numpy()
        beta1, beta2, eps, taken, pairs = adam or (0.0, 0.0, 0.0, 0, [])
        weight_moments, bias_moments = pairs[0::2], pairs[1::2]
        moments = (padded([_input_major(m) for m, _ in weight_moments], 3),
                   padded([_input_major(v) for _, v in weight_moments], 3),
                   padded([m.numpy() for m, _ in bias_moments], 2), padded([v.numpy() for _, v in bias_moments], 2))
        hyper = np.array([lr, 1.0 - lr * weight_decay, beta1, beta2, eps, 1.0 - beta1, 1.0 - beta2], dtype=dtype)
        sums = [padded([sums.numpy() for sums in all_sums] if tracked else [], 2, np.float64)
                for all_sums in (self._row_abs_sums, self._col_abs_sums)]
        return (len(arrays), weights, biases, moments, kernels.STEP_ACTIVATIONS[self.activation_name],
                inputs.contiguous().numpy(), labels, values, hyper, taken, *sums)

    def _kernel_arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per layer, the numpy views (input-major weight, bias) that the kernels read and write, made again only
        when a parameter's storage changes (`.to()`, `.double()`): at batch 1 on a small net, making them at
        every call costs about as much as the kernels' arithmetic."""
        storage = [(weight.data_ptr(), bias.data_ptr()) for weight, bias in zip(self._weights, self._biases)]
        if storage != self._kernel_storage:
            self._kernel_views = [(_input_major(weight), bias.detach().numpy())
                                  for weight, bias in zip(self._weights, self._biases)]
            self._kernel_storage = storage
        return self._kernel_views

    def _kernel_sgd_step(self, delta: torch.Tensor, lr: float) -> None:
        tracked = self._magnitudes_exact()
        arrays = self._kernel_arrays()
        # In the weights' precision (as torch.optim.SGD applies it): a Python float would make the kernels'
        # arithmetic float64.
        lr_typed = np.asarray(lr, dtype=arrays[0][0].dtype)[()]
        no_rows = np.empty((0, 0), dtype=bool)
        trace = self._trace
        for index in range(len(self._weights) - 1, -1, -1):
            inputs = trace.inputs[index]
            if index > 0:
                derivative = self.activations[index - 1].derivative(trace.pre[index - 1], trace.hidden[index - 1])
                need_grad = (derivative != 0).any(dim=1).numpy()
            else:
                need_grad = no_rows
            grad_in = torch.empty_like(inputs)
            row_sums = self._row_abs_sums[index].numpy() if tracked else _NOT_TRACKED
            col_sums = self._col_abs_sums[index].numpy() if tracked else _NOT_TRACKED
            kernels.linear_backward_sgd(*arrays[index], inputs.numpy(), delta.numpy(), lr_typed, need_grad,
                                        grad_in.numpy(), row_sums, col_sums)
            if index > 0:
                delta = grad_in * derivative

    def track_unit_magnitudes(self) -> None:
        """Start keeping the |weight| sums that `unit_magnitudes` reads (CBP's utilities need them each step)."""
        if self._row_abs_sums is None:
            self._row_abs_sums = [w.new_zeros(w.shape[0], w.shape[2], dtype=torch.float64) for w in self._weights]
            self._col_abs_sums = [w.new_zeros(w.shape[0], w.shape[1], dtype=torch.float64) for w in self._weights]
            self._magnitudes_version = [-1] * len(self._weights)

    def _magnitudes_exact(self) -> bool:
        """True if the |weight| sums are tracked and exact now (re-summing a layer that changed outside the
        kernels, or whose sums the kernels could not keep because its forward was not theirs)."""
        if self._row_abs_sums is None:
            return False
        for index, weight in enumerate(self._weights):
            if self._magnitudes_version[index] != weight._version:
                if self.row_kernels and weight.device.type == "cpu":
                    kernels.abs_sums(_input_major(weight), self._row_abs_sums[index].numpy(),
                                     self._col_abs_sums[index].numpy())
                else:
                    magnitude = weight.detach().abs()
                    torch.sum(magnitude, dim=1, dtype=torch.float64, out=self._row_abs_sums[index])
                    torch.sum(magnitude, dim=2, dtype=torch.float64, out=self._col_abs_sums[index])
                self._magnitudes_version[index] = weight._version
        return True

    def get_extra_state(self) -> dict:
        """For `state_dict()` (checkpoints): the tracked |weight| sums and which are exact now. A resumed run must
        continue these running sums, not re-sum the weights: a fresh sum differs from them in the last bits."""
        if self._row_abs_sums is None:
            return {}
        return {"row_abs_sums": self._row_abs_sums, "col_abs_sums": self._col_abs_sums,
                "exact": [version == weight._version
                          for version, weight in zip(self._magnitudes_version, self._weights)]}

    def set_extra_state(self, state: dict) -> None:
        # load_state_dict calls this before it copies the layers' parameters (which bumps their versions), so the
        # sums are put back by `_restore_magnitudes`, the post-load hook.
        self._loaded_magnitudes = state or None

    def _restore_magnitudes(self, incompatible_keys) -> None:
        state, self._loaded_magnitudes = self._loaded_magnitudes, None
        if state is None:
            return
        self.track_unit_magnitudes()
        for mine, saved in zip(self._row_abs_sums + self._col_abs_sums, state["row_abs_sums"] + state["col_abs_sums"]):
            mine.copy_(saved)
        self._magnitudes_version = [weight._version if exact else -1
                                    for exact, weight in zip(state["exact"], self._weights)]

    @torch.no_grad()
    def unit_magnitudes(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per hidden layer, the mean |input weight| and mean |output weight| of each unit, (S, units)."""
        self.track_unit_magnitudes()
        self._magnitudes_exact()
        if self._weights[0].device.type != "cpu":
            incoming = [(sums / weight.shape[2]).to(weight.dtype)
                        for sums, weight in zip(self._col_abs_sums[:-1], self._weights[:-1])]
            outgoing = [(sums / weight.shape[1]).to(weight.dtype)
                        for sums, weight in zip(self._row_abs_sums[1:], self._weights[1:])]
            return incoming, outgoing
        # On the CPU a tensor operation's call costs more than this arithmetic: the same IEEE operations in
        # numpy, into buffers made once (valid until the next call).
        if self._mean_magnitudes is None:
            self._mean_magnitudes = [
                [(sums.numpy(), weight.shape[dim], buffer, buffer.numpy())
                 for sums, weight, buffer in zip(all_sums, weights, [torch.empty(w.shape[0], w.shape[3 - dim],
                                                                                 dtype=w.dtype) for w in weights])]
                for all_sums, weights, dim in ((self._col_abs_sums[:-1], self._weights[:-1], 2),
                                               (self._row_abs_sums[1:], self._weights[1:], 1))]
        for views in self._mean_magnitudes:
            for sums, count, _, out in views:
                np.divide(sums, count, out=out, casting="same_kind")
        return tuple([buffer for _, _, buffer, _ in views] for views in self._mean_magnitudes)


_NOT_TRACKED = np.empty((0, 0), dtype=np.float64)


class ForwardTrace:
    """What the backward passes need of the last forward pass: each layer's input, the hidden layers' pre-activations
    and activations, and whether the kernels computed it. A plain object: at batch 1, setting attributes of an
    nn.Module at every forward pass (its __setattr__ checks for parameters and submodules) is a measurable cost."""
    __slots__ = ("inputs", "pre", "hidden", "by_kernels")

    def __init__(self):
        self.inputs: list[torch.Tensor] = []
        self.pre: list[torch.Tensor] = []
        self.hidden: list[torch.Tensor] = []
        self.by_kernels = False


def _input_major(weight: torch.Tensor) -> np.ndarray:
    """The (S, in, out) array behind a SeedLinear weight, for the kernels (which write it in place)."""
    return weight.detach().transpose(1, 2).numpy()


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


@register("mlp")
def build(input_shape: tuple[int, ...], out_features: int, seeds: list[int], width: int, depth: int,
          activation: str, row_kernels: bool = False) -> SeedMLP:
    """Loss-of-plasticity MLP: `depth` hidden layers of `width` units, Kaiming-uniform weights, zero biases."""
    return SeedMLP(math.prod(input_shape), out_features, width, depth, activation, seeds, row_kernels=row_kernels)
