"""Synthetic class-incremental or class-pair tasks on random images: a stand-in that exercises the tasks protocol
with conv nets in tests and at the smoke scale, never a result.

Each class c is a fixed random image pattern μ_c (C, H, W) drawn from a generator of the benchmark's own (the
same for every seed); an example is μ_c plus N(0, noise²) pixel noise, drawn per seed. Task t holds
`classes_per_task` classes of a per-seed permutation of the classes: with `incremental: true` the output grows by
them (labels = position in the seed's class order, logits of later classes masked) and every task trains and
tests on all classes seen so far, as class-incremental CIFAR-100 does; otherwise each task is labelled 0..k-1 and tested on its
own classes, as continual ImageNet does. `validation_per_class` > 0 adds a validation set.
"""
from __future__ import annotations

import torch

from plasticity.benchmarks import register
from plasticity.benchmarks.tasks import Split, Task, TaskBenchmark
from plasticity.config import ConfigError
from plasticity.seeding import generator


@register("synthetic_tasks")
class SyntheticTasks(TaskBenchmark):
    """Random-pattern images in tasks of a few classes (tests and the smoke scale only)."""

    input_shape = (3, 16, 16)

    def __init__(self, seeds, device, num_tasks: int = 3, classes_per_task: int = 2, num_classes: int = 6,
                 train_per_class: int = 20, test_per_class: int = 10, validation_per_class: int = 0,
                 noise: float = 1.0, incremental: bool = False, data_path=None):
        super().__init__(seeds, device)
        if num_tasks * classes_per_task > num_classes:
            raise ConfigError(f"synthetic_tasks: {num_tasks} tasks of {classes_per_task} classes need "
                              f"{num_tasks * classes_per_task} classes; num_classes is {num_classes}")
        self.num_tasks, self.classes_per_task, self.num_classes = num_tasks, classes_per_task, num_classes
        self.per_class = {"train": train_per_class, "test": test_per_class, "validation": validation_per_class}
        self.noise, self.incremental = noise, incremental
        self.out_features = self.shapes(num_tasks=num_tasks, classes_per_task=classes_per_task,
                                        incremental=incremental)[1]
        self.patterns = torch.randn(num_classes, *self.input_shape, generator=generator(0, "synthetic_patterns"))
        self.class_order = torch.stack([torch.randperm(num_classes, generator=g) for g in self.gens])

    @classmethod
    def shapes(cls, num_tasks: int = 3, classes_per_task: int = 2, incremental: bool = False,
               **args) -> tuple[tuple[int, ...], int]:
        return cls.input_shape, num_tasks * classes_per_task if incremental else classes_per_task

    def _split(self, split: str, task: int, positions: range) -> Split | None:
        """The examples of the classes at `positions` of each seed's class order; label = the position (class
        incremental) or the position within the task."""
        count = self.per_class[split]
        if count == 0:
            return None
        offset = 0 if self.incremental else task * self.classes_per_task
        labels = torch.arange(positions.start, positions.stop).repeat_interleave(count) - offset
        inputs = []
        for seed, order in zip(self.seeds, self.class_order):
            images = self.patterns[order[positions.start:positions.stop]].repeat_interleave(count, dim=0)
            noise = torch.randn(images.shape, generator=generator(seed, f"synthetic:{split}:{task}"))
            inputs.append(images + self.noise * noise)
        return Split(torch.stack(inputs).to(self.device), labels.expand(len(self.seeds), -1).to(self.device))

    def task(self, task: int) -> Task:
        """The task's own classes, or, class-incrementally, every class seen so far."""
        classes = self._classes(task)
        seen = torch.zeros(self.out_features, dtype=torch.bool, device=self.device)
        seen[:classes.stop if self.incremental else self.classes_per_task] = True
        return Task(self._split("train", task, classes), self._split("test", task, classes),
                    self._split("validation", task, classes), seen)

    def _classes(self, task: int) -> range:
        own = range(task * self.classes_per_task, (task + 1) * self.classes_per_task)
        return range(own.stop) if self.incremental else own

    def train_examples(self, task: int) -> int:
        return len(self._classes(task)) * self.per_class["train"]

    @classmethod
    def planned_train_examples(cls, num_tasks: int = 3, classes_per_task: int = 2, train_per_class: int = 20,
                               incremental: bool = False, **args) -> list[int]:
        return [(t + 1 if incremental else 1) * classes_per_task * train_per_class for t in range(num_tasks)]
