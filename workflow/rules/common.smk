# Configuration, validation and the helper functions the rules' inputs and params call.
#
# The scale file (config/config.yaml, or the one given with --configfile) picks experiments of the protocol
# (config/experiments.yaml) and overrides fields of them; plasticity.config turns that into training jobs:
# one job = one run (method x hyperparameters) x one block of seeds.

import inspect
import math
import os
import shlex
import sys

import yaml

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from plasticity.config import (
    ConfigError,
    block_label,
    canonical_json,
    expand_runs,
    job_spec,
    load_protocol,
    resolve_experiments,
    seed_blocks,
)
from plasticity.benchmarks import BENCHMARKS, check_benchmark_arguments
from plasticity.methods import METHODS, check_hyperparameters
from figures import FIGURES


PROTOCOL_FILE = "config/experiments.yaml"
CLAIMS_FILE = "config/claims.yaml"
MNIST_FILE = "resources/mnist.npz"

# Library files every training job runs, whatever its method and benchmark: editing one reruns every job.
# A job also depends on the files defining its method and benchmark classes (see `library_sources`).
ENGINE_SOURCES = [
    "plasticity/train.py",
    "plasticity/nets.py",
    "plasticity/metrics.py",
    "plasticity/seeding.py",
    "plasticity/methods/__init__.py",
    "plasticity/benchmarks/__init__.py",
]

PAPER_TITLES = {
    "dohare2024": "Dohare et al. 2024, Loss of plasticity in deep continual learning",
    "adalin2025": "AdaLin 2025",
    "ngm2025": "NGM-SGD 2025",
}


def config_error(message):
    """Stop Snakemake with one line naming the bad value (no traceback)."""
    sys.exit(f"Configuration error: {message}")


def _schema_message(error, where):
    """One line from the jsonschema ValidationError that snakemake.utils.validate turned into a WorkflowError."""
    cause = error.__cause__ or error.__context__
    if not (hasattr(cause, "absolute_path") and hasattr(cause, "message")):
        return f"{where}: {error}"
    path = ".".join(str(part) for part in cause.absolute_path)
    return f"{where}: {path}: {cause.message}" if path else f"{where}: {cause.message}"


def _validated_experiments():
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as error:
        config_error(_schema_message(error, "config"))

    try:
        protocol = load_protocol(PROTOCOL_FILE)
    except yaml.YAMLError as error:
        config_error(f"{PROTOCOL_FILE} is not valid YAML: {' '.join(str(error).split())}")
    if not isinstance(protocol, dict):
        config_error(f"{PROTOCOL_FILE} must map experiment names to experiments")
    try:
        experiments = resolve_experiments(config, protocol)
    except ConfigError as error:
        config_error(f"{error} (scale {config['scale']!r})")

    for name, experiment in experiments.items():
        try:
            validate(experiment, "../schemas/experiments.schema.yaml", set_default=False)
        except WorkflowError as error:
            config_error(_schema_message(error, f"experiment {name!r} (scale {config['scale']!r})"))
        try:
            runs = expand_runs(experiment)
        except ConfigError as error:
            config_error(f"experiment {name!r}: {error}")
        for run_id, run in runs.items():
            try:
                check_hyperparameters(run["method"], run["hparams"])
                check_benchmark_arguments(experiment["benchmark"], run["benchmark_args"])
            except ConfigError as error:
                config_error(f"{error} (in run {run_id!r} of experiment {name!r})")

    for figure, mod in FIGURES.items():
        unknown = [name for name in mod.EXPERIMENTS if name not in protocol]
        if unknown:
            config_error(f"figure {figure!r} draws unknown experiment(s) {unknown}; "
                         f"valid: {', '.join(sorted(protocol))}")
    return protocol, experiments


PROTOCOL, EXPERIMENTS = _validated_experiments()
SCALE = config["scale"]
OVERRIDES = (config.get("overrides") or {}).get(SCALE) or {}


# ---------------------------------------------------------------------------------------------------------------
# Training jobs

def _jobs():
    """{(experiment, run id, block label): seeds} for every training job of the selected experiments."""
    jobs = {}
    for name, experiment in EXPERIMENTS.items():
        for run_id in expand_runs(experiment):
            for seeds in seed_blocks(experiment["seeds"], config["seeds_per_job"]):
                jobs[(name, run_id, block_label(seeds))] = seeds
    return jobs


JOBS = _jobs()


def run_parquet(experiment, run, block):
    return f"results/runs/{experiment}/{run}/seeds{block}.parquet"


def experiment_runs(experiment):
    """The per-job result files of one experiment."""
    return [run_parquet(*key) for key in JOBS if key[0] == experiment]


