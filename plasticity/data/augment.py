"""Training-time augmentation of image batches on any device: horizontal flip, random crop from a padded image
(reflect or zero padding) and rotation by a small random angle (fill 0), in one batched operation each.

The random draws are a separate step, `draw_params`, made on the CPU from the per-seed generators of
`plasticity.seeding`: a seed's crops, flips and angles depend on its seed alone, not on the device's RNG or on the
other seeds of its block. `apply` then transforms the whole batch on the images' device. The result equals
torchvision's per-image `hflip`, `pad` + `crop` and `rotate` (tensor path, fill 0) with the same parameters: the
rotation builds torchvision's inverse-affine matrix and sampling grid, batched.

Order: flip, then crop, then rotate, as the loss-of-plasticity reference composes them. The stability-gap
reference crops before flipping; with symmetric padding the two orders give the same distribution of images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

PADDING_MODES = {"reflect": "reflect", "zero": "constant"}
INTERPOLATIONS = ("nearest", "bilinear")


@dataclass(frozen=True)
class Augmentation:
    """What to draw: crop offsets into the image padded by `padding` pixels a side (0: no crop), a flip with
    probability `flip`, an angle uniform in degrees [angles[0], angles[1]] (None: no rotation; LOP's
    `RandomRotation(degrees=(0, 15))` is (0, 15))."""
    padding: int = 4
    padding_mode: str = "reflect"
    flip: float = 0.5
    angles: tuple[float, float] | None = None
    interpolation: str = "nearest"     # torchvision's RandomRotation default

    def __post_init__(self):
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode {self.padding_mode!r}; valid: {', '.join(PADDING_MODES)}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {self.interpolation!r}; valid: {', '.join(INTERPOLATIONS)}")
        if self.padding < 0 or not 0 <= self.flip <= 1:
            raise ValueError(f"padding {self.padding} must be >= 0 and flip {self.flip} in [0, 1]")

    def __call__(self, images: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
        """Augment a seed-batched batch (S, B, C, H, W), seed s's draws from gens[s] (the signature of
        `TaskBenchmark.augment`)."""
        seeds, batch = images.shape[:2]
        if len(gens) != seeds:
            raise ValueError(f"{len(gens)} generators for a batch of {seeds} seeds")
        params = [draw_params(generator, batch, self) for generator in gens]
        merged = AugmentParams(*(torch.cat([getattr(p, field) for p in params]) for field in AugmentParams.FIELDS))
        return apply(images.reshape(seeds * batch, *images.shape[2:]), merged, self).reshape(images.shape)


@dataclass
class AugmentParams:
    offsets: torch.Tensor   # (n, 2) int64: top, left of the crop in the padded image
    flips: torch.Tensor     # (n,) bool
    angles: torch.Tensor    # (n,) float32 degrees (counter-clockwise, as torchvision's rotate)

    FIELDS = ("offsets", "flips", "angles")


def draw_params(generator: torch.Generator, n: int, augmentation: Augmentation) -> AugmentParams:
    """The draws of n images from one CPU generator, always in the same order and amounts (offsets, flips, angles),
    so that a stream's later draws do not depend on which transforms are enabled."""
    offsets = torch.randint(0, 2 * augmentation.padding + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < augmentation.flip
    low, high = augmentation.angles or (0.0, 0.0)
    angles = torch.rand(n, generator=generator) * (high - low) + low
    return AugmentParams(offsets, flips, angles)


def apply(images: torch.Tensor, params: AugmentParams, augmentation: Augmentation) -> torch.Tensor:
    """Flip, crop and rotate a batch (n, C, H, W) of float images on their device with the drawn parameters."""
    device = images.device
    flips = params.flips.to(device).view(-1, 1, 1, 1)
    images = torch.where(flips, images.flip(-1), images)
    if augmentation.padding:
        images = crop(images, params.offsets.to(device), augmentation.padding, augmentation.padding_mode)
    if augmentation.angles is not None:
        images = rotate(images, params.angles, augmentation.interpolation)
    return images


def crop(images: torch.Tensor, offsets: torch.Tensor, padding: int, padding_mode: str = "reflect") -> torch.Tensor:
    """Each image padded by `padding` a side, then cut back to its size at its own (top, left) offset: one gather."""
    n, channels, height, width = images.shape
    padded = F.pad(images, (padding,) * 4, mode=PADDING_MODES[padding_mode])
    rows = (offsets[:, 0, None] + torch.arange(height, device=images.device)).view(n, 1, height, 1)
    cols = (offsets[:, 1, None] + torch.arange(width, device=images.device)).view(n, 1, 1, width)
    index = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    return padded[index, torch.arange(channels, device=images.device).view(1, channels, 1, 1), rows, cols]


def rotate(images: torch.Tensor, angles: torch.Tensor, interpolation: str = "nearest") -> torch.Tensor:
    """Rotate each image by its angle (degrees, counter-clockwise) about its centre, outside pixels 0: the grid
    of torchvision's `rotate` (tensor path, expand=False), one per image, sampled in one `grid_sample`. The matrices
    are computed in Python floats, as torchvision does, so the grids match it bit for bit."""
    n, _, height, width = images.shape
    theta = torch.tensor([_inverse_rotation(float(angle)) for angle in angles], dtype=images.dtype)
    theta = theta.view(n, 2, 3).to(images.device)
    base = torch.empty(1, height, width, 3, dtype=images.dtype, device=images.device)
    base[..., 0].copy_(torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=images.device))
    base[..., 1].copy_(torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height,
                                      device=images.device).unsqueeze_(-1))
    base[..., 2].fill_(1)
    scale = torch.tensor([0.5 * width, 0.5 * height], dtype=images.dtype, device=images.device)
    grid = base.view(1, height * width, 3).expand(n, -1, -1).bmm(theta.transpose(1, 2).div(scale))
    if interpolation == "nearest":
        return F.grid_sample(images, grid.view(n, height, width, 2), mode="nearest", padding_mode="zeros",
                             align_corners=False)
    # Bilinear with fill 0, as torchvision computes it: the image and a channel of ones are sampled together and
    # the image is multiplied by the sampled ones, which darkens the border pixels a second time.
    ones = torch.ones(n, 1, height, width, dtype=images.dtype, device=images.device)
    sampled = F.grid_sample(torch.cat([images, ones], 1), grid.view(n, height, width, 2), mode="bilinear",
                            padding_mode="zeros", align_corners=False)
    return sampled[:, :-1] * sampled[:, -1:]


def _inverse_rotation(angle: float) -> list[float]:
    """torchvision's `_get_inverse_affine_matrix` for a rotation about the centre (no translation, scale or shear),
    with its angle convention (`rotate` passes -angle, after angle % 360)."""
    rot = math.radians(-(angle % 360))
    a, b, c, d = math.cos(rot), -math.sin(rot), math.sin(rot), math.cos(rot)
    return [d, -b, 0.0, -c, a, 0.0]
