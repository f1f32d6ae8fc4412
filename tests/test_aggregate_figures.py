"""Aggregation, figures and the reproduction table on synthetic tidy results in the real schema.

Run ids and settings come from the real config (quick scale), so a renamed run or setting breaks these tests.
"""
import copy
import functools
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.colors import to_hex

from figures import FIGURES, draw_figure
from plasticity.analysis.aggregate import aggregate, aggregate_files
from plasticity.config import canonical_json, expand_runs, load_protocol, resolve_experiments
from plasticity.analysis.reproduction import NOT_REPRODUCED, NOT_RUN, REPRODUCED, write_reproduction

PROTOCOL = load_protocol("config/experiments.yaml")
QUICK = resolve_experiments(yaml.safe_load(open("config/config.yaml")), PROTOCOL)
PMNIST_METRICS = {"online_accuracy": [0], "weight_magnitude": [0], "dead_units_pct": [1, 2, 3],
                  "effective_rank": [1, 2, 3]}
ALPHA_METRICS = {metric: [1, 2] for metric in ("alpha_mean", "alpha_q10", "alpha_median", "alpha_q90")}


def tidy(experiment: str, run: str, metric: str, values, x=None, layer: int = 0, protocol=None) -> pd.DataFrame:
    """Rows of one run and metric: values[seed][bin] at x (default: 1000, 2000, ...); the run's settings from
    `protocol` (default: the experiment at quick scale)."""
    protocol = protocol or QUICK[experiment]
    values = np.asarray(values, dtype=float)
    x = np.arange(1, values.shape[1] + 1) * 1000 if x is None else np.asarray(x)
    settings = expand_runs(protocol)[run]
    seeds, bins = np.meshgrid(np.arange(values.shape[0]), np.arange(values.shape[1]), indexing="ij")
    return pd.DataFrame({
        "paper": protocol["paper"], "experiment": experiment, "run": run, "method": settings["method"],
        "hparams": canonical_json({field: settings[field] for field in ("hparams", "model", "benchmark_args")}),
        "synthetic_data": False, "seed": seeds.ravel(), "x": x[bins.ravel()],
        "x_unit": "iterations" if protocol.get("protocol") == "joint" else "examples",
        "metric": metric, "layer": layer,
        "value": values.ravel()})


def synthetic_joint_experiment(experiment: str, seeds: int = 3, every: int = 1, protocol=None) -> pd.DataFrame:
    """Every run of a joint-protocol experiment at quick scale: task curves that dip after each switch, gains,
    and the per-seed summary metrics at the end, each point every `every` iterations."""
    rng = np.random.default_rng(0)
    protocol = protocol or QUICK[experiment]
    rows = functools.partial(tidy, protocol=protocol)
    per_context = protocol["iterations_per_context"]
    tasks = protocol["benchmark_args"].get("num_tasks") or len(protocol["benchmark_args"]["angles"])
    total = per_context * tasks
    x = np.arange(0, total + 1, every)
    frames = []
    for number, run in enumerate(expand_runs(protocol)):
        def curve(level):
            dips = sum(np.exp(-np.clip(x - c * per_context, 0, None) / 20) * (x > c * per_context)
                       for c in range(1, tasks))
            return level - 0.2 * (number % 3) * dips + 0.01 * rng.standard_normal((seeds, len(x)))
        for task in range(1, tasks + 1):
            frames.append(rows(experiment, run, "task_accuracy", curve(0.95), x, task))
            frames.append(rows(experiment, run, "task_loss", 1 - curve(0.95), x, task))
            frames.append(rows(experiment, run, "eval_samples", np.full((seeds, 1), 1000.0), [0], task))
        frames.append(rows(experiment, run, "test_accuracy", curve(0.9), x))
        for layer in (1, 2, 3):
            frames.append(rows(experiment, run, "gain", 1 + 2 * (1 - curve(1.0)) * (number == 0), x, layer))
        for transition in range(1, tasks):
            frames.append(rows(experiment, run, "stability_gap", rng.uniform(0, 0.5, (seeds, 1)), [total],
                               transition))
        for metric in ("avg_sg", "avg_acc_task1", "final_avg_acc", "min_acc", "wc_acc", "min_acc_ref",
                       "wc_acc_ref"):
            frames.append(rows(experiment, run, metric, rng.uniform(0, 1, (seeds, 1)), [total]))
    return pd.concat(frames, ignore_index=True)


