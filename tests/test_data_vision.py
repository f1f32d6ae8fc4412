"""Vision data: each loader on small files written in the real on-disk formats, the synthetic source, the checks at
every load, batched augmentation against torchvision's per-image transforms, and the clear stops through real
`snakemake` (a path that does not exist, a wrong checksum, a truncated file, a file changed after materialisation)."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import pickle
import shutil
import tarfile

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from plasticity.data import cifar
from plasticity.data._torchvision import import_torchvision
from plasticity.data.augment import Augmentation, apply, draw_params
from plasticity.data.datasets import DATASETS, data_message
from plasticity.data.imagenet32 import read_imagenet32
from plasticity.data.mini_imagenet import read_mini_imagenet
from plasticity.data.normalisation import normalise, to_float
from plasticity.data.store import DataError, write_dataset
from plasticity.data.vision import VISION, load_dataset, materialise, split_per_class
from plasticity.seeding import generator
from workflow_helpers import SMOKE, copy_workflow, snakemake

RNG = np.random.default_rng(0)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- CIFAR: the python pickles, in a folder and in the archive --------------------------------------------------------

CIFAR_LAYOUT = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{k}" for k in range(1, 6)], ["test_batch"]),
                "cifar100": ("cifar-100-python", ["train"], ["test"])}


def cifar_pickles(name: str, per_file: int = 3) -> tuple[dict[str, bytes], dict]:
    """The files of a tiny CIFAR (Python pickles with b"data" N x 3072 channel-major and the label lists) and the
    arrays they decode to."""
    folder, train, test = CIFAR_LAYOUT[name]
    files, expected = {}, {}
    for split, names in (("train", train), ("test", test)):
        images, fine, coarse = [], [], []
        for file in names:
            data = RNG.integers(0, 256, (per_file, 3072), dtype=np.uint8)
            labels = RNG.integers(0, 10 if name == "cifar10" else 100, per_file).tolist()
            content = {b"data": data, b"batch_label": file.encode()}
            if name == "cifar10":
                content[b"labels"] = labels
            else:
                content[b"fine_labels"], content[b"coarse_labels"] = labels, [label // 5 for label in labels]
            files[file] = pickle.dumps(content, protocol=2)
            images.append(data)
            fine += labels
            coarse += [label // 5 for label in labels]
        expected[f"x_{split}"] = np.concatenate(images).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        expected[f"y_{split}"] = np.array(fine, np.uint8)
        if name == "cifar100":
            expected[f"y_{split}_coarse"] = np.array(coarse, np.uint8)
    return files, expected


def write_archive(path, folder: str, files: dict[str, bytes]) -> bytes:
    with tarfile.open(path, "w:gz") as archive:
        for file, data in files.items():
            member = tarfile.TarInfo(f"{folder}/{file}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return path.read_bytes()


def checksums_of(name: str, files: dict[str, bytes], archive: bytes = b"") -> dict:
    folder, train, test = CIFAR_LAYOUT[name]
    return {"folder": folder, "archive": f"{folder}.tar.gz", "archive_md5": md5(archive),
            "train": [(file, md5(files[file])) for file in train], "test": [(file, md5(files[file])) for file in test]}


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_folder_and_archive(tmp_path, name):
    files, expected = cifar_pickles(name)
    folder = tmp_path / CIFAR_LAYOUT[name][0]
    folder.mkdir()
    for file, data in files.items():
        (folder / file).write_bytes(data)
    archive = write_archive(tmp_path / "cifar.tar.gz", CIFAR_LAYOUT[name][0], files)
    checksums = checksums_of(name, files, archive)
    for path, form in ((tmp_path, "cifar-python-pickles"), (folder, "cifar-python-pickles"),
                       (tmp_path / "cifar.tar.gz", "cifar-tar.gz")):
        arrays, got_form, _ = cifar.read_cifar(name, path, checksums)
        assert got_form == form
        assert arrays.keys() == expected.keys()
        for key in expected:
            np.testing.assert_array_equal(arrays[key], expected[key], err_msg=key)


def test_torchvision_checksums_are_read_from_its_classes():
    checksums = cifar.torchvision_checksums("cifar10")
    assert checksums["archive_md5"] == import_torchvision().datasets.CIFAR10.tgz_md5
    assert [file for file, _ in checksums["train"]] == [f"data_batch_{k}" for k in range(1, 6)]
    assert [file for file, _ in cifar.torchvision_checksums("cifar100")["test"]] == ["test"]


def test_the_real_md5s_reject_a_fake_with_a_clear_message(tmp_path):
    files, _ = cifar_pickles("cifar10")
    write_archive(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", files)
    with pytest.raises(DataError) as err:
        materialise("cifar10", tmp_path / "out.npz", user_path=tmp_path / "cifar-10-python.tar.gz",
                    needed_by=["split_cifar10"])
    text = str(err.value)
    assert text.startswith("cifar10 is needed by experiment 'split_cifar10' and cannot be read from")
    assert import_torchvision().datasets.CIFAR10.tgz_md5 in text and "not the official one" in text
    assert "then set data: {cifar10: PATH}" in text and "cs.toronto.edu" in text
    assert not (tmp_path / "out.npz").exists()


def test_cifar_truncated_or_missing_files(tmp_path):
    files, _ = cifar_pickles("cifar10")
    archive = write_archive(tmp_path / "a.tar.gz", "cifar-10-batches-py", files)
    checksums = checksums_of("cifar10", files, archive)
    (tmp_path / "a.tar.gz").write_bytes(archive[:-20])
    with pytest.raises(DataError, match="has md5 .* truncated, corrupt"):
        cifar.read_cifar("cifar10", tmp_path / "a.tar.gz", checksums)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for file, data in files.items():
        (folder / file).write_bytes(data[:-5] if file == "test_batch" else data)
    with pytest.raises(DataError, match="test_batch has md5"):
        cifar.read_cifar("cifar10", tmp_path, checksums)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="lacks data_batch_3"):
        cifar.read_cifar("cifar10", tmp_path, checksums)


def test_offline_cifar_without_a_path_says_where_to_get_it(tmp_path, monkeypatch):
    torchvision = import_torchvision()
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    with pytest.raises(DataError) as err:
        materialise("cifar10", tmp_path / "out.npz", download_root=tmp_path / "dl", needed_by=["a", "b"])
    assert str(err.value).startswith("cifar10 is needed by experiments 'a', 'b' and could not be downloaded")
    assert "data: {cifar10: PATH}" in str(err.value)


# --- Imagenet32: the official batches (pickle or npz) and LOP's per-class arrays ------------------------------------

def test_imagenet32_batches_keep_the_first_images_of_each_class_in_file_order(tmp_path):
    classes, per_class = 3, 4
    labels = [np.array([1, 2, 1, 3, 1, 2, 3, 1]), np.array([3, 2, 1, 2, 3, 1, 2, 3, 3])]    # 1-based, as released
    data = [RNG.integers(0, 256, (len(batch), 3072), dtype=np.uint8) for batch in labels]
    all_data, all_labels = np.concatenate(data), np.concatenate(labels) - 1
    expected = np.concatenate([all_data[all_labels == c][:per_class] for c in range(classes)])
    expected = expected.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    for form in ("pickle", "npz"):
        folder = tmp_path / form
        folder.mkdir()
        for k, (x, y) in enumerate(zip(data, labels), start=1):
            if form == "npz":
                np.savez(folder / f"train_data_batch_{k}.npz", data=x, labels=y, mean=np.zeros(3072))
            else:
                (folder / f"train_data_batch_{k}").write_bytes(pickle.dumps({"data": x, "labels": y.tolist(),
                                                                             "mean": np.zeros(3072)}))
        x, y, got_form, detail = read_imagenet32(folder, classes, per_class)
        assert got_form == "imagenet32-batches" and "first 4 images of each class" in detail
        np.testing.assert_array_equal(x, expected)
        assert y.dtype == np.int16 and y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    (tmp_path / "pickle" / "train_data_batch_2").write_bytes((tmp_path / "pickle" / "train_data_batch_2")
                                                             .read_bytes()[:-100])
    with pytest.raises(DataError, match="train_data_batch_2 is not a readable Imagenet32 batch.*truncated"):
        read_imagenet32(tmp_path / "pickle", classes, per_class)
    with pytest.raises(DataError, match="fewer than 9 images of 3 classes"):
        read_imagenet32(tmp_path / "npz", classes, 9)


@pytest.mark.parametrize("scaling", ["uint8", "float in [0, 1]", "float in [0, 255]"])
def test_imagenet32_lop_per_class_arrays(tmp_path, scaling):
    classes, per_class = 3, 5
    arrays = [RNG.integers(0, 256, (per_class, 3, 32, 32), dtype=np.uint8) for _ in range(classes)]
    folder = tmp_path / "data" / "classes"
    folder.mkdir(parents=True)
    for c, array in enumerate(arrays):
        stored = {"uint8": array, "float in [0, 1]": array / 255.0,
                  "float in [0, 255]": array.astype(np.float32)}[scaling]
        np.save(folder / f"{c}.npy", stored)
    x, y, form, _ = read_imagenet32(tmp_path / "data", classes, per_class)
    assert form == "lop-per-class-npy"
    np.testing.assert_array_equal(x, np.concatenate(arrays).transpose(0, 2, 3, 1))
    assert y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    np.save(folder / "1.npy", arrays[1][:4])
    with pytest.raises(DataError, match=r"1.npy has shape \[4, 3, 32, 32\], expected \[5, 3, 32, 32\]"):
        read_imagenet32(folder, classes, per_class)


def test_split_per_class_keeps_the_references_rows():
    """Imagenet32: of each class's 700 rows, 0-599 train and 600-699 test, as the loss-of-plasticity reference."""
    x = np.arange(1000 * 700, dtype=np.int64).reshape(-1, 1)
    y = np.repeat(np.arange(1000, dtype=np.int16), 700)
    parts = split_per_class("imagenet32", x, y)
    assert parts["x_train"].shape == (600_000, 1) and parts["x_test"].shape == (100_000, 1)
    assert parts["x_train"][600:602, 0].tolist() == [700, 701] and parts["x_test"][:2, 0].tolist() == [600, 601]
    assert parts["y_test"][100] == 1


