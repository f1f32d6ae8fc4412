"""Shrink & Perturb's Gaussian streams: SplitMix64 words, the ln/sin/cos polynomials, the distribution (its tail
too), the independence of a pair's samples, and that a stream's values depend neither on the block of seeds, the
call sizes, a save and restore, nor the parameter's layout (`add_to` against `next()`)."""
import math

import numpy as np
import pytest
import torch
from numba import njit

from plasticity.seeding.normal_stream import NormalStream, _cos, _ln, _sin, _splitmix, _state

MAX_RADIUS = math.sqrt(-2 * math.log(2.0 ** -32))      # u1 >= 2^-32


def test_words_are_splitmix64s_outputs():
    # SplitMix64 seeded with 0 (Steele et al.; Vigna's splitmix64.c): state += gamma, then the output mix.
    words = [int(_splitmix(np.uint64(_state(np.uint64(0), np.uint64(pair))))) for pair in (0, 1, 2)]
    assert words == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def _elementwise(function):
    @njit
    def apply(x):
        out = np.empty_like(x)
        for j in range(x.size):
            out[j] = function(x[j])
        return out
    return apply


def _max_ulps(got: np.ndarray, exact: np.ndarray) -> float:
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return float(np.max(np.abs(got.astype(np.float64) - exact) / ulp))


def test_the_polynomials_are_within_about_an_ulp_of_ln_sin_and_cos():
    # ln over (0, 1]: a dense grid, the smallest u1 (multiples of 2^-32) and the float32s just below 1
    u = np.concatenate([np.linspace(2.0 ** -32, 1, 2_000_001), np.arange(1, 20_000) * 2.0 ** -32,
                        1 - np.arange(1, 20_000) * 2.0 ** -24]).astype(np.float32)
    ln = _elementwise(_ln)(u)
    exact = np.log(u.astype(np.float64))
    assert ln[u == 1].tolist() == [0.0]
    assert _max_ulps(ln[u < 1], exact[u < 1]) <= 1.5
    r = np.linspace(0, math.pi / 4, 2_000_001).astype(np.float32)
    sin, cos = _elementwise(_sin)(r), _elementwise(_cos)(r)
    assert _max_ulps(sin[1:], np.sin(r[1:].astype(np.float64))) <= 1.0
    assert _max_ulps(cos, np.cos(r.astype(np.float64))) <= 1.0
    # and against math's, on a sample
    for k in range(0, r.size, 99_991):
        assert abs(float(sin[k]) - math.sin(float(r[k]))) <= 1.0 * np.spacing(np.float32(math.sin(float(r[k])))) \
            or k == 0
        assert abs(float(cos[k]) - math.cos(float(r[k]))) <= 1.0 * np.spacing(np.float32(math.cos(float(r[k]))))
    for k in range(0, u.size, 99_991):
        if u[k] < 1:
            exact_ln = math.log(float(u[k]))
            assert abs(float(ln[k]) - exact_ln) <= 1.5 * np.spacing(np.float32(abs(exact_ln)))


def test_samples_are_standard_normal_in_the_body_and_the_tail():
    n = 2_000_000
    x = NormalStream([0], "test", (n,)).next()[0].double()
    assert abs(x.mean()) < 5 / math.sqrt(n) and abs(x.std() - 1) < 5 / math.sqrt(2 * n)
    ordered = x.sort().values
    empirical = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    assert (torch.special.ndtr(ordered) - empirical).abs().max() < 1.63 / math.sqrt(n)     # KS test at 1%
    # the tail, on 48M samples: |z| beyond 3, 4 and 5 as often as N(0, 1), and nothing beyond the truncation
    stream, chunks = NormalStream([1], "tail", (4_000_000,)), 12
    beyond, largest = torch.zeros(3, dtype=torch.float64), 0.0
    for _ in range(chunks):
        z = stream.next()[0].abs()
        beyond += torch.stack([(z > t).sum() for t in (3.0, 4.0, 5.0)]).double()
        largest = max(largest, z.max().item())
    total = chunks * 4_000_000
    for count, t in zip(beyond.tolist(), (3, 4, 5)):
        expected = total * math.erfc(t / math.sqrt(2))
        assert abs(count - expected) < 5 * math.sqrt(expected), (t, count, expected)
    assert 5.0 < largest < MAX_RADIUS


def test_a_pairs_samples_and_consecutive_calls_are_uncorrelated():
    n = 1_000_000
    stream = NormalStream([2], "pairs", (n,))
    x = stream.next()[0].double().clone()
    y = stream.next()[0].double()
    bound = 5 / math.sqrt(n / 2)

    def correlation(a, b):
        return torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    assert abs(correlation(x[0::2], x[1::2])) < bound
    assert abs(correlation(x[0::2] ** 2, x[1::2] ** 2)) < bound       # R and θ independent too
    assert abs(correlation(x, y)) < 5 / math.sqrt(n)
    assert abs(correlation(x[:-1], x[1:])) < 5 / math.sqrt(n)


def test_a_seeds_values_depend_only_on_the_seed_and_purpose():
    alone = NormalStream([3], "p", (5, 7))
    block = NormalStream([1, 3], "p", (5, 7))
    other_purpose = NormalStream([3], "q", (5, 7))
    for _ in range(3):
        mine, theirs = alone.next().clone(), block.next().clone()
        assert torch.equal(mine[0], theirs[1]) and not torch.equal(theirs[0], theirs[1])
        assert not torch.equal(other_purpose.next()[0], mine[0])


def test_two_draws_are_one_draw_twice_as_long_and_resume_from_their_state():
    short, long = NormalStream([0, 1], "p", (50_000,)), NormalStream([0, 1], "p", (100_000,))
    first = short.next().clone()
    saved = short.state_dict()
    second = short.next().clone()
    assert torch.equal(torch.cat([first, second], dim=1), long.next())
    restored = NormalStream([0, 1], "p", (50_000,))
    restored.load_state_dict(saved)
    assert torch.equal(restored.next(), second)


def test_odd_call_sizes_split_pairs_across_calls():
    small, large = NormalStream([4, 5], "p", (7,)), NormalStream([4, 5], "p", (7 * 5,))
    pieces = torch.cat([small.next().clone() for _ in range(5)], dim=1)
    assert torch.equal(pieces, large.next())


def test_a_state_from_another_generator_is_refused():
    with pytest.raises(ValueError, match="another generator"):
        NormalStream([0], "p", (3,)).load_state_dict({"counters": [0], "tail_counters": [0]})


@pytest.mark.parametrize("layout", ["contiguous", "input_major"])
@pytest.mark.parametrize("shape", [(100, 784), (10, 100), (3, 5)])     # (out, in); 3 x 5: odd starts and widths
def test_add_to_adds_what_next_draws_whatever_the_layout(layout, shape):
    seeds, std = [0, 7], 0.01
    if layout == "contiguous":
        param = torch.randn(len(seeds), *shape)
    else:
        param = torch.randn(len(seeds), shape[1], shape[0]).transpose(1, 2)
    reference = param.clone()
    added, drawn = NormalStream(seeds, "perturb:0", shape), NormalStream(seeds, "perturb:0", shape)
    for _ in range(3):
        added.add_to(param, std)
        # p + std·z rounded once (an FMA): the float64 sum of the exact product, rounded to float32
        reference = (reference.double() + torch.tensor(std, dtype=torch.float32).double() * drawn.next().double()).float()
        assert torch.equal(param, reference)
    assert added.state_dict() == drawn.state_dict()
    assert param.stride() == reference.stride() or layout == "input_major"
