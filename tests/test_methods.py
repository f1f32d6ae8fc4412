"""L2 Init, ReDo and the `optimizer` hyperparameter on hand-computed cases."""
import copy
import math

import pytest
import torch

from plasticity.config import ConfigError
from plasticity.methods import build_learner
from plasticity.methods.l2_init import L2Init
from plasticity.methods.redo import DormantUnitRecycler, unit_scores
from plasticity.models import build_model
from plasticity.models.mlp import SeedMLP, kaiming_uniform_bound, loss_and_output_grad
from plasticity.seeding import generators

# --- L2 Init ---------------------------------------------------------------------------------------------------------

INITIAL, MOVED = [1.0, 2.0], [1.5, 1.0]
GRADIENTS = ([0.1, -0.2], [0.3, 0.4])
LR, WEIGHT_DECAY = 0.1, 0.5


def initial_parameter():
    return torch.nn.Parameter(torch.tensor(INITIAL))


def l2_init_on(param, base_class, weight_decay=WEIGHT_DECAY):
    """L2 Init built on `param` (so θ₀ = its value now), which then moves to MOVED, as training would move it."""
    optimizer = L2Init(base_class([param], lr=LR), weight_decay)
    with torch.no_grad():
        param.copy_(torch.tensor(MOVED))
    return optimizer


def step(param, optimizer, gradient):
    param.grad = torch.tensor(gradient)
    optimizer.step()


def test_l2_init_sgd_step_by_hand():
    param = initial_parameter()
    step(param, l2_init_on(param, torch.optim.SGD), GRADIENTS[0])
    # θ ← θ − lr·(g + wd·(θ − θ₀)) = [1.5, 1.0] − 0.1·([0.1, −0.2] + 0.5·[0.5, −1.0]) = [1.5 − 0.035, 1.0 + 0.07]
    torch.testing.assert_close(param.detach(), torch.tensor([1.465, 1.07]))


def test_l2_init_adam_steps_by_hand():
    param = initial_parameter()
    optimizer = l2_init_on(param, torch.optim.Adam)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    theta, first, second = list(MOVED), [0.0, 0.0], [0.0, 0.0]
    for t, gradient in enumerate(GRADIENTS, start=1):
        step(param, optimizer, gradient)
        for i in range(2):
            g = gradient[i] + WEIGHT_DECAY * (theta[i] - INITIAL[i])
            first[i] = beta1 * first[i] + (1 - beta1) * g
            second[i] = beta2 * second[i] + (1 - beta2) * g * g
            corrected_first, corrected_second = first[i] / (1 - beta1 ** t), second[i] / (1 - beta2 ** t)
            theta[i] -= LR * corrected_first / (math.sqrt(corrected_second) + eps)
        torch.testing.assert_close(param.detach(), torch.tensor(theta))


@pytest.mark.parametrize("base_class", [torch.optim.SGD, torch.optim.Adam])
def test_l2_init_without_weight_decay_is_the_base_optimizer(base_class):
    ours, theirs = initial_parameter(), torch.nn.Parameter(torch.tensor(MOVED))
    l2_init, base = l2_init_on(ours, base_class, weight_decay=0.0), base_class([theirs], lr=LR)
    for gradient in GRADIENTS:
        step(ours, l2_init, gradient)
        step(theirs, base, gradient)
        assert torch.equal(ours, theirs)


def test_l2_init_keeps_the_initial_value_through_state_dict():
    param = initial_parameter()
    optimizer = l2_init_on(param, torch.optim.Adam)
    step(param, optimizer, GRADIENTS[0])
    assert optimizer.state[param]["initial"].tolist() == INITIAL, "θ₀ is the value at construction"

    resumed_param = torch.nn.Parameter(param.detach().clone())
    resumed = L2Init(torch.optim.Adam([resumed_param], lr=LR), WEIGHT_DECAY)     # θ₀ here would be the moved value
    resumed.load_state_dict(copy.deepcopy(optimizer.state_dict()))   # as from a file: no tensor shared
    assert resumed.state[resumed_param]["initial"].tolist() == INITIAL
    step(param, optimizer, GRADIENTS[1])
    step(resumed_param, resumed, GRADIENTS[1])
    assert torch.equal(resumed_param, param), "the base optimizer's state came back too"


# --- the optimizer hyperparameter ------------------------------------------------------------------------------------

def tiny_model(seeds=(0, 1), width=4, depth=2):
    return SeedMLP(3, 2, width, depth, "relu", list(seeds))


