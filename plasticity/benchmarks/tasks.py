"""Benchmarks of the tasks protocol (plasticity/engine/tasks.py): a sequence of tasks, each a labelled training set
trained for several epochs, a test set and, where the benchmark has one, a validation set.

A subclass sets `num_tasks` and implements `task(t)` (the splits of task t, for every seed) and `train_examples(t)`.
Data are a pure function of the seed and the task (every random choice from the seed's own
generators, `plasticity.seeding`), so a benchmark has no stream state to save: `task(t)` rebuilds task t's data, on
the device, whenever the protocol asks. Training-time augmentation, if any, is the subclass's `augment`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from plasticity.seeding import generators


@dataclass
class Split:
    inputs: torch.Tensor      # (S, n, *input_shape), float, on the device
    targets: torch.Tensor     # (S, n) class indices


@dataclass
class Task:
    train: Split
    test: Split
    validation: Split | None
    seen_classes: torch.Tensor    # (out,) bool: the output units trained so far (logits of the others are masked)


class TaskBenchmark:
    protocol = "tasks"
    dataset: str | None = None
    num_tasks: int
    out_features: int
    input_shape: tuple[int, ...]
    def __init__(self, seeds: list[int], device: torch.device):
        self.seeds, self.device = seeds, torch.device(device)
        self.gens = generators(seeds, "data")

    @classmethod
    def shapes(cls, **args) -> tuple[tuple[int, ...], int]:
        """As `plasticity.benchmarks.Benchmark.shapes`."""
        return tuple(cls.input_shape), cls.out_features

    def task(self, task: int) -> Task:
        raise NotImplementedError

    def train_examples(self, task: int) -> int:
        """The size of a task's training set, known without building it (the protocol plans its steps)."""
        raise NotImplementedError

    @classmethod
    def planned_train_examples(cls, **args) -> list[int]:
        """Each task's training-set size from the benchmark's arguments alone, before any data is read: the
        workflow's estimate of a job's steps (exact where the sizes are arguments, the data's usual size
        otherwise)."""
        raise NotImplementedError

    def augment(self, inputs: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
        """Training-time augmentation of a batch (S, B, ...), from the seeds' own generators: none by default."""
        return inputs

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore: task data are rebuilt from the seeds."""
