"""AdaLin ablation: one α per neuron against one α shared by a layer (the paper reports neuron-level adaptation
as crucial), with the plain activation for reference."""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style
from figures.adalin2025 import _adalin

EXPERIMENTS = _adalin.EXPERIMENTS
TITLE = "AdaLin ablation: neuron-level vs layer-level α"
VARIANTS = ["adalin_relu", "adalin_layer_relu", "relu", "adalin_tanh", "adalin_layer_tanh", "tanh",
            "adalin_gelu", "adalin_layer_gelu", "gelu"]


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    return panels(aggregates, EXPERIMENTS, TITLE)


def panels(aggregates: dict[str, pd.DataFrame], experiments: list[str], title: str) -> Figure:
    """The figure for `experiments` (one row, or column, each): the MNIST ones or the CIFAR companion's."""
    fig = Figure(figsize=(6.5 * len(experiments), 4.5))
    axes = fig.subplots(1, len(experiments))
    for ax, experiment in zip(axes, experiments):
        runs = _adalin.adam_runs(aggregates[experiment])
        _adalin.plot_variants(ax, runs, VARIANTS, "online_accuracy", _style.PERCENT)
        _style.label_axes(ax, _adalin.BENCHMARK_LABELS[experiment], "task", "online accuracy (%)")
    fig.suptitle(title)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str, experiments: list[str] = EXPERIMENTS) -> str:
    return _style.caption(aggregates, scale, "AdaLin with one learnable α per neuron against one α per layer "
                          "(same initialisation U[0, 1)), Adam at learning rate 1e-3. " + _adalin.ONLINE_ACCURACY
                          + " " + _adalin.protocol_note(experiments))
