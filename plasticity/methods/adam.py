"""Adam. The `adam` method is torch.optim.Adam; `ResettableAdam` is the same update with a per-element step
count, for continual backprop, which restarts the moments of the units it reinitialises.

`ResettableAdam` keeps the step count as a tensor like the parameter, as the loss-of-plasticity reference's AdamGnT
does, so that `reset(param, index)` gives the new weights a fresh bias correction; its update is
torch.optim.Adam's (bias-corrected moments, eps added to the corrected root). It costs several extra passes over
the parameters per step, so plain Adam runs torch's own. (AdamGnT's own update drops a `sqrt` and the first-moment correction —
it discards the result of `bias_correction.sqrt().div_(...)`; we follow the paper's intent: standard Adam.)
"""
import torch

from plasticity.methods import Learner, register


class ResettableAdam(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _state(self, param):
        state = self.state[param]
        if not state:
            state["step"] = torch.zeros_like(param)
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
        return state

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if group["weight_decay"]:
                    grad = grad.add(param, alpha=group["weight_decay"])
                state = self._state(param)
                state["step"].add_(1)
                state["exp_avg"].lerp_(grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                first_correction = 1 - beta1 ** state["step"]
                second_correction_root = (1 - beta2 ** state["step"]).sqrt_()
                denom = (state["exp_avg_sq"].sqrt() / second_correction_root).add_(group["eps"])
                param.addcdiv_(state["exp_avg"] / first_correction, denom, value=-group["lr"])
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        """torch leaves a loaded "step" where it was saved (it is a scalar on the CPU in torch's Adam); ours is a
        tensor like the parameter, so it follows the parameter's device, as the moments do."""
        super().load_state_dict(state_dict)
        for param, state in self.state.items():
            if "step" in state:
                state["step"] = state["step"].to(param.device)

    @torch.no_grad()
    def reset(self, param: torch.Tensor, index) -> None:
        """Forget the moments and step count of `param[index]` (a reinitialised unit's weights)."""
        state = self.state.get(param)
        if state:
            for key in ("step", "exp_avg", "exp_avg_sq"):
                state[key][index] = 0


@register("adam")
def build(model, seeds, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> Learner:
    """Adam (torch.optim.Adam, fused) on every parameter."""
    # torch's fused kernel: the same update in one pass (about 10x faster than the default loop on a CPU for the
    # small nets here, where the optimizer step would otherwise cost more than the forward and backward passes).
    return Learner(torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, beta2), eps=eps, fused=True))
