"""Adaptive linearity injection, AdaLin (Razavi Rohani et al., CoLLAs 2025, arXiv 2505.09486).

For unit i with pre-activation x and base activation φ (ReLU, Tanh or GELU):

    f_i(x) = φ(x) + α_i · x · sg[g(x)],   g(x) = cos((π/2) · |φ'(x)| / L),

with α_i learnable (one per unit, or per channel of a feature map; initialised U[0, 1)), L the Lipschitz constant
of φ (max |φ'|) and sg a stop-gradient: ∂f/∂x = φ'(x) + α_i·g(x) and ∂f/∂α_i = x·g(x). The gate opens (g → 1)
where φ passes no gradient (the dead side of ReLU, saturated Tanh) and closes (g = 0) where |φ'| is maximal, so a
unit keeps a linear path exactly where it would stop learning.

`AdaLin(base, num_features, per_unit=False)` shares one α across the layer: the paper's ablation, which finds
the per-neuron α crucial. The authors published no code; this follows the formula of the paper.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from plasticity.activations import PerUnitParameter, gelu_derivative, register

# base -> (φ, φ', L = max |φ'|, name for nn.init.calculate_gain). GELU's φ' = Φ(x) + x·φ(x) peaks at x = √2:
# L = Φ(√2) + √2·φ(√2) = (1 + erf(1))/2 + e⁻¹/√π ≈ 1.1289.
BASES = {
    "relu": (F.relu, lambda z: (z > 0).to(z.dtype), 1.0, "relu"),
    "tanh": (torch.tanh, lambda z: 1 - torch.tanh(z) ** 2, 1.0, "tanh"),
    "gelu": (F.gelu, gelu_derivative, (1 + math.erf(1)) / 2 + math.exp(-1) / math.sqrt(math.pi), "relu"),
}


class AdaLin(PerUnitParameter):
    """AdaLin: φ(x) + α·x·g(x), a gated linear term with a learned α per unit (per channel on feature maps)."""

    def __init__(self, base: str = "relu", num_features: int = 1, per_unit: bool = True,
                 gens: list[torch.Generator] | None = None):
        if base not in BASES:
            raise ValueError(f"unknown AdaLin base activation {base!r}; valid: {sorted(BASES)}")
        super().__init__(self.initial(num_features, per_unit, gens,
                                      lambda count, g: torch.rand(count, generator=g)))
        self.base = base
        self.phi, self.phi_derivative, self.lipschitz, self.init_gain = BASES[base]

    @torch.no_grad()
    def gate(self, z: torch.Tensor) -> torch.Tensor:
        """g(z), without gradient. Written sin((π/2)(1 − |φ'|/L)), equal to the cos form, because it is exact at
        both ends in floating point (cos(π/2) is 6e-17 in float64 and −4e-8 in float32, sin(0) is 0); clamped at 0
        against |φ'| exceeding L by rounding."""
        return torch.sin((math.pi / 2) * (1 - self.phi_derivative(z).abs() / self.lipschitz)).clamp_(min=0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.phi(z) + self.broadcast_alpha(z) * z * self.gate(z)

    def derivative(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.phi_derivative(z) + self.broadcast_alpha(z) * self.gate(z)

    @torch.no_grad()
    def backward(self, z: torch.Tensor, h: torch.Tensor, grad_h: torch.Tensor) -> torch.Tensor:
        gate = self.gate(z)
        self.set_alpha_grad(grad_h * z * gate)
        return grad_h * (self.phi_derivative(z) + self.broadcast_alpha(z) * gate)

    @property
    def description(self) -> str:
        return f"AdaLin on {self.base}, α per {'unit' if self.alpha.shape[-1] > 1 else 'layer'}"

    def extra_repr(self) -> str:
        return f"base={self.base}, alpha={tuple(self.alpha.shape)}"


def _adalin(base: str, per_unit: bool):
    return lambda num_features, gens: AdaLin(base, num_features, per_unit, gens)


for _base in BASES:
    register(f"adalin_{_base}")(_adalin(_base, per_unit=True))
    register(f"adalin_layer_{_base}")(_adalin(_base, per_unit=False))
