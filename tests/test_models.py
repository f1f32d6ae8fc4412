"""Seed-batched conv layers and the vision architectures (lop_convnet, kumar_cnn, resnet18, slim_resnet18):
equality with plain torch layers and reference networks, init distributions, seed-block invariance, unit layers."""
import copy
import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plasticity.config import ConfigError
from plasticity.data._torchvision import import_torchvision
from plasticity.methods.ngm_sgd import NGMSGD, trainable
from plasticity.models import build_model
from plasticity.models.gain_mlp import GainLinear
from plasticity.models.layers import (SeedBatchNorm2d, SeedConv2d, SeedLinear, avg_pool, flatten, init_default_,
                                      max_pool)

CIFAR = (3, 32, 32)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def b_major(shape, seed=0):
    """A leaf (B, S, ...) tensor and its (S, B, ...) view, the layout the conv layers pass on on a GPU (on the CPU
    they pass on S-major maps, and take either)."""
    base = torch.randn(shape[1], shape[0], *shape[2:], generator=gen(seed)).requires_grad_()
    return base, base.transpose(0, 1)


def build(arch, seeds=(0, 1), shape=CIFAR, classes=10, **settings):
    return build_model({"arch": arch, **settings}, shape, classes, list(seeds))


# --- layers --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_seed_conv_equals_separate_convs_outputs_and_gradients(bias):
    seeds = 3
    conv = SeedConv2d(4, 5, 3, seeds, stride=2, padding=1, bias=bias)
    init_default_(conv, [gen(s) for s in range(seeds)])
    base, x = b_major((seeds, 2, 4, 9, 9))
    grad_out = torch.randn(seeds, 2, 5, 5, 5, generator=gen(1))
    y = conv(x)
    assert y.shape == (seeds, 2, 5, 5, 5) and y.is_contiguous()     # S-major out on the CPU
    y.backward(grad_out)
    for s in range(seeds):
        reference = nn.Conv2d(4, 5, 3, stride=2, padding=1, bias=bias)
        with torch.no_grad():
            reference.weight.copy_(conv.weight[s])
            if bias:
                reference.bias.copy_(conv.bias[s])
        x_s = x[s].detach().clone().requires_grad_()
        y_s = reference(x_s)
        y_s.backward(grad_out[s])
        assert torch.equal(y[s], y_s)
        assert torch.equal(conv.weight.grad[s], reference.weight.grad)
        assert torch.equal(base.grad[:, s], x_s.grad)
        if bias:
            assert torch.equal(conv.bias.grad[s], reference.bias.grad)


def test_seed_conv_epilogue_runs_per_seed_with_the_same_numbers():
    """conv(x, epilogue) on the CPU: the epilogue inside the per-seed loop gives, bit for bit, epilogue(conv(x)) on
    the block's maps, outputs and gradients; the grouped path applies it to the block's channels."""
    conv = SeedConv2d(3, 4, 3, 3)
    init_default_(conv, [gen(s) for s in range(3)])
    epilogue = lambda images: F.max_pool2d(F.relu(images), 2)    # noqa: E731
    base, x = b_major((3, 2, 3, 10, 10))
    grad_out = torch.randn(3, 2, 4, 4, 4, generator=gen(1))
    fused = conv(x, epilogue)
    fused.backward(grad_out)
    fused_grads = [base.grad.clone(), conv.weight.grad.clone(), conv.bias.grad.clone()]
    base.grad = conv.weight.grad = conv.bias.grad = None
    apart = max_pool(F.relu(conv(x)), 2)
    apart.backward(grad_out)
    assert torch.equal(fused, apart) and fused.is_contiguous()
    for mine, other in zip(fused_grads, [base.grad, conv.weight.grad, conv.bias.grad]):
        assert torch.equal(mine, other)
    torch.testing.assert_close(conv.grouped(x, epilogue), fused, rtol=1e-5, atol=1e-6)


def test_seed_conv_grouped_path_matches_the_per_seed_path():
    """The grouped convolution (the GPU path) computes the same function as the CPU's per-seed calls."""
    conv = SeedConv2d(3, 4, 3, 2, stride=2, padding=1)
    init_default_(conv, [gen(0), gen(1)])
    _, x = b_major((2, 3, 3, 8, 8))
    torch.testing.assert_close(conv.grouped(x), conv.per_seed(x), rtol=1e-5, atol=1e-6)


