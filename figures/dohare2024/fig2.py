"""Fig. 2: loss of plasticity in class-incremental CIFAR-100 with a ResNet-18: (a) test accuracy per task,
(b) accuracy relative to the network retrained from scratch at each task, (c) dormant units, (d) stable rank of the
pooled features, (e) mean weight magnitude, for BP, head resetting, the retrained network, Shrink & Perturb and
CBP (and any other run of the experiment, by its run id).
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style

EXPERIMENTS = ["incremental_cifar100"]
TITLE = "Fig. 2: class-incremental CIFAR-100 (ResNet-18)"
EVERY_RUN = True   # draws every run of its experiments, a user's own method too (by its run id)
LAST = "last"      # the pooled 512 features, the last unit layer: where the ranks are recorded
PANELS = [  # metric, layer (0, "hidden": mean over the unit layers, LAST), title, y label, display scale
    ("task_accuracy", 0, "(a) test accuracy", "test accuracy (%)", _style.PERCENT),
    ("relative_accuracy", 0, "(b) relative to retrained", "accuracy − retrained network's (pp)", _style.PERCENT),
    ("dead_units_pct", "hidden", "(c) dormant units", "dormant units (%, mean over layers)", 1.0),
    ("stable_rank", LAST, "(d) stable rank, pooled features", "stable rank (99%)", 1.0),
    ("weight_magnitude", 0, "(e) weight magnitude", "mean |w|", 1.0),
]


def task_number(frame: pd.DataFrame) -> pd.Series:
    """Task 1, 2, ...: the rank of x within each run (the derived metrics are in tasks already; the others in
    epochs, at a task's end or, for the probes, at its start)."""
    return frame.groupby("run")["x"].rank(method="dense")


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    runs = _style.with_settings(aggregates["incremental_cifar100"])
    fig = Figure(figsize=(16, 7))
    axes = fig.subplots(2, 3).ravel()
    for ax, (metric, layer, title, ylabel, display_scale) in zip(axes, PANELS):
        frame = _style.select(runs, {"metric": metric})
        if layer == "hidden":
            frame = _style.hidden_layer_mean(frame)
        else:
            frame = frame[frame["layer"] == (frame["layer"].max() if layer == LAST else layer)]
        _style.plot_methods(ax, frame, x=task_number, scale=display_scale)
        _style.label_axes(ax, title, "task", ylabel, legend=ax is axes[0])
    axes[-1].set_axis_off()
    fig.suptitle(TITLE)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _style.caption(aggregates, scale, (
        "Per task: test accuracy (on the unaugmented test images of the classes seen so far) of the early-stopped "
        "network, the task's best-validation weights, which every task ends on; the reference plots instead the "
        "maximum test accuracy over the task's epochs (recorded here as best_test_accuracy, not drawn) and "
        "augments its test set (not copied). Relative accuracy: minus the same seed's network retrained from "
        "scratch at each task start (fresh weights, BatchNorm statistics and momentum; the reference's retrained "
        "network keeps the last two: not copied). Dormant units (a channel nonzero on < 1% of the positions; a "
        "pooled feature zero on every image), the stable rank (fewest singular values reaching 99% of their sum) "
        "of the pooled features and mean |w| over all parameters are measured at each task start on 1,000 of its "
        "training images, in evaluation mode (the reference: BatchNorm in training mode)."))