def all_runs():
    return [run_parquet(*key) for key in JOBS]


def _job(wildcards):
    key = (wildcards.experiment, wildcards.run, wildcards.block)
    if key not in JOBS:
        if wildcards.experiment not in EXPERIMENTS:
            config_error(f"experiment {wildcards.experiment!r} is not selected by scale {SCALE!r}; "
                         f"selected: {', '.join(EXPERIMENTS)}")
        runs = expand_runs(EXPERIMENTS[wildcards.experiment])
        if wildcards.run not in runs:
            config_error(f"unknown run {wildcards.run!r} of experiment {wildcards.experiment!r}; "
                         f"valid: {', '.join(runs)}")
        blocks = sorted({block for (name, run, block) in JOBS if (name, run) == key[:2]})
        config_error(f"seed block {wildcards.block!r} is not a job of {wildcards.experiment}/{wildcards.run} "
                     f"at seeds_per_job={config['seeds_per_job']}; valid: {', '.join(blocks)}")
    return key, JOBS[key]


def train_spec(wildcards):
    """Canonical JSON of the job spec: the params whose change reruns exactly this job."""
    (experiment, run, _), seeds = _job(wildcards)
    return canonical_json(job_spec(experiment, EXPERIMENTS[experiment], run, seeds, config["device"]))


# Modules whose edits must not rerun jobs through the import graph: the package roots and the config/CLI layer
# (a change there that matters changes the job spec, i.e. the params).
_NOT_JOB_SOURCES = {"plasticity", "plasticity.config", "plasticity.cli"}


def _source_files(obj):
    """Files of the plasticity modules that define `obj`, followed through the names they import
    (so a CBP built on plasticity/methods/adam.py also reruns when adam.py changes)."""
    files, seen = [], set()
    pending = [sys.modules[obj.__module__]]
    while pending:
        mod = pending.pop()
        name = mod.__name__
        if name in seen or name in _NOT_JOB_SOURCES or not name.startswith("plasticity."):
            continue
        seen.add(name)
        files.append(_workflow_path(mod.__file__))
        if hasattr(mod, "__path__"):
            continue  # a package's __init__: do not follow its registration imports of every member
        for value in vars(mod).values():
            other = value if inspect.ismodule(value) else sys.modules.get(getattr(value, "__module__", None) or "")
            if other is not None:
                pending.append(other)
    return files


def _workflow_path(path):
    """A path relative to the working directory when it lies inside it (they read better in the job table)."""
    path = os.path.abspath(path)
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def mnist_source_flag():
    """`--mnist-path PATH` when the scale file names user-supplied MNIST files."""
    return f"--mnist-path {shlex.quote(config['mnist_path'])}" if config.get("mnist_path") else ""


def needs_mnist(benchmark):
    return "mnist" in benchmark


def library_sources(method, benchmark):
    """The library files a (method, benchmark) job depends on: editing one reruns exactly those jobs."""
    files = list(ENGINE_SOURCES) + _source_files(METHODS[method]) + _source_files(BENCHMARKS[benchmark])
    return sorted(dict.fromkeys(files))


def train_inputs(wildcards):
    (experiment, run, _), _ = _job(wildcards)
    method = expand_runs(EXPERIMENTS[experiment])[run]["method"]
    benchmark = EXPERIMENTS[experiment]["benchmark"]
    inputs = {"sources": library_sources(method, benchmark)}
    if needs_mnist(benchmark):
        inputs["mnist"] = MNIST_FILE
    return inputs


def train_mnist_flag(wildcards, input):
    return f"--mnist {input.mnist}" if "mnist" in input.keys() else ""


def train_checkpoint_flags(wildcards, output):
    """`plasticity train`'s checkpoint options: the file beside the output (see train.smk) and the scale file's
    `checkpoint` settings (null -> off). A param computed from the output is not a rerun trigger for Snakemake,
    and how often a job saves its state changes no result."""
    def value(setting):
        return "off" if setting is None else setting

    settings = config["checkpoint"]
    path = os.path.splitext(output.parquet)[0] + ".ckpt"
    return (f"--checkpoint {path} --checkpoint-minutes {value(settings['minutes'])} "
            f"--checkpoint-tasks {value(settings['tasks'])}")


def _weights(wildcards):
    """Weights of one seed's network (multiply-accumulates per example, forward)."""
    (experiment, run, _), _ = _job(wildcards)
    spec = EXPERIMENTS[experiment]
    model = expand_runs(spec)[run]["model"]
    mnist = needs_mnist(spec["benchmark"])
    inputs = 784 if mnist else spec["benchmark_args"].get("num_inputs", 20)
    outputs = 10 if mnist else 1
    width, depth = model["width"], model["depth"]
    if depth == 0:
        return inputs * outputs
    return inputs * width + (depth - 1) * width * width + width * outputs