def _batch_norms(seeds, channels):
    mine = SeedBatchNorm2d(channels, seeds)
    with torch.no_grad():
        mine.weight.uniform_(0.5, 1.5, generator=gen(2))
        mine.bias.uniform_(-0.5, 0.5, generator=gen(3))
    references = [nn.BatchNorm2d(channels) for _ in range(seeds)]
    for s, reference in enumerate(references):
        with torch.no_grad():
            reference.weight.copy_(mine.weight[s])
            reference.bias.copy_(mine.bias[s])
    return mine, references


def test_seed_batch_norm_equals_separate_batch_norms_in_train_and_eval():
    seeds, channels = 3, 4
    mine, references = _batch_norms(seeds, channels)
    for step in range(2):
        base, x = b_major((seeds, 5, channels, 3, 3), seed=step)
        grad_out = torch.randn(seeds, 5, channels, 3, 3, generator=gen(10 + step))
        mine.zero_grad()
        y = mine(x)
        y.backward(grad_out)
        for s, reference in enumerate(references):
            reference.zero_grad()
            x_s = x[s].detach().clone().requires_grad_()
            y_s = reference(x_s)
            y_s.backward(grad_out[s])
            assert torch.equal(y[s], y_s)
            assert torch.equal(base.grad[:, s], x_s.grad)
            assert torch.equal(mine.weight.grad[s], reference.weight.grad)
            assert torch.equal(mine.bias.grad[s], reference.bias.grad)
            assert torch.equal(mine.running_mean[s], reference.running_mean)
            assert torch.equal(mine.running_var[s], reference.running_var)
    assert mine.num_batches_tracked.item() == references[0].num_batches_tracked.item() == 2
    mine.eval()
    _, x = b_major((seeds, 5, channels, 3, 3), seed=7)
    with torch.no_grad():
        y = mine(x)
        for s, reference in enumerate(references):
            assert torch.equal(y[s], reference.eval()(x[s].contiguous()))
    assert mine.num_batches_tracked.item() == 2


def test_seed_batch_norm_grouped_path_matches_the_per_seed_path():
    grouped, _ = _batch_norms(2, 3)
    looped, _ = _batch_norms(2, 3)
    _, x = b_major((2, 4, 3, 5, 5))
    torch.testing.assert_close(grouped.grouped(x), looped.per_seed(x))
    torch.testing.assert_close(grouped.running_mean, looped.running_mean)
    torch.testing.assert_close(grouped.running_var, looped.running_var)


@pytest.mark.parametrize("layout", ["B-major", "S-major"])
def test_pooling_and_flatten_act_per_seed_in_torch_order(layout):
    _, x = b_major((3, 2, 4, 6, 6))
    if layout == "S-major":
        x = x.contiguous()
    pooled_max, pooled_avg, flat = max_pool(x, 2), avg_pool(x, 3), flatten(x)
    assert flat.shape == (3, 2, 4 * 36) and flat.is_contiguous()
    assert pooled_max.is_contiguous() == (layout == "S-major")      # a view of the pooled images either way
    for s in range(3):
        assert torch.equal(pooled_max[s], F.max_pool2d(x[s], 2))
        assert torch.equal(pooled_avg[s], F.avg_pool2d(x[s].contiguous(), 3))
        assert torch.equal(flat[s], x[s].flatten(1))


# --- reference networks, in plain torch ----------------------------------------------------------------------------

def lop_convnet_reference(classes):
    return nn.Sequential(nn.Conv2d(3, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(64, 128, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, classes))


def kumar_cnn_reference(classes):
    return nn.Sequential(nn.Conv2d(3, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 100), nn.ReLU(), nn.Linear(100, 100),
                         nn.ReLU(), nn.Linear(100, classes))


def resnet18_reference(classes):
    """torchvision's ResNet-18 modified as the loss-of-plasticity reference: 3×3 stride-1 stem, no max-pool,
    bias=True on every conv."""
    net = import_torchvision().models.resnet18(num_classes=classes)
    net.conv1 = nn.Conv2d(3, 64, 3, 1, 1)
    net.maxpool = nn.Identity()
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.Conv2d) and child.bias is None:
                setattr(module, name, nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size,
                                                child.stride, child.padding, bias=True))
    return net