@pytest.mark.parametrize("method, hparams, expected", [
    ("l2", {"lr": 0.1, "weight_decay": 0.01}, torch.optim.SGD),
    ("l2", {"lr": 0.1, "weight_decay": 0.01, "optimizer": "adam"}, torch.optim.Adam),
    ("shrink_perturb", {"lr": 0.1, "weight_decay": 0.01, "noise_std": 0.1}, torch.optim.SGD),
    ("shrink_perturb", {"lr": 0.1, "weight_decay": 0.01, "noise_std": 0.1, "optimizer": "adam"}, torch.optim.AdamW),
])
def test_optimizer_hyperparameter_builds_the_named_optimizer_with_the_decay(method, hparams, expected):
    optimizer = build_learner(method, tiny_model(), [0, 1], hparams).optimizer
    assert type(optimizer) is expected
    assert optimizer.param_groups[0]["lr"] == 0.1 and optimizer.param_groups[0]["weight_decay"] == 0.01


@pytest.mark.parametrize("method, hparams", [
    ("l2", {"lr": 0.1, "weight_decay": 0.01}),
    ("shrink_perturb", {"lr": 0.1, "weight_decay": 0.01, "noise_std": 0.1}),
    ("l2_init", {"lr": 0.1, "weight_decay": 0.01}),
    ("redo", {"lr": 0.1, "every": 10}),
])
def test_unknown_optimizer_is_named_in_the_error(method, hparams):
    with pytest.raises(ConfigError, match=r"unknown optimizer 'rmsprop'; valid: \['sgd', 'adam'\]"):
        build_learner(method, tiny_model(), [0, 1], {**hparams, "optimizer": "rmsprop"})


@pytest.mark.parametrize("lr, exact", [(0.0, True), (0.05, False)])
def test_shrink_perturb_kernel_steps_follow_the_step_by_step_path(lr, exact):
    """Shrink & Perturb's `train_steps` (the kernels' plain-SGD steps, each seed's parameters perturbed after its
    step) against the step-by-step path (the decayed SGD step, then the perturbation): with lr 0 only the noise
    moves the weights, and every element gets the same sample, bit for bit; training, to float32 rounding (the
    decayed update's last bits are the kernels' own). The streams advance alike."""
    from plasticity.models.mlp import loss_and_output_grad
    generator = torch.Generator().manual_seed(4)
    seeds, steps, features = 2, 50, 6
    inputs = torch.where(torch.rand(seeds, steps, features, generator=generator) < 0.4, 0.0,
                         torch.rand(seeds, steps, features, generator=generator))
    targets = torch.randn(seeds, steps, 1, generator=generator)
    hparams = {"lr": lr, "weight_decay": 0.1, "noise_std": 0.01}
    runs = []
    for kernel_steps in (True, False):
        model = SeedMLP(features, 1, 8, 2, "relu", list(range(seeds)), row_kernels=True)
        learner = build_learner("shrink_perturb", model, list(range(seeds)), hparams)
        total = torch.zeros(seeds)
        if kernel_steps:
            learner.train_steps(model, inputs[:, :20].contiguous(), targets[:, :20].contiguous(), "mse", total, lr, 0.1)
            learner.train_steps(model, inputs[:, 20:].contiguous(), targets[:, 20:].contiguous(), "mse", total, lr, 0.1)
        else:
            for step in range(steps):
                with torch.no_grad():
                    output = model(inputs[:, step:step + 1])
                value, grad = loss_and_output_grad(output, targets[:, step:step + 1], "mse")
                total += value
                model.sgd_step_from_output_grad(grad, lr, 0.1)
                learner.after_step(model.features)
        runs.append((model, learner.state, total))
    (kernel, kernel_noise, kernel_total), (model, noise, total) = runs
    compare = torch.equal if exact else lambda a, b: torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    assert compare(kernel_total, total)
    for mine, theirs in zip(kernel.parameters(), model.parameters()):
        assert compare(mine, theirs)
    assert kernel_noise.state_dict() == noise.state_dict()


# --- ReDo ------------------------------------------------------------------------------------------------------------

def test_scores_are_mean_activity_over_the_layer_mean_per_seed():
    scores = unit_scores(torch.tensor([[1.0, 1.0, 2.0, 4.0], [0.0, 0.0, 0.0, 8.0]]))
    torch.testing.assert_close(scores, torch.tensor([[0.5, 0.5, 1.0, 2.0], [0.0, 0.0, 0.0, 4.0]]))


