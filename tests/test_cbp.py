"""Continual backprop on hand-computed cases (tiny nets, decay η = 0.5 so the running averages are easy)."""
import math

import pytest
import torch
from torch import nn

from plasticity.config import ConfigError
from plasticity.methods import build_learner
from plasticity.methods.adam import ResettableAdam
from plasticity.methods.cbp import ContinualBackprop
from plasticity.models import build_model
from plasticity.models.layers import SeedBatchNorm2d, SeedConv2d
from plasticity.models.mlp import SeedMLP
from plasticity.seeding import generators

pytestmark = pytest.mark.usefixtures("one_torch_thread")

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


def cbp_on_seed_mlp(util_type, accumulate):
    model = SeedMLP(5, 3, width=12, depth=2, activation_name="relu", seeds=[0, 1])
    cbp = ContinualBackprop(model.unit_layers(), torch.optim.SGD(model.parameters(), lr=0.1), generators([0, 1], "cbp"),
                            replacement_rate=0.05 if accumulate else 0.3, maturity_threshold=3, decay_rate=0.9,
                            util_type=util_type, accumulate=accumulate)
    return model, cbp


@pytest.mark.parametrize("accumulate", [True, False])
@pytest.mark.parametrize("util_type", ["contribution", "adaptation", "zero_contribution", "adaptable_contribution"])
def test_the_one_example_kernel_agrees_with_the_tensor_operations(util_type, accumulate):
    """Online learning's features (S, 1, units) on the CPU take `_test_one_example`; the same features repeated
    (S, 2, units) take the tensor operations, with the same averages. Over 40 steps both must keep the same
    statistics (to float32 rounding: FMA and pow differ) and replace the same units."""
    (kernel_model, kernel), (tensor_model, tensors) = (cbp_on_seed_mlp(util_type, accumulate) for _ in range(2))
    generator = torch.Generator().manual_seed(3)
    replaced = 0
    for _ in range(40):
        features = [torch.relu(torch.randn(2, 1, 12, generator=generator)) for _ in range(2)]
        by_kernel = kernel.step(features)
        by_tensors = tensors.step([f.expand(2, 2, 12) for f in features])
        for mine, theirs in zip(by_kernel, by_tensors):
            assert torch.equal(mine, theirs)
            replaced += int(mine.sum())
        for name in ("age", "mean_activation", "utility", "accumulated"):
            for mine, theirs in zip(getattr(kernel, name), getattr(tensors, name)):
                torch.testing.assert_close(mine, theirs)
    assert replaced > 0
    for mine, theirs in zip(kernel_model.parameters(), tensor_model.parameters()):
        torch.testing.assert_close(mine, theirs)


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


def test_resettable_adams_one_pass_equals_its_tensor_update_after_a_reset(monkeypatch):
    """On the CPU the step is one kernel pass whose corrections come from tables by step count: the tensor update's
    values to float32 rounding, also once a reset has given some weights their own step counts."""
    import plasticity.methods.adam as adam_module
    torch.manual_seed(1)
    nets = [tiny_net(), tiny_net()]
    nets[1].load_state_dict(nets[0].state_dict())
    optimizers = [ResettableAdam(net.parameters(), lr=0.01) for net in nets]
    inputs = torch.randn(6, 4, 2)
    for net, optimizer, one_pass in zip(nets, optimizers, (True, False)):
        if not one_pass:
            monkeypatch.setattr(adam_module, "_flat_views", lambda *tensors: None)
        for step, x in enumerate(inputs):
            optimizer.zero_grad()
            net(x).pow(2).sum().backward()
            optimizer.step()
            if step == 2:
                optimizer.reset(net[0].weight, 1)
    for mine, theirs in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(mine, theirs)
        assert torch.equal(optimizers[0].state[mine]["step"], optimizers[1].state[theirs]["step"])
    assert (optimizers[0].state[nets[0][0].weight]["step"][1] == 3).all()


def test_cbp_refuses_an_activation_with_more_features_than_units():
    model = SeedMLP(4, 2, width=6, depth=2, activation_name="crelu", seeds=[0])
    with pytest.raises(ConfigError, match="cbp needs one feature per hidden unit; activation 'crelu'"):
        build_learner("cbp", model, [0], {"lr": 0.01, "replacement_rate": 0.1, "maturity_threshold": 1})