class SlimBlock(nn.Module):
    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != c:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SlimResNet(nn.Module):
    """De Lange et al.'s ResNet18feat (nf 20) with its linear classifier."""

    def __init__(self, classes, positions=1, nf=20):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, nf, 3, 1, 1, bias=False), nn.BatchNorm2d(nf)
        cin, blocks = nf, []
        for width, stride in [(nf, 1), (2 * nf, 2), (4 * nf, 2), (8 * nf, 2)]:
            blocks += [SlimBlock(cin, width, stride), SlimBlock(width, width, 1)]
            cin = width
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(8 * nf * positions, classes)

    def forward(self, x):
        out = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.linear(F.avg_pool2d(out, 4).flatten(1))


def load_seed(state, index, reference):
    """Copy seed `index` of a model's `state` into `reference`: the state_dicts list the same tensors in the same
    order."""
    ours, theirs = list(state.items()), list(reference.state_dict().items())
    assert len(ours) == len(theirs)
    with torch.no_grad():
        for (name, mine), (reference_name, tensor) in zip(ours, theirs):
            source = mine if mine.dim() == 0 else mine[index]
            assert source.shape == tensor.shape, (name, reference_name)
            tensor.copy_(source)


# arch -> (input shape, classes, reference network, hand-computed parameters per seed). resnet18 runs on 8×8 inputs
# (its global pooling takes any size) to keep the tests fast; slim_resnet18's average pooling needs 32×32.
ARCHITECTURES = {
    # 3·32·25+32 + 32·64·9+64 + 64·128·9+128 + 512·128+128 + 128·128+128 + 128·2+2
    "lop_convnet": (CIFAR, 2, lambda: lop_convnet_reference(2), 177_218),
    # 3·16·25+16 + 16·16·25+16 + 400·100+100 + 100·100+100 + 100·10+10
    "kumar_cnn": (CIFAR, 10, lambda: kumar_cnn_reference(10), 58_842),
    # torchvision's 11,689,512 − 7·7 stem (9,408) + 3·3 stem (1,728) − fc 1000 (513,000) + fc 100 (51,300)
    # + conv biases (64 + 4·64 + 5·128 + 5·256 + 5·512 = 4,800)
    "resnet18": ((3, 8, 8), 100, lambda: resnet18_reference(100), 11_224_932),
    # stem 540+40, stage 1 14,560, stage 2 51,600, stage 3 205,600, stage 4 820,800, head 160·10+10
    "slim_resnet18": (CIFAR, 10, lambda: SlimResNet(10), 1_094_750),
}


@functools.lru_cache(maxsize=None)
def forwarded(arch):
    """(model of seeds [0, 1], its state before the forward, the input, the logits) after one training-mode
    forward; shared by the tests that only read them."""
    shape, classes, _, _ = ARCHITECTURES[arch]
    model = build(arch, (0, 1), shape, classes)
    initial = copy.deepcopy(model.state_dict())
    x = torch.randn(2, 3, *shape, generator=gen())
    return model, initial, x, model(x)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_architecture_equals_its_reference_network(arch):
    """Output shape, parameters per seed, and each seed's logits and BatchNorm statistics (training mode) equal
    those of the plain-torch reference network holding that seed's weights."""
    _, classes, reference, count = ARCHITECTURES[arch]
    (model, initial, x, logits), net = forwarded(arch), reference()
    assert all(p.shape[0] == 2 for p in model.parameters())
    assert sum(p[0].numel() for p in model.parameters()) == sum(p.numel() for p in net.parameters()) == count
    assert logits.shape == (2, 3, classes)
    for s in range(2):
        load_seed(initial, s, net)
        torch.testing.assert_close(logits[s], net(x[s]), rtol=1e-4, atol=1e-5)
        for (name, mine), tensor in zip(model.state_dict().items(), net.state_dict().values()):
            if "running" in name:
                torch.testing.assert_close(mine[s], tensor)


def test_slim_resnet18_at_84_pools_to_640_features():
    """Mini-ImageNet size: the pooled map is 2×2, the head reads 160·4 features, each channel 4 of them."""
    model = build("slim_resnet18", (0,), (3, 84, 84), 10)
    model(torch.randn(1, 2, 3, 84, 84, generator=gen()))
    assert model.head.weight.shape == (1, 10, 640)
    assert model.features[-1].shape == (1, 2, 160, 2, 2) and model.unit_layers()[-1].positions == 4
    assert sum(p[0].numel() for p in model.parameters()) == sum(p.numel() for p in SlimResNet(10, 4).parameters())


