"""ReDo, recycling dormant neurons (Sokar et al. 2023, "The dormant neuron phenomenon in deep reinforcement
learning", ICML; reference code: google/dopamine, labs/redo/weight_recyclers.py).

Every `every` steps, each unit i (a neuron, or a conv channel measured over all positions) of each layer gets, per seed, the score s_i = mean|h_i| / mean_j mean|h_j|
(the mean over the layer's units; plus 1e-9 as in the reference, so a layer whose units are all silent is all
dormant rather than NaN). A unit with s_i ≤ `threshold` is dormant: its incoming weights are redrawn from the
layer's initial distribution (its unit layer's init; the MLP's Kaiming-uniform U(−b, b)), its bias is set to 0
and its BatchNorm entries to the identity, and its outgoing weights to 0, so the network's output is unchanged; the optimizer's running state
of exactly those weights and biases is zeroed (Adam's moments; torch.optim.Adam's step count, one per tensor,
stays, as the reference's count does; the reference leaves the biases' moments, we reset them with the biases).

Deliberate choices:
- mean|h_i| is over all the training batches since the last check (the activations of the steps' own forward
  passes), not over a separately sampled batch: these online benchmarks have no replay buffer to sample one
  from, and it costs no extra forward pass.
- threshold defaults to 0.1: a unit at a tenth of its layer's mean activity or less is dormant (τ = 0 would
  recycle only exactly silent units). Sokar et al.'s ReLU experiments use τ of this order; check their appendix
  for the value of a given setting.
- `every` has no default: a sensible period depends on the benchmark's steps per task.
Random draws come from per-seed generators, so a seed's result does not depend on the block of seeds it trains in.
"""
from __future__ import annotations

import torch

from plasticity.methods import Learner, register
from plasticity.methods.optimizers import make_optimizer
from plasticity.models.units import UnitLayer, feature_statistic_dims, seed_major
from plasticity.seeding import generators

SCORE_EPSILON = 1e-9


def unit_scores(mean_activity: torch.Tensor) -> torch.Tensor:
    """s_i = mean|h_i| / mean over the layer's units, per seed: (S, units) -> (S, units)."""
    return mean_activity / (mean_activity.mean(dim=1, keepdim=True) + SCORE_EPSILON)


class DormantUnitRecycler:
    """ReDo on a seed-batched model's unit layers (`plasticity.models.units`: neurons or conv channels); call
    `step(features)` after every optimizer step with the step's features of each unit layer, (S, B, units, ...)."""

    def __init__(self, layers: list[UnitLayer], optimizer: torch.optim.Optimizer, gens: list[torch.Generator],
                 threshold: float, every: int):
        self.layers = layers
        self.optimizer, self.gens, self.threshold, self.every = optimizer, gens, threshold, every
        self.activity = [layer.layer.weight.new_zeros(len(gens), layer.units) for layer in layers]
        self.steps = 0

    @torch.no_grad()
    def step(self, features: list[torch.Tensor]) -> list[torch.Tensor] | None:
        """Accumulate mean|h| of every unit (over the batch and positions); on every `every`-th call recycle the
        dormant units and return, per layer, their mask (S, units); None on other calls."""
        for activity, hidden, layer in zip(self.activity, features, self.layers):
            if hidden.shape[2] != layer.units:
                raise ValueError(f"redo: a unit layer has {hidden.shape[2]} features but {layer.units} units; ReDo "
                                 "needs one feature per unit (not an activation that concatenates)")
            activity += seed_major(hidden).abs().mean(dim=feature_statistic_dims(hidden))
        self.steps += 1
        if self.steps % self.every:
            return None
        return [self._recycle(index) for index in range(len(self.layers))]

    def _recycle(self, index: int) -> torch.Tensor:
        layer = self.layers[index]
        dormant = unit_scores(self.activity[index] / self.every) <= self.threshold
        self.activity[index].zero_()
        for seed, seed_dormant in enumerate(dormant.cpu()):
            units = seed_dormant.nonzero().squeeze(1)
            if len(units):
                layer.reinitialise(seed, units, self.gens[seed])
                layer.cut_outgoing(seed, units)
        weight, next_weight = layer.layer.weight, layer.next_layer.weight
        incoming = dormant.view(*dormant.shape, *[1] * (weight.dim() - 2))
        outgoing = dormant.repeat_interleave(layer.positions, dim=1).view(
            dormant.shape[0], 1, -1, *[1] * (next_weight.dim() - 3))
        state = [(weight, incoming), (next_weight, outgoing)]
        if layer.trainable_bias:
            state.append((layer.layer.bias, dormant))
        if layer.norm is not None:
            state += [(layer.norm.weight, dormant), (layer.norm.bias, dormant)]
        for param, mask in state:
            self._forget(param, mask)
        return dormant

    def _forget(self, param: torch.Tensor, mask: torch.Tensor) -> None:
        """Zero the optimizer's running state (Adam's moments, a momentum buffer) of `param` where `mask` is set."""
        for value in self.optimizer.state.get(param, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                value.masked_fill_(mask, 0)

    def state_dict(self) -> dict:
        return {"activity": self.activity, "steps": self.steps, "gens": [g.get_state() for g in self.gens]}

    def load_state_dict(self, state: dict) -> None:
        for mine, saved in zip(self.activity, state["activity"]):
            mine.copy_(saved)
        self.steps = state["steps"]
        for g, saved in zip(self.gens, state["gens"]):
            g.set_state(saved)


@register("redo")
def build(model, seeds, lr: float, every: int, threshold: float = 0.1, optimizer: str = "adam") -> Learner:
    """ReDo (Sokar et al.): recycle dormant units every `every` steps."""
    opt = make_optimizer(model.parameters(), optimizer, lr)
    recycler = DormantUnitRecycler(model.unit_layers(), opt, generators(seeds, "redo"), threshold, every)
    return Learner(opt, after_step=recycler.step, state=recycler)
