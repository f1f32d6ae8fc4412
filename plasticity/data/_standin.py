"""STAND-IN, to be replaced at merge by the data layer's checked loader `plasticity.data.load_dataset`.

Reads a materialised data set (`resources/<dataset>.npz`: `x_train` uint8 (N, H, W, 3) channel-last, `y_train`,
`x_test`, `y_test`, ...) with numpy, unchecked, so that the vision benchmarks run before the data layer is merged.
"""
from __future__ import annotations

import numpy as np
import torch

from plasticity.config import ConfigError


def load_dataset(name: str, path: str | None) -> dict[str, torch.Tensor]:
    """Every array of the npz at `path` as a CPU tensor; ConfigError naming the data set when there is none."""
    if not path:
        raise ConfigError(f"benchmark data set {name!r} needs its materialised file (resources/{name}.npz)")
    try:
        with np.load(path) as arrays:
            return {key: torch.from_numpy(arrays[key]) for key in arrays.files}
    except FileNotFoundError:
        raise ConfigError(f"data set {name!r}: no file {path!r}") from None
