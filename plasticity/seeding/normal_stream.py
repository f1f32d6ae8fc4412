"""Per-seed standard normal streams fast enough to perturb every weight at every step (Shrink & Perturb).

torch.randn costs several times an online MLP's whole training step per parameter, so Shrink & Perturb's noise
was most of its run time. The samples are Box & Muller's (1958) pairs R·(cos θ, sin θ), R = √(-2 ln u1), θ uniform,
computed branch-free in float32 so that LLVM vectorises the loops (8 lanes on AVX2), and `NormalStream.add_to`
adds them to a parameter in the same pass over its memory (the README's benchmarks give the speeds: several times
the previous ziggurat's and torch.randn's).

Why Box–Muller, not a ziggurat: a ziggurat's fast path needs two table gathers a sample and a second pass to
resolve the ~0.6% of points outside their rectangles, which keeps it from vectorising well. Box–Muller has no
tables and no rejection: one ln, one square root and one sin/cos pair per two samples. numba's libm calls are
scalar, so ln, sin and cos are polynomials of our own (fitted for this module by Lawson's iteratively reweighted
least squares, i.e. near-minimax, then rounded to float32), evaluated with explicit fused multiply-adds (`_fma`,
llvm.fma: one rounding on every CPU, so the values do not depend on whether the compiler contracts); their errors
against float64 references on dense grids are at most 1.3 ulp (ln) and 1 ulp (sin, cos), see tests:
  * ln u: the exponent e and mantissa m in [√½, √2) are split with integer bitcasts (`_float_bits`, a free LLVM
    bitcast, unlike a scratch array's int32 view), ln m = f - f²/2 + f³P(f), f = m - 1 exact, P of degree 7 (no
    division: the divider is shared with the square root), plus e·ln 2 split Cody–Waite style into a part e
    multiplies exactly and a correction;
  * sin and cos on r in [0, π/4): r + r³P(r²) and 1 - r²/2 + r⁴Q(r²), three fitted coefficients each. The angle's
    octant comes from three random bits (swap cos and sin, negate either sample): the dihedral group's images of
    [0, π/4) tile the circle, so θ is uniform without a quadrant rotation.

Words: one SplitMix64 (Steele, Lea & Flood 2014) output per pair, used as a counter-based generator: the word of
pair p of a stream is the (p+1)-th output of SplitMix64 seeded with the stream's key `stream_key(seed, purpose)`,
mix(key + (p+1)·γ), a pure function of (key, p), so any sample can be computed on its own, in any order. 64-bit
multiplies are emulated on AVX2 (three 32-bit ones each, two per word: the multiplier port bounds this stage), but one word serves two samples, as many bits per sample as a 32-bit generator's word per sample
(Philox4x32-10 would take twenty 32x32-bit multiplies per 128 bits, ten per 64 against SplitMix64's six). Its high
31 bits m give u1 = m·2⁻³¹ + 2⁻³² in (0, 1] (float32), so R ≤ √(-2 ln 2⁻³²) ≈ 6.66: the samples are truncated to
|z| < 6.66, beyond which N(0, 1) has probability 2.7e-11 (those samples come out inside, R's atoms over (6, 6.66)
spaced by u1's 2⁻³¹ grid); near R = 0, float32's 2⁻²⁴ spacing of u1 below 1 makes R take the values √(2k·2⁻²⁴),
which z = R cos θ smooths out (R < 3.5e-4 has probability 6e-8). Its low 32 bits give θ: 29 for r (a grid of
π/2³¹), one to swap, two signs.

The loops are staged over L1-sized chunks (`_words`: words to u1 and the angle's bits; `_polars`: to samples;
then the add): one loop from word to sample is bound by its ~100-cycle latency (too few iterations in flight),
and a chunk padded to a multiple of 32 pairs leaves no scalar remainder loop.

A stream's order is the parameters' logical order (seed, then C-order over `shape`) on every device and layout:
element k of a seed's row, counted over all calls, is sample k of the stream (pair k // 2, its first sample for
even k). The storage is not the same everywhere (the CPU row kernels keep weights input-major, (S, in, out), with
the parameter a transposed view, plasticity/models/layers.py; elsewhere (S, out, in) contiguous), so `add_to` walks
the storage and computes each element's pair from its logical index: a contiguous parameter in row order; an
input-major weight along its storage rows, two input rows at a time, so that one word still serves both samples
of a pair (its logical neighbours). Other layouts, dtypes or devices get `next()` (generated on the CPU, then moved
and added by torch: the same numbers, the sum rounded by that device). So a stream's numbers depend only on
(seed, purpose) and the element: not on the block of seeds, the call sizes, the layout or the device, and a state
(the count of samples drawn per seed) resumes the sequence.
"""
from __future__ import annotations

