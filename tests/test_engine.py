"""The training engine: hand-derived backward vs autograd, seed-block invariance, divergence, bad input."""
import copy
import json
import math

import pandas as pd
import pytest
import torch

from plasticity.config import ConfigError, deep_merge, job_spec, load_protocol, resolve_experiments
from plasticity.methods import build_learner
from plasticity.activations import ACTIVATIONS
from plasticity.models.mlp import SeedMLP, loss_and_output_grad
from plasticity.engine.job import relabel_job, train
from plasticity.engine.online import plain_sgd_hyperparameters

PROTOCOL = load_protocol("config/experiments.yaml")


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_backward_matches_autograd(activation, loss):
    torch.manual_seed(0)
    model = SeedMLP(6, 3, width=5, depth=2, activation_name=activation, seeds=[0, 1]).double()
    inputs = torch.randn(2, 4, 6, dtype=torch.double)
    targets = torch.randn(2, 4, 3, dtype=torch.double) if loss == "mse" else torch.randint(0, 3, (2, 4))
    output = model(inputs)
    per_seed, output_grad = loss_and_output_grad(output, targets, loss)
    reference = (torch.nn.functional.mse_loss(output[1], targets[1]) if loss == "mse"
                 else torch.nn.functional.cross_entropy(output[1], targets[1]))
    torch.testing.assert_close(per_seed[1], reference)
    per_seed.sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.backward_from_output_grad(output_grad)
    for grad, param in zip(expected, model.parameters()):
        torch.testing.assert_close(param.grad, grad)


def test_init_is_kaiming_uniform_with_zero_bias():
    model = SeedMLP(784, 10, width=2000, depth=1, activation_name="relu", seeds=[3])
    bound = math.sqrt(2) * math.sqrt(3 / 784)
    weight = model.layers[0].weight
    assert weight.abs().max() <= bound and weight.abs().max() > 0.99 * bound
    assert model.layers[0].bias.abs().sum() == 0
    assert model.layers[1].weight.abs().max() <= math.sqrt(3 / 2000)


def small(experiment, **overrides):
    return deep_merge(PROTOCOL[experiment], overrides)


SEED_BLOCK_CASES = [
    ("bit_flipping", "cbp", dict(examples=3000, bin_size=500, benchmark_args={"flip_every": 700}), None),
    ("bit_flipping", "shrink_perturb", dict(examples=2000, bin_size=500), None),
    ("pmnist_methods", "cbp", dict(examples=400, bin_size=100, model={"width": 12}, probe={"size": 30},
                                   benchmark_args={"examples_per_task": 200}), "mnist"),
    ("pmnist_methods", "adam", dict(examples=300, bin_size=100, model={"width": 12},
                                    benchmark_args={"examples_per_task": 100}), "mnist"),
]


@pytest.mark.parametrize("experiment, run, overrides, data", SEED_BLOCK_CASES)
def test_seed_results_do_not_depend_on_the_block(experiment, run, overrides, data, mnist_file):
    exp = small(experiment, **overrides)
    if run == "cbp":       # replace often enough that generate-and-test really runs in the short test
        exp["runs"]["cbp"]["hparams"].update(replacement_rate=0.05, maturity_threshold=5)
    path = mnist_file if data else None
    together = train(job_spec(experiment, exp, run, [0, 1, 2], "cpu"), path, progress=False)
    alone = train(job_spec(experiment, exp, run, [2], "cpu"), path, progress=False)
    pair = train(job_spec(experiment, exp, run, [1, 2], "cpu"), path, progress=False)
    key = ["x", "metric", "layer"]
    for other in (alone, pair):
        mine = together[together.seed == 2].sort_values(key).reset_index(drop=True)
        theirs = other[other.seed == 2].sort_values(key).reset_index(drop=True)
        torch.testing.assert_close(torch.tensor(mine.value.values), torch.tensor(theirs.value.values),
                                   rtol=1e-5, atol=1e-6)
    assert not together[together.seed == 0].value.equals(together[together.seed == 2].value.reset_index(drop=True))


