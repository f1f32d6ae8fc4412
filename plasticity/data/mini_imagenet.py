"""mini-ImageNet (100 classes x 600 images, 84x84; Ravi & Larochelle's split), supplied by the user as the common
pickle or as the image folder with the split CSVs.

Both become 600 images per class, class-contiguous, channel-last uint8. Channel order: the pickle's arrays are kept
as stored. ContinualEvaluation trains on them as loaded; the pickle built by TwoComplementaryPerspectivesCL's
builder reads its images with cv2, so it is BGR. Images from the folders are read with PIL, so RGB; an image not
already 84x84 is resized with PIL's bilinear filter. The provenance records which.
"""
from __future__ import annotations

import csv
import pickle
import zlib
from pathlib import Path

import numpy as np

from plasticity.data.store import DataError

PER_CLASS = 600
SIZE = 84
SPLIT_FILES = ("train.csv", "val.csv", "test.csv")


def read_mini_imagenet(path, classes: int = 100, per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray, dict]:
    """(x, y uint8, provenance fields) from the pickle (a file) or the image folder with the CSVs (a directory)."""
    path = Path(path)
    if path.is_dir():
        return _read_folders(path, classes, per_class)
    return _read_pickle(path, classes, per_class)


def _read_pickle(path: Path, classes: int, per_class: int):
    try:
        with open(path, "rb") as handle:
            loaded = pickle.load(handle, encoding="latin1")
        data, labels = np.asarray(loaded["data"]), np.asarray(loaded["labels"])
    except (OSError, EOFError, ValueError, KeyError, TypeError, pickle.UnpicklingError, zlib.error) as err:
        raise DataError(f"{path} is not a readable mini-ImageNet pickle ({type(err).__name__}: {err}): truncated, "
                        "corrupt, or not a dict with 'data' and 'labels'") from err
    shape = (classes * per_class, SIZE, SIZE, 3)
    if data.dtype != np.uint8 or data.shape != shape or labels.shape != shape[:1]:
        raise DataError(f"{path}: data is {data.dtype} {list(data.shape)} with labels {list(labels.shape)}, expected "
                        f"uint8 {list(shape)} and {shape[0]} labels")
    blocks = labels.reshape(classes, per_class)
    if not (blocks == blocks[:, :1]).all() or len(np.unique(blocks[:, 0])) != classes:
        raise DataError(f"{path}: labels are not {classes} contiguous blocks of {per_class} images of one class each")
    y = np.repeat(np.arange(classes, dtype=np.uint8), per_class)    # classes numbered in block order
    return data, y, {"form": "mini-imagenet-pickle", "detail": str(path),
                     "channels": "as stored in the pickle (BGR when built with cv2, as TCP's builder does)"}


def _read_folders(path: Path, classes: int, per_class: int):
    """The images of train.csv, val.csv, test.csv (`filename,label`, label a WordNet id), found in images/,
    images/<label>/ or beside the CSVs; classes numbered in order of first appearance over the three files."""
    from PIL import Image, UnidentifiedImageError
    rows = []
    for name in SPLIT_FILES:
        try:
            with open(path / name, newline="") as handle:
                rows += [(row["filename"], row["label"]) for row in csv.DictReader(handle)]
        except (OSError, KeyError) as err:
            raise DataError(f"{path / name} is missing or has no filename,label header ({err})") from err
    by_class = {}
    for filename, label in rows:
        by_class.setdefault(label, []).append(filename)
    counts = {label: len(files) for label, files in by_class.items()}
    if len(by_class) != classes or set(counts.values()) != {per_class}:
        raise DataError(f"{path}: the CSVs list {len(by_class)} classes with {sorted(set(counts.values()))} images "
                        f"each, expected {classes} classes of {per_class}")
    x, resized = np.empty((classes * per_class, SIZE, SIZE, 3), np.uint8), 0
    for index, (label, files) in enumerate(by_class.items()):
        for row, filename in enumerate(files):
            candidates = [path / "images" / filename, path / "images" / label / filename, path / filename]
            found = next((file for file in candidates if file.is_file()), None)
            if found is None:
                raise DataError(f"{filename} (class {label}) is in none of {', '.join(map(str, candidates))}")
            try:
                with Image.open(found) as image:
                    image = image.convert("RGB")
                    if image.size != (SIZE, SIZE):
                        image, resized = image.resize((SIZE, SIZE), Image.BILINEAR), resized + 1
                    x[index * per_class + row] = np.asarray(image)
            except (OSError, UnidentifiedImageError) as err:
                raise DataError(f"{found} is not a readable image ({err}): truncated or corrupt") from err
    y = np.repeat(np.arange(classes, dtype=np.uint8), per_class)
    return x, y, {"form": "mini-imagenet-folders", "detail": f"{path} ({', '.join(SPLIT_FILES)})",
                  "channels": "RGB (read with PIL)", "resized": f"{resized} images resized to 84x84 (PIL bilinear)"}