# --- mini-ImageNet: the pickle and the folders with the split CSVs ----------------------------------------------------

def test_mini_imagenet_pickle(tmp_path):
    classes, per_class = 3, 4
    data = RNG.integers(0, 256, (classes * per_class, 84, 84, 3), dtype=np.uint8)
    labels = np.repeat([7, 2, 5], per_class)
    (tmp_path / "mini.pkl").write_bytes(pickle.dumps({"data": data, "labels": labels}))
    x, y, fields = read_mini_imagenet(tmp_path / "mini.pkl", classes, per_class)
    np.testing.assert_array_equal(x, data)
    assert y.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and fields["form"] == "mini-imagenet-pickle"
    assert "BGR" in fields["channels"]
    mixed = labels.copy()
    mixed[[3, 4]] = mixed[[4, 3]]
    (tmp_path / "mixed.pkl").write_bytes(pickle.dumps({"data": data, "labels": mixed}))
    with pytest.raises(DataError, match="not 3 contiguous blocks of 4"):
        read_mini_imagenet(tmp_path / "mixed.pkl", classes, per_class)
    (tmp_path / "cut.pkl").write_bytes((tmp_path / "mini.pkl").read_bytes()[:-1000])
    with pytest.raises(DataError, match="cut.pkl is not a readable mini-ImageNet pickle.*truncated"):
        read_mini_imagenet(tmp_path / "cut.pkl", classes, per_class)