import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from plasticity.seeding import stream_key

_GAMMA = np.uint64(0x9E3779B97F4A7C15)       # SplitMix64's increment

# ln: the mantissa's range [√½, √2), ln 2 as hi + lo with hi's low 8 bits zero (e·hi is exact for |e| < 2¹⁰),
# and ln(1 + f) = f - f²/2 + f³P(f) for √½ - 1 ≤ f < √2 - 1, P of degree 7.
_SQRT_HALF_BITS = np.int32(0x3F3504F3)
_ONE_BITS = np.int32(0x3F800000)
_LN2_HI, _LN2_LO = np.float32(float.fromhex("0x1.62e4p-1")), np.float32(float.fromhex("0x1.7f7d1cp-20"))
_LN_P = tuple(np.float32(float.fromhex(c)) for c in ("0x1.555554p-2", "-0x1.000226p-2", "0x1.99a008p-3",
                                                     "-0x1.547244p-3", "0x1.22da1ep-3", "-0x1.0d8542p-3",
                                                     "0x1.055b68p-3", "-0x1.38b576p-4"))
# sin r = r + r·y(s1 + s2 y + s3 y²), cos r = 1 - y/2 + y²(c2 + c3 y + c4 y²), y = r², |r| ≤ π/4
_SIN_S1 = np.float32(float.fromhex("-0x1.555546p-3"))
_SIN_S2 = np.float32(float.fromhex("0x1.110760p-7"))
_SIN_S3 = np.float32(float.fromhex("-0x1.994eb4p-13"))
_COS_C2 = np.float32(float.fromhex("0x1.55554ap-5"))
_COS_C3 = np.float32(float.fromhex("-0x1.6c0c8cp-10"))
_COS_C4 = np.float32(float.fromhex("0x1.9a025ap-16"))
_PI_4_2M29 = np.float32(np.pi / 4 * 2.0 ** -29)     # the angle's unit: r = t·this, t in [0, 2²⁹)
_ONE, _HALF, _MINUS_TWO = np.float32(1.0), np.float32(0.5), np.float32(-2.0)
_TWO_M31, _TWO_M32 = np.float32(2.0 ** -31), np.float32(2.0 ** -32)


@intrinsic
def _float_bits(typingctx, x):
    """The bits of a float32 as an int32 (a bitcast LLVM vectorises, unlike a scratch array's view)."""
    if x == types.float32:
        return types.int32(types.float32), lambda context, builder, sig, args: builder.bitcast(args[0], ir.IntType(32))
    return None


@intrinsic
def _bits_float(typingctx, x):
    """The float32 whose bits are an int32."""
    if x == types.int32:
        return types.float32(types.int32), lambda context, builder, sig, args: builder.bitcast(args[0], ir.FloatType())
    return None


@intrinsic
def _fma(typingctx, a, b, c):
    """a·b + c rounded once, on every CPU (llvm.fma: an FMA instruction where there is one)."""
    if a == b == c == types.float32:
        return types.float32(a, b, c), lambda context, builder, sig, args: builder.fma(*args)
    return None


@njit(inline="always")
def _splitmix(state):
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(inline="always")
def _ln(x):
    """ln x for a positive, finite, normal float32 x (about 1 ulp)."""
    shifted = np.int32(_float_bits(x) + (_ONE_BITS - _SQRT_HALF_BITS))   # mantissa in [√½, √2): its exponent
    exponent = np.float32(np.int32((shifted >> np.int32(23)) - np.int32(127)))
    f = _bits_float(np.int32((shifted & np.int32(0x007FFFFF)) + _SQRT_HALF_BITS)) - _ONE
    p0, p1, p2, p3, p4, p5, p6, p7 = _LN_P
    p = _fma(_fma(_fma(_fma(_fma(_fma(_fma(p7, f, p6), f, p5), f, p4), f, p3), f, p2), f, p1), f, p0)
    square = f * f
    return _fma(exponent, _LN2_HI, _fma(square * f, p, _fma(exponent, _LN2_LO, _fma(-_HALF, square, f))))


@njit(inline="always")
def _sin(r):
    """sin r for |r| ≤ π/4 (about 1 ulp)."""
    y = r * r
    return _fma(r * y, _fma(_fma(_SIN_S3, y, _SIN_S2), y, _SIN_S1), r)


@njit(inline="always")
def _cos(r):
    """cos r for |r| ≤ π/4 (about 1 ulp)."""
    y = r * r
    return _ONE - _fma(_HALF, y, -(y * y) * _fma(_fma(_COS_C4, y, _COS_C3), y, _COS_C2))


