"""Extended Data Fig. 2: loss of plasticity in slowly-changing regression (bit-flipping).

(a) BP with ReLU and (b) with tanh at three step sizes, (c) the methods with ReLU (and any other run of the
experiment, e.g. a user's own method, by its run id); the linear learner (lr 0.01) is the dashed baseline in every
panel: a deep learner that ends above it has lost its advantage.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style

EXPERIMENTS = ["bit_flipping"]
TITLE = "Extended Data Fig. 2: slowly-changing regression (bit-flipping)"
EVERY_RUN = True   # draws every run of its experiments, a user's own method too (by its run id)
SWEEPS = ["bp", "linear"]    # the step-size sweeps of panels (a), (b) and the baseline; every other run is a method


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    runs = _style.select(_style.with_settings(aggregates["bit_flipping"]), {"metric": "squared_error", "layer": 0})
    linear = _style.select(runs, {"group": "linear", "hparams.lr": 0.01})
    relu_bp = _style.select(runs, {"group": "bp", "model.activation": "relu"})
    methods = pd.concat([_style.select(relu_bp, {"hparams.lr": 0.01}), runs[~runs["group"].isin(SWEEPS)]])
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3, sharey=True)
    for ax, activation in zip(axes, ["relu", "tanh"]):
        _style.plot_runs(ax, _style.select(runs, {"group": "bp", "model.activation": activation}), "hparams.lr",
                         lambda lr: f"lr {lr:g}")
    _style.plot_methods(axes[2], methods, lambda series: method_label(methods, series))
    for ax, title in zip(axes, ["(a) BP, ReLU", "(b) BP, tanh", "(c) methods, ReLU"]):
        if not linear.empty:
            _style.plot_mean_sem(ax, linear, "linear, lr 0.01", **_style.BASELINE_STYLE)
        _style.label_axes(ax, title, "examples", "squared error" if ax is axes[0] else "")
    fig.suptitle(TITLE)
    return fig


def method_label(methods: pd.DataFrame, series: str) -> str:
    """'Adam, lr 0.001': the step size differs between methods, so the legend says which one ran."""
    runs = _style.method_series(methods)
    lr = runs.loc[runs["series"] == series].get("hparams.lr", pd.Series(dtype=float)).dropna()
    return f"{_style.method_label(series)}" + (f", lr {lr.iloc[0]:g}" if len(lr) else "")


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _style.caption(aggregates, scale, "Online squared error, averaged per bin of examples, of a network "
                          "with one hidden layer of 5 units on slowly-changing regression (bit-flipping).")
