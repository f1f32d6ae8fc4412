"""Shuffled CIFAR-10 (Lewandowski et al. 2024-25's name; a benchmark of the AdaLin paper): the same CIFAR-10 images
in every task, their true labels mapped through a fresh random permutation of the 10 classes at each task.

Unlike random labels, a task is learnable from the images (their classes are consistent), but what a class means
changes at every task boundary, without any signal. The images are `images_per_task` training images drawn once per
seed at the first task and kept for every task; each is seen `epochs_per_task` times per task, in a new order every
epoch; pixels are scaled to [0, 1]. The paper's sizes are not public: we assume Random Label CIFAR-10's (Kumar et
al.: 1,200 images, 400 epochs, batch 16, 50 tasks), chosen in config/experiments.yaml.
"""
from __future__ import annotations

import torch

from plasticity.benchmarks import register
from plasticity.benchmarks.random_label_cifar10 import RandomLabelCifar10


@register("shuffled_cifar10")
class ShuffledCifar10(RandomLabelCifar10):
    """Shuffled CIFAR-10: fixed images, their labels permuted afresh every task."""

    def _new_task(self):
        if self.subset is None:
            self.subset = [torch.randperm(len(self.images), generator=g)[:self.images_per_task] for g in self.gens]
        permutations = [torch.randperm(self.out_features, generator=g) for g in self.gens]
        self.labels = [permutation[self.classes[subset]] for permutation, subset in zip(permutations, self.subset)]
