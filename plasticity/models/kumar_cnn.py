"""Kumar, Marklund & Van Roy's small CNN (L2 Init, CoLLAs 2024, appendix A.1.3), for S seeds.

conv 5×5 16 ch + ReLU + 2×2 max-pool, twice (16·5·5 = 400 features at 32×32), fc 100, fc 100, output layer;
PyTorch's default init. The paper states no padding; none is used (torch's default). Four unit layers: the two
convolutions (features after activation and pooling) and the two hidden linear layers.
"""
from __future__ import annotations

from plasticity.models import register
from plasticity.models.convnet import ConvNet, build_convnet


@register("kumar_cnn")
def build(input_shape: tuple[int, ...], out_features: int, seeds: list[int], activation: str = "relu",
          gain_head: bool = False, head_std: float = 0.05) -> ConvNet:
    """Kumar et al.'s CNN: 2 convs 5×5 (16 ch) + max-pools, fc 100, fc 100."""
    return build_convnet("kumar_cnn", input_shape, out_features, seeds, convs=[(16, 5), (16, 5)],
                         widths=[100, 100], activation=activation, gain_head=gain_head, head_std=head_std)
