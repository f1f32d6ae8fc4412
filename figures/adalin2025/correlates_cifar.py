"""Companion of adalin2025/correlates on the CNN's CIFAR benchmarks (Random Label and Shuffled CIFAR-10,
Class-Split CIFAR-100): the same panels, one row per benchmark; the caption states the assumed sizes."""
from __future__ import annotations

from figures.adalin2025 import _adalin, correlates

EXPERIMENTS = _adalin.CIFAR_EXPERIMENTS
TITLE = "AdaLin on CIFAR (CNN): correlates of plasticity"
EVERY_RUN = getattr(correlates, "EVERY_RUN", False)
draw, caption = _adalin.companion(correlates, EXPERIMENTS, TITLE)
