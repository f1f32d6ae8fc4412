"""Small hand-made vision data files for the benchmark tests, written as the data layer writes its files (arrays +
provenance, marked synthetic), so that the benchmarks read them through the real checked loader."""
from __future__ import annotations

import numpy as np

from plasticity.data.store import write_dataset


def write_vision_npz(path, name: str, x_train, y_train, x_test, y_test, coarse=None) -> str:
    """`name`'s file at `path` holding these arrays (labels stored as uint8; CIFAR-100's coarse labels the
    superclass `coarse[fine]` of each fine label, by default fine mod 20); returns the path."""
    arrays = {"x_train": np.asarray(x_train, np.uint8), "y_train": np.asarray(y_train, np.uint8),
              "x_test": np.asarray(x_test, np.uint8), "y_test": np.asarray(y_test, np.uint8)}
    if name == "cifar100":
        superclass = np.asarray(coarse if coarse is not None else np.arange(100) % 20, np.uint8)
        arrays.update(y_train_coarse=superclass[arrays["y_train"]], y_test_coarse=superclass[arrays["y_test"]])
    write_dataset(path, name, arrays, {"source": "synthetic", "form": "test arrays", "detail": "hand-made test data",
                                       "synthetic": True})
    return str(path)
