"""Helpers every figure module shares: run settings, curve selection, the mean ± sem line, and the caption.

Figures select runs by their settings (learning rate, width, ...) parsed from the `hparams` JSON, not by run id,
because a scale may override a grid (the smoke scale runs widths 8 and 16) and the ids change with it.
"""
from __future__ import annotations

import json
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from plasticity.config import RUN_FIELDS, expand_runs, load_protocol

PROTOCOL_PATH = Path(__file__).resolve().parents[1] / "config" / "experiments.yaml"
STAT_COLUMNS = ("mean", "sem", "n", "n_diverged", "seeds", "std")
METHOD_LABELS = {"bp": "BP", "adam": "Adam", "l2": "L2", "shrink_perturb": "Shrink & Perturb", "cbp": "CBP",
                 "linear": "linear", "head_reset": "head resetting", "retrained": "retrained network"}
METHOD_COLORS = dict(zip(METHOD_LABELS, sns.color_palette("colorblind", len(METHOD_LABELS))))
# Colours for runs no figure knows (a user's own method): none of them is a known method's colour.
FALLBACK_PALETTE = list(dict.fromkeys(sns.color_palette("tab20") + sns.color_palette("Dark2")
                                      + sns.color_palette("Set1")))
BASELINE_STYLE = {"color": "0.35", "linestyle": "--"}
PERCENT = 100  # online_accuracy is stored as a fraction in [0, 1]; the papers plot it in percent


def flat_settings(settings: dict) -> dict:
    """{"model": {"width": 100}, ...} -> {"model.width": 100, ...}: one column per setting."""
    return {f"{field}.{key}": value for field, values in settings.items() for key, value in values.items()}


def with_settings(aggregate: pd.DataFrame) -> pd.DataFrame:
    """The aggregate with one column per run setting and `group`, the run-group name that starts the run id."""
    settings = pd.DataFrame([{"hparams": text, **flat_settings(json.loads(text))}
                             for text in aggregate["hparams"].unique()])
    out = aggregate.merge(settings, on="hparams", how="left")
    out["group"] = out["run"].str.split("-").str[0]
    return out


def select(frame: pd.DataFrame, conditions: dict) -> pd.DataFrame:
    """Rows where every column in `conditions` equals its value (column names may hold dots, so not .query)."""
    keep = pd.Series(True, index=frame.index)
    for column, value in conditions.items():
        keep &= frame[column] == value
    return frame[keep]


def hidden_layer_mean(frame: pd.DataFrame) -> pd.DataFrame:
    """Average a per-layer metric over the hidden layers (layer >= 1) at each point of each run.

    The band becomes the mean of the layers' standard errors: the aggregate holds no per-seed values, and the
    standard deviation of an average is at most the average of the standard deviations, so the band is
    conservative (never narrower than the true one).
    """
    hidden = frame[frame["layer"] >= 1]
    keys = [column for column in frame.columns if column not in STAT_COLUMNS + ("layer",)]
    return (hidden.groupby(keys, dropna=False, sort=True)
            .agg(mean=("mean", "mean"), sem=("sem", "mean")).reset_index())


def task_number(frame: pd.DataFrame) -> pd.Series:
    """Examples seen / examples per task: the papers' x axis for permuted MNIST."""
    return frame["x"] / frame["benchmark_args.examples_per_task"]


def plot_mean_sem(ax: Axes, curve: pd.DataFrame, label: str, x: pd.Series | None = None, scale: float = 1.0,
                  **style) -> None:
    """One run: the mean as a line and mean ± standard error as a shaded band (no band where sem is NaN)."""
    x = curve["x"] if x is None else x
    order = x.argsort()
    x, mean, sem = x.iloc[order], curve["mean"].iloc[order] * scale, curve["sem"].iloc[order] * scale
    (line,) = ax.plot(x, mean, label=label, linewidth=1.4, **style)
    ax.fill_between(x, mean - sem, mean + sem, color=line.get_color(), alpha=0.25, linewidth=0)


def plot_runs(ax: Axes, frame: pd.DataFrame, by: str, label: Callable[[object], str],
              x: Callable[[pd.DataFrame], pd.Series] | None = None, scale: float = 1.0) -> None:
    """One mean ± sem line per value of the setting `by` (a sweep); an empty selection says so on the axis."""
    if frame.empty:
        ax.text(0.5, 0.5, "not run at this scale", transform=ax.transAxes, ha="center", va="center", color="0.4")
        return
    values = sorted(frame[by].unique())
    for value, color in zip(values, sns.color_palette("rocket", len(values))):
        curve = frame[frame[by] == value]
        plot_mean_sem(ax, curve, label(value), x=None if x is None else x(curve), scale=scale, color=color)


def fallback_color(name: str, used) -> tuple[float, float, float]:
    """The colour of a run the figures do not know: a colour of FALLBACK_PALETTE that is none of `used` (the
    known runs' colours), picked by a stable hash of `name`, so a name has the same colour in every figure."""
    taken = [to_rgb(color) for color in used]
    free = [color for color in FALLBACK_PALETTE
            if all(max(abs(a - b) for a, b in zip(color, other)) > 0.05 for other in taken)]
    return free[zlib.crc32(name.encode()) % len(free)]


def method_series(frame: pd.DataFrame, known=METHOD_LABELS) -> pd.DataFrame:
    """The frame with `series`: the run group for the `known` methods (one run each in the methods'
    experiments), the run id for any other run (a user's own method, each of its grid's runs a line)."""
    out = frame.copy()
    out["series"] = out["group"].where(out["group"].isin(list(known)), out["run"])
    return out


def method_label(series: str) -> str:
    return METHOD_LABELS.get(series, series)


