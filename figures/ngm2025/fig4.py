"""Fig. 4: the stability gap under domain-incremental joint training, one column per benchmark (Rotated MNIST, and
Domain CIFAR-100 where the scale runs it).

Task-1 accuracy (dots: each context's minimum) and task-1 test loss of the paper's methods (NGM-SGD, MSGD, Adam,
SGD) and NGM-SGD's gain over iterations; the experiment's other runs are in the companion `fig4_extra`.
"""
from __future__ import annotations

from figures.ngm2025 import _ngm
from figures.ngm2025.fig3 import VISION_HEAD

EXPERIMENTS = ["ngm_rotated_mnist"]
OPTIONAL_EXPERIMENTS = ["ngm_domain_cifar100"]
TITLE = "Fig. 4: stability gaps under domain-incremental joint training"
COLUMNS = {
    "ngm_rotated_mnist": ("Rotated MNIST (0°, 80°, 160°)", "Rotated MNIST: accuracy and cross-entropy on task 1's "
                          "test data (unrotated MNIST) after every iteration of joint training (contexts adding 80° "
                          "and 160° rotations), and the neurons' gain (output layer; equal in every layer).",
                          (60, 1.5)),
    "ngm_domain_cifar100": ("Domain CIFAR-100", "Domain CIFAR-100 (Hess et al.'s: 20 superclass labels, domain t "
                            "the t-th fine class of every superclass): the same on domain 1's test data (5 "
                            f"domains), and the head's gain {VISION_HEAD}", (0, 4.0)),
}

draw, caption = _ngm.column_functions(COLUMNS, TITLE)
