"""Companion of Fig. 4 (Rotated MNIST): the experiment's runs that the paper's figure does not show, beside NGM-SGD
for reference, with each one's gain."""
from __future__ import annotations

from figures.ngm2025 import _ngm, fig4

EXPERIMENTS = fig4.EXPERIMENTS
TITLE = "Fig. 4 companion (Rotated MNIST): the runs the paper's figure does not show"
EVERY_RUN = True   # draws every run of its experiments, a user's own method too (by its run id)

draw, caption = _ngm.column_functions({name: fig4.COLUMNS[name] for name in EXPERIMENTS}, TITLE, extra=True)
