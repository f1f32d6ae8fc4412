"""Permuted MNIST under joint training (the stability-gap paper v1, Permuted MNIST): task 1 is MNIST itself
(the identity permutation), each further task a fixed random pixel permutation, drawn per seed; context k trains
on the union of the first k tasks. (`permuted_mnist` is the online, loss-of-plasticity stream.)"""
from __future__ import annotations

import torch

from plasticity.benchmarks import register
from plasticity.benchmarks.contexts import PIXELS, ContextBenchmark, Task, identity_map
from plasticity.config import ConfigError
from plasticity.seeding import generators


@register("permuted_mnist_joint")
class PermutedMnistJoint(ContextBenchmark):
    """Permuted MNIST under joint training: task 1 the identity, later tasks fixed permutations."""

    def __init__(self, seeds, device, num_tasks: int = 3, data_path=None):
        super().__init__(seeds, device, data_path)
        if num_tasks < 1:
            raise ConfigError(f"permuted_mnist_joint: num_tasks must be at least 1; got {num_tasks}")
        everything = {split: self.labels_in(split, range(10)) for split in ("train", "test")}
        gens = generators(seeds, "permutations")
        maps = [identity_map(len(seeds))] + [torch.stack([torch.randperm(PIXELS, generator=g) for g in gens])
                                             for _ in range(num_tasks - 1)]
        self.tasks = [Task("identity" if k == 0 else f"permutation {k}", everything["train"], everything["test"],
                           pixel_map) for k, pixel_map in enumerate(maps)]
