"""Backpropagation with plain SGD: the baseline that loses plasticity."""
import torch

from plasticity.methods import Learner, register


@register("bp")
def build(model, seeds, lr: float) -> Learner:
    """Backpropagation: plain SGD on every parameter."""
    return Learner(torch.optim.SGD(model.parameters(), lr=lr))
