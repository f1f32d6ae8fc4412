"""Activations: AdaLin's formula and special cases, PReLU, CReLU, and their use in the seed-batched engine."""
import math

import pytest
import torch
import torch.nn.functional as F

from plasticity.activations import build_activation
from plasticity.activations.adalin import AdaLin
from plasticity.config import ConfigError
from plasticity.models.mlp import SeedMLP, loss_and_output_grad, parameter_count, parameter_matched_width


def test_adalin_relu_is_a_per_neuron_prelu_forward_and_gradients():
    torch.manual_seed(0)
    adalin = AdaLin("relu", num_features=5).double()
    prelu = torch.nn.PReLU(num_parameters=5).double()
    with torch.no_grad():
        prelu.weight.copy_(adalin.alpha)
    x = torch.randn(7, 5, dtype=torch.double)
    x_a, x_p = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a, out_p = adalin(x_a), prelu(x_p)
    torch.testing.assert_close(out_a, out_p, rtol=0, atol=0)
    upstream = torch.randn(7, 5, dtype=torch.double)
    (out_a * upstream).sum().backward()
    (out_p * upstream).sum().backward()
    torch.testing.assert_close(x_a.grad, x_p.grad)
    torch.testing.assert_close(adalin.alpha.grad, prelu.weight.grad)


def test_adalin_hand_computed_values():
    relu = AdaLin("relu", 1)
    tanh = AdaLin("tanh", 1)
    with torch.no_grad():
        relu.alpha.fill_(0.5)
        tanh.alpha.fill_(0.5)
    assert relu(torch.tensor([-2.0, 3.0])).tolist() == [-1.0, 3.0]
    # tanh at x = 1: φ'(1) = 1 - tanh(1)², g = cos(π/2 · φ'(1)), f = tanh(1) + 0.5 · 1 · g (the paper's cos form).
    gate = math.cos(math.pi / 2 * (1 - math.tanh(1) ** 2))
    assert tanh(torch.tensor([1.0], dtype=torch.double).float()).item() == pytest.approx(math.tanh(1) + 0.5 * gate,
                                                                                        rel=1e-6)


def test_tanh_gate_is_zero_at_zero_and_opens_in_saturation():
    tanh = AdaLin("tanh", 1)
    gate = tanh.gate(torch.tensor([0.0, 3.0, -6.0, 20.0]))
    assert gate[0].item() == 0.0
    assert 0.9 < gate[1] < gate[2] <= gate[3] and gate[3].item() == pytest.approx(1.0, abs=1e-6)
    with torch.no_grad():
        tanh.alpha.fill_(0.7)
    assert tanh(torch.tensor([0.0])).item() == 0.0


@pytest.mark.parametrize("base", ["relu", "tanh", "gelu"])
def test_no_gradient_flows_through_the_gate(base):
    """Autograd's ∂f/∂x and ∂f/∂α equal the hand-derived φ'(x) + α·g(x) and x·g(x)."""
    torch.manual_seed(1)
    adalin = AdaLin(base, num_features=4).double()
    x = (torch.randn(6, 4, dtype=torch.double) * 3).requires_grad_()
    adalin(x).sum().backward()
    gate = torch.sin(math.pi / 2 * (1 - adalin.phi_derivative(x.detach()).abs() / adalin.lipschitz)).clamp(min=0)
    torch.testing.assert_close(x.grad, adalin.phi_derivative(x.detach()) + adalin.alpha.detach() * gate)
    torch.testing.assert_close(adalin.alpha.grad, (x.detach() * gate).sum(0))
    # and the gate does depend on x: a gradient through it would have differed
    if base != "relu":
        y = x.detach().clone().requires_grad_()
        open_gate = torch.sin(math.pi / 2 * (1 - adalin.phi_derivative(y).abs() / adalin.lipschitz))
        (adalin.phi(y) + adalin.alpha.detach() * y * open_gate).sum().backward()
        assert not torch.allclose(y.grad, x.grad)


def test_gelu_lipschitz_constant_is_its_largest_derivative():
    gelu = AdaLin("gelu", 1)
    grid = torch.linspace(-6, 6, 200_001, dtype=torch.double).requires_grad_()
    F.gelu(grid).sum().backward()
    assert gelu.lipschitz == pytest.approx(grid.grad.abs().max().item(), abs=1e-9)
    assert gelu.lipschitz == pytest.approx(1.1289, abs=1e-4)
    assert grid[grid.grad.argmax()].item() == pytest.approx(math.sqrt(2), abs=1e-3)


