"""Helpers of the AdaLin figures (Razavi Rohani et al. 2025): which run is which variant (activation or method),
their colours, the task axis, and the protocol note every caption carries.

Figures show the Adam runs at learning rate 1e-3 (every scale runs it); at the paper scale the SGD runs and the
other learning rate are in the methods × benchmarks table, which picks each method's best learning rate. A run of
a variant the paper does not have (a user's own method) is shown at every optimizer and learning rate it ran,
named by its run id, in a colour of its own (`_style.fallback_color`).
"""
from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from figures import _style
from plasticity.analysis.adalin_table import BENCHMARK_LABELS, VARIANT_LABELS, variant, variant_order

EXPERIMENTS = ["adalin_pmnist", "adalin_random_label_mnist"]
# The CNN's online CIFAR benchmarks: their figures are companions (`<name>_cifar`), drawn when a scale runs them.
CIFAR_EXPERIMENTS = ["adalin_random_label_cifar10", "adalin_shuffled_cifar10", "adalin_class_split_cifar100"]
SHOWN_LR = 0.001
COLORS = dict(zip(VARIANT_LABELS, sns.color_palette("tab20", len(VARIANT_LABELS))))
# the three AdaLin activations against their plain ones: one colour per base, AdaLin solid, plain dashed
BASES = {"relu": "tab:blue", "tanh": "tab:orange", "gelu": "tab:green"}
PROTOCOL_NOTE = ("Protocol of Kumar et al. 2023 (confirmed for Permuted MNIST, assumed for Random Label MNIST); "
                 "the Kaiming-uniform initialisation and the regularisers' strengths are this project's.")
CIFAR_PROTOCOL_NOTE = ("CIFAR sizes assumed (the AdaLin paper's full text was not available): Random Label "
                       "CIFAR-10 as Kumar et al. 2023 (1,200 images a task, 400 epochs, batch 16, 50 tasks), Shuffled "
                       "CIFAR-10 the same sizes with a fresh permutation of the 10 labels a task, Class-Split "
                       "CIFAR-100 ours (5 classes a task, 500 images each, 8 epochs, 20 disjoint tasks); Kumar et "
                       "al.'s CNN (PyTorch default init), pixels in [0, 1]; CReLU's CNN parameter-matched (11 "
                       "channels, width 71); the regularisers' strengths are this project's.")
ONLINE_ACCURACY = "Online accuracy: per-batch training accuracy before the update, averaged over each task."


OTHERS_NOTE = "Other runs (e.g. a user's own method): every optimizer and learning rate they ran, by run id."


def protocol_note(experiments: list[str]) -> str:
    """The caption's protocol note for the figure's benchmarks."""
    return CIFAR_PROTOCOL_NOTE if set(experiments) <= set(CIFAR_EXPERIMENTS) else PROTOCOL_NOTE


def companion(module, experiments: list[str], title: str):
    """(draw, caption) of a companion figure: `module`'s figure for other experiments (the CIFAR benchmarks)."""
    def draw(aggregates: dict[str, pd.DataFrame], scale: str):
        return module.panels(aggregates, experiments, title)

    def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
        return module.caption(aggregates, scale, experiments)
    return draw, caption


def label(name: str) -> str:
    return VARIANT_LABELS.get(name, name)


def color(name: str):
    return COLORS[name] if name in COLORS else _style.fallback_color(name, [*COLORS.values(), *BASES.values()])


def others(frame: pd.DataFrame) -> list[str]:
    """The variants of `adam_runs` the paper does not have (their run ids), by name."""
    return [name for name in variant_order(frame["variant"]) if name not in VARIANT_LABELS]


def adam_runs(aggregate: pd.DataFrame) -> pd.DataFrame:
    """The Adam runs at the shown learning rate, and every run of a variant the paper does not have (its variant
    then its run id), with `variant` and `task` (x in tasks) columns."""
    frame = _style.with_settings(aggregate)
    frame["variant"] = [variant(r, m, a) for r, m, a in zip(frame["run"], frame["method"], frame["model.activation"])]
    known = frame["variant"].isin(list(VARIANT_LABELS))
    frame.loc[~known, "variant"] = frame.loc[~known, "run"]
    optimizer = frame.get("hparams.optimizer", pd.Series("sgd", index=frame.index)).fillna("sgd")
    adam = (frame["method"] == "adam") | ((frame["method"] != "bp") & (optimizer == "adam"))
    frame = frame[(adam & (frame["hparams.lr"] == SHOWN_LR)) | ~known].copy()
    frame["task"] = frame["x"] / examples_per_task(frame)
    return frame


def examples_per_task(frame: pd.DataFrame) -> pd.Series:
    """Each row's task length from its benchmark arguments: permuted MNIST's `examples_per_task`, or the images of
    a task (Random Label / Shuffled: `images_per_task`; Class-Split: classes × images per class) × its epochs."""
    def column(name: str) -> pd.Series:
        return frame.get(f"benchmark_args.{name}", pd.Series(float("nan"), index=frame.index))

    images = column("images_per_task").fillna(column("classes_per_task") * column("images_per_class"))
    return column("examples_per_task").fillna(images * column("epochs_per_task"))


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
        style = (styles or {}).get(name, {"color": color(name)})
        _style.plot_mean_sem(ax, curve, label(name), x=curve["task"], scale=scale, **style)


def base_styles() -> dict[str, dict]:
    """AdaLin with each base solid, the plain base dashed, in the base's colour."""
    styles = {}
    for base, color in BASES.items():
        styles[f"adalin_{base}"] = {"color": color}
        styles[base] = {"color": color, "linestyle": "--"}
    return styles
