"""Benchmarks of the joint-training protocol (the stability-gap paper): a sequence of tasks over MNIST (here) or
over colour images (`plasticity.benchmarks.image_contexts`, which reuses the sampler and the evaluation sets).

A task is a set of MNIST images (by index) seen through a pixel map: the identity (Split MNIST), a rotation
(Rotated MNIST) or a permutation (Permuted MNIST). Context k of the protocol trains on the union of tasks 1..k:
every batch is drawn uniformly, with replacement, from all training examples of the tasks seen so far, one
independent stream per seed. Evaluation uses each task's test images through the same pixel map, either all of
them or a fixed random subset per task and seed.

Pixel maps are index maps into the flattened image with one extra, always-black pixel (index 784), so a
rotation's corners outside the source image are black, as torchvision's rotate fills them. Images are scaled to
[0, 1] and standardised with MNIST's mean 0.1307 and std 0.3081, as the reference's transforms do.

Subclasses set `tasks` (a list of `Task`) in `__init__`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from plasticity.config import ConfigError
from plasticity.data.mnist import load_mnist
from plasticity.seeding import generator, generators

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
PIXELS = 784
BLACK = PIXELS  # index of the padding pixel


@dataclass
class Task:
    name: str
    train_indices: torch.Tensor   # (n,) indices of the MNIST training images
    test_indices: torch.Tensor    # (m,) indices of the MNIST test images
    # (S, 784) long: output pixel p reads input pixel pixel_map[s, p] (784 = black); None for image tasks, which
    # show the images as they are
    pixel_map: torch.Tensor | None = None


def identity_map(num_seeds: int) -> torch.Tensor:
    return torch.arange(PIXELS).expand(num_seeds, PIXELS).clone()


def rotation_map(degrees: float, side: int = 28) -> torch.Tensor:
    """(784,) nearest-neighbour index map rotating a side×side image counter-clockwise by `degrees` about its
    centre (as PIL/torchvision `rotate` does, without expanding); pixels from outside the image are black."""
    theta = math.radians(degrees)
    rows, cols = torch.meshgrid(torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64),
                                indexing="ij")
    dx, dy = cols + 0.5 - side / 2, rows + 0.5 - side / 2        # output pixel centres, y pointing down
    source_x = math.cos(theta) * dx - math.sin(theta) * dy + side / 2
    source_y = math.sin(theta) * dx + math.cos(theta) * dy + side / 2
    col, row = source_x.floor().long(), source_y.floor().long()
    inside = (col >= 0) & (col < side) & (row >= 0) & (row < side)
    return torch.where(inside, row * side + col, BLACK).flatten()


class ContextBenchmark:
    """Tasks over MNIST for S seeds, with the joint sampler and the evaluation sets (see the module docstring)."""

    dataset = "mnist"

    protocol = "joint"
    in_features = PIXELS
    out_features = 10
    tasks: list[Task]

    @classmethod
    def shapes(cls, **args) -> tuple[tuple[int, ...], int]:
        """As `plasticity.benchmarks.Benchmark.shapes`."""
        return (cls.in_features,), cls.out_features

    # The evaluator may skip black input pixels (MNIST's first layer on the CPU, plasticity.engine.evaluation), and
    # evaluates this many test samples per forward (None: all at once, as the MLP affords).
    sparse_inputs = True
    evaluation_chunk: int | None = None

    def __init__(self, seeds: list[int], device: torch.device, data_path=None):
        self.seeds, self.device = seeds, torch.device(device)
        self.images, self.labels = self.load(data_path)
        self.gens = generators(seeds, "data")
        self.context = -1

    def load(self, path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """({split: images}, {split: labels}) of the data set at `path`: MNIST, each image flattened with the
        extra black pixel."""
        if path is None:
            raise ConfigError(f"{type(self).__name__} needs MNIST: pass --data resources/mnist.npz "
                              "(made by `snakemake resources/mnist.npz` or `plasticity data mnist`)")
        data = load_mnist(path)
        images = {split: torch.cat([data[f"x_{split}"].reshape(-1, PIXELS),
                                    torch.zeros(len(data[f"x_{split}"]), 1, dtype=torch.uint8)], dim=1)
                  for split in ("train", "test")}
        return images, {split: data[f"y_{split}"] for split in ("train", "test")}

    @property
    def num_contexts(self) -> int:
        return len(self.tasks)

    def labels_in(self, split: str, classes) -> torch.Tensor:
        return torch.nonzero(torch.isin(self.labels[split], torch.as_tensor(classes))).flatten()

    def standardise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels -> the network's float32 inputs, on the device."""
        return pixels.to(self.device, torch.float32).div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)

    def inputs(self, split: str, examples: torch.Tensor, tasks: torch.Tensor | int) -> torch.Tensor:
        """Standardised inputs (S, n, 784) of images `examples` (S, n) seen through the pixel maps of their
        tasks (S, n), or of one task for all."""
        if isinstance(tasks, int):
            maps = self.tasks[tasks].pixel_map.unsqueeze(1).expand(*examples.shape, PIXELS)
        else:
            seed_index = torch.arange(len(self.seeds)).unsqueeze(1).expand_as(examples)
            maps = torch.stack([task.pixel_map for task in self.tasks])[tasks, seed_index]
        return self.standardise(torch.gather(self.images[split][examples], 2, maps))    # from (S, n, 784) uint8

    # --- the joint sampler --------------------------------------------------------------------------------------

    def start_context(self, context: int) -> None:
        """From now on, batches come from the union of the training data of tasks 0..context."""
        if not 0 <= context < self.num_contexts:
            raise ValueError(f"context {context} out of range; this benchmark has {self.num_contexts}")
        self.context = context
        seen = self.tasks[:context + 1]
        self._pool_examples = torch.cat([task.train_indices for task in seen])
        self._pool_tasks = torch.cat([torch.full((len(task.train_indices),), index)
                                      for index, task in enumerate(seen)])

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(examples, tasks), each (S, batch): uniform with replacement over the seen tasks' training examples."""
        if self.context < 0:
            raise RuntimeError("call start_context before drawing batches")
        draws = torch.stack([torch.randint(len(self._pool_examples), (batch_size,), generator=g)
                             for g in self.gens])
        return self._pool_examples[draws], self._pool_tasks[draws]

    def next_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (S, B, 784) and labels (S, B) of the next training batch."""
        examples, tasks = self.sample(batch_size)
        return self.inputs("train", examples, tasks), self.labels["train"][examples].to(self.device)

    def state_dict(self) -> dict:
        return {"context": self.context, "gens": [g.get_state() for g in self.gens]}

    def load_state_dict(self, state: dict) -> None:
        for g, saved in zip(self.gens, state["gens"]):
            g.set_state(saved)
        if state["context"] >= 0:
            self.start_context(state["context"])

    # --- evaluation sets ----------------------------------------------------------------------------------------

    def test_examples(self, task: int, samples: int | None) -> torch.Tensor:
        """(S, m) test-image indices of `task`: all of them (samples None), or a fixed random subset of `samples`
        per seed, drawn from the seed's own stream for that task (so it does not depend on the seed block)."""
        indices = self.tasks[task].test_indices
        if samples is None:
            return indices.expand(len(self.seeds), -1)
        if samples > len(indices):
            raise ConfigError(f"evaluation samples_per_task {samples} exceeds the {len(indices)} test images of "
                              f"task {task + 1} ({self.tasks[task].name})")
        return torch.stack([indices[torch.randperm(len(indices), generator=generator(seed, f"eval:{task}"))[:samples]]
                            for seed in self.seeds])
