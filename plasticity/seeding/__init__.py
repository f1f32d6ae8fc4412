"""Per-seed random streams: a seed's numbers never depend on which block of seeds it was trained in.

Every random draw of a training job (initialisation, data, CBP's replacements) comes from a generator keyed by
(seed, purpose), drawn on the CPU in fixed-size chunks, so the values are identical whatever the block size, the
other seeds, or the device the job runs on. Shrink & Perturb's noise comes from counter-based streams under the
same keys (plasticity/seeding/normal_stream.py).
"""
from __future__ import annotations

import hashlib

import torch


def stream_key(seed: int, purpose: str) -> int:
    """A 64-bit key for one seed and one purpose (independent streams for init, data, noise, ...)."""
    digest = hashlib.sha256(f"plasticity:{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def generator(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator for one seed and one purpose."""
    return torch.Generator().manual_seed(stream_key(seed, purpose) >> 1)


def generators(seeds: list[int], purpose: str) -> list[torch.Generator]:
    return [generator(seed, purpose) for seed in seeds]


class ChunkedStream:
    """Draws `shape`-sized uniform samples per seed from per-seed generators, `chunk` samples at a time.

    Drawing one sample per call per seed costs a Python call per seed per step; drawing chunks amortises it.
    The chunk length is fixed by the caller (never by the number of seeds), so values are block-invariant.
    """

    def __init__(self, gens: list[torch.Generator], shape: tuple[int, ...], chunk: int = 1024,
                 device: str | torch.device = "cpu"):
        self.gens, self.shape, self.chunk = gens, tuple(shape), chunk
        self.device = torch.device(device)
        self.buffer, self.position = None, chunk

    def _refill(self):
        if self.device.type != "cpu":
            self.buffer = torch.stack([torch.rand((self.chunk, *self.shape), generator=g) for g in self.gens]).to(self.device)
        else:       # drawn straight into the buffer (the same values as a fresh draw): no copy of the chunk
            if self.buffer is None:
                self.buffer = torch.empty(len(self.gens), self.chunk, *self.shape)
            for g, rows in zip(self.gens, self.buffer):
                torch.rand((self.chunk, *self.shape), generator=g, out=rows)
        self.position = 0

    def next(self) -> torch.Tensor:
        """The next sample for every seed: shape (S, *shape), a view that the next refill overwrites (on the
        CPU), so use it within the step."""
        if self.position == self.chunk:
            self._refill()
        sample = self.buffer[:, self.position]
        self.position += 1
        return sample

    def before_refill(self) -> int:
        """How many samples the buffer still holds: the next call after them draws a new chunk (0: this one)."""
        return self.chunk - self.position

    def take(self, count: int) -> torch.Tensor:
        """The next `count` samples for every seed, (S, count, *shape): what `count` calls of `next()` return."""
        parts = []
        while count:
            if self.position == self.chunk:
                self._refill()
            part = min(count, self.chunk - self.position)
            parts.append(self.buffer[:, self.position:self.position + part].clone())
            self.position += part
            count -= part
        return torch.cat(parts, dim=1)

    def state_dict(self) -> dict:
        buffer = None if self.buffer is None else self.buffer.clone()      # the live one is refilled in place
        return {"gens": [g.get_state() for g in self.gens], "buffer": buffer, "position": self.position}

    def load_state_dict(self, state: dict):
        """Restore `state_dict()`'s state, also one saved on another device (the generators stay on the CPU)."""
        for g, s in zip(self.gens, state["gens"]):
            g.set_state(s)
        buffer = state["buffer"]
        self.buffer = None if buffer is None else buffer.to(self.device, copy=True)
        self.position = state["position"]
