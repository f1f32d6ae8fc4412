"""Joint-training benchmarks over colour images (the stability-gap paper's Split CIFAR-10, Domain CIFAR-100 and
Split mini-ImageNet): the sampler and evaluation sets of `plasticity.benchmarks.contexts`, over images kept on the
device as uint8 (N, 3, H, W).

Training batches are augmented where the benchmark says so (CIFAR: a random 32×32 crop of the image zero-padded by
4 pixels, then a horizontal flip with probability ½, torchvision's `RandomCrop(32, padding=4)` and
`RandomHorizontalFlip()` as the reference runs them, drawn per example from each seed's own "augment" stream), then
standardised with the data set's channel means and standard deviations. Test images are never augmented (the
reference's Split CIFAR-10 script augments its test set too, a quirk not copied; its lr-sweep script does not).

Subclasses set `dataset`, `augment` and `tasks` (Task with pixel_map None) and may replace the
labels the network learns (`label_key`: Domain CIFAR-100's superclasses).
"""
from __future__ import annotations

import torch

from plasticity.benchmarks.contexts import ContextBenchmark, Task
from plasticity.config import ConfigError
from plasticity.data.augment import Augmentation
from plasticity.data.normalisation import normalise
from plasticity.data.vision import load_dataset
from plasticity.seeding import generators

PAD = 4
# Test samples per forward of the evaluation: the conv net's activations for all of them at once would not fit.
EVALUATION_CHUNK = 500


# The reference's training transforms, torchvision's RandomCrop(32, padding=4) (zero padding) and
# RandomHorizontalFlip(); plasticity.data.augment flips before it crops, the same distribution of images.
AUGMENTATION = Augmentation(padding=PAD, padding_mode="zero", flip=0.5)


class ImageContextBenchmark(ContextBenchmark):
    """Tasks over a colour-image data set for S seeds (see the module docstring)."""

    sparse_inputs = False
    evaluation_chunk = EVALUATION_CHUNK
    paper = "ngm2025"       # whose normalisation constants (plasticity.data.normalisation)
    image_size: int
    out_features: int
    # The array of the labels the network learns; `classes` (the data set's own labels, y_*) define the tasks.
    label_key = "y_{split}"

    def __init__(self, seeds, device, augment: bool, data_path=None):
        self.augment = augment
        super().__init__(seeds, device, data_path)
        self.augment_gens = generators(seeds, "augment")

    @classmethod
    def shapes(cls, **args) -> tuple[tuple[int, ...], int]:
        return (3, cls.image_size, cls.image_size), cls.output_count(**args)

    @classmethod
    def output_count(cls, **args) -> int:
        """The head's outputs for these benchmark arguments."""
        return cls.out_features

    def load(self, path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Images (N, 3, H, W) uint8 on the device (their shapes checked by the loader) and labels."""
        data = load_dataset(self.dataset, path)
        images = {split: data[f"x_{split}"].permute(0, 3, 1, 2).contiguous().to(self.device)
                  for split in ("train", "test")}
        self.classes = {split: data[f"y_{split}"].long() for split in ("train", "test")}
        return images, {split: data[self.label_key.format(split=split)].long() for split in ("train", "test")}

    def standardise(self, images: torch.Tensor) -> torch.Tensor:
        """Images (..., 3, H, W) in [0, 1] -> the network's inputs, standardised with the paper's constants."""
        return normalise(images, self.dataset, self.paper)

    def pixels(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float32 in [0, 1], on the device."""
        return images.to(self.device, torch.float32).div_(255)

    def inputs(self, split: str, examples: torch.Tensor, tasks) -> torch.Tensor:
        """Standardised images (S, n, 3, H, W) of `examples` (S, n); the task does not change an image."""
        return self.standardise(self.pixels(self.images[split][examples.to(self.device)]))

    def next_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """An augmented (where the benchmark augments), standardised training batch (S, B, 3, H, W) and labels."""
        examples, _ = self.sample(batch_size)
        images = self.pixels(self.images["train"][examples.to(self.device)])
        if self.augment:
            images = AUGMENTATION(images, self.augment_gens)
        return self.standardise(images), self.labels["train"][examples].to(self.device)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "augment_gens": [g.get_state() for g in self.augment_gens]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        for g, saved in zip(self.augment_gens, state["augment_gens"]):
            g.set_state(saved)

    def class_blocks(self, num_tasks: int, classes_per_task: int, available: int) -> list[Task]:
        """Task k: the data set's classes k·c .. (k+1)·c − 1 (the class-incremental splits); a ConfigError unless
        there are that many classes."""
        if num_tasks < 1 or classes_per_task < 1 or num_tasks * classes_per_task > available:
            raise ConfigError(f"{type(self).__name__}: num_tasks {num_tasks} x classes_per_task {classes_per_task} "
                              f"must be between 1 and the {available} classes")
        blocks = [list(range(k * classes_per_task, (k + 1) * classes_per_task)) for k in range(num_tasks)]
        return [Task(f"classes {classes[0]}-{classes[-1]}", self.labels_in("train", classes),
                     self.labels_in("test", classes)) for classes in blocks]
