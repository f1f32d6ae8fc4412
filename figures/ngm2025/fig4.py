"""Fig. 4, Rotated MNIST column: the stability gap under domain-incremental joint training.

Task-1 (0°) accuracy (dots: each context's minimum) and task-1 test loss of the paper's methods (NGM-SGD, MSGD,
Adam, SGD) and NGM-SGD's gain over iterations; the experiment's other runs are in the companion `fig4_extra`.
"""
from __future__ import annotations

from figures.ngm2025 import _ngm

EXPERIMENTS = ["ngm_rotated_mnist"]
ZOOM = (60, 1.5)  # lowest task-1 accuracy (%) and highest loss shown, as the paper zooms in on the gaps
TITLE = "Fig. 4 (Rotated MNIST): stability gaps under domain-incremental joint training"
COLUMN = "Rotated MNIST (0°, 80°, 160°)"
DESCRIPTION = ("Accuracy and cross-entropy on task 1's test data (unrotated MNIST) after every iteration of joint "
               "training on Rotated MNIST (contexts adding 80° and 160° rotations), and the neurons' gain (output "
               "layer; equal in every layer).")

draw, caption = _ngm.column_functions(EXPERIMENTS[0], TITLE, COLUMN, DESCRIPTION, ZOOM)
