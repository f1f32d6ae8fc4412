"""Extended Data Fig. 3: loss of plasticity in online permuted MNIST, for (a) step sizes, (b) widths and
(c) the rate of change (examples per task), all with BP.

(a) and (b) are plotted against the task number, (c) against examples, because its runs change task at
different rates and only examples put them on one axis. Runs of these experiments other than the BP sweep (e.g. a
user's own method) are drawn in their experiment's panel, labelled by run id.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style

EXPERIMENTS = ["pmnist_step_size", "pmnist_width", "pmnist_rate"]
TITLE = "Extended Data Fig. 3: online permuted MNIST (BP)"
EVERY_RUN = True   # draws every run of its experiments, a user's own method too (by its run id)
PANELS = [  # experiment, the setting its BP runs sweep, its legend, title, x axis (None: examples)
    ("pmnist_step_size", "hparams.lr", lambda lr: f"lr {lr:g}", "(a) step size", _style.task_number),
    ("pmnist_width", "model.width", lambda width: f"width {width:,}", "(b) width", _style.task_number),
    ("pmnist_rate", "benchmark_args.examples_per_task", lambda per_task: f"{per_task:,} examples/task",
     "(c) rate of change", None),
]


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    fig = Figure(figsize=(13, 3.8))
    for ax, (experiment, by, label, title, x) in zip(fig.subplots(1, 3), PANELS):
        runs = _style.select(_style.with_settings(aggregates[experiment]), {"metric": "online_accuracy", "layer": 0})
        sweep = runs["group"] == "bp"
        _style.plot_runs(ax, runs[sweep], by, label, x=x, scale=_style.PERCENT)
        _style.plot_methods(ax, runs[~sweep], x=x, scale=_style.PERCENT)
        _style.label_axes(ax, title, "task" if x else "examples", "online accuracy (%)" if ax is fig.axes[0] else "")
    fig.suptitle(TITLE)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _style.caption(aggregates, scale, "Online accuracy (prediction before the update), averaged per bin "
                          "of examples, of a 3-hidden-layer ReLU network trained with BP on permuted MNIST.")
