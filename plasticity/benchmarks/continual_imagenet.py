"""Continual ImageNet (Dohare et al. 2024, Fig. 1): binary classification of a new pair of Imagenet32 classes per
task, 600 training and 100 test images a class, labelled 0 and 1, trained for many epochs each.

Task t of seed s holds classes order[2t] and order[2t + 1] of a per-seed permutation of the classes. A permutation
lasts num_classes / 2 tasks (500 on Imagenet32: every class once, no pair twice), then a fresh per-seed permutation
is drawn for the next 500. The reference instead tiles one (unseeded) permutation, so the same pairs recur every 500
tasks in the same order (quirk, not copied: recurring tasks could let a learner re-use what it learnt on them).
Images are scaled to [0, 1], without normalisation or augmentation, as in the reference. The test images of a class
are never among its training images (`_class_images`).

The data stay on the device as uint8; a task's splits are gathered there.
"""
from __future__ import annotations

import torch

from plasticity.benchmarks import register
from plasticity.benchmarks.tasks import Split, Task, TaskBenchmark
from plasticity.config import ConfigError
from plasticity.data.vision import load_dataset
from plasticity.seeding import generator

CLASSES_PER_TASK = 2


def _class_images(data: dict[str, torch.Tensor], train_per_class: int,
                  test_per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train (C, train_per_class, 3, H, W), test (C, test_per_class, 3, H, W)) uint8 per class: the first images
    of each class's x_train and x_test (plasticity.data.datasets splits each class's 700 images 600/100, as LOP),
    so no test image is a training image."""
    def by_class(x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        order = torch.argsort(y, stable=True)
        counts = torch.bincount(y.long(), minlength=int(y.max()) + 1).tolist()
        return list(torch.split(x[order].permute(0, 3, 1, 2), counts))

    train, test = by_class(data["x_train"], data["y_train"]), by_class(data["x_test"], data["y_test"])
    for c, (train_images, test_images) in enumerate(zip(train, test)):
        if len(train_images) < train_per_class or len(test_images) < test_per_class:
            raise ConfigError(f"continual_imagenet: class {c} has {len(train_images)} training and "
                              f"{len(test_images)} test images; {train_per_class} and {test_per_class} are needed")
    return (torch.stack([images[:train_per_class] for images in train]),
            torch.stack([images[:test_per_class] for images in test]))


@register("continual_imagenet")
class ContinualImagenet(TaskBenchmark):
    """Continual ImageNet: a fresh pair of Imagenet32 classes per task, labelled 0/1 (Dohare et al. Fig. 1)."""

    dataset = "imagenet32"
    input_shape = (3, 32, 32)
    out_features = CLASSES_PER_TASK

    def __init__(self, seeds, device, num_tasks: int = 5000, num_classes: int = 1000, train_per_class: int = 600,
                 test_per_class: int = 100, data_path=None):
        super().__init__(seeds, device)
        if num_classes < CLASSES_PER_TASK or num_classes % CLASSES_PER_TASK:
            raise ConfigError(f"continual_imagenet: num_classes {num_classes} must be an even number >= 2")
        self.num_tasks, self.num_classes, self.train_per_class = num_tasks, num_classes, train_per_class
        train, test = _class_images(load_dataset(self.dataset, data_path), train_per_class, test_per_class)
        if len(train) < num_classes:
            raise ConfigError(f"continual_imagenet: num_classes {num_classes}, but the data hold {len(train)}")
        self.train_images, self.test_images = train[:num_classes].to(self.device), test[:num_classes].to(self.device)

    @property
    def tasks_per_permutation(self) -> int:
        return self.num_classes // CLASSES_PER_TASK

    def pair(self, seed: int, task: int) -> torch.Tensor:
        """The two classes of `task` for `seed`: a slice of the seed's permutation for the task's cycle."""
        cycle, within = divmod(task, self.tasks_per_permutation)
        order = torch.randperm(self.num_classes, generator=generator(seed, f"continual_imagenet:order:{cycle}"))
        return order[CLASSES_PER_TASK * within:CLASSES_PER_TASK * (within + 1)]

    def _split(self, images: torch.Tensor, pairs: torch.Tensor) -> Split:
        """Each seed's two classes' images, class 0's first, as floats in [0, 1]; labels 0 and 1."""
        inputs = images[pairs.to(self.device)].flatten(1, 2).float().div_(255)
        per_class = images.shape[1]
        labels = torch.arange(CLASSES_PER_TASK, device=self.device).repeat_interleave(per_class)
        return Split(inputs, labels.expand(len(self.seeds), -1))

    def task(self, task: int) -> Task:
        pairs = torch.stack([self.pair(seed, task) for seed in self.seeds])
        return Task(self._split(self.train_images, pairs), self._split(self.test_images, pairs), None,
                    torch.ones(CLASSES_PER_TASK, dtype=torch.bool, device=self.device))

    def train_examples(self, task: int) -> int:
        return CLASSES_PER_TASK * self.train_per_class

    @classmethod
    def planned_train_examples(cls, num_tasks: int = 5000, train_per_class: int = 600, **args) -> list[int]:
        return [CLASSES_PER_TASK * train_per_class] * num_tasks