@njit(inline="always")
def _state(key, pair):
    """SplitMix64's state (seeded with `key`) whose output is the word of `pair`: the loops step it by γ."""
    return key + (pair + np.uint64(1)) * _GAMMA


@njit(inline="always")
def _uniform(word):
    """u1 in (0, 1] from the word's high 31 bits."""
    return _fma(np.float32(np.int32(word >> np.uint64(33))), _TWO_M31, _TWO_M32)


@njit(inline="always")
def _radius(u1):
    return np.sqrt(_MINUS_TWO * _ln(u1))


@njit(inline="always")
def _turn(word):
    """The angle's bits: the word's low 32 (29 for r, then swap, then the two signs)."""
    return np.int32(word & np.uint64(0xFFFFFFFF))


@njit(inline="always")
def _polar(radius, turn):
    """R·(cos θ, sin θ): r in [0, π/4) from turn's low 29 bits, then the octant from its top three (swap cos and
    sin, negate either): the dihedral group's images of [0, π/4) tile the circle."""
    r = np.float32(turn & np.int32(0x1FFFFFFF)) * _PI_4_2M29
    c, s = _cos(r), _sin(r)
    swap = (turn & np.int32(0x20000000)) != 0
    first = _float_bits(radius * (s if swap else c)) ^ (turn & np.int32(-0x80000000))
    second = _float_bits(radius * (c if swap else s)) ^ ((turn << np.int32(1)) & np.int32(-0x80000000))
    return _bits_float(np.int32(first)), _bits_float(np.int32(second))


@njit(inline="always")
def _sample(key, index):
    """Sample `index` of the stream `key` on its own (both of its pair are computed)."""
    word = _splitmix(_state(key, index >> np.uint64(1)))
    first, second = _polar(_radius(_uniform(word)), _turn(word))
    return second if index & np.uint64(1) else first


_CHUNK = 512    # pairs per chunk of the staged loops (their scratch stays in L1)
_ROUND = 32     # passes run over a multiple of this many pairs: no scalar remainder loops (their extra pairs unused)


@njit(inline="always")
def _words(state, step, count, first, turn, at):
    """Stage 1 for the pairs of the states state + j·step, j < count, into first[at + j] (u1) and turn[at + j]."""
    for j in range(count):
        word = _splitmix(state)
        state += step
        first[at + j], turn[at + j] = _uniform(word), _turn(word)


@njit(inline="always")
def _polars(count, first, second, turn):
    """Stage 2: first[j], second[j] = the pair of (u1 = first[j], turn[j]) for j < count (and for j up to a
    multiple of _ROUND, from u1 = 1: zeros, unused)."""
    padded = (count + _ROUND - 1) // _ROUND * _ROUND
    first[count:padded], turn[count:padded] = _ONE, 0
    for j in range(padded):
        first[j], second[j] = _polar(_radius(first[j]), turn[j])


@njit(inline="always")
def scratch():
    """u1, then the first sample; the second sample; the angle's bits."""
    return np.empty(_CHUNK, np.float32), np.empty(_CHUNK, np.float32), np.empty(_CHUNK, np.int32)


@njit(cache=True, nogil=True, error_model="numpy")
def stream_row(row, key, start, std, add, first, second, turn):
    """row (n,) gets samples start..start+n-1 of the stream `key` (add: row += std·z, rounded once, else row = z);
    first, second, turn: `scratch()`. Every rounding of the samples and of the sum is explicit (`_fma`), so that a
    fastmath kernel into which LLVM inlines this (contracting what it may) gets the same numbers."""
    n = row.shape[0]
    head = np.int64(start & np.uint64(1)) if n > 0 else 0       # an odd start: the second of a pair first
    if head:
        z = _sample(key, start)
        row[0] = _fma(std, z, row[0]) if add else z
    first_pair, pairs = (start + np.uint64(head)) >> np.uint64(1), (n - head) >> 1
    for done in range(0, pairs, _CHUNK):
        count = min(_CHUNK, pairs - done)
        _words(_state(key, first_pair + np.uint64(done)), _GAMMA, count, first, turn, 0)
        _polars(count, first, second, turn)
        pair_row = row[head + 2 * done:head + 2 * (done + count)]
        if add:
            for j in range(count):
                pair_row[2 * j] = _fma(std, first[j], pair_row[2 * j])
                pair_row[2 * j + 1] = _fma(std, second[j], pair_row[2 * j + 1])
        else:
            for j in range(count):
                pair_row[2 * j], pair_row[2 * j + 1] = first[j], second[j]
    if (n - head) & 1:
        z = _sample(key, start + np.uint64(n - 1))
        row[n - 1] = _fma(std, z, row[n - 1]) if add else z


