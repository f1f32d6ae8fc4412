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

from plasticity.benchmarks import register
from plasticity.benchmarks.tasks import Split, Task, TaskBenchmark
from plasticity.config import ConfigError
from plasticity.data.augment import Augmentation
from plasticity.data.normalisation import normalise
from plasticity.data.vision import load_dataset
from plasticity.seeding import generator

TRAINING_IMAGES_PER_CLASS = 500     # CIFAR-100's, for the workflow's estimate of a job's steps


# The reference's training transforms (after normalisation, so rotation fills with 0 in normalised units, as there):
# RandomHorizontalFlip(), RandomCrop(32, padding=4, padding_mode="reflect"), RandomRotation((0, 15)) (nearest).
AUGMENTATION = Augmentation(padding=4, padding_mode="reflect", flip=0.5, angles=(0.0, 15.0), interpolation="nearest")


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
                 num_classes: int = 100, validation_per_class: int = 50, data_path=None):
        super().__init__(seeds, device)
        if initial_classes + (num_tasks - 1) * classes_per_task > num_classes:
            raise ConfigError(f"incremental_cifar100: {initial_classes} + {num_tasks - 1} × {classes_per_task} "
                              f"classes exceed num_classes {num_classes}")
        self.num_tasks, self.classes_per_task, self.initial_classes = num_tasks, classes_per_task, initial_classes
        self.out_features = num_classes
        data = load_dataset(self.dataset, data_path)
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
        return Split(normalise(inputs.float().div_(255), self.dataset, "dohare2024"), labels)

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
        return AUGMENTATION(inputs, gens)

