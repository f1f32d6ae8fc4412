import math

import numpy as np
import pandas as pd
import pytest
import torch

from plasticity.engine.probes import (
    approximate_rank,
    dead_unit_percent,
    effective_rank,
    singular_values,
    stable_rank_cumulative,
    stable_rank_norm_ratio,
    weight_magnitude,
)
from plasticity.analysis.aggregate import mean_and_sem


def ranks(matrix):
    """All four ranks of one (N, U) matrix, as plain floats."""
    sv = singular_values(torch.as_tensor(matrix, dtype=torch.float64)[None])
    return [float(f(sv)[0]) for f in (effective_rank, stable_rank_cumulative, stable_rank_norm_ratio, approximate_rank)]


def test_singular_values_shape_and_values():
    # [[3, 0], [4, 0]] has one column of norm 5: sigma = (5, 0).
    sv = singular_values(torch.tensor([[[3.0, 0.0], [4.0, 0.0]]]))
    assert sv.shape == (1, 2)
    assert torch.allclose(sv, torch.tensor([[5.0, 0.0]], dtype=torch.float64))
    assert singular_values(torch.ones(3, 5, 2)).shape == (3, 2)


def test_diag_3_1():
    # p = (0.75, 0.25): erank = exp(-(0.75 ln 0.75 + 0.25 ln 0.25)) = exp(0.5623) = 1.7548.
    # cumulative sigma shares 0.75, 1.0 -> 2; ||A||_F^2 / ||A||_2^2 = 10 / 9; sigma^2 shares 0.9, 1.0 -> 2.
    erank, cumulative, norm_ratio, approx = ranks(np.diag([3.0, 1.0]))
    assert erank == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))
    assert erank == pytest.approx(1.7548, abs=1e-4)
    assert (cumulative, approx) == (2, 2)
    assert norm_ratio == pytest.approx(10 / 9)


def test_identity_has_full_rank_everywhere():
    # sigma = (1, 1, 1, 1): p uniform -> erank 4; shares 0.25 .. 1.0 -> 4; 4 / 1 = 4.
    assert ranks(np.eye(4)) == pytest.approx([4, 4, 4, 4])


def test_rank_one_matrix():
    # outer(u, v) has one non-zero singular value |u| |v|, so every rank is 1.
    assert ranks(np.outer([1.0, 2.0, 3.0], [1.0, -1.0])) == pytest.approx([1, 1, 1, 1])


def test_thresholds_separate_the_two_99_percent_definitions():
    # sigma = (10, 1, 0.01), sum 11.01: cumulative shares 0.9083, 0.99909 -> stable rank (reference) 2.
    # sigma^2 = (100, 1, 1e-4), sum 101.0001: first share 100 / 101.0001 = 0.990098 >= 0.99 -> approximate rank 1.
    # ||A||_F^2 / ||A||_2^2 = 101.0001 / 100 = 1.010001.
    # p = (0.90827, 0.09083, 0.00091): -sum p ln p = 0.08739 + 0.21788 + 0.00636 = 0.31163 -> erank 1.3656.
    erank, cumulative, norm_ratio, approx = ranks(np.diag([10.0, 1.0, 0.01]))
    assert erank == pytest.approx(1.3656, abs=1e-4)
    assert (cumulative, approx) == (2, 1)
    assert norm_ratio == pytest.approx(1.010001)


def test_all_zero_matrix_has_rank_zero_not_nan():
    assert ranks(np.zeros((3, 2))) == [0, 0, 0, 0]


def test_dead_unit_percent():
    seed0 = [[0.0, 1.0, 0.0, 2.0],
             [0.0, 0.0, 0.0, 3.0],
             [0.0, 5.0, 0.0, 0.0]]  # units 1 and 3 never fire -> 50%
    seed1 = [[0.0, 1.0, 1.0, 1.0],
             [0.0, 1.0, 1.0, 1.0],
             [0.0, 1.0, 1.0, 1.0]]  # unit 1 only -> 25%
    got = dead_unit_percent(torch.tensor([seed0, seed1]))
    assert got.tolist() == [50.0, 25.0]


def test_weight_magnitude_is_total_abs_over_total_count():
    w1 = torch.tensor([[1.0, -2.0], [3.0, -4.0]])  # |w| sum 10 over 4 entries
    w2 = torch.tensor([[0.5, -0.5, 1.0]])  # |w| sum 2 over 3 entries
    got = weight_magnitude([torch.stack([w1, 2 * w1]), torch.stack([w2, 2 * w2])])
    assert got.tolist() == pytest.approx([12 / 7, 24 / 7])


def test_mean_and_sem():
    df = pd.DataFrame({
        "run": ["a", "a", "a", "b", "b", "c"],
        "x": [1, 1, 1, 1, 1, 1],
        "value": [1.0, 2.0, 3.0, 5.0, np.nan, np.nan],
    })
    out = mean_and_sem(df, ["run", "x"]).set_index("run")
    # a: mean 2, std 1 (ddof=1), sem 1 / sqrt(3)
    assert out.loc["a", "mean"] == 2.0
    assert out.loc["a", "sem"] == pytest.approx(1 / math.sqrt(3))
    assert (out.loc["a", "n"], out.loc["a", "n_diverged"]) == (3, 0)
    # b: the diverged seed is left out: one value -> sem NaN, one divergence counted
    assert out.loc["b", "mean"] == 5.0 and math.isnan(out.loc["b", "sem"])
    assert (out.loc["b", "n"], out.loc["b", "n_diverged"]) == (1, 1)
    # c: every seed diverged
    assert math.isnan(out.loc["c", "mean"]) and (out.loc["c", "n"], out.loc["c", "n_diverged"]) == (0, 1)
    assert list(mean_and_sem(df, "run").columns) == ["run", "mean", "sem", "n", "n_diverged"]


def test_seed_batching_matches_per_seed_calls():
    features = torch.relu(torch.randn(3, 20, 8, generator=torch.Generator().manual_seed(0)))
    features[1, :, 2] = 0  # one dead unit in seed 1
    features[2] = 0  # seed 2 entirely dead
    sv = singular_values(features)
    for s in range(3):
        sv_s = singular_values(features[s : s + 1])
        assert torch.allclose(sv[s : s + 1], sv_s)
        for f in (effective_rank, stable_rank_cumulative, stable_rank_norm_ratio, approximate_rank):
            assert torch.allclose(f(sv)[s : s + 1].double(), f(sv_s).double())
        assert dead_unit_percent(features)[s] == dead_unit_percent(features[s : s + 1])[0]
    weights = [torch.randn(3, 4, 5), torch.randn(3, 4)]
    per_seed = [weight_magnitude([w[s : s + 1] for w in weights])[0] for s in range(3)]
    assert torch.allclose(weight_magnitude(weights), torch.stack(per_seed))
