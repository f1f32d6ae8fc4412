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

from plasticity.benchmarks import Benchmark, register
from plasticity.data.mnist import flat_training_set


@register("random_label_mnist")
class RandomLabelMnist(Benchmark):
    """Random Label MNIST: a fixed image set relabelled at random every task, several epochs per task."""
    dataset = "mnist"
    in_features = 784
    out_features = 10
    stream_attributes = ("subset", "labels", "order", "position")

    def __init__(self, seeds, device, images_per_task: int = 1200, epochs_per_task: int = 400, data_path=None):
        super().__init__(seeds, device)
        self.images, _ = flat_training_set(data_path, "random_label_mnist")
        self.images_per_task, self.epochs_per_task = images_per_task, epochs_per_task
        self.examples_per_task = images_per_task * epochs_per_task
        self.position = 0                       # examples generated so far
        self.subset = self.labels = self.order = None

    def _new_task(self):
        self.subset = [torch.randperm(len(self.images), generator=g)[:self.images_per_task] for g in self.gens]
        self.labels = [torch.randint(self.out_features, (self.images_per_task,), generator=g) for g in self.gens]

    def _generate(self, n: int):
        inputs = torch.empty(len(self.seeds), n, self.in_features)
        targets = torch.empty(len(self.seeds), n, dtype=torch.long)
        for start, stop, within_epoch in self._segments(n, self.images_per_task):
            if within_epoch == 0:
                if self.position % self.examples_per_task == 0:
                    self._new_task()
                self.order = [torch.randperm(self.images_per_task, generator=g) for g in self.gens]
            for seed in range(len(self.seeds)):
                picks = self.order[seed][within_epoch:within_epoch + stop - start]
                inputs[seed, start:stop] = self.images[self.subset[seed][picks]]
                targets[seed, start:stop] = self.labels[seed][picks]
        return inputs, targets
