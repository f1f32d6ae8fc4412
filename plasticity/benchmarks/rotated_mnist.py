"""Rotated MNIST under joint training (the stability-gap paper, Fig. 4 left): task k is all of MNIST rotated by
angles[k] degrees (the paper: 0°, 80°, 160°); context k trains on the union of the rotations so far."""
from __future__ import annotations

from plasticity.benchmarks import register
from plasticity.benchmarks.contexts import ContextBenchmark, Task, rotation_map
from plasticity.config import ConfigError


@register("rotated_mnist")
class RotatedMnist(ContextBenchmark):
    """Rotated MNIST under joint training: one task per rotation angle."""

    def __init__(self, seeds, device, angles: tuple = (0, 80, 160), data_path=None):
        super().__init__(seeds, device, data_path)
        if not angles:
            raise ConfigError("rotated_mnist: angles must list at least one angle in degrees, e.g. [0, 80, 160]")
        everything = {split: self.labels_in(split, range(10)) for split in ("train", "test")}
        self.tasks = [Task(f"{angle:g} degrees", everything["train"], everything["test"],
                           rotation_map(angle).expand(len(seeds), -1).clone()) for angle in angles]
