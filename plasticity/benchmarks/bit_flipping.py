"""Slowly-changing regression ("bit-flipping", Dohare et al. 2024, Extended Data Fig. 2).

Inputs are 20 bits: the first `num_flipping_bits` are held fixed and re-drawn every `flip_every` examples (or,
with `flip_one`, one of them is flipped), the rest are i.i.d. each example. The target is a fixed random network
of linear threshold units (LTUs), as in the reference's `FixLTUNet`: weights and biases ±1, and unit i fires when
its input exceeds tau_i = beta·(m + 1) − S_i with S_i = (m − Σ_j w_ij + b_i) / 2 (the reference's formula).
"""
from __future__ import annotations

import torch

from plasticity.benchmarks import Benchmark, register
from plasticity.seeding import generators


def _signs(shape, gen):
    return torch.randint(0, 2, shape, generator=gen).float() * 2 - 1


@register("bit_flipping")
class BitFlipping(Benchmark):
    """Slowly-changing regression: a fixed LTU target net whose input bits flip slowly."""
    out_features = 1
    stream_attributes = ("flipping_bits", "position")

    @classmethod
    def shapes(cls, num_inputs: int = 20, **args) -> tuple[tuple[int, ...], int]:
        return (num_inputs,), cls.out_features

    def __init__(self, seeds, device, num_inputs: int = 20, num_flipping_bits: int = 15, flip_every: int = 10_000,
                 target_width: int = 100, beta: float = 0.7, flip_one: bool = False, data_path=None):
        super().__init__(seeds, device)
        self.in_features, self.num_flipping_bits = num_inputs, num_flipping_bits
        self.flip_every, self.flip_one = flip_every, flip_one
        target_gens = generators(seeds, "target")
        self.target_weight = torch.stack([_signs((target_width, num_inputs), g) for g in target_gens])
        self.target_bias = torch.stack([_signs((target_width,), g) for g in target_gens])
        self.target_out_weight = torch.stack([_signs((1, target_width), g) for g in target_gens])
        self.target_out_bias = torch.stack([_signs((1,), g) for g in target_gens])
        negatives = (num_inputs - self.target_weight.sum(dim=2) + self.target_bias) / 2
        self.threshold = beta * (num_inputs + 1) - negatives
        self.flipping_bits = torch.stack([torch.randint(0, 2, (num_flipping_bits,), generator=g).float()
                                          for g in self.gens])
        self.position = 0                                          # examples generated so far

    def _flip(self, seed: int) -> None:
        bits, gen = self.flipping_bits[seed], self.gens[seed]
        if self.flip_one:
            bit = torch.randint(0, self.num_flipping_bits, (1,), generator=gen)
            bits[bit] = 1 - bits[bit]
        else:
            bits.copy_(torch.randint(0, 2, (self.num_flipping_bits,), generator=gen).float())

    def _generate(self, n: int):
        inputs = torch.empty(len(self.seeds), n, self.in_features)
        for seed, gen in enumerate(self.gens):
            start = 0
            while start < n:
                step = self.position + start
                if step > 0 and step % self.flip_every == 0:
                    self._flip(seed)
                stop = min(n, start + self.flip_every - step % self.flip_every)
                inputs[seed, start:stop, :self.num_flipping_bits] = self.flipping_bits[seed]
                start = stop
            inputs[seed, :, self.num_flipping_bits:] = torch.randint(
                0, 2, (n, self.in_features - self.num_flipping_bits), generator=gen).float()
        self.position += n
        return inputs, self.target(inputs)

    def target(self, inputs: torch.Tensor) -> torch.Tensor:
        """The LTU target network's output for inputs (S, n, in) -> (S, n, 1)."""
        pre = torch.baddbmm(self.target_bias.unsqueeze(1), inputs, self.target_weight.transpose(1, 2))
        features = (pre > self.threshold.unsqueeze(1)).float()
        return torch.baddbmm(self.target_out_bias.unsqueeze(1), features, self.target_out_weight.transpose(1, 2))