def test_activity_is_mean_absolute_activation_over_the_batches_since_the_check():
    model = tiny_model(seeds=[0], depth=1)
    recycler = DormantUnitRecycler(model.unit_layers(), torch.optim.SGD(model.parameters(), lr=0.1), generators([0], "redo"),
                                   threshold=0.6, every=2)
    # mean|h| over batch and steps: ([1, 0, 2, 4] + [1, 2, 2, 4]) / 2 = [1, 1, 2, 4]; scores [0.5, 0.5, 1, 2]
    assert recycler.step([torch.tensor([[[-1.0, 0.0, 2.0, 4.0], [1.0, 0.0, -2.0, 4.0]]])]) is None
    dormant = recycler.step([torch.tensor([[[1.0, 2.0, 2.0, 4.0], [1.0, -2.0, 2.0, -4.0]]])])
    assert dormant[0].tolist() == [[True, True, False, False]]
    assert recycler.activity[0].abs().sum() == 0, "the next check scores the batches after this one"


def test_feature_width_other_than_the_layer_is_an_error():
    model = tiny_model(depth=1)
    recycler = DormantUnitRecycler(model.unit_layers(), torch.optim.SGD(model.parameters(), lr=0.1), generators([0, 1], "redo"),
                                   threshold=0.1, every=2)
    with pytest.raises(ValueError, match="8 features but 4 units"):
        recycler.step([torch.ones(2, 1, 8)])


def train_steps(model, learner, inputs, targets):
    """Train as plasticity.engine.online does; the masks of the last step's check."""
    with torch.no_grad():
        for x, y in zip(inputs, targets):
            _, output_grad = loss_and_output_grad(model(x), y, "mse")
            model.backward_from_output_grad(output_grad)
            learner.optimizer.step()
            dormant = learner.after_step(model.hidden)
    return dormant


DEAD_SEED, DEAD_UNIT = 1, 2


def model_with_a_dead_unit():
    """3→4→4→2 for 2 seeds; every hidden weight positive (all units active on positive inputs) but unit 2 of the
    first hidden layer of seed 1, whose incoming weights and bias are negative: its ReLU output is 0."""
    model = tiny_model()
    with torch.no_grad():
        for layer in model.layers[:2]:
            layer.weight.abs_().add_(0.1)
            layer.bias.fill_(0.1)
        model.layers[0].weight[DEAD_SEED, DEAD_UNIT] = -1.0
        model.layers[0].bias[DEAD_SEED, DEAD_UNIT] = -1.0
    return model


def test_dead_unit_is_recycled_and_nothing_else_changes():
    model = model_with_a_dead_unit()
    learner = build_learner("redo", model, [0, 1], {"lr": 1e-3, "every": 3})
    data = torch.Generator().manual_seed(0)
    inputs = [torch.rand(2, 5, 3, generator=data) for _ in range(3)]          # positive inputs
    targets = [torch.randn(2, 5, 2, generator=data) for _ in range(3)]
    assert train_steps(model, learner, inputs[:2], targets[:2]) is None, "no check before `every` steps"

    with torch.no_grad():
        _, output_grad = loss_and_output_grad(model(inputs[2]), targets[2], "mse")
        model.backward_from_output_grad(output_grad)
        learner.optimizer.step()
        for state in learner.optimizer.state.values():                          # visible moments everywhere
            state["exp_avg"].fill_(1.0)
            state["exp_avg_sq"].fill_(1.0)
        before = [param.detach().clone() for param in model.parameters()]
        dormant = learner.after_step(model.hidden)

    assert dormant[0].nonzero().tolist() == [[DEAD_SEED, DEAD_UNIT]] and not dormant[1].any()
    first, second = model.layers[0], model.layers[1]
    incoming = first.weight[DEAD_SEED, DEAD_UNIT]
    assert incoming.abs().max() <= kaiming_uniform_bound("relu", 3) and (incoming != -1.0).all(), "redrawn"
    assert first.bias[DEAD_SEED, DEAD_UNIT] == 0 and second.weight[DEAD_SEED, :, DEAD_UNIT].abs().sum() == 0

    weight_in, bias_in, weight_out = before[:3]                 # what may change: exactly the recycled unit's entries
    weight_in[DEAD_SEED, DEAD_UNIT] = incoming
    bias_in[DEAD_SEED, DEAD_UNIT] = 0
    weight_out[DEAD_SEED, :, DEAD_UNIT] = 0
    for got, want in zip(model.parameters(), before):
        assert torch.equal(got, want)

    recycled = {first.weight: (DEAD_SEED, DEAD_UNIT), first.bias: (DEAD_SEED, DEAD_UNIT),
                second.weight: (DEAD_SEED, slice(None), DEAD_UNIT)}
    for param in model.parameters():
        for key in ("exp_avg", "exp_avg_sq"):
            moment, want = learner.optimizer.state[param][key], torch.ones_like(param)
            if param in recycled:
                want[recycled[param]] = 0
            assert torch.equal(moment, want), f"{key} of a {tuple(param.shape)} parameter"


