"""Dohare et al.'s ResNet-18 for class-incremental CIFAR-100 (loss of plasticity, Fig. 2), for S seeds.

torchvision's ResNet-18 as the reference modifies it: a 3×3 stride-1 stem conv, no max-pool, and every conv with a
bias (downsample convs too); BasicBlocks [2, 2, 2, 2] of 64/128/256/512 channels; global average pooling to 512
features; fc 512→classes. Init as the reference's: convs Kaiming-normal (fan_in, ReLU) N(0, 2/fan_in), the fc
Kaiming-normal (linear) N(0, 1/fan_in), biases 0, BatchNorm weight 1 and bias 0; CBP's replaced units
N(0, 2/fan_in). Unit layers and features: see `plasticity.models.resnet_blocks`.
"""
from __future__ import annotations

from plasticity.models import register
from plasticity.models.resnet_blocks import SeedResNet, build_resnet


@register("resnet18")
def build(input_shape: tuple[int, ...], out_features: int, seeds: list[int], activation: str = "relu",
          gain_head: bool = False, head_std: float = 0.05) -> SeedResNet:
    """Loss-of-plasticity CIFAR ResNet-18: 3×3 stem, no max-pool, conv biases, Kaiming-normal init."""
    return build_resnet("resnet18", input_shape, out_features, seeds, widths=[64, 128, 256, 512], bias=True,
                        kaiming=True, pool_kernel=None, activation=activation, head_std=head_std,
                        gain_head=gain_head)
