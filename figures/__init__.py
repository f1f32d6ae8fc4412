"""One module per paper figure, and `draw_figure`, the back end of `plasticity figure`.

Each module defines EXPERIMENTS (the aggregates it needs; none for a simulation, which then names the experiments
of its paper it is shown with in PAPER_EXPERIMENTS), TITLE, draw(aggregates, scale) -> Figure and
caption(aggregates, scale) -> str. The caption is printed under the panels, so the PDF and PNG say at which
scale they were made and how that differs from the paper.
"""
from __future__ import annotations

from types import ModuleType

import pandas as pd
import seaborn as sns

from figures import (adalin_ablation, adalin_alpha, adalin_correlates, adalin_online_accuracy, ext_data_fig2,
                     ext_data_fig3, ext_data_fig4, fig2, fig3, fig4, fig5, fig_gain_tasks)
from figures._style import add_caption
from plasticity.analysis.aggregate import read_parquets
from plasticity.io import write_atomically
from plasticity.analysis.reproduction import verdict_sentences

FIGURES: dict[str, ModuleType] = {
    "ext_data_fig2": ext_data_fig2,
    "ext_data_fig3": ext_data_fig3,
    "ext_data_fig4": ext_data_fig4,
    "fig2": fig2,
    "fig3": fig3,
    "fig4": fig4,
    "fig5": fig5,
    "fig_gain_tasks": fig_gain_tasks,
    "adalin_online_accuracy": adalin_online_accuracy,
    "adalin_ablation": adalin_ablation,
    "adalin_alpha": adalin_alpha,
    "adalin_correlates": adalin_correlates,
}


def figure_module(name: str) -> ModuleType:
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; valid: {sorted(FIGURES)}")
    return FIGURES[name]


def load_aggregates(inputs: list[str]) -> dict[str, pd.DataFrame]:
    """Aggregate parquets keyed by the experiment named in their data (file names are not trusted)."""
    frames = read_parquets(inputs)
    return {str(name): frame.reset_index(drop=True) for name, frame in frames.groupby("experiment")}


def draw_figure(name: str, inputs: list[str], out_pdf: str, out_png: str, scale: str,
                runs: list[str] | None = None, claims: str | None = None) -> None:
    """Draw figure `name` from aggregate parquets and write PDF and PNG, each atomically. Given the per-job
    `runs` and the `claims` file, the caption also says which of the paper's claims hold at this scale."""
    module = figure_module(name)
    aggregates = load_aggregates([path for path in inputs if path]) if module.EXPERIMENTS else {}
    missing = sorted(set(module.EXPERIMENTS) - set(aggregates))
    if missing:
        raise ValueError(f"figure {name!r} needs experiment(s) {missing}; the inputs hold {sorted(aggregates)}")
    needed = {experiment: aggregates[experiment] for experiment in module.EXPERIMENTS}
    with sns.axes_style("whitegrid"), sns.plotting_context("paper"):
        fig = module.draw(needed, scale)
        text = module.caption(needed, scale)
        if runs and claims and module.EXPERIMENTS:
            text += " At this scale: " + verdict_sentences(runs, claims, module.EXPERIMENTS, scale)
        add_caption(fig, text)
        write_atomically(out_pdf, fig.savefig)
        write_atomically(out_png, lambda path: fig.savefig(path, dpi=150))