# --- conv nets and ResNet-18 ---------------------------------------------------------------------------------------
# kumar_cnn on 3×20×20 images: conv1 16 channels (fan_in 3·5·5, maps 8×8 after the pooling), conv2 16 channels
# (fan_in 16·5·5, maps 2×2): each conv2 channel c feeds fc1 inputs 4c..4c+3. Decay η = 0.5 and maturity 1, as above;
# replacement rate 2/16 with accumulation replaces exactly 2 of the 16 channels per seed at the second step.
CONV_INPUT = (3, 20, 20)
TWO_OF_SIXTEEN = dict(replacement_rate=2 / 16, maturity_threshold=1, decay_rate=0.5,
                      util_type="adaptable_contribution", accumulate=True)


def kumar_cnn(seeds=(0, 1)):
    return build_model({"arch": "kumar_cnn"}, CONV_INPUT, 10, list(seeds))


def cbp_on(model, layer_indices, optimizer=None, **settings):
    """CBP on some of the model's unit layers, with the per-seed generators the `cbp` method uses."""
    layers = [model.unit_layers()[index] for index in layer_indices]
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.1)
    return ContinualBackprop(layers, optimizer, generators(model.seeds, "cbp"), **{**TWO_OF_SIXTEEN, **settings})


def per_channel(values):
    """(S, C) per-seed lists -> a tensor."""
    return torch.tensor(values, dtype=torch.float32)


def with_changes(default, changes):
    """Per seed: `default` for every one of 16 channels but those in `changes` ({channel: value})."""
    return [[changes_of_seed.get(c, default) for c in range(16)] for changes_of_seed in changes]


def mask_of(channels_per_seed, units=16):
    mask = torch.zeros(len(channels_per_seed), units, dtype=torch.bool)
    for seed, channels in enumerate(channels_per_seed):
        mask[seed, channels] = True
    return mask


def assert_redrawn_uniform(weights, bound):
    """Fresh draws of U(±bound): inside the bound, spread as a uniform is (std bound/√3), not the old values."""
    assert weights.abs().max() <= bound and weights.abs().max() > 0.9 * bound
    assert abs(weights.std().item() - bound / math.sqrt(3)) < 0.15 * bound / math.sqrt(3)


def test_conv_to_conv_channels_by_hand():
    """conv1 → conv2: a channel's statistics are over the batch and all its positions; its outgoing magnitude is
    the mean |w| of conv2's weights reading it (over outputs and kernel positions)."""
    model = kumar_cnn()
    conv1, conv2 = model.convs
    incoming = with_changes(1.0, [{13: 2.5}, {4: 5.0}])          # mean |w_in| of each channel
    outgoing = with_changes(1.0, [{9: 0.5}, {11: 0.3}])          # mean |w_out|
    level = with_changes(1.0, [{2: 0.2}, {2: 0.6}])              # the channel's mean activation m
    with torch.no_grad():
        conv1.weight.copy_(per_channel(incoming)[:, :, None, None, None].expand_as(conv1.weight))
        conv2.weight.copy_(per_channel(outgoing)[:, None, :, None, None].expand_as(conv2.weight))
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    # h = m·(1 ± 1) on a checkerboard: mean m over the positions (0 or 2m at each one), |h − m| = m everywhere
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 * 2 - 1
    features = per_channel(level)[:, None, :, None, None] * (1 + checker).expand(2, 2, 16, 8, 8)
    cbp = cbp_on(model, [0])

    assert not cbp.step([features])[0].any()
    torch.testing.assert_close(cbp.mean_activation[0], 0.5 * per_channel(level))
    # y = mean|w_out| · mean|h − f̂| / mean|w_in| = w_out · m / w_in: 1 but for seed 0's channels 2 (0.2), 9 (0.5),
    # 13 (0.4) and seed 1's 2 (0.6), 4 (0.2), 11 (0.3); u = (1-η)·y
    expected = with_changes(1.0, [{2: 0.2, 9: 0.5, 13: 0.4}, {2: 0.6, 4: 0.2, 11: 0.3}])
    torch.testing.assert_close(cbp.utility[0], 0.5 * per_channel(expected))

    replaced = cbp.step([features])[0]         # the same features: û = y again; the two lowest per seed go
    assert torch.equal(replaced, mask_of([[2, 13], [4, 11]]))
    bound = 1 / math.sqrt(3 * 25)              # conv1's own init, PyTorch's default U(±1/√fan_in)
    assert_redrawn_uniform(conv1.weight[replaced], bound)
    assert not conv1.bias[replaced].any()
    assert not conv2.weight.transpose(1, 2)[replaced].any(), "every kernel weight reading a new channel is cut"
    untouched = {"convs.0.weight": conv1.weight[~replaced], "convs.0.bias": conv1.bias[~replaced],
                 "convs.1.weight": conv2.weight.transpose(1, 2)[~replaced]}
    for name, value in untouched.items():
        original = before[name].transpose(1, 2) if name == "convs.1.weight" else before[name]
        assert torch.equal(value, original[~replaced]), name
    assert torch.equal(conv2.bias, before["convs.1.bias"]), "no bias correction into a convolution"
    assert torch.equal(cbp.age[0], torch.where(replaced, 0.0, 2.0))