def synthetic_experiment(experiment: str, seeds: int = 3, bins: int = 12, protocol=None) -> pd.DataFrame:
    """Every run of an experiment (default: at quick scale), with noisy drifting curves for the metrics its figure
    uses."""
    protocol = protocol or QUICK[experiment]
    if protocol.get("protocol") == "joint":
        return synthetic_joint_experiment(experiment, seeds, protocol=protocol)
    rng = np.random.default_rng(0)
    rows = functools.partial(tidy, protocol=protocol)
    x = np.linspace(protocol["examples"] / bins, protocol["examples"], bins).astype(int)
    metrics = ({"squared_error": [0]} if experiment == "bit_flipping"
               else {**PMNIST_METRICS, **ALPHA_METRICS} if experiment.startswith("adalin") else PMNIST_METRICS)
    frames = []
    for number, run in enumerate(expand_runs(protocol)):
        frames.append(rows(experiment, run, "diverged", np.zeros((seeds, bins)), x))
        for metric, layers in metrics.items():
            for layer in layers:
                trend = 0.5 + 0.1 * number + 0.3 * np.linspace(0, 1, bins) * (-1) ** number
                frames.append(rows(experiment, run, metric, trend + 0.05 * rng.standard_normal((seeds, bins)), x,
                                   layer))
    return pd.concat(frames, ignore_index=True)


# --- aggregation ---------------------------------------------------------------------------------------------

def test_aggregate_hand_numbers_and_diverged_seeds(tmp_path):
    frame = pd.concat([tidy("bit_flipping", "cbp", "squared_error", [[1, 1], [2, math.nan], [4, 3]]),
                       tidy("bit_flipping", "adam", "squared_error", [[5]])])
    paths = []
    for seed, part in frame.groupby("seed"):  # one file per seed block, as the training jobs write them
        paths.append(tmp_path / f"seeds{seed}.parquet")
        part.to_parquet(paths[-1])
    out = tmp_path / "aggregate" / "bit_flipping.parquet"
    aggregate_files([str(path) for path in paths], str(out))
    stats = pd.read_parquet(out).set_index(["run", "x"])

    first = stats.loc[("cbp", 1000)]  # 1, 2, 4: mean 7/3, std sqrt(7/3), sem sqrt(7/3)/sqrt(3) = 0.8819
    assert first["mean"] == pytest.approx(7 / 3)
    assert first["sem"] == pytest.approx(math.sqrt(7 / 3) / math.sqrt(3))
    assert (first["n"], first["n_diverged"], first["seeds"]) == (3, 0, 3)
    second = stats.loc[("cbp", 2000)]  # 1, NaN, 3: the diverged seed is counted, not averaged
    assert (second["mean"], second["sem"]) == pytest.approx((2.0, 1.0))
    assert (second["n"], second["n_diverged"], second["seeds"]) == (2, 1, 3)
    assert math.isnan(stats.loc[("adam", 1000), "sem"])  # one seed: no standard error
    assert {"paper", "experiment", "method", "hparams", "x_unit", "metric", "layer"} <= set(stats.columns)


def test_aggregate_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.parquet"):
        aggregate_files([str(tmp_path / "nowhere.parquet")], str(tmp_path / "out.parquet"))
    block = tidy("bit_flipping", "cbp", "squared_error", [[1.0, 2.0]])
    with pytest.raises(ValueError, match="duplicate"):
        aggregate(pd.concat([block, block]))


# --- figures -------------------------------------------------------------------------------------------------

# A run no figure knows, as a user adds one (README, "Adding a method"), in every experiment: a method the figures
# have no label or colour for, under a run-group name of the user's.
USER_RUN = {"method": "my_sgd", "hparams": {"lr": 0.01}}
# The figures that compare the runs of their experiments, and so draw every run (EVERY_RUN); the others show one
# quantity of the paper's own methods (AdaLin's α, NGM-SGD's gain, the 1-D toy) or exactly the paper's runs.
DRAW_EVERY_RUN = {"dohare2024/ext_data_fig2", "dohare2024/ext_data_fig3", "dohare2024/ext_data_fig4",
                  "ngm2025/fig3_extra", "ngm2025/fig4_extra", "adalin2025/online_accuracy", "adalin2025/correlates"}


