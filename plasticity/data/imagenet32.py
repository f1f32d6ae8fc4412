"""Imagenet32 (Chrabaszcz et al. 2017, ImageNet downsampled to 32x32), which needs an image-net.org account, in the
two forms users have: the official training batches and the loss-of-plasticity reference's per-class arrays.

Both become 700 images per class, class-contiguous in label order, channel-last uint8 (see
`plasticity.data.datasets` for how they are split). The official batches keep the first 700 images of each class
in file order (train_data_batch_1, ..., 10): deterministic, and the reference does not say which 700 it kept.
"""
from __future__ import annotations

import pickle
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from plasticity.data.store import DataError

PER_CLASS = 700


def read_imagenet32(path, classes: int = 1000, per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(x (classes * per_class, 32, 32, 3) uint8, y int16, form, detail) from either form, told apart by the files:
    `<class>.npy` arrays (in `path` or `path/classes`) or `train_data_batch_<k>` files."""
    path = Path(path)
    folder = path / "classes" if (path / "classes").is_dir() else path
    if (folder / "0.npy").is_file():
        x = _read_per_class(folder, classes, per_class)
        return x, np.repeat(np.arange(classes, dtype=np.int16), per_class), "lop-per-class-npy", str(folder)
    batches = sorted((file for file in path.glob("train_data_batch_*") if re.fullmatch(r"train_data_batch_\d+(\.npz)?",
                                                                                     file.name)),
                     key=lambda file: int(re.search(r"\d+", file.name).group()))
    if not batches:
        raise DataError(f"{path} holds neither the official train_data_batch_1..10 nor per-class arrays "
                        f"(0.npy ... {classes - 1}.npy, there or in classes/)")
    x = _first_per_class(batches, classes, per_class)
    return x, np.repeat(np.arange(classes, dtype=np.int16), per_class), "imagenet32-batches", \
        f"{path} ({', '.join(file.name for file in batches)}; the first {per_class} images of each class)"


def _read_per_class(folder: Path, classes: int, per_class: int) -> np.ndarray:
    x = np.empty((classes * per_class, 32, 32, 3), np.uint8)
    for c in range(classes):
        file = folder / f"{c}.npy"
        try:
            array = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise DataError(f"{file} is missing, truncated or not an .npy array ({err})") from err
        if array.shape != (per_class, 3, 32, 32):
            raise DataError(f"{file} has shape {list(array.shape)}, expected [{per_class}, 3, 32, 32]")
        x[c * per_class:(c + 1) * per_class] = _as_uint8(array, file).transpose(0, 2, 3, 1)
    return x


def _as_uint8(array: np.ndarray, where) -> np.ndarray:
    """The pixel bytes of an array stored as uint8, as integers in floats (0..255), or scaled to [0, 1] (x / 255);
    the reference does not state its scaling, so anything else is refused rather than guessed."""
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer):
        values = array.astype(np.float64)
        for scale in (1.0, 255.0) if values.max() > 1 else (255.0, 1.0):
            pixels = np.rint(values * scale)
            if np.abs(pixels - values * scale).max() < 1e-3 and pixels.min() >= 0 and pixels.max() <= 255:
                return pixels.astype(np.uint8)
    raise DataError(f"{where}: {array.dtype} values in [{array.min()}, {array.max()}] are neither uint8 pixels nor "
                    "pixels / 255")


def _load_batch(file: Path) -> dict:
    """One official batch: a pickle (no suffix) or the .npz release, each with `data` (N, 3072) and `labels` 1..1000."""
    try:
        if file.suffix == ".npz":
            with np.load(file, allow_pickle=False) as npz:
                return {"data": npz["data"], "labels": npz["labels"]}
        with open(file, "rb") as handle:
            batch = pickle.load(handle, encoding="latin1")
        return {"data": np.asarray(batch["data"]), "labels": np.asarray(batch["labels"])}
    except (OSError, ValueError, EOFError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"{file} is not a readable Imagenet32 batch ({type(err).__name__}: {err}): truncated or "
                        "corrupt") from err


def _first_per_class(batches: list[Path], classes: int, per_class: int) -> np.ndarray:
    x = np.empty((classes, per_class, 3072), np.uint8)
    kept = np.zeros(classes, np.int64)
    for file in batches:
        batch = _load_batch(file)
        data, labels = batch["data"], np.asarray(batch["labels"], np.int64) - 1    # labels are 1-based
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
            raise DataError(f"{file}: data is {data.dtype} {list(data.shape)} with {len(labels)} labels, expected "
                            "uint8 (N, 3072) and N labels")
        if labels.min() < 0 or labels.max() >= classes:
            raise DataError(f"{file}: labels range over {labels.min() + 1}..{labels.max() + 1}, expected 1..{classes}")
        for c in np.unique(labels):
            rows = np.flatnonzero(labels == c)[:per_class - kept[c]]
            x[c, kept[c]:kept[c] + len(rows)] = data[rows]
            kept[c] += len(rows)
        if (kept == per_class).all():
            break
    short = np.flatnonzero(kept < per_class)
    if len(short):
        raise DataError(f"the batches hold fewer than {per_class} images of {len(short)} classes (label "
                        f"{short[0] + 1}: {kept[short[0]]}); Imagenet32's training set has at least 732 of each")
    return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
