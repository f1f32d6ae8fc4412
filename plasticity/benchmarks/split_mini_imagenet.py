"""Split mini-ImageNet under joint training (the stability-gap paper v2, Fig. 3 right): 84×84 images of the
mini-ImageNet classes in label order, task k holds classes 10(k−1)..10k−1 (5 tasks of 10), context k trains on
tasks 1..k, with one head over all the tasks' classes (50 outputs). No augmentation, as the paper; the
normalisation is De Lange et al.'s ContinualEvaluation constants for mini-ImageNet (the paper does not state one;
plasticity.data.normalisation)."""
from __future__ import annotations

from plasticity.benchmarks import register
from plasticity.benchmarks.image_contexts import ImageContextBenchmark


@register("split_mini_imagenet")
class SplitMiniImagenet(ImageContextBenchmark):
    """Split mini-ImageNet under joint training: tasks of 10 classes, cumulative contexts."""

    dataset = "mini_imagenet"
    image_size = 84

    def __init__(self, seeds, device, num_tasks: int = 5, classes_per_task: int = 10, augment: bool = False,
                 data_path=None):
        super().__init__(seeds, device, augment, data_path)
        self.tasks = self.class_blocks(num_tasks, classes_per_task, int(self.classes["train"].max()) + 1)

    @classmethod
    def output_count(cls, num_tasks: int = 5, classes_per_task: int = 10, **args) -> int:
        return num_tasks * classes_per_task