def with_user_run(experiment: str) -> dict:
    protocol = copy.deepcopy(QUICK[experiment])
    protocol["runs"]["my_method"] = USER_RUN
    return protocol


@pytest.fixture(scope="module")
def aggregate_paths(tmp_path_factory):
    """{experiment: aggregate of synthetic results of every run at quick scale, and the user's run}."""
    folder = tmp_path_factory.mktemp("aggregate")
    paths = {}
    for experiment in QUICK:
        paths[experiment] = folder / f"{experiment}.parquet"
        aggregate(synthetic_experiment(experiment, protocol=with_user_run(experiment))).to_parquet(paths[experiment])
    return paths


def test_figures_are_named_after_each_papers_numbering():
    assert list(FIGURES) == sorted(FIGURES)
    assert {name.split("/")[0] for name in FIGURES} == {"dohare2024", "ngm2025", "adalin2025"}
    assert {"dohare2024/ext_data_fig2", "ngm2025/fig3", "ngm2025/fig3_extra", "adalin2025/online_accuracy"} <= \
        set(FIGURES)
    for name, module in FIGURES.items():   # a figure's experiments are its paper's
        assert {PROTOCOL[e]["paper"] for e in module.EXPERIMENTS or module.PAPER_EXPERIMENTS} == {name.split("/")[0]}


# The figures of the quick scale's experiments; the vision ones are drawn in test_lop_vision and test_adalin_vision.
QUICK_FIGURES = sorted(name for name, module in FIGURES.items() if set(module.EXPERIMENTS) <= set(QUICK))


@pytest.mark.parametrize("name", QUICK_FIGURES)
def test_figure_draws_pdf_and_png(name, aggregate_paths, tmp_path, monkeypatch):
    """PDF and PNG, with a short caption: what is drawn, the scale, seeds and deviations, no claims' verdicts (those
    are in the reproduction table). The user's run is in every figure that compares runs (label: its run id, in
    Ext. Data Fig. 2 with its step size), in one colour that no other line of its panel has; in no other figure."""
    import figures
    drawn = []
    monkeypatch.setattr(figures, "add_caption", lambda fig, text: (drawn.append((fig, text)),
                                                                  figures._style.add_caption(fig, text)))
    inputs = [str(aggregate_paths[experiment]) for experiment in FIGURES[name].EXPERIMENTS]
    stem = name.replace("/", "_")
    pdf, png = tmp_path / f"{stem}.pdf", tmp_path / f"{stem}.png"
    draw_figure(name, inputs, str(pdf), str(png), scale="quick")
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([pdf.name, png.name])  # no temp files left

    [(fig, text)] = drawn
    assert "Scale: quick" in text and len(text) < 1200
    assert "reproduced" not in text.lower() and "At this scale:" not in text

    assert getattr(FIGURES[name], "EVERY_RUN", False) == (name in DRAW_EVERY_RUN)
    mine = [(ax, line) for ax in fig.axes for line in ax.get_lines() if line.get_label().startswith("my_method")]
    assert bool(mine) == (name in DRAW_EVERY_RUN), [line.get_label() for ax in fig.axes for line in ax.get_lines()]
    assert len({to_hex(line.get_color()) for _, line in mine}) <= 1
    for ax, line in mine:
        others = {to_hex(other.get_color()) for other in ax.get_lines() if other is not line}
        assert to_hex(line.get_color()) not in others


def test_caption_states_scale_seeds_and_deviations(aggregate_paths):
    from figures import load_aggregates
    from figures.dohare2024 import ext_data_fig3
    aggregates = load_aggregates([str(aggregate_paths[e]) for e in ext_data_fig3.EXPERIMENTS])
    text = ext_data_fig3.caption(aggregates, "quick")
    assert "Scale: quick" in text and "3 seeds (paper 30)" in text
    assert f"{QUICK['pmnist_step_size']['examples']:,} examples per run (paper 48,000,000)" in text
    assert "width 100 instead of 2,000" in text and "may not appear at this scale" in text


