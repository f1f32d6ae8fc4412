"""The workflow's logic without the training stack: the validated experiments of a scale, the table of training
jobs, their specs, inputs and resource requests. `workflow/rules/common.smk` is glue over a `Workflow`.

Nothing here imports torch: what the library holds (registries, the source files of each run, a check that each
run's method, benchmark and model fit together) comes from `python -m plasticity.catalog` in a child process,
cached under `.snakemake/` by the hash of the library's sources and by run, so a DAG rebuilt with unchanged code
and runs imports no torch at all.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from plasticity.config import (ConfigError, block_label, canonical_json, expand_runs, job_spec, load_protocol,
                               resolve_experiments, seed_blocks, training_identity,
                               unknown_figure_message)
from plasticity.data.datasets import DATASETS, SYNTHETIC, data_message
from plasticity.io import write_atomically

PROTOCOL_FILE = "config/experiments.yaml"
CLAIMS_FILE = "config/claims.yaml"
SCHEMAS = "workflow/schemas"
CATALOG_CACHE = ".snakemake/plasticity-catalog"
# The materialised data set each benchmark's `dataset` names (the data rules' outputs).
DATA_FILES = {name: info.file for name, info in DATASETS.items()}
# CPU jobs estimated at most this long (minutes requested) are grouped; longer ones are submitted on their own.
GROUPED_MAX_MINUTES = 60


def schema_message(error, where: str, keyed_by: tuple[str, ...] = ()) -> str:
    """One line from the jsonschema ValidationError behind snakemake.utils.validate's WorkflowError. `keyed_by`
    names the levels of a mapping validated in one call (("experiment", "run")): the line names the entry."""
    cause = error.__cause__ or error.__context__
    if not (hasattr(cause, "absolute_path") and hasattr(cause, "message")):
        return f"{where}: {error}"
    parts = list(cause.absolute_path)
    keys, path = parts[:len(keyed_by)], ".".join(str(part) for part in parts[len(keyed_by):])
    if keys:
        entry = " of ".join(f"{level} {key!r}" for level, key in reversed(list(zip(keyed_by, keys))))
        where = f"{entry} ({where})"
    return f"{where}: {path}: {cause.message}" if path else f"{where}: {cause.message}"


def validate(data: dict, schema: Path, where: str, set_default: bool = True, keyed_by: tuple[str, ...] = ()) -> None:
    """snakemake.utils.validate, its error as one ConfigError line naming the bad value (and the entry, for a
    mapping of `keyed_by` levels)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate as snakemake_validate
    try:
        snakemake_validate(data, str(schema), set_default=set_default)
    except WorkflowError as error:
        raise ConfigError(schema_message(error, where, keyed_by)) from None


def library_hash(root: Path) -> str:
    """Hash of every source file of the library and the figures: the catalog's cache key."""
    digest = hashlib.sha256()
    for path in sorted([*root.glob("plasticity/**/*.py"), *root.glob("figures/**/*.py")]):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_catalog(root: Path, runs: dict[str, dict]) -> dict:
    """plasticity.catalog's answer for these runs (registries, figures, each run's sources, the first bad run).

    Cached per library version (the hash of its sources) in two parts: the registries, and each run's check by
    the run itself. So a DAG rebuilt with unchanged code and runs starts no child process, and one whose scale
    changed a few runs checks only those (a check builds the run's model: torch, in a child process). Only runs
    that passed are cached: a bad run is checked, and named, again."""
    folder = root / CATALOG_CACHE / library_hash(root)[:32]
    registries_file = folder / "registries.json"
    run_files = {key: folder / "runs" / f"{hashlib.sha256(canonical_json(run).encode()).hexdigest()[:32]}.json"
                 for key, run in runs.items()}
    unchecked = {key: run for key, run in runs.items() if not run_files[key].exists()}
    error = None
    if unchecked or not registries_file.exists():
        answer = _ask_catalog(root, {"runs": unchecked, "registries": not registries_file.exists()})
        if answer["registries"] is not None:
            _write_json(registries_file, answer["registries"])
        for key, checked in answer["runs"].items():
            _write_json(run_files[key], checked)
        error = answer["error"]
    catalog = {**json.loads(registries_file.read_text()), "sources": {}, "macs": {}, "task_examples": {},
               "error": error}
    for key in runs:
        if run_files[key].exists():
            for field, value in json.loads(run_files[key].read_text()).items():
                catalog[field][key] = value
    return catalog


