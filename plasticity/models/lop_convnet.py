"""Dohare et al.'s continual-ImageNet ConvNet (loss of plasticity, Nature 2024, Fig. 1), for S seeds.

conv 3→32 5×5, conv 32→64 3×3, conv 64→128 3×3, each ReLU + 2×2 max-pool (128·2·2 = 512 features at 32×32);
fc 512→128, fc 128→128 (ReLU), fc 128→classes; no padding, PyTorch's default init. Five unit layers: the three
convolutions (features after activation and pooling) and the two hidden linear layers.
"""
from __future__ import annotations

from plasticity.models import register
from plasticity.models.convnet import ConvNet, build_convnet


@register("lop_convnet")
def build(input_shape: tuple[int, ...], out_features: int, seeds: list[int], activation: str = "relu",
          gain_head: bool = False, head_std: float = 0.05) -> ConvNet:
    """Loss-of-plasticity continual-ImageNet ConvNet: 3 convs (32, 64, 128 ch) + max-pools, fc 128, fc 128."""
    return build_convnet("lop_convnet", input_shape, out_features, seeds, convs=[(32, 5), (64, 3), (128, 3)],
                         widths=[128, 128], activation=activation, gain_head=gain_head, head_std=head_std)
