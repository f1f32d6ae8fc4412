"""The stability-gap paper's pieces: gain dynamics, the NGM-SGD step, the joint sampler, continual evaluation,
the metrics on hand-made curves, seed-block invariance and state round trips of the joint protocol."""
import copy
import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import plasticity.engine.checkpoint

from plasticity import stability_gap as sg
from plasticity.benchmarks import build_benchmark
from plasticity.benchmarks.contexts import BLACK, rotation_map
from plasticity.benchmarks.image_contexts import AUGMENTATION, PAD, ImageContextBenchmark
from plasticity.engine.checkpoint import Checkpoints
from plasticity.engine.evaluation import ContinualEvaluator
from plasticity.config import ConfigError, deep_merge, job_spec, load_protocol
from plasticity.models import build_model
from plasticity.models.gain_mlp import GainMLP
from plasticity.models.kernels import FillShiftedInputs
from plasticity.methods import build_learner
from plasticity.methods.ngm_sgd import NGMSGD, prediction_entropy
from plasticity.models.mlp import SeedMLP
from plasticity.engine.job import train
from vision_helpers import write_vision_npz

PROTOCOL = load_protocol("config/experiments.yaml")


def tiny_net(seeds=(0,), depth=1, width=3, inputs=4, outputs=3):
    return GainMLP(inputs, outputs, width, depth, "relu", list(seeds))


# --- gain dynamics ---------------------------------------------------------------------------------------------

def test_gain_follows_the_hand_computed_sequence():
    model = tiny_net(seeds=(0, 1))
    optimizer = NGMSGD([p for p in model.parameters() if p.requires_grad], model, lr=0.1, eta=0.4, gamma=0.9,
                       g0=1.0)
    # g ← 0.9 g + 0.1·1 + 0.4 H: from 1 with H = 0.5, 1.0, 0.0 (seed 0) and 0, 0, 2 (seed 1)
    expected = {0: [1.2, 0.9 * 1.2 + 0.1 + 0.4, 0.9 * 1.58 + 0.1], 1: [1.0, 1.0, 1.8]}
    for step, entropy in enumerate([(0.5, 0.0), (1.0, 0.0), (0.0, 2.0)]):
        optimizer.update_gains(torch.tensor(entropy))
        for layer_gain in model.gains():
            torch.testing.assert_close(layer_gain[:, 0], torch.tensor([expected[0][step], expected[1][step]]))
            assert (layer_gain == layer_gain[:, :1]).all(), "all neurons of a seed share the gain"


def test_gain_updates_before_each_training_forward_from_the_previous_entropy_and_not_in_eval():
    model = tiny_net()
    with torch.no_grad():
        model.layers[-1].weight.zero_()          # logits 0: uniform softmax, entropy ln 3 on every batch
    optimizer = NGMSGD([p for p in model.parameters() if p.requires_grad], model, lr=0.1, eta=0.4)
    x = torch.randn(1, 5, 4)
    model.train()
    model(x)                                      # first iteration: H = 0, the gain stays at g0
    assert (model.gains()[0] == 1.0).all()
    h = math.log(3)
    torch.testing.assert_close(optimizer.state["entropy"], torch.tensor([h]))
    model(x)                                      # second: g = 0.9 + 0.1 + 0.4 ln 3
    g2 = 1.0 + 0.4 * h
    torch.testing.assert_close(model.gains()[-1], torch.full((1, 3), g2))
    model.eval()
    for _ in range(3):
        model(torch.randn(1, 7, 4))               # evaluation: gain frozen, entropy untouched
    torch.testing.assert_close(model.gains()[0], torch.full((1, 3), g2))
    torch.testing.assert_close(optimizer.state["entropy"], torch.tensor([h]))
    model.train()
    model(x)
    torch.testing.assert_close(model.gains()[1], torch.full((1, 3), 0.9 * g2 + 0.1 + 0.4 * h))


