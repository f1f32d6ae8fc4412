"""Helpers of the stability-gap paper's figures (Rodriguez-Garcia et al. 2025): its colours, the context
shading, the mean ± standard deviation curves over iterations, the dots at each context's minimum, and the
caption (scale, seeds and deviations from the protocol of config/experiments.yaml)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from figures import _style
from plasticity.analysis.ngm_tables import METHOD_LABELS
from plasticity.config import RUN_FIELDS, canonical_json, expand_runs, load_protocol

# The paper's colours: NGM-SGD orange, MSGD blue, Adam green, SGD gray, G0-SGD purple; other methods after them,
# and any other run (a user's own method) in a colour of its own (`_style.fallback_color`), labelled by its run id.
COLORS = {"ngm_sgd": "darkorange", "msgd": "royalblue", "adam": "forestgreen", "sgd": "gray", "g0_sgd": "purple",
          "cbp": "crimson", "bp": "black", "l2": "olive", "shrink_perturb": "teal"}
PAPER_GROUPS = ["ngm_sgd", "msgd", "adam", "sgd"]   # the runs the paper's Figs. 3-4 show (its gain: NGM-SGD's)
PAPER_RUNS_NOTE = "NGM-SGD, MSGD, Adam and SGD as in the paper (gain: NGM-SGD's); the other runs are in its companion."
PERMUTATION_NOTES = {"shared": "shared by every seed (as the authors ran it)", "per_seed": "drawn per seed"}
EXTRA_RUNS_NOTE = ("The experiment's runs the paper's figure does not show (a run the project does not know is "
                   "labelled by its run id), and NGM-SGD for reference.")


def runs_of(aggregate: pd.DataFrame, metric: str, layer: int = 0) -> dict[str, pd.DataFrame]:
    """{series: its curve of `metric` at `layer`}, in the paper's method order, then the other runs by name; a
    series is a run group of the known methods, or the run id of any other run."""
    frame = _style.method_series(_style.with_settings(aggregate), known=COLORS)
    frame = frame[(frame["metric"] == metric) & (frame["layer"] == layer)].sort_values("x")
    order = {name: i for i, name in enumerate(COLORS)}
    return dict(sorted(frame.groupby("series"), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def method_style(series: str) -> tuple[str, object]:
    """(legend label, colour) of a series."""
    color = COLORS[series] if series in COLORS else _style.fallback_color(series, COLORS.values())
    return METHOD_LABELS.get(series, series), color


def extra_groups(aggregate: pd.DataFrame) -> list[str]:
    """NGM-SGD (for reference) and every series the paper's Figs. 3-4 do not show (G0-SGD, CBP, a user's own)."""
    return ["ngm_sgd"] + [series for series in runs_of(aggregate, "task_accuracy", 1) if series not in PAPER_GROUPS]


def context_length(aggregate: pd.DataFrame) -> tuple[int, int]:
    """(iterations per context, contexts) from the recorded per-transition gaps and the last iteration."""
    transitions = int(aggregate.loc[aggregate["metric"] == "stability_gap", "layer"].max())
    contexts = transitions + 1
    return int(aggregate["x"].max()) // contexts, contexts


def shade_contexts(ax: Axes, per_context: int, contexts: int) -> None:
    for c in range(contexts):
        if c % 2:
            ax.axvspan(c * per_context, (c + 1) * per_context, color="0.92", zorder=0, linewidth=0)


def plot_curve(ax: Axes, curve: pd.DataFrame, label: str, color, scale: float = 1.0) -> None:
    x, mean, std = curve["x"].to_numpy(), curve["mean"].to_numpy() * scale, curve["std"].to_numpy() * scale
    ax.plot(x, mean, label=label, color=color, linewidth=1.2)
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)


def context_minima(curve: pd.DataFrame, per_context: int, contexts: int) -> list[tuple[int, float]]:
    """(x, value) of the mean curve's minimum within each context after the first (where the gaps are)."""
    points = []
    for c in range(1, contexts):
        part = curve[(curve["x"] > c * per_context) & (curve["x"] <= (c + 1) * per_context)]
        if not part.empty:
            row = part.loc[part["mean"].idxmin()]
            points.append((int(row["x"]), float(row["mean"])))
    return points


