"""Extended Data Fig. 3: loss of plasticity in online permuted MNIST, for (a) step sizes, (b) widths and
(c) the rate of change (examples per task), all with BP.

(a) and (b) are plotted against the task number, (c) against examples, because its runs change task at
different rates and only examples put them on one axis.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style

EXPERIMENTS = ["pmnist_step_size", "pmnist_width", "pmnist_rate"]
TITLE = "Extended Data Fig. 3: online permuted MNIST (BP)"


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    def accuracy(experiment: str) -> pd.DataFrame:
        runs = _style.with_settings(aggregates[experiment])
        return _style.select(runs, {"metric": "online_accuracy", "layer": 0})

    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3)
    _style.plot_runs(axes[0], accuracy("pmnist_step_size"), "hparams.lr", lambda lr: f"lr {lr:g}",
                     x=_style.task_number, scale=_style.PERCENT)
    _style.label_axes(axes[0], "(a) step size", "task", "online accuracy (%)")
    _style.plot_runs(axes[1], accuracy("pmnist_width"), "model.width", lambda width: f"width {width:,}",
                     x=_style.task_number, scale=_style.PERCENT)
    _style.label_axes(axes[1], "(b) width", "task", "")
    _style.plot_runs(axes[2], accuracy("pmnist_rate"), "benchmark_args.examples_per_task",
                     lambda per_task: f"{per_task:,} examples/task", scale=_style.PERCENT)
    _style.label_axes(axes[2], "(c) rate of change", "examples", "")
    fig.suptitle(TITLE)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _style.caption(aggregates, scale, "Online accuracy (prediction before the update), averaged per bin "
                          "of examples, of a 3-hidden-layer ReLU network trained with BP on permuted MNIST.")
