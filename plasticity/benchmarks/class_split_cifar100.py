"""Class-Split CIFAR-100 (Lewandowski et al. 2024-25's name; a benchmark of the AdaLin paper): a sequence of tasks
over disjoint subsets of CIFAR-100's classes, in the online protocol without task boundary signal.

Task t of seed s holds `classes_per_task` classes of a per-seed permutation of the `num_classes` fine classes, labelled
0 .. classes_per_task − 1 by their position (one shared output layer, so each task re-uses the outputs): the tasks of
one permutation are disjoint (every class once: 20 tasks of 5 classes on CIFAR-100); after them a fresh permutation is
drawn, as continual_imagenet does. A task's images are the first `images_per_class` training images of each of its
classes (in dataset order; all 500 by default), seen `epochs_per_task` times in a new order every epoch; pixels are
scaled to [0, 1]. The paper's sizes are not public: ours are chosen in config/experiments.yaml (assumed, and said so
in the captions).
"""
from __future__ import annotations

import torch

from plasticity.benchmarks import register
from plasticity.benchmarks.cifar_images import INPUT_SHAPE, training_images
from plasticity.benchmarks.epochs import EpochTasks
from plasticity.config import ConfigError


@register("class_split_cifar100")
class ClassSplitCifar100(EpochTasks):
    """Class-Split CIFAR-100: each task a disjoint subset of the classes, labelled by position."""
    dataset = "cifar100"
    stream_attributes = EpochTasks.stream_attributes + ("class_order",)

    def __init__(self, seeds, device, classes_per_task: int = 5, images_per_class: int = 500,
                 epochs_per_task: int = 8, num_classes: int = 100, data_path=None):
        if not 1 <= classes_per_task <= num_classes:
            raise ConfigError(f"class_split_cifar100: classes_per_task {classes_per_task} must be between 1 and "
                              f"num_classes {num_classes}")
        images, classes = training_images(self.dataset, data_path)
        self.class_indices = [(classes == c).nonzero().squeeze(1)[:images_per_class] for c in range(num_classes)]
        short = [c for c, indices in enumerate(self.class_indices) if len(indices) < images_per_class]
        if short:
            raise ConfigError(f"class_split_cifar100: classes {short[:5]} have fewer than images_per_class "
                              f"{images_per_class} training images")
        super().__init__(seeds, device, images, classes_per_task * images_per_class, epochs_per_task)
        self.out_features, self.classes_per_task, self.num_classes = classes_per_task, classes_per_task, num_classes
        self.images_per_class = images_per_class
        self.class_order = None
        self.chunk = 1024        # as random_label_cifar10

    @classmethod
    def shapes(cls, classes_per_task: int = 5, **args) -> tuple[tuple[int, ...], int]:
        return INPUT_SHAPE, classes_per_task

    def task_classes(self, seed_index: int) -> torch.Tensor:
        """The classes of the current task for the seed at `seed_index` of the block."""
        within = self.task % (self.num_classes // self.classes_per_task)
        return self.class_order[seed_index][within * self.classes_per_task:(within + 1) * self.classes_per_task]

    def _new_task(self):
        if self.task % (self.num_classes // self.classes_per_task) == 0:
            self.class_order = [torch.randperm(self.num_classes, generator=g) for g in self.gens]
        self.subset = [torch.cat([self.class_indices[c] for c in self.task_classes(index).tolist()])
                       for index in range(len(self.seeds))]
        label = torch.arange(self.classes_per_task).repeat_interleave(self.images_per_class)
        self.labels = [label] * len(self.seeds)
