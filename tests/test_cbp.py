"""Continual backprop on hand-computed cases (tiny nets, decay η = 0.5 so the running averages are easy)."""
import math

import pytest
import torch
from torch import nn

from plasticity.config import ConfigError
from plasticity.methods import build_learner
from plasticity.methods.adam import ResettableAdam
from plasticity.methods.cbp import ContinualBackprop
from plasticity.models.mlp import SeedMLP

W_IN = [[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]]     # 3 hidden units, 2 inputs
W_OUT = [[2.0, -4.0, 1.0]]                       # 1 output
# Unit 1 is constant (5 on both examples): zero (adaptable) contribution, and its mean 5 must move into the bias.
FEATURES = torch.tensor([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0]])


def tiny_net():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(W_IN))
        net[0].bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
        net[2].weight.copy_(torch.tensor(W_OUT))
        net[2].bias.zero_()
    return net


def make_cbp(net, optimizer=None, **overrides):
    settings = dict(replacement_rate=0.5, maturity_threshold=1, decay_rate=0.5,
                    util_type="adaptable_contribution", accumulate=True)
    settings.update(overrides)
    optimizer = optimizer or torch.optim.SGD(net.parameters(), lr=0.1)
    return ContinualBackprop.from_sequential(net, optimizer, seed=0, activation="relu", **settings)


def test_first_step_utilities_ages_and_means_by_hand():
    net = tiny_net()
    cbp = make_cbp(net)
    replaced = cbp.step([FEATURES])
    # age 1; mean = (1-η)·batch mean = 0.5·[2, 5, 3]; bias-corrected (÷ (1-η^1) = 0.5) -> [2, 5, 3]
    assert cbp.age[0].tolist() == [[1.0, 1.0, 1.0]]
    torch.testing.assert_close(cbp.mean_activation[0], torch.tensor([[1.0, 2.5, 1.5]]))
    # y = mean|w_out| · mean_batch|h - f̂| / mean|w_in| = [2·1/1.5, 4·0/2, 1·1/0.5] ; u = (1-η)·y
    torch.testing.assert_close(cbp.utility[0], 0.5 * torch.tensor([[4 / 3, 0.0, 2.0]]))
    assert not replaced[0].any(), "no unit is mature (age > 1) after one step"


@pytest.mark.parametrize("util_type, expected", [
    ("contribution", [0.5 * 2 * 2, 0.5 * 4 * 5, 0.5 * 1 * 3]),     # (1-η) · mean|w_out| · mean|h|
    ("adaptation", [0.5 / 1.5, 0.5 / 2, 0.5 / 0.5]),               # (1-η) / mean|w_in|
    ("zero_contribution", [0.5 * 2 * 1, 0.0, 0.5 * 1 * 1]),        # (1-η) · mean|w_out| · mean|h - f̂|
])
def test_utility_types_by_hand(util_type, expected):
    net = tiny_net()
    cbp = make_cbp(net, util_type=util_type)
    cbp.step([FEATURES])
    torch.testing.assert_close(cbp.utility[0], torch.tensor([expected]))


def test_replacement_picks_lowest_utility_zeroes_outgoing_and_corrects_bias():
    net = tiny_net()
    cbp = make_cbp(net)
    cbp.step([FEATURES])
    replaced = cbp.step([FEATURES])                 # age 2 > 1: all 3 eligible, 0.5·3 = 1.5 due -> replace 1
    assert replaced[0].tolist() == [[False, True, False]]
    assert cbp.accumulated[0].item() == pytest.approx(0.5), "the fractional remainder is carried"
    # outgoing weight of unit 1 is cut; its mean contribution w·f̂ = -4·5 moves into the next bias
    assert net[2].weight[0].tolist() == [2.0, 0.0, 1.0]
    assert net[2].bias.item() == pytest.approx(-20.0)
    # new input weights from U(-b, b), b = sqrt(2)·sqrt(3/2); input bias 0; other units untouched
    bound = math.sqrt(2) * math.sqrt(3 / 2)
    assert net[0].weight[1].abs().max() <= bound and net[0].weight[1].tolist() != W_IN[1]
    assert net[0].bias.tolist() == pytest.approx([0.1, 0.0, 0.3])
    assert net[0].weight[[0, 2]].tolist() == [W_IN[0], W_IN[2]]
    # the replaced unit starts over: age, utility and mean 0; others keep aging
    assert cbp.age[0].tolist() == [[2.0, 0.0, 2.0]]
    assert cbp.utility[0][0, 1].item() == 0 and cbp.mean_activation[0][0, 1].item() == 0