def test_figure_errors(aggregate_paths, tmp_path):
    with pytest.raises(ValueError, match=r"^unknown figure 'fig9'; valid: adalin2025/ablation, adalin2025/ablation_cifar, adalin2025/alpha, "
                                         r".*, ngm2025/fig_gain_tasks$"):
        draw_figure("fig9", [], "a.pdf", "a.png", scale="quick")
    with pytest.raises(ValueError, match=r"^unknown figure 'fig3' \(did you mean ngm2025/fig3\?\); valid: "):
        draw_figure("fig3", [], "a.pdf", "a.png", scale="quick")
    with pytest.raises(ValueError, match="needs experiment"):
        draw_figure("dohare2024/ext_data_fig3", [str(aggregate_paths["pmnist_width"])], str(tmp_path / "a.pdf"),
                    str(tmp_path / "a.png"), scale="quick")


# --- reproduction table ----------------------------------------------------------------------------------------

SEEDS = 5
RISING = np.linspace(0.6, 1.2, 10) + 0.01 * np.arange(SEEDS)[:, None]       # clear increase, tiny seed spread
FLAT = 0.8 + 0.2 * np.random.default_rng(1).standard_normal((SEEDS, 10))   # no trend beyond the noise


def verdicts(tmp_path, frame: pd.DataFrame, tests: list[dict], experiment="bit_flipping"):
    """Write `frame` as one per-job file, evaluate claims with `tests`, return {claim id: row}."""
    frame.to_parquet(tmp_path / "runs.parquet")
    claims = [{"id": f"c{i}", "claim": "text", "paper_value": 1.0, "source": "Fig. 0", "experiment": experiment,
               "test": test} for i, test in enumerate(tests)]
    (tmp_path / "claims.yaml").write_text(yaml.safe_dump(claims))
    write_reproduction([str(tmp_path / "runs.parquet")], str(tmp_path / "claims.yaml"), str(tmp_path / "r.csv"),
                       str(tmp_path / "r.md"), scale="quick")
    assert (tmp_path / "r.md").read_text().startswith("# Reproduction of the papers' claims (quick scale)")
    return pd.read_csv(tmp_path / "r.csv", dtype=str).set_index("claim_id").to_dict("index")


def test_change(tmp_path):
    frame = pd.concat([tidy("bit_flipping", "bp-activation_relu-lr_0.01", "squared_error", RISING),
                       tidy("bit_flipping", "cbp", "squared_error", FLAT)])
    change = {"kind": "change", "metric": "squared_error", "from": "first"}
    rows = verdicts(tmp_path, frame, [
        {**change, "run": "bp-activation_relu-lr_0.01", "direction": "increase"},
        {**change, "run": "bp-activation_relu-lr_0.01", "direction": "decrease"},
        {**change, "run": "cbp", "direction": "increase"},
        {**change, "run": "adam", "direction": "increase"},
        {**change, "run": "bp-activation_relu-lr_0.01", "from": "extremum", "direction": "decrease"}])
    assert [rows[f"c{i}"]["verdict"] for i in range(5)] == [REPRODUCED, NOT_REPRODUCED, NOT_REPRODUCED, NOT_RUN,
                                                            NOT_REPRODUCED]
    assert rows["c0"]["our_value"].startswith("0.62 at 1,000 examples → 1.22 at 10,000 examples; change +0.6 ± ")
    assert rows["c0"]["n_seeds"] == "5" and rows["c0"]["scale"] == "quick"


def test_change_from_peak_in_tasks_over_hidden_layers(tmp_path):
    peaked = np.concatenate([np.linspace(0.90, 0.95, 4), np.linspace(0.95, 0.93, 6)]) + np.zeros((SEEDS, 1))
    peaked[0, -1] = math.nan  # a diverged seed is left out and counted
    x = np.arange(1, 11) * 10_000
    frame = pd.concat([tidy("pmnist_step_size", "bp-lr_0.003", "dead_units_pct", peaked, x, layer)
                       for layer in (1, 2, 3)])
    rows = verdicts(tmp_path, frame, [{"kind": "change", "run": "bp-lr_0.003", "metric": "dead_units_pct",
                                       "layer": "hidden", "from": "extremum", "direction": "decrease"}],
                    experiment="pmnist_step_size")
    assert rows["c0"]["verdict"] == REPRODUCED
    assert rows["c0"]["n_seeds"] == "4 (+1 diverged)"
    assert "at 40,000 examples (task 4) → " in rows["c0"]["our_value"]