def test_mini_imagenet_folders_and_csvs(tmp_path):
    """Three classes of two images over train/val/test CSVs; PNGs so the pixels survive exactly; one image of
    another size is resized to 84x84."""
    per_class, images = 2, {}
    (tmp_path / "images").mkdir()
    splits = {"train.csv": ["n01"], "val.csv": ["n02"], "test.csv": ["n03"]}
    for name, wnids in splits.items():
        with open(tmp_path / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["filename", "label"])
            for wnid in wnids:
                for k in range(per_class):
                    filename = f"{wnid}{k:08d}.png"
                    images[filename] = RNG.integers(0, 256, (84, 84, 3), dtype=np.uint8)
                    Image.fromarray(images[filename]).save(tmp_path / "images" / filename)
                    writer.writerow([filename, wnid])
    Image.fromarray(RNG.integers(0, 256, (100, 120, 3), dtype=np.uint8)).save(tmp_path / "images" / "n0300000001.png")
    x, y, fields = read_mini_imagenet(tmp_path, 3, per_class)
    assert fields["form"] == "mini-imagenet-folders" and fields["channels"].startswith("RGB")
    assert fields["resized"].startswith("1 images")
    for row, filename in enumerate(["n0100000000.png", "n0100000001.png", "n0200000000.png", "n0200000001.png",
                                    "n0300000000.png"]):
        np.testing.assert_array_equal(x[row], images[filename])
    assert x.shape == (6, 84, 84, 3) and y.tolist() == [0, 0, 1, 1, 2, 2]
    (tmp_path / "images" / "n0200000001.png").unlink()
    with pytest.raises(DataError, match="n0200000001.png .class n02. is in none of"):
        read_mini_imagenet(tmp_path, 3, per_class)


