"""Permuted MNIST under joint training (the stability-gap paper v1, Permuted MNIST): task 1 is MNIST itself
(the identity permutation), each further task a fixed random pixel permutation; context k trains on the union of
the first k tasks. (`permuted_mnist` is the online, loss-of-plasticity stream.)

`permutations`: "shared" (default, as the authors ran it: their script draws the two permutations once, so every
seed trains on the same tasks and the seeds differ in initialisation and batches only), or "per_seed" (each seed
its own permutations, from its "permutations" stream: the seeds also sample the task sequence)."""
from __future__ import annotations

import torch

from plasticity.benchmarks import register
from plasticity.benchmarks.contexts import PIXELS, ContextBenchmark, Task, identity_map
from plasticity.config import ConfigError
from plasticity.seeding import generator, generators

PERMUTATIONS = ("shared", "per_seed")
SHARED_SEED = 0     # the shared permutations are drawn from this seed's stream of their own


@register("permuted_mnist_joint")
class PermutedMnistJoint(ContextBenchmark):
    """Permuted MNIST under joint training: task 1 the identity, later tasks fixed permutations."""

    def __init__(self, seeds, device, num_tasks: int = 3, permutations: str = "shared", data_path=None):
        super().__init__(seeds, device, data_path)
        if num_tasks < 1:
            raise ConfigError(f"permuted_mnist_joint: num_tasks must be at least 1; got {num_tasks}")
        if permutations not in PERMUTATIONS:
            raise ConfigError(f"permuted_mnist_joint: permutations {permutations!r}; valid: {', '.join(PERMUTATIONS)}")
        everything = {split: self.labels_in(split, range(10)) for split in ("train", "test")}
        if permutations == "per_seed":
            gens = generators(seeds, "permutations")
            drawn = [torch.stack([torch.randperm(PIXELS, generator=g) for g in gens]) for _ in range(num_tasks - 1)]
        else:
            shared = generator(SHARED_SEED, "shared permutations")
            drawn = [torch.randperm(PIXELS, generator=shared).expand(len(seeds), -1).clone()
                     for _ in range(num_tasks - 1)]
        maps = [identity_map(len(seeds))] + drawn
        self.tasks = [Task("identity" if k == 0 else f"permutation {k}", everything["train"], everything["test"],
                           pixel_map) for k, pixel_map in enumerate(maps)]
