"""The stability-gap paper's baselines by its names: `sgd` (plain SGD) and `msgd` (SGD with momentum 0.9).

Both are torch.optim.SGD over the trainable parameters (in the joint protocol's network the biases are frozen,
as in the reference). `sgd` steps exactly as `bp` does; it exists so that the paper's tables read with the
paper's names.
"""
import torch

from plasticity.methods import Learner, register


def _trainable(model):
    return [param for param in model.parameters() if param.requires_grad]


@register("sgd")
def build(model, seeds, lr: float, momentum: float = 0.0) -> Learner:
    """SGD on the trainable parameters (the stability-gap paper's baseline name)."""
    return Learner(torch.optim.SGD(_trainable(model), lr=lr, momentum=momentum))


@register("msgd")
def build_momentum(model, seeds, lr: float, momentum: float = 0.9) -> Learner:
    """SGD with momentum 0.9 on the trainable parameters (MSGD)."""
    return Learner(torch.optim.SGD(_trainable(model), lr=lr, momentum=momentum))
