"""Plasticity metrics (definitions in shared/reference/loss_of_plasticity.md, "Plasticity metrics").

Tensor functions take a leading seed dimension S, because the training engine trains S seeds at once:
activations arrive as (S, N examples, U units), and every metric comes back as one value per seed.
All ranks of an all-zero matrix are 0 (not NaN).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from plasticity.engine.common import Recorder


def singular_values(features: torch.Tensor) -> torch.Tensor:
    """Singular values (descending) of each seed's activation matrix: (S, N, U) -> (S, min(N, U)).

    Computed in float64, so that small singular values that decide the 99% ranks are not lost to rounding.
    """
    return torch.linalg.svdvals(features.double())


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """x / x.sum(-1), with rows that sum to 0 left at 0 instead of becoming NaN."""
    total = x.sum(-1, keepdim=True)
    return torch.where(total > 0, x / total, 0.0)


def _smallest_k_reaching(shares: torch.Tensor, threshold: float) -> torch.Tensor:
    """Smallest k with cumsum(sorted desc shares)[:k] >= threshold; 0 for an all-zero row."""
    cumulative = torch.sort(shares, dim=-1, descending=True).values.cumsum(-1)
    k = (cumulative < threshold).sum(-1) + 1
    return torch.where(shares.sum(-1) > 0, k.clamp_max(shares.shape[-1]), 0)


def effective_rank(sv: torch.Tensor) -> torch.Tensor:
    """Roy & Vetterli effective rank exp(-sum p log p), p_k = sigma_k / sum sigma: (S, K) -> (S,).

    A smooth count of the directions the representation uses; 0 log 0 = 0, and an all-zero matrix gives 0.
    """
    p = _normalise(sv)
    erank = torch.exp(-torch.special.xlogy(p, p).sum(-1))
    return torch.where(sv.sum(-1) > 0, erank, 0.0)


def stable_rank_cumulative(sv: torch.Tensor, threshold: float = 0.99) -> torch.Tensor:
    """The reference's "stable rank": fewest singular values whose (unsquared) sum reaches `threshold` of the total.

    Matches Dohare et al.'s code (cumsum(sorted sigma) / sum sigma >= 0.99): (S, K) -> (S,) integer.
    """
    return _smallest_k_reaching(_normalise(sv), threshold)


def stable_rank_norm_ratio(sv: torch.Tensor) -> torch.Tensor:
    """Textbook stable rank ||A||_F^2 / ||A||_2^2 = sum sigma^2 / sigma_max^2: (S, K) -> (S,); 0 for A = 0.

    Offered beside the reference's definition because the two differ (see the reference notes).
    """
    sq = sv.square()
    top = sq.amax(-1)
    return torch.where(top > 0, sq.sum(-1) / top, 0.0)


def approximate_rank(sv: torch.Tensor, threshold: float = 0.99) -> torch.Tensor:
    """Fewest singular values whose squares capture `threshold` of sum sigma^2 (the variance): (S, K) -> (S,) integer."""
    return _smallest_k_reaching(_normalise(sv.square()), threshold)


def dead_unit_percent(features: torch.Tensor, active_share: float = 0.01) -> torch.Tensor:
    """Percentage of dead units per seed: (S, N, U) -> (S,) for layers of neurons, (S, N, C, H, W) -> (S,) for
    conv channels.

    A neuron is dead when its activation is exactly zero on every example: a ReLU unit that is zero on a whole
    probe batch gets no gradient, so it has stopped learning. A channel is dormant when it is nonzero on fewer than
    `active_share` (1%) of the batch's positions (Dohare et al.'s definition for conv nets).
    """
    if features.dim() == 3:
        return (features == 0).all(dim=-2).double().mean(-1) * 100
    active = (features != 0).transpose(1, 2).flatten(2).double().mean(-1)        # (S, C): share of positions
    return (active < active_share).double().mean(-1) * 100


def ranks(features: torch.Tensor, definitions: dict) -> dict[str, torch.Tensor]:
    """{name: rank (S,)} of each seed's representation (S, N, U) by each rank function of its singular values; NaN
    for a seed whose features are not finite (it diverged: the SVD is undefined)."""
    finite = torch.isfinite(features).flatten(1).all(dim=1)
    singular = singular_values(torch.where(finite.view(-1, 1, 1), features, 0.0))
    return {name: torch.where(finite, rank(singular).double(), torch.nan) for name, rank in definitions.items()}


def weight_magnitude(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean |w| over all elements of all weight tensors, each with leading seed dim S: -> (S,).

    Growing weights are one of the reference's explanations for lost plasticity.
    """
    total = sum(w.detach().abs().flatten(1).double().sum(-1) for w in weights)
    count = sum(w[0].numel() for w in weights)
    return total / count


RANKS = {"effective_rank": effective_rank, "stable_rank": stable_rank_cumulative,
         "stable_rank_norm": stable_rank_norm_ratio, "approximate_rank": approximate_rank}


@torch.no_grad()
def probe(model: torch.nn.Module, inputs: torch.Tensor, recorder: Recorder, x: int,
          diverged: torch.Tensor | None = None) -> None:
    """Plasticity correlates of the current network (in evaluation mode) on a fixed probe batch (S, n, ...): per
    unit layer, its dead units (an MLP's: zero on every example; a conv net's channels: active on < 1% of the
    batch's positions) and, for layers of neurons (features (S, n, units)), the ranks of its representation; the
    mean |w| of the model's weights (`probe_weights`); an activation's own state (AdaLin's α).

    A seed has no value (NaN) where it has diverged (`diverged`, (S,) bool, the protocol's record) or where a
    layer's features are not finite: NaN features are neither dead nor alive, and a diverged seed's numbers must
    not enter the means across seeds as if it were training (plasticity.analysis leaves NaN seeds out)."""
    training = model.training
    model.eval()
    model(inputs)
    lost = torch.zeros(inputs.shape[0], dtype=torch.bool) if diverged is None else diverged.cpu()

    def record(name: str, value: torch.Tensor, layer: int, missing: torch.Tensor = lost) -> None:
        recorder.add(x, name, torch.where(missing, torch.nan, value.detach().double().cpu()), layer)

    for layer, features in enumerate(model.features, start=1):
        not_finite = ~torch.isfinite(features).flatten(1).all(dim=1).cpu()
        record("dead_units_pct", dead_unit_percent(features), layer, lost | not_finite)
        if features.dim() == 3:
            for name, value in ranks(features, RANKS).items():
                record(name, value, layer)
    record("weight_magnitude", weight_magnitude(model.probe_weights()), 0)
    for layer, activation in enumerate(model.activations, start=1):
        for name, value in activation.probe_metrics().items():     # e.g. AdaLin's α distribution
            record(name, value, layer)
    model.train(training)
