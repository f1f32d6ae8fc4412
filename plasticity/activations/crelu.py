"""Concatenated ReLU, CReLU (Shang et al. 2016; a plasticity baseline of Abbas et al. 2023 and the AdaLin paper):
[ReLU(x), ReLU(−x)] along the feature dimension, so a unit is never without gradient on both sides. It doubles
the features a layer passes on; the engine's networks shrink the hidden width so that the parameter count
matches the plain network's (`plasticity.models.mlp.parameter_matched_width`)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from plasticity.activations import Activation, register


class CReLU(Activation):
    """CReLU: [ReLU(x), ReLU(−x)], two features per unit (parameter-matched width)."""

    expansion = 2
    init_gain = "relu"

    def __init__(self, seeded: bool = False):
        super().__init__()
        self.feature_dim = 2 if seeded else 1    # (S, B, F, ...) or (B, F, ...)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(z), F.relu(-z)], dim=self.feature_dim)

    def backward(self, z: torch.Tensor, h: torch.Tensor, grad_h: torch.Tensor) -> torch.Tensor:
        positive, negative = grad_h.chunk(2, dim=self.feature_dim)
        return torch.where(z > 0, positive, 0.0) - torch.where(z < 0, negative, 0.0)


register("crelu")(lambda num_features, gens: CReLU(seeded=gens is not None))
