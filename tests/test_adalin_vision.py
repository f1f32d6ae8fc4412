"""AdaLin on images (issue 14): per-channel α on feature maps against the per-neuron formula at every position,
the online CIFAR streams (random labels, shuffled labels, class splits) on tiny synthetic files of the materialised
format, CReLU's parameter-matched CNN, and a CIFAR job planned and run through `plasticity train`."""
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from plasticity.activations import build_activation
from plasticity.benchmarks import build_benchmark
from plasticity.config import ConfigError, deep_merge
from plasticity.models import build_model
from vision_helpers import write_vision_npz

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CIFAR_EXPERIMENTS = ["adalin_random_label_cifar10", "adalin_shuffled_cifar10", "adalin_class_split_cifar100",
                     "adalin_incremental_cifar100"]
# φ, and L = max |φ'| computed independently of plasticity.activations.adalin (GELU's on a fine grid)
BASES = {"relu": (torch.relu, 1.0), "tanh": (torch.tanh, 1.0), "gelu": (F.gelu, None)}


def lipschitz(base: str) -> float:
    phi, bound = BASES[base]
    if bound is not None:
        return bound
    x = torch.linspace(0, 4, 400_001, dtype=torch.double, requires_grad=True)
    (slope,) = torch.autograd.grad(phi(x).sum(), x)
    return slope.max().item()


def per_neuron_adalin(base: str, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The paper's f(x) = φ(x) + α·x·sg[cos((π/2)|φ'(x)|/L)] for scalar x and α, elementwise over two equal-shape
    tensors, φ' by autograd."""
    phi, _ = BASES[base]
    probe = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (slope,) = torch.autograd.grad(phi(probe).sum(), probe)
    gate = torch.cos((math.pi / 2) * slope.abs() / lipschitz(base)).clamp(min=0)
    return phi(x) + alpha * x * gate.detach()


def images(count: int) -> np.ndarray:
    """`count` 32×32 RGB images, image i filled with the value i (known by any pixel)."""
    return np.broadcast_to(np.arange(count, dtype=np.uint8)[:, None, None, None], (count, 32, 32, 3)).copy()


@pytest.fixture(scope="module")
def cifar10_file(tmp_path_factory):
    """40 images, labels i mod 10."""
    return write_vision_npz(tmp_path_factory.mktemp("cifar10") / "cifar10.npz", "cifar10", images(40),
                            np.arange(40) % 10, images(10), np.arange(10))


@pytest.fixture(scope="module")
def cifar100_file(tmp_path_factory):
    """6 classes × 4 images, interleaved as CIFAR's."""
    return write_vision_npz(tmp_path_factory.mktemp("cifar100") / "cifar100.npz", "cifar100", images(24),
                            np.arange(24) % 6, images(6), np.arange(6))


def image_ids(inputs: torch.Tensor) -> torch.Tensor:
    """(S, n, 3, 32, 32) in [0, 1] -> (S, n) image ids."""
    return (inputs[..., 0, 0, 0] * 255).round().long()