def test_too_small_inputs_are_config_errors_naming_the_shape():
    with pytest.raises(ConfigError, match=r"\(3, 16, 16\)"):
        build("lop_convnet", shape=(3, 16, 16))
    with pytest.raises(ConfigError, match=r"\(3, 16, 16\)"):
        build("slim_resnet18", shape=(3, 16, 16))
    with pytest.raises(ConfigError, match="channels, height, width"):
        build("kumar_cnn", shape=(784,))
    with pytest.raises(ConfigError, match="crelu"):      # the plain conv nets take it (parameter-matched), not ResNets
        build("slim_resnet18", activation="crelu")


# --- init ----------------------------------------------------------------------------------------------------------

def fan_in(weight):
    return math.prod(weight.shape[2:])


def assert_std(tensor, expected, rel=0.1):
    """Sample std within `rel` of `expected`, mean within 4 standard errors of 0."""
    assert abs(tensor.std().item() - expected) < rel * expected
    assert abs(tensor.mean().item()) < 4 * expected / math.sqrt(tensor.numel())


def assert_default_init(layer):
    """PyTorch's default init: weight and bias U(±1/√fan_in), weight std 1/√(3·fan_in)."""
    bound = 1 / math.sqrt(fan_in(layer.weight))
    for s in range(layer.weight.shape[0]):
        assert layer.weight[s].abs().max() <= bound
        assert_std(layer.weight[s], bound / math.sqrt(3))
        if layer.bias is not None:
            assert layer.bias[s].abs().max() <= bound and layer.bias[s].abs().min() > 0


@pytest.mark.parametrize("arch", ["lop_convnet", "kumar_cnn", "slim_resnet18"])
def test_default_init(arch):
    model = forwarded(arch)[0]
    for layer in (m for m in model.modules() if isinstance(m, (SeedConv2d, SeedLinear))):
        assert_default_init(layer)
    assert not torch.equal(model.head.weight[0], model.head.weight[1])


def test_resnet18_kaiming_normal_init():
    model = forwarded("resnet18")[0]
    convs = [m for m in model.modules() if isinstance(m, SeedConv2d)]
    assert len(convs) == 20     # 17 + 3 downsample convs
    for conv in convs:
        for s in range(2):
            assert_std(conv.weight[s], math.sqrt(2 / fan_in(conv.weight)))
        assert not conv.bias.any()
    assert_std(model.head.weight, math.sqrt(1 / 512), rel=0.05)
    assert not model.head.bias.any()
    for norm in (m for m in model.modules() if isinstance(m, SeedBatchNorm2d)):
        assert torch.equal(norm.weight, torch.ones_like(norm.weight)) and not norm.bias.any()


# --- seed-block invariance -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_a_seed_computes_the_same_numbers_in_any_block(arch):
    """Seed 1 of a [0, 1, 2] block and seed 1 alone: init, forward (training mode, BatchNorm on batch statistics),
    features, gradients and running statistics, bit for bit."""
    shape, classes, _, _ = ARCHITECTURES[arch]
    x = torch.randn(3, 2, *shape, generator=gen())
    probe = torch.randn(3, 2, classes, generator=gen(1))
    block, alone = build(arch, (0, 1, 2), shape, classes), build(arch, (1,), shape, classes)
    for (name, p), q in zip(block.named_parameters(), alone.parameters()):
        assert torch.equal(p[1], q[0]), name
    out_block, out_alone = block(x), alone(x[1:2].clone())
    assert torch.equal(out_block[1], out_alone[0])
    for mine, other in zip(block.features, alone.features):
        assert torch.equal(mine[1], other[0])
    (out_block * probe).sum().backward()
    (out_alone * probe[1:2]).sum().backward()
    for (name, p), q in zip(block.named_parameters(), alone.parameters()):
        assert torch.equal(p.grad[1], q.grad[0]), name
    for (name, mine), other in zip(block.state_dict().items(), alone.state_dict().values()):
        if "running" in name:
            assert torch.equal(mine[1], other[0]), name


# --- unit layers ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch, count", [("lop_convnet", 5), ("kumar_cnn", 4), ("resnet18", 17),
                                         ("slim_resnet18", 17)])
def test_unit_layers_align_with_features(arch, count):
    model = forwarded(arch)[0]
    layers = model.unit_layers()
    assert len(layers) == len(model.features) == len(model.activations) == count
    for layer, features in zip(layers, model.features):
        assert features.shape[:3] == (2, 3, layer.units)
        assert layer.next_layer.weight.shape[2] == layer.units * layer.positions
        assert layer.init(3, gen()).shape == (3, *layer.layer.weight.shape[2:])
        if arch.endswith("resnet18"):
            assert isinstance(layer.norm, SeedBatchNorm2d) and layer.norm.num_features == layer.units
        else:
            assert layer.norm is None
    assert layers[-1].next_layer is model.head


