"""Extended Data Fig. 2: loss of plasticity in slowly-changing regression (bit-flipping).

(a) BP with ReLU and (b) with tanh at three step sizes, (c) the methods with ReLU; the linear learner (lr 0.01)
is the dashed baseline in every panel: a deep learner that ends above it has lost its advantage.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style

EXPERIMENTS = ["bit_flipping"]
TITLE = "Extended Data Fig. 2: slowly-changing regression (bit-flipping)"
METHOD_GROUPS = ["adam", "l2", "shrink_perturb", "cbp"]


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    runs = _style.select(_style.with_settings(aggregates["bit_flipping"]), {"metric": "squared_error", "layer": 0})
    linear = _style.select(runs, {"group": "linear", "hparams.lr": 0.01})
    relu_bp = _style.select(runs, {"group": "bp", "model.activation": "relu"})
    methods = pd.concat([_style.select(relu_bp, {"hparams.lr": 0.01}), runs[runs["group"].isin(METHOD_GROUPS)]])
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3, sharey=True)
    panels = [("(a) BP, ReLU", relu_bp, "hparams.lr", lambda lr: f"lr {lr:g}"),
              ("(b) BP, tanh", _style.select(runs, {"group": "bp", "model.activation": "tanh"}), "hparams.lr",
               lambda lr: f"lr {lr:g}"),
              ("(c) methods, ReLU", methods, "group", lambda group: method_label(methods, group))]
    for ax, (title, frame, by, label) in zip(axes, panels):
        _style.plot_runs(ax, frame, by, label)
        if not linear.empty:
            _style.plot_mean_sem(ax, linear, "linear, lr 0.01", **_style.BASELINE_STYLE)
        _style.label_axes(ax, title, "examples", "squared error" if ax is axes[0] else "")
    fig.suptitle(TITLE)
    return fig


def method_label(methods: pd.DataFrame, group: str) -> str:
    """'Adam, lr 0.001': the step size differs between methods, so the legend says which one ran."""
    lr = methods.loc[methods["group"] == group, "hparams.lr"].iloc[0]
    return f"{_style.METHOD_LABELS[group]}, lr {lr:g}"


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _style.caption(aggregates, scale, "Online squared error, averaged per bin of examples, of a network "
                          "with one hidden layer of 5 units on slowly-changing regression (bit-flipping).")
