"""AdaLin-ReLU against ReLU (and CBP) on class-incremental CIFAR-100 with ResNet-18, under the loss-of-plasticity
protocol (Fig. 2 of Dohare et al., assumed for the AdaLin paper): test accuracy per task, dormant units and weight
magnitude at each task start (and any other run of the experiment, by its run id)."""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style
from figures.dohare2024.fig2 import task_number

EXPERIMENTS = ["adalin_incremental_cifar100"]
TITLE = "AdaLin on class-incremental CIFAR-100 (ResNet-18)"
EVERY_RUN = True   # draws every run of its experiments, a user's own method too (by its run id)
PANELS = [("task_accuracy", 0, "test accuracy", "test accuracy (%)", _style.PERCENT),
          ("dead_units_pct", "hidden", "dormant units", "dormant units (%, mean over layers)", 1.0),
          ("weight_magnitude", 0, "weight magnitude", "mean |w|", 1.0)]


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    runs = _style.with_settings(aggregates[EXPERIMENTS[0]])
    fig = Figure(figsize=(16, 4.5))
    axes = fig.subplots(1, len(PANELS))
    for ax, (metric, layer, title, ylabel, display_scale) in zip(axes, PANELS):
        frame = _style.select(runs, {"metric": metric})
        frame = _style.hidden_layer_mean(frame) if layer == "hidden" else frame[frame["layer"] == layer]
        _style.plot_methods(ax, frame, x=task_number, scale=display_scale)
        _style.label_axes(ax, title, "task", ylabel, legend=ax is axes[0])
    fig.suptitle(TITLE)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _style.caption(aggregates, scale, (
        "ReLU (the loss-of-plasticity paper's BP: SGD, momentum 0.9, weight decay 5e-4), AdaLin-ReLU (one α per "
        "channel in every activation of the ResNet, U[0, 1) at the start) and CBP under the protocol of "
        "incremental_cifar100 (Dohare et al. Fig. 2: 5 classes more per task, early-stopped on validation); the "
        "AdaLin paper's own settings for this benchmark are not known (assumed: LOP's). Test accuracy after each "
        "task on the classes seen so far; dormant units and mean |w| at each task start on 1,000 training images."))
