"""The AdaLin paper's methods × benchmarks table: total average online accuracy (the mean of a run's per-task
average online accuracies; on class-incremental CIFAR-100, a tasks-protocol run, the mean task test accuracy) per seed, shown as mean ± standard error across seeds, as CSV, Markdown and LaTeX.

A row is a variant: a plain Adam or SGD run is named by its activation (ReLU, AdaLin-ReLU, PReLU, ...), any other
run by its run group (L2, L2 Init, ReDo, ...; ReLU networks; a user's own method by its run-group name, after the
paper's rows). A column is a benchmark with an optimizer. Where a scale
runs several learning rates, each cell shows the variant at its best one (named in the cell); the paper tunes on
3 separate seeds, we choose on the reported seeds, which flatters every variant alike.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from plasticity.analysis.aggregate import read_parquets
from plasticity.analysis.ngm_tables import write_table

VARIANT_LABELS = {"relu": "ReLU", "tanh": "Tanh", "gelu": "GELU", "adalin_relu": "AdaLin-ReLU",
                  "adalin_tanh": "AdaLin-Tanh", "adalin_gelu": "AdaLin-GELU",
                  "adalin_layer_relu": "AdaLin-ReLU, one α per layer", "adalin_layer_tanh": "AdaLin-Tanh, one α per layer",
                  "adalin_layer_gelu": "AdaLin-GELU, one α per layer", "leaky_relu": "Leaky ReLU", "prelu": "PReLU",
                  "crelu": "CReLU", "l2": "L2", "l2_init": "L2 Init", "shrink_perturb": "Shrink & Perturb",
                  "redo": "ReDo", "cbp": "CBP"}
PLAIN_METHODS = {"adam": "Adam", "bp": "SGD"}     # runs that differ only by their activation
PLAIN_GROUPS = {"adam", "sgd"}                     # the run groups of those runs in config/experiments.yaml
BENCHMARK_LABELS = {"adalin_pmnist": "Permuted MNIST", "adalin_random_label_mnist": "Random Label MNIST",
                    "adalin_random_label_cifar10": "Random Label CIFAR-10", "adalin_shuffled_cifar10": "Shuffled CIFAR-10",
                    "adalin_class_split_cifar100": "Class-Split CIFAR-100",
                    "adalin_incremental_cifar100": "Class-incremental CIFAR-100 (ResNet-18)"}
# The tasks-protocol experiment has no online accuracy: its cell is the mean over tasks of the test accuracy after
# each task (the tasks protocol's `task_accuracy`).
TABLE_METRIC = {"adalin_incremental_cifar100": "task_accuracy"}


def variant(run: str, method: str, activation: str) -> str:
    """How a run is named in the table and figures: its activation for the plain Adam/SGD runs, else its run group
    (the method's name for the paper's baselines; a user's own run by the name it was given)."""
    group = run.split("-")[0]
    return activation if method in PLAIN_METHODS and group in PLAIN_GROUPS else group


def variant_order(variants) -> list[str]:
    """The paper's variants in the order of VARIANT_LABELS, then any other by name."""
    present = set(variants)
    return [name for name in VARIANT_LABELS if name in present] + sorted(present - set(VARIANT_LABELS))


def optimizer(method: str, hparams: dict) -> str:
    return PLAIN_METHODS.get(method) or ("Adam" if hparams.get("optimizer") == "adam" else "SGD")


def run_summaries(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per run: variant, optimizer, lr, seeds, and the mean and sem across seeds of each seed's total
    average online accuracy (a seed that diverged anywhere has none and is left out, counted in `diverged`)."""
    metric = tidy["experiment"].map(lambda name: TABLE_METRIC.get(name, "online_accuracy"))
    accuracy = tidy[tidy["metric"] == metric]
    rows = []
    for (experiment, run), frame in accuracy.groupby(["experiment", "run"], sort=False):
        settings = json.loads(frame["hparams"].iloc[0])
        method = frame["method"].iloc[0]
        per_seed = frame.pivot(index="seed", columns="x", values="value").mean(axis=1, skipna=False)
        kept = per_seed.dropna()
        rows.append({"experiment": experiment, "benchmark": BENCHMARK_LABELS.get(experiment, experiment),
                     "variant": variant(run, method, settings["model"]["activation"]),
                     "optimizer": optimizer(method, settings["hparams"]), "lr": settings["hparams"]["lr"],
                     "run": run, "seeds": len(kept), "diverged": len(per_seed) - len(kept),
                     "mean": kept.mean(), "sem": kept.sem() if len(kept) > 1 else np.nan})
    return pd.DataFrame(rows)


def best_learning_rates(summaries: pd.DataFrame) -> pd.DataFrame:
    """Each (experiment, optimizer, variant) at its learning rate of highest mean."""
    ranked = summaries.sort_values("mean", ascending=False, na_position="last")
    return ranked.drop_duplicates(["experiment", "optimizer", "variant"]).sort_index()


def write_adalin_table(inputs: list[str], out_dir: str, scale: str) -> None:
    summaries = run_summaries(read_parquets(inputs))
    best = best_learning_rates(summaries)
    several_lrs = summaries.groupby(["experiment", "optimizer", "variant"])["lr"].nunique().max() > 1
    best["column"] = best["benchmark"] + " (" + best["optimizer"] + ")"
    best["cell"] = [f"{100 * mean:.1f} ± {100 * sem:.1f}" + (f" (lr {lr:g})" if several_lrs else "")
                    for mean, sem, lr in zip(best["mean"], best["sem"].fillna(0), best["lr"])]
    shown = (best.pivot(index="variant", columns="column", values="cell").reindex(variant_order(best["variant"]))
             .rename(index=VARIANT_LABELS).fillna("—").rename_axis("method").reset_index())
    seeds = "/".join(str(n) for n in sorted(best["seeds"].unique()))
    note = (f"Scale {scale}; total average online accuracy (%, the mean over tasks of each task's average online "
            f"accuracy), mean ± standard error across {seeds} seeds. Plain rows are the activation with Adam or "
            "SGD; L2, L2 Init, Shrink & Perturb, ReDo and CBP use ReLU; other rows are named by their run group."
            + (" CIFAR: the CNN of Kumar et al.; Random Label CIFAR-10's sizes are Kumar et al.'s, assumed for the "
               "AdaLin paper, and Shuffled CIFAR-10's and Class-Split CIFAR-100's are ours (the paper's are not "
               "known): config/experiments.yaml." if best["experiment"].str.contains("cifar").any() else "")
            + (" Class-incremental CIFAR-100: ResNet-18 under the loss-of-plasticity protocol (SGD, assumed), mean "
               "over tasks of the test accuracy after each task." if (best["experiment"] == "adalin_incremental_cifar100").any() else "")
            + (" Each cell is the method at its best learning rate (chosen on these seeds)." if several_lrs else ""))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(best.drop(columns=["cell", "column"]), shown, out / "table",
                "AdaLin: methods × benchmarks, total average online accuracy", note)
