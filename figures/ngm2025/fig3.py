"""Fig. 3: the stability gap under class-incremental joint training, one column per benchmark (Split MNIST, and
Split CIFAR-10 and Split mini-ImageNet where the scale runs them).

Task-1 accuracy (dots: each context's minimum) and task-1 test loss of the paper's methods (NGM-SGD, MSGD, Adam,
SGD) and NGM-SGD's gain over iterations; the experiment's other runs are in the companion `fig3_extra`.
"""
from __future__ import annotations

from figures.ngm2025 import _ngm

EXPERIMENTS = ["ngm_split_mnist"]
OPTIONAL_EXPERIMENTS = ["ngm_split_cifar10", "ngm_split_mini_imagenet"]
TITLE = "Fig. 3: stability gaps under class-incremental joint training"
VISION_HEAD = ("(ResNet: gain on the head only; head bias frozen at 0 for every method; NGM-SGD's backbone "
               "steps with momentum 0.9, its head without.)")
# {experiment: (column title, caption text, (lowest task-1 accuracy in %, highest loss) shown: the paper zooms in
# on the gaps)}
COLUMNS = {
    "ngm_split_mnist": ("Split MNIST", "Split MNIST: accuracy and cross-entropy on task 1's test data (digits 0 "
                        "and 1) after every iteration of joint training (5 contexts, each adding two digits), and "
                        "the neurons' gain (output layer; equal in every layer).", (80, 0.6)),
    "ngm_split_cifar10": ("Split CIFAR-10", "Split CIFAR-10: the same for classes 0 and 1 of CIFAR-10 (5 contexts "
                          f"adding two classes each; training images augmented), and the head's gain {VISION_HEAD}",
                          (40, 2.5)),
    "ngm_split_mini_imagenet": ("Split mini-ImageNet", "Split mini-ImageNet: the same for task 1's ten classes "
                                "(5 contexts of ten classes, 84×84, no augmentation), and the head's gain.",
                                (0, 4.0)),
}

draw, caption = _ngm.column_functions(COLUMNS, TITLE)