def test_compare_final(tmp_path):
    frame = pd.concat([tidy("bit_flipping", "bp-activation_relu-lr_0.01", "squared_error", RISING),
                       tidy("bit_flipping", "linear-lr_0.01", "squared_error", np.full((3, 10), 0.88))])
    compare = {"kind": "compare_final", "run_a": "bp-activation_relu-lr_0.01", "metric": "squared_error"}
    rows = verdicts(tmp_path, frame, [{**compare, "run_b": "linear-lr_0.01", "direction": "greater"},
                                      {**compare, "run_b": "linear-lr_0.01", "direction": "less"},
                                      {**compare, "run_b": "cbp", "direction": "greater"}])
    assert [rows[f"c{i}"]["verdict"] for i in range(3)] == [REPRODUCED, NOT_REPRODUCED, NOT_RUN]
    assert rows["c0"]["n_seeds"] == "5 vs 3"


def test_compare_average_uses_every_bin_not_the_last(tmp_path):
    # a starts higher and ends level with b: above b on average over the run, not at its end
    a = np.array([0.9, 0.8, 0.7, 0.6]) + 0.01 * np.arange(SEEDS)[:, None]
    b = np.full(4, 0.6) + 0.01 * np.arange(SEEDS)[:, None]
    frame = pd.concat([tidy("pmnist_methods", "cbp", "online_accuracy", a),
                       tidy("pmnist_methods", "bp", "online_accuracy", b)])
    compare = {"run_a": "cbp", "run_b": "bp", "metric": "online_accuracy", "direction": "greater"}
    rows = verdicts(tmp_path, frame, [{"kind": "compare_average", **compare}, {"kind": "compare_final", **compare}],
                    experiment="pmnist_methods")
    assert [rows["c0"]["verdict"], rows["c1"]["verdict"]] == [REPRODUCED, NOT_REPRODUCED]
    assert rows["c0"]["our_value"].startswith("cbp 77% vs bp 62% averaged over the run; difference +15 ± ")


def test_compare_average_over_the_last_quarter(tmp_path):
    # 8 bins: a is below b at the last bin only (one noisy bin), above it on the 2 bins before; the last quarter
    # (2 bins) averages 0.5 vs 0.4, the whole run 0.125 vs 0.4, the last bin 0.3 vs 0.4
    a = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.7, 0.3]) + 0.01 * np.arange(SEEDS)[:, None]
    b = np.full(8, 0.4) + 0.01 * np.arange(SEEDS)[:, None]
    frame = pd.concat([tidy("pmnist_methods", "cbp", "squared_error", a),
                       tidy("pmnist_methods", "bp", "squared_error", b)])
    compare = {"run_a": "cbp", "run_b": "bp", "metric": "squared_error", "direction": "greater"}
    rows = verdicts(tmp_path, frame, [{"kind": "compare_average", "over_last": 0.25, **compare},
                                      {"kind": "compare_average", **compare}, {"kind": "compare_final", **compare}],
                    experiment="pmnist_methods")
    assert [rows[f"c{i}"]["verdict"] for i in range(3)] == [REPRODUCED, NOT_REPRODUCED, NOT_REPRODUCED]
    assert rows["c0"]["our_value"].startswith("cbp 0.52 vs bp 0.42 averaged over the run's last 25%; difference +0.1")
    with pytest.raises(ValueError, match=r"over_last: 0; valid: a fraction of the run's bins in \(0, 1\]"):
        verdicts(tmp_path, frame, [{"kind": "compare_average", "over_last": 0, **compare}],
                 experiment="pmnist_methods")


def test_threshold_at(tmp_path):
    accuracy = 0.85 + 0.001 * np.arange(SEEDS)[:, None] + np.zeros((1, 50))
    frame = tidy("pmnist_width", "bp-width_100", "online_accuracy", accuracy, np.arange(1, 51) * 10_000)
    threshold = {"kind": "threshold_at", "run": "bp-width_100", "metric": "online_accuracy"}
    rows = verdicts(tmp_path, frame, [{**threshold, "at": {"task": 130}, "below": 0.88},
                                      {**threshold, "at": {"task": 30}, "below": 0.88},
                                      {**threshold, "at": {"fraction": 1.0}, "above": 0.88},
                                      {**threshold, "at": {"examples": 200_000}, "above": 0.8}],
                    experiment="pmnist_width")
    assert [rows[f"c{i}"]["verdict"] for i in range(4)] == [NOT_RUN, REPRODUCED, NOT_REPRODUCED, REPRODUCED]
    assert "ends at 500,000 examples (task 50)" in rows["c0"]["our_value"]
    assert rows["c1"]["our_value"].startswith("85.2% ± 0.0707% at 300,000 examples (task 30) (threshold 88%)")


