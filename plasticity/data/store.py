"""The materialised data files every vision data set shares: `resources/<name>.npz` and its provenance
`resources/<name>.npz.source.json`, written atomically, and read back only when their content still hashes to the
sha256 recorded at materialisation.

The decoded-array sha256 of the real CIFAR, Imagenet32 and mini-ImageNet cannot be pinned in the code: no machine
here can obtain them. Their sources are checked where checksums exist (torchvision's md5s of the CIFAR archives
and pickles); the array hash is recorded in the provenance and checked at every load, so a file changed after
materialisation stops the job that reads it.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from plasticity.data.datasets import dataset
from plasticity.io import write_atomically


class DataError(ValueError):
    """A data set is missing, unreadable or not what it should be; the message names the file and the fix."""


def content_sha256(arrays: dict, keys) -> str:
    """sha256 over the arrays' bytes (C order) in the order of `keys`: the identity of a data set's content."""
    digest = hashlib.sha256()
    for key in keys:
        digest.update(np.ascontiguousarray(arrays[key]))     # the buffer itself: no copy of a 2 GB array
    return digest.hexdigest()


def provenance_path(path) -> Path:
    return Path(f"{path}.source.json")


def recreate_hint(name: str) -> str:
    return (f"Delete it and run `snakemake {dataset(name).file}` (or `plasticity data {name} --out "
            f"{dataset(name).file}`) to re-create it.")


def write_dataset(out_path, name: str, arrays: dict, provenance: dict) -> dict:
    """Write the arrays and their provenance (with the content's sha256 and shapes added); return the latter.
    Arrays not in the data set's shapes (the real ones, or the synthetic source's) are refused before anything is
    written."""
    info = dataset(name)
    synthetic = bool(provenance.get("synthetic"))
    expected = info.shapes(synthetic)
    wrong = {key: list(arrays[key].shape) for key in info.keys if not _fits(arrays[key].shape, expected[key], synthetic)}
    if wrong:
        raise DataError(f"{name} from {provenance.get('detail')} has arrays of shapes {wrong}, expected "
                        f"{ {key: list(expected[key]) for key in wrong} }")
    provenance = {**provenance, "dataset": name, "sha256": content_sha256(arrays, info.keys),
                  "shapes": {key: list(arrays[key].shape) for key in info.keys}}
    out_path = Path(out_path)
    write_atomically(out_path, lambda path: np.savez(path, **{key: arrays[key] for key in info.keys}))
    write_atomically(provenance_path(out_path),
                     lambda path: Path(path).write_text(json.dumps(provenance, indent=2) + "\n"))
    return provenance


def _fits(shape: tuple[int, ...], expected: tuple[int, ...], synthetic: bool) -> bool:
    """Real data: exactly the data set's shape. Synthetic stand-ins (the synthetic source, or the small hand-made
    arrays of the tests): the data set's shape per example, any number of examples."""
    return tuple(shape) == tuple(expected) or (synthetic and tuple(shape[1:]) == tuple(expected[1:]))


def read_provenance(path, name: str) -> dict:
    source = provenance_path(path)
    try:
        return json.loads(source.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{source} (the provenance of {path}) is missing or unreadable ({err}). "
                        f"{recreate_hint(name)}") from err


def read_npz(path, keys, hint: str, error: type[DataError] = DataError) -> dict:
    """The arrays `keys` of an .npz; an `error` naming the file when it is missing, truncated or lacks some."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path} does not exist. {hint}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in keys if key not in npz.files]
            if missing:
                raise error(f"{path} lacks arrays {missing}; it needs {', '.join(keys)}. {hint}")
            return {key: npz[key] for key in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, DataError):
            raise
        raise error(f"{path} is not a readable .npz file ({err}): truncated or corrupt. {hint}") from err


def load_checked(path, name: str) -> tuple[dict, dict]:
    """The arrays of a materialised data file and its provenance, after checking that the content still has the
    sha256 and shapes the provenance recorded (and, for real data, the data set's own shapes)."""
    info, hint = dataset(name), recreate_hint(name)
    provenance = read_provenance(path, name)
    if provenance.get("dataset", name) != name:
        raise DataError(f"{path} holds {provenance['dataset']!r}, not {name!r}. {hint}")
    arrays = read_npz(path, info.keys, hint)
    expected = {key: tuple(shape) for key, shape in provenance["shapes"].items()}
    synthetic = bool(provenance.get("synthetic"))
    real = info.shapes(synthetic)
    for key, array in arrays.items():
        if array.dtype != np.uint8 and not (key.startswith("y") and array.dtype == np.int16):
            raise DataError(f"{path}: {key} is {array.dtype}, expected uint8 (labels: uint8 or int16). {hint}")
        if array.shape != expected.get(key) or not _fits(array.shape, real[key], synthetic):
            raise DataError(f"{path}: {key} has shape {list(array.shape)}; its provenance records "
                            f"{list(expected.get(key, []))} and {name} has {list(real[key])}. {hint}")
    digest = content_sha256(arrays, info.keys)
    if digest != provenance["sha256"]:
        raise DataError(f"{path} has sha256 {digest}, but {provenance_path(path).name} records "
                        f"{provenance['sha256']}: the file changed after it was materialised. {hint}")
    return arrays, provenance
