"""How much linearity AdaLin injects as tasks go by: the distribution of the learned α over a layer's neurons
(median, and the band between the 10th and 90th percentiles), per hidden layer, measured at each task start."""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style
from figures.adalin2025 import _adalin

EXPERIMENTS = _adalin.EXPERIMENTS
TITLE = "AdaLin: learned α per layer over tasks"
VARIANTS = ["adalin_relu", "adalin_tanh", "adalin_gelu"]


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    return panels(aggregates, EXPERIMENTS, TITLE)


def panels(aggregates: dict[str, pd.DataFrame], experiments: list[str], title: str) -> Figure:
    """The figure for `experiments` (one row, or column, each): the MNIST ones or the CIFAR companion's."""
    fig = Figure(figsize=(13, 4 * len(experiments)))
    axes = fig.subplots(len(experiments), len(VARIANTS), squeeze=False, sharey="row")
    for row, experiment in zip(axes, experiments):
        runs = _adalin.adam_runs(aggregates[experiment])
        for ax, name in zip(row, VARIANTS):
            curves = runs[runs["variant"] == name]
            if curves.empty:
                ax.text(0.5, 0.5, "not run at this scale", transform=ax.transAxes, ha="center", color="0.4")
            for layer, color in zip(sorted(curves.loc[curves["metric"] == "alpha_median", "layer"].unique()),
                                    ("tab:blue", "tab:red", "tab:green", "tab:purple")):
                pick = lambda metric: curves[(curves["metric"] == metric) & (curves["layer"] == layer)].sort_values("x")
                median, low, high = pick("alpha_median"), pick("alpha_q10"), pick("alpha_q90")
                ax.plot(median["task"], median["mean"], color=color, label=f"layer {layer} median")
                ax.fill_between(low["task"], low["mean"], high["mean"].to_numpy(), color=color, alpha=0.2,
                                linewidth=0, label=f"layer {layer} 10–90%")
            _style.label_axes(ax, f"{_adalin.BENCHMARK_LABELS[experiment]}: {_adalin.label(name)}", "task",
                              "α", legend=ax is row[0])
    fig.suptitle(title)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str, experiments: list[str] = EXPERIMENTS) -> str:
    return _style.caption(aggregates, scale, "The learned α of each hidden layer at the start of each task "
                          "(initialised U[0, 1)). Adam at learning rate 1e-3. " + _adalin.protocol_note(experiments),
                          bands="Lines: per seed, the median of α over the layer's neurons; bands: its 10th to 90th "
                          "percentiles; each averaged across seeds.")
