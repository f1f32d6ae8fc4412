"""Companion of Fig. 3 (Split MNIST): the experiment's runs that the paper's figure does not show (G0-SGD, CBP, a
user's own method, ...), beside NGM-SGD for reference, with each one's gain."""
from __future__ import annotations

from figures.ngm2025 import _ngm, fig3

EXPERIMENTS = fig3.EXPERIMENTS
TITLE = "Fig. 3 companion (Split MNIST): the runs the paper's figure does not show"
EVERY_RUN = True   # draws every run of its experiments, a user's own method too (by its run id)

draw, caption = _ngm.column_functions({name: fig3.COLUMNS[name] for name in EXPERIMENTS}, TITLE, extra=True)
