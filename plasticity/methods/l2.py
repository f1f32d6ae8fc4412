"""L2 regularisation: SGD with weight decay (the gradient of (wd/2)·|w|², as the reference's torch SGD does)."""
import torch

from plasticity.methods import Learner, register


@register("l2")
def build(model, seeds, lr: float, weight_decay: float) -> Learner:
    return Learner(torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay))