def test_last_conv_channel_feeds_its_positions_of_the_linear_layer():
    """conv2 → flatten → fc1: a channel's utility is averaged over its 4 fc1 inputs (per input: that input's
    mean |w_out| times mean_batch |h − f̂|, f̂ the channel's mean), and all 4 columns are cut, with their Adam
    state (ResettableAdam)."""
    model = kumar_cnn()
    conv2, fc1 = model.convs[1], model.fcs[0]
    adam = ResettableAdam(model.parameters(), lr=0.01)
    model(torch.randn(2, 4, *CONV_INPUT, generator=torch.Generator().manual_seed(0))).square().sum().backward()
    adam.step()                                # every entry's step count 1
    incoming = with_changes(1.0, [{}, {0: 4.0}])
    outgoing = [[[1.0] * 4 for _ in range(16)] for _ in range(2)]     # mean |w_out| per (channel, position)
    outgoing[0][7] = [0.4] * 4
    outgoing[1][14] = [0.0, 0.0, 0.0, 2.4]
    spread = [[[1.0] * 4 for _ in range(16)] for _ in range(2)]       # |h − f̂| per (channel, position)
    spread[0][3] = [2.0, 0.0, 0.0, 0.0]
    spread[0][9] = [0.2, 3.0, 3.0, 3.0]         # lowest at its first position, but 2.3 on average
    spread[1][5] = [0.3] * 4
    with torch.no_grad():
        conv2.weight.copy_(per_channel(incoming)[:, :, None, None, None].expand_as(conv2.weight))
        fc1.weight.copy_(torch.tensor(outgoing).flatten(1)[:, None, :].expand_as(fc1.weight))
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    # h = 2 ± spread over the two examples: f̂ = 2 for every channel
    sign = torch.tensor([1.0, -1.0]).view(1, 2, 1, 1, 1)
    features = 2 + sign * torch.tensor(spread).view(2, 1, 16, 2, 2)
    cbp = cbp_on(model, [1], optimizer=adam)

    cbp.step([features])
    torch.testing.assert_close(cbp.mean_activation[0], torch.full((2, 16), 1.0))
    expected = with_changes(1.0, [{3: 0.5, 7: 0.4, 9: 2.3}, {0: 0.25, 5: 0.3, 14: 0.6}])
    torch.testing.assert_close(cbp.utility[0], 0.5 * per_channel(expected))

    replaced = cbp.step([features])[0]
    assert torch.equal(replaced, mask_of([[3, 7], [0, 5]]))
    assert_redrawn_uniform(conv2.weight[replaced], 1 / math.sqrt(16 * 25))
    assert not conv2.bias[replaced].any()
    assert torch.equal(conv2.weight[~replaced], before["convs.1.weight"][~replaced])
    columns = fc1.weight.unflatten(2, (16, 4)).transpose(1, 2)         # (S, channel, out, position)
    assert not columns[replaced].any(), "columns 4c..4c+3 of every replaced channel c"
    assert torch.equal(columns[~replaced], before["fcs.0.weight"].unflatten(2, (16, 4)).transpose(1, 2)[~replaced])
    assert torch.equal(fc1.bias, before["fcs.0.bias"]), "no bias correction for a channel feeding 4 inputs"
    reset = {conv2.weight: replaced[:, :, None, None, None].expand_as(conv2.weight), conv2.bias: replaced,
             fc1.weight: replaced.repeat_interleave(4, dim=1)[:, None, :].expand_as(fc1.weight)}
    for param, where in reset.items():
        assert torch.equal(adam.state[param]["step"], torch.where(where, 0.0, 1.0))
        assert not adam.state[param]["exp_avg"][where].any() and not adam.state[param]["exp_avg_sq"][where].any()


