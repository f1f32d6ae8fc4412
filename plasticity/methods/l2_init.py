"""L2 Init (Kumar et al. 2023, "Maintaining plasticity in continual learning via regenerative regularization"):
L2 regularisation toward the initial parameters θ₀ instead of toward zero,

    loss + (weight_decay/2)·‖θ − θ₀‖²,

so weight_decay·(θ − θ₀) is added to every gradient before the base optimizer steps: Adam by default, as Kumar et
al. use, or SGD (`optimizer: sgd`). weight_decay follows `l2`'s (torch's) convention; Kumar et al. write the
penalty λ‖θ − θ₀‖², i.e. λ = weight_decay/2. The penalty's gradient goes through Adam like the loss's (coupled),
as adding the penalty to the loss does.
"""
import torch

from plasticity.methods import Learner, register
from plasticity.methods.optimizers import make_optimizer


class L2Init(torch.optim.Optimizer):
    """Adds weight_decay·(θ − θ₀) to each parameter's `.grad` (in place, where `base` reads it), then steps `base`.

    θ₀ is each parameter's value when L2Init is built, kept as this optimizer's state ("initial"), so that
    state_dict() carries it, together with the base optimizer's own state. With weight_decay 0 it is `base`."""

    def __init__(self, base: torch.optim.Optimizer, weight_decay: float):
        self.base = base
        params = [param for group in base.param_groups for param in group["params"]]
        super().__init__(params, dict(weight_decay=weight_decay))
        for param in params:
            self.state[param]["initial"] = param.detach().clone()

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if not group["weight_decay"]:
                continue
            for param in group["params"]:
                if param.grad is not None:
                    param.grad.add_(param - self.state[param]["initial"], alpha=group["weight_decay"])
        self.base.step()
        return loss

    def state_dict(self) -> dict:
        return {"l2_init": super().state_dict(), "base": self.base.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Also a state saved on another device: torch moves θ₀ to each parameter's device and dtype."""
        super().load_state_dict(state_dict["l2_init"])
        self.base.load_state_dict(state_dict["base"])


@register("l2_init")
def build(model, seeds, lr: float, weight_decay: float, optimizer: str = "adam") -> Learner:
    """L2 Init (Kumar et al.): L2 regularisation toward the initial parameters."""
    params = list(model.parameters())
    return Learner(L2Init(make_optimizer(params, optimizer, lr), weight_decay))