def test_g0_sgd_holds_the_gain_and_gain_is_not_a_gradient_parameter():
    model = tiny_net()
    learner = build_learner("g0_sgd", model, [0], {"lr": 0.1, "g0": 1.5})
    model.train()
    for _ in range(3):
        model(torch.randn(1, 5, 4)).sum().backward()
        learner.optimizer.step()
    assert all((gain == 1.5).all() for gain in model.gains())
    assert all(not name.endswith("gain") for name, _ in model.named_parameters())
    assert {name for name, _ in model.named_buffers()} == {"layers.0.gain", "layers.1.gain"}


def test_ngm_sgd_step_equals_the_hand_computed_update():
    # One layer, z = (x Wᵀ)·g: ∂L/∂W = g·(softmax(z) − onehot(y))ᵀ x / B, and W ← W − lr·∂L/∂W.
    model = GainMLP(2, 2, width=1, depth=0, activation_name="relu", seeds=[0])
    w = torch.tensor([[0.5, -1.0], [2.0, 0.25]])
    with torch.no_grad():
        model.layers[0].weight.copy_(w)
    optimizer = NGMSGD([model.layers[0].weight], model, lr=0.1, eta=1.0, gamma=0.5)
    optimizer.state["entropy"] = torch.tensor([0.6])            # previous batch's entropy
    g = 0.5 * 1.0 + 0.5 * 1.0 + 1.0 * 0.6                        # = 1.6, applied before this forward
    x, y = torch.tensor([[[1.0, 2.0]]]), torch.tensor([[1]])
    model.train()
    logits = model(x)
    z = g * (x[0, 0] @ w.T)                                       # (1.6·(0.5 − 2), 1.6·(2 + 0.5)) = (−2.4, 4)
    torch.testing.assert_close(logits[0, 0], z)
    torch.nn.functional.cross_entropy(logits[0], y[0]).backward()
    optimizer.step()
    p = torch.softmax(z, 0)
    delta = p - torch.tensor([0.0, 1.0])
    expected = w - 0.1 * g * torch.outer(delta, x[0, 0])
    torch.testing.assert_close(model.layers[0].weight[0], expected)
    torch.testing.assert_close(optimizer.state["entropy"], prediction_entropy(logits))


def test_ngm_sgd_needs_a_gain_network():
    model = SeedMLP(4, 3, width=3, depth=1, activation_name="relu", seeds=[0])
    with pytest.raises(ConfigError, match="gain-modulated network"):
        build_learner("ngm_sgd", model, [0], {"lr": 0.01, "eta": 0.4})


def test_paper_init():
    model = GainMLP(784, 10, 400, 2, "relu", [0, 1])
    assert model.layers[0].weight.std().item() == pytest.approx(0.01, rel=0.01)
    assert model.layers[2].weight.std().item() == pytest.approx(0.05, rel=0.05)
    assert not model.layers[0].bias.requires_grad and model.layers[0].bias.abs().sum() == 0
    assert not torch.equal(model.layers[0].weight[0], model.layers[0].weight[1])
    alone = GainMLP(784, 10, 400, 2, "relu", [1])
    assert torch.equal(alone.layers[1].weight[0], model.layers[1].weight[1])


