"""Companion of adalin2025/online_accuracy on the CNN's CIFAR benchmarks (Random Label and Shuffled CIFAR-10,
Class-Split CIFAR-100): the same panels, one row per benchmark; the caption states the assumed sizes."""
from __future__ import annotations

from figures.adalin2025 import _adalin, online_accuracy

EXPERIMENTS = _adalin.CIFAR_EXPERIMENTS
TITLE = "AdaLin on CIFAR (CNN): online accuracy per task"
EVERY_RUN = getattr(online_accuracy, "EVERY_RUN", False)
draw, caption = _adalin.companion(online_accuracy, EXPERIMENTS, TITLE)
