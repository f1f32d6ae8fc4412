"""PReLU (He et al. 2015) with one learned negative-side slope per unit: max(0, x) + α·min(0, x), α initialised
0.25 as torch.nn.PReLU does. A baseline of the AdaLin paper: AdaLin with ReLU is this function, initialised
U[0, 1) instead."""
from __future__ import annotations

import torch

from plasticity.activations import PerUnitParameter, register


class PReLU(PerUnitParameter):
    """PReLU: a learned negative-side slope per unit (per channel on feature maps)."""

    init_gain = "relu"

    def __init__(self, num_features: int = 1, gens: list[torch.Generator] | None = None, init: float = 0.25):
        super().__init__(self.initial(num_features, True, gens, lambda count, g: torch.full((count,), init)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.where(z > 0, z, self.broadcast_alpha(z) * z)

    def derivative(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.where(z > 0, 1.0, self.broadcast_alpha(z))

    @torch.no_grad()
    def backward(self, z: torch.Tensor, h: torch.Tensor, grad_h: torch.Tensor) -> torch.Tensor:
        self.set_alpha_grad(grad_h * z.clamp(max=0))
        return grad_h * self.derivative(z, h)


register("prelu")(lambda num_features, gens: PReLU(num_features, gens))
