"""The CPU row kernels (plasticity.models.kernels) against autograd + torch.optim.SGD, and their tracked magnitudes."""
import pytest
import torch

from plasticity.methods import build_learner
from plasticity.models.mlp import SeedMLP, loss_and_output_grad


def sparse_inputs(steps, seeds, features, generator):
    """Inputs with many exact zeros, like MNIST pixels."""
    x = torch.rand(steps, seeds, 1, features, generator=generator, dtype=torch.double)
    return torch.where(x < 0.6, 0.0, x)


def twin_models(activation, seeds=(0, 1, 2)):
    kernel = SeedMLP(7, 3, width=9, depth=2, activation_name=activation, seeds=list(seeds), row_kernels=True)
    reference = SeedMLP(7, 3, width=9, depth=2, activation_name=activation, seeds=list(seeds))
    return kernel.double(), reference.double()


@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu"])
def test_kernel_steps_equal_autograd_and_torch_sgd(activation):
    generator = torch.Generator().manual_seed(0)
    kernel, reference = twin_models(activation)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05)
    inputs = sparse_inputs(20, 3, 7, generator)
    targets = torch.randint(0, 3, (20, 3, 1), generator=generator)
    for x, target in zip(inputs, targets):
        with torch.no_grad():
            output = kernel(x)
        assert kernel._last_forward_by_kernels
        expected = reference(x)
        torch.testing.assert_close(output, expected.detach())
        kernel.sgd_step_from_output_grad(loss_and_output_grad(output, target, "cross_entropy")[1], 0.05)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(expected.flatten(0, 1), target.flatten(), reduction="sum").backward()
        optimizer.step()
    for mine, theirs in zip(kernel.parameters(), reference.parameters()):
        torch.testing.assert_close(mine, theirs)


def test_kernels_skip_only_rows_of_zero_inputs():
    """A zero input's outgoing weights are neither read for the output nor updated."""
    model = SeedMLP(4, 2, width=3, depth=1, activation_name="relu", seeds=[0], row_kernels=True).double()
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.tensor([[[0.0, 0.5, 0.0, 1.0]]], dtype=torch.double)
    with torch.no_grad():
        output = model(x)
    model.sgd_step_from_output_grad(torch.ones_like(output), 0.1)
    first = model.layers[0].weight.detach()
    assert torch.equal(first[0, :, [0, 2]], before[0][0, :, [0, 2]])      # columns of the zero inputs
    assert not torch.equal(first[0, :, [1, 3]], before[0][0, :, [1, 3]])


def test_batches_and_autograd_use_the_blas_path():
    model = SeedMLP(4, 2, width=3, depth=1, activation_name="relu", seeds=[0], row_kernels=True)
    with torch.no_grad():
        model(torch.rand(1, 5, 4))
    assert not model._last_forward_by_kernels
    model(torch.rand(1, 1, 4))                      # grad enabled: must stay differentiable
    assert not model._last_forward_by_kernels


def fresh_magnitudes(model):
    weights = [layer.weight.detach() for layer in model.layers]
    incoming = [w.abs().mean(dim=2) for w in weights[:-1]]
    outgoing = [w.abs().mean(dim=1) for w in weights[1:]]
    return incoming, outgoing


def test_tracked_magnitudes_equal_fresh_ones_through_steps_and_replacements():
    """CBP reads per-unit weight magnitudes that the kernels keep incrementally; they must equal the ones
    computed from the weights, also after CBP rewrote some weights outside the kernels."""
    generator = torch.Generator().manual_seed(1)
    model = SeedMLP(7, 3, width=9, depth=2, activation_name="relu", seeds=[0, 1], row_kernels=True)
    learner = build_learner("cbp", model, [0, 1], {"lr": 0.05, "replacement_rate": 0.2, "maturity_threshold": 3,
                                                   "accumulate": False, "util_type": "adaptable_contribution"})
    replaced = 0
    for x in sparse_inputs(40, 2, 7, generator).float():
        with torch.no_grad():
            output = model(x)
            model.sgd_step_from_output_grad(output - 1.0, 0.05)
            replaced += sum(int(mask.sum()) for mask in learner.after_step(model.hidden))
        for mine, fresh in zip(model.unit_magnitudes(), fresh_magnitudes(model)):
            for a, b in zip(mine, fresh):
                torch.testing.assert_close(a, b)
    assert replaced > 0


def test_seed_results_do_not_depend_on_the_block():
    generator = torch.Generator().manual_seed(2)
    inputs = sparse_inputs(10, 3, 7, generator)
    alone, _ = twin_models("relu", seeds=(2,))
    block, _ = twin_models("relu", seeds=(0, 1, 2))
    for x in inputs:
        with torch.no_grad():
            for model, batch in ((alone, x[2:]), (block, x)):
                model.sgd_step_from_output_grad(model(batch) - 0.5, 0.1)
    for mine, theirs in zip(alone.parameters(), block.parameters()):
        assert torch.equal(mine[0], theirs[2])


