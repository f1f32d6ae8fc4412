"""Fig. 1: loss of plasticity on continual ImageNet: (a) BP at three step sizes, (b) the methods (and any other
run of the experiment, by its run id), as test accuracy per bin of 50 tasks; the linear classifier trained under
the same protocol is the dashed baseline in both panels (the paper's is 77.1%).
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _style

EXPERIMENTS = ["imagenet_step_size", "imagenet_methods"]
TITLE = "Fig. 1: continual ImageNet"
EVERY_RUN = True   # draws every run of its experiments, a user's own method too (by its run id)
PAPER_LINEAR = 0.771


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    steps, methods = (_style.select(_style.with_settings(aggregates[name]), {"metric": "task_accuracy_binned"})
                      for name in EXPERIMENTS)
    linear = steps[steps["group"] == "linear"]
    fig = Figure(figsize=(12, 4))
    axes = fig.subplots(1, 2, sharey=True)
    _style.plot_runs(axes[0], steps[steps["group"] == "bp"], "hparams.lr", lambda lr: f"BP, lr {lr:g}")
    _style.plot_methods(axes[0], steps[~steps["group"].isin(["bp", "linear"])])
    _style.plot_methods(axes[1], methods)
    for ax, title in zip(axes, ["(a) BP, step sizes", "(b) methods"]):
        if not linear.empty:
            _style.plot_mean_sem(ax, linear, "linear (ours)", scale=_style.PERCENT, **_style.BASELINE_STYLE)
        ax.axhline(PAPER_LINEAR * _style.PERCENT, color="0.6", linestyle=":", linewidth=1, label="linear (paper)")
        _style.label_axes(ax, title, "task", "test accuracy (%, bins of 50 tasks)" if ax is axes[0] else "")
    fig.suptitle(TITLE)
    return fig


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _style.caption(aggregates, scale, (
        "Test accuracy on each task's 200 test images after its last epoch, averaged per seed over bins of 50 "
        "tasks (x: the bin's last task), of the ConvNet on binary tasks of Imagenet32 class pairs; the output "
        "layer is set to 0 at each task start. Pairs never recur within 500 tasks and a fresh per-seed "
        "permutation of the classes follows (the reference tiles one unseeded permutation, so its pairs recur "
        "every 500 tasks: not copied). Linear: a linear classifier trained under the same protocol (lr 0.01, "
        "ours); dotted: the paper's 77.1%."))
