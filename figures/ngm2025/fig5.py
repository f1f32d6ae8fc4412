"""Fig. 5: ablating gain modulation on Split MNIST: NGM-SGD against G0-SGD (gain held at g0, no entropy drive).

Accuracy on the test data of the tasks seen so far, the one being learned included (pooled; the paper's "test
accuracy"), task-1 accuracy and the gain.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures.ngm2025 import _ngm

EXPERIMENTS = ["ngm_split_mnist"]
TITLE = "Fig. 5: ablation of gain modulation on Split MNIST (NGM-SGD vs G0-SGD)"
GROUPS = ["ngm_sgd", "g0_sgd"]


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    aggregate = aggregates[EXPERIMENTS[0]]
    fig = Figure(figsize=(11, 6))
    grid = fig.add_gridspec(2, 2)
    top_left, top_right, bottom = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    per_context, contexts = _ngm.context_length(aggregate)
    for ax, metric, layer, ylabel, scale_factor in [
            (top_left, "test_accuracy", 0, "test accuracy, seen tasks (%)", 100),
            (top_right, "task_accuracy", 1, "task-1 accuracy (%)", 100),
            (bottom, "gain", int(aggregate.loc[aggregate["metric"] == "gain", "layer"].max()), "gain", 1)]:
        _ngm.shade_contexts(ax, per_context, contexts)
        for group, curve in _ngm.runs_of(aggregate, metric, layer).items():
            if group in GROUPS:
                label, color = _ngm.method_style(group)
                _ngm.plot_curve(ax, curve, label, color, scale_factor)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("training iterations")
        ax.set_xlim(0, per_context * contexts)
    top_left.legend(fontsize="small")
    fig.suptitle(TITLE)
    return fig


def evaluates_current_task(aggregate: pd.DataFrame) -> bool:
    """Whether task 2 was evaluated during its own context (`evaluation.tasks: seen`), so that the pooled test
    accuracy covers the task being learned, as the paper's does; with `ended` it covers only the finished ones."""
    per_context, _ = _ngm.context_length(aggregate)
    task2 = aggregate[(aggregate["metric"] == "task_accuracy") & (aggregate["layer"] == 2)]
    return not task2.empty and int(task2["x"].min()) <= per_context + 1


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    pooled = ("the tasks seen so far, the one being learned included, as in the paper"
              if evaluates_current_task(aggregates[EXPERIMENTS[0]]) else
              "task 1 and the tasks whose context has ended (evaluation.tasks: ended), not the one being learned, "
              "unlike the paper")
    return _ngm.caption(aggregates, scale, "NGM-SGD and its ablation G0-SGD (gain held at g0 = 1, which makes it "
                        f"plain SGD) on Split MNIST: accuracy on the pooled test data of {pooled}, after every "
                        "iteration; task-1 accuracy, and the gain.", column=False)