@njit(cache=True, nogil=True, error_model="numpy")
def add_to_input_major_block(block, key, start, std, first, second, turn):
    """block (I, O) holds logical rows (O, I): element (o, i) += std · sample start + o·I + i of the stream `key`;
    rounded once; first, second, turn: `scratch()` (explicit roundings, as in `stream_row`)."""
    width, height = block.shape[0], block.shape[1]      # I (the logical row length), O
    if start & np.uint64(1) == 0 and width % 2 == 0:    # pairs (o, 2h), (o, 2h + 1): two storage rows
        half, columns = width >> 1, min(height, _CHUNK)
        rows = max(1, _CHUNK // columns)                # pair rows h per chunk
        for h0 in range(0, half, rows):
            for done in range(0, height, columns):
                count, k = min(columns, height - done), min(rows, half - h0)
                for dh in range(k):     # pair (o, h) is pair (o + 1, h) - half
                    pair = (start >> np.uint64(1)) + np.uint64(h0 + dh) + np.uint64(done) * np.uint64(half)
                    _words(_state(key, pair), np.uint64(half) * _GAMMA, count, first, turn, dh * count)
                _polars(k * count, first, second, turn)
                for dh in range(k):
                    first_row = block[2 * (h0 + dh), done:done + count]
                    second_row = block[2 * (h0 + dh) + 1, done:done + count]
                    for j in range(count):
                        first_row[j] = _fma(std, first[dh * count + j], first_row[j])
                        second_row[j] = _fma(std, second[dh * count + j], second_row[j])
    else:
        for i in range(width):
            for o in range(height):
                block[i, o] = _fma(std, _sample(key, start + np.uint64(o * width + i)), block[i, o])


@njit(cache=True, error_model="numpy")
def _rows(out, keys, counters, std, add):
    """Row s of out (S, n) gets the next n samples of stream s (add: out += std·z, else out = z); advances the
    counters."""
    first, second, turn = scratch()
    for s in range(out.shape[0]):
        stream_row(out[s], keys[s], counters[s], std, add, first, second, turn)
        counters[s] += np.uint64(out.shape[1])


@njit(cache=True, error_model="numpy")
def _add_to_input_major(storage, keys, counters, std):
    """storage (S, I, O) holds logical rows (O, I): element (o, i) of seed s += std · its next sample o·I + i."""
    first, second, turn = scratch()
    for s in range(storage.shape[0]):
        add_to_input_major_block(storage[s], keys[s], counters[s], std, first, second, turn)
        counters[s] += np.uint64(storage.shape[1] * storage.shape[2])


class NormalStream:
    """Samples of `shape` from N(0, 1), one per seed per call, each seed from its own stream (seed, purpose)."""

    def __init__(self, seeds: list[int], purpose: str, shape: tuple[int, ...], device: str | torch.device = "cpu"):
        self.shape, self.device = tuple(shape), torch.device(device)
        self.keys = np.array([stream_key(seed, purpose) for seed in seeds], dtype=np.uint64)
        self.counters = np.zeros(len(seeds), np.uint64)     # samples drawn per seed
        self.buffer = torch.empty(len(seeds), *self.shape)

    def next(self) -> torch.Tensor:
        """The next sample for every seed, shape (S, *shape): on the CPU a buffer that the next call overwrites."""
        _rows(self.buffer.view(len(self.keys), -1).numpy(), self.keys, self.counters, np.float32(1.0), False)
        return self.buffer if self.device.type == "cpu" else self.buffer.to(self.device)

    @torch.no_grad()
    def add_to(self, param: torch.Tensor, std: float) -> None:
        """param += std · next(), in one pass over a CPU float32 parameter's memory (contiguous, or the transposed
        view of an input-major weight); any other parameter gets next()'s samples added by torch."""
        if param.shape != (len(self.keys), *self.shape):
            raise ValueError(f"parameter of shape {tuple(param.shape)} for a stream of {len(self.keys)} x {self.shape}")
        if param.device.type == "cpu" and param.dtype == torch.float32:
            if param.is_contiguous():
                _rows(param.detach().view(len(self.keys), -1).numpy(), self.keys, self.counters, np.float32(std),
                      True)
                return
            if param.dim() == 3 and param.transpose(1, 2).is_contiguous():
                _add_to_input_major(param.detach().transpose(1, 2).numpy(), self.keys, self.counters,
                                    np.float32(std))
                return
        param.add_(self.next().to(param.device), alpha=std)

    def state_dict(self) -> dict:
        return {"generator": "splitmix64-box-muller", "counters": self.counters.tolist()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("generator") != "splitmix64-box-muller":
            raise ValueError("the checkpoint's noise streams come from another generator (the ziggurat's: "
                             "'tail_counters'); its run cannot be resumed with these streams")
        self.counters = np.array(state["counters"], dtype=np.uint64)