def test_dormant_conv_channel_is_recycled_over_all_its_positions():
    """kumar_cnn on 3×20×20 images: channel 6 of conv2 (seed 0) is silent, so dormant; its incoming weights are
    redrawn from conv2's default init, its bias is 0, and the 4 fc1 columns it feeds (24..27) are cut, with their
    Adam moments; nothing else changes, seed 1 not at all."""
    model = build_model({"arch": "kumar_cnn"}, (3, 20, 20), 10, [0, 1])
    learner = build_learner("redo", model, [0, 1], {"lr": 1e-3, "every": 1})
    model(torch.randn(2, 4, 3, 20, 20, generator=torch.Generator().manual_seed(0))).square().sum().backward()
    learner.optimizer.step()
    for state in learner.optimizer.state.values():          # visible moments everywhere
        state["exp_avg"].fill_(1.0)
        state["exp_avg_sq"].fill_(1.0)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    features = [torch.ones(2, 3, *shape) for shape in [(16, 8, 8), (16, 2, 2), (100,), (100,)]]
    features[1][0, :, 6] = 0.0
    dormant = learner.after_step(features)

    assert [mask.nonzero().tolist() for mask in dormant] == [[], [[0, 6]], [], []]
    conv2, fc1 = model.convs[1], model.fcs[0]
    incoming = conv2.weight[0, 6]
    assert incoming.abs().max() <= 1 / math.sqrt(16 * 25) and (incoming != before["convs.1.weight"][0, 6]).all()
    recycled = {"convs.1.weight": (0, 6), "convs.1.bias": (0, 6), "fcs.0.weight": (0, slice(None), slice(24, 28))}
    expected = dict(before)
    expected["convs.1.weight"][0, 6] = incoming
    expected["convs.1.bias"][0, 6] = 0
    expected["fcs.0.weight"][0, :, 24:28] = 0
    for name, param in model.named_parameters():
        assert torch.equal(param, expected[name]), name
        for key in ("exp_avg", "exp_avg_sq"):
            want = torch.ones_like(param)
            if name in recycled:
                want[recycled[name]] = 0
            assert torch.equal(learner.optimizer.state[param][key], want), f"{name}: {key}"


# One torch thread, as every training job runs: with two, a block of two seeds' fc layers (one batched matmul,
# a thread per seed) sum in another order than one seed's (a two-thread matmul).
@pytest.mark.usefixtures("one_torch_thread")
def test_a_seeds_channel_activity_does_not_depend_on_its_block():
    """kumar_cnn on 16×16 images (1×1 conv2 maps, B-major views): seed 1's mean |h| beside seed 0 is its own alone."""
    images = torch.rand(2, 10, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    activities = []
    for seeds, inputs in (([0, 1], images), ([1], images[1:])):
        model = build_model({"arch": "kumar_cnn"}, (3, 16, 16), 10, seeds)
        model(inputs)
        recycler = DormantUnitRecycler(model.unit_layers(), torch.optim.SGD(model.parameters(), lr=0.1),
                                       generators(seeds, "redo"), threshold=0.1, every=2)
        recycler.step([feature.detach() for feature in model.features])
        activities.append(recycler.activity)
    for beside, alone in zip(*activities):
        assert torch.equal(beside[1], alone[0])


def test_a_seed_recycles_the_same_in_any_block():
    """Seed 1 trained beside seed 0 ends where seed 1 trained alone does (threshold 1: units below their layer's
    mean activity are recycled at every check, so many fresh draws)."""
    data = torch.Generator().manual_seed(0)
    inputs = [torch.randn(2, 4, 3, generator=data) for _ in range(6)]
    targets = [torch.randn(2, 4, 2, generator=data) for _ in range(6)]
    hparams = {"lr": 0.01, "every": 2, "threshold": 1.0}
    pair, single = tiny_model(seeds=[0, 1]), tiny_model(seeds=[1])
    train_steps(pair, build_learner("redo", pair, [0, 1], hparams), inputs, targets)
    dormant = train_steps(single, build_learner("redo", single, [1], hparams), [x[1:] for x in inputs],
                          [y[1:] for y in targets])
    assert any(mask.any() for mask in dormant), "units were recycled"
    for got, want in zip(single.parameters(), pair.parameters()):
        assert torch.equal(got[0], want[1])
