"""Continual backpropagation (Dohare et al. 2024): backprop plus generate-and-test of hidden units.

After every optimizer step, each hidden unit's utility is updated as a running average, and a small fraction of
the mature units with the lowest utility is reinitialised: fresh incoming weights from the layer's own initial
distribution, zero input bias, the unit's BatchNorm entries reset, zero outgoing weights (so the network's
function is unchanged), and the unit's mean contribution moved into the next layer's bias. It acts on any
architecture through its unit layers (`plasticity.models.units`): a unit is a neuron or a conv output channel.

Follows the reference (shibhansh/loss-of-plasticity: `lop/algos/gnt.py` for MLPs, `convGnT.py` for conv nets,
`res_gnt.py` for the ResNet-18) step for step, with these deliberate differences, each a bug of the reference:
- the next-layer bias correction: gnt.py reads the running mean *after* zeroing it (a no-op); we apply the
  correction the paper describes, with the mean before the reset;
- conv nets (convGnT): the Adam state of replaced units is reset too (convGnT's reset is skipped for the Adam it
  is given), and the statistics are the same running averages as gnt.py's;
- ResNet-18 (res_gnt.py): its running feature magnitude is a growing sum, never decayed; ours decays with η like
  every other statistic (res_gnt.py's utility is then outgoing magnitude × that average; ours, with
  util_type `contribution`, the running average of the product, gnt.py's definition, which one implementation
  keeps for every architecture);
- a replaced unit's incoming weights come from its own layer's init (the reference draws Kaiming-uniform for
  every conv layer, whatever the net's init; under the joint protocol the gain MLP is initialised N(0, 0.01²)).
Channels of a convolution are measured over batch and positions, as convGnT does; a channel of the last conv
before a flatten feeds several inputs of the linear layer after it: its utility is averaged over them and all of
them are cut. The bias correction needs a linear next layer with a trainable bias fed by one input per unit:
conv-to-conv and conv-to-flatten units get none (as in convGnT; behind a BatchNorm it would be normalised away).

`ContinualBackprop` also runs on an ordinary `nn.Sequential` of `nn.Linear` + activation modules
(`ContinualBackprop.from_sequential`), where S = 1.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from numba import njit
from torch import nn

from plasticity.config import ConfigError
from plasticity.methods import Learner, register
from plasticity.methods.adam import ResettableAdam
from plasticity.models import kernels
from plasticity.models.kernels import step_one_seed, step_scratch
from plasticity.models.layers import kaiming_uniform_bound
from plasticity.models.units import UnitLayer, feature_statistic_dims, seed_major, uniform_init
from plasticity.seeding import ChunkedStream, generators

UTILITY_TYPES = ("contribution", "adaptation", "zero_contribution", "adaptable_contribution")


class _SeedView(nn.Module):
    """An ordinary nn.Linear seen with a leading seed dimension of 1 (views: writes reach the parameters)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight.unsqueeze(0)

    @property
    def bias(self) -> torch.Tensor:
        return self.linear.bias.unsqueeze(0)


def _parameter(module: nn.Module, name: str, index: tuple) -> tuple[torch.Tensor, tuple]:
    """The parameter behind `module.name` and `index` into it (the seed index dropped for a _SeedView)."""
    if isinstance(module, _SeedView):
        return getattr(module.linear, name), index[1:]
    return getattr(module, name), index


