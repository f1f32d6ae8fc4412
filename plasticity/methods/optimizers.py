"""The optimizer a method steps with, chosen by its `optimizer` hyperparameter ("sgd" or "adam").

A module of its own rather than a helper in `plasticity/methods/__init__.py`: the workflow reruns every training
job when that file changes (it is an engine source), but only the jobs of the methods that import this one when
it changes.
"""
import torch

from plasticity.config import ConfigError

OPTIMIZERS = ("sgd", "adam")


def make_optimizer(params, name: str, lr: float, weight_decay: float = 0.0,
                   decoupled: bool = False, momentum: float = 0.0) -> torch.optim.Optimizer:
    """torch.optim.SGD or Adam over `params`. weight_decay is torch's: wd·θ, the gradient of (wd/2)·‖θ‖², added
    to the gradient (coupled: with Adam it is rescaled like the loss's gradient). decoupled: Adam becomes AdamW,
    which shrinks θ by the factor 1 − lr·wd outside the adaptive step; for SGD the two are one update. momentum:
    SGD's (the loss-of-plasticity vision experiments use 0.9); Adam has its own moments instead."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum)
    if momentum:
        raise ConfigError(f"momentum {momentum} is SGD's; optimizer {name!r} takes none")
    if name == "adam":
        adam = torch.optim.AdamW if decoupled else torch.optim.Adam
        # fused: torch's one-pass kernel, the same update about 10x faster on a CPU (see methods/adam.py)
        return adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    raise ConfigError(f"unknown optimizer {name!r}; valid: {list(OPTIMIZERS)}")