def _write_json(path: Path, value) -> None:
    """All or nothing: several Snakemake processes may build the DAG, and read the cache, at once."""
    write_atomically(path, lambda temporary: Path(temporary).write_text(json.dumps(value)))


def _ask_catalog(root: Path, request: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "plasticity.catalog"], input=canonical_json(request),
                            capture_output=True, text=True, cwd=root, env=env)
    if result.returncode != 0:
        raise ConfigError(f"the library could not be loaded to check the runs: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout)


class Workflow:
    """A scale's experiments, validated, and everything the rules ask about their jobs."""

    def __init__(self, config: dict, root: str | Path = "."):
        self.root, self.config = Path(root), config
        validate(config, self.root / SCHEMAS / "config.schema.yaml", "config")
        self.scale = config["scale"]
        try:
            self.protocol = load_protocol(self.root / PROTOCOL_FILE)
        except yaml.YAMLError as error:
            raise ConfigError(f"{PROTOCOL_FILE} is not valid YAML: {' '.join(str(error).split())}") from None
        if not isinstance(self.protocol, dict):
            raise ConfigError(f"{PROTOCOL_FILE} must map experiment names to experiments")
        try:
            self.experiments = resolve_experiments(config, self.protocol)
        except ConfigError as error:
            raise ConfigError(f"{error} (scale {self.scale!r})") from None
        self.overrides = (config.get("overrides") or {}).get(self.scale) or {}
        self.runs = self._validated_runs()
        self.catalog = load_catalog(self.root, {f"{name}/{run_id}": self._catalog_run(name, run)
                                                for name, runs in self.runs.items() for run_id, run in runs.items()})
        if self.catalog["error"]:
            experiment, run_id = self.catalog["error"]["run"].split("/", 1)
            raise ConfigError(f"{self.catalog['error']['message']} (in run {run_id!r} of experiment {experiment!r})")
        self.figures = self.catalog["figures"]
        for figure, info in self.figures.items():
            unknown = [name for name in info["experiments"] + info["paper_experiments"] if name not in self.protocol]
            if unknown:
                raise ConfigError(f"figure {figure!r} draws unknown experiment(s) {unknown}; "
                                  f"valid: {', '.join(sorted(self.protocol))}")
        self.jobs = {(name, run_id, block_label(seeds)): seeds
                     for name, experiment in self.experiments.items() for run_id in self.runs[name]
                     for seeds in seed_blocks(experiment["seeds"], self.seeds_per_job(name))}
        self.trained_as = self._identical_jobs()
        self._check_data()

    def _identical_jobs(self) -> dict[tuple[str, str, str], tuple[str, str, str]]:
        """{job: the earlier job it equals}: jobs of different experiments that train the same thing (e.g. the
        default scale's BP at step 0.003 in three permuted-MNIST experiments) train once; the others relabel its
        results (plasticity.engine.job.relabel_job)."""
        first, identical = {}, {}
        for key, seeds in self.jobs.items():
            name, run_id, _ = key
            identity = training_identity(job_spec(name, self.experiments[name], run_id, seeds, self.config["device"]))
            identical_to = first.setdefault(identity, key)
            if identical_to != key:
                identical[key] = identical_to
        return identical

    def _validated_runs(self) -> dict[str, dict[str, dict]]:
        """{experiment: {run id: run}}: the experiments checked, their grids expanded, the runs checked."""
        where = f"scale {self.scale!r}"
        validate(self.experiments, self.root / SCHEMAS / "experiments.schema.yaml", where, set_default=False,
                 keyed_by=("experiment",))
        runs = {}
        for name, experiment in self.experiments.items():
            try:
                runs[name] = expand_runs(experiment)
            except ConfigError as error:
                raise ConfigError(f"experiment {name!r}: {error}") from None
        validate(runs, self.root / SCHEMAS / "run.schema.yaml", where, set_default=False,
                 keyed_by=("experiment", "run"))
        return runs

    def _catalog_run(self, name: str, run: dict) -> dict:
        return {"protocol": self.protocol_of(name), "benchmark": self.experiments[name]["benchmark"],
                **{field: run[field] for field in ("method", "hparams", "model", "benchmark_args")}}

    def seeds_per_job(self, experiment: str) -> int:
        """Seeds trained together in one job: the experiment's own `seeds_per_job` (1 for a large network, where
        seeds gain nothing from sharing a process), else the scale's."""
        return self.experiments[experiment].get("seeds_per_job", self.config["seeds_per_job"])

    def protocol_of(self, experiment: str) -> str:
        return self.experiments[experiment].get("protocol", "online")

    # --- training jobs -----------------------------------------------------------------------------------------

    @staticmethod
    def run_parquet(experiment: str, run: str, block: str) -> str:
        return f"results/runs/{experiment}/{run}/seeds{block}.parquet"

    def experiment_runs(self, experiment: str) -> list[str]:
        """The per-job result files of one experiment."""
        return [self.run_parquet(*key) for key in self.jobs if key[0] == experiment]

    def all_runs(self) -> list[str]:
        return [self.run_parquet(*key) for key in self.jobs]

    def job(self, experiment: str, run: str, block: str) -> list[int]:
        """The seeds of one job; ConfigError naming what is valid for a target that is no job of this scale."""
        key = (experiment, run, block)
        if key in self.jobs:
            return self.jobs[key]
        if experiment not in self.experiments:
            raise ConfigError(f"experiment {experiment!r} is not selected by scale {self.scale!r}; "
                              f"selected: {', '.join(self.experiments)}")
        if run not in self.runs[experiment]:
            raise ConfigError(f"unknown run {run!r} of experiment {experiment!r}; "
                              f"valid: {', '.join(self.runs[experiment])}")
        blocks = sorted({b for (name, run_id, b) in self.jobs if (name, run_id) == (experiment, run)})
        raise ConfigError(f"seed block {block!r} is not a job of {experiment}/{run} at "
                          f"seeds_per_job={self.seeds_per_job(experiment)}; valid: {', '.join(blocks)}")

    def train_spec(self, experiment: str, run: str, block: str) -> str:
        """Canonical JSON of the job spec: the params whose change reruns exactly this job."""
        seeds = self.job(experiment, run, block)
        return canonical_json(job_spec(experiment, self.experiments[experiment], run, seeds, self.config["device"]))

    def dataset_of(self, experiment: str) -> str | None:
        return self.catalog["benchmarks"][self.experiments[experiment]["benchmark"]]["dataset"]

    def train_inputs(self, experiment: str, run: str, block: str) -> dict:
        """The library files the job runs (editing one reruns exactly the jobs that run it) and its data file."""
        self.job(experiment, run, block)
        inputs = {"sources": self.catalog["sources"][f"{experiment}/{run}"]}
        dataset = self.dataset_of(experiment)
        if dataset:
            inputs["data"] = DATA_FILES[dataset]
        if (experiment, run, block) in self.trained_as:
            inputs["same_as"] = self.run_parquet(*self.trained_as[experiment, run, block])
        return inputs

    # --- data sets ---------------------------------------------------------------------------------------------

    def data_setting(self, name: str) -> str | None:
        """The scale file's `data: {name: ...}`: a path, `synthetic`, or None (download where one exists)."""
        return (self.config.get("data") or {}).get(name)

    def needed_by(self, name: str) -> list[str]:
        """The selected experiments whose benchmark reads data set `name`."""
        return [experiment for experiment in self.experiments if self.dataset_of(experiment) == name]

    def _check_data(self) -> None:
        """What can be known before any job runs: a `data:` path that does not exist, or a data set an experiment
        needs that has no path and no download; either stops with the data set's one message."""
        for name, info in DATASETS.items():
            setting = self.data_setting(name)
            if setting == SYNTHETIC and not info.synthetic_per_class:
                raise ConfigError(f"data: {{{name}: {SYNTHETIC}}}: {name} has no synthetic source; valid: a path or "
                                  "null")
            if setting not in (None, SYNTHETIC) and not Path(setting).expanduser().exists():
                raise ConfigError(data_message(name, f"cannot be read: the path {setting} (data: {{{name}: "
                                                     f"{setting}}}) does not exist", self.needed_by(name)))
            if setting is None and not info.downloadable and self.needed_by(name):
                raise ConfigError(data_message(name, "cannot be downloaded", self.needed_by(name)))

    def data_flags(self, name: str) -> str:
        """`plasticity data`'s source option for data set `name`, from the scale file (none: the download)."""
        setting = self.data_setting(name)
        if setting == SYNTHETIC:
            return "--synthetic"
        return f"--path {shlex.quote(str(Path(setting).expanduser()))}" if setting else ""

    def checkpoint_flags(self, parquet: str) -> str:
        """`plasticity train`'s checkpoint options: the file beside the output and the scale file's `checkpoint`
        settings (null -> off). How often a job saves its state changes no result, so it is no rerun trigger."""
        settings = self.config["checkpoint"]

        def value(setting):
            return "off" if setting is None else setting

        return (f"--checkpoint {os.path.splitext(parquet)[0]}.ckpt --checkpoint-minutes {value(settings['minutes'])} "
                f"--checkpoint-tasks {value(settings['tasks'])}")

    # --- resource estimates ------------------------------------------------------------------------------------

    def _weights(self, experiment: str, run: str) -> int:
        """Multiply-accumulates of one seed's network per example (forward), as the catalog measured them; for an
        MLP, its weights."""
        return self.catalog["macs"][f"{experiment}/{run}"]

    def _contexts(self, experiment: str) -> int:
        args = self.experiments[experiment]["benchmark_args"]
        return args.get("num_tasks") or len(args.get("angles") or [0])

    def _steps(self, experiment: str, run: str) -> int:
        """Optimizer steps of one job: online, examples / batch size; joint, contexts x iterations per context;
        tasks, epochs per task x the batches of each task's training set."""
        spec = self.experiments[experiment]
        if self.protocol_of(experiment) == "tasks":
            return spec["epochs_per_task"] * sum(math.ceil(examples / spec["batch_size"])
                                                 for examples in self.catalog["task_examples"][f"{experiment}/{run}"])
        if self.protocol_of(experiment) != "joint":
            return spec["examples"] // spec["batch_size"]
        return spec["iterations_per_context"] * self._contexts(experiment)

    def _evaluated_examples(self, experiment: str) -> int:
        """Joint protocol: examples evaluated per step, at most (every task's evaluation set, the whole test set
        counted as 10,000)."""
        if self.protocol_of(experiment) != "joint":
            return 0
        return self._contexts(experiment) * (self.experiments[experiment]["evaluation"]["samples_per_task"] or 10_000)

    def _cost(self, experiment: str, run: str, block: str) -> int:
        """Multiply-accumulates of one job: weights x (3 x examples trained + examples evaluated) x seeds."""
        spec = self.experiments[experiment]
        steps = self._steps(experiment, run)
        examples = 3 * steps * spec["batch_size"] + steps * self._evaluated_examples(experiment)
        return self._weights(experiment, run) * examples * len(self.job(experiment, run, block))

    def compute(self, experiment: str) -> dict:
        """The `resources` block of the experiment (config/experiments.yaml, a scale may override it)."""
        return self.experiments[experiment].get("resources") or {}

    def gpus(self, experiment: str) -> int:
        """GPUs the job runs on: its experiment's `gpu` (or the count in its `gres`); none with device: cpu, at
        least one with device: cuda. Decided by the config alone, so that a cluster's submit host (often without a
        GPU) and the node that runs the job agree; a job with none runs on the CPU."""
        if self.config["device"] == "cpu":
            return 0
        compute = self.compute(experiment)
        gpus = gres_gpus(compute["gres"]) if "gres" in compute else compute.get("gpu", 0)
        return max(gpus, 1) if self.config["device"] == "cuda" else gpus

    def estimated_seconds(self, experiment: str, run: str, block: str) -> float:
        """A job's time, estimated from its size. Calibrated on a 2-core CPU (quick scale: 0.6 ms per online step of
        overhead, ~1 GFLOP/s for batch-1 products, ~10 for the AdaLin benchmarks' batch 16; the joint protocol's
        batched products run at ~50 GFLOP/s; a Gaussian draw per parameter, seed and step where the run adds noise
        (`noise_std`: Shrink & Perturb), ~1.5 ns on the CPU, generated and added in one pass); the GPU figures are
        guesses (launch-bound steps, fast products)."""
        if (experiment, run, block) in self.trained_as:
            return 0.0          # relabels another job's results
        spec = self.experiments[experiment]
        cpu_flops_per_s = 5e10 if self.protocol_of(experiment) == "joint" else 1e10 if spec["batch_size"] > 1 else 1e9
        step_s, flops_per_s, draw_s = (1.5e-3, 2e11, 1e-11) if self.gpus(experiment) else (6e-4, cpu_flops_per_s, 1.5e-9)
        steps = self._steps(experiment, run)
        seconds = steps * step_s + self._cost(experiment, run, block) / flops_per_s
        if self.runs[experiment][run]["hparams"].get("noise_std"):
            seconds += steps * self._weights(experiment, run) * len(self.job(experiment, run, block)) * draw_s
        return seconds

    def runtime(self, experiment: str, run: str, block: str) -> int:
        """Minutes to request from a cluster: twice `estimated_seconds`, at most the experiment's `max_runtime` (a
        job stopped at its limit resumes from its checkpoint when retried)."""
        minutes = math.ceil(2 * self.estimated_seconds(experiment, run, block) / 60)
        return min(max(10, minutes), self.compute(experiment).get("max_runtime", math.inf))

    def priority(self, experiment: str, run: str, block: str) -> int:
        """Snakemake's scheduling priority of a training job: its estimated seconds, so that the longest jobs start
        first and no long job is left to run alone at the end of a run."""
        return round(self.estimated_seconds(experiment, run, block))

    def mem_mb(self, experiment: str, run: str, block: str) -> int:
        """Weights, gradients and two optimizer buffers (float32) of every seed, plus the data set, the joint protocol's
        evaluation sets and activations, and the interpreter."""
        seeds = len(self.job(experiment, run, block))
        dataset = self.dataset_of(experiment)
        data_mb = DATASETS[dataset].memory_mb if dataset else 0
        evaluation_mb = 3 * 4 * 784 * self._evaluated_examples(experiment) * seeds / 1e6
        return 1500 + data_mb + math.ceil(4 * 4 * self._weights(experiment, run) * seeds / 1e6 + evaluation_mb)

    def slurm_gpus(self, experiment: str) -> dict:
        """The job's GPU request in Slurm's resources: the experiment's `gres` when it gives one, else `gpu` GPUs
        (of `gpu_model`, if given; None leaves a resource unset); none for a job on the CPU."""
        gpus, compute = self.gpus(experiment), self.compute(experiment)
        if gpus and "gres" in compute:
            return {"gpu": 0, "gpu_model": None, "gres": compute["gres"]}  # Slurm must not get both
        return {"gpu": gpus, "gpu_model": compute.get("gpu_model") if gpus else None, "gres": ""}

    def group(self, experiment: str, run: str, block: str) -> str | None:
        """Short CPU jobs join group `train_cpu`, which a cluster profile packs several to a submitted job
        (`group-components`); GPU jobs (a group would add up their GPUs) and long CPU jobs are submitted one by
        one."""
        if self.gpus(experiment) or self.runtime(experiment, run, block) > GROUPED_MAX_MINUTES:
            return None
        return "train_cpu"

    # --- figures, tables and what their captions say -----------------------------------------------------------

    def figure_experiments(self, figure: str) -> list[str]:
        """The experiments a figure needs, or, for a figure drawn from no experiment (a simulation such as the
        stability-gap paper's Fig. 2), those of its paper it is shown with."""
        info = self.figures[figure]
        return info["experiments"] or info["paper_experiments"]

    def drawn_experiments(self, figure: str) -> list[str]:
        """The experiments whose aggregates a figure is drawn from at this scale: those it needs and those of its
        optional ones (further columns) that the scale selects."""
        info = self.figure(figure)
        return info["experiments"] + [name for name in info.get("optional_experiments", []) if name in self.experiments]

    def selected_figures(self) -> list[str]:
        """Figures whose experiments the scale all selects."""
        return [name for name in self.figures if set(self.figure_experiments(name)) <= set(self.experiments)]

    def figure(self, figure: str) -> dict:
        """The registry entry of figure "<paper>/<name>"; ConfigError for one that is unknown or whose experiments
        the scale does not select."""
        if figure not in self.figures:
            raise ConfigError(unknown_figure_message(figure, list(self.figures)))
        missing = [name for name in self.figure_experiments(figure) if name not in self.experiments]
        if missing:
            raise ConfigError(f"figure {figure!r} needs experiment(s) {missing}, which scale {self.scale!r} "
                              f"does not select (experiments: {', '.join(self.experiments)})")
        return self.figures[figure]

    def figure_description(self, figure: str) -> str:
        info = self.figure(figure)
        descriptions = [self.protocol[name].get("description", name) for name in info["experiments"]]
        return "; ".join(dict.fromkeys(descriptions or [info["description"]]))

    def paper_experiments(self, paper: str) -> list[str]:
        """The selected experiments of one paper."""
        return [name for name, spec in self.experiments.items() if spec["paper"] == paper]

    def describe_seeds(self, names: list[str]) -> str:
        ours = "/".join(str(count) for count in sorted({self.experiments[name]["seeds"] for name in names}))
        theirs = "/".join(str(count) for count in sorted({self.protocol[name]["seeds"] for name in names}))
        return f"{ours} seeds per run" if ours == theirs else f"{ours} seeds per run (paper: {theirs})"

    def describe_deviations(self, names: list[str]) -> str:
        """The scale's overrides of the paper protocol for these experiments, as `experiment: field=value; ...`
        (not `resources`: where the jobs run is no deviation)."""
        parts = []
        for name in names:
            fields = [f"{key}={canonical_json(value) if isinstance(value, (dict, list)) else value}"
                      for key, value in sorted((self.overrides.get(name) or {}).items()) if key != "resources"]
            if fields:
                parts.append(f"{name}: {', '.join(fields)}")
        return "; ".join(parts) if parts else "none (the papers' protocols)"


def gres_gpus(gres: str) -> int:
    """GPUs in a Slurm GRES request: `gpu` (one), `gpu:2`, `gpu:a100:2`."""
    count = gres.split(":")[-1]
    return int(count) if count.isdigit() else 1