def test_optimizer_state_round_trips():
    def fresh():
        model = tiny_net(seeds=(0, 1))
        return model, build_learner("ngm_sgd", model, [0, 1], {"lr": 0.05, "eta": 0.4})

    def steps(model, learner, inputs):
        model.train()
        for x in inputs:
            learner.optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x).transpose(1, 2), torch.zeros(2, 5, dtype=torch.long)).backward()
            learner.optimizer.step()

    inputs = torch.randn(8, 2, 5, 4)
    model, learner = fresh()
    steps(model, learner, inputs[:4])
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(learner.optimizer.state_dict())
    steps(model, learner, inputs[4:])
    resumed, resumed_learner = fresh()
    resumed.load_state_dict(saved_model)
    resumed_learner.optimizer.load_state_dict(saved_opt)
    steps(resumed, resumed_learner, inputs[4:])
    for mine, theirs in zip(model.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    assert model.gains()[0][0, 0] > 1.0


# --- benchmarks, sampler and evaluation ------------------------------------------------------------------------

def test_rotation_map():
    image = torch.arange(784).reshape(28, 28)
    padded = torch.cat([image.flatten(), torch.tensor([-1])])
    assert torch.equal(padded[rotation_map(90)].reshape(28, 28), torch.rot90(image, 1))  # counter-clockwise
    assert torch.equal(rotation_map(0), torch.arange(784))
    assert (rotation_map(80) == BLACK).sum() > 0                                        # corners come from outside


def test_joint_sampler_draws_only_from_seen_contexts_roughly_uniformly(mnist_file):
    bench = build_benchmark("split_mnist", {}, [0, 1], "cpu", mnist_file)
    labels = bench.labels["train"]
    bench.start_context(1)
    examples, tasks = bench.sample(20_000)
    drawn = labels[examples]
    assert set(drawn.unique().tolist()) == {0, 1, 2, 3}
    expected = torch.bincount(labels[torch.isin(labels, torch.arange(4))], minlength=4).float()
    expected /= expected.sum()
    observed = torch.bincount(drawn.flatten(), minlength=4).float() / drawn.numel()
    torch.testing.assert_close(observed, expected, atol=0.01, rtol=0)
    assert torch.equal(tasks, (drawn >= 2).long())
    inputs, targets = bench.next_batch(7)
    assert inputs.shape == (2, 7, 784) and targets.shape == (2, 7)
    assert inputs.min().item() == pytest.approx(-0.1307 / 0.3081)

    rotated = build_benchmark("rotated_mnist", {"angles": [0, 80, 160]}, [0], "cpu", mnist_file)
    rotated.start_context(1)
    _, tasks = rotated.sample(10_000)
    assert set(tasks.unique().tolist()) == {0, 1} and abs(tasks.float().mean().item() - 0.5) < 0.02


def test_sampler_and_evaluator_state_round_trip(mnist_file):
    bench = build_benchmark("permuted_mnist_joint", {"num_tasks": 3}, [4], "cpu", mnist_file)
    bench.start_context(2)
    bench.sample(5)
    saved = copy.deepcopy(bench.state_dict())
    after = bench.next_batch(5)
    other = build_benchmark("permuted_mnist_joint", {"num_tasks": 3}, [4], "cpu", mnist_file)
    other.load_state_dict(saved)
    assert all(torch.equal(a, b) for a, b in zip(after, other.next_batch(5)))
    evaluator = ContinualEvaluator(bench, 50)
    evaluator.add_task(0)
    evaluator.add_task(1)
    restored = ContinualEvaluator(other, None)
    restored.load_state_dict(evaluator.state_dict())
    assert torch.equal(restored.inputs, evaluator.inputs) and restored.sizes == [50, 50]


def test_permuted_mnist_permutations_shared_by_default_or_per_seed(mnist_file):
    def maps(seeds, **args):
        return [task.pixel_map for task in build_benchmark("permuted_mnist_joint", args, seeds, "cpu",
                                                          mnist_file).tasks]
    shared, alone = maps([0, 1]), maps([5])
    assert all(torch.equal(m[0], m[1]) and torch.equal(m[0], a[0]) for m, a in zip(shared, alone))
    per_seed = maps([0, 1], permutations="per_seed")
    assert torch.equal(per_seed[0][0], per_seed[0][1]) and not torch.equal(per_seed[1][0], per_seed[1][1])
    with pytest.raises(ConfigError, match="permutations 'each'; valid: shared, per_seed"):
        maps([0], permutations="each")


def test_evaluation_subsets_and_whole_test_sets(mnist_file):
    bench = build_benchmark("split_mnist", {}, [0, 1], "cpu", mnist_file)
    subset = bench.test_examples(0, 1000)
    assert subset.shape == (2, 1000) and not torch.equal(subset[0], subset[1])
    assert set(bench.labels["test"][subset].unique().tolist()) == {0, 1}
    assert torch.equal(build_benchmark("split_mnist", {}, [1], "cpu", mnist_file).test_examples(0, 1000)[0],
                       subset[1])
    assert bench.test_examples(0, None).shape == (2, 2115)   # every test 0 and 1
    with pytest.raises(ConfigError, match="samples_per_task 5000 exceeds the 2115 test images of task 1"):
        bench.test_examples(0, 5000)
    model = GainMLP(784, 10, 8, 1, "relu", [0, 1]).eval()
    evaluator = ContinualEvaluator(bench, 100)
    evaluator.add_task(0)
    evaluator.add_task(1)
    accuracy, loss, pooled = evaluator.evaluate(model)
    assert accuracy.shape == loss.shape == (2, 2) and pooled.shape == (2,)
    torch.testing.assert_close(pooled, accuracy.mean(1))


@pytest.mark.parametrize("benchmark, args", [("split_mnist", {}), ("rotated_mnist", {"angles": [0, 80]})])
def test_cpu_evaluation_skips_black_pixels_with_the_dense_numbers(benchmark, args, mnist_file):
    """The evaluator's first layer reads only non-black pixels (FillShiftedInputs): the dense forward's numbers up
    to float rounding, black pixels exactly skipped, under a trained-looking network with gains."""
    bench = build_benchmark(benchmark, args, [0, 1], "cpu", mnist_file)
    evaluator = ContinualEvaluator(bench, 300)
    evaluator.add_task(0)
    evaluator.add_task(1)
    sparse = evaluator.model_inputs
    assert isinstance(sparse, FillShiftedInputs) and 0.05 < sparse.density < 0.3
    black = evaluator.inputs.min()
    for seed in range(2):       # the entries kept are exactly the non-black pixels, with x - black
        counts = sparse.starts[seed, 1:] - sparse.starts[seed, :-1]
        examples = torch.repeat_interleave(torch.arange(len(counts)), counts)
        rebuilt = torch.zeros(evaluator.inputs.shape[1:])
        rebuilt[examples, sparse.rows[seed, :len(examples)].long()] = sparse.values[seed, :len(examples)]
        assert torch.equal(rebuilt, torch.where(evaluator.inputs[seed] == black, 0.0, evaluator.inputs[seed] - black))
    model = GainMLP(784, 10, 50, 2, "relu", [0, 1], hidden_std=0.1, output_std=0.3).eval()
    for index, layer in enumerate(model.layers):
        layer.gain.fill_(1.5 + index)
    with torch.no_grad():
        expected = model(evaluator.inputs)          # rounding differences relative to the logits' scale
        torch.testing.assert_close(model(sparse), expected, rtol=0, atol=1e-6 * expected.abs().max().item())
        dense = ContinualEvaluator(bench, 300)
        dense.load_state_dict(evaluator.state_dict())
        dense.model_inputs = dense.inputs
        for got, expected in zip(evaluator.evaluate(model), dense.evaluate(model)):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


# --- metrics on hand-made curves -------------------------------------------------------------------------------

NAN = math.nan
TASK1 = [0.1, 0.8, 1.0, 0.5, 0.9, 0.6, 0.8]        # 3 contexts of 2 iterations, n = 0..6
CURVES = np.array([TASK1,
                   [NAN, NAN, NAN, 0.2, 0.7, 0.4, 0.6],
                   [NAN, NAN, NAN, NAN, NAN, 0.3, 0.9]])


def test_stability_gap_per_transition_and_average():
    # SG 1→2: (A[2] − min(A[3], A[4])) / A[2] = (1 − 0.5) / 1; SG 2→3: (0.9 − min(0.6, 0.8)) / 0.9 = 1/3
    np.testing.assert_allclose(sg.stability_gaps(TASK1, 2), [0.5, 1 / 3])
    assert sg.average_stability_gap(TASK1, 2) == pytest.approx(5 / 12)
    np.testing.assert_allclose(sg.stability_gaps(np.array([TASK1, TASK1]), 2), [[0.5, 1 / 3]] * 2)
    assert np.isnan(sg.average_stability_gap([0.0, 0.5, 0.9], 2))      # one context: no transition


def test_min_acc_wc_acc_and_both_average_accuracies():
    # min-ACC: task 1 after n = 2: min(0.5, 0.9, 0.6, 0.8) = 0.5; task 2 after n = 4: min(0.4, 0.6) = 0.4
    assert sg.min_accuracy(CURVES, 2) == pytest.approx(0.45)
    assert sg.worst_case_accuracy(CURVES, 2) == pytest.approx(0.9 / 3 + 2 / 3 * 0.45)
    assert sg.average_task1_accuracy(TASK1, 2) == pytest.approx((1.0 + 0.9 + 0.8) / 3)
    assert sg.final_average_accuracy(CURVES) == pytest.approx((0.8 + 0.6 + 0.9) / 3)
    summary = sg.summary(np.stack([CURVES, CURVES]), 2)
    assert summary["avg_sg"].shape == (2,) and summary["stability_gap"].shape == (2, 2)
    with pytest.raises(ValueError, match="not a whole number of contexts"):
        sg.min_accuracy(CURVES, 4)


def test_reference_style_min_acc_and_wc_acc_on_a_hand_made_curve():
    # the authors' table code: task-1 minima within contexts 1..T−1, n = 1..2 and 3..4: min(0.8, 1.0) = 0.8 and
    # min(0.5, 0.9) = 0.5 (n = 0, before training, is not an evaluation after an iteration; context 3 is left out)
    assert sg.reference_min_accuracy(TASK1, 2) == pytest.approx(0.65)
    assert sg.reference_worst_case_accuracy(TASK1, 2) == pytest.approx(0.8 / 3 + 2 / 3 * 0.65)
    summary = sg.summary(np.stack([CURVES, CURVES]), 2)
    np.testing.assert_allclose(summary["min_acc_ref"], [0.65, 0.65])
    assert np.isnan(sg.reference_min_accuracy([0.0, 0.5, 0.9], 2))     # one context: no earlier context


def test_a_dip_to_zero_is_a_gap_of_one():
    curve = [0.0, 1.0, 1.0, 0.0, 1.0]
    assert sg.stability_gaps(curve, 2).tolist() == [1.0]


# --- the joint protocol end to end -----------------------------------------------------------------------------

def small_joint(experiment, **overrides):
    return deep_merge(PROTOCOL[experiment], deep_merge({"iterations_per_context": 3, "batch_size": 8,
                                                        "model": {"width": 12},
                                                        "evaluation": {"samples_per_task": 40}}, overrides))


@pytest.mark.parametrize("experiment, run", [("ngm_split_mnist", "ngm_sgd"), ("ngm_split_mnist", "cbp"),
                                             ("ngm_rotated_mnist", "adam"), ("ngm_permuted_mnist", "msgd")])
def test_joint_seed_results_do_not_depend_on_the_block(experiment, run, mnist_file):
    exp = small_joint(experiment)
    if run == "cbp":
        exp["runs"]["cbp"]["hparams"].update(replacement_rate=0.2, maturity_threshold=2)
    together = train(job_spec(experiment, exp, run, [0, 1, 2], "cpu"), mnist_file, progress=False)
    alone = train(job_spec(experiment, exp, run, [2], "cpu"), mnist_file, progress=False)
    key = ["x", "metric", "layer"]
    mine = together[together.seed == 2].sort_values(key).reset_index(drop=True)
    theirs = alone.sort_values(key).reset_index(drop=True)
    assert mine[key].equals(theirs[key])
    torch.testing.assert_close(torch.tensor(mine.value.values), torch.tensor(theirs.value.values),
                               rtol=1e-5, atol=1e-6)


def test_joint_output_schema_and_evaluated_tasks(mnist_file):
    exp = small_joint("ngm_split_mnist", evaluation={"tasks": "seen"})
    with torch.no_grad():                     # as plasticity.engine.online runs; the joint loop turns autograd back on
        frame = train(job_spec("ngm_split_mnist", exp, "ngm_sgd", [0, 1], "cpu"), mnist_file, progress=False)
    assert set(frame.x_unit) == {"iterations"} and set(frame.paper) == {"ngm2025"}
    accuracy = frame[frame.metric == "task_accuracy"]
    assert accuracy.groupby("layer").x.min().tolist() == [0, 4, 7, 10, 13]     # from its context's start
    assert accuracy.x.max() == 15 and accuracy.value.between(0, 1).all()
    gain = frame[(frame.metric == "gain") & (frame.seed == 0)]
    assert sorted(gain.layer.unique()) == [1, 2, 3] and gain.value.max() > 1.0
    assert len(frame[frame.metric == "stability_gap"]) == 2 * 4
    assert set(frame[frame.metric == "eval_samples"].value) == {40.0}
    ended = small_joint("ngm_split_mnist", evaluation={"tasks": "ended"})
    frame = train(job_spec("ngm_split_mnist", ended, "sgd", [0], "cpu"), mnist_file, progress=False)
    accuracy = frame[frame.metric == "task_accuracy"]
    assert accuracy.groupby("layer").x.min().tolist() == [0, 6, 9, 12, 15]     # from its context's end


def test_joint_bad_input_is_a_clear_error(mnist_file):
    exp = small_joint("ngm_split_mnist", evaluation={"tasks": "sometimes"})
    with pytest.raises(ConfigError, match="evaluation tasks 'sometimes'; valid: seen, ended"):
        train(job_spec("ngm_split_mnist", exp, "sgd", [0], "cpu"), mnist_file, progress=False)
    exp = small_joint("ngm_split_mnist", benchmark="bit_flipping", benchmark_args={})
    with pytest.raises(ConfigError, match="'bit_flipping' is not a joint-training benchmark; valid: domain_cifar100, "
                                          "permuted_mnist_joint, rotated_mnist, split_cifar10, split_mini_imagenet"):
        train(job_spec("ngm_split_mnist", exp, "sgd", [0], "cpu"), mnist_file, progress=False)


def test_joint_record_state_round_trips():
    from plasticity.engine.joint import JointRecord
    record = JointRecord(num_seeds=2, contexts=3, layers=3, total=6)
    record.curves["task_accuracy"][:, 0, :3] = 0.5
    record.evaluated_from = [0, 4]
    other = JointRecord(num_seeds=2, contexts=3, layers=3, total=6)
    other.load_state_dict(copy.deepcopy(record.state_dict()))
    assert other.evaluated_from == [0, 4]
    torch.testing.assert_close(other.curves["task_accuracy"], record.curves["task_accuracy"], equal_nan=True)


def test_rotation_map_matches_pil_rotate_as_the_reference_uses_it(mnist_file):
    """The reference rotates PIL images with torchvision's rotate (nearest neighbour, no expansion, black fill)."""
    image_module = pytest.importorskip("PIL.Image")
    from plasticity.data.mnist import load_mnist
    images = load_mnist(mnist_file)["x_test"][:50].numpy()
    for angle in (80, 160):
        index = rotation_map(angle).numpy()
        for image in images:
            theirs = np.asarray(image_module.fromarray(image).rotate(angle, resample=image_module.NEAREST))
            assert (np.append(image.flatten(), 0)[index].reshape(28, 28) == theirs).all()


# --- the vision benchmarks, on tiny synthetic data -----------------------------------------------------------

def image_npz(path, name: str, classes: int, train_per_class: int, test_per_class: int, size: int = 32,
              coarse=None) -> str:
    """A tiny data set `name` as the data layer stores it: x_* uint8 (N, size, size, 3), labels in class order."""
    rng = np.random.default_rng(0)

    def split(per_class):
        labels = np.repeat(np.arange(classes), per_class)
        return rng.integers(0, 256, (len(labels), size, size, 3), dtype=np.uint8), labels
    return write_vision_npz(path, name, *split(train_per_class), *split(test_per_class), coarse=coarse)


@pytest.fixture(scope="module")
def cifar10_file(tmp_path_factory):
    return image_npz(tmp_path_factory.mktemp("cifar10") / "cifar10.npz", "cifar10", 10, 6, 4)


def test_domain_cifar100_learns_superclasses_one_fine_class_of_each_per_domain(tmp_path):
    coarse = np.random.default_rng(1).permutation(np.arange(100) % 20)     # 5 fine classes per superclass
    bench = build_benchmark("domain_cifar100", {}, [0], "cpu",
                            image_npz(tmp_path / "c100.npz", "cifar100", 100, 2, 1, coarse=coarse))
    assert bench.shapes() == ((3, 32, 32), 20) and bench.num_contexts == 5
    members = [sorted(np.flatnonzero(coarse == superclass)) for superclass in range(20)]
    for t, task in enumerate(bench.tasks):
        fine = bench.classes["train"][task.train_indices]
        assert sorted(fine.unique().tolist()) == sorted(classes[t] for classes in members)
        labels = bench.labels["test"][task.test_indices]
        assert sorted(labels.tolist()) == list(range(20)), "each domain: one fine class of every superclass"
    with pytest.raises(ConfigError, match="num_domains 6 must be between 1 and the 5 fine classes"):
        build_benchmark("domain_cifar100", {"num_domains": 6}, [0], "cpu", str(tmp_path / "c100.npz"))


def test_split_mini_imagenet_cuts_class_blocks_and_tasks_of_ten(tmp_path):
    bench = build_benchmark("split_mini_imagenet", {"num_tasks": 2}, [0], "cpu",
                            image_npz(tmp_path / "mini.npz", "mini_imagenet", 20, 5, 1, size=84))
    assert bench.shapes(num_tasks=2) == ((3, 84, 84), 20) and not bench.augment
    assert len(bench.labels["train"]) == 100 and len(bench.labels["test"]) == 20
    raw = np.load(tmp_path / "mini.npz")["x_test"]
    assert torch.equal(bench.images["test"][0], torch.from_numpy(raw[0]).permute(2, 0, 1))
    assert [sorted(bench.labels["train"][t.train_indices].unique().tolist()) for t in bench.tasks] == \
        [list(range(10)), list(range(10, 20))]
    with pytest.raises(ConfigError, match="num_tasks 3 x classes_per_task 10 must be between 1 and the 20"):
        build_benchmark("split_mini_imagenet", {"num_tasks": 3}, [0], "cpu", str(tmp_path / "mini.npz"))


def test_split_cifar10_batches_augmented_from_seen_classes_and_fixed_evaluation_subsets(cifar10_file):
    bench = build_benchmark("split_cifar10", {}, [0, 1], "cpu", cifar10_file)
    bench.start_context(1)
    inputs, targets = bench.next_batch(16)
    assert inputs.shape == (2, 16, 3, 32, 32) and set(targets.unique().tolist()) <= {0, 1, 2, 3}
    # the augmentation is the reference's: a window of the zero-padded image, flipped or not
    assert AUGMENTATION.padding == PAD and AUGMENTATION.padding_mode == "zero" and AUGMENTATION.flip == 0.5
    assert AUGMENTATION.angles is None
    subset = bench.test_examples(0, 5)
    alone = build_benchmark("split_cifar10", {}, [1], "cpu", cifar10_file).test_examples(0, 5)
    assert torch.equal(alone[0], subset[1]) and not torch.equal(subset[0], subset[1])


def test_slim_resnet_gain_on_the_head_only_and_ngm_optimiser_groups():
    model = build_model({"arch": "slim_resnet18", "gain_head": True}, (3, 32, 32), 10, [0], "joint")
    assert [gain.shape for gain in model.gains()] == [(1, 10)] and model.gains()[0] is model.head.gain
    assert not model.head.bias.requires_grad
    reference = copy.deepcopy(model)
    learner = build_learner("ngm_sgd", model, [0], {"lr": 0.1, "eta": 0.0, "backbone_momentum": 0.9})
    head, backbone = learner.optimizer.param_groups
    assert head["momentum"] == 0 and head["params"] == [model.head.weight]
    assert backbone["momentum"] == 0.9 and len(backbone["params"]) == len(list(model.parameters())) - 2
    assert all(p is not model.head.bias for group in (head, backbone) for p in group["params"])
    plain = [torch.optim.SGD([reference.head.weight], lr=0.1),
             torch.optim.SGD([p for n, p in reference.named_parameters() if not n.startswith("head.")], lr=0.1,
                             momentum=0.9)]
    x, y = torch.randn(1, 4, 3, 32, 32), torch.tensor([[0, 1, 2, 3]])
    for _ in range(2):                           # eta 0: the gain stays 1, so torch's SGD is the reference
        for net, optimizers in ((model, [learner.optimizer]), (reference, plain)):
            for optimizer in optimizers:
                optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x)[0], y[0]).backward()
            for optimizer in optimizers:
                optimizer.step()
    for (name, mine), theirs in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(mine, theirs, msg=name)
    assert (model.head.bias == 0).all()


