"""L2 Init and the `optimizer` hyperparameter on hand-computed cases."""
import copy
import math

import pytest
import torch

from plasticity.config import ConfigError
from plasticity.methods import build_learner
from plasticity.methods.l2_init import L2Init
from plasticity.nets import SeedMLP

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
])
def test_unknown_optimizer_is_named_in_the_error(method, hparams):
    with pytest.raises(ConfigError, match=r"unknown optimizer 'rmsprop'; valid: \['sgd', 'adam'\]"):
        build_learner(method, tiny_model(), [0, 1], {**hparams, "optimizer": "rmsprop"})