def test_bad_test_kind_names_the_valid_ones(tmp_path):
    frame = tidy("bit_flipping", "cbp", "squared_error", FLAT)
    with pytest.raises(ValueError, match=r"claim 'c0'.*valid: \['change', 'compare_average', 'compare_final', 'near', "
                                          r"'threshold_at'\]"):
        verdicts(tmp_path, frame, [{"kind": "slope", "run": "cbp", "metric": "squared_error"}])


def test_claims_file_runs_on_the_real_config(tmp_path):
    """Every claim in config/claims.yaml names real runs and gets a verdict from synthetic per-seed results."""
    runs = pd.concat([synthetic_experiment(experiment, bins=4) for experiment in QUICK])
    runs.to_parquet(tmp_path / "runs.parquet")
    write_reproduction([str(tmp_path / "runs.parquet")], "config/claims.yaml", str(tmp_path / "r.csv"),
                       str(tmp_path / "r.md"), scale="quick")
    table = pd.read_csv(tmp_path / "r.csv")
    claims = yaml.safe_load(open("config/claims.yaml"))
    assert list(table["claim_id"]) == [claim["id"] for claim in claims]
    not_run = set(table.loc[table["verdict"] == NOT_RUN, "claim_id"])
    beyond_quick = {claim["id"] for claim in claims if claim["experiment"] not in QUICK}   # the vision experiments
    assert not_run == {"pmnist_narrow_network_falls_below_88"} | beyond_quick  # task 130: beyond the quick 50 tasks


def test_compare_final_pairs_runs_that_share_seeds(tmp_path):
    # Seeds differ a lot from each other (shared data), but run a is above run b by 0.1 on every seed: only the
    # paired difference (sem 0) sees it; with different seed sets the comparison is unpaired and inconclusive.
    base = np.array([[1.0], [3.0], [5.0]])
    paired = pd.concat([tidy("bit_flipping", "cbp", "squared_error", base + 0.1),
                        tidy("bit_flipping", "adam", "squared_error", base)])
    test = {"kind": "compare_final", "run_a": "cbp", "run_b": "adam", "metric": "squared_error",
            "direction": "greater"}
    row = verdicts(tmp_path, paired, [test])["c0"]
    assert row["verdict"] == REPRODUCED and "paired by seed" in row["our_value"]
    unpaired = pd.concat([tidy("bit_flipping", "cbp", "squared_error", base + 0.1),
                          tidy("bit_flipping", "adam", "squared_error", np.vstack([base, [[4.0]]]))])
    row = verdicts(tmp_path, unpaired, [test])["c0"]
    assert row["verdict"] == NOT_REPRODUCED and "unpaired" in row["our_value"]


def test_near_puts_the_paper_number_beside_ours(tmp_path):
    x = [1000]
    frame = pd.concat([tidy("ngm_split_mnist", "msgd", "avg_sg", [[0.25], [0.27], [0.29]], x),
                       tidy("ngm_split_mnist", "sgd", "avg_sg", [[0.20], [0.21], [0.22]], x)])
    near = {"kind": "near", "metric": "avg_sg", "tolerance": 0.05}
    rows = verdicts(tmp_path, frame, [{**near, "run": "msgd", "target": 0.267},
                                      {**near, "run": "sgd", "target": 0.034}], experiment="ngm_split_mnist")
    assert [rows[f"c{i}"]["verdict"] for i in range(2)] == [REPRODUCED, NOT_REPRODUCED]
    assert rows["c0"]["our_value"].startswith("0.27 ± 0.02 (std; sem 0.0115) vs paper 0.267")


