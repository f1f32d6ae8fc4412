"""Continual-learning benchmarks, one file each, registered by name.

A benchmark is a seeded stream of examples for S seeds at once: `next_batch(B)` returns inputs (S, B, in) and
targets, and `peek(n)` the next n inputs without consuming them (the probe batch at a task start is the task's
first examples). Subclasses implement `_generate(n)`; the base class buffers in fixed-size chunks so that every
seed's stream depends on its seed alone.

Checkpoints: `state_dict()` says where the stream is without saving buffered examples (a chunk of MNIST is tens of
MB per seed): the state of the stream before the chunk that holds the next example, and how many examples were
consumed; `load_state_dict` regenerates that chunk. For this a subclass draws every random number from the per-seed
generators `self.gens` and names in `stream_attributes` every other attribute `_generate` changes.
"""
from __future__ import annotations

import copy
import importlib
import pkgutil

import torch

from plasticity.config import ConfigError, check_arguments
from plasticity.seeding import generators

BENCHMARKS: dict[str, type["Benchmark"]] = {}


def register(name: str):
    def decorate(cls):
        BENCHMARKS[name] = cls
        return cls
    return decorate


class Benchmark:
    dataset: str | None = None          # the data set it reads (materialised by the workflow's data rules)
    in_features: int
    out_features: int
    examples_per_task: int | None = None
    chunk: int = 10_000
    stream_attributes: tuple[str, ...] = ()   # attributes `_generate` changes, besides the generators self.gens

    @classmethod
    def shapes(cls, **args) -> tuple[tuple[int, ...], int]:
        """(shape of one example's input, number of outputs) for these benchmark arguments, known without building
        the benchmark: the model is built for them, and checked against them before any job runs."""
        return (cls.in_features,), cls.out_features

    def __init__(self, seeds: list[int], device: torch.device):
        self.seeds, self.device = seeds, device
        self.gens = generators(seeds, "data")
        self._inputs: torch.Tensor | None = None     # generated examples; those before _position are consumed
        self._targets: torch.Tensor | None = None
        self._position = 0
        self._buffer_start = 0                       # index in the stream of the buffer's first example
        self._chunk_origins: list[tuple[int, dict]] = []   # (stream index, stream state before) of buffered chunks

    def _generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _segments(self, n: int, period: int):
        """Split the next n examples of the stream at multiples of `period` (a task, an epoch): yield (start, stop,
        offset within the period) of each piece and advance `self.position`, the examples generated so far."""
        start = 0
        while start < n:
            within = self.position % period
            stop = min(n, start + period - within)
            yield start, stop, within
            self.position += stop - start
            start = stop

    def _fill(self, n: int) -> None:
        """Make sure at least n unconsumed examples are buffered."""
        if self._inputs is not None and self._inputs.shape[1] - self._position >= n:
            return
        consumed = self._buffer_start + self._position
        parts = [] if self._inputs is None else [(self._inputs[:, self._position:], self._targets[:, self._position:])]
        available = sum(part[0].shape[1] for part in parts)
        while available < n:
            self._chunk_origins.append((consumed + available, self._stream_state()))
            inputs, targets = self._generate(self.chunk)
            parts.append((inputs.to(self.device), targets.to(self.device)))
            available += self.chunk
        self._chunk_origins = [origin for origin in self._chunk_origins if origin[0] + self.chunk > consumed]
        self._inputs = torch.cat([part[0] for part in parts], dim=1)
        self._targets = torch.cat([part[1] for part in parts], dim=1)
        self._position, self._buffer_start = 0, consumed

    def _stream_state(self) -> dict:
        return {"gens": [g.get_state() for g in self.gens],
                **{name: copy.deepcopy(getattr(self, name)) for name in self.stream_attributes}}

    def _load_stream_state(self, state: dict) -> None:
        for g, saved in zip(self.gens, state["gens"]):
            g.set_state(saved)
        for name in self.stream_attributes:
            setattr(self, name, copy.deepcopy(state[name]))

    def state_dict(self) -> dict:
        """Where the stream is (see the module docstring): small, whatever the chunk size."""
        consumed = self._buffer_start + self._position
        holding = [origin for origin in self._chunk_origins if origin[0] <= consumed < origin[0] + self.chunk]
        start, stream = holding[-1] if holding else (consumed, self._stream_state())
        return {"start": start, "stream": stream, "consumed": consumed}

    def load_state_dict(self, state: dict) -> None:
        """Continue the stream exactly where `state` was taken, regenerating the chunk that holds the next example."""
        self._load_stream_state(state["stream"])
        self._inputs = self._targets = None
        self._chunk_origins, self._position, self._buffer_start = [], 0, state["start"]
        if state["consumed"] > state["start"]:
            self.next_batch(state["consumed"] - state["start"])

    def next_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        self._fill(batch_size)
        start, self._position = self._position, self._position + batch_size
        return self._inputs[:, start:self._position], self._targets[:, start:self._position]

    def peek(self, n: int) -> torch.Tensor:
        self._fill(n)
        return self._inputs[:, self._position:self._position + n]


def benchmark_shapes(name: str, args: dict) -> tuple[tuple[int, ...], int]:
    check_benchmark_arguments(name, args)
    return BENCHMARKS[name].shapes(**args)


def build_benchmark(name: str, args: dict, seeds: list[int], device: torch.device, data_path=None) -> Benchmark:
    check_benchmark_arguments(name, args)
    return BENCHMARKS[name](seeds, device, data_path=data_path, **args)


def check_benchmark_arguments(name: str, args: dict) -> None:
    """ConfigError unless `name` is a registered benchmark taking exactly these arguments (or defaults)."""
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; valid: {sorted(BENCHMARKS)}")
    check_arguments(f"argument(s) of benchmark {name!r}", BENCHMARKS[name], args, ("seeds", "device", "data_path"))


# Register every module of this package: adding a file needs no edit here (so no rerun of other jobs).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