def test_fractional_accumulation_over_steps():
    net = tiny_net()
    cbp = make_cbp(net, replacement_rate=0.2)
    counts = [int(cbp.step([FEATURES])[0].sum()) for _ in range(6)]
    # accumulated after each step (0.2 per mature unit, mature = age > 1):
    # 0 | +0.6 = 0.6 | +0.6 = 1.2 -> 1 replaced, 0.2 | 2 mature: +0.4 = 0.6 | 3 mature: 1.2 -> 1, 0.2 | +0.4 = 0.6
    assert counts == [0, 0, 1, 0, 1, 0]
    assert cbp.accumulated[0].item() == pytest.approx(0.6)


def test_probabilistic_replacement_uses_the_coin():
    net = tiny_net()
    cbp = make_cbp(net, replacement_rate=0.1, accumulate=False)     # 0.1·3 = 0.3 due: replace one w.p. 0.3
    cbp.step([FEATURES])
    cbp.coin[0].next = lambda: torch.tensor([0.5])                   # 0.5 > 0.3: no replacement
    assert not cbp.step([FEATURES])[0].any()
    cbp.coin[0].next = lambda: torch.tensor([0.2])                   # 0.2 <= 0.3: one replacement
    assert cbp.step([FEATURES])[0].sum() == 1


def test_adam_state_of_replaced_unit_is_reset():
    net = tiny_net()
    adam = ResettableAdam(net.parameters(), lr=0.01)
    net(torch.randn(4, 2)).sum().backward()
    adam.step()
    adam.step()
    cbp = make_cbp(net, optimizer=adam)
    cbp.step([FEATURES])
    cbp.step([FEATURES])                                             # replaces unit 1 (see above)
    w_in, b_in, w_out = (adam.state[p] for p in (net[0].weight, net[0].bias, net[2].weight))
    for key in ("step", "exp_avg", "exp_avg_sq"):
        assert w_in[key][1].abs().sum() == 0 and b_in[key][1] == 0 and w_out[key][:, 1].abs().sum() == 0
    assert (w_in["step"][0] == 2).all() and (w_out["step"][:, [0, 2]] == 2).all(), "other units keep their state"


def test_forward_hooks_capture_features_for_plain_sequential():
    net = tiny_net()
    cbp = make_cbp(net)
    x = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    net(x)
    cbp.step()
    hidden = torch.relu(x @ torch.tensor(W_IN).T + torch.tensor([0.1, 0.2, 0.3]))
    torch.testing.assert_close(cbp.mean_activation[0], 0.5 * hidden.mean(0, keepdim=True))


def test_resettable_adam_matches_torch_adam_until_a_reset():
    torch.manual_seed(0)
    ours, theirs = tiny_net(), tiny_net()
    mine = ResettableAdam(ours.parameters(), lr=0.01)
    reference = torch.optim.Adam(theirs.parameters(), lr=0.01)
    for _ in range(3):
        x = torch.randn(4, 2)
        for net, optimizer in ((ours, mine), (theirs, reference)):
            optimizer.zero_grad()
            net(x).pow(2).sum().backward()
            optimizer.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b)


def test_cbp_refuses_an_activation_with_more_features_than_units():
    model = SeedMLP(4, 2, width=6, depth=2, activation_name="crelu", seeds=[0])
    with pytest.raises(ConfigError, match="cbp needs one feature per hidden unit; activation 'crelu'"):
        build_learner("cbp", model, [0], {"lr": 0.01, "replacement_rate": 0.1, "maturity_threshold": 1})
