"""Shrink and Perturb (Ash & Adams 2020) as the loss-of-plasticity reference runs it online: every step, SGD
with weight decay (the shrink, factor 1 - lr·wd) and then Gaussian noise of std `noise_std` added to every
weight and bias (the perturb). With `optimizer: adam` the step is AdamW's, whose decoupled weight decay is the
same multiplicative shrink 1 - lr·wd (Adam's coupled decay would be rescaled by the moments: no longer a shrink)."""
import numpy as np
import torch
from numba import njit

from plasticity.methods import Learner, register
from plasticity.methods.optimizers import make_optimizer
from plasticity.models import kernels
from plasticity.models.kernels import step_one_seed, step_scratch
from plasticity.seeding.normal_stream import NormalStream, add_to_input_major_block, scratch, stream_row


@njit(cache=True, nogil=True, fastmath=kernels.FASTMATH, error_model="numpy")
def _perturbed_train_steps(layers, weights, biases, moments, activation, inputs, labels, targets, hyper, first_step,
                           row_sums, col_sums, metric_total, keys, counters, std):
    """`kernels.train_steps` (plain SGD) with each seed's parameters perturbed after its step, as `Perturbation`
    does: keys and counters (2·layers, S), the weight's then the bias's stream of every layer (its key, the
    samples drawn so far, advanced here). The noise functions' roundings are explicit: under this kernel's
    fastmath they give the streams' numbers, and the sums `NormalStream.add_to`'s."""
    step_buffers = step_scratch(layers, weights, inputs)
    first, second, turn = scratch()
    typed = np.zeros(3, dtype=inputs.dtype)
    for step in range(inputs.shape[1]):
        for s in range(inputs.shape[0]):
            step_one_seed(s, step, layers, weights, biases, moments, activation, inputs, labels, targets, hyper,
                          typed, metric_total, step_buffers, row_sums, col_sums)
            for layer in range(layers):
                weight, bias = weights[layer][s], biases[layer][s]
                add_to_input_major_block(weight, keys[2 * layer, s], counters[2 * layer, s], std, first, second, turn)
                counters[2 * layer, s] += np.uint64(weight.shape[0] * weight.shape[1])
                stream_row(bias, keys[2 * layer + 1, s], counters[2 * layer + 1, s], std, True, first, second, turn)
                counters[2 * layer + 1, s] += np.uint64(bias.shape[0])


class Perturbation:
    """Adds N(0, noise_std²) to every parameter, from per-seed streams (parameters carry a leading seed dim).

    Call it after each optimizer step; with `torch.optim.SGD(weight_decay=wd)` that is Shrink and Perturb. CPU
    parameters get the noise generated and added in one pass over their memory (`NormalStream.add_to`); those on
    another device get the same numbers, generated on the CPU and added there."""

    def __init__(self, params, noise_std: float, seeds: list[int]):
        self.noise_std = noise_std
        self.noise = {param: NormalStream(seeds, f"perturb:{index}", param.shape[1:], device=param.device)
                      for index, param in enumerate(params)}

    @torch.no_grad()
    def __call__(self, hidden=None) -> None:
        for param, stream in self.noise.items():
            stream.add_to(param, self.noise_std)

    @torch.no_grad()
    def train_steps(self, model, inputs: torch.Tensor, targets: torch.Tensor, loss: str, metric_total: torch.Tensor,
                    lr: float, weight_decay: float = 0.0) -> None:
        """Plain-SGD steps at batch 1 on every example of inputs (S, n, in), each followed by this perturbation, in
        the MLP's kernels (`SeedMLP.step_arguments`; its parameters are its layers' weights and biases): the
        step-by-step path's numbers but for the last bits of the decayed update."""
        streams = [self.noise[param] for layer in model.layers for param in (layer.weight, layer.bias)]
        counters = np.stack([stream.counters for stream in streams])
        _perturbed_train_steps(*model.step_arguments(inputs, targets, loss, lr, weight_decay), metric_total.numpy(),
                               np.stack([stream.keys for stream in streams]), counters, np.float32(self.noise_std))
        for stream, counter in zip(streams, counters):
            stream.counters = counter

    def state_dict(self) -> dict:
        return {"noise": [stream.state_dict() for stream in self.noise.values()]}

    def load_state_dict(self, state: dict) -> None:
        for stream, saved in zip(self.noise.values(), state["noise"]):
            stream.load_state_dict(saved)


@register("shrink_perturb")
def build(model, seeds, lr: float, weight_decay: float, noise_std: float, optimizer: str = "sgd",
          momentum: float = 0.0) -> Learner:
    """Shrink and Perturb: weight decay and Gaussian noise on every parameter after each step."""
    perturbation = Perturbation(list(model.parameters()), noise_std, seeds)
    return Learner(make_optimizer(model.parameters(), optimizer, lr, weight_decay, decoupled=True,
                                  momentum=momentum),
                   after_step=perturbation, state=perturbation, train_steps=perturbation.train_steps)