# --- the synthetic source and the checks at every load ---------------------------------------------------------------

@pytest.mark.parametrize("name", VISION)
def test_synthetic_source_shapes_dtypes_and_determinism(tmp_path, name):
    first = materialise(name, tmp_path / "a" / f"{name}.npz", synthetic=True)
    second = materialise(name, tmp_path / "b" / f"{name}.npz", synthetic=True)
    assert first == second and first["synthetic"] is True and first["source"] == "synthetic"
    assert (tmp_path / "a" / f"{name}.npz").read_bytes() == (tmp_path / "b" / f"{name}.npz").read_bytes()
    info = DATASETS[name]
    data = load_dataset(name, tmp_path / "a" / f"{name}.npz")
    assert {key: tuple(value.shape) for key, value in data.items()} == info.shapes(synthetic=True)
    assert all(data[key].dtype == (torch.uint8 if key.startswith("x") else torch.int64) for key in data)
    assert data["x_train"].shape[1:] == info.image
    for split, per_class in zip(("train", "test"), info.synthetic_per_class):
        assert torch.bincount(data[f"y_{split}"], minlength=info.classes).tolist() == [per_class] * info.classes
    if info.coarse_classes:
        assert (data["y_train_coarse"] == data["y_train"] % 20).all()


def test_load_stops_on_a_changed_truncated_or_unrecorded_file(tmp_path):
    path = tmp_path / "cifar10.npz"
    materialise("cifar10", path, synthetic=True)
    original = path.read_bytes()
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["x_test"][0, 0, 0, 0] ^= 1
    np.savez(path, **arrays)
    with pytest.raises(DataError, match="changed after it was materialised.*snakemake resources/cifar10.npz"):
        load_dataset("cifar10", path)
    path.write_bytes(original[:-1000])
    with pytest.raises(DataError, match="not a readable .npz file.*truncated"):
        load_dataset("cifar10", path)
    path.write_bytes(original)
    assert load_dataset("cifar10", path)["x_train"].shape == (5000, 32, 32, 3)
    provenance = json.loads((tmp_path / "cifar10.npz.source.json").read_text())
    (tmp_path / "cifar10.npz.source.json").write_text(json.dumps({**provenance, "synthetic": False}))
    with pytest.raises(DataError, match=r"x_train has shape \[5000, 32, 32, 3\].* cifar10 has \[50000, 32, 32, 3\]"):
        load_dataset("cifar10", path)     # synthetic data passed off as real: the real shapes do not match
    (tmp_path / "cifar10.npz.source.json").unlink()
    with pytest.raises(DataError, match="provenance of .* missing"):
        load_dataset("cifar10", path)