def test_stability_gap_tables(tmp_path):
    from plasticity.analysis.ngm_tables import write_tables
    runs = tmp_path / "runs.parquet"
    protocol = with_user_run("ngm_split_mnist")
    synthetic_experiment("ngm_split_mnist", protocol=protocol).to_parquet(runs)
    write_tables([str(runs)], "config/claims.yaml", str(tmp_path), scale="quick")
    assert sorted(path.name for path in tmp_path.glob("table*")) == [f"table{n}.{ext}" for n in (1, 2)
                                                                     for ext in ("csv", "md", "tex")]
    table1 = pd.read_csv(tmp_path / "table1.csv").set_index("run")
    assert list(table1.index) == list(expand_runs(protocol))
    assert table1.loc["msgd", "method"] == "MSGD" and table1.loc["my_method", "method"] == "my_method"
    assert table1.loc["msgd", "avg_sg_paper"] == 0.267 and np.isnan(table1.loc["cbp", "avg_sg_paper"])
    assert table1.loc["adam", "seeds"] == 3 and 0 <= table1.loc["adam", "min_acc_mean"] <= 100
    table2 = pd.read_csv(tmp_path / "table2.csv")
    assert [c for c in table2.columns if c.endswith("_mean")] == [f"sg_{k}_to_{k + 1}_mean" for k in range(1, 5)]
    markdown = (tmp_path / "table1.md").read_text()
    assert "NGM-SGD" in markdown and "Split MNIST" in markdown and "Scale quick" in markdown
    assert r"$\pm$" in (tmp_path / "table2.tex").read_text()


def test_adalin_table_has_every_run(tmp_path):
    from plasticity.analysis.adalin_table import write_adalin_table
    runs = tmp_path / "runs.parquet"
    synthetic_experiment("adalin_pmnist", protocol=with_user_run("adalin_pmnist")).to_parquet(runs)
    write_adalin_table([str(runs)], str(tmp_path), scale="quick")
    assert sorted(path.name for path in tmp_path.glob("table.*")) == ["table.csv", "table.md", "table.tex"]
    table = pd.read_csv(tmp_path / "table.csv")
    assert table.loc[table["run"] == "my_method", "variant"].tolist() == ["my_method"]
    rows = [line.split("|")[1].strip() for line in (tmp_path / "table.md").read_text().splitlines()
            if line.startswith("| ") and "±" in line]
    assert rows[:2] == ["ReLU", "Tanh"] and rows[-1] == "my_method"   # the paper's rows first, in its order
    assert "AdaLin-ReLU" in rows and "L2 Init" in rows


# --- synthetic data: no verdict, and said in the caption ---------------------------------------------------------

def test_synthetic_data_gets_no_verdict_and_is_said_in_the_caption(tmp_path, aggregate_paths, monkeypatch):
    """A hand-built result trained on synthetic data (as a job on the `synthetic` source marks every row): its
    claims read "not applicable (synthetic data)", the aggregate keeps the mark, and the caption leads with it."""
    import figures
    frame = pd.concat([tidy("bit_flipping", "bp-activation_relu-lr_0.01", "squared_error", RISING),
                       tidy("bit_flipping", "cbp", "squared_error", FLAT)]).assign(synthetic_data=True)
    change = {"kind": "change", "metric": "squared_error", "from": "first", "run": "bp-activation_relu-lr_0.01",
              "direction": "increase"}
    rows = verdicts(tmp_path, frame, [change])
    assert rows["c0"]["verdict"] == "not applicable (synthetic data)"
    assert "Trained on synthetic data" in (tmp_path / "r.md").read_text()
    assert aggregate(frame)["synthetic_data"].all()

    drawn = []
    monkeypatch.setattr(figures, "add_caption", lambda fig, text: drawn.append(text))
    inputs = []
    for experiment in FIGURES["dohare2024/ext_data_fig3"].EXPERIMENTS:
        stats = pd.read_parquet(aggregate_paths[experiment]).assign(synthetic_data=experiment == "pmnist_width")
        stats.to_parquet(tmp_path / f"{experiment}.parquet")
        inputs.append(str(tmp_path / f"{experiment}.parquet"))
    draw_figure("dohare2024/ext_data_fig3", inputs, str(tmp_path / "f.pdf"), str(tmp_path / "f.png"), scale="smoke")
    assert drawn[0].startswith("SYNTHETIC DATA: pmnist_width trained on random stand-in images")
