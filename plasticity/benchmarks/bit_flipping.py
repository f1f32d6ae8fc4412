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

LOOKUP_BITS = 10    # up to this many i.i.d. bits, targets come from a table of their patterns (`_looked_up_targets`)


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
        num_seeds, fixed = len(self.seeds), self.num_flipping_bits
        inputs = torch.empty(num_seeds, n, self.in_features)
        segments = []                   # (start, stop, each seed's fixed bits (S, fixed)) of each flip period
        for start, stop, within in self._segments(n, self.flip_every):
            if within == 0 and self.position > 0:
                for seed in range(num_seeds):
                    self._flip(seed)
            inputs[:, start:stop, :fixed] = self.flipping_bits.unsqueeze(1)
            segments.append((start, stop, self.flipping_bits.clone()))
        random_bits = torch.stack([torch.randint(0, 2, (n, self.in_features - fixed), generator=gen)
                                   for gen in self.gens])
        inputs[:, :, fixed:] = random_bits
        if random_bits.shape[2] > LOOKUP_BITS:
            return inputs, self.target(inputs)
        return inputs, self._looked_up_targets(random_bits, segments)

    def _looked_up_targets(self, random_bits: torch.Tensor, segments: list) -> torch.Tensor:
        """The targets of a chunk, (S, n, 1), from a table per flip period: there the fixed bits are constant, so an
        example's target is one of 2^r, one per pattern of its r i.i.d. bits. The target network's sums are small
        integers, exact in float32 in any order, so these are `target(inputs)`'s values to the bit, at a fraction
        of the cost (the target network has 20 times the learner's weights)."""
        num_seeds, n, r = random_bits.shape
        powers = 2 ** torch.arange(r)
        patterns = (torch.arange(2 ** r).unsqueeze(1) // powers % 2).float()      # (2^r, r): code c's bits
        codes = (random_bits * powers).sum(2, keepdim=True)                       # (S, n, 1)
        targets = torch.empty(num_seeds, n, 1)
        for start, stop, fixed_bits in segments:
            table = self.target(torch.cat([fixed_bits.unsqueeze(1).expand(-1, 2 ** r, -1),
                                           patterns.expand(num_seeds, -1, -1)], dim=2))
            targets[:, start:stop] = torch.gather(table, 1, codes[:, start:stop])
        return targets

    def target(self, inputs: torch.Tensor) -> torch.Tensor:
        """The LTU target network's output for inputs (S, n, in) -> (S, n, 1)."""
        pre = torch.baddbmm(self.target_bias.unsqueeze(1), inputs, self.target_weight.transpose(1, 2))
        features = (pre > self.threshold.unsqueeze(1)).float()
        return torch.baddbmm(self.target_out_bias.unsqueeze(1), features, self.target_out_weight.transpose(1, 2))