def test_arrays_not_in_the_data_sets_shapes_are_not_written(tmp_path):
    arrays = {key: np.zeros(shape, np.uint8) for key, shape in DATASETS["cifar10"].shapes(synthetic=True).items()}
    with pytest.raises(DataError, match=r"cifar10 from here has arrays of shapes \{'x_train': \[5000, 32, 32, 3\]"):
        write_dataset(tmp_path / "cifar10.npz", "cifar10", arrays, {"detail": "here", "synthetic": False})
    assert list(tmp_path.iterdir()) == []


def test_data_sets_without_a_download_stop_with_the_one_message(tmp_path):
    with pytest.raises(DataError) as err:
        materialise("imagenet32", tmp_path / "x.npz", needed_by=["continual_imagenet"])
    assert str(err.value).startswith("imagenet32 is needed by experiment 'continual_imagenet' and cannot be "
                                     "downloaded: get the 32x32 downsampled ImageNet from image-net.org")
    assert "then set data: {imagenet32: PATH}" in str(err.value)
    assert data_message("mini_imagenet", "cannot be downloaded").startswith("mini_imagenet cannot be downloaded")


# --- augmentation and normalisation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("padding_mode, interpolation, angles", [("reflect", "nearest", (0, 15)),
                                                                  ("zero", "nearest", (-15, 15)),
                                                                  ("zero", "bilinear", (0, 15)),
                                                                  ("reflect", "nearest", None)])
def test_batched_augmentation_equals_torchvision_per_image(padding_mode, interpolation, angles):
    import_torchvision()
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF
    augmentation = Augmentation(padding=4, padding_mode=padding_mode, angles=angles, interpolation=interpolation)
    images = torch.rand(64, 3, 32, 32)
    params = draw_params(generator(3, "augment"), 64, augmentation)
    assert params.flips.any() and not params.flips.all() and params.offsets.unique().numel() == 9
    reference = []
    for image, (top, left), flip, angle in zip(images, params.offsets.tolist(), params.flips, params.angles):
        image = TF.hflip(image) if flip else image
        image = TF.crop(TF.pad(image, [4], fill=0, padding_mode="reflect" if padding_mode == "reflect"
                               else "constant"), top, left, 32, 32)
        if angles is not None:
            image = TF.rotate(image, float(angle), interpolation=InterpolationMode(interpolation), fill=0)
        reference.append(image)
    assert torch.equal(apply(images, params, augmentation), torch.stack(reference))


def test_a_seeds_augmentation_does_not_depend_on_its_block():
    augmentation = Augmentation(angles=(0, 15))
    images = torch.rand(2, 8, 3, 32, 32)
    together = augmentation(images, [generator(0, "augment"), generator(1, "augment")])
    alone = augmentation(images[1:], [generator(1, "augment")])
    assert torch.equal(together[1], alone[0]) and not torch.equal(together[0], images[0])


def test_normalisation_constants_per_data_set_and_paper():
    images = to_float(torch.full((2, 32, 32, 3), 255, dtype=torch.uint8))
    assert images.shape == (2, 3, 32, 32) and images.max() == 1
    out = normalise(images, "cifar100", "dohare2024")
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([(1 - 0.5071) / 0.2673, (1 - 0.4865) / 0.2564,
                                                         (1 - 0.4409) / 0.2762]))
    with pytest.raises(ValueError, match="no normalisation constants for data set 'cifar10' in paper 'dohare2024'"):
        normalise(images, "cifar10", "dohare2024")


