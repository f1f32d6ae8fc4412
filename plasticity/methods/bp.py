"""Backpropagation with plain SGD: the baseline that loses plasticity (with momentum, as the loss-of-plasticity
vision experiments run it, when `momentum` is given)."""
import torch

from plasticity.methods import Learner, register


@register("bp")
def build(model, seeds, lr: float, momentum: float = 0.0) -> Learner:
    """Backpropagation: SGD (plain, or with momentum) on every parameter."""
    return Learner(torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum))