def _cost(wildcards):
    """Multiply-accumulates of one job: weights x examples x seeds."""
    (experiment, _, _), seeds = _job(wildcards)
    return _weights(wildcards) * EXPERIMENTS[experiment]["examples"] * len(seeds)


def train_runtime(wildcards):
    """Minutes to request from a cluster: twice an estimate from the job's size. Calibrated on a 2-core CPU
    (quick scale: 0.6 ms per online step of overhead, ~1 GFLOP/s for batch-1 products); the GPU figures are
    guesses (launch-bound steps, fast products)."""
    (experiment, _, _), _ = _job(wildcards)
    examples = EXPERIMENTS[experiment]["examples"]
    step_s, flops_per_s = (1.5e-3, 2e11) if TRAIN_GPUS else (6e-4, 1e9)
    seconds = examples * step_s + 3 * _cost(wildcards) / flops_per_s  # forward + backward
    return max(10, math.ceil(2 * seconds / 60))


def train_mem_mb(wildcards):
    """Weights, gradients and two optimizer buffers (float32) of every seed, plus MNIST and the interpreter."""
    (experiment, _, _), seeds = _job(wildcards)
    data_mb = 400 if needs_mnist(EXPERIMENTS[experiment]["benchmark"]) else 0
    return 1500 + data_mb + math.ceil(4 * 4 * _weights(wildcards) * len(seeds) / 1e6)


def uses_gpu():
    if config["device"] == "cuda":
        return True
    if config["device"] == "auto":
        import torch

        return torch.cuda.is_available()
    return False


TRAIN_GPUS = 1 if uses_gpu() else 0


# ---------------------------------------------------------------------------------------------------------------
# Aggregates, figures, reproduction table

def aggregate_file(experiment):
    return f"results/aggregate/{experiment}.parquet"


def selected_figures():
    """Figures whose experiments the scale all selects."""
    return [name for name, mod in FIGURES.items() if set(mod.EXPERIMENTS) <= set(EXPERIMENTS)]


def _figure(wildcards):
    if wildcards.figure not in FIGURES:
        config_error(f"unknown figure {wildcards.figure!r}; valid: {', '.join(sorted(FIGURES))}")
    mod = FIGURES[wildcards.figure]
    missing = [name for name in mod.EXPERIMENTS if name not in EXPERIMENTS]
    if missing:
        config_error(f"figure {wildcards.figure!r} needs experiment(s) {missing}, which scale {SCALE!r} "
                     f"does not select (experiments: {', '.join(EXPERIMENTS)})")
    return mod


def figure_inputs(wildcards):
    """The figure's aggregates, plus its experiments' per-job results and the claims, so that the caption can
    say which of the paper's claims hold at this scale."""
    experiments = _figure(wildcards).EXPERIMENTS
    return {"aggregates": [aggregate_file(name) for name in experiments],
            "runs": [run for name in experiments for run in experiment_runs(name)],
            "claims": CLAIMS_FILE}


def figure_paper(wildcards):
    paper = PROTOCOL[_figure(wildcards).EXPERIMENTS[0]]["paper"]
    return PAPER_TITLES.get(paper, paper)


def _describe_seeds(names):
    counts = sorted({EXPERIMENTS[name]["seeds"] for name in names})
    paper = sorted({PROTOCOL[name]["seeds"] for name in names})
    ours = "/".join(str(count) for count in counts)
    theirs = "/".join(str(count) for count in paper)
    if counts == paper:
        return f"{ours} seeds per run"
    return f"{ours} seeds per run (paper: {theirs})"


def _describe_deviations(names):
    """The scale's overrides of the paper protocol for these experiments, as `experiment: field=value; ...`."""
    parts = []
    for name in names:
        override = OVERRIDES.get(name) or {}
        fields = [f"{key}={canonical_json(value) if isinstance(value, (dict, list)) else value}"
                  for key, value in sorted(override.items())]
        if fields:
            parts.append(f"{name}: {', '.join(fields)}")
    return "; ".join(parts) if parts else "none (the papers' protocols)"


def figure_seeds(wildcards):
    return _describe_seeds(_figure(wildcards).EXPERIMENTS)


def figure_deviations(wildcards):
    return _describe_deviations(_figure(wildcards).EXPERIMENTS)


def figure_description(wildcards):
    descriptions = [PROTOCOL[name].get("description", name) for name in _figure(wildcards).EXPERIMENTS]
    return "; ".join(dict.fromkeys(descriptions))


def reproduction_deviations():
    return _describe_deviations(list(EXPERIMENTS))
