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

EXPERIMENTS = ["adalin_pmnist", "adalin_random_label_mnist"]
BENCHMARK_TITLES = {"adalin_pmnist": "Permuted MNIST", "adalin_random_label_mnist": "Random Label MNIST"}
SHOWN_LR = 0.001
ACTIVATION_LABELS = {"relu": "ReLU", "tanh": "Tanh", "gelu": "GELU", "adalin_relu": "AdaLin-ReLU",
                     "adalin_tanh": "AdaLin-Tanh", "adalin_gelu": "AdaLin-GELU",
                     "adalin_layer_relu": "AdaLin-ReLU, one α per layer", "adalin_layer_tanh": "AdaLin-Tanh, one α per layer",
                     "adalin_layer_gelu": "AdaLin-GELU, one α per layer", "leaky_relu": "Leaky ReLU",
                     "prelu": "PReLU", "crelu": "CReLU"}
METHOD_LABELS = {"l2": "L2", "l2_init": "L2 Init", "shrink_perturb": "Shrink & Perturb", "redo": "ReDo",
                 "cbp": "CBP"}
PLAIN_METHODS = ("adam", "bp")          # runs that differ only by their activation
VARIANTS = list(ACTIVATION_LABELS) + list(METHOD_LABELS)
COLORS = dict(zip(VARIANTS, sns.color_palette("tab20", len(VARIANTS))))
# the three AdaLin activations against their plain ones: one colour per base, AdaLin solid, plain dashed
BASES = {"relu": "tab:blue", "tanh": "tab:orange", "gelu": "tab:green"}
PROTOCOL_NOTE = ("Protocol of Kumar et al. 2023, which the AdaLin paper follows (confirmed for Permuted MNIST: "
                 "10k images per task seen once, batch 16, MLP 2×100; assumed for Random Label MNIST: 1,200 images "
                 "with random labels per task, many epochs). Kaiming-uniform init with the activation's gain and "
                 "the regularisers' strengths are this project's (the papers do not state or tune them here). "
                 "Online accuracy: per-batch training accuracy before the update, averaged over each task.")


def variant(method: str, activation: str) -> str:
    """The name a run is shown by: its activation for plain Adam/SGD runs, else its method."""
    return activation if method in PLAIN_METHODS else method


def label(name: str) -> str:
    return ACTIVATION_LABELS.get(name) or METHOD_LABELS.get(name, name)


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