def test_resnet18_unit_layer_order_and_pooled_features():
    model = forwarded("resnet18")[0]
    layers = model.unit_layers()
    assert layers[0].layer is model.conv1 and layers[0].next_layer is model.layer1[0].conv1
    assert layers[1].next_layer is model.layer1[0].conv2 and layers[2].next_layer is model.layer1[1].conv1
    assert layers[-1].layer is model.layer4[1].conv2 and layers[-1].positions == 1
    assert model.features[-1].shape == (2, 3, 512)
    assert model.features[-2].shape == (2, 3, 512, 1, 1)     # layer4.1's conv1 output
    weight = layers[6].init(20_000, gen())                    # layer2.0.conv2: N(0, 2/fan_in)
    assert_std(weight, math.sqrt(2 / (128 * 9)), rel=0.05)
    assert forwarded("slim_resnet18")[0].features[-1].shape == (2, 3, 160, 1, 1)


def test_unit_layer_operations_on_conv_layers():
    """CBP's operations on the last conv of lop_convnet (each channel feeds 4 fc inputs) and on a ResNet conv."""
    model = build("lop_convnet")
    conv3 = model.unit_layers()[2]
    assert conv3.outgoing_magnitude().shape == (2, 128, 4)
    assert conv3.incoming_magnitude().shape == (2, 128)
    units = torch.tensor([0, 5])
    before = conv3.layer.weight[1, 0].clone()
    conv3.reinitialise(1, units, gen())
    assert not torch.equal(conv3.layer.weight[1, 0], before) and not conv3.layer.bias[1, units].any()
    conv3.cut_outgoing(1, units)
    assert not model.fcs[0].weight[1][:, [0, 1, 2, 3, 20, 21, 22, 23]].any()
    assert model.fcs[0].weight[1][:, 4].all() and model.fcs[0].weight[0][:, 0].all()

    resnet = build("slim_resnet18")
    layer = resnet.unit_layers()[3]
    with torch.no_grad():
        layer.norm.weight.fill_(3)
        layer.norm.running_var.fill_(5)
    layer.reinitialise(0, units, gen())
    assert torch.equal(layer.norm.weight[0, units], torch.ones(2)) and layer.norm.weight[1, 0] == 3
    assert torch.equal(layer.norm.running_var[0, units], torch.ones(2))
    layer.cut_outgoing(0, units)
    assert not layer.next_layer.weight[0][:, units].any()


# --- activations and heads -----------------------------------------------------------------------------------------

def test_adalin_is_per_channel_on_feature_maps():
    model = build("lop_convnet", activation="adalin_relu")
    assert [tuple(a.alpha.shape) for a in model.activations] == [(2, 32), (2, 64), (2, 128), (2, 128), (2, 128)]
    model(torch.randn(2, 3, *CIFAR, generator=gen())).sum().backward()
    for activation in model.activations:
        assert activation.alpha.grad.shape == activation.alpha.shape and activation.alpha.grad.any()
    assert set(model.activations[0].probe_metrics()) >= {"alpha_mean"}


@pytest.mark.parametrize("arch", ["lop_convnet", "slim_resnet18"])    # one of each network class
def test_gain_head(arch):
    shape = ARCHITECTURES[arch][0]
    model = build(arch, shape=shape, gain_head=True, head_std=0.05)
    assert isinstance(model.head, GainLinear) and not hasattr(forwarded(arch)[0], "gains")
    (gain,) = model.gains()
    assert gain.shape == (2, 10) and gain is model.head.gain
    assert not model.head.bias.requires_grad and not model.head.bias.any()
    assert_std(model.head.weight, 0.05, rel=0.15)
    model.eval()
    x = torch.randn(2, 2, *shape, generator=gen())
    with torch.no_grad():
        plain = model(x)
        gain.fill_(2.5)
        torch.testing.assert_close(model(x), 2.5 * plain)


def test_ngm_sgd_drives_a_conv_net_gain_head():
    model = build("kumar_cnn", gain_head=True)
    optimizer = NGMSGD(trainable(model), model, lr=0.01, eta=0.2)
    x, y = torch.randn(2, 4, *CIFAR, generator=gen()), torch.randint(0, 10, (2, 4), generator=gen())
    for _ in range(2):
        optimizer.zero_grad()
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        optimizer.step()
    assert (model.gains()[0] > 1).all()     # entropy of the first step drove the gain up
