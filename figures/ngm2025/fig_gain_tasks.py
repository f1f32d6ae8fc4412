"""Appendix: the mean gain of NGM-SGD per task (context), a readout of task complexity, with a linear fit per
benchmark; class-incremental (Split MNIST, first three tasks as in the paper) and domain-incremental (Rotated and
Permuted MNIST) panels."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from figures.ngm2025 import _ngm

EXPERIMENTS = ["ngm_split_mnist", "ngm_rotated_mnist", "ngm_permuted_mnist"]
TITLE = "Appendix: mean NGM-SGD gain per task"
PANELS = {"class-incremental": [("ngm_split_mnist", "Split MNIST", 3)],
          "domain-incremental": [("ngm_rotated_mnist", "Rotated MNIST", None),
                                 ("ngm_permuted_mnist", "Permuted MNIST", None)]}
COLORS = {"ngm_split_mnist": "crimson", "ngm_rotated_mnist": "orangered", "ngm_permuted_mnist": "goldenrod"}


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, (panel, entries) in zip(axes, PANELS.items()):
        for experiment, label, first in entries:
            mean, std = _ngm.mean_gain_per_context(aggregates[experiment])
            if first:
                mean, std = mean[:first], std[:first]
            tasks = np.arange(1, len(mean) + 1)
            color = COLORS[experiment]
            ax.errorbar(tasks, mean, yerr=std, fmt="o", color=color, label=label, capsize=3)
            if len(tasks) > 1:
                slope, intercept = np.polyfit(tasks, mean, 1)
                ax.plot(tasks, slope * tasks + intercept, color=color, linestyle="--", linewidth=1)
        ax.set_title(panel, loc="left", fontsize="medium")
        ax.set_xlabel("task")
        ax.set_ylabel("mean gain in the task's context")
        ax.set_xticks(range(1, 4))
        ax.legend(fontsize="small")
    fig.suptitle(TITLE)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _ngm.caption(aggregates, scale, "The seed-mean gain of NGM-SGD averaged over the iterations of each "
                        "context (error bars: its standard deviation over those iterations), with a least-squares "
                        "line per benchmark.", column=False)
