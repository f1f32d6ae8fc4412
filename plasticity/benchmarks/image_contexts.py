"""Joint-training benchmarks over colour images (the stability-gap paper's Split CIFAR-10, Domain CIFAR-100 and
Split mini-ImageNet): the sampler and evaluation sets of `plasticity.benchmarks.contexts`, over images kept on the
device as uint8 (N, 3, H, W).

Training batches are augmented where the benchmark says so (CIFAR: a random 32×32 crop of the image zero-padded by
4 pixels, then a horizontal flip with probability ½, torchvision's `RandomCrop(32, padding=4)` and
`RandomHorizontalFlip()` as the reference runs them, drawn per example from each seed's own "augment" stream), then
standardised with the data set's channel means and standard deviations. Test images are never augmented (the
reference's Split CIFAR-10 script augments its test set too, a quirk not copied; its lr-sweep script does not).

Subclasses set `dataset`, `MEAN`, `STD`, `augment` and `tasks` (Task with pixel_map None) and may replace the
labels the network learns (`label_key`: Domain CIFAR-100's superclasses).
"""
from __future__ import annotations

import numpy as np
import torch

from plasticity.benchmarks.contexts import ContextBenchmark, Task
from plasticity.config import ConfigError
from plasticity.seeding import generators

PAD = 4
# Test samples per forward of the evaluation: the conv net's activations for all of them at once would not fit.
EVALUATION_CHUNK = 500


def _load_npz(name: str, path) -> dict[str, torch.Tensor]:
    """The materialised arrays of data set `name` (x_* uint8 (N, H, W, 3), y_* labels) as tensors.
    Stand-in, to be replaced at the merge by the data branch's checked `plasticity.data.load_dataset(name, path)`."""
    if path is None:
        raise ConfigError(f"the {name} benchmarks need resources/{name}.npz (the workflow's data rule materialises "
                          "it; `plasticity train` takes it as --mnist PATH)")
    with np.load(path) as arrays:
        return {key: torch.from_numpy(arrays[key]) for key in arrays.files}


def _mini_imagenet_split(data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """mini-ImageNet with train and test splits. A copy of all 600 images per class in x_train only (contiguous
    blocks, as the common pickles hold them) is split as De Lange et al.'s Continual Evaluation code does: the first
    500 images of each class for training, the last 100 for testing (5/6 and 1/6 of whatever a class has)."""
    if "x_test" in data:
        return data
    labels = data["y_train"]
    train, test = [], []
    for label in labels.unique().tolist():
        indices = torch.nonzero(labels == label).flatten()
        cut = len(indices) * 5 // 6
        train.append(indices[:cut])
        test.append(indices[cut:])
    train, test = torch.cat(train), torch.cat(test)
    return {"x_train": data["x_train"][train], "y_train": labels[train],
            "x_test": data["x_train"][test], "y_test": labels[test]}


def augment(images: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
    """A random crop of the zero-padded image and a random horizontal flip for every image of (S, B, C, H, W)
    uint8, seed s's draws from gens[s]. Stand-in, to be swapped at the merge for the data branch's batched
    augmentation in `plasticity.data.augment` (same transform)."""
    seeds, batch, channels, height, width = images.shape
    draws = torch.stack([torch.randint(0, 2 * PAD + 1, (batch, 3), generator=g) for g in gens]).to(images.device)
    top, left, flip = draws[..., 0], draws[..., 1], draws[..., 2] % 2 == 1
    rows = top.unsqueeze(-1) + torch.arange(height, device=images.device)                    # (S, B, H)
    columns = torch.arange(width, device=images.device).expand(seeds, batch, width)
    columns = left.unsqueeze(-1) + torch.where(flip.unsqueeze(-1), columns.flip(-1), columns)  # (S, B, W)
    padded = torch.nn.functional.pad(images, (PAD, PAD, PAD, PAD))                            # zeros: black
    s = torch.arange(seeds, device=images.device).view(seeds, 1, 1, 1)
    b = torch.arange(batch, device=images.device).view(1, batch, 1, 1)
    # advanced indices around the channel slice: the result is (S, B, H, W, C)
    return padded[s, b, :, rows.unsqueeze(-1), columns.unsqueeze(-2)].permute(0, 1, 4, 2, 3)


class ImageContextBenchmark(ContextBenchmark):
    """Tasks over a colour-image data set for S seeds (see the module docstring)."""

    sparse_inputs = False
    evaluation_chunk = EVALUATION_CHUNK
    MEAN: tuple[float, float, float]
    STD: tuple[float, float, float]
    image_size: int
    out_features: int
    # The array of the labels the network learns; `classes` (the data set's own labels, y_*) define the tasks.
    label_key = "y_{split}"

    def __init__(self, seeds, device, augment: bool, mnist_path=None):
        self.augment = augment
        super().__init__(seeds, device, mnist_path)
        self.augment_gens = generators(seeds, "augment")
        self.mean = torch.tensor(self.MEAN, device=self.device).view(3, 1, 1)
        self.std = torch.tensor(self.STD, device=self.device).view(3, 1, 1)

    @classmethod
    def shapes(cls, **args) -> tuple[tuple[int, ...], int]:
        return (3, cls.image_size, cls.image_size), cls.output_count(**args)

    @classmethod
    def output_count(cls, **args) -> int:
        """The head's outputs for these benchmark arguments."""
        return cls.out_features

    def read(self, path) -> dict[str, torch.Tensor]:
        """The data set's arrays (x_*, y_* and any others it has)."""
        return _load_npz(self.dataset, path)

    def load(self, path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Images (N, 3, H, W) uint8 on the device and labels, checked against the benchmark's image size."""
        data = self.read(path)
        images = {}
        for split in ("train", "test"):
            x = data[f"x_{split}"]
            if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != (self.image_size,) * 2 + (3,):
                raise ConfigError(f"{self.dataset}: x_{split} must be uint8 (N, {self.image_size}, "
                                  f"{self.image_size}, 3); got {x.dtype} {tuple(x.shape)}")
            images[split] = x.permute(0, 3, 1, 2).contiguous().to(self.device)
        self.classes = {split: data[f"y_{split}"].long() for split in ("train", "test")}
        return images, {split: data[self.label_key.format(split=split)].long() for split in ("train", "test")}

    def standardise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 images (..., 3, H, W) -> the network's float32 inputs, on the device."""
        return pixels.to(self.device, torch.float32).div_(255).sub_(self.mean).div_(self.std)

    def inputs(self, split: str, examples: torch.Tensor, tasks) -> torch.Tensor:
        """Standardised images (S, n, 3, H, W) of `examples` (S, n); the task does not change an image."""
        return self.standardise(self.images[split][examples.to(self.device)])

    def next_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """An augmented (where the benchmark augments), standardised training batch (S, B, 3, H, W) and labels."""
        examples, _ = self.sample(batch_size)
        images = self.images["train"][examples.to(self.device)]
        if self.augment:
            images = augment(images, self.augment_gens)
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
