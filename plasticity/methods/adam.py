"""Adam. The `adam` method is torch.optim.Adam; `ResettableAdam` is the same update with a per-element step
count, for continual backprop, which restarts the moments of the units it reinitialises.

`ResettableAdam` keeps the step count as a tensor like the parameter, as the loss-of-plasticity reference's AdamGnT
does, so that `reset(param, index)` gives the new weights a fresh bias correction; its update is
torch.optim.Adam's (bias-corrected moments, eps added to the corrected root). In tensor operations it costs several
passes over the parameters per step (and a pow per element for the corrections), so plain Adam runs torch's own;
on the CPU it is one pass of a numba kernel (`_one_pass_step`), its bias corrections looked up by step count in
tables of 1 - beta^k (computed as the tensor code computes them). (AdamGnT's own update drops a `sqrt` and the first-moment correction —
it discards the result of `bias_correction.sqrt().div_(...)`; we follow the paper's intent: standard Adam.)
"""
import numpy as np
import torch
from numba import njit

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

    def _corrections(self, beta1: float, beta2: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Tables of 1 - beta1^k and sqrt(1 - beta2^k) for k = 0..at least `steps`, in float32 as the tensor
        update computes them (grown by doubling)."""
        tables = getattr(self, "_tables", None)
        if tables is None or tables[0] != (beta1, beta2) or len(tables[1]) <= steps:
            count = torch.arange(max(2 * steps, 1024), dtype=torch.float32)
            tables = ((beta1, beta2), (1 - beta1 ** count).numpy(), (1 - beta2 ** count).sqrt_().numpy())
            self._tables = tables
        return tables[1], tables[2]

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self._state(param)
                flat = _flat_views(param, param.grad, state["step"], state["exp_avg"], state["exp_avg_sq"])
                if flat is not None:
                    first, second_root = self._corrections(beta1, beta2, int(state["step"].max()) + 1)
                    _one_pass_step(*flat, *np.array([group["lr"], beta1, 1 - beta1, beta2, 1 - beta2, group["eps"],
                                                     group["weight_decay"]], dtype=np.float32), first, second_root)
                    continue
                grad = param.grad
                if group["weight_decay"]:
                    grad = grad.add(param, alpha=group["weight_decay"])
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


def _flat_views(*tensors: torch.Tensor) -> list[np.ndarray] | None:
    """1-D numpy views of CPU float32 tensors that lie the same way in memory, densely (an input-major weight and its
    gradient and moments), so that one flat loop pairs their elements; None otherwise."""
    first = tensors[0]
    if first.device.type != "cpu" or first.dtype != torch.float32:
        return None
    if any(t.device != first.device or t.dtype != first.dtype or t.shape != first.shape or t.stride() != first.stride()
           for t in tensors):
        return None
    order = sorted(range(first.dim()), key=lambda dim: -first.stride(dim))
    if not first.permute(order).is_contiguous():
        return None
    return [t.detach().permute(order).reshape(-1).numpy() for t in tensors]


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp", "nsz"}, error_model="numpy")
def _one_pass_step(param, grad, step, exp_avg, exp_avg_sq, lr, beta1, rest1, beta2, rest2, eps, weight_decay,
                   first_correction, second_correction_root):
    """ResettableAdam.step's tensor update for one parameter, element by element in one pass (the same formulas:
    lerp for the first moment, the corrections of each element's own step count); rest1, rest2 = 1 - beta1,
    1 - beta2."""
    for k in range(param.shape[0]):
        g = grad[k] + weight_decay * param[k] if weight_decay else grad[k]
        step[k] += 1
        count = int(step[k])
        exp_avg[k] += rest1 * (g - exp_avg[k])
        exp_avg_sq[k] = exp_avg_sq[k] * beta2 + rest2 * g * g
        denom = np.sqrt(exp_avg_sq[k]) / second_correction_root[count] + eps
        param[k] += -lr * (exp_avg[k] / first_correction[count]) / denom


@register("adam")
def build(model, seeds, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> Learner:
    """Adam (torch.optim.Adam, fused) on every parameter."""
    # torch's fused kernel: the same update in one pass (about 10x faster than the default loop on a CPU for the
    # small nets here, where the optimizer step would otherwise cost more than the forward and backward passes).
    return Learner(torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, beta2), eps=eps, fused=True))
