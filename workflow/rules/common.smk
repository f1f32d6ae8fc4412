# Glue between the rules and plasticity.workflow, which holds the logic (validated experiments, the job table, specs,
# inputs and resource estimates) without importing torch.
#
# The scale file (config/config.yaml, or the one given with --configfile) picks experiments of the protocol
# (config/experiments.yaml) and overrides fields of them; one training job = one run (method x hyperparameters) x one
# block of seeds.

import os
import sys

from plasticity.config import ConfigError
from plasticity.workflow import CLAIMS_FILE, DATA_FILES, Workflow


PAPER_TITLES = {
    "dohare2024": "Dohare et al. 2024, Loss of plasticity in deep continual learning",
    "adalin2025": "Razavi Rohani et al. 2025, Adaptive linearity injection (AdaLin)",
    "ngm2025": "Rodriguez-Garcia et al. 2025, Noradrenergic gain modulation attenuates the stability gap",
}


def config_error(message):
    """Stop Snakemake with one line naming the bad value (no traceback)."""
    sys.exit(f"Configuration error: {message}")


def _checked(question, *args):
    """The answer of a Workflow question, or the one-line stop for a ConfigError."""
    try:
        return question(*args)
    except ConfigError as error:
        config_error(error)


WF = _checked(Workflow, config, workflow.basedir)
EXPERIMENTS, SCALE = WF.experiments, WF.scale


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


def data_flags(dataset):
    """`plasticity data`'s source option for a data set, from the scale file."""
    return WF.data_flags(dataset)


def data_needed_by(dataset):
    """The experiments of the scale that read a data set, comma-separated (named in its errors)."""
    return ",".join(WF.needed_by(dataset))


def train_data_flag(wildcards, input):
    return f"--data {input.data}" if "data" in input.keys() else ""


def train_same_as_flag(wildcards, input):
    """A job identical to one of another experiment relabels that job's results instead of training."""
    return f"--same-as {input.same_as}" if "same_as" in input.keys() else ""


def train_checkpoint_flags(wildcards, output):
    return WF.checkpoint_flags(output.parquet)


def train_runtime(wildcards):
    return _checked(WF.runtime, *_job_args(wildcards))


def train_priority(wildcards):
    return _checked(WF.priority, *_job_args(wildcards))


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


def selected_figures():
    return WF.selected_figures()


def figure_inputs(wildcards):
    """The aggregates of the figure's experiments (none for a simulation)."""
    return [aggregate_file(name) for name in _checked(WF.drawn_experiments, wildcards.figure)]


def figure_paper(wildcards):
    """The report's subcategory of a figure: the title of its paper (the figure's folder)."""
    _checked(WF.figure, wildcards.figure)
    paper = wildcards.figure.split("/")[0]
    return PAPER_TITLES.get(paper, paper)


def figure_seeds(wildcards):
    experiments = _checked(WF.drawn_experiments, wildcards.figure)
    return WF.describe_seeds(experiments) if experiments else "a deterministic simulation, no seeds"


def figure_deviations(wildcards):
    return WF.describe_deviations(_checked(WF.drawn_experiments, wildcards.figure))


def figure_description(wildcards):
    return _checked(WF.figure_description, wildcards.figure)


# The tables the workflow writes, results/tables/<paper>/<table>.{csv,md,tex}, per paper, when the scale selects any
# of the paper's experiments.
PAPER_TABLES = {"ngm2025": ["table1", "table2"], "adalin2025": ["table"]}


def paper_experiments(paper):
    return WF.paper_experiments(paper)


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
    return WF.describe_deviations(list(EXPERIMENTS))