def test_bias_correction_only_for_linear_to_linear_units():
    """Every unit layer of kumar_cnn at once, every unit's mean activation f̂ = 2: the mean contribution of the
    replaced neurons moves into the next bias of fc1 → fc2 and fc2 → head; conv → conv and conv → flatten (4
    inputs a channel) get none."""
    model = kumar_cnn()
    shapes = [(16, 8, 8), (16, 2, 2), (100,), (100,)]
    sign = torch.tensor([1.0, -1.0]).view(1, 2, 1)
    data = torch.Generator().manual_seed(0)
    features = [2 + sign.view(1, 2, *[1] * len(shape)) * torch.rand(2, 1, *shape, generator=data)
                for shape in shapes]
    cbp = cbp_on(model, range(4))
    cbp.step(features)
    layers = model.unit_layers()
    biases = [layer.next_layer.bias.clone() for layer in layers]
    weights = [layer.next_layer.weight.clone() for layer in layers]
    replaced = cbp.step(features)
    assert all(mask.sum(1).tolist() == [count] * 2 for mask, count in zip(replaced, [2, 2, 12, 12]))
    for index, layer in enumerate(layers):
        for seed in range(2):
            expected = biases[index][seed].clone()
            if index >= 2:
                expected += 2 * weights[index][seed][:, replaced[index][seed]].sum(1)     # Σ_u w_out,u · f̂_u
            if index < 3:       # the next layer is the next unit layer: its own replaced units' biases are 0
                expected[replaced[index + 1][seed]] = 0
            torch.testing.assert_close(layer.next_layer.bias[seed], expected, rtol=0, atol=1e-6)


# ResNet-18 (one seed, 8×8 images: 64-channel maps of 8×8 down to 512 of 1×1): its 17 unit layers have 64, 128,
# 256 or 512 channels; replacement rate 1/64 (accumulated) replaces 1, 2, 4 or 8 of them at the second step.
RESNET_CBP = dict(replacement_rate=1 / 64, maturity_threshold=1, decay_rate=0.5, util_type="contribution",
                  accumulate=True)


