"""The papers' figures, one subpackage per paper and one module per figure, and `draw_figure`, the back end of
`plasticity figure`.

figures/<paper>/<name>.py is figure "<paper>/<name>", written to results/figures/<paper>/<name>.{pdf,png}: the
paper ids are those of config/experiments.yaml (dohare2024, ngm2025, adalin2025) and the names the paper's own
numbering where it has one (dohare2024/ext_data_fig2, ngm2025/fig3). Modules are registered by scanning the
package: adding a figure is adding a file. Files starting with `_` are a paper's shared helpers (_style.py, here,
is every paper's).

Each figure module defines EXPERIMENTS (the aggregates it needs; none for a simulation, which then names the
experiments of its paper it is shown with in PAPER_EXPERIMENTS; OPTIONAL_EXPERIMENTS: further ones it draws where
the scale selects them, e.g. the vision columns of the stability-gap paper's Figs. 3-4), TITLE, draw(aggregates, scale) -> Figure and
caption(aggregates, scale) -> str. The caption is printed under the panels, so the PDF and PNG say what is drawn,
at which scale and seeds, and how that differs from the paper; the claims' verdicts are in the reproduction table.
A figure that compares the runs of its experiments sets EVERY_RUN = True: it draws every run, also one it has no
label or colour for (a user's own method: labelled by its run id, in a colour of its own, `_style.fallback_color`).
The others show what the paper shows: one quantity of the paper's own methods (AdaLin's α, NGM-SGD's gain), or the
paper's runs exactly (NGM Figs. 3-5; the other runs of Figs. 3-4 are in their companions ngm2025/fig3_extra and
ngm2025/fig4_extra).
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pandas as pd
import seaborn as sns

from figures._style import add_caption
from plasticity.config import unknown_figure_message
from plasticity.analysis.aggregate import read_parquets, synthetic_experiments
from plasticity.io import write_atomically


def synthetic_note(aggregates: dict[str, pd.DataFrame]) -> str:
    """The caption's first words when an experiment drawn trained on synthetic data: it is no result."""
    synthetic = synthetic_experiments(pd.concat(aggregates.values())) if aggregates else []
    if not synthetic:
        return ""
    return (f"SYNTHETIC DATA: {', '.join(synthetic)} trained on random stand-in images (a code-path check, not a "
            "result). ")


def _scan() -> dict[str, ModuleType]:
    found = {}
    for paper in pkgutil.iter_modules(__path__):
        if not paper.ispkg:
            continue
        package = importlib.import_module(f"{__name__}.{paper.name}")
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                found[f"{paper.name}/{module.name}"] = importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(found.items()))


FIGURES: dict[str, ModuleType] = _scan()


def figure_module(name: str) -> ModuleType:
    if name not in FIGURES:
        raise ValueError(unknown_figure_message(name, list(FIGURES)))
    return FIGURES[name]


def load_aggregates(inputs: list[str]) -> dict[str, pd.DataFrame]:
    """Aggregate parquets keyed by the experiment named in their data (file names are not trusted)."""
    frames = read_parquets(inputs)
    return {str(name): frame.reset_index(drop=True) for name, frame in frames.groupby("experiment")}


def draw_figure(name: str, inputs: list[str], out_pdf: str, out_png: str, scale: str) -> None:
    """Draw figure `name` from aggregate parquets and write PDF and PNG, each atomically."""
    module = figure_module(name)
    aggregates = load_aggregates([path for path in inputs if path]) if module.EXPERIMENTS else {}
    missing = sorted(set(module.EXPERIMENTS) - set(aggregates))
    if missing:
        raise ValueError(f"figure {name!r} needs experiment(s) {missing}; the inputs hold {sorted(aggregates)}")
    needed = {experiment: aggregates[experiment] for experiment in module.EXPERIMENTS + [
        name for name in getattr(module, "OPTIONAL_EXPERIMENTS", []) if name in aggregates]}
    with sns.axes_style("whitegrid"), sns.plotting_context("paper"):
        fig = module.draw(needed, scale)
        add_caption(fig, synthetic_note(needed) + module.caption(needed, scale))
        write_atomically(out_pdf, fig.savefig)
        write_atomically(out_png, lambda path: fig.savefig(path, dpi=150))
