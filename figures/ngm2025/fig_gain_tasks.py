"""Appendix: the mean gain of NGM-SGD per task (context), a readout of task complexity, with a linear fit per
benchmark; class-incremental (Split MNIST, first three tasks as in the paper; Split CIFAR-10 and Split mini-ImageNet
where the scale runs them) and domain-incremental (Rotated and Permuted MNIST; Domain CIFAR-100) panels. On the
vision benchmarks the gain is the ResNet head's, the only gain-modulated layer."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from figures.ngm2025 import _ngm

EXPERIMENTS = ["ngm_split_mnist", "ngm_rotated_mnist", "ngm_permuted_mnist"]
OPTIONAL_EXPERIMENTS = ["ngm_split_cifar10", "ngm_split_mini_imagenet", "ngm_domain_cifar100"]
TITLE = "Appendix: mean NGM-SGD gain per task"
PANELS = {"class-incremental": [("ngm_split_mnist", "Split MNIST", 3), ("ngm_split_cifar10", "Split CIFAR-10", None),
                                ("ngm_split_mini_imagenet", "Split mini-ImageNet", None)],
          "domain-incremental": [("ngm_rotated_mnist", "Rotated MNIST", None),
                                 ("ngm_permuted_mnist", "Permuted MNIST", None),
                                 ("ngm_domain_cifar100", "Domain CIFAR-100", None)]}
COLORS = {"ngm_split_mnist": "crimson", "ngm_rotated_mnist": "orangered", "ngm_permuted_mnist": "goldenrod",
          "ngm_split_cifar10": "royalblue", "ngm_split_mini_imagenet": "navy", "ngm_domain_cifar100": "teal"}


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, (panel, entries) in zip(axes, PANELS.items()):
        most = 1
        for experiment, label, first in entries:
            if experiment not in aggregates:
                continue
            mean, std = _ngm.mean_gain_per_context(aggregates[experiment])
            if first:
                mean, std = mean[:first], std[:first]
            tasks = np.arange(1, len(mean) + 1)
            most = max(most, len(mean))
            color = COLORS[experiment]
            ax.errorbar(tasks, mean, yerr=std, fmt="o", color=color, label=label, capsize=3)
            if len(tasks) > 1:
                slope, intercept = np.polyfit(tasks, mean, 1)
                ax.plot(tasks, slope * tasks + intercept, color=color, linestyle="--", linewidth=1)
        ax.set_title(panel, loc="left", fontsize="medium")
        ax.set_xlabel("task")
        ax.set_ylabel("mean gain in the task's context")
        ax.set_xticks(range(1, most + 1))
        ax.legend(fontsize="small")
    fig.suptitle(TITLE)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _ngm.caption(aggregates, scale, "The seed-mean gain of NGM-SGD averaged over the iterations of each "
                        "context (error bars: its standard deviation over those iterations), with a least-squares "
                        "line per benchmark.", column=False)
