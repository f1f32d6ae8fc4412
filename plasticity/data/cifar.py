"""CIFAR-10 and CIFAR-100 from their python version: the extracted folder of pickles, the .tar.gz archive, or
torchvision's download; every file checked against torchvision's md5s before it is decoded.

The md5s are read from torchvision's dataset classes (`tgz_md5`, `train_list`, `test_list`, `meta`), not copied,
so they are the values torchvision's own downloader checks. Tests pass their own `checksums` for small fake files.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import socket
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from plasticity.data._torchvision import import_torchvision
from plasticity.data.store import DataError

# urllib waits forever by default; a network that drops packets would otherwise hang the job, not fail it.
DOWNLOAD_TIMEOUT_S = 30
TORCHVISION_CLASSES = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}
LABEL_KEYS = {"cifar10": {"y": "labels"}, "cifar100": {"y": "fine_labels", "y_coarse": "coarse_labels"}}


def torchvision_checksums(name: str) -> dict:
    """{"folder", "archive", "archive_md5", "train": [(file, md5)], "test": [...]} of torchvision's class."""
    cls = getattr(import_torchvision().datasets, TORCHVISION_CLASSES[name])
    return {"folder": cls.base_folder, "archive": cls.filename, "archive_md5": cls.tgz_md5,
            "train": [tuple(entry) for entry in cls.train_list], "test": [tuple(entry) for entry in cls.test_list]}


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def read_cifar(name: str, path, checksums: dict | None = None) -> tuple[dict, str, str]:
    """(arrays, form, detail) of a user's CIFAR copy: the archive (.tar.gz) or a folder of the python pickles."""
    checksums = checksums or torchvision_checksums(name)
    path = Path(path)
    if path.is_file():
        return _read_archive(name, path, checksums), "cifar-tar.gz", str(path)
    folder = path / checksums["folder"] if (path / checksums["folder"]).is_dir() else path
    files = {entry[0]: (folder / entry[0]).read_bytes() if (folder / entry[0]).is_file() else None
             for entry in checksums["train"] + checksums["test"]}
    missing = [file for file, data in files.items() if data is None]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)} (the {checksums['folder']} pickles)")
    return _decode(name, files, checksums, str(folder)), "cifar-python-pickles", str(folder)


def download_cifar(name: str, root=None) -> tuple[dict, str, str]:
    """torchvision's download (it checks the archive's md5), then the extracted pickles, checked again."""
    if root is None:
        with tempfile.TemporaryDirectory() as scratch:
            return download_cifar(name, scratch)
    torchvision = import_torchvision()
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        getattr(torchvision.datasets, TORCHVISION_CLASSES[name])(root, download=True)
    finally:
        socket.setdefaulttimeout(previous_timeout)
    arrays, _, folder = read_cifar(name, root)
    return arrays, "cifar-python-pickles", f"torchvision {torchvision.__version__} download into {folder}"


def _read_archive(name: str, path: Path, checksums: dict) -> dict:
    data = path.read_bytes()
    if md5(data) != checksums["archive_md5"]:
        raise DataError(f"{path} has md5 {md5(data)}, expected {checksums['archive_md5']} ({checksums['archive']}): "
                        "the archive is truncated, corrupt or not the official one")
    wanted = {f"{checksums['folder']}/{entry[0]}": entry[0] for entry in checksums["train"] + checksums["test"]}
    files = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive:
                if member.name in wanted:
                    files[wanted[member.name]] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path} is not a readable .tar.gz ({err})") from err
    missing = sorted(set(wanted) - {f"{checksums['folder']}/{file}" for file in files})
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}")
    return _decode(name, files, checksums, str(path))


def _decode(name: str, files: dict[str, bytes], checksums: dict, where: str) -> dict:
    """The pickles, md5-checked, as uint8 images (N, 32, 32, 3) and uint8 labels in the files' order."""
    arrays = {}
    for split in ("train", "test"):
        parts = []
        for file, expected in checksums[split]:
            if md5(files[file]) != expected:
                raise DataError(f"{where}: {file} has md5 {md5(files[file])}, expected {expected}: truncated, "
                                "corrupt or not the official file")
            try:
                loaded = pickle.loads(files[file], encoding="latin1")
                # The official files are Python 2 pickles (str keys); a Python 3 writer may have used bytes.
                parts.append({key.decode() if isinstance(key, bytes) else key: value for key, value in loaded.items()})
            except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as err:
                raise DataError(f"{where}: {file} is not a readable pickle ({err})") from err
        data = np.concatenate([np.asarray(part["data"], np.uint8) for part in parts])
        arrays[f"x_{split}"] = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()   # channel-major -> last
        for stem, key in LABEL_KEYS[name].items():
            arrays[f"{stem[:1]}_{split}{stem[1:]}"] = np.concatenate(
                [np.asarray(part[key], np.int64) for part in parts]).astype(np.uint8)
    return arrays
