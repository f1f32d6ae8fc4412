"""Companion of adalin2025/alpha on the CNN's CIFAR benchmarks (Random Label and Shuffled CIFAR-10,
Class-Split CIFAR-100): the same panels, one row per benchmark; the caption states the assumed sizes."""
from __future__ import annotations

from figures.adalin2025 import _adalin, alpha

EXPERIMENTS = _adalin.CIFAR_EXPERIMENTS
TITLE = "AdaLin on CIFAR (CNN): learned α per layer"
EVERY_RUN = getattr(alpha, "EVERY_RUN", False)
draw, caption = _adalin.companion(alpha, EXPERIMENTS, TITLE)
