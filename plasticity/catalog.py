"""What the library holds, for the workflow and for `plasticity list`: every registry (methods, benchmarks, models,
activations, protocols, figures) with its one-line description, arguments and source files, and a check of the
runs an experiment asks for (names, arguments, and that the model fits the benchmark's input).

The workflow (plasticity.workflow, which imports no torch) reads this through `python -m plasticity.catalog`, a
JSON request on stdin and the answer on stdout, and caches the answer by the library's sources: building the DAG
imports torch only when the library or the runs changed, and then in a child process.
"""
from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from plasticity.activations import ACTIVATIONS, check_activation
from plasticity.benchmarks import BENCHMARKS, benchmark_shapes, check_benchmark_arguments
from plasticity.config import ConfigError
from plasticity.engine.job import PROTOCOL_DESCRIPTIONS, PROTOCOLS
from plasticity.methods import METHODS, check_hyperparameters
from plasticity.models import MODELS, build_model, model_settings

ROOT = Path(__file__).resolve().parents[1]

# Files every training job runs, whatever its protocol, method, benchmark and model: editing one reruns every job.
ENGINE_SOURCES = ["plasticity/engine/job.py", "plasticity/engine/common.py", "plasticity/engine/checkpoint.py",
                  "plasticity/seeding/__init__.py", "plasticity/methods/__init__.py",
                  "plasticity/benchmarks/__init__.py", "plasticity/activations/__init__.py",
                  "plasticity/models/__init__.py"]

# Modules whose edits must not rerun jobs through the import graph: the package roots and the config/CLI layer (a
# change there that matters changes the job spec, i.e. the params).
NOT_JOB_SOURCES = {"plasticity", "plasticity.config", "plasticity.cli", "plasticity.catalog"}


def source_files(obj) -> list[str]:
    """Files (relative to the repository) of the plasticity modules that define `obj`, followed through the names
    they import (so CBP, built on plasticity/methods/adam.py, also reruns when adam.py changes); a package's
    `__init__` is listed but not followed (it imports every member to register it)."""
    files, seen = [], set()
    pending = [sys.modules[obj.__module__]]
    while pending:
        module = pending.pop()
        name = module.__name__
        if name in seen or name in NOT_JOB_SOURCES or not name.startswith("plasticity."):
            continue
        seen.add(name)
        files.append(Path(module.__file__).resolve().relative_to(ROOT).as_posix())
        if hasattr(module, "__path__"):
            continue
        for value in vars(module).values():
            other = value if inspect.ismodule(value) else sys.modules.get(getattr(value, "__module__", None) or "")
            if other is not None:
                pending.append(other)
    return sorted(files)


def describe(obj) -> str:
    """An object's one-line description: its `description`, else the first sentence of its docstring (its class's,
    for an instance), else of its module's."""
    if isinstance(getattr(obj, "description", None), str):
        return obj.description
    doc = inspect.getdoc(obj) or inspect.getdoc(sys.modules[obj.__module__]) or ""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    return paragraph.split(". ")[0].rstrip(".")