def test_tidy_output_schema_and_probe_metrics(mnist_file):
    exp = small("pmnist_methods", examples=400, bin_size=100, model={"width": 12}, probe={"size": 30},
                benchmark_args={"examples_per_task": 200})
    frame = train(job_spec("pmnist_methods", exp, "bp", [0, 1], "cpu"), mnist_file, progress=False)
    assert list(frame.columns) == ["paper", "experiment", "run", "method", "hparams", "synthetic_data", "seed", "x",
                                   "x_unit", "metric", "layer", "value"]
    accuracy = frame[frame.metric == "online_accuracy"]
    assert sorted(accuracy.x.unique()) == [100, 200, 300, 400]
    assert accuracy.value.between(0, 1).all()
    dead = frame[frame.metric == "dead_units_pct"]
    assert sorted(dead.x.unique()) == [0, 200] and sorted(dead.layer.unique()) == [1, 2, 3]
    assert {"effective_rank", "stable_rank", "stable_rank_norm", "approximate_rank",
            "weight_magnitude"} <= set(frame.metric)


def test_adalin_run_records_its_alpha_distribution_per_layer(mnist_file):
    exp = small("adalin_random_label_mnist", examples=192, bin_size=96, model={"width": 12}, probe={"size": 30},
                benchmark_args={"images_per_task": 32, "epochs_per_task": 3})
    frame = train(job_spec("adalin_random_label_mnist", exp, "adam-activation_adalin_relu-lr_0.001", [0, 1], "cpu"),
                  mnist_file, progress=False)
    alpha = frame[frame.metric.str.startswith("alpha_")]
    assert set(alpha.metric) == {"alpha_mean", "alpha_q10", "alpha_median", "alpha_q90"}
    assert sorted(alpha.x.unique()) == [0, 96] and sorted(alpha.layer.unique()) == [1, 2]
    at_start = alpha[alpha.x == 0].set_index(["seed", "layer", "metric"])["value"]
    assert (at_start.xs("alpha_q10", level="metric") < at_start.xs("alpha_q90", level="metric")).all()
    assert at_start.between(0, 1).all(), "α starts in U[0, 1)"


def test_a_run_overridden_with_null_is_dropped():
    config = {"scale": "tiny", "experiments": ["adalin_pmnist"],
              "overrides": {"tiny": {"adalin_pmnist": {"runs": {"sgd": None, "l2": None}}}}}
    runs = resolve_experiments(config, PROTOCOL)["adalin_pmnist"]["runs"]
    assert "sgd" not in runs and "l2" not in runs and "adam" in runs


def test_diverging_run_is_recorded_not_crashed():
    exp = small("bit_flipping", examples=2000, bin_size=500)
    exp["runs"]["bp"]["hparams"]["lr"] = [1e6]
    frame = train(job_spec("bit_flipping", exp, "bp-activation_relu-lr_1e+06", [0, 1], "cpu"), progress=False)
    assert (frame[frame.metric == "diverged"].value == 1).all()
    assert frame[frame.metric == "squared_error"].value.isna().any()


def test_unknown_method_and_hyperparameter_are_clear_errors():
    model = SeedMLP(2, 1, width=3, depth=1, activation_name="relu", seeds=[0])
    with pytest.raises(ConfigError, match=r"unknown method 'sgdd'; valid: \['adam', 'bp', 'cbp'"):
        build_learner("sgdd", model, [0], {"lr": 0.1})
    with pytest.raises(ConfigError, match=r"unknown hyperparameter\(s\) of method 'bp' \['nesterov'\]; valid: lr, "
                                          r"momentum"):
        build_learner("bp", model, [0], {"lr": 0.1, "nesterov": True})