def chosen_channels(units):
    """The channels the hand-made features make the least useful: 1, 2, 4 or 8 of them."""
    return sorted((5 + 9 * j) % units for j in range(units // 64))


def resnet18_with_marked_batchnorms():
    """resnet18 with every BatchNorm (the downsample ones too) away from the identity and every conv bias 0.5; and
    features of the shapes its forward gives, 1 everywhere but 0.001 on the `chosen_channels`, which then have the
    lowest contribution utility (mean|w_out| · mean|h|)."""
    model = build_model({"arch": "resnet18"}, (3, 8, 8), 10, [0])
    with torch.no_grad():
        model.eval()
        model(torch.zeros(1, 2, 3, 8, 8))
        model.train()
        for module in model.modules():
            if isinstance(module, SeedBatchNorm2d):
                module.weight.fill_(3)
                module.bias.fill_(2)
                module.running_mean.fill_(5)
                module.running_var.fill_(7)
            elif isinstance(module, SeedConv2d):
                module.bias.fill_(0.5)
    features = []
    for layer, real in zip(model.unit_layers(), model.features):
        feature = torch.ones_like(real)
        feature[:, :, chosen_channels(layer.units)] = 0.001
        features.append(feature)
    return model, features


def test_resnet18_replaces_channels_resets_their_batchnorm_and_spares_the_downsample_branch():
    model, features = resnet18_with_marked_batchnorms()
    layers = model.unit_layers()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    incoming = [layer.layer.weight[0].clone() for layer in layers]
    cbp = ContinualBackprop(layers, torch.optim.SGD(model.parameters(), lr=0.1), generators([0], "cbp"),
                            **RESNET_CBP)
    cbp.step(features)
    replaced = cbp.step(features)

    assert len(layers) == 17
    for index, (layer, mask, weight) in enumerate(zip(layers, replaced, incoming)):
        units, kept = chosen_channels(layer.units), ~mask[0]
        assert mask[0].nonzero().flatten().tolist() == units, f"unit layer {index}"
        for name, fresh, marked in (("weight", 1, 3), ("bias", 0, 2), ("running_mean", 0, 5), ("running_var", 1, 7)):
            values = getattr(layer.norm, name)[0]
            assert (values[units] == fresh).all() and (values[kept] == marked).all(), f"unit layer {index}: {name}"
        assert not layer.layer.bias[0, units].any() and (layer.layer.bias[0, kept] == 0.5).all()
        if index > 0:           # the previous unit layer cut its replaced channels' columns
            weight[:, chosen_channels(layers[index - 1].units)] = 0
        assert torch.equal(layer.layer.weight[0, kept], weight[kept])
        assert (layer.layer.weight[0, units] != weight[units]).float().mean() > 0.99, "redrawn"
        # cut, but in the rows the next unit layer redraws for its own replaced channels
        rows = ~replaced[index + 1][0] if index < 16 else slice(None)
        assert not layer.next_layer.weight[0][rows][:, units].any(), f"unit layer {index}: outgoing cut"
    std = math.sqrt(2 / (512 * 9))             # the last block's conv2, redrawn from its init N(0, 2/fan_in)
    last = layers[-1].layer.weight[0, chosen_channels(512)]
    assert abs(last.std().item() - std) < 0.03 * std and last.abs().max() > 3 * std, "normal, not uniform"
    for name, tensor in model.state_dict().items():
        if "downsample" in name:
            assert torch.equal(tensor, before[name]), f"{name} is never replaced"
    # The last unit layer's channels each reach the head as one pooled feature, with no BatchNorm after it: the head
    # takes their mean contribution (f̂ = 0.001 each), as the next layer of a linear → linear unit does.
    units = chosen_channels(512)
    torch.testing.assert_close(model.head.bias[0], 0.001 * before["head.weight"][0][:, units].sum(1))


def test_resnet18_adam_state_of_replaced_channels_is_reset():
    """`optimizer: adam` (ResettableAdam): the moments and step counts of a replaced channel's incoming weights,
    bias, BatchNorm weight and bias and outgoing weights restart; every other entry (the downsample branch's, the
    head's bias) keeps its state."""
    model, features = resnet18_with_marked_batchnorms()
    learner = build_learner("cbp", model, [0], {"lr": 0.01, "optimizer": "adam", **RESNET_CBP})
    assert isinstance(learner.optimizer, ResettableAdam)
    model(torch.randn(1, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))).square().sum().backward()
    learner.optimizer.step()
    state = learner.optimizer.state
    for param in model.parameters():
        state[param]["exp_avg"].fill_(1.0)         # visible moments everywhere
        state[param]["exp_avg_sq"].fill_(1.0)
    learner.after_step(features)
    learner.after_step(features)

    reset = {param: torch.zeros_like(param, dtype=torch.bool) for param in model.parameters()}
    for layer in model.unit_layers():
        units = chosen_channels(layer.units)
        for param in (layer.layer.weight, layer.layer.bias, layer.norm.weight, layer.norm.bias):
            reset[param][0, units] = True
        reset[layer.next_layer.weight][0, :, units] = True
    for name, param in model.named_parameters():
        for key, kept in (("step", 1.0), ("exp_avg", 1.0), ("exp_avg_sq", 1.0)):
            assert torch.equal(state[param][key], torch.where(reset[param], 0.0, kept)), f"{name}: {key}"


def test_gain_mlp_units_are_redrawn_from_its_normal_init_and_its_frozen_biases_stay_zero():
    """The joint protocol's gain MLP (hidden weights N(0, hidden_std²), zero frozen biases): a replaced unit is drawn
    from N(0, hidden_std²), its bias and the next layer's stay 0 (no bias correction into a frozen bias)."""
    model = build_model({"width": 200, "depth": 2, "activation": "relu", "init": {"hidden_std": 0.03}}, (100,), 10,
                        [0], "joint")
    learner = build_learner("cbp", model, [0], {"lr": 0.01, "replacement_rate": 0.5, "maturity_threshold": 1,
                                                "decay_rate": 0.5, "accumulate": True})
    before = [layer.weight.detach().clone() for layer in model.layers]
    features = [2 + torch.rand(1, 4, 200, generator=torch.Generator().manual_seed(index)) for index in range(2)]
    learner.after_step(features)
    replaced = [mask[0] for mask in learner.after_step(features)]

    for index, fan_in in ((0, 100), (1, 200)):
        assert replaced[index].sum() == 100, f"hidden layer {index}: half its units"
        fresh = model.layers[index].weight[0][replaced[index]]
        assert (fresh != before[index][0][replaced[index]]).all()
        assert abs(fresh.std().item() - 0.03) < 0.05 * 0.03 and abs(fresh.mean().item()) < 0.001, \
            f"hidden layer {index}: N(0, 0.03²), not Kaiming-uniform (std {math.sqrt(2 / fan_in):.3f})"
        rows = ~replaced[index + 1] if index == 0 else slice(None)      # but those the next layer redraws
        assert not model.layers[index + 1].weight[0][rows][:, replaced[index]].any()
    for layer in model.layers:
        assert not layer.bias.any() and not layer.bias.requires_grad
        assert torch.equal(layer.gain, torch.ones_like(layer.gain))


def test_a_seeds_channel_statistics_do_not_depend_on_its_block():
    """kumar_cnn on 16×16 images, whose conv2 maps are 1×1 (B-major views, as every conv net's maps): seed 1's
    running means and utilities beside seed 0 equal those of seed 1 alone, bit for bit."""
    images = torch.rand(2, 10, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    statistics = []
    for seeds, inputs in (([0, 1], images), ([1], images[1:])):
        model = build_model({"arch": "kumar_cnn"}, (3, 16, 16), 10, seeds)
        model(inputs)
        cbp = cbp_on(model, range(4), maturity_threshold=10)
        cbp.step([feature.detach() for feature in model.features])
        statistics.append(cbp.mean_activation + cbp.utility)
    for beside, alone in zip(*statistics):
        assert torch.equal(beside[1], alone[0])


@pytest.mark.parametrize("loss, accumulate, exact", [("mse", True, True), ("mse", False, True),
                                                     ("cross_entropy", True, False)])
def test_kernel_steps_replace_the_units_the_step_by_step_path_replaces(loss, accumulate, exact):
    """CBP's `train_steps` (the kernels take the steps and test the units, stopping where one is due) against the
    step-by-step path (a fused SGD step, then `step(features)`): the same replacements at the same steps, and bit
    for bit the same weights and statistics under the squared error (to float32 rounding with the log-softmax),
    across the coin streams' refills."""
    from plasticity.models.mlp import loss_and_output_grad
    generator = torch.Generator().manual_seed(3)
    seeds, steps, features, outputs = 3, 300, 6, 3 if loss == "cross_entropy" else 1
    inputs = torch.where(torch.rand(seeds, steps, features, generator=generator) < 0.4, 0.0,
                         torch.rand(seeds, steps, features, generator=generator))
    targets = (torch.randint(0, outputs, (seeds, steps), generator=generator) if loss == "cross_entropy"
               else torch.randn(seeds, steps, outputs, generator=generator))
    hparams = dict(lr=0.05, replacement_rate=0.02, maturity_threshold=20, decay_rate=0.9, accumulate=accumulate)
    runs = []
    for kernel_steps in (True, False):
        model = SeedMLP(features, outputs, width=8, depth=2, activation_name="relu", seeds=list(range(seeds)),
                        row_kernels=True)
        learner = build_learner("cbp", model, list(range(seeds)), hparams)
        cbp, total, replaced = learner.state, torch.zeros(seeds), torch.zeros(2, seeds)
        for stream in cbp.coin:         # refills (drawn from the generators the new units' weights come from) in the run
            stream.chunk = stream.position = 64
        generate = cbp._generate

        def counting(index, layer, corrected_mean, count, generate=generate, replaced=replaced):
            replaced[index] += torch.tensor(count, dtype=torch.float)
            return generate(index, layer, corrected_mean, count)
        cbp._generate = counting
        if kernel_steps:      # in two calls, as the online loop makes them (one per bin)
            learner.train_steps(model, inputs[:, :120].contiguous(), targets[:, :120].contiguous(), loss, total, 0.05)
            learner.train_steps(model, inputs[:, 120:].contiguous(), targets[:, 120:].contiguous(), loss, total, 0.05)
        else:
            for step in range(steps):
                with torch.no_grad():
                    output = model(inputs[:, step:step + 1])
                target = targets[:, step:step + 1]
                value, grad = loss_and_output_grad(output, target, loss)
                total += value if loss == "mse" else (output.argmax(-1) == target).float().mean(1)
                model.sgd_step_from_output_grad(grad, 0.05)
                learner.after_step(model.features)
        runs.append((model, cbp, total, replaced))
    (kernel, kernel_cbp, kernel_total, kernel_replaced), (model, cbp, total, replaced) = runs
    assert replaced.sum() >= 10 and torch.equal(kernel_replaced, replaced)
    compare = torch.equal if exact else lambda a, b: torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    assert compare(kernel_total, total)
    for mine, theirs in zip(kernel.parameters(), model.parameters()):
        assert compare(mine, theirs)
    for name in ("age", "utility", "mean_activation", "accumulated"):
        for mine, theirs in zip(getattr(kernel_cbp, name), getattr(cbp, name)):
            assert compare(mine, theirs), name
