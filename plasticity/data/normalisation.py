"""Per-channel normalisation constants of the vision data sets, in one place, keyed by (data set, paper): the papers'
references normalise the same data set differently, and each benchmark uses its paper's values."""
from __future__ import annotations

import torch

# (mean, std) per RGB channel of pixels scaled to [0, 1].
NORMALISATION = {
    # loss-of-plasticity reference, class-incremental CIFAR-100
    ("cifar100", "dohare2024"): ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    # stability-gap reference (NGM), Split CIFAR-10
    ("cifar10", "ngm2025"): ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    # the stability-gap paper's Domain CIFAR-100: not stated there; CIFAR-100's own channel statistics (assumed)
    ("cifar100", "ngm2025"): ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    # ContinualEvaluation's mini-ImageNet constants, which the stability-gap paper's Split mini-ImageNet follows
    ("mini_imagenet", "ngm2025"): ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (..., H, W, C) as float32 (..., C, H, W) in [0, 1], on their device."""
    return images.movedim(-1, -3).float().div_(255)


def normalise(images: torch.Tensor, dataset: str, paper: str) -> torch.Tensor:
    """Float images (..., C, H, W) in [0, 1] standardised with the paper's constants for this data set."""
    if (dataset, paper) not in NORMALISATION:
        raise ValueError(f"no normalisation constants for data set {dataset!r} in paper {paper!r}; known: "
                         f"{', '.join(f'{d}/{p}' for d, p in NORMALISATION)}")
    mean, std = (torch.tensor(values, dtype=images.dtype, device=images.device).view(-1, 1, 1)
                 for values in NORMALISATION[dataset, paper])
    return (images - mean) / std
