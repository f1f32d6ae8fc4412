"""Extended Data Fig. 4: methods on online permuted MNIST: accuracy and three correlates of lost plasticity
(dead units, weight magnitude, effective rank), each against the task number.

Dead units and effective rank are measured per hidden layer and shown as their mean over the hidden layers. Runs
other than the paper's methods (e.g. a user's own method) are drawn too, labelled by run id.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style

EXPERIMENTS = ["pmnist_methods"]
TITLE = "Extended Data Fig. 4: methods on online permuted MNIST"
EVERY_RUN = True   # draws every run of its experiments, a user's own method too (by its run id)
PANELS = [  # metric, per hidden layer?, title, y label, display scale
    ("online_accuracy", False, "(a) online accuracy", "online accuracy (%)", _style.PERCENT),
    ("dead_units_pct", True, "(b) dead units", "dead units (%, mean over hidden layers)", 1.0),
    ("weight_magnitude", False, "(c) weight magnitude", "mean |w|", 1.0),
    ("effective_rank", True, "(d) effective rank", "effective rank (mean over hidden layers)", 1.0),
]


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    runs = _style.with_settings(aggregates["pmnist_methods"])
    fig = Figure(figsize=(13, 7))
    axes = fig.subplots(2, 2).ravel()
    for ax, (metric, per_layer, title, ylabel, display_scale) in zip(axes, PANELS):
        frame = _style.select(runs, {"metric": metric})
        frame = _style.hidden_layer_mean(frame) if per_layer else _style.select(frame, {"layer": 0})
        _style.plot_methods(ax, frame, x=_style.task_number, scale=display_scale)
        _style.label_axes(ax, title, "task", ylabel, legend=ax is axes[0])  # one legend: same methods everywhere
    fig.suptitle(TITLE)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _style.caption(aggregates, scale, "Methods on online permuted MNIST: online accuracy per bin of "
                          "examples; dead units, mean |w| and effective rank measured on a probe batch at the "
                          "start of each task. Bands of the per-layer panels are the mean of the layers' "
                          "standard errors, an upper bound on the standard error of the layer mean.")
