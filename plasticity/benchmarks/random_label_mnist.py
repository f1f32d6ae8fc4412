"""Random Label MNIST (Kumar et al. 2023 "Maintaining plasticity in continual learning via regenerative
regularization"; a benchmark of the AdaLin paper): a memorisation task.

Each task draws `images_per_task` training images and gives each a random label (uniform over the 10 classes), then
presents them for `epochs_per_task` epochs, each epoch in a new random order; the next task draws new images and
new labels without any signal. Nothing generalises, so the online accuracy measures how fast the network can still
fit new data. Pixels are scaled to [0, 1]. (Kumar et al.: 1,200 images, 400 epochs, batch 16, 50 tasks. Whether
images may repeat across tasks is not stated; here each task samples its images afresh from all 60k.)
"""
from __future__ import annotations

import torch

from plasticity.benchmarks import register
from plasticity.benchmarks.epochs import EpochTasks
from plasticity.data.mnist import flat_training_set


@register("random_label_mnist")
class RandomLabelMnist(EpochTasks):
    """Random Label MNIST: a fixed image set relabelled at random every task, several epochs per task."""
    dataset = "mnist"
    in_features = 784
    out_features = 10

    def __init__(self, seeds, device, images_per_task: int = 1200, epochs_per_task: int = 400, data_path=None):
        images, _ = flat_training_set(data_path, "random_label_mnist")
        super().__init__(seeds, device, images, images_per_task, epochs_per_task)

    def _new_task(self):
        self.subset = [torch.randperm(len(self.images), generator=g)[:self.images_per_task] for g in self.gens]
        self.labels = [torch.randint(self.out_features, (self.images_per_task,), generator=g) for g in self.gens]
