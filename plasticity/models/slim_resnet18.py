"""De Lange et al.'s slim ResNet-18 (Continual Evaluation, ICLR 2023; `ResNet18feat`, nf = 20), the stability-gap
paper's (NGM) vision backbone, for S seeds.

A 3×3 stride-1 stem conv 3→20 + BatchNorm + ReLU; BasicBlocks [2, 2, 2, 2] of 20/40/80/160 channels (strides 1, 2,
2, 2; 1×1 conv + BN shortcuts where the shape changes); no conv biases; `avg_pool2d(·, 4)` of the last map, flattened
(160 features at 32×32, 640 at 84×84), then the head. PyTorch's default init throughout, CBP's replaced units from
their layer's U(±1/√fan_in). The last unit layer's features are the pooled map (S, B, 160, h, w), each channel
feeding h·w inputs of the head. NGM uses it with `gain_head: true` (W ~ N(0, 0.05²), zero frozen bias).
"""
from __future__ import annotations

from plasticity.models import register
from plasticity.models.resnet_blocks import SeedResNet, build_resnet

NF = 20
POOL_KERNEL = 4


@register("slim_resnet18")
def build(input_shape: tuple[int, ...], out_features: int, seeds: list[int], activation: str = "relu",
          gain_head: bool = False, head_std: float = 0.05) -> SeedResNet:
    """Continual-Evaluation slim ResNet-18 (nf 20): no conv biases, avg-pool 4, PyTorch default init."""
    return build_resnet("slim_resnet18", input_shape, out_features, seeds, widths=[NF, 2 * NF, 4 * NF, 8 * NF],
                        bias=False, kaiming=False, pool_kernel=POOL_KERNEL, activation=activation,
                        head_std=head_std, gain_head=gain_head)