def test_unknown_benchmark_is_a_clear_error():
    spec = job_spec("bit_flipping", small("bit_flipping"), "cbp", [0], "cpu")
    spec["benchmark"] = "bit_flopping"
    with pytest.raises(ConfigError, match=r"unknown benchmark 'bit_flopping'; valid: \['bit_flipping'"):
        train(spec, progress=False)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fused_sgd_step_equals_torch_sgd(weight_decay):
    torch.manual_seed(1)
    fused = SeedMLP(6, 3, width=5, depth=2, activation_name="tanh", seeds=[0, 1]).double()
    reference = SeedMLP(6, 3, width=5, depth=2, activation_name="tanh", seeds=[0, 1]).double()
    inputs, targets = torch.randn(2, 4, 6, dtype=torch.double), torch.randint(0, 3, (2, 4))
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, weight_decay=weight_decay)
    assert plain_sgd_hyperparameters(optimizer) == (0.1, weight_decay)
    assert plain_sgd_hyperparameters(torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)) is None
    reference.backward_from_output_grad(loss_and_output_grad(reference(inputs), targets, "cross_entropy")[1])
    optimizer.step()
    fused.sgd_step_from_output_grad(loss_and_output_grad(fused(inputs), targets, "cross_entropy")[1], 0.1,
                                    weight_decay)
    for mine, theirs in zip(fused.parameters(), reference.parameters()):
        torch.testing.assert_close(mine, theirs)


@pytest.mark.parametrize("method, hparams", [
    ("cbp", {"lr": 0.05, "replacement_rate": 0.2, "maturity_threshold": 2, "accumulate": False}),
    ("shrink_perturb", {"lr": 0.05, "weight_decay": 0.01, "noise_std": 0.01}),
])
def test_method_state_round_trips(method, hparams):
    """A learner's own state (CBP's utilities, ages and random streams; S&P's noise streams) restored into a fresh
    learner continues exactly as the original: what a checkpoint needs."""
    def fresh():
        model = SeedMLP(4, 1, width=6, depth=2, activation_name="relu", seeds=[0, 1])
        return model, build_learner(method, model, [0, 1], hparams)

    def steps(model, learner, inputs):
        for x in inputs:
            output = model(x)
            model.backward_from_output_grad(loss_and_output_grad(output, x[..., :1], "mse")[1])
            learner.optimizer.step()
            learner.after_step(model.hidden)

    inputs = torch.randn(20, 2, 1, 4)
    model, learner = fresh()
    steps(model, learner, inputs[:10])
    saved_model = copy.deepcopy(model.state_dict())
    saved_state = copy.deepcopy(learner.state.state_dict())
    steps(model, learner, inputs[10:])
    resumed, resumed_learner = fresh()
    resumed.load_state_dict(saved_model)
    resumed_learner.state.load_state_dict(saved_state)
    steps(resumed, resumed_learner, inputs[10:])
    for mine, theirs in zip(model.parameters(), resumed.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)


def test_benchmark_arguments_are_checked_before_building():
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) of benchmark 'bit_flipping' \['num_inputz'\]"):
        train(job_spec("bit_flipping", small("bit_flipping", benchmark_args={"num_inputz": 3}), "cbp", [0], "cpu"),
              progress=False)


def test_relabelling_refuses_results_trained_from_another_spec(tmp_path):
    """A job stands in for another only if their specs are equal but for the labels of their results."""
    spec = {"paper": "p", "experiment": "a", "run": "bp", "method": "bp", "hparams": {"lr": 0.01}, "seeds": [0]}
    trained = tmp_path / "trained.parquet"
    trained.with_suffix(".json").write_text(json.dumps({"spec": spec, "wall_seconds": 2.0}))
    pd.DataFrame({"paper": ["p"], "experiment": ["a"], "run": ["bp"], "value": [0.5]}).to_parquet(trained)
    relabel_job({**spec, "experiment": "b", "run": "copy"}, str(tmp_path / "b.parquet"), str(trained))
    relabelled = pd.read_parquet(tmp_path / "b.parquet")
    assert relabelled[["experiment", "run", "value"]].values.tolist() == [["b", "copy", 0.5]]
    with pytest.raises(ConfigError, match="another spec"):
        relabel_job({**spec, "experiment": "c", "hparams": {"lr": 0.1}}, str(tmp_path / "c.parquet"), str(trained))
    assert not (tmp_path / "c.parquet").exists()

