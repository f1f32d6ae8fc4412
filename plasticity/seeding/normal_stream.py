"""Per-seed standard normal streams fast enough to perturb every weight at every step (Shrink & Perturb).

torch.randn costs several times an online MLP's whole training step per parameter, so Shrink & Perturb's noise
was most of its run time. This draws N(0, 1) with Marsaglia & Tsang's ziggurat (2000; 256 layers) from SplitMix64
(Steele et al. 2014) used as a counter-based generator: the k-th 64-bit word of a stream is a pure function of the
stream's key and k, so the loop over a chunk's words vectorises. The low 8 bits of a word pick the layer and its
high 32 bits the point (separate bits, unlike the original RNOR, whose layer and point shared bits). About 0.6% of
points fall outside their layer's rectangle; they are resolved exactly (wedge test, or Marsaglia's tail
algorithm for the base layer) from a second, sequential stream of the same key, so the values are exactly
Gaussian-distributed, and a stream's numbers depend only on (seed, purpose): not on the block of seeds, the
chunk length or the device the parameters live on.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

from plasticity.seeding import stream_key

_GAMMA = np.uint64(0x9E3779B97F4A7C15)       # SplitMix64's increment
_TAIL_KEY = np.uint64(0xD1B54A32D192ED03)    # the rejection stream's key is the stream key xor this
_LAYERS = 256
_TAIL_START = 3.6541528853610088             # r: where the base layer's Gaussian tail begins
_LAYER_AREA = 4.92867323399e-3               # v: the area of each layer


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marsaglia & Tsang's tables for 32-bit signed points: acceptance bounds `k`, widths `w`, densities `f`."""
    scale = 2.0 ** 31
    k, w, f = np.zeros(_LAYERS, np.int64), np.zeros(_LAYERS), np.zeros(_LAYERS)
    edge = previous = _TAIL_START
    q = _LAYER_AREA / math.exp(-0.5 * edge * edge)
    k[0], k[1] = int(edge / q * scale), 0
    w[0], w[-1] = q / scale, edge / scale
    f[0], f[-1] = 1.0, math.exp(-0.5 * edge * edge)
    for i in range(_LAYERS - 2, 0, -1):
        edge = math.sqrt(-2.0 * math.log(_LAYER_AREA / edge + math.exp(-0.5 * edge * edge)))
        k[i + 1] = int(edge / previous * scale)
        previous = edge
        f[i] = math.exp(-0.5 * edge * edge)
        w[i] = edge / scale
    return k, w, f


_K, _W, _F = _ziggurat_tables()
# The fast path in float32 (half the table traffic): a point is inside its layer's rectangle iff |x| < x_{i-1},
# the layer's inner edge. The few points whose float32 test errs at that edge go to the exact path, which accepts
# an inside point.
_W32, _INNER32 = _W.astype(np.float32), (_K * _W).astype(np.float32)


@njit(inline="always")
def _splitmix(state):
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(inline="always")
def _layer_and_point(word):
    return np.int64(word & np.uint64(_LAYERS - 1)), np.int64(np.int32(np.uint32(word >> np.uint64(32))))


@njit(inline="always")
def _uniform(key, counter):
    """A uniform in (0, 1) from word `counter` of the stream `key`."""
    return ((_splitmix(key + counter * _GAMMA) >> np.uint64(11)) + 0.5) * 2.0 ** -53


@njit(cache=True)
def _resolve(layer, point, key, counter):
    """The exact sample for a point outside its layer's rectangle; returns it and the advanced counter."""
    while True:
        x = point * _W[layer]
        if layer == 0:      # the tail beyond r (Marsaglia 1964)
            while True:
                tail = -math.log(_uniform(key, counter)) / _TAIL_START
                y = -math.log(_uniform(key, counter + np.uint64(1)))
                counter += np.uint64(2)
                if y + y >= tail * tail:
                    break
            return (_TAIL_START + tail if point > 0 else -_TAIL_START - tail), counter
        u = _uniform(key, counter)
        counter += np.uint64(1)
        if _F[layer] + u * (_F[layer - 1] - _F[layer]) < math.exp(-0.5 * x * x):
            return x, counter
        layer, point = _layer_and_point(_splitmix(key + counter * _GAMMA))
        counter += np.uint64(1)
        if abs(point) < _K[layer]:
            return point * _W[layer], counter


@njit(cache=True)
def _fill(out, keys, counters, tail_counters):
    """out[s] = the next out.shape[1] normals of stream s; advances the counters in place."""
    for s in range(out.shape[0]):
        key, start = keys[s], counters[s]
        row = out[s]
        # Fast path, branch-free so that it vectorises: NaN marks a point outside its rectangle.
        for j in range(row.shape[0]):
            layer, point = _layer_and_point(_splitmix(key + (start + np.uint64(j)) * _GAMMA))
            x = np.float32(point) * _W32[layer]
            row[j] = x if abs(x) < _INNER32[layer] else np.float32(np.nan)
        tail_key, tail_counter = key ^ _TAIL_KEY, tail_counters[s]
        for j in range(row.shape[0]):
            if np.isnan(row[j]):
                layer, point = _layer_and_point(_splitmix(key + (start + np.uint64(j)) * _GAMMA))
                row[j], tail_counter = _resolve(layer, point, tail_key, tail_counter)
        counters[s] = start + np.uint64(row.shape[0])
        tail_counters[s] = tail_counter


class NormalStream:
    """Samples of `shape` from N(0, 1), one per seed per call, each seed from its own stream (seed, purpose)."""

    def __init__(self, seeds: list[int], purpose: str, shape: tuple[int, ...], device: str | torch.device = "cpu"):
        self.shape, self.device = tuple(shape), torch.device(device)
        self.keys = np.array([stream_key(seed, purpose) for seed in seeds], dtype=np.uint64)
        self.counters = np.zeros(len(seeds), np.uint64)
        self.tail_counters = np.zeros(len(seeds), np.uint64)
        self.buffer = torch.empty(len(seeds), *self.shape)

    def next(self) -> torch.Tensor:
        """The next sample for every seed, shape (S, *shape): on the CPU a buffer that the next call overwrites."""
        _fill(self.buffer.view(len(self.keys), -1).numpy(), self.keys, self.counters, self.tail_counters)
        return self.buffer if self.device.type == "cpu" else self.buffer.to(self.device)

    def state_dict(self) -> dict:
        return {"counters": self.counters.tolist(), "tail_counters": self.tail_counters.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.counters = np.array(state["counters"], dtype=np.uint64)
        self.tail_counters = np.array(state["tail_counters"], dtype=np.uint64)
