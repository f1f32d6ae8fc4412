"""L2 regularisation: loss + (wd/2)·‖θ‖², i.e. wd·θ added to the gradient (torch's weight_decay), with SGD (the
default, as the loss-of-plasticity reference runs it) or Adam (`optimizer: adam`: torch.optim.Adam, whose
weight_decay is this coupled penalty gradient; the decoupled shrink of AdamW is Shrink & Perturb's)."""
from plasticity.methods import Learner, register
from plasticity.methods.optimizers import make_optimizer


@register("l2")
def build(model, seeds, lr: float, weight_decay: float, optimizer: str = "sgd",
          momentum: float = 0.0) -> Learner:
    """L2 regularisation toward zero (SGD or Adam with weight decay)."""
    return Learner(make_optimizer(model.parameters(), optimizer, lr, weight_decay, momentum=momentum))
