"""The reproduction table: each claim of config/claims.yaml beside our measured value and a verdict.

Inputs are the per-job tidy parquets (results/runs/...), not the aggregates: every verdict rests on per-seed
statistics (a change per seed, or per-seed final values), which an across-seed aggregate no longer holds, and the
per-job files are small. Seeds whose value is NaN at a point used (they diverged) are left out and counted.

A claim's `test` is one of five kinds (a `layer` key, default 0, may be `hidden`: the mean over layers >= 1):
  change        {run, metric, from: first | extremum, direction: increase | decrease}
                per seed: final bin minus the first bin, or minus the bin where the mean curve is most extreme
                against the claimed direction (its peak for a decrease, its trough for an increase).
  compare_final {run_a, run_b, metric, direction: greater | less}
                final bin of run_a minus that of run_b, paired by seed when both runs have the same seeds (seed s
                sees the same data in every run of an experiment), else sem = sqrt(sem_a^2 + sem_b^2).
  compare_average {run_a, run_b, metric, direction: greater | less, over_last?: fraction}
                as compare_final, on each seed's average over all bins (with one bin per task: the AdaLin
                paper's total average online accuracy), or over the last `over_last` of them (rounded up): an
                end point that does not rest on one noisy bin.
  threshold_at  {run, metric, at: {examples | task | fraction: value}, below | above: threshold}
                the bin nearest the point (fraction: of the run's length) against the threshold.
  near          {run, metric, layer?, target, tolerance}
                our mean of the metric's last recorded value (the per-seed summaries of the stability-gap paper,
                e.g. avg_sg) against the paper's number `target`: reproduced when they differ by at most
                `tolerance` + 2 standard errors.
Verdict: `reproduced` when the estimate lies on the claimed side by more than 2 standard errors, else `not
reproduced`; `not run at this scale` when the experiment or run is absent or stops before the claimed point;
`not applicable (synthetic data)` when the experiment trained on the synthetic stand-in of its data set (random
images, for tests and CI), whatever its numbers.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import yaml

from plasticity.analysis.aggregate import read_parquets, synthetic_experiments
from plasticity.analysis.task_metrics import with_task_metrics
from plasticity.io import write_atomically

REPRODUCED, NOT_REPRODUCED, NOT_RUN = "reproduced", "not reproduced", "not run at this scale"
SYNTHETIC = "not applicable (synthetic data)"
MARGIN_SEMS = 2.0
COLUMNS = {"claim_id": "claim id", "claim": "claim", "paper_value": "paper value", "source": "source",
           "scale": "scale", "our_value": "our value (mean ± sem)", "n_seeds": "n seeds", "verdict": "verdict"}
# metric -> (display factor, unit, unit of a difference); online_accuracy is stored as a fraction in [0, 1]
DISPLAY = {"online_accuracy": (100, "%", " pp"), "dead_units_pct": (1, "%", " pp"),
           **{metric: (100, "%", " pp") for metric in ("task_accuracy", "task_accuracy_binned", "relative_accuracy",
                                                       "test_accuracy", "avg_acc_task1",
                                                       "final_avg_acc", "min_acc", "wc_acc")}}


class NotRun(Exception):
    """The claim cannot be checked with these results (the message says why)."""


def _format(metric: str, value: float) -> str:
    factor, unit, _ = DISPLAY.get(metric, (1, "", ""))
    return f"{value * factor:.3g}{unit}"


def _format_difference(metric: str, difference: float, sem: float) -> str:
    factor, _, unit = DISPLAY.get(metric, (1, "", ""))
    return f"{difference * factor:+.3g} ± {sem * factor:.2g}{unit}"


def _verdict(estimate: float, sem: float, sign: int) -> str:
    """Reproduced when `estimate` has the claimed sign by more than MARGIN_SEMS standard errors (NaN sem: never)."""
    return REPRODUCED if sign * estimate > MARGIN_SEMS * sem else NOT_REPRODUCED


class Runs:
    """Per-seed curves (seed x bins) of the runs in the tidy results, looked up by experiment and run id."""

    def __init__(self, tidy: pd.DataFrame):
        self.by_run = dict(tuple(tidy.groupby(["experiment", "run"])))

    def curves(self, experiment: str, run: str, metric: str, layer: int | str = 0) -> pd.DataFrame:
        if (experiment, run) not in self.by_run:
            raise NotRun(f"{experiment}/{run} not in the results")
        rows = self.by_run[experiment, run]
        rows = rows[rows["metric"] == metric]
        if rows.empty:
            raise ValueError(f"metric {metric!r} missing from {experiment}/{run}; "
                             f"it has {sorted(self.by_run[experiment, run]['metric'].unique())}")
        rows = rows[rows["layer"] >= 1] if layer == "hidden" else rows[rows["layer"] == layer]
        by_layer = rows.set_index(["seed", "x", "layer"])["value"].unstack("layer")
        # skipna=False: a seed that diverged in any layer has no layer mean
        return by_layer.mean(axis=1, skipna=False).unstack("x").sort_index(axis=1)

    def examples_per_task(self, experiment: str, run: str) -> int | None:
        settings = json.loads(self.by_run[experiment, run]["hparams"].iloc[0])
        return settings.get("benchmark_args", {}).get("examples_per_task")

    def where(self, experiment: str, run: str, x: int) -> str:
        per_task = self.examples_per_task(experiment, run)
        unit = self.by_run[experiment, run]["x_unit"].iloc[0]
        return f"{x:,} {unit}" + (f" (task {x / per_task:g})" if per_task else "")


def _option(name: str, value, options: dict):
    """options[value], or an error naming the valid choices."""
    if value not in options:
        raise ValueError(f"{name}: {value!r}; valid: {sorted(options)}")
    return options[value]


def _seeds(values: pd.Series) -> tuple[pd.Series, str]:
    """Values without the diverged (NaN) seeds, and the seed count as the table shows it."""
    kept = values.dropna()
    diverged = len(values) - len(kept)
    return kept, f"{len(kept)}" + (f" (+{diverged} diverged)" if diverged else "")


def change(runs: Runs, experiment: str, test: dict) -> tuple[str, str, str]:
    metric, sign = test["metric"], _option("direction", test.get("direction"), {"increase": 1, "decrease": -1})
    curves = runs.curves(experiment, test["run"], metric, test.get("layer", 0))
    mean_curve = curves.mean()
    extremum = mean_curve.idxmin() if sign > 0 else mean_curve.idxmax()
    start = _option("from", test.get("from"), {"first": curves.columns[0], "extremum": extremum})
    final = curves.columns[-1]
    differences, n = _seeds(curves[final] - curves[start])
    kept = curves.loc[differences.index]
    value = (f"{_format(metric, kept[start].mean())} at {runs.where(experiment, test['run'], start)} → "
             f"{_format(metric, kept[final].mean())} at {runs.where(experiment, test['run'], final)}; "
             f"change {_format_difference(metric, differences.mean(), differences.sem())}")
    return value, n, _verdict(differences.mean(), differences.sem(), sign)


def _compare(runs: Runs, experiment: str, test: dict, summary, where: str) -> tuple[str, str, str]:
    """run_a vs run_b on a per-seed summary of their curves (seeds x bins -> per seed)."""
    metric, sign = test["metric"], _option("direction", test.get("direction"), {"greater": 1, "less": -1})
    summaries = {}
    for key in ("run_a", "run_b"):
        curves = runs.curves(experiment, test[key], metric, test.get("layer", 0))
        summaries[key] = _seeds(summary(curves))
    (a, n_a), (b, n_b) = summaries["run_a"], summaries["run_b"]
    if set(a.index) == set(b.index):
        # Seed s of every run of an experiment sees the same data stream (and target network), so the runs are
        # compared seed by seed: the paired difference removes the variation the seeds share.
        paired = a - b.loc[a.index]
        difference, sem, pairing = paired.mean(), paired.sem(), "paired by seed"
    else:
        difference, sem, pairing = a.mean() - b.mean(), math.hypot(a.sem(), b.sem()), "unpaired"
    value = (f"{test['run_a']} {_format(metric, a.mean())} vs {test['run_b']} {_format(metric, b.mean())} "
             f"{where}; difference {_format_difference(metric, difference, sem)} ({pairing})")
    return value, f"{n_a} vs {n_b}", _verdict(difference, sem, sign)


def compare_final(runs: Runs, experiment: str, test: dict) -> tuple[str, str, str]:
    return _compare(runs, experiment, test, lambda curves: curves[curves.columns[-1]], "at the end")


def compare_average(runs: Runs, experiment: str, test: dict) -> tuple[str, str, str]:
    fraction = test.get("over_last", 1.0)
    if not 0 < fraction <= 1:
        raise ValueError(f"over_last: {fraction!r}; valid: a fraction of the run's bins in (0, 1]")

    def average(curves: pd.DataFrame) -> pd.Series:
        # skipna=False: a seed that diverged at some bin has no average (it is counted as diverged)
        return curves.iloc[:, -math.ceil(fraction * curves.shape[1]):].mean(axis=1, skipna=False)

    where = "averaged over the run" if fraction == 1 else f"averaged over the run's last {fraction:.0%}"
    return _compare(runs, experiment, test, average, where)


def threshold_at(runs: Runs, experiment: str, test: dict) -> tuple[str, str, str]:
    metric, run = test["metric"], test["run"]
    curves = runs.curves(experiment, run, metric, test.get("layer", 0))
    sides = [side for side in ("below", "above") if side in test]
    if len(test["at"]) != 1 or len(sides) != 1:
        raise ValueError(f"threshold_at needs one of at: {{examples|task|fraction: value}} and one of below/above; "
                         f"got {test}")
    (unit, point), side = next(iter(test["at"].items())), sides[0]
    threshold, last = test[side], curves.columns[-1]
    per_task = runs.examples_per_task(experiment, run)
    target = _option("at", unit, {"examples": point, "fraction": point * last,
                                  **({"task": point * per_task} if per_task else {})})
    if target > last:
        raise NotRun(f"{run} ends at {runs.where(experiment, run, last)}, before {unit} {point:g}")
    x = min(curves.columns, key=lambda column: abs(column - target))
    values, n = _seeds(curves[x])
    value = (f"{_format(metric, values.mean())} ± {_format(metric, values.sem())} at "
             f"{runs.where(experiment, run, x)} (threshold {_format(metric, threshold)})")
    return value, n, _verdict(values.mean() - threshold, values.sem(), {"above": 1, "below": -1}[side])


def near(runs: Runs, experiment: str, test: dict) -> tuple[str, str, str]:
    metric, run, target, tolerance = test["metric"], test["run"], test["target"], test["tolerance"]
    curves = runs.curves(experiment, run, metric, test.get("layer", 0))
    values, n = _seeds(curves[curves.columns[-1]])
    difference = values.mean() - target
    value = (f"{_format(metric, values.mean())} ± {_format(metric, values.std())} (std; sem "
             f"{_format(metric, values.sem())}) vs paper {_format(metric, target)}; difference "
             f"{_format_difference(metric, difference, values.sem())}")
    close = abs(difference) <= tolerance + MARGIN_SEMS * values.sem()
    return value, n, REPRODUCED if close else NOT_REPRODUCED


TESTS = {"change": change, "compare_final": compare_final, "compare_average": compare_average,
         "threshold_at": threshold_at, "near": near}


def evaluate(claim: dict, runs: Runs) -> tuple[str, str, str]:
    """(our value, n seeds, verdict) of one claim."""
    kind = claim["test"]["kind"]
    if kind not in TESTS:
        raise ValueError(f"claim {claim['id']!r}: unknown test kind {kind!r}; valid: {sorted(TESTS)}")
    try:
        return TESTS[kind](runs, claim["experiment"], claim["test"])
    except NotRun as reason:
        return str(reason), "0", NOT_RUN
    except (KeyError, ValueError) as error:
        raise ValueError(f"claim {claim['id']!r}: {error}") from error


def reproduction_table(tidy: pd.DataFrame, claims: list[dict], scale: str) -> pd.DataFrame:
    runs = Runs(tidy)
    synthetic = synthetic_experiments(tidy)
    rows = []
    for claim in claims:
        our_value, n_seeds, verdict = evaluate(claim, runs)
        if claim["experiment"] in synthetic:
            verdict = SYNTHETIC
        rows.append({"claim_id": claim["id"], "claim": claim["claim"], "paper_value": str(claim["paper_value"]),
                     "source": claim["source"], "scale": scale, "our_value": our_value, "n_seeds": n_seeds,
                     "verdict": verdict})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def load_claims(claims_path: str) -> list[dict]:
    """The claims of config/claims.yaml."""
    with open(claims_path) as handle:
        return yaml.safe_load(handle)


def write_reproduction(inputs: list[str], claims_path: str, out_csv: str, out_md: str, scale: str) -> None:
    """Evaluate every claim on the per-job tidy parquets `inputs`; write the table as CSV and Markdown."""
    tidy = with_task_metrics(read_parquets(inputs))
    table = reproduction_table(tidy, load_claims(claims_path), scale)
    synthetic = synthetic_experiments(tidy)
    note = (f"Trained on synthetic data (random stand-in images, no result; verdict `{SYNTHETIC}`): "
            f"{', '.join(synthetic)}.\n\n" if synthetic else "")
    markdown = (f"# Reproduction of the papers' claims ({scale} scale)\n\n"
                f"Verdict `{REPRODUCED}`: our estimate lies on the claimed side by more than {MARGIN_SEMS:g} "
                "standard errors across seeds.\n\n" + note + table.rename(columns=COLUMNS).to_markdown(index=False)
                + "\n")
    write_atomically(out_csv, lambda path: table.to_csv(path, index=False))
    write_atomically(out_md, lambda path: Path(path).write_text(markdown))
