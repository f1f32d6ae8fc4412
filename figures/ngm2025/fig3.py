"""Fig. 3, Split MNIST column: the stability gap under class-incremental joint training.

Task-1 accuracy (dots: each context's minimum) and task-1 test loss of the paper's methods (NGM-SGD, MSGD, Adam,
SGD) and NGM-SGD's gain over iterations; the experiment's other runs are in the companion `fig3_extra`.
"""
from __future__ import annotations

from figures.ngm2025 import _ngm

EXPERIMENTS = ["ngm_split_mnist"]
ZOOM = (80, 0.6)  # lowest task-1 accuracy (%) and highest loss shown, as the paper zooms in on the gaps
TITLE = "Fig. 3 (Split MNIST): stability gaps under class-incremental joint training"
COLUMN = "Split MNIST"
DESCRIPTION = ("Accuracy and cross-entropy on task 1's test data (digits 0 and 1) after every iteration of joint "
               "training on Split MNIST (5 contexts, each adding two digits), and the neurons' gain (output layer; "
               "equal in every layer).")

draw, caption = _ngm.column_functions(EXPERIMENTS[0], TITLE, COLUMN, DESCRIPTION, ZOOM)
