"""Companion of adalin2025/ablation on the CNN's CIFAR benchmarks (Random Label and Shuffled CIFAR-10,
Class-Split CIFAR-100): the same panels, one row per benchmark; the caption states the assumed sizes."""
from __future__ import annotations

from figures.adalin2025 import _adalin, ablation

EXPERIMENTS = _adalin.CIFAR_EXPERIMENTS
TITLE = "AdaLin on CIFAR (CNN): neuron-level vs layer-level α"
EVERY_RUN = getattr(ablation, "EVERY_RUN", False)
draw, caption = _adalin.companion(ablation, EXPERIMENTS, TITLE)
