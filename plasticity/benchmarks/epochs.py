"""Online streams whose tasks are seen for several epochs (Kumar et al.'s Random Label MNIST and CIFAR-10, the
AdaLin paper's Shuffled CIFAR-10 and Class-Split CIFAR-100): the pattern they share, so each benchmark only says
what a task holds.

A task is, per seed, `images_per_task` (image, label) pairs; the stream presents them `epochs_per_task` times, each
epoch in a fresh per-seed random order, then the next task starts without any signal. Every random number comes from
the seed's own generators, in a fixed order (the task's draws at its first example, then each epoch's order), so a
seed's stream does not depend on its block or on the chunk size, and a checkpoint restores it (`stream_attributes`).
"""
from __future__ import annotations

import torch

from plasticity.benchmarks import Benchmark
from plasticity.config import ConfigError


class EpochTasks(Benchmark):
    """Subclasses set `images` (N, *example shape; uint8 images are scaled to [0, 1] as they are drawn) in their
    __init__ and implement `_new_task()`, which sets `subset` (per seed, the task's indices into `images`) and
    `labels` (per seed, their targets); `task` is the index of the task it starts."""

    stream_attributes = ("subset", "labels", "order", "position")

    def __init__(self, seeds, device, images: torch.Tensor, images_per_task: int, epochs_per_task: int):
        super().__init__(seeds, device)
        if images_per_task < 1 or epochs_per_task < 1:
            raise ConfigError(f"{type(self).__name__}: images_per_task ({images_per_task}) and epochs_per_task "
                              f"({epochs_per_task}) must be at least 1")
        self.images, self.images_per_task, self.epochs_per_task = images, images_per_task, epochs_per_task
        self.examples_per_task = images_per_task * epochs_per_task
        self.position = 0                       # examples generated so far
        self.subset = self.labels = self.order = None

    @property
    def task(self) -> int:
        return self.position // self.examples_per_task

    def _new_task(self) -> None:
        raise NotImplementedError

    def _generate(self, n: int):
        inputs = torch.empty(len(self.seeds), n, *self.images.shape[1:])
        targets = torch.empty(len(self.seeds), n, dtype=torch.long)
        for start, stop, within_epoch in self._segments(n, self.images_per_task):
            if within_epoch == 0:
                if self.position % self.examples_per_task == 0:
                    self._new_task()
                self.order = [torch.randperm(self.images_per_task, generator=g) for g in self.gens]
            for seed in range(len(self.seeds)):
                picks = self.order[seed][within_epoch:within_epoch + stop - start]
                images = self.images[self.subset[seed][picks]]
                inputs[seed, start:stop] = images.float().div_(255) if images.dtype == torch.uint8 else images
                targets[seed, start:stop] = self.labels[seed][picks]
        return inputs, targets
