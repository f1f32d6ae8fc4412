"""Per-seed measures of the tasks protocol that the loss-of-plasticity vision figures and claims need, derived
from the tidy results before they are averaged across seeds (so that their standard errors are the seeds'):

- `task_accuracy_binned`: each seed's task accuracy averaged over bins of 50 consecutive tasks (Dohare et al.'s
  Fig. 1), at x = the bin's last task;
- `relative_accuracy`: each seed's task accuracy minus that of the same seed's retrained-from-scratch run (the run
  group `retrained`) of the same experiment (Fig. 2b), at x = the task.

Both are in tasks (x_unit "tasks", counted from 1). Tasks are numbered by their end (the x, in epochs, of a run's
`task_accuracy` rows, in order), so no protocol setting is needed.
"""
from __future__ import annotations

import pandas as pd

TASKS_PER_BIN = 50          # the paper's bins (Fig. 1)
RETRAINED_GROUP = "retrained"
TASKS_X_UNIT = "epochs"
RUN_COLUMNS = ["paper", "experiment", "run", "method", "hparams", "synthetic_data"]


def _is_tasks_accuracy(tidy: pd.DataFrame) -> pd.Series:
    """The tasks protocol's `task_accuracy` rows (x in epochs); the joint protocol's rows of that name (x in
    iterations) are another measure."""
    return (tidy["metric"] == "task_accuracy") & (tidy["x_unit"] == TASKS_X_UNIT)


def _by_task(tidy: pd.DataFrame) -> pd.DataFrame:
    """The `task_accuracy` rows with `task`, the task number (1, 2, ...) within their run."""
    rows = tidy[_is_tasks_accuracy(tidy)].copy()
    rows["task"] = rows.groupby(["experiment", "run"])["x"].rank(method="dense").astype(int)
    return rows


def binned_task_accuracy(tidy: pd.DataFrame, tasks_per_bin: int = TASKS_PER_BIN) -> pd.DataFrame:
    """Rows of `task_accuracy_binned`: per seed, the mean task accuracy of each bin of `tasks_per_bin` tasks (a
    last, shorter bin too), NaN where a seed diverged within the bin."""
    rows = _by_task(tidy)
    rows["bin"] = (rows["task"] - 1) // tasks_per_bin
    keys = RUN_COLUMNS + ["seed", "layer", "bin"]
    binned = rows.groupby(keys, dropna=False).agg(value=("value", lambda v: v.mean(skipna=False)),
                                                  x=("task", "max")).reset_index()
    binned["metric"], binned["x_unit"] = "task_accuracy_binned", "tasks"
    return binned[tidy.columns]


def relative_accuracy(tidy: pd.DataFrame) -> pd.DataFrame:
    """Rows of `relative_accuracy` for every run of an experiment that has a `retrained` run (the others: none):
    task accuracy minus the retrained run's, seed by seed and task by task."""
    rows = _by_task(tidy)
    group = rows["run"].str.split("-").str[0]
    retrained = rows[group == RETRAINED_GROUP][["experiment", "seed", "task", "value"]]
    paired = rows[group != RETRAINED_GROUP].merge(retrained, on=["experiment", "seed", "task"],
                                                  suffixes=("", "_retrained"))
    paired["value"] = paired["value"] - paired["value_retrained"]
    paired["x"], paired["metric"], paired["x_unit"] = paired["task"], "relative_accuracy", "tasks"
    return paired[tidy.columns]


def with_task_metrics(tidy: pd.DataFrame) -> pd.DataFrame:
    """The tidy results with the derived rows added (nothing added where there is no `task_accuracy`)."""
    if not _is_tasks_accuracy(tidy).any():
        return tidy
    return pd.concat([tidy, binned_task_accuracy(tidy), relative_accuracy(tidy)], ignore_index=True)
