"""Class-incremental CIFAR-100 (Dohare et al. 2024, Fig. 2): start with 5 classes of a per-seed permutation of the
100 and add 5 at every task (20 tasks); each task trains on every class seen so far, and is tested on the standard
test images of those classes, the logits of the others masked (the protocol's `mask_unseen_classes`). Labels are
positions in the seed's class order, so the seen classes are the first outputs.

Split, as the reference: validation = the first 50 training images of each class in dataset order, training = the
others (450). Pixels /255, normalised with CIFAR-100's mean and std. Training batches are augmented (`augment`):
horizontal flip (p 0.5), random crop 32 with 4 pixels of reflect padding, rotation by 0–15° (nearest, fill 0), in
the reference's order. Validation and test images are never augmented (the reference augments its test set:
quirk, not copied). A task's training images are in a fixed per-seed shuffled order, so that the probe batch (its
first images) holds every seen class.

The data stay on the device as uint8; splits are gathered and normalised there, and augmentation runs batched there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from plasticity.benchmarks import register
from plasticity.benchmarks.tasks import Split, Task, TaskBenchmark
from plasticity.config import ConfigError
from plasticity.data._standin import load_dataset      # STAND-IN: plasticity.data.load_dataset at merge
from plasticity.seeding import generator

MEAN, STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
TRAINING_IMAGES_PER_CLASS = 500     # CIFAR-100's, for the workflow's estimate of a job's steps
PAD, MAX_DEGREES = 4, 15.0


def _augment(images: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
    """STAND-IN for the data layer's `plasticity.data.augment` (same semantics; swap at merge). Images (S, B, C, H, W)
    on any device: per seed, from its own generator (drawn on the CPU), h-flip 0.5, random crop with reflect padding
    4 (one gather: crop then flip, the same distribution as the reference's flip then crop), rotation U(0°, 15°)
    about the centre (nearest, zero fill), applied to the whole batch at once."""
    seeds, batch, channels, height, width = images.shape
    draws = [(torch.rand(batch, generator=g) < 0.5, torch.randint(0, 2 * PAD + 1, (batch, 2), generator=g),
              torch.rand(batch, generator=g) * MAX_DEGREES) for g in gens]
    flip, shift, degrees = (torch.cat(parts).to(images.device) for parts in zip(*draws))
    x = F.pad(images.flatten(0, 1), (PAD,) * 4, mode="reflect")
    columns = torch.arange(width, device=images.device)
    columns = torch.where(flip[:, None], width - 1 - columns, columns) + shift[:, 1:]
    rows = torch.arange(height, device=images.device) + shift[:, :1]
    images_index = torch.arange(len(x), device=x.device)[:, None, None, None]
    channel_index = torch.arange(channels, device=x.device)[:, None, None]
    x = x[images_index, channel_index, rows[:, None, :, None], columns[:, None, None, :]]
    angle = torch.deg2rad(degrees)
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return x.unflatten(0, (seeds, batch))


def _per_class(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """Each class's images (n, C, H, W) uint8, in dataset order."""
    images = x.permute(0, 3, 1, 2)
    return [images[y == c] for c in range(num_classes)]


@register("incremental_cifar100")
class IncrementalCifar100(TaskBenchmark):
    """Class-incremental CIFAR-100: 5 new classes per task, each trained with all seen before (Dohare et al.
    Fig. 2)."""

    dataset = "cifar100"
    input_shape = (3, 32, 32)

    def __init__(self, seeds, device, num_tasks: int = 20, classes_per_task: int = 5, initial_classes: int = 5,
                 num_classes: int = 100, validation_per_class: int = 50, mnist_path=None):
        super().__init__(seeds, device)
        if initial_classes + (num_tasks - 1) * classes_per_task > num_classes:
            raise ConfigError(f"incremental_cifar100: {initial_classes} + {num_tasks - 1} × {classes_per_task} "
                              f"classes exceed num_classes {num_classes}")
        self.num_tasks, self.classes_per_task, self.initial_classes = num_tasks, classes_per_task, initial_classes
        self.out_features = num_classes
        data = load_dataset(self.dataset, mnist_path)
        train = _per_class(data["x_train"], data["y_train"], num_classes)
        test = _per_class(data["x_test"], data["y_test"], num_classes)
        train_counts, test_counts = {len(images) for images in train}, {len(images) for images in test}
        if len(train_counts) != 1 or len(test_counts) != 1 or min(train_counts) <= validation_per_class:
            raise ConfigError(f"incremental_cifar100: needs every class with the same number of training images, "
                              f"more than validation_per_class {validation_per_class}, and of test images; got "
                              f"{sorted(train_counts)} and {sorted(test_counts)}")

        def stack(sets: list[torch.Tensor]) -> torch.Tensor:       # (classes, n, 3, H, W) uint8 on the device
            return torch.stack(sets).to(self.device)

        self.validation_images = stack([images[:validation_per_class] for images in train])
        self.train_images = stack([images[validation_per_class:] for images in train])
        self.test_images = stack(test)
        self.class_order = torch.stack([torch.randperm(num_classes, generator=generator(seed, "cifar100:classes"))
                                        for seed in self.seeds])
        self.mean = torch.tensor(MEAN, device=self.device).view(3, 1, 1)
        self.std = torch.tensor(STD, device=self.device).view(3, 1, 1)

    @classmethod
    def shapes(cls, num_classes: int = 100, **args) -> tuple[tuple[int, ...], int]:
        return cls.input_shape, num_classes

    def seen(self, task: int) -> int:
        return self.initial_classes + task * self.classes_per_task

    def _split(self, images: torch.Tensor, seen: int, order: torch.Tensor | None = None) -> Split:
        """The images of each seed's first `seen` classes, normalised; labels = the class's position."""
        classes = self.class_order[:, :seen].to(self.device)
        per_class = images.shape[1]
        inputs = images[classes].flatten(1, 2)
        labels = torch.arange(seen, device=self.device).repeat_interleave(per_class).expand(len(self.seeds), -1)
        if order is not None:
            inputs = torch.stack([x[i] for x, i in zip(inputs, order)])
            labels = torch.gather(labels, 1, order)
        return Split((inputs.float().div_(255) - self.mean) / self.std, labels)

    def task(self, task: int) -> Task:
        seen = self.seen(task)
        count = self.train_examples(task)
        order = torch.stack([torch.randperm(count, generator=generator(seed, f"cifar100:order:{task}"))
                             for seed in self.seeds]).to(self.device)
        mask = torch.zeros(self.out_features, dtype=torch.bool, device=self.device)
        mask[:seen] = True
        return Task(self._split(self.train_images, seen, order), self._split(self.test_images, seen),
                    self._split(self.validation_images, seen), mask)

    def train_examples(self, task: int) -> int:
        return self.seen(task) * self.train_images.shape[1]

    @classmethod
    def planned_train_examples(cls, num_tasks: int = 20, classes_per_task: int = 5, initial_classes: int = 5,
                               validation_per_class: int = 50, **args) -> list[int]:
        per_class = TRAINING_IMAGES_PER_CLASS - validation_per_class
        return [(initial_classes + t * classes_per_task) * per_class for t in range(num_tasks)]

    def augment(self, inputs: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
        return _augment(inputs, gens)

