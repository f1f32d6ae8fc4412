"""Fig. 4, Rotated MNIST column: the stability gap under domain-incremental joint training.

Task-1 (0°) accuracy (dots: each context's minimum), task-1 test loss and the gain over iterations, per method.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from figures import _ngm

EXPERIMENTS = ["ngm_rotated_mnist"]
ZOOM = (60, 1.5)  # lowest task-1 accuracy (%) and highest loss shown, as the paper zooms in on the gaps
TITLE = "Fig. 4 (Rotated MNIST): stability gaps under domain-incremental joint training"


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    return _ngm.column_figure(aggregates[EXPERIMENTS[0]], TITLE, "Rotated MNIST (0°, 80°, 160°)", zoom=ZOOM)


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    return _ngm.caption(aggregates, scale, "Accuracy and cross-entropy on task 1's test data (unrotated MNIST) "
                        "after every iteration of joint training on Rotated MNIST (contexts adding 80° and 160° "
                        "rotations), and the neurons' gain (output layer; equal in every layer).")