def _arguments(function, supplied: tuple[str, ...]) -> dict:
    """{argument: default or None (required)} of a builder, without the arguments the engine supplies."""
    return {name: None if p.default is inspect.Parameter.empty else p.default
            for name, p in inspect.signature(function).parameters.items()
            if name not in supplied and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def registries() -> dict[str, dict[str, dict]]:
    """{registry: {name: {description, ...}}} of everything the workflow and `plasticity list` name."""
    return {
        "methods": {name: {"description": describe(build), "arguments": _arguments(build, ("model", "seeds"))}
                    for name, build in sorted(METHODS.items())},
        "benchmarks": {name: {"description": describe(cls), "protocol": getattr(cls, "protocol", "online"),
                              "dataset": cls.dataset,
                              "arguments": _arguments(cls, ("self", "seeds", "device", "data_path"))}
                       for name, cls in sorted(BENCHMARKS.items())},
        "models": {name: {"description": describe(build),
                          "arguments": _arguments(build, ("input_shape", "out_features", "seeds", "row_kernels"))}
                   for name, build in sorted(MODELS.items())},
        "activations": {name: {"description": describe(build(2, None))} for name, build in sorted(ACTIVATIONS.items())},
        "protocols": {name: {"description": PROTOCOL_DESCRIPTIONS[name]} for name in sorted(PROTOCOLS)},
    }


def figures() -> dict[str, dict]:
    """{figure: {title, experiments, optional_experiments, paper_experiments}} of the figure registry
    (figures.FIGURES)."""
    from figures import FIGURES
    return {name: {"description": getattr(module, "TITLE", describe(module)),
                   "experiments": list(module.EXPERIMENTS),
                   "optional_experiments": list(getattr(module, "OPTIONAL_EXPERIMENTS", [])),
                   "paper_experiments": list(getattr(module, "PAPER_EXPERIMENTS", []))}
            for name, module in sorted(FIGURES.items())}


def check_run(run: dict) -> int:
    """ConfigError unless the run's method, hyperparameters, benchmark, its arguments, activation and model exist
    and fit together: the model is built for one seed and run on one example of the benchmark's input shape.
    Returns the multiply-accumulates of that forward pass (torch's flop counter), the workflow's measure of a
    job's size."""
    protocol = run["protocol"]
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; valid: {', '.join(sorted(PROTOCOLS))}")
    check_hyperparameters(run["method"], run["hparams"])
    benchmark = BENCHMARKS.get(run["benchmark"])       # (an unknown one is named with the valid ones just below)
    if benchmark is not None and getattr(benchmark, "protocol", "online") != protocol:
        valid = [name for name, cls in sorted(BENCHMARKS.items()) if getattr(cls, "protocol", "online") == protocol]
        raise ConfigError(f"benchmark {run['benchmark']!r} does not run under protocol {protocol!r}; valid: "
                          f"{', '.join(valid)}")
    check_benchmark_arguments(run["benchmark"], run["benchmark_args"])
    if "activation" in run["model"]:
        check_activation(run["model"]["activation"])
    model_settings(run["model"], protocol)
    input_shape, outputs = benchmark_shapes(run["benchmark"], run["benchmark_args"])
    try:
        model = build_model(run["model"], input_shape, outputs, [0], protocol)
        with torch.no_grad(), FlopCounterMode(display=False) as flops:
            model.eval()(torch.zeros(1, 1, *input_shape))
    except (RuntimeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"model {run['model']} does not fit benchmark {run['benchmark']!r} (input shape "
                          f"{tuple(input_shape)}, {outputs} outputs): {' '.join(str(error).split())}") from None
    return flops.get_total_flops() // 2


def run_sources(run: dict) -> list[str]:
    """The library files a run's jobs depend on: editing one reruns exactly those jobs."""
    arch, _ = model_settings(run["model"], run["protocol"])
    files = ENGINE_SOURCES + source_files(PROTOCOLS[run["protocol"]]) + source_files(METHODS[run["method"]]) \
        + source_files(BENCHMARKS[run["benchmark"]]) + source_files(MODELS[arch])
    if "activation" in run["model"]:
        files += source_files(ACTIVATIONS[run["model"]["activation"]])
    return sorted(dict.fromkeys(files))


def answer(request: dict) -> dict:
    """The workflow's request {"runs": {key: run}, "registries": bool} answered: the registries and the figures
    (if asked for), and for each run up to the first bad one its sources, multiply-accumulates per example and,
    under the tasks protocol, the training-set size of each task; the first bad run as {"run": key, "message": ...}
    (or null)."""
    error, checked = None, {}
    for key, run in request["runs"].items():
        try:
            macs = check_run(run)
        except ConfigError as problem:
            error = {"run": key, "message": str(problem)}
            break
        checked[key] = {"sources": run_sources(run), "macs": macs}
        if run["protocol"] == "tasks":
            checked[key]["task_examples"] = BENCHMARKS[run["benchmark"]].planned_train_examples(**run["benchmark_args"])
    registries_and_figures = {**registries(), "figures": figures()} if request.get("registries", True) else None
    return {"registries": registries_and_figures, "runs": checked, "error": error}


if __name__ == "__main__":
    json.dump(answer(json.load(sys.stdin)), sys.stdout)
