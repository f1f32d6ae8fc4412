"""The CIFAR training images of the online CIFAR benchmarks (random_label_cifar10, shuffled_cifar10,
class_split_cifar100), from the materialised data set (`resources/<dataset>.npz`, uint8 channel-last)."""
from __future__ import annotations

import torch

from plasticity.data.vision import load_dataset

INPUT_SHAPE = (3, 32, 32)


def training_images(dataset: str, path) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, 32, 32) uint8 on the CPU, fine labels (N,) int64) of the training split (its shapes checked
    by the loader). The images stay uint8 (150 MB for CIFAR's 50,000) until a batch is drawn."""
    data = load_dataset(dataset, path)
    return data["x_train"].permute(0, 3, 1, 2), data["y_train"]