def method_color(series: str):
    return METHOD_COLORS[series] if series in METHOD_COLORS else fallback_color(series, METHOD_COLORS.values())


def plot_methods(ax: Axes, frame: pd.DataFrame, label: Callable[[str], str] = method_label,
                 x: Callable[[pd.DataFrame], pd.Series] | None = None, scale: float = 1.0) -> None:
    """One mean ± sem line per method series (`method_series`): the known methods in their order and colours,
    then every other run, labelled by its run id in a colour of its own."""
    frame = method_series(frame)
    known = list(METHOD_LABELS)
    for series in sorted(frame["series"].unique(), key=lambda s: (known.index(s) if s in known else len(known), s)):
        curve = frame[frame["series"] == series]
        plot_mean_sem(ax, curve, label(series), x=None if x is None else x(curve), scale=scale,
                      color=method_color(series))


def label_axes(ax: Axes, title: str, xlabel: str, ylabel: str, legend: bool = True) -> None:
    ax.set_title(title, loc="left", fontsize="medium")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if xlabel == "examples":
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", framealpha=0.85)


def _values(values) -> str:
    return ", ".join(format(v, ",") if isinstance(v, int) else str(v) for v in sorted(set(values), key=str))


def _setting_values(runs: list[dict], column: str) -> set:
    return {run[column] for run in runs if column in run}


def _experiment_notes(name: str, aggregate: pd.DataFrame, paper: dict) -> tuple[str, bool]:
    """What one experiment ran beside the paper's protocol (seeds, length, settings, divergence); and whether
    any of it deviates from the protocol."""
    runs = with_settings(aggregate)
    ours = [flat_settings(json.loads(text)) for text in aggregate["hparams"].unique()]
    theirs = [flat_settings({field: run[field] for field in RUN_FIELDS}) for run in expand_runs(paper).values()]
    seeds = int(runs["seeds"].max())
    length, shorter = _tasks_length(runs, paper) if paper.get("protocol") == "tasks" else _length(runs, paper, ours,
                                                                                                   theirs)
    notes = [f"{seeds} seeds (paper {paper['seeds']})", length]
    deviates = seeds < paper["seeds"] or shorter
    for column in sorted(set().union(*ours)):
        if _setting_values(ours, column) != _setting_values(theirs, column):
            paper_values = _setting_values(theirs, column)
            notes.append(f"{column.split('.', 1)[1]} {_values(_setting_values(ours, column))} instead of "
                         f"{_values(paper_values) if paper_values else 'the default'}")
            deviates = True
    diverged = select(runs, {"metric": "diverged"})
    final = diverged[diverged["x"] == diverged.groupby("run")["x"].transform("max")]
    notes += [f"{round(row['mean'] * row['n'])} of {row['seeds']} seeds of {run} diverged"
              for run, row in final.set_index("run").iterrows() if row["mean"] > 0]
    return f"{name}: " + "; ".join(notes) + ".", deviates


def _length(runs: pd.DataFrame, paper: dict, ours: list[dict], theirs: list[dict]) -> tuple[str, bool]:
    """Examples (and tasks) per run beside the paper's; whether ours are fewer."""
    examples = int(runs["x"].max())
    length = f"{examples:,} examples per run (paper {paper['examples']:,})"
    per_task, paper_per_task = (_setting_values(ours, "benchmark_args.examples_per_task"),
                                _setting_values(theirs, "benchmark_args.examples_per_task"))
    if len(per_task) == 1 and len(paper_per_task) == 1:
        length += f", {examples / min(per_task):g} tasks (paper {paper['examples'] / min(paper_per_task):g})"
    return length, examples < paper["examples"]


def _tasks_length(runs: pd.DataFrame, paper: dict) -> tuple[str, bool]:
    """Tasks and epochs per task (tasks protocol) beside the paper's; whether ours are fewer."""
    ends = runs.loc[runs["metric"] == "task_accuracy", "x"]
    tasks = ends.nunique()
    epochs = int(ends.max()) // max(tasks, 1)
    paper_tasks, paper_epochs = paper["benchmark_args"]["num_tasks"], paper["epochs_per_task"]
    return (f"{tasks:,} tasks of {epochs:,} epochs (paper {paper_tasks:,} of {paper_epochs:,})",
            tasks < paper_tasks or epochs < paper_epochs)


def caption(aggregates: dict[str, pd.DataFrame], scale: str, description: str,
            bands: str = "Lines: mean; bands: ± standard error across seeds.") -> str:
    """The figure's caption: what it shows, the scale, seeds and length actually run vs the paper, deviations."""
    protocol = load_protocol(PROTOCOL_PATH)
    lines, any_deviation = [description, f"{bands} Scale: {scale}."], False
    for name, aggregate in aggregates.items():
        notes, deviates = _experiment_notes(name, aggregate, protocol[name])
        lines.append(notes)
        any_deviation |= deviates
    if any_deviation:
        lines.append(f"These deviations from the paper's protocol are the {scale} scale's; "
                     "the paper's finding may not appear at this scale.")
    return " ".join(lines)


def add_caption(fig: Figure, text: str, fontsize: float = 8.0) -> None:
    """Grow the figure downwards and print the wrapped caption there, so PDF and PNG carry it."""
    width, height = fig.get_size_inches()
    wrapped = textwrap.fill(text, width=int(0.98 * width * 72 / (fontsize * 0.55)))  # ~0.55 em per character
    caption_height = (wrapped.count("\n") + 1) * fontsize * 1.3 / 72 + 0.2
    fig.set_size_inches(width, height + caption_height)
    fig.tight_layout(rect=(0, caption_height / (height + caption_height), 1, 1))
    fig.text(0.01, 0.1 / (height + caption_height), wrapped, fontsize=fontsize, va="bottom", ha="left")