def draw_column(axes, aggregate: pd.DataFrame, title: str, groups: list[str], gain_groups: list[str],
                accuracy_metric: str = "task_accuracy", accuracy_layer: int = 1,
                zoom: tuple[float, float] | None = None) -> None:
    """Task-1 accuracy (with dots at each context's minimum) and task-1 loss of the series `groups`, and the gain
    of the last layer of `gain_groups`.
    zoom: (lowest accuracy in %, highest loss) shown, as the paper zooms in on the gaps; deeper drops are cut."""
    per_context, contexts = context_length(aggregate)
    panels = [(accuracy_metric, accuracy_layer, "task-1 accuracy (%)" if accuracy_metric == "task_accuracy"
               else "test accuracy, seen tasks (%)", 100), ("task_loss", 1, "task-1 test loss", 1),
              ("gain", int(aggregate.loc[aggregate["metric"] == "gain", "layer"].max()), "gain", 1)]
    for row, (ax, (metric, layer, ylabel, scale)) in enumerate(zip(axes, panels)):
        shade_contexts(ax, per_context, contexts)
        for group, curve in runs_of(aggregate, metric, layer).items():
            if group not in (gain_groups if metric == "gain" else groups):
                continue
            label, color = method_style(group)
            plot_curve(ax, curve, label, color, scale)
            if metric == "task_accuracy":
                points = context_minima(curve, per_context, contexts)
                ax.scatter([p[0] for p in points], [p[1] * scale for p in points], color=color, s=14, zorder=3,
                           edgecolor="white", linewidth=0.5)
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, per_context * contexts)
        if zoom and row == 0:
            ax.set_ylim(zoom[0], 100.5)
        if zoom and row == 1:
            ax.set_ylim(0, zoom[1])
        if row == 0:
            ax.set_title(title, loc="left", fontsize="medium")
    axes[-1].set_xlabel("training iterations")
    axes[0].legend(fontsize="small", framealpha=0.85, ncol=2)


def _hashable(settings: dict) -> dict:
    """Settings whose values are lists or dicts (angles, init) as canonical JSON text, so they compare as sets."""
    return {key: canonical_json(value) if isinstance(value, (dict, list)) else value
            for key, value in settings.items()}


def column_figure(aggregates: dict[str, pd.DataFrame], title: str, columns: dict[str, tuple[str, tuple]],
                  extra: bool = False) -> Figure:
    """Columns of the paper's Figs. 3-4, one per experiment of `columns` ({experiment: (column title, zoom)}) that
    `aggregates` holds: task-1 accuracy, task-1 loss and gain over iterations, of the paper's methods (gain:
    NGM-SGD's), or with `extra` of NGM-SGD and the runs the paper does not show."""
    shown = [name for name in columns if name in aggregates]
    fig = Figure(figsize=(7 * len(shown), 8))
    axes = fig.subplots(3, len(shown), squeeze=False)
    for column, name in zip(axes.T, shown):
        aggregate = aggregates[name]
        groups, gain_groups = (extra_groups(aggregate),) * 2 if extra else (PAPER_GROUPS, ["ngm_sgd"])
        column_title, zoom = columns[name]
        draw_column(column, aggregate, column_title, groups, gain_groups, zoom=zoom)
    fig.suptitle(title)
    return fig


