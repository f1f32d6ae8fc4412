"""The vision data sets (CIFAR-10, CIFAR-100, Imagenet32, mini-ImageNet), materialised once into
`resources/<name>.npz` from the first source that works, and `load_dataset`, which every training job reads them
with.

Sources in order: the user's path (`data: {name: PATH}`: used alone, since falling back would hide their mistake),
else torchvision's download where one exists (the CIFARs), else a stop saying where to get the set. `synthetic`
instead writes random images and labels in the real shapes per image, dtypes and class counts, a fraction of the
examples, from a fixed seed: it exercises the code paths in tests and CI and is marked in the provenance, so no
caption or verdict can take it for a result.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch

from plasticity.data.cifar import download_cifar, read_cifar
from plasticity.data.datasets import SYNTHETIC, data_message, dataset
from plasticity.data.imagenet32 import read_imagenet32
from plasticity.data.mini_imagenet import read_mini_imagenet
from plasticity.data.store import DataError, load_checked, write_dataset

VISION = ("cifar10", "cifar100", "imagenet32", "mini_imagenet")
# What an absent download raises (offline, host unreachable): the data set then has no source.
_UNAVAILABLE = (ImportError, OSError, RuntimeError)


def materialise(name: str, out_path, user_path=None, synthetic: bool = False, download_root=None,
                needed_by: list[str] | None = None) -> dict:
    """Write `name` to `out_path` (.npz) and its provenance to `<out_path>.source.json`; return the provenance.
    Every failure is a DataError carrying the data set's one message (see `plasticity.data.datasets`)."""
    if name not in VISION:
        raise DataError(f"unknown vision data set {name!r}; valid: {', '.join(VISION)}")
    if synthetic:
        return write_dataset(out_path, name, synthetic_arrays(name), {
            "source": SYNTHETIC, "form": SYNTHETIC, "detail": f"random uint8 images, seed {_seed(name)}",
            "synthetic": True})
    if user_path is not None:
        try:
            arrays = _read_user_path(name, user_path)
            fields = arrays.pop("provenance")
            return write_dataset(out_path, name, arrays, {"source": "user_path", **fields, "synthetic": False})
        except DataError as err:
            raise DataError(data_message(name, f"cannot be read from {user_path}: {err}", needed_by)) from err
    if not dataset(name).downloadable:
        raise DataError(data_message(name, "cannot be downloaded", needed_by))
    try:
        arrays, form, detail = download_cifar(name, download_root)
    except (*_UNAVAILABLE, DataError) as err:
        raise DataError(data_message(name, f"could not be downloaded ({type(err).__name__}: {str(err).strip()})",
                                     needed_by)) from err
    return write_dataset(out_path, name, arrays, {"source": "torchvision", "form": form, "detail": detail,
                                                  "synthetic": False})


def load_dataset(name: str, path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The materialised arrays as tensors on `device`: uint8 images (N, H, W, 3), int64 labels (what torch's
    losses index with); checked first against the sha256 and shapes their provenance recorded."""
    if path is None:
        file = dataset(name).file
        raise DataError(f"{name} is needed: pass --data {file} (made by `snakemake {file}`)")
    arrays, _ = load_checked(path, name)
    return {key: torch.from_numpy(array if key.startswith("x") else array.astype(np.int64)).to(device)
            for key, array in arrays.items()}


def _read_user_path(name: str, path) -> dict:
    """The user's copy in one of its accepted forms, split into x_train/x_test as `plasticity.data.datasets` says;
    the form and detail under "provenance"."""
    path = Path(path).resolve()
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if name in ("cifar10", "cifar100"):
        arrays, form, detail = read_cifar(name, path)
        return {**arrays, "provenance": {"form": form, "detail": detail}}
    if name == "imagenet32":
        x, y, form, detail = read_imagenet32(path)
        fields = {"form": form, "detail": detail}
    else:
        x, y, fields = read_mini_imagenet(path)
    return {**split_per_class(name, x, y), "provenance": fields}


def split_per_class(name: str, x: np.ndarray, y: np.ndarray) -> dict:
    """Class-contiguous arrays (classes x per-class images) split per class: the first train/classes images of each
    class are x_train, the rest x_test (classes stay contiguous in both)."""
    info = dataset(name)
    per_class, train = len(x) // info.classes, info.train // info.classes
    x, y = x.reshape(info.classes, per_class, *x.shape[1:]), y.reshape(info.classes, per_class)
    return {"x_train": x[:, :train].reshape(-1, *x.shape[2:]), "y_train": y[:, :train].reshape(-1),
            "x_test": x[:, train:].reshape(-1, *x.shape[2:]), "y_test": y[:, train:].reshape(-1)}


def _seed(name: str) -> int:
    return zlib.crc32(f"plasticity synthetic {name}".encode())


def synthetic_arrays(name: str) -> dict:
    """Random uint8 images and balanced labels in the real per-image shape and class count, few per class; the
    same bytes on every machine (numpy's PCG64 from a fixed seed). Labels are shuffled for the CIFARs (whose files
    mix classes) and class-contiguous for the others (as materialised); CIFAR-100's coarse label of fine class f
    is f mod 20 (five fine classes each, as in the real set, though not the real grouping)."""
    info, rng = dataset(name), np.random.default_rng(_seed(name))
    label_dtype = np.int16 if info.classes > 256 else np.uint8
    arrays = {}
    for split, per_class in zip(("train", "test"), info.synthetic_per_class):
        labels = np.repeat(np.arange(info.classes), per_class)
        if name.startswith("cifar"):
            labels = rng.permutation(labels)
        arrays[f"x_{split}"] = rng.integers(0, 256, (len(labels), *info.image), dtype=np.uint8)
        arrays[f"y_{split}"] = labels.astype(label_dtype)
        if info.coarse_classes:
            arrays[f"y_{split}_coarse"] = (labels % info.coarse_classes).astype(np.uint8)
    return arrays
