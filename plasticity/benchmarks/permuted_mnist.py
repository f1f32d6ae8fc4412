"""Online permuted MNIST (Dohare et al. 2024, Extended Data Figs. 3-4; also the AdaLin paper family's).

Each task applies a new random pixel permutation to the 60k training images and presents them in a new random
order, `examples_per_task` examples per task, each once (with more examples per task than images, the task
cycles through its shuffled images, as the reference does). Pixels are scaled to [0, 1] (x / 255).
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit

from plasticity.benchmarks import Benchmark, register
from plasticity.data.mnist import flat_training_set


@register("permuted_mnist")
class PermutedMnist(Benchmark):
    """Online permuted MNIST: a fresh pixel permutation every task, each example seen once."""
    dataset = "mnist"
    in_features = 784
    out_features = 10
    stream_attributes = ("permutation", "order", "position")

    def __init__(self, seeds, device, examples_per_task: int = 60_000, data_path=None):
        super().__init__(seeds, device)
        self.images, self.labels = flat_training_set(data_path, "permuted_mnist")
        self.examples_per_task = examples_per_task
        self.position = 0                                           # examples generated so far
        self.permutation = self.order = None

    def _new_task(self):
        self.permutation = [torch.randperm(self.in_features, generator=g) for g in self.gens]
        self.order = [torch.randperm(len(self.images), generator=g) for g in self.gens]

    def _generate(self, n: int):
        inputs = torch.empty(len(self.seeds), n, self.in_features)
        targets = torch.empty(len(self.seeds), n, dtype=torch.long)
        for start, stop, within in self._segments(n, self.examples_per_task):
            if within == 0:
                self._new_task()
            for seed in range(len(self.seeds)):
                picks = self.order[seed][torch.arange(within, within + stop - start) % len(self.images)]
                _permuted_rows(self.images.numpy(), picks.numpy(), self.permutation[seed].numpy(),
                               inputs[seed, start:stop].numpy())
                targets[seed, start:stop] = self.labels[picks]
        return inputs, targets


@njit(cache=True, nogil=True)
def _permuted_rows(images: np.ndarray, picks: np.ndarray, permutation: np.ndarray, out: np.ndarray) -> None:
    """out[r, j] = images[picks[r], permutation[j]]: the picked images with their pixels permuted, in one pass (a
    column gather over the whole batch, `index_select(1, ...)`, costs most of a task's generation)."""
    for r in range(picks.shape[0]):
        image, row = images[picks[r]], out[r]
        for j in range(permutation.shape[0]):
            row[j] = image[permutation[j]]
