"""Plasticity correlates under AdaLin and the baselines: dead units, effective rank of the hidden features, and
weight magnitude, measured on a probe batch at each task start (the measures of the loss-of-plasticity paper), and
any other run of the experiment (a user's own method)."""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style
from figures.adalin2025 import _adalin

EXPERIMENTS = _adalin.EXPERIMENTS
TITLE = "AdaLin: correlates of plasticity"
EVERY_RUN = True   # draws every run of its experiments, a user's own method too (by its run id)
VARIANTS = ["adalin_relu", "relu", "adalin_tanh", "tanh", "prelu", "crelu", "l2_init", "redo", "cbp"]
PANELS = [("dead_units_pct", "hidden", "dead units (%, mean over hidden layers)"),
          ("effective_rank", "hidden", "effective rank (mean over hidden layers)"),
          ("weight_magnitude", 0, "mean |w|")]


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    return panels(aggregates, EXPERIMENTS, TITLE)


def panels(aggregates: dict[str, pd.DataFrame], experiments: list[str], title: str) -> Figure:
    """The figure for `experiments` (one row, or column, each): the MNIST ones or the CIFAR companion's."""
    fig = Figure(figsize=(15, 4 * len(experiments)))
    axes = fig.subplots(len(experiments), len(PANELS), squeeze=False)
    for row, experiment in zip(axes, experiments):
        runs = _adalin.adam_runs(aggregates[experiment])
        for ax, (metric, layer, ylabel) in zip(row, PANELS):
            _adalin.plot_variants(ax, runs, VARIANTS + _adalin.others(runs), metric, layer=layer)
            _style.label_axes(ax, _adalin.BENCHMARK_LABELS[experiment], "task", ylabel, legend=ax is row[0])
    fig.suptitle(title)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str, experiments: list[str] = EXPERIMENTS) -> str:
    return _style.caption(aggregates, scale, "Measured on the first 1,000 examples of each task (the probe batch) "
                          "before training on it. A unit is dead when its output is exactly 0 on every probe "
                          "example: a ReLU unit then gets no gradient, while AdaLin-ReLU and PReLU units keep the "
                          "slope α on the negative side and are dead only where α = 0. Adam at learning rate 1e-3. "
                          + _adalin.OTHERS_NOTE + " " + _adalin.protocol_note(experiments))