# --- through real snakemake ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("vision_data"))


def scale_with_data(workdir, **data) -> str:
    config = yaml.safe_load((workdir / SMOKE).read_text())
    config["data"] = {**config["data"], **data}
    path = workdir / "config/data.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


@pytest.mark.slow
def test_snakemake_stops_on_a_path_that_does_not_exist_when_the_dag_is_built(workdir):
    result = snakemake(workdir, "-n", "--cores", "1", "--configfile",
                       scale_with_data(workdir, mnist="/no/such/mnist"), check=False)
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.startswith("Configuration error:")]
    assert result.returncode != 0 and "Traceback" not in output and len(lines) == 1, output
    assert lines[0].startswith("Configuration error: mnist is needed by experiments 'pmnist_step_size'")
    assert "the path /no/such/mnist (data: {mnist: /no/such/mnist}) does not exist" in lines[0]
    assert "then set data: {mnist: PATH}" in lines[0]


@pytest.mark.slow
def test_snakemake_data_rules_stop_on_a_wrong_checksum_and_a_truncated_file(workdir, tmp_path):
    files, _ = cifar_pickles("cifar10")
    write_archive(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", files)
    data = RNG.integers(0, 256, (2, 84, 84, 3), dtype=np.uint8)
    (tmp_path / "mini.pkl").write_bytes(pickle.dumps({"data": data, "labels": [0, 0]})[:-50])
    scale = scale_with_data(workdir, cifar10=str(tmp_path / "cifar-10-python.tar.gz"),
                            mini_imagenet=str(tmp_path / "mini.pkl"))
    result = snakemake(workdir, "resources/cifar10.npz", "resources/mini_imagenet.npz", "-k", "--cores", "1",
                       "--configfile", scale, check=False)
    assert result.returncode != 0
    cifar_log = (workdir / "logs/data/cifar10.log").read_text()
    # the rule names the experiments that need the data set (the smoke scale's)
    assert "cifar10 is needed by experiments 'ngm_split_cifar10'" in cifar_log and "cannot be read from" in cifar_log
    assert "not the official one" in cifar_log
    assert import_torchvision().datasets.CIFAR10.tgz_md5 in cifar_log and "data: {cifar10: PATH}" in cifar_log
    mini_log = (workdir / "logs/data/mini_imagenet.log").read_text()
    assert "mini_imagenet is needed by experiment 'ngm_split_mini_imagenet' and cannot be read from" in mini_log
    assert "truncated" in mini_log
    assert "data: {mini_imagenet: PATH}" in mini_log and "Traceback" not in cifar_log + mini_log
    assert not (workdir / "resources/cifar10.npz").exists() and not (workdir / "resources/mini_imagenet.npz").exists()


@pytest.mark.slow
def test_snakemake_training_job_stops_on_data_changed_after_materialisation(workdir, mnist_file):
    (workdir / "resources").mkdir(exist_ok=True)
    shutil.copy(mnist_file, workdir / "resources/mnist.npz")
    shutil.copy(f"{mnist_file}.source.json", workdir / "resources/mnist.npz.source.json")
    with np.load(workdir / "resources/mnist.npz") as npz:
        arrays = dict(npz)
    arrays["x_train"][0, 0, 0] ^= 1
    np.savez(workdir / "resources/mnist.npz", **arrays)
    target = "results/runs/ngm_split_mnist/sgd/seeds0-1.parquet"
    result = snakemake(workdir, target, "--cores", "1", "--configfile", SMOKE, check=False)
    assert result.returncode != 0 and not (workdir / target).exists()
    log = (workdir / "logs/train/ngm_split_mnist/sgd/seeds0-1.log").read_text()
    assert "resources/mnist.npz has sha256" in log and "changed after it was materialised" in log, log
    assert "snakemake resources/mnist.npz" in log and "Traceback" not in log
