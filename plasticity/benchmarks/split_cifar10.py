"""Split CIFAR-10 under joint training (the stability-gap paper, Fig. 3 middle): task k holds the classes
{2k−2, 2k−1}; context k trains on classes 0..2k−1 (the union of tasks 1..k), with one 10-way head. Training images
are augmented (random crop 32 with zero padding 4, horizontal flip), test images are not."""
from __future__ import annotations

from plasticity.benchmarks import register
from plasticity.benchmarks.image_contexts import ImageContextBenchmark


@register("split_cifar10")
class SplitCifar10(ImageContextBenchmark):
    """Split CIFAR-10 under joint training: tasks of class pairs, cumulative contexts."""

    dataset = "cifar10"
    image_size, out_features = 32, 10

    def __init__(self, seeds, device, num_tasks: int = 5, classes_per_task: int = 2, augment: bool = True,
                 data_path=None):
        super().__init__(seeds, device, augment, data_path)
        self.tasks = self.class_blocks(num_tasks, classes_per_task, self.out_features)