@pytest.mark.parametrize("base", ["relu", "tanh", "gelu"])
@pytest.mark.parametrize("seeded", [False, True])
def test_per_channel_adalin_is_the_per_neuron_formula_at_every_position(base, seeded):
    """On (B, C, H, W) maps (and the engine's (S, B, C, H, W)), channel c's α applies at every position: values and
    gradients (input and α, by autograd, and the activation's hand-derived backward) equal the scalar formula."""
    torch.manual_seed(0)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)] if seeded else None
    act = build_activation(f"adalin_{base}", 3, gens).double()
    shape = (2, 4, 3, 5, 5) if seeded else (4, 3, 5, 5)
    x = (torch.randn(shape, dtype=torch.double) * 3).requires_grad_(True)
    channel_dim = 2 if seeded else 1
    alpha_per_position = act.alpha.view(*([2] if seeded else []), *[1] * (channel_dim - seeded), 3, 1, 1).expand(shape)
    weights = torch.randn(shape, dtype=torch.double)
    ours = act(x)
    expected = per_neuron_adalin(base, x, alpha_per_position)
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-9)   # GELU: L from a grid
    grad_x, grad_alpha = torch.autograd.grad((ours * weights).sum(), [x, act.alpha])
    want_x, want_alpha = torch.autograd.grad((expected * weights).sum(), [x, act.alpha])
    torch.testing.assert_close(grad_x, want_x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad_alpha, want_alpha, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        hand = act.backward(x, ours, weights)
    torch.testing.assert_close(hand, want_x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(act.alpha.grad, want_alpha, rtol=1e-10, atol=1e-10)


def test_adalin_relu_on_maps_is_a_per_channel_prelu_and_the_layer_variant_shares_one_alpha():
    x = torch.randn(4, 3, 5, 5, dtype=torch.double, requires_grad=True)
    act = build_activation("adalin_relu", 3).double()
    slope = act.alpha.detach().clone().requires_grad_(True)
    ours, theirs = act(x), F.prelu(x, slope)
    assert torch.equal(ours, theirs)
    weights = torch.randn_like(x)
    assert all(torch.equal(a, b) for a, b in zip(torch.autograd.grad((ours * weights).sum(), [x, act.alpha]),
                                                 torch.autograd.grad((theirs * weights).sum(), [x, slope])))
    layer = build_activation("adalin_layer_relu", 3).double()
    assert layer.alpha.shape == (1,)
    assert torch.equal(layer(x), F.prelu(x, layer.alpha.detach().expand(3).contiguous()))
    seeded = build_activation("adalin_layer_gelu", 16, [torch.Generator().manual_seed(s) for s in (0, 1)])
    assert seeded.alpha.shape == (2, 1)


def test_adalin_and_prelu_on_the_vision_nets_are_per_channel():
    """kumar_cnn and resnet18 by activation name: one α per channel of every conv layer (per neuron in the CNN's
    linear layers), per seed, block-invariant."""
    cnn = build_model({"arch": "kumar_cnn", "activation": "adalin_tanh"}, (3, 32, 32), 10, [0, 1])
    assert [tuple(a.alpha.shape) for a in cnn.activations] == [(2, 16), (2, 16), (2, 100), (2, 100)]
    alone = build_model({"arch": "kumar_cnn", "activation": "adalin_tanh"}, (3, 32, 32), 10, [1])
    assert torch.equal(cnn.activations[0].alpha[1], alone.activations[0].alpha[0])
    resnet = build_model({"arch": "resnet18", "activation": "prelu"}, (3, 32, 32), 100, [0])
    assert resnet.activations[0].alpha.shape == (1, 64) and resnet.activations[-1].alpha.shape == (1, 512)


def test_crelu_cnn_has_parameter_matched_channels_and_widths():
    """Plain kumar_cnn on 3×32×32, 10 classes, by hand: conv 3·25·16+16 = 1,216, conv 16·25·16+16 = 6,416, fc
    400·100+100 = 40,100, fc 10,100, head 1,010: 58,842. CReLU doubles every layer's outputs; with c channels and
    width w: 76c + (50c² + c) + (50cw + w) + (2w² + w) + (20w + 10). One factor n/100 for every layer: n = 71 gives
    c = 11, w = 71, 57,601 (−1,241); n = 70 (11, 70) 56,747 and n = 72 (12, 72) 63,286 are further."""
    def count(c: int, w: int) -> int:
        return 76 * c + 50 * c * c + c + 50 * c * w + w + 2 * w * w + w + 20 * w + 10

    assert (count(11, 71), count(11, 70), count(12, 72)) == (57_601, 56_747, 63_286)
    plain = build_model({"arch": "kumar_cnn"}, (3, 32, 32), 10, [0])
    crelu = build_model({"arch": "kumar_cnn", "activation": "crelu"}, (3, 32, 32), 10, [0, 1])
    assert sum(p.numel() for p in plain.parameters()) == 58_842
    assert [conv.out_channels for conv in crelu.convs] == [11, 11] and [fc.out_features for fc in crelu.fcs] == [71, 71]
    assert sum(p.numel() for p in crelu.parameters()) == 2 * 57_601
    assert crelu(torch.rand(2, 3, 3, 32, 32)).shape == (2, 3, 10)
    assert [f.shape[2] for f in crelu.features] == [22, 22, 142, 142]
    with pytest.raises(ConfigError, match="one output per unit"):
        build_model({"arch": "resnet18", "activation": "crelu"}, (3, 32, 32), 10, [0])


def stream(name: str, path: str, seeds=(0, 1), **args):
    return build_benchmark(name, args, list(seeds), torch.device("cpu"), data_path=path)


def tasks_of(benchmark, tasks: int, epochs: int, per_task: int):
    """(ids, labels), each (S, tasks, epochs, per_task), of the stream's first `tasks` tasks."""
    inputs, targets = benchmark.next_batch(tasks * epochs * per_task)
    shape = (inputs.shape[0], tasks, epochs, per_task)
    return image_ids(inputs).view(shape), targets.view(shape)


def mapping(ids: torch.Tensor, labels: torch.Tensor) -> dict[int, int]:
    """image id -> label, asserting each image has one label."""
    pairs = set(zip(ids.flatten().tolist(), labels.flatten().tolist()))
    assert len(pairs) == len({image for image, _ in pairs})
    return dict(pairs)


def test_random_label_stream_fixed_within_a_task_fresh_per_task_and_seed(cifar10_file):
    ids, labels = tasks_of(stream("random_label_cifar10", cifar10_file, images_per_task=8, epochs_per_task=3),
                           tasks=3, epochs=3, per_task=8)
    for seed in range(2):
        for task in range(3):
            epochs = ids[seed, task]
            assert all(set(epoch.tolist()) == set(epochs[0].tolist()) and len(set(epoch.tolist())) == 8
                       for epoch in epochs)               # each epoch: the task's 8 images once, reshuffled
            assert not all(torch.equal(epochs[0], epoch) for epoch in epochs[1:])
            mapping(epochs, labels[seed, task])            # one label per image over all the task's epochs
        assert len({tuple(sorted(mapping(ids[seed, t], labels[seed, t]).items())) for t in range(3)}) == 3
    assert not torch.equal(ids[0], ids[1]) and not torch.equal(labels[0], labels[1])
    alone_ids, alone_labels = tasks_of(stream("random_label_cifar10", cifar10_file, seeds=[1], images_per_task=8,
                                              epochs_per_task=3), tasks=3, epochs=3, per_task=8)
    assert torch.equal(alone_ids[0], ids[1]) and torch.equal(alone_labels[0], labels[1])


def test_shuffled_stream_permutes_the_ten_labels_per_task_on_the_same_images(cifar10_file):
    benchmark = stream("shuffled_cifar10", cifar10_file, images_per_task=20, epochs_per_task=2)
    ids, labels = tasks_of(benchmark, tasks=3, epochs=2, per_task=20)
    for seed in range(2):
        assert len({frozenset(ids[seed, t].flatten().tolist()) for t in range(3)}) == 1   # the same images
        permutations = []
        for task in range(3):
            label_of = mapping(ids[seed, task], labels[seed, task])
            # true label = id mod 10: the task maps each true class to one label, a permutation of the 10
            classes = {image % 10: label for image, label in label_of.items()}
            assert all(label_of[image] == classes[image % 10] for image in label_of)
            permutations.append(tuple(classes[c] for c in sorted(classes)))
        assert len(set(permutations)) == 3 and all(sorted(p) == sorted(set(p)) for p in permutations)
    assert benchmark.out_features == 10


def test_class_split_tasks_are_disjoint_class_subsets_labelled_by_position(cifar100_file):
    benchmark = stream("class_split_cifar100", cifar100_file, classes_per_task=2, images_per_class=3,
                       epochs_per_task=2, num_classes=6)
    ids, labels = tasks_of(benchmark, tasks=4, epochs=2, per_task=6)
    for seed in range(2):
        task_classes = []
        for task in range(4):
            label_of = mapping(ids[seed, task], labels[seed, task])
            classes = {image % 6 for image in label_of}
            assert len(classes) == 2 and len(label_of) == 6 and set(label_of.values()) == {0, 1}
            assert all(image < 18 for image in label_of)          # the first 3 images of each class
            assert len({(image % 6, label) for image, label in label_of.items()}) == 2
            task_classes.append(frozenset(classes))
        assert set().union(*task_classes[:3]) == set(range(6))   # a cycle: 3 disjoint tasks cover the 6 classes
    assert benchmark.shapes(classes_per_task=2) == ((3, 32, 32), 2)
    with pytest.raises(ConfigError, match="fewer than images_per_class"):
        stream("class_split_cifar100", cifar100_file, images_per_class=5, num_classes=6)


def test_cifar_experiments_plan_and_a_smoke_job_runs_through_the_cli(cifar10_file, tmp_path):
    """The smoke scale with AdaLin's image experiments selected (as the lead adds them once the data layer lands):
    validated and planned on GPUs' terms, and one CNN job run by `plasticity train --spec` on a synthetic file."""
    from plasticity.workflow import Workflow
    config = deep_merge(yaml.safe_load(open("config/config.yaml")), yaml.safe_load(open("config/smoke.yaml")))
    config["experiments"] = CIFAR_EXPERIMENTS
    workflow = Workflow(config, ".")
    assert workflow.train_inputs("adalin_shuffled_cifar10", "cbp-lr_0.001", "0-1")["data"] == \
        "resources/cifar10.npz"
    assert workflow._steps("adalin_random_label_cifar10", "cbp-lr_0.001") == 4
    assert {run for (name, run, _) in workflow.jobs if name == "adalin_incremental_cifar100"} == \
        {"relu", "adalin_relu", "cbp"}
    spec = json.loads(workflow.train_spec("adalin_random_label_cifar10", "adam-activation_adalin_relu-lr_0.001",
                                          "0-1"))
    assert spec["model"] == {"arch": "kumar_cnn", "activation": "adalin_relu"} and spec["batch_size"] == 16
    out = tmp_path / "job.parquet"
    subprocess.run([sys.executable, "-m", "plasticity.cli", "train", "--spec", json.dumps(spec), "--out", str(out),
                    "--data", cifar10_file], check=True, capture_output=True)
    tidy = pd.read_parquet(out)
    accuracy = tidy[tidy["metric"] == "online_accuracy"]
    assert sorted(accuracy["x"].unique()) == [32, 64] and set(accuracy["seed"]) == {0, 1}
    assert {"alpha_median", "dead_units_pct"} <= set(tidy["metric"])


def test_cifar_table_columns_and_companion_figures_from_tiny_runs(cifar10_file, cifar100_file, tmp_path):
    """Tiny runs of ReLU and AdaLin-ReLU (the CNN online; ResNet-18 under the tasks protocol) give the table its
    CIFAR columns and draw the companion figures, whose captions say the sizes are assumed."""
    from figures import draw_figure
    from plasticity.analysis.adalin_table import write_adalin_table
    from plasticity.analysis.aggregate import aggregate
    from plasticity.engine.job import train
    from plasticity.workflow import Workflow
    config = deep_merge(yaml.safe_load(open("config/config.yaml")), yaml.safe_load(open("config/smoke.yaml")))
    config["experiments"] = CIFAR_EXPERIMENTS
    workflow = Workflow(config, ".")
    tidy = pd.concat([train(json.loads(workflow.train_spec("adalin_random_label_cifar10", run, "0-1")), cifar10_file,
                            progress=False)
                      for run in ("adam-activation_relu-lr_0.001", "adam-activation_adalin_relu-lr_0.001")])
    specs = [json.loads(workflow.train_spec("adalin_incremental_cifar100", run, "0-1")) for run in ("relu", "adalin_relu")]
    for spec in specs:     # one epoch per task, a validation image per class: the 4 images of each class
        spec.update(epochs_per_task=1, schedule={"epochs": [0], "factors": [1.0]}, probe={"size": 4})
        spec["benchmark_args"]["validation_per_class"] = 1
    tasks = pd.concat([train(spec, cifar100_file, progress=False) for spec in specs])
    paths = []
    for name in CIFAR_EXPERIMENTS[:3]:
        paths.append(tmp_path / f"{name}.parquet")
        tidy.assign(experiment=name).to_parquet(paths[-1])
    paths.append(tmp_path / "incremental.parquet")
    tasks.to_parquet(paths[-1])
    write_adalin_table([str(p) for p in paths], str(tmp_path / "table"), "test")
    table = (tmp_path / "table" / "table.md").read_text()
    for column in ("Random Label CIFAR-10 (Adam)", "Shuffled CIFAR-10 (Adam)", "Class-Split CIFAR-100 (Adam)",
                   "Class-incremental CIFAR-100 (ResNet-18) (SGD)", "AdaLin-ReLU", "assumed"):
        assert column in table
    aggregates = []
    for path in paths:
        aggregates.append(tmp_path / f"aggregate-{path.name}")
        aggregate(pd.read_parquet(path)).to_parquet(aggregates[-1])
    for figure in ("online_accuracy_cifar", "ablation_cifar", "alpha_cifar", "correlates_cifar",
                   "incremental_cifar100"):
        draw_figure(f"adalin2025/{figure}", [str(p) for p in aggregates], str(tmp_path / "f.pdf"),
                    str(tmp_path / "f.png"), "test")
        assert (tmp_path / "f.png").stat().st_size > 10_000
    from figures.adalin2025 import online_accuracy_cifar
    assert "assumed" in online_accuracy_cifar.caption(
        {name: pd.read_parquet(path) for name, path in zip(CIFAR_EXPERIMENTS, aggregates)}, "test")
