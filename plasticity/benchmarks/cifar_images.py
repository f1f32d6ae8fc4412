"""The CIFAR training images of the online CIFAR benchmarks (random_label_cifar10, shuffled_cifar10,
class_split_cifar100), from the materialised data set (`resources/<dataset>.npz`, uint8 channel-last)."""
from __future__ import annotations

import torch

from plasticity.config import ConfigError
from plasticity.data._standin import load_dataset      # STAND-IN: plasticity.data.load_dataset at merge

INPUT_SHAPE = (3, 32, 32)


def training_images(dataset: str, path, benchmark: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, 32, 32) uint8 on the CPU, fine labels (N,) int64) of the training split; ConfigError for
    data of another shape. The images stay uint8 (150 MB for CIFAR's 50,000) until a batch is drawn."""
    data = load_dataset(dataset, path)
    images = data["x_train"].permute(0, 3, 1, 2)
    if tuple(images.shape[1:]) != INPUT_SHAPE or images.dtype != torch.uint8:
        raise ConfigError(f"{benchmark}: {dataset} x_train must be uint8 (N, 32, 32, 3); got "
                          f"{data['x_train'].dtype} {tuple(data['x_train'].shape)}")
    return images, data["y_train"].long()
