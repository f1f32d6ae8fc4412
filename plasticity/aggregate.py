"""Across-seed aggregation of the per-job tidy results: results/aggregate/{experiment}.parquet.

Training jobs each hold one run on one block of seeds; figures need, per run, x, metric and layer, the mean and
standard error across all seeds. Seeds whose value is NaN (they diverged) are left out of mean and sem and counted
in `n_diverged`, so a figure can say how many seeds a curve rests on.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from plasticity.metrics import mean_and_sem

GROUP_KEYS = ["paper", "experiment", "run", "method", "hparams", "x", "x_unit", "metric", "layer"]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_atomically(out: str | Path, write: Callable[[str], None]) -> None:
    """Call `write(temporary path)` and move the file onto `out` in one step.

    A crash mid-write then never leaves a truncated file that Snakemake (or a reader) would take as complete.
    The temporary file sits in the same directory, so os.replace is an atomic rename; it keeps `out`'s suffix
    because writers such as matplotlib pick the format from it.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=out.suffix)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_parquets(inputs: list[str]) -> pd.DataFrame:
    """Concatenate parquet files (per-job tidy results or aggregates); a missing file is named, not skipped."""
    if not inputs:
        raise ValueError("no input files given")
    missing = [path for path in inputs if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"input file(s) not found: {missing}")
    return pd.concat([pd.read_parquet(path) for path in inputs], ignore_index=True)


def aggregate(tidy: pd.DataFrame) -> pd.DataFrame:
    """Mean, sem (ddof=1; NaN for one seed), n, n_diverged and seeds per GROUP_KEYS.

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
    return stats.sort_values(GROUP_KEYS, ignore_index=True)


def aggregate_files(inputs: list[str], out: str) -> None:
    """Read the per-job parquet files, aggregate across seeds, and write one parquet atomically."""
    stats = aggregate(read_parquets(inputs))
    write_atomically(out, lambda path: stats.to_parquet(path, index=False))