def column_functions(columns: dict[str, tuple[str, str, tuple[float, float]]], title: str, extra: bool = False):
    """(draw, caption) of Fig. 3 or 4 (or with `extra` its companion): one column per experiment of `columns`
    ({experiment: (column title, description, zoom)}) that the scale ran."""
    def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
        return column_figure(aggregates, title, {name: (column_title, zoom)
                                                 for name, (column_title, _, zoom) in columns.items()}, extra=extra)

    def column_caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
        described = " ".join(description for name, (_, description, _) in columns.items() if name in aggregates)
        return caption(aggregates, scale, f"{described} {EXTRA_RUNS_NOTE if extra else PAPER_RUNS_NOTE}")

    return draw, column_caption


def experiment_notes(name: str, aggregate: pd.DataFrame, protocol: dict) -> tuple[str, bool]:
    """What one joint experiment ran beside the protocol: seeds, iterations, evaluation, changed settings."""
    paper = protocol[name]
    seeds = int(aggregate["seeds"].max())
    per_context, contexts = context_length(aggregate)
    samples = sorted({int(v) for v in aggregate.loc[aggregate["metric"] == "eval_samples", "mean"]})
    notes = [f"{seeds} seeds (paper {paper['seeds']})",
             f"{contexts} contexts of {per_context} iterations (protocol {paper['iterations_per_context']})",
             f"evaluation on {', '.join(map(str, samples))} test samples per task"]
    deviates = seeds < paper["seeds"] or per_context < paper["iterations_per_context"]
    ours = [_hashable(_style.flat_settings(json.loads(text))) for text in aggregate["hparams"].unique()]
    permutations = _style._values(_style._setting_values(ours, "benchmark_args.permutations"))
    if permutations:
        notes.append(f"permutations {PERMUTATION_NOTES.get(permutations, permutations)}")
    theirs = [_hashable(_style.flat_settings({field: run[field] for field in RUN_FIELDS}))
              for run in expand_runs(paper).values()]
    for column in sorted(set().union(*ours)):
        if _style._setting_values(ours, column) - _style._setting_values(theirs, column):
            notes.append(f"{column.split('.', 1)[1]} {_style._values(_style._setting_values(ours, column))} "
                         f"instead of {_style._values(_style._setting_values(theirs, column))}")
            deviates = True
    return f"{name}: " + "; ".join(notes) + ".", deviates


def caption(aggregates: dict[str, pd.DataFrame], scale: str, description: str, column: bool = True) -> str:
    """The caption; `column`: a column of Figs. 3-4 (zoomed in on the gaps, dots at the minima)."""
    protocol = load_protocol(_style.PROTOCOL_PATH)
    lines = [description, "Lines: mean; bands: ± standard deviation across seeds (the paper's figures show the "
             "standard error). Shaded: every other context."
             + (" Zoomed in on the gaps as in the paper: drops below the accuracy axis are cut (Table 2 has their "
                "depth). Dots: each context's minimum of the mean task-1 accuracy (the stability gap)."
                if column else "") + f" Scale: {scale}."]
    any_deviation = False
    for name, aggregate in aggregates.items():
        notes, deviates = experiment_notes(name, aggregate, protocol)
        lines.append(notes)
        any_deviation |= deviates
    lines.append(f"These deviations from the paper's protocol are the {scale} scale's; the paper's finding may "
                 "not appear at this scale." if any_deviation else "The paper's full protocol.")
    return " ".join(lines)


def mean_gain_per_context(aggregate: pd.DataFrame, group: str = "ngm_sgd") -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (over iterations) of the seed-mean gain of the last layer within each context."""
    per_context, contexts = context_length(aggregate)
    curves = runs_of(aggregate, "gain", int(aggregate.loc[aggregate["metric"] == "gain", "layer"].max()))
    if group not in curves:
        return np.array([]), np.array([])
    curve = curves[group]
    parts = [curve[(curve["x"] > c * per_context) & (curve["x"] <= (c + 1) * per_context)]["mean"]
             for c in range(contexts)]
    return np.array([p.mean() for p in parts]), np.array([p.std() for p in parts])
