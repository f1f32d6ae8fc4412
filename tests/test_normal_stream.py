"""Shrink & Perturb's Gaussian streams: SplitMix64 words, the ziggurat's tables, the distribution (its tail
too), and that a stream's values do not depend on the block of seeds, the call sizes or a save and restore."""
import math

import numpy as np
import torch

from plasticity.seeding.normal_stream import (_F, _LAYER_AREA, _LAYERS, _TAIL_START, _W, NormalStream, _splitmix)


def test_words_are_splitmix64s_outputs():
    # SplitMix64 seeded with 0 (Steele et al.; Vigna's splitmix64.c): state += gamma, then the output mix.
    words = [int(_splitmix(np.uint64(k * 0x9E3779B97F4A7C15 % 2 ** 64))) for k in (1, 2, 3)]
    assert words == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_every_layer_of_the_ziggurat_has_the_same_area():
    width = _W * 2.0 ** 31                      # x_i, the outer edge of layer i
    areas = width[1:] * (_F[:-1] - _F[1:])      # a rectangle's width times its height
    np.testing.assert_allclose(areas, _LAYER_AREA, rtol=1e-9)
    # the base layer: a rectangle up to r plus the tail beyond it
    tail = math.sqrt(math.pi / 2) * math.erfc(_TAIL_START / math.sqrt(2))
    assert math.isclose(_TAIL_START * _F[-1] + tail, _LAYER_AREA, rel_tol=1e-9)
    assert len(_W) == _LAYERS and _F[0] == 1.0


def test_samples_are_standard_normal_in_the_body_and_the_tail():
    n = 2_000_000
    x = NormalStream([0], "test", (n,)).next()[0].double()
    assert abs(x.mean()) < 5 / math.sqrt(n) and abs(x.std() - 1) < 5 / math.sqrt(2 * n)
    ordered = x.sort().values
    empirical = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    assert (torch.special.ndtr(ordered) - empirical).abs().max() < 1.63 / math.sqrt(n)     # KS test at 1%
    # beyond r the samples come from the tail algorithm: their frequency and their shape
    beyond = x.abs() > _TAIL_START
    expected = math.erfc(_TAIL_START / math.sqrt(2))
    assert abs(beyond.double().mean() - expected) < 5 * math.sqrt(expected / n)
    assert abs((x[beyond].abs() > 4.0).double().mean() - math.erfc(4 / math.sqrt(2)) / expected) < 0.03


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