def vision_spec(**overrides) -> dict:
    experiment = deep_merge(PROTOCOL["ngm_split_cifar10"], deep_merge({
        "benchmark_args": {"num_tasks": 2}, "iterations_per_context": 3, "batch_size": 4,
        "evaluation": {"samples_per_task": 4}}, overrides))
    return job_spec("ngm_split_cifar10", experiment, "ngm_sgd", [0, 1], "cpu")


def test_vision_job_resumes_after_a_kill_mid_context_with_identical_results(cifar10_file, tmp_path, monkeypatch):
    spec = vision_spec()
    uninterrupted = train(spec, cifar10_file, progress=False)
    monkeypatch.setattr(plasticity.engine.checkpoint, "CHECK_EVERY_STEPS", 1)
    original, calls = ImageContextBenchmark.next_batch, iter(range(1, 100))

    def killed_in_iteration_5(self, batch_size):     # the second of context 2's three iterations
        if next(calls) == 5:
            raise KeyboardInterrupt
        return original(self, batch_size)
    monkeypatch.setattr(ImageContextBenchmark, "next_batch", killed_in_iteration_5)
    checkpoint = tmp_path / "job.ckpt"
    with pytest.raises(KeyboardInterrupt):
        train(spec, cifar10_file, progress=False, checkpoints=Checkpoints(checkpoint, minutes=0))
    monkeypatch.setattr(ImageContextBenchmark, "next_batch", original)
    assert torch.load(checkpoint, weights_only=True)["step"] == 4
    resumed = train(spec, cifar10_file, progress=False, checkpoints=Checkpoints(checkpoint, minutes=0))
    pd.testing.assert_frame_equal(resumed, uninterrupted, check_exact=True)


def test_plasticity_train_runs_a_vision_job_on_a_synthetic_npz(cifar10_file, tmp_path):
    out = tmp_path / "job.parquet"
    subprocess.run([sys.executable, "-m", "plasticity.cli", "train", "--spec", json.dumps(vision_spec()), "--out",
                    str(out), "--data", cifar10_file], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    frame = pd.read_parquet(out)
    gains = frame[frame["metric"] == "gain"]
    assert set(gains["layer"]) == {1} and gains["value"].max() > 1, "one gain layer, the head's, driven by NGM"
    task2 = frame[(frame["metric"] == "task_accuracy") & (frame["layer"] == 2)]
    assert task2["x"].min() == 6, "task 2 evaluated from the end of its context (tasks: ended)"
    assert set(frame.loc[frame["metric"] == "eval_samples", "value"]) == {4.0}
    assert {"min_acc_ref", "wc_acc_ref", "avg_sg"} <= set(frame["metric"])