def _mean_over(matrices: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of (S, rows, cols) over rows (dim 1) or cols (dim 2). Over rows it is a row vector times the matrices:
    BLAS streams a wide matrix faster than a strided reduction does (measured: 2000x2000, 0.36 vs 0.52 ms)."""
    if dim == 2:
        return matrices.mean(dim=2)
    ones = matrices.new_full((matrices.shape[0], 1, matrices.shape[1]), 1.0 / matrices.shape[1])
    return torch.bmm(ones, matrices).squeeze(1)


@njit(cache=True, nogil=True, error_model="numpy")        # x / 0 is inf or NaN, as in torch
def _test_seed(s, hidden, incoming, outgoing, age, mean, utility, corrected_mean, accumulated, coin, eta, util_type,
               maturity_threshold, replacement_rate, accumulate):
    """`ContinualBackprop._due_units` for one seed s and one example: hidden, incoming and outgoing (units,) are
    its features and unit magnitudes, the statistics (S, units) and accumulated (S,); returns how many units are
    due. The same formulas in the same order and precision as the tensor path; torch's add-with-alpha may fuse a
    multiply-add (FMA) and its pow is another implementation's, so values may differ in the last bit. (No
    fastmath, also where the kernel steps call it: a diverging seed's inf and NaN must propagate, and the same
    bits as `_test_one_example`.)"""
    one = np.float32(1.0)
    rest = one - eta
    mature = 0
    for u in range(hidden.shape[0]):
        a = age[s, u] + one
        age[s, u] = a
        m = mean[s, u] * eta + hidden[u] * rest
        mean[s, u] = m
        centred = m / (one - eta ** a)                   # Adam-style bias correction
        corrected_mean[s, u] = centred
        if util_type == 1:                                # adaptation
            instant = one / incoming[u]
        else:
            deviation = abs(hidden[u]) if util_type == 0 else abs(hidden[u] - centred)
            instant = outgoing[u] * deviation
            if util_type == 3:                            # adaptable_contribution
                instant = instant / incoming[u]
        utility[s, u] = utility[s, u] * eta + instant * rest
        mature += a > maturity_threshold
    due = np.float32(mature) * replacement_rate
    if accumulate:
        accumulated[s] += due
        whole = np.floor(accumulated[s])
        accumulated[s] -= whole
        return whole
    return np.floor(due) + (due > 0 and due < 1 and coin <= due)


@njit(cache=True, nogil=True, error_model="numpy")
def _test_one_example(hidden, incoming, outgoing, age, mean, utility, corrected_mean, accumulated, coin, eta,
                      util_type, maturity_threshold, replacement_rate, accumulate, count):
    """`_test_seed` for features of one example per seed (online learning on the CPU): one pass over the units
    instead of some twenty tensor operations, whose per-call cost is most of CBP's at batch 1. Arrays (S, units),
    float32, but accumulated, coin and count (the result: units to replace), (S,)."""
    for s in range(hidden.shape[0]):
        count[s] = _test_seed(s, hidden[s], incoming[s], outgoing[s], age, mean, utility, corrected_mean,
                              accumulated, coin[s], eta, util_type, maturity_threshold, replacement_rate, accumulate)


@njit(cache=True, nogil=True)
def _mean_magnitudes(col_sums, next_row_sums, fan_in, fan_out, incoming, outgoing):
    """Each unit's mean |incoming| and |outgoing| weight from the float64 sums, rounded to float32 as
    `SeedMLP.unit_magnitudes` does (an exact division: no fastmath reciprocal)."""
    for u in range(incoming.shape[0]):
        incoming[u] = col_sums[u] / fan_in
        outgoing[u] = next_row_sums[u] / fan_out


@njit(cache=True, nogil=True, fastmath=kernels.FASTMATH, error_model="numpy")
def _train_steps_testing_units(layers, weights, biases, moments, activation, inputs, labels, targets, hyper,
                               first_step, row_sums, col_sums, metric_total, start, end, coins_from, ages, means,
                               utilities, corrected_means, accumulated, coins, eta, util_type, maturity_threshold,
                               replacement_rate, accumulate, count):
    """`kernels.train_steps` (plain SGD, |weight| sums kept) with CBP's test of every hidden layer's units after
    each step, from the step's features and the updated unit magnitudes (mean |weight| in and out, as
    `SeedMLP.unit_magnitudes` computes them), on examples start..end-1; stops after the first step at which some
    unit is due and returns the next example's index (end when done), count (hidden layers, S) holding that step's
    numbers due. Per hidden layer: the statistics (S, units), accumulated (S,) and coins (S, steps) of the steps
    from example `coins_from` on."""
    scratch = step_scratch(layers, weights, inputs)
    hidden = scratch[1]
    widest = 1
    for layer in range(layers - 1):
        widest = max(widest, weights[layer].shape[2])
    incoming = np.empty(widest, dtype=inputs.dtype)
    outgoing = np.empty(widest, dtype=inputs.dtype)
    typed = np.zeros(3, dtype=inputs.dtype)
    for step in range(start, end):
        due = False
        for s in range(inputs.shape[0]):
            step_one_seed(s, step, layers, weights, biases, moments, activation, inputs, labels, targets, hyper,
                          typed, metric_total, scratch, row_sums, col_sums)
            for layer in range(layers - 1):
                units = weights[layer].shape[2]
                _mean_magnitudes(col_sums[layer][s], row_sums[layer + 1][s], weights[layer].shape[1],
                                 weights[layer + 1].shape[2], incoming[:units], outgoing[:units])
                whole = _test_seed(s, hidden[layer], incoming[:units], outgoing[:units], ages[layer], means[layer],
                                   utilities[layer], corrected_means[layer], accumulated[layer],
                                   coins[layer][s, step - coins_from], eta, util_type, maturity_threshold, replacement_rate,
                                   accumulate)
                count[layer, s] = whole
                due = due or whole > 0
        if due:
            return step + 1
    return end


class ContinualBackprop:
    """Generate-and-test over unit layers; call `step(features)` after every `optimizer.step()`.

    features: per unit layer, its output of the step's forward pass, (S, B, units, *positions) or (B, units).
    unit_magnitudes: returns per layer the mean |incoming weight| and mean |outgoing weight| of each unit
    (S, units); by default computed from the weights at every step (an MLP may keep them up to date more cheaply,
    as `SeedMLP.unit_magnitudes` does on its CPU kernels).
    """

    def __init__(self, layers: list[UnitLayer], optimizer: torch.optim.Optimizer, gens: list[torch.Generator],
                 replacement_rate: float, maturity_threshold: int, decay_rate: float = 0.99,
                 util_type: str = "adaptable_contribution", accumulate: bool = False,
                 unit_magnitudes: Callable[[], tuple[list, list]] | None = None):
        if util_type not in UTILITY_TYPES:
            raise ValueError(f"unknown util_type {util_type!r}; valid: {list(UTILITY_TYPES)}")
        self.layers, self.optimizer, self.gens = layers, optimizer, gens
        self.replacement_rate, self.maturity_threshold = replacement_rate, maturity_threshold
        self.decay_rate, self.util_type, self.accumulate = decay_rate, util_type, accumulate
        self.unit_magnitudes = unit_magnitudes or self._weight_magnitudes
        num_seeds = len(gens)
        shapes = [(num_seeds, layer.units) for layer in layers]
        device = layers[0].layer.weight.device
        self.age = [torch.zeros(shape, device=device) for shape in shapes]
        self.utility = [torch.zeros(shape, device=device) for shape in shapes]
        self.mean_activation = [torch.zeros(shape, device=device) for shape in shapes]
        self.accumulated = [torch.zeros(num_seeds, device=device) for _ in layers]
        # The reference draws a uniform number per layer per step when fewer than one unit is due.
        self.coin = [ChunkedStream(gens, (), chunk=4096, device=device) for _ in layers]
        self._captured: list[torch.Tensor] | None = None
        self._arrays: list | None = None            # the CPU's one-example path (`_one_example_arrays`)
        self._abs_buffers: dict[int, torch.Tensor] = {}

    @classmethod
    def from_sequential(cls, net: nn.Sequential, optimizer: torch.optim.Optimizer, seed: int = 0,
                        activation: str = "relu", **kwargs) -> "ContinualBackprop":
        """CBP on a plain PyTorch MLP: an `nn.Sequential` alternating `nn.Linear` and activation modules,
        initialised Kaiming-uniform for `activation` (as the loss-of-plasticity reference's). Forward hooks on the
        activations capture the features, so `step()` needs no arguments."""
        modules = list(net)
        linear_positions = [i for i, m in enumerate(modules) if isinstance(m, nn.Linear)]
        layers = [UnitLayer(_SeedView(modules[i]), _SeedView(modules[j]),
                            uniform_init(kaiming_uniform_bound(activation, modules[i].in_features),
                                         (modules[i].in_features,)))
                  for i, j in zip(linear_positions[:-1], linear_positions[1:])]
        cbp = cls(layers, optimizer, [torch.Generator().manual_seed(seed)], **kwargs)
        cbp._captured = [None] * len(layers)
        for slot, position in enumerate(linear_positions[:-1]):
            def capture(module, inputs, output, slot=slot):
                cbp._captured[slot] = output.detach()
            modules[position + 1].register_forward_hook(capture)
        return cbp

    @torch.no_grad()
    def step(self, features: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Update utilities and replace units; returns, per layer, a bool mask (S, units) of replaced units."""
        features = self._captured if features is None else features
        incoming, outgoing = self.unit_magnitudes()
        features = [seed_major(hidden if hidden.dim() >= 3 else hidden.unsqueeze(0)) for hidden in features]
        return [self._test_and_generate(index, layer, hidden, incoming[index], outgoing[index])
                for index, (layer, hidden) in enumerate(zip(self.layers, features))]

    def _weight_magnitudes(self) -> tuple[list, list]:
        """Per unit layer, mean |incoming weight| (S, units) and mean |outgoing weight| (S, units, positions).

        For linear layers |W| of each weight matrix is computed once per step into a reused buffer: a layer's
        outgoing matrix is the next layer's incoming one, and at batch 1 these passes over the weights are most
        of CBP's cost."""
        needs_incoming = self.util_type in ("adaptation", "adaptable_contribution")
        absolute: dict[int, torch.Tensor] = {}       # |W| of this step, by the weight's storage

        def magnitude(weight: torch.Tensor) -> torch.Tensor:
            key = weight.data_ptr()
            if key not in absolute:
                buffer = self._abs_buffers.get(key)
                if buffer is None or buffer.shape != weight.shape:
                    buffer = self._abs_buffers[key] = torch.empty_like(weight)
                absolute[key] = torch.abs(weight, out=buffer)
            return absolute[key]

        incoming, outgoing = [], []
        for layer in self.layers:
            if layer.layer.weight.dim() == 3 and layer.next_layer.weight.dim() == 3 and layer.positions == 1:
                incoming.append(_mean_over(magnitude(layer.layer.weight), dim=2) if needs_incoming else None)
                outgoing.append(_mean_over(magnitude(layer.next_layer.weight), dim=1))
            else:
                incoming.append(layer.incoming_magnitude() if needs_incoming else None)
                outgoing.append(layer.outgoing_magnitude())
        return incoming, outgoing

    def _instant_utility(self, hidden, corrected_mean, incoming, outgoing) -> torch.Tensor:
        """This step's utility y of every unit, (S, units), before the running average. `outgoing` is (S, units,
        positions) (or (S, units)); a unit's utility is averaged over the positions it feeds."""
        if self.util_type == "adaptation":
            return 1.0 / incoming
        deviation = hidden.abs() if self.util_type == "contribution" else \
            (hidden - corrected_mean.view(*corrected_mean.shape[:2], *[1] * (hidden.dim() - 3)).unsqueeze(1)).abs()
        if outgoing.dim() == 2 or outgoing.shape[2] == 1:
            contribution = outgoing.reshape(corrected_mean.shape) * deviation.mean(dim=feature_statistic_dims(hidden))
        else:       # a conv channel flattened into several linear inputs: per input, then averaged
            per_input = deviation.mean(dim=1).flatten(2)
            contribution = (outgoing * per_input).mean(dim=2)
        if self.util_type in ("contribution", "zero_contribution"):
            return contribution
        return contribution / incoming

    def _due_units(self, index: int, hidden: torch.Tensor, incoming, outgoing) -> tuple[torch.Tensor, list[int]]:
        """Update every unit's age, running mean and utility; return the bias-corrected means (S, units) and how
        many units each seed replaces now."""
        eta = self.decay_rate
        age, utility, mean = self.age[index], self.utility[index], self.mean_activation[index]
        coin = self.coin[index].next()
        one_example = hidden.dim() == 3 and hidden.shape[1] == 1 and (outgoing.dim() == 2 or outgoing.shape[2] == 1)
        if one_example and hidden.device.type == "cpu" and hidden.dtype == torch.float32:
            corrected_mean, count, *arrays = self._one_example_arrays(index)
            _test_one_example(hidden[:, 0].numpy(), (arrays[1] if incoming is None else incoming.numpy()),
                              outgoing.reshape(mean.shape).numpy(), *arrays, coin.numpy(), *self._constants,
                              count)
            return corrected_mean, count.tolist()
        age += 1
        correction = 1 - eta ** age                                     # Adam-style bias correction
        mean.mul_(eta).add_(hidden.mean(dim=feature_statistic_dims(hidden)), alpha=1 - eta)
        corrected_mean = mean / correction
        utility.mul_(eta).add_(self._instant_utility(hidden, corrected_mean, incoming, outgoing), alpha=1 - eta)
        due = self.replacement_rate * (age > self.maturity_threshold).sum(dim=1)      # (S,) units due this step
        if self.accumulate:
            self.accumulated[index] += due
            count = self.accumulated[index].floor()
            self.accumulated[index] -= count
        else:
            count = due.floor() + ((due > 0) & (due < 1) & (coin <= due))
        return corrected_mean, count.long().tolist()

    def _one_example_arrays(self, index: int) -> list:
        """For `_test_one_example`: a buffer for the corrected means (reused: it is read within the step only),
        one for the counts, and numpy views of the layer's statistics, made once."""
        if self._arrays is None:
            self._constants = (np.float32(self.decay_rate), UTILITY_TYPES.index(self.util_type),
                               np.float32(self.maturity_threshold), np.float32(self.replacement_rate),
                               self.accumulate)
            self._arrays = []
            for age, mean, utility, accumulated in zip(self.age, self.mean_activation, self.utility,
                                                       self.accumulated):
                corrected_mean = torch.empty_like(mean)
                self._arrays.append([corrected_mean, np.empty(len(self.gens), dtype=np.int64), age.numpy(),
                                     mean.numpy(), utility.numpy(), corrected_mean.numpy(), accumulated.numpy()])
        return self._arrays[index]

    def _test_and_generate(self, index: int, layer: UnitLayer, hidden: torch.Tensor, incoming, outgoing):
        corrected_mean, count = self._due_units(index, hidden, incoming, outgoing)
        return self._generate(index, layer, corrected_mean, count)

    def _generate(self, index: int, layer: UnitLayer, corrected_mean: torch.Tensor, count: list[int]):
        """Replace `count[seed]` of the lowest-utility mature units of every seed; returns the replaced (S, units)."""
        age, utility, mean = self.age[index], self.utility[index], self.mean_activation[index]
        replaced = torch.zeros(age.shape, dtype=torch.bool, device=age.device)
        if not any(count):
            return replaced
        eligible = age > self.maturity_threshold
        corrected_utility = utility / (1 - self.decay_rate ** age)
        for seed, number in enumerate(count):
            if number == 0:
                continue
            candidates = eligible[seed].nonzero().squeeze(1)
            lowest = torch.topk(-corrected_utility[seed, candidates], number).indices
            units = candidates[lowest]
            self._reinitialise(layer, seed, units, corrected_mean[seed, units])
            utility[seed, units] = 0
            mean[seed, units] = 0
            age[seed, units] = 0
            replaced[seed, units] = True
        return replaced

    @torch.no_grad()
    def train_steps(self, model, inputs: torch.Tensor, targets: torch.Tensor, loss: str, metric_total: torch.Tensor,
                    lr: float, weight_decay: float = 0.0) -> None:
        """Online training at batch 1 on every example of inputs (S, n, in) with plain SGD, as the step-by-step
        path (an optimizer step, then `step(features)`) does it, in the MLP's kernels (`SeedMLP.step_arguments`):
        they take the steps and test the units after each, and stop where a unit is due; the replacement is made
        here, then they go on. The same numbers as the step-by-step path: the coins and the new units' weights
        come from the same generators, so the steps at which the coin streams refill (every `chunk` steps) are
        taken one by one, in that path's order (coins of a layer, then its replacements, then the next layer's)."""
        steps, done = inputs.shape[1], 0
        count = np.zeros((len(self.layers), len(self.gens)), dtype=np.int64)
        statistics = [[self._one_example_arrays(index)[position] for index in range(len(self.layers))]
                      for position in (2, 3, 4, 5, 6)]      # age, mean, utility, corrected mean, accumulated
        while done < steps:
            if self.coin[0].before_refill() == 0:
                model(inputs[:, done:done + 1])             # the step's features, as the kernels compute them
                model.train_steps(inputs[:, done:done + 1], targets[:, done:done + 1], loss, metric_total, lr,
                                  weight_decay)
                self.step(model.features)
                done += 1
                continue
            start, end = done, min(steps, done + self.coin[0].before_refill())
            coins = [stream.take(end - start).numpy() for stream in self.coin]
            padded = [tuple(arrays) + (arrays[0][:0],) * (kernels.MAX_STEP_LAYERS - len(arrays))
                      for arrays in statistics + [coins]]
            while done < end:     # the |weight| sums are made exact again after a replacement (step_arguments)
                done = _train_steps_testing_units(*model.step_arguments(inputs, targets, loss, lr, weight_decay),
                                                  metric_total.numpy(), done, end, start, *padded, *self._constants,
                                                  count)
                for index, layer in enumerate(self.layers):
                    if count[index].any():
                        self._generate(index, layer, self._one_example_arrays(index)[0], count[index].tolist())

    def _reinitialise(self, layer: UnitLayer, seed: int, units: torch.Tensor, unit_means: torch.Tensor):
        layer.reinitialise(seed, units, self.gens[seed])
        next_bias = layer.next_layer.bias
        if layer.positions == 1 and layer.next_layer.weight.dim() == 3 and layer.next_trainable_bias:
            # Move the removed units' mean contribution into the next layer's bias, then cut their outputs.
            next_bias[seed] += layer.next_layer.weight[seed][:, units] @ unit_means
        layer.cut_outgoing(seed, units)
        if isinstance(self.optimizer, ResettableAdam):
            for module, name, index in self._replaced_slices(layer, seed, units):
                self.optimizer.reset(*_parameter(module, name, index))

    @staticmethod
    def _replaced_slices(layer: UnitLayer, seed: int, units: torch.Tensor):
        """(module, parameter name, index) of everything a replacement rewrote: the optimizer forgets them."""
        yield layer.layer, "weight", (seed, units)
        if layer.trainable_bias:
            yield layer.layer, "bias", (seed, units)
        if layer.norm is not None:
            yield layer.norm, "weight", (seed, units)
            yield layer.norm, "bias", (seed, units)
        yield layer.next_layer, "weight", (seed, slice(None), layer.outgoing_index(units))

    def state_dict(self) -> dict:
        return {"age": self.age, "utility": self.utility, "mean_activation": self.mean_activation,
                "accumulated": self.accumulated, "coin": [c.state_dict() for c in self.coin],
                "gens": [g.get_state() for g in self.gens]}

    def load_state_dict(self, state: dict) -> None:
        for key in ("age", "utility", "mean_activation", "accumulated"):
            for mine, saved in zip(getattr(self, key), state[key]):
                mine.copy_(saved)
        for coin, saved in zip(self.coin, state["coin"]):
            coin.load_state_dict(saved)
        for g, saved in zip(self.gens, state["gens"]):
            g.set_state(saved)


@register("cbp")
def build(model, seeds, lr: float, replacement_rate: float, maturity_threshold: int, decay_rate: float = 0.99,
          util_type: str = "adaptable_contribution", accumulate: bool = False, optimizer: str = "sgd",
          momentum: float = 0.0, weight_decay: float = 0.0) -> Learner:
    """Continual backprop with SGD (the papers' settings; momentum and weight decay as the vision experiments) or
    Adam (`optimizer: adam`), on any architecture. SGD's momentum buffers of replaced units are kept, as in the
    reference."""
    if any(getattr(activation, "expansion", 1) != 1 for activation in getattr(model, "activations", [])):
        raise ConfigError(f"cbp needs one feature per hidden unit; activation "
                          f"{getattr(model, 'activation_name', '?')!r} passes on more (CReLU): use an activation "
                          "with one output per unit")
    params = model.parameters()
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"cbp: unknown optimizer {optimizer!r}; valid: ['sgd', 'adam']")
    if optimizer == "adam" and (momentum or weight_decay):
        raise ConfigError("cbp: momentum and weight_decay are SGD's (optimizer: sgd)")
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay) if optimizer == "sgd" \
        else ResettableAdam(params, lr=lr)
    magnitudes = None       # a model without its own |W| bookkeeping: CBP computes them from the weights
    if hasattr(model, "track_unit_magnitudes"):
        model.track_unit_magnitudes()
        magnitudes = model.unit_magnitudes
    cbp = ContinualBackprop(model.unit_layers(), opt, generators(seeds, "cbp"), replacement_rate,
                            maturity_threshold, decay_rate, util_type, accumulate, unit_magnitudes=magnitudes)
    return Learner(opt, after_step=lambda features: cbp.step([f.detach() for f in features]), state=cbp,
                   train_steps=cbp.train_steps if magnitudes is not None and not weight_decay else None)
