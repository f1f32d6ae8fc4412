"""Random Label CIFAR-10 (Kumar et al. 2023, "Maintaining plasticity in continual learning via regenerative
regularization"; a benchmark of the AdaLin paper, whose sizes are assumed to be Kumar's): Random Label MNIST on
CIFAR-10 images, for a CNN.

Each task draws `images_per_task` training images and gives each a random label (uniform over the 10 classes), then
presents them for `epochs_per_task` epochs, each in a new random order; the next task draws new images and new
labels without any signal. Pixels are scaled to [0, 1], not normalised (Kumar et al. state no normalisation; as
their MNIST). Kumar et al.: 1,200 images, 400 epochs, batch 16, 50 tasks. Whether images may repeat across tasks is
not stated; here each task samples its images afresh from all 50,000, as Random Label MNIST does.
"""
from __future__ import annotations

import torch

from plasticity.benchmarks import register
from plasticity.benchmarks.cifar_images import INPUT_SHAPE, training_images
from plasticity.benchmarks.epochs import EpochTasks
from plasticity.config import ConfigError


@register("random_label_cifar10")
class RandomLabelCifar10(EpochTasks):
    """Random Label CIFAR-10: fresh images with random labels every task, several epochs per task."""
    dataset = "cifar10"
    out_features = 10

    def __init__(self, seeds, device, images_per_task: int = 1200, epochs_per_task: int = 400, data_path=None):
        images, self.classes = training_images(self.dataset, data_path)
        if images_per_task > len(images):
            raise ConfigError(f"{type(self).__name__}: images_per_task {images_per_task} exceeds the "
                              f"{len(images)} training images")
        super().__init__(seeds, device, images, images_per_task, epochs_per_task)
        self.chunk = 1024        # 12.6 MB of float images per seed buffered (MNIST's 10,000 would be 123 MB)

    @classmethod
    def shapes(cls, **args) -> tuple[tuple[int, ...], int]:
        return INPUT_SHAPE, cls.out_features

    def _new_task(self):
        self.subset = [torch.randperm(len(self.images), generator=g)[:self.images_per_task] for g in self.gens]
        self.labels = [torch.randint(self.out_features, (self.images_per_task,), generator=g) for g in self.gens]
