"""Across-seed aggregation of the per-job tidy results: results/aggregate/{experiment}.parquet.

Training jobs each hold one run on one block of seeds; figures need, per run, x, metric and layer, the mean and
standard error (and standard deviation) across all seeds. Seeds whose value is NaN (they diverged) are left out of
mean and sem and counted in `n_diverged`, so a figure can say how many seeds a curve rests on.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from plasticity.analysis.task_metrics import with_task_metrics
from plasticity.io import write_atomically

def mean_and_sem(df: pd.DataFrame, by: str | Sequence[str], value: str = "value") -> pd.DataFrame:
    """Across-seed aggregate of a tidy long frame: one row per `by` group with mean, sem, n, n_diverged.

    NaN values (seeds that diverged) are left out of mean, sem and n and counted in n_diverged instead;
    sem = std(ddof=1) / sqrt(n), NaN when n < 2.
    """
    keys = [by] if isinstance(by, str) else list(by)
    out = df.groupby(keys, dropna=False)[value].agg(mean="mean", std="std", n="count", size="size")
    out["sem"] = out["std"] / np.sqrt(out["n"])
    out["n_diverged"] = out["size"] - out["n"]
    return out[["mean", "sem", "n", "n_diverged"]].reset_index()


GROUP_KEYS = ["paper", "experiment", "run", "method", "hparams", "synthetic_data", "x", "x_unit", "metric", "layer"]


def read_parquets(inputs: list[str]) -> pd.DataFrame:
    """Concatenate parquet files (per-job tidy results or aggregates); a missing file is named, not skipped."""
    if not inputs:
        raise ValueError("no input files given")
    missing = [path for path in inputs if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"input file(s) not found: {missing}")
    return pd.concat([pd.read_parquet(path) for path in inputs], ignore_index=True)


def aggregate(tidy: pd.DataFrame) -> pd.DataFrame:
    """Mean, sem (ddof=1; NaN for one seed), n, n_diverged, seeds and std per GROUP_KEYS.

    `seeds` counts every seed of the group, diverged or not. Two rows for one seed at one point mean the same
    seed block was passed twice (or two blocks overlap), which would silently shrink the standard error: refused.
    """
    duplicated = tidy.duplicated(GROUP_KEYS + ["seed"])
    if duplicated.any():
        example = tidy.loc[duplicated, ["experiment", "run", "seed", "metric", "x"]].iloc[0].to_dict()
        raise ValueError(f"{int(duplicated.sum())} duplicate (seed, point) rows, e.g. {example}; "
                         "is a seed block listed twice?")
    stats = mean_and_sem(tidy, GROUP_KEYS)
    stats["seeds"] = stats["n"] + stats["n_diverged"]
    stats["std"] = stats["sem"] * np.sqrt(stats["n"])   # ddof 1; the stability-gap paper shows std bands
    return stats.sort_values(GROUP_KEYS, ignore_index=True)


def aggregate_files(inputs: list[str], out: str) -> None:
    """Read the per-job parquet files, add the tasks protocol's derived per-seed measures, aggregate across seeds,
    and write one parquet atomically."""
    stats = aggregate(with_task_metrics(read_parquets(inputs)))
    write_atomically(out, lambda path: stats.to_parquet(path, index=False))


def synthetic_experiments(frame: pd.DataFrame) -> list[str]:
    """The experiments of per-job results or aggregates that trained on synthetic data (any of their rows)."""
    return sorted(frame.loc[frame["synthetic_data"], "experiment"].unique())
