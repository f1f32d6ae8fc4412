# plasticity: continual-learning papers reproduced, from the papers' protocols to figures and a reproduction table.
#
#   snakemake --cores all                                   # default (quick) scale: config/config.yaml
#   snakemake --cores all --configfile config/paper.yaml    # the papers' protocols
#   snakemake --cores all results/figures/dohare2024/ext_data_fig2.pdf   # one figure and what it needs
#   snakemake --report report.html                          # browsable report of figures and the table
#   snakemake --workflow-profile profiles/slurm --configfile config/paper.yaml   # on a Slurm cluster
#
# See README.md and docs/architecture.md.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"


# On a cluster only training jobs are submitted; these run where Snakemake runs (they are quick, and compute nodes
# often cannot download data sets).
localrules:
    all,
    mnist,
    cifar10,
    cifar100,
    imagenet32,
    mini_imagenet,
    aggregate,
    figure,
    stability_gap_tables,
    adalin_table,
    reproduction,


rule all:
    input:
        expand("results/figures/{figure}.{ext}", figure=selected_figures(), ext=["pdf", "png"]),
        "results/reproduction.csv",
        "results/reproduction.md",
        table_targets(),
    default_target: True
