"""ReDo, recycling dormant neurons (Sokar et al. 2023, "The dormant neuron phenomenon in deep reinforcement
learning", ICML; reference code: google/dopamine, labs/redo/weight_recyclers.py).

Every `every` steps, each hidden unit i of each layer gets, per seed, the score s_i = mean|h_i| / mean_j mean|h_j|
(the mean over the layer's units; plus 1e-9 as in the reference, so a layer whose units are all silent is all
dormant rather than NaN). A unit with s_i ≤ `threshold` is dormant: its incoming weights are redrawn from the
layer's initial distribution (U(−b, b), b = `kaiming_uniform_bound`, SeedMLP's init), its bias is set to 0 (its
initial value) and its outgoing weights to 0, so the network's output is unchanged; the optimizer's running state
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
from plasticity.models.mlp import kaiming_uniform_bound
from plasticity.seeding import generators

SCORE_EPSILON = 1e-9


def unit_scores(mean_activity: torch.Tensor) -> torch.Tensor:
    """s_i = mean|h_i| / mean over the layer's units, per seed: (S, units) -> (S, units)."""
    return mean_activity / (mean_activity.mean(dim=1, keepdim=True) + SCORE_EPSILON)


class DormantUnitRecycler:
    """ReDo on a seed-batched MLP (`model.layers` of SeedLinear, weights (S, out, in)); call `step(hidden)` after
    every optimizer step with the step's hidden activations, each (S, B, units)."""

    def __init__(self, model, optimizer: torch.optim.Optimizer, gens: list[torch.Generator], threshold: float,
                 every: int):
        self.layer_pairs = list(zip(model.layers[:-1], model.layers[1:]))       # a hidden layer, the one after it
        self.bounds = [kaiming_uniform_bound(model.activation_name, layer.in_features)
                       for layer, _ in self.layer_pairs]
        self.optimizer, self.gens, self.threshold, self.every = optimizer, gens, threshold, every
        self.activity = [layer.weight.new_zeros(len(gens), layer.out_features) for layer, _ in self.layer_pairs]
        self.steps = 0

    @torch.no_grad()
    def step(self, hidden: list[torch.Tensor]) -> list[torch.Tensor] | None:
        """Accumulate mean|h| of every unit; on every `every`-th call recycle the dormant units and return, per
        layer, their mask (S, units); None on other calls."""
        for activity, features, (layer, _) in zip(self.activity, hidden, self.layer_pairs):
            if features.shape[-1] != layer.out_features:
                raise ValueError(f"redo: a hidden layer has {features.shape[-1]} features but {layer.out_features} "
                                 f"units; ReDo needs one feature per unit (not an activation that concatenates)")
            activity += features.abs().mean(dim=1)
        self.steps += 1
        if self.steps % self.every:
            return None
        return [self._recycle(index) for index in range(len(self.layer_pairs))]

    def _recycle(self, index: int) -> torch.Tensor:
        layer, next_layer = self.layer_pairs[index]
        dormant = unit_scores(self.activity[index] / self.every) <= self.threshold
        self.activity[index].zero_()
        for seed, seed_dormant in enumerate(dormant.cpu()):
            units = seed_dormant.nonzero().squeeze(1)
            if len(units):
                fresh = torch.empty(len(units), layer.in_features).uniform_(-self.bounds[index], self.bounds[index],
                                                                            generator=self.gens[seed])
                layer.weight[seed, units] = fresh.to(layer.weight.device)
        incoming, outgoing = dormant.unsqueeze(2), dormant.unsqueeze(1)
        layer.bias.masked_fill_(dormant, 0)
        next_layer.weight.masked_fill_(outgoing, 0)
        for param, mask in ((layer.weight, incoming), (layer.bias, dormant), (next_layer.weight, outgoing)):
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
    opt = make_optimizer(model.parameters(), optimizer, lr)
    recycler = DormantUnitRecycler(model, opt, generators(seeds, "redo"), threshold, every)
    return Learner(opt, after_step=recycler.step, state=recycler)
