"""From a scale file and the protocol definitions to a list of training jobs.

The protocol (`config/experiments.yaml`) holds each experiment once, at paper scale. A scale file names the
experiments to run and overrides fields of them under `overrides: {<scale>: {<experiment>: {...}}}`; keying the
overrides by scale keeps Snakemake's merge of `--configfile` over the default config from mixing two scales.
"""
from __future__ import annotations

import copy
import inspect
import itertools
import json
from pathlib import Path

import yaml

RUN_FIELDS = ("hparams", "model", "benchmark_args")
# Optional settings of the tasks protocol (plasticity/engine/tasks.py) a job spec carries when given; a run may set
# the RUN_TASKS_OPTIONS itself, over its experiment's (class-incremental CIFAR-100 compares BP with head resetting
# and with retraining from scratch in one experiment).
TASKS_OPTIONS = ("schedule", "evaluation", "mask_unseen_classes", "reset_head", "reset_network")
RUN_TASKS_OPTIONS = ("reset_head", "reset_network")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the value and what is valid."""


def check_arguments(what: str, function, given: dict, supplied: tuple[str, ...] = ()) -> None:
    """Raise ConfigError if `given` names an argument `function` does not take (listing those it does) or leaves
    out one it needs; `supplied` are the arguments the caller passes itself (e.g. the model)."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [name for name in parameters if name not in supplied]
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ConfigError(f"unknown {what} {unknown}; valid: {', '.join(accepted)}")
    missing = [name for name in accepted if parameters[name].default is inspect.Parameter.empty
               and name not in given and parameters[name].kind is not inspect.Parameter.VAR_POSITIONAL]
    if missing:
        raise ConfigError(f"missing {what} {missing}")


def unknown_figure_message(name: str, valid: list[str]) -> str:
    """One line naming the bad figure and the valid ones (and the figure it probably meant: the same name in
    another paper's folder)."""
    meant = [figure for figure in valid if figure.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]]
    hint = f" (did you mean {' or '.join(meant)}?)" if meant else ""
    return f"unknown figure {name!r}{hint}; valid: {', '.join(valid)}"


def deep_merge(base: dict, override: dict) -> dict:
    """Return `base` updated recursively with `override` (dicts merge, everything else replaces)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_protocol(path: str | Path) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def resolve_experiments(config: dict, protocol: dict) -> dict[str, dict]:
    """The experiments the scale selects, with that scale's overrides applied; a run overridden with null is
    dropped (a smaller scale runs fewer of the protocol's runs)."""
    overrides = (config.get("overrides") or {}).get(config["scale"], {}) or {}
    unknown = sorted((set(config["experiments"]) | set(overrides)) - set(protocol))
    if unknown:
        raise ConfigError(f"unknown experiment(s) {unknown}; valid: {sorted(protocol)}")
    resolved = {}
    for name in config["experiments"]:
        experiment = deep_merge(protocol[name], overrides.get(name, {}))
        experiment["runs"] = {run: settings for run, settings in experiment["runs"].items() if settings is not None}
        resolved[name] = experiment
    return resolved


def _format_value(value) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def expand_runs(experiment: dict) -> dict[str, dict]:
    """Expand each run group's list-valued fields into a grid; returns {run id: run}.

    A run is {method, hparams, model, benchmark_args} with the experiment's model and benchmark args merged in
    (and the RUN_TASKS_OPTIONS it sets), and its id is the group name plus the grid values in key order, e.g. `bp-activation_relu-lr_0.01`.
    """
    runs = {}
    for group, spec in experiment["runs"].items():
        axes = sorted((key, field, values) for field in RUN_FIELDS
                      for key, values in (spec.get(field) or {}).items() if isinstance(values, list))
        for point in itertools.product(*(values for _, _, values in axes)):
            run = {"method": spec["method"],
                   "hparams": copy.deepcopy(spec.get("hparams") or {}),
                   "model": deep_merge(experiment["model"], spec.get("model") or {}),
                   "benchmark_args": deep_merge(experiment["benchmark_args"], spec.get("benchmark_args") or {}),
                   **{key: spec[key] for key in RUN_TASKS_OPTIONS if key in spec}}
            labels = [group]
            for (key, field, _), value in zip(axes, point):
                run[field][key] = value
                labels.append(f"{key}_{_format_value(value)}")
            runs["-".join(labels)] = run
    return runs


def seed_blocks(num_seeds: int, seeds_per_job: int) -> list[list[int]]:
    """Seeds cut at fixed multiples of `seeds_per_job`, so adding seeds only adds (or completes) the last blocks."""
    return [list(range(start, min(start + seeds_per_job, num_seeds)))
            for start in range(0, num_seeds, seeds_per_job)]


def block_label(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}"


def parse_block_label(label: str) -> list[int]:
    first, last = (int(part) for part in label.split("-"))
    return list(range(first, last + 1))


def job_spec(name: str, experiment: dict, run_id: str, seeds: list[int], device: str) -> dict:
    """Everything one training job needs; its JSON is the Snakemake `params` that decides reruns."""
    run = expand_runs(experiment)[run_id]
    common = {
        "paper": experiment["paper"], "experiment": name, "run": run_id, "method": run["method"],
        "hparams": run["hparams"], "benchmark": experiment["benchmark"],
        "benchmark_args": run["benchmark_args"], "model": run["model"], "loss": experiment["loss"],
    }
    if experiment.get("protocol", "online") == "tasks":
        return {**common, "protocol": "tasks", "batch_size": experiment["batch_size"],
                "epochs_per_task": experiment["epochs_per_task"], "probe": experiment.get("probe"),
                **{key: experiment[key] for key in TASKS_OPTIONS if key in experiment},
                **{key: run[key] for key in RUN_TASKS_OPTIONS if key in run},
                "seeds": seeds, "device": device}
    if experiment.get("protocol", "online") == "joint":
        return {**common, "protocol": "joint", "batch_size": experiment["batch_size"],
                "iterations_per_context": experiment["iterations_per_context"],
                "evaluation": experiment["evaluation"], "seeds": seeds, "device": device}
    return {**common, "examples": experiment["examples"], "batch_size": experiment["batch_size"],
            "bin_size": experiment["bin_size"], "probe": experiment.get("probe"), "seeds": seeds, "device": device}


# The fields of a job spec that only label its results: two specs equal without them train the same numbers (a
# seed's streams are keyed by the seed and their purpose, never by the experiment; plasticity.seeding).
RESULT_LABELS = ("paper", "experiment", "run")


def training_identity(spec: dict) -> str:
    """What a job trains, without the labels of its results: the key under which the workflow trains identical
    jobs of different experiments once."""
    return canonical_json({key: value for key, value in spec.items() if key not in RESULT_LABELS})


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
