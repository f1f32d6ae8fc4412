# Glue between the rules and plasticity.workflow, which holds the logic (validated experiments, the job table, specs,
# inputs and resource estimates) without importing torch.
#
# The scale file (config/config.yaml, or the one given with --configfile) picks experiments of the protocol
# (config/experiments.yaml) and overrides fields of them; one training job = one run (method x hyperparameters) x one
# block of seeds.

import shlex
import sys

from plasticity.config import ConfigError
from plasticity.workflow import CLAIMS_FILE, DATA_FILES, Workflow
from figures import FIGURES


MNIST_FILE = DATA_FILES["mnist"]

PAPER_TITLES = {
    "dohare2024": "Dohare et al. 2024, Loss of plasticity in deep continual learning",
    "adalin2025": "Razavi Rohani et al. 2025, Adaptive linearity injection (AdaLin)",
    "ngm2025": "Rodriguez-Garcia et al. 2025, Noradrenergic gain modulation attenuates the stability gap",
}


def config_error(message):
    """Stop Snakemake with one line naming the bad value (no traceback)."""
    sys.exit(f"Configuration error: {message}")


def _workflow():
    try:
        wf = Workflow(config, workflow.basedir)
    except ConfigError as error:
        config_error(error)
    for figure, mod in FIGURES.items():
        unknown = [name for name in mod.EXPERIMENTS + getattr(mod, "PAPER_EXPERIMENTS", []) if name not in wf.protocol]
        if unknown:
            config_error(f"figure {figure!r} draws unknown experiment(s) {unknown}; "
                         f"valid: {', '.join(sorted(wf.protocol))}")
    return wf


WF = _workflow()
PROTOCOL, EXPERIMENTS, SCALE, OVERRIDES = WF.protocol, WF.experiments, WF.scale, WF.overrides


def _checked(question, *args):
    try:
        return question(*args)
    except ConfigError as error:
        config_error(error)


def _job_args(wildcards):
    return wildcards.experiment, wildcards.run, wildcards.block


def experiment_runs(experiment):
    return WF.experiment_runs(experiment)


def all_runs():
    return WF.all_runs()


def train_spec(wildcards):
    return _checked(WF.train_spec, *_job_args(wildcards))


def train_inputs(wildcards):
    return _checked(WF.train_inputs, *_job_args(wildcards))


def mnist_source_flag():
    """`--mnist-path PATH` when the scale file names user-supplied MNIST files."""
    return f"--mnist-path {shlex.quote(config['mnist_path'])}" if config.get("mnist_path") else ""


def train_mnist_flag(wildcards, input):
    return f"--mnist {input.mnist}" if "mnist" in input.keys() else ""


def train_checkpoint_flags(wildcards, output):
    return WF.checkpoint_flags(output.parquet)


def train_runtime(wildcards):
    return _checked(WF.runtime, *_job_args(wildcards))


def train_mem_mb(wildcards):
    return _checked(WF.mem_mb, *_job_args(wildcards))


def train_gpu(wildcards):
    """The `gpu` resource: Slurm's --gpus, and locally a slot of the GPU the workflow profile declares."""
    return WF.slurm_gpus(wildcards.experiment)["gpu"]


def train_gpu_model(wildcards):
    return WF.slurm_gpus(wildcards.experiment)["gpu_model"]


def train_gres(wildcards):
    return WF.slurm_gpus(wildcards.experiment)["gres"]  # "" rather than unset: the train rule's shell reads it


def train_group(wildcards):
    return _checked(WF.group, *_job_args(wildcards))


# ---------------------------------------------------------------------------------------------------------------
# Aggregates, figures, reproduction table

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
    if wildcards.figure not in FIGURES:
        config_error(f"unknown figure {wildcards.figure!r}; valid: {', '.join(sorted(FIGURES))}")
    mod = FIGURES[wildcards.figure]
    missing = [name for name in _figure_experiments(mod) if name not in EXPERIMENTS]
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
    paper = PROTOCOL[_figure_experiments(_figure(wildcards))[0]]["paper"]
    return PAPER_TITLES.get(paper, paper)


def figure_seeds(wildcards):
    experiments = _figure(wildcards).EXPERIMENTS
    return WF.describe_seeds(experiments) if experiments else "a deterministic simulation, no seeds"


def figure_deviations(wildcards):
    return WF.describe_deviations(_figure(wildcards).EXPERIMENTS)


def figure_description(wildcards):
    mod = _figure(wildcards)
    descriptions = [PROTOCOL[name].get("description", name) for name in mod.EXPERIMENTS] or [mod.TITLE]
    return "; ".join(dict.fromkeys(descriptions))


# The tables the workflow writes, per paper, when the scale selects any of the paper's experiments.
PAPER_TABLES = {"ngm2025": ["ngm_table1", "ngm_table2"], "adalin2025": ["adalin_table"]}


def paper_experiments(paper):
    """The selected experiments of one paper."""
    return [name for name, spec in EXPERIMENTS.items() if spec["paper"] == paper]


def table_inputs(paper):
    """Input function of a paper's tables rule: the per-job results of its experiments, and the claims."""
    return lambda wildcards: {"runs": [run for name in paper_experiments(paper) for run in experiment_runs(name)],
                              "claims": CLAIMS_FILE}


def table_targets():
    return [f"results/tables/{table}.{ext}" for paper, tables in PAPER_TABLES.items() if paper_experiments(paper)
            for table in tables for ext in ("csv", "md", "tex")]


def reproduction_deviations():
    return WF.describe_deviations(list(EXPERIMENTS))