def test_alpha_is_uniform_per_unit_or_shared_per_layer():
    torch.manual_seed(0)
    per_unit, shared = AdaLin("relu", 1000), AdaLin("relu", 1000, per_unit=False)
    assert per_unit.alpha.shape == (1000,) and shared.alpha.shape == (1,)
    assert 0 <= per_unit.alpha.min() and per_unit.alpha.max() < 1 and abs(per_unit.alpha.mean() - 0.5) < 0.05
    x = -torch.ones(2, 1000)
    shared(x).sum().backward()
    assert shared.alpha.grad.item() == pytest.approx(-2000.0)


def test_per_channel_alpha_on_feature_maps():
    adalin = AdaLin("relu", num_features=3)
    x = torch.randn(2, 3, 4, 5)
    expected = torch.stack([F.relu(x[:, c]) + adalin.alpha[c] * x[:, c].clamp(max=0) for c in range(3)], dim=1)
    torch.testing.assert_close(adalin(x), expected)


def test_prelu_starts_at_torch_default_and_matches_it():
    prelu = build_activation("prelu", 4)
    assert prelu.alpha.tolist() == [0.25] * 4
    x = torch.randn(5, 4)
    torch.testing.assert_close(prelu(x), torch.nn.PReLU(4)(x))


def test_crelu_concatenates_and_matches_parameters():
    crelu = build_activation("crelu", 3)
    x = torch.tensor([[1.0, -2.0, 0.0]])
    assert crelu(x).tolist() == [[1.0, 0.0, 0.0, 0.0, 2.0, 0.0]]
    assert parameter_matched_width(784, 10, 100, 2, expansion=2) == 91
    plain = parameter_count(784, 10, 100, 2)
    model = SeedMLP(784, 10, width=100, depth=2, activation_name="crelu", seeds=[0])
    assert [layer.weight.shape[1:] for layer in model.layers] == [(91, 784), (91, 182), (10, 182)]
    assert abs(sum(p.numel() for p in model.parameters()) - plain) / plain < 0.01


@pytest.mark.parametrize("name", ["adalin_relu", "adalin_layer_tanh", "adalin_gelu", "prelu", "crelu"])
def test_engine_sgd_step_with_activation_parameters_matches_autograd(name):
    """The fused SGD step (with weight decay) updates the activations' parameters as torch.optim.SGD does."""
    fused = SeedMLP(6, 3, width=5, depth=2, activation_name=name, seeds=[0, 1]).double()
    reference = SeedMLP(6, 3, width=5, depth=2, activation_name=name, seeds=[0, 1]).double()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, weight_decay=0.01)
    inputs, targets = torch.randn(2, 4, 6, dtype=torch.double) * 3, torch.randint(0, 3, (2, 4))
    with torch.no_grad():
        _, grad = loss_and_output_grad(fused(inputs), targets, "cross_entropy")
        fused.sgd_step_from_output_grad(grad, lr=0.1, weight_decay=0.01)
    loss, _ = loss_and_output_grad(reference(inputs), targets, "cross_entropy")
    loss.sum().backward()
    optimizer.step()
    for mine, theirs in zip(fused.parameters(), reference.parameters()):
        torch.testing.assert_close(mine, theirs)


def test_a_seeds_alpha_does_not_depend_on_its_block():
    pair = SeedMLP(4, 2, width=3, depth=2, activation_name="adalin_relu", seeds=[5, 6])
    alone = SeedMLP(4, 2, width=3, depth=2, activation_name="adalin_relu", seeds=[6])
    for a, b in zip(pair.activations, alone.activations):
        torch.testing.assert_close(a.alpha[1], b.alpha[0])
    assert not torch.equal(pair.activations[0].alpha, pair.activations[1].alpha)


def test_probe_metrics_are_alpha_quantiles_per_seed():
    model = SeedMLP(4, 2, width=101, depth=1, activation_name="adalin_relu", seeds=[0, 1])
    summary = model.activations[0].probe_metrics()
    alpha = model.activations[0].alpha.detach().double()
    torch.testing.assert_close(summary["alpha_median"], alpha.median(dim=1).values)
    torch.testing.assert_close(summary["alpha_mean"], alpha.mean(dim=1))


def test_unknown_activation_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown activation 'adalin_sigmoid'.*adalin_relu.*prelu"):
        build_activation("adalin_sigmoid", 3)
