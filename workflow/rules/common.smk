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
from plasticity.activations import ACTIVATIONS, check_activation
from plasticity.benchmarks import BENCHMARKS, check_benchmark_arguments
from plasticity.methods import METHODS, check_hyperparameters
from plasticity.engine import joint
from figures import FIGURES


PROTOCOL_FILE = "config/experiments.yaml"
CLAIMS_FILE = "config/claims.yaml"
MNIST_FILE = "resources/mnist.npz"

# Library files every training job runs, whatever its method and benchmark: editing one reruns every job.
# A job also depends on the files defining its method, benchmark and activation (see `library_sources`).
ENGINE_SOURCES = [
    "plasticity/train.py",
    "plasticity/nets.py",
    "plasticity/metrics.py",
    "plasticity/seeding.py",
    "plasticity/methods/__init__.py",
    "plasticity/benchmarks/__init__.py",
    "plasticity/activations/__init__.py",
]

PAPER_TITLES = {
    "dohare2024": "Dohare et al. 2024, Loss of plasticity in deep continual learning",
    "adalin2025": "Razavi Rohani et al. 2025, Adaptive linearity injection (AdaLin)",
    "ngm2025": "Rodriguez-Garcia et al. 2025, Noradrenergic gain modulation attenuates the stability gap",
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
        training = experiment.get("protocol", "online")
        benchmark = BENCHMARKS.get(experiment["benchmark"])      # (an unknown one is reported with the runs)
        if benchmark is not None and getattr(benchmark, "protocol", "online") != training:
            valid = [bench for bench, cls in sorted(BENCHMARKS.items())
                     if getattr(cls, "protocol", "online") == training]
            config_error(f"benchmark {experiment['benchmark']!r} of experiment {name!r} does not run under protocol "
                         f"{training!r}; valid: {', '.join(valid)}")
        for run_id, run in runs.items():
            try:
                check_hyperparameters(run["method"], run["hparams"])
                check_benchmark_arguments(experiment["benchmark"], run["benchmark_args"])
                check_activation(run["model"]["activation"])
            except ConfigError as error:
                config_error(f"{error} (in run {run_id!r} of experiment {name!r})")

    for figure, mod in FIGURES.items():
        unknown = [name for name in mod.EXPERIMENTS + getattr(mod, "PAPER_EXPERIMENTS", []) if name not in protocol]
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


def library_sources(method, benchmark, activation, protocol="online"):
    """The library files a (method, benchmark, activation) job depends on: editing one reruns exactly those jobs.
    Jobs of the joint protocol also depend on its loop (plasticity/joint.py) and what it imports (gain net,
    metrics)."""
    files = (list(ENGINE_SOURCES) + _source_files(METHODS[method]) + _source_files(BENCHMARKS[benchmark])
             + _source_files(ACTIVATIONS[activation]))
    if protocol == "joint":
        files += _source_files(joint.train_joint)
    return sorted(dict.fromkeys(files))


def train_inputs(wildcards):
    (experiment, run, _), _ = _job(wildcards)
    run_settings = expand_runs(EXPERIMENTS[experiment])[run]
    benchmark = EXPERIMENTS[experiment]["benchmark"]
    inputs = {"sources": library_sources(run_settings["method"], benchmark, run_settings["model"]["activation"],
                                         EXPERIMENTS[experiment].get("protocol", "online"))}
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


def _steps(experiment):
    """Optimizer steps of one job: online, examples / batch size; joint, contexts x iterations per context (the
    number of contexts: the benchmark's task count argument, or its angles)."""
    spec = EXPERIMENTS[experiment]
    if spec.get("protocol", "online") != "joint":
        return spec["examples"] // spec["batch_size"]
    args = spec["benchmark_args"]
    return spec["iterations_per_context"] * (args.get("num_tasks") or len(args.get("angles") or [0]))


def _evaluated_examples(experiment):
    """Joint protocol: examples evaluated per step, at most (every task's evaluation set, the whole test set
    counted as 10,000)."""
    spec = EXPERIMENTS[experiment]
    if spec.get("protocol", "online") != "joint":
        return 0
    args = spec["benchmark_args"]
    tasks = args.get("num_tasks") or len(args.get("angles") or [0])
    return tasks * (spec["evaluation"]["samples_per_task"] or 10_000)


def _cost(wildcards):
    """Multiply-accumulates of one job: weights x (3 x examples trained + examples evaluated) x seeds."""
    (experiment, _, _), seeds = _job(wildcards)
    spec = EXPERIMENTS[experiment]
    examples = 3 * _steps(experiment) * spec["batch_size"] + _steps(experiment) * _evaluated_examples(experiment)
    return _weights(wildcards) * examples * len(seeds)


def train_runtime(wildcards):
    """Minutes to request from a cluster: twice an estimate from the job's size, at most the experiment's
    `max_runtime` (a job stopped at its limit resumes from its checkpoint when retried). Calibrated on a 2-core CPU
    (quick scale: 0.6 ms per online step of overhead, ~1 GFLOP/s for batch-1 products, ~10 for the AdaLin
    benchmarks' batch 16; the joint protocol's batched products run at ~50 GFLOP/s); the GPU figures are guesses
    (launch-bound steps, fast products)."""
    (experiment, _, _), _ = _job(wildcards)
    spec = EXPERIMENTS[experiment]
    cpu_flops_per_s = 5e10 if spec.get("protocol", "online") == "joint" else 1e10 if spec["batch_size"] > 1 else 1e9
    step_s, flops_per_s = (1.5e-3, 2e11) if train_gpus(wildcards) else (6e-4, cpu_flops_per_s)
    seconds = _steps(experiment) * step_s + _cost(wildcards) / flops_per_s
    return min(max(10, math.ceil(2 * seconds / 60)), _compute(wildcards).get("max_runtime", math.inf))


def train_mem_mb(wildcards):
    """Weights, gradients and two optimizer buffers (float32) of every seed, plus MNIST, the joint protocol's
    evaluation sets and activations, and the interpreter."""
    (experiment, _, _), seeds = _job(wildcards)
    data_mb = 400 if needs_mnist(EXPERIMENTS[experiment]["benchmark"]) else 0
    evaluation_mb = 3 * 4 * 784 * _evaluated_examples(experiment) * len(seeds) / 1e6
    return 1500 + data_mb + math.ceil(4 * 4 * _weights(wildcards) * len(seeds) / 1e6 + evaluation_mb)


def _compute(wildcards):
    """The `resources` block of the job's experiment (config/experiments.yaml, a scale may override it)."""
    (experiment, _, _), _ = _job(wildcards)
    return EXPERIMENTS[experiment].get("resources") or {}


def _gres_gpus(gres):
    """GPUs in a Slurm GRES request: `gpu` (one), `gpu:2`, `gpu:a100:2`."""
    count = gres.split(":")[-1]
    return int(count) if count.isdigit() else 1


def train_gpus(wildcards):
    """GPUs the job runs on: its experiment's `gpu` (or the count in its `gres`); none with device: cpu, at least
    one with device: cuda. Decided by the config alone, so that a cluster's submit host (often without a GPU) and
    the node that runs the job agree; a job with none runs on the CPU (the train rule hides GPUs from it)."""
    if config["device"] == "cpu":
        return 0
    compute = _compute(wildcards)
    gpus = _gres_gpus(compute["gres"]) if "gres" in compute else compute.get("gpu", 0)
    return max(gpus, 1) if config["device"] == "cuda" else gpus


def _slurm_gpus(wildcards):
    """The job's GPU request in Slurm's resources: the experiment's `gres` when it gives one, else `gpu` GPUs (of
    `gpu_model`, if given; None leaves a resource unset); none for a job on the CPU."""
    gpus = train_gpus(wildcards)
    compute = _compute(wildcards)
    if gpus and "gres" in compute:
        return {"gpu": 0, "gpu_model": None, "gres": compute["gres"]}  # Slurm must not get both
    return {"gpu": gpus, "gpu_model": compute.get("gpu_model") if gpus else None, "gres": ""}


def train_gpu(wildcards):
    """The `gpu` resource: Slurm's --gpus, and locally a slot of the GPU the workflow profile declares."""
    return _slurm_gpus(wildcards)["gpu"]


def train_gpu_model(wildcards):
    return _slurm_gpus(wildcards)["gpu_model"]


def train_gres(wildcards):
    return _slurm_gpus(wildcards)["gres"]  # "" rather than unset: the train rule's shell reads it


# CPU jobs estimated at most this long (minutes requested) are grouped; longer ones are submitted on their own.
GROUPED_MAX_MINUTES = 60


def train_group(wildcards):
    """Short CPU jobs join group `train_cpu`, which a cluster profile packs several to a submitted job
    (`group-components`); GPU jobs (a group would add up their GPUs) and long CPU jobs (paper-scale Random Label
    MNIST: hours) are submitted one by one."""
    return None if train_gpus(wildcards) or train_runtime(wildcards) > GROUPED_MAX_MINUTES else "train_cpu"


# ---------------------------------------------------------------------------------------------------------------
# Aggregates, figures, reproduction table

from figures import unknown_figure_message


def aggregate_file(experiment):
    return f"results/aggregate/{experiment}.parquet"


def _figure_experiments(mod):
    """The experiments a figure needs, or, for a figure drawn from no experiment (a simulation such as the
    stability-gap paper's Fig. 2), those of its paper it is shown with (PAPER_EXPERIMENTS)."""
    return mod.EXPERIMENTS or getattr(mod, "PAPER_EXPERIMENTS", [])


def selected_figures():
    """Figures whose experiments the scale all selects."""
    return [name for name, mod in FIGURES.items() if set(_figure_experiments(mod)) <= set(EXPERIMENTS)]


def _figure(wildcards):
    """The module of figure `{figure}` ("<paper>/<name>"), or one line naming the valid figures."""
    if wildcards.figure not in FIGURES:
        config_error(unknown_figure_message(wildcards.figure))
    mod = FIGURES[wildcards.figure]
    missing = [name for name in _figure_experiments(mod) if name not in EXPERIMENTS]
    if missing:
        config_error(f"figure {wildcards.figure!r} needs experiment(s) {missing}, which scale {SCALE!r} "
                     f"does not select (experiments: {', '.join(EXPERIMENTS)})")
    return mod


def figure_inputs(wildcards):
    """The aggregates of the figure's experiments (none for a simulation)."""
    return [aggregate_file(name) for name in _figure(wildcards).EXPERIMENTS]


def figure_paper(wildcards):
    """The report's subcategory of a figure: the title of its paper (the figure's folder)."""
    _figure(wildcards)
    paper = wildcards.figure.split("/")[0]
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
    """The scale's overrides of the paper protocol for these experiments, as `experiment: field=value; ...`
    (not `resources`: where the jobs run is no deviation)."""
    parts = []
    for name in names:
        override = OVERRIDES.get(name) or {}
        fields = [f"{key}={canonical_json(value) if isinstance(value, (dict, list)) else value}"
                  for key, value in sorted(override.items()) if key != "resources"]
        if fields:
            parts.append(f"{name}: {', '.join(fields)}")
    return "; ".join(parts) if parts else "none (the papers' protocols)"


def figure_seeds(wildcards):
    experiments = _figure(wildcards).EXPERIMENTS
    return _describe_seeds(experiments) if experiments else "a deterministic simulation, no seeds"


def figure_deviations(wildcards):
    return _describe_deviations(_figure(wildcards).EXPERIMENTS)


def figure_description(wildcards):
    mod = _figure(wildcards)
    descriptions = [PROTOCOL[name].get("description", name) for name in mod.EXPERIMENTS] or [mod.TITLE]
    return "; ".join(dict.fromkeys(descriptions))


# The tables the workflow writes, results/tables/<paper>/<table>.{csv,md,tex}, per paper, when the scale selects any
# of the paper's experiments.
PAPER_TABLES = {"ngm2025": ["table1", "table2"], "adalin2025": ["table"]}


def paper_experiments(paper):
    """The selected experiments of one paper."""
    return [name for name, spec in EXPERIMENTS.items() if spec["paper"] == paper]


def table_inputs(paper):
    """Input function of a paper's tables rule: the per-job results of its experiments, and the claims."""
    return lambda wildcards: {"runs": [run for name in paper_experiments(paper) for run in experiment_runs(name)],
                              "claims": CLAIMS_FILE}


def table_targets():
    return [f"results/tables/{paper}/{table}.{ext}" for paper, tables in PAPER_TABLES.items()
            if paper_experiments(paper) for table in tables for ext in ("csv", "md", "tex")]


def table_folder(wildcards, output):
    """Where a tables job writes: the folder of its outputs, results/tables/<paper>."""
    return os.path.dirname(output[0])


def reproduction_deviations():
    return _describe_deviations(list(EXPERIMENTS))