def step_by_step(model, inputs, targets, loss, lr, weight_decay=0.0):
    """The online protocol's step-by-step path at batch 1: forward, output gradient, fused SGD; the metric summed."""
    total = torch.zeros(inputs.shape[0])
    for step in range(inputs.shape[1]):
        with torch.no_grad():
            output = model(inputs[:, step:step + 1])
        value, grad = loss_and_output_grad(output, targets[:, step:step + 1], loss)
        total += value if loss == "mse" else (output.argmax(dim=-1) == targets[:, step:step + 1]).float().mean(dim=1)
        model.sgd_step_from_output_grad(grad, lr, weight_decay)
    return total


@pytest.mark.parametrize("activation, depth, loss, weight_decay, exact", [
    ("relu", 2, "mse", 0.0, True), ("linear", 0, "mse", 0.0, True), ("relu", 2, "cross_entropy", 0.0, False),
    ("tanh", 1, "mse", 0.0, False), ("relu", 2, "mse", 0.1, False)])
def test_many_steps_in_one_call_equal_the_step_by_step_path(activation, depth, loss, weight_decay, exact):
    """`train_steps` runs the same steps as the step-by-step path: bit for bit under the squared error with ReLU or
    linear units; to float32 rounding where its log-softmax, tanh and decayed update are its own. The metric is
    each step's before its update: for the cross-entropy the count of correct argmax predictions."""
    generator = torch.Generator().manual_seed(1)
    seeds, steps, features, outputs = 3, 40, 7, 3 if loss == "cross_entropy" else 1
    inputs = sparse_inputs(steps, seeds, features, generator).float()[:, :, 0].transpose(0, 1).contiguous()
    if loss == "cross_entropy":
        targets = torch.randint(0, outputs, (seeds, steps), generator=generator)
    else:
        targets = torch.randn(seeds, steps, outputs, generator=generator)
    models = [SeedMLP(features, outputs, width=9, depth=depth, activation_name=activation, seeds=list(range(seeds)),
                      row_kernels=True) for _ in range(2)]
    assert models[0].trains_steps_in_kernels(loss)
    expected = step_by_step(models[1], inputs, targets, loss, 0.05, weight_decay)
    total = torch.zeros(seeds)
    models[0].train_steps(inputs, targets, loss, total, 0.05, weight_decay)
    compare = torch.equal if exact else lambda a, b: torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    assert compare(total, expected), (total, expected)
    for mine, theirs in zip(models[0].parameters(), models[1].parameters()):
        assert compare(mine, theirs)


def test_networks_the_step_kernel_does_not_compute_take_the_step_by_step_path():
    assert not SeedMLP(4, 2, width=3, depth=1, activation_name="leaky_relu", seeds=[0],
                       row_kernels=True).trains_steps_in_kernels("mse")
    assert not SeedMLP(4, 2, width=3, depth=1, activation_name="relu", seeds=[0]).trains_steps_in_kernels("mse")
    tracked = SeedMLP(4, 2, width=3, depth=1, activation_name="relu", seeds=[0], row_kernels=True)
    tracked.track_unit_magnitudes()                 # CBP's sums: kept by plain SGD's kernel steps only
    inputs, targets = torch.rand(1, 3, 4), torch.rand(1, 3, 2)
    with pytest.raises(ValueError, match="plain SGD only"):
        tracked.train_steps(inputs, targets, "mse", torch.zeros(1), 0.1, weight_decay=0.01)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_adam_steps_in_one_call_follow_torch_adam(loss):
    """With Adam's moments `train_steps` takes torch.optim.Adam's steps (bias corrections from the step count; the
    moments of weights whose input was zero decay too), to float32 rounding."""
    from plasticity.engine.online import adam_moments
    generator = torch.Generator().manual_seed(2)
    seeds, steps, features, outputs = 2, 30, 7, 3
    inputs = sparse_inputs(steps, seeds, features, generator).float()[:, :, 0].transpose(0, 1).contiguous()
    targets = (torch.randint(0, outputs, (seeds, steps), generator=generator) if loss == "cross_entropy"
               else torch.randn(seeds, steps, outputs, generator=generator))
    models = [SeedMLP(features, outputs, width=9, depth=2, activation_name="relu", seeds=list(range(seeds)),
                      row_kernels=True) for _ in range(2)]
    optimizers = [torch.optim.Adam(model.parameters(), lr=0.01, fused=True) for model in models]
    expected = torch.zeros(seeds)
    for step in range(steps):
        with torch.no_grad():
            output = models[1](inputs[:, step:step + 1])
        value, grad = loss_and_output_grad(output, targets[:, step:step + 1], loss)
        expected += value if loss == "mse" else (output.argmax(dim=-1) == targets[:, step:step + 1]).float().mean(1)
        models[1].backward_from_output_grad(grad)
        optimizers[1].step()
    total = torch.zeros(seeds)
    for half in (slice(0, 10), slice(10, steps)):      # two calls: the second continues the step count
        taken, pairs = adam_moments(optimizers[0])
        models[0].train_steps(inputs[:, half].contiguous(), targets[:, half].contiguous(), loss, total, 0.01,
                              adam=(0.9, 0.999, 1e-8, taken, pairs))
        for state in optimizers[0].state.values():
            state["step"] += half.stop - half.start
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)
        assert torch.equal(optimizers[0].state[mine]["step"], optimizers[1].state[theirs]["step"])
