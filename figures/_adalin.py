"""Helpers of the AdaLin figures (Razavi Rohani et al. 2025): which run is which variant (activation or method),
their colours, the task axis, and the protocol note every caption carries.

Figures show the Adam runs at learning rate 1e-3 (every scale runs it); at the paper scale the SGD runs and the
other learning rate are in the methods × benchmarks table, which picks each method's best learning rate.
"""
from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from figures import _style
from plasticity.analysis.adalin_table import BENCHMARK_LABELS, VARIANT_LABELS, variant

EXPERIMENTS = ["adalin_pmnist", "adalin_random_label_mnist"]
SHOWN_LR = 0.001
COLORS = dict(zip(VARIANT_LABELS, sns.color_palette("tab20", len(VARIANT_LABELS))))
# the three AdaLin activations against their plain ones: one colour per base, AdaLin solid, plain dashed
BASES = {"relu": "tab:blue", "tanh": "tab:orange", "gelu": "tab:green"}
PROTOCOL_NOTE = ("Protocol of Kumar et al. 2023, which the AdaLin paper follows (confirmed for Permuted MNIST: "
                 "10k images per task seen once, batch 16, MLP 2×100; assumed for Random Label MNIST: 1,200 images "
                 "with random labels per task, many epochs). Kaiming-uniform init with the activation's gain and "
                 "the regularisers' strengths are this project's (the papers do not state or tune them here). "
                 "Online accuracy: per-batch training accuracy before the update, averaged over each task.")


def label(name: str) -> str:
    return VARIANT_LABELS.get(name, name)


def adam_runs(aggregate: pd.DataFrame) -> pd.DataFrame:
    """The Adam runs at the shown learning rate, with `variant` and `task` (x in tasks) columns."""
    frame = _style.with_settings(aggregate)
    optimizer = frame.get("hparams.optimizer", pd.Series("sgd", index=frame.index)).fillna("sgd")
    adam = (frame["method"] == "adam") | ((frame["method"] != "bp") & (optimizer == "adam"))
    frame = frame[adam & (frame["hparams.lr"] == SHOWN_LR)].copy()
    frame["variant"] = [variant(m, a) for m, a in zip(frame["method"], frame["model.activation"])]
    per_task = frame.get("benchmark_args.examples_per_task")
    if per_task is None or per_task.isna().any():
        per_task = frame["benchmark_args.images_per_task"] * frame["benchmark_args.epochs_per_task"]
    frame["task"] = frame["x"] / per_task
    return frame


def plot_variants(ax: Axes, frame: pd.DataFrame, variants: list[str], metric: str, scale: float = 1.0,
                  layer: int | str = 0, styles: dict | None = None) -> None:
    """One mean ± sem curve per variant present (per-layer metrics averaged over hidden layers with 'hidden')."""
    rows = frame[frame["metric"] == metric]
    rows = _style.hidden_layer_mean(rows) if layer == "hidden" else rows[rows["layer"] == layer]
    shown = [name for name in variants if name in set(rows["variant"])]
    if not shown:
        ax.text(0.5, 0.5, "not run at this scale", transform=ax.transAxes, ha="center", va="center", color="0.4")
    for name in shown:
        curve = rows[rows["variant"] == name]
        style = (styles or {}).get(name, {"color": COLORS[name]})
        _style.plot_mean_sem(ax, curve, label(name), x=curve["task"], scale=scale, **style)


def base_styles() -> dict[str, dict]:
    """AdaLin with each base solid, the plain base dashed, in the base's colour."""
    styles = {}
    for base, color in BASES.items():
        styles[f"adalin_{base}"] = {"color": color}
        styles[base] = {"color": color, "linestyle": "--"}
    return styles
