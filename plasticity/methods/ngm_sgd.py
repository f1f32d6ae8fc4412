"""NGM-SGD: noradrenergic gain modulation (Rodriguez-Garcia, Ghosh & Ramaswamy 2025), and its G0-SGD ablation.

Every neuron of a gain-modulated network (`plasticity.models.gain_mlp.GainMLP`) has a gain g, W_eff = g ⊙ W. Once per
training iteration, before the forward pass,

    g ← γ·g + (1 − γ)·g₀ + η·H

with H the batch-mean entropy (nats) of the softmax predictions of the previous training iteration (0 before the
first). All neurons get the same H. The raw weights W are stepped by plain SGD on ∇_W (= g·∇_{W_eff}, which
autograd gives because the gain multiplies in the forward pass), so a gain burst after a task switch acts as a
transient learning-rate boost; the gain itself is not trained by gradient. In evaluation mode (`model.eval()`)
the gain is frozen: the update runs only on training-mode forward passes.

`NGMSGD` is a `torch.optim.Optimizer` over W; it drives the gains through a forward pre-hook (the update) and a
forward hook (the entropy of the output) on the model, so any ordinary loop (`model.train(); model(x);
loss.backward(); optimizer.step()`) runs NGM-SGD. The update is computed as g₀ + γ(g − g₀) + ηH, algebraically the
paper's formula, which keeps g exactly at g₀ while H = 0. The gains are buffers of the model (saved with its
state_dict); the previous entropy and the hyperparameters are in the optimizer's state_dict.

On a network whose gain sits on the head only (the slim ResNet-18 of the vision benchmarks) the other parameters
(the backbone: convolutions, BatchNorm) are stepped with momentum `backbone_momentum`, as the authors ran it (their
NGM-SGD: backbone SGD with momentum 0.9, the head's weight momentum-free SGD); the gain-modulated weights never get
momentum. Frozen parameters (the zero head bias, for every method) are in no group.

G0-SGD (the paper's ablation, Fig. 5): the gain held at g₀, no entropy drive. With the paper's g₀ = 1 it is plain
SGD on the same network.
"""
from __future__ import annotations

import torch

from plasticity.config import ConfigError
from plasticity.methods import Learner, register
from plasticity.models.gain_mlp import GainLinear


def prediction_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Batch-mean entropy (nats) of softmax(logits): (S, B, classes) -> (S,)."""
    log_probs = torch.log_softmax(logits.detach().float(), dim=-1)
    return -(log_probs.exp() * log_probs).sum(-1).mean(-1)


class NGMSGD(torch.optim.Optimizer):
    """SGD on the weights of `model` with entropy-driven gains (see the module docstring).

    params: the tensors to step, or parameter groups (`parameter_groups`; a group's `momentum`, default 0, is
    torch.optim.SGD's, without dampening); model: a module with `gains()` returning its gain buffers (S, units)
    and a forward returning logits (S, B, classes). eta = 0 gives G0-SGD.
    """

    def __init__(self, params, model: torch.nn.Module, lr: float, eta: float, gamma: float = 0.9, g0: float = 1.0):
        if not hasattr(model, "gains"):
            raise ConfigError(f"NGM-SGD needs a gain-modulated network (plasticity.models.gain_mlp.GainMLP, the joint "
                              f"protocol's model); got {type(model).__name__}")
        if lr <= 0 or not 0 <= gamma <= 1:
            raise ConfigError(f"NGM-SGD: lr must be > 0 and gamma in [0, 1]; got lr={lr}, gamma={gamma}")
        super().__init__(params, dict(lr=lr, eta=eta, gamma=gamma, g0=g0, momentum=0.0))
        self.model = model
        with torch.no_grad():
            for gain in model.gains():
                gain.fill_(g0)
        self.state["entropy"] = torch.zeros(model.gains()[0].shape[0], device=model.gains()[0].device)
        self._hooks = [model.register_forward_pre_hook(self._before_forward),
                       model.register_forward_hook(self._after_forward)]

    @property
    def dynamics(self) -> dict:
        group = self.param_groups[0]
        return {key: group[key] for key in ("eta", "gamma", "g0")}

    @torch.no_grad()
    def update_gains(self, entropy: torch.Tensor) -> None:
        """g ← γ·g + (1 − γ)·g₀ + η·H for every gain, with H (S,) one entropy per seed."""
        d = self.dynamics
        drive = (d["eta"] * entropy).unsqueeze(1)
        for gain in self.model.gains():
            gain.sub_(d["g0"]).mul_(d["gamma"]).add_(d["g0"]).add_(drive.to(gain.dtype))

    def _before_forward(self, module, args) -> None:
        if module.training:
            self.update_gains(self.state["entropy"])

    def _after_forward(self, module, args, output) -> None:
        if module.training:
            self.state["entropy"] = prediction_entropy(output)

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                step = param.grad
                if group["momentum"]:
                    buffer = self.state[param].get("momentum_buffer")
                    if buffer is None:
                        buffer = self.state[param]["momentum_buffer"] = step.clone()
                    else:
                        buffer.mul_(group["momentum"]).add_(step)
                    step = buffer
                param.add_(step, alpha=-group["lr"])
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.state["entropy"] = self.state["entropy"].to(self.model.gains()[0].device)


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [param for param in model.parameters() if param.requires_grad]


def parameter_groups(model: torch.nn.Module, backbone_momentum: float) -> list[dict]:
    """The gain-modulated layers' weights (no momentum) and, if any, the other trainable parameters (momentum
    `backbone_momentum`)."""
    if not 0 <= backbone_momentum < 1:
        raise ConfigError(f"NGM-SGD: backbone_momentum must be in [0, 1); got {backbone_momentum}")
    modulated = [module.weight for module in model.modules() if isinstance(module, GainLinear)]
    backbone = [param for param in trainable(model) if all(param is not weight for weight in modulated)]
    return [{"params": modulated, "momentum": 0.0}] + (
        [{"params": backbone, "momentum": backbone_momentum}] if backbone else [])


@register("ngm_sgd")
def build(model, seeds, lr: float, eta: float, gamma: float = 0.9, g0: float = 1.0,
          backbone_momentum: float = 0.0) -> Learner:
    """NGM-SGD: SGD with entropy-driven neuronal gains (needs a gain-modulated network)."""
    return Learner(NGMSGD(parameter_groups(model, backbone_momentum), model, lr=lr, eta=eta, gamma=gamma, g0=g0))


@register("g0_sgd")
def build_g0(model, seeds, lr: float, g0: float = 1.0) -> Learner:
    """G0-SGD, NGM-SGD's ablation: the gains held at g0."""
    return Learner(NGMSGD(trainable(model), model, lr=lr, eta=0.0, g0=g0))
