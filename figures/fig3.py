"""Fig. 3, Split MNIST column: the stability gap under class-incremental joint training.

Task-1 accuracy (dots: each context's minimum), task-1 test loss and the gain over iterations, per method.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _ngm

EXPERIMENTS = ["ngm_split_mnist"]
ZOOM = (80, 0.6)  # lowest task-1 accuracy (%) and highest loss shown, as the paper zooms in on the gaps
TITLE = "Fig. 3 (Split MNIST): stability gaps under class-incremental joint training"


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    return _ngm.column_figure(aggregates[EXPERIMENTS[0]], TITLE, "Split MNIST", zoom=ZOOM)


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _ngm.caption(aggregates, scale, "Accuracy and cross-entropy on task 1's test data (digits 0 and 1) "
                        "after every iteration of joint training on Split MNIST (5 contexts, each adding two "
                        "digits), and the neurons' gain (output layer; equal in every layer).")
