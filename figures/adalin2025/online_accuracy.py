"""AdaLin: average online accuracy per task on Permuted MNIST and Random Label MNIST. Left, AdaLin-ReLU, -Tanh and
-GELU against their plain activations; right, AdaLin-ReLU against the other activations and the plasticity
methods (all ReLU networks), and any other run of the experiment (a user's own method)."""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style
from figures.adalin2025 import _adalin

EXPERIMENTS = _adalin.EXPERIMENTS
TITLE = "AdaLin: online accuracy per task"
EVERY_RUN = True   # draws every run of its experiments, a user's own method too (by its run id)
ACTIVATION_PANEL = ["adalin_relu", "relu", "adalin_tanh", "tanh", "adalin_gelu", "gelu"]
BASELINE_PANEL = ["adalin_relu", "relu", "leaky_relu", "prelu", "crelu", "l2", "l2_init", "shrink_perturb", "redo",
                  "cbp"]


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    return panels(aggregates, EXPERIMENTS, TITLE)


def panels(aggregates: dict[str, pd.DataFrame], experiments: list[str], title: str) -> Figure:
    """The figure for `experiments` (one row, or column, each): the MNIST ones or the CIFAR companion's."""
    fig = Figure(figsize=(13, 4 * len(experiments)))
    axes = fig.subplots(len(experiments), 2, squeeze=False)
    for row, experiment in zip(axes, experiments):
        runs = _adalin.adam_runs(aggregates[experiment])
        title = _adalin.BENCHMARK_LABELS[experiment]
        _adalin.plot_variants(row[0], runs, ACTIVATION_PANEL, "online_accuracy", _style.PERCENT,
                              styles=_adalin.base_styles())
        _adalin.plot_variants(row[1], runs, BASELINE_PANEL + _adalin.others(runs), "online_accuracy",
                              _style.PERCENT, styles={"adalin_relu": {"color": "black"}})
        _style.label_axes(row[0], f"{title}: AdaLin vs its plain activation", "task", "online accuracy (%)")
        _style.label_axes(row[1], f"{title}: AdaLin-ReLU vs baselines", "task", "online accuracy (%)")
    fig.suptitle(title)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str, experiments: list[str] = EXPERIMENTS) -> str:
    return _style.caption(aggregates, scale, "Average online accuracy of each task, Adam at learning rate 1e-3. "
                          "AdaLin: f(x) = φ(x) + α·x·sg[cos(π/2·|φ'(x)|/L)], one α per neuron (per channel on feature maps). "
                          + _adalin.OTHERS_NOTE + " " + _adalin.ONLINE_ACCURACY + " " + _adalin.protocol_note(experiments))
