"""Measured speed of the training engine against a plain PyTorch loop, in one run on this machine, case by case.

The plain loop is what one would write without this project: one seed per process (its seeds run one after
another, so its seed-steps per second are its steps per second), an `nn.Module` written with plain torch.nn,
autograd, `torch.optim.SGD` (and, for CBP, `ContinualBackprop.from_sequential` on that network). Ours trains S seeds
at once: the MLP cases through `plasticity.engine.job.train` (data generation included), the conv cases through
the engine's training step of every non-MLP model (`plasticity.engine.common.autograd_step`) on the seed-batched
model of `plasticity.models.build_model`, on random data kept on the device. Prints seed-steps per second for
both, their ratio and the case's target.

    python benchmarks/speed.py --list                       # the cases
    python benchmarks/speed.py                              # all of them (~5 minutes on a 2-core CPU)
    python benchmarks/speed.py --case lop_convnet --case resnet18 --device cuda
    python benchmarks/speed.py --case continual_imagenet --case incremental_cifar100   # + GPU-hours of Figs. 1-2
    python benchmarks/speed.py --case default_jobs          # the default scale's longest jobs, now vs recorded
    python benchmarks/speed.py --record-default results     # record them from a whole default run

The conv cases time the two loops in alternating rounds (after warm-up steps) and keep each one's fastest round,
so that load from other work on a shared machine slows both alike; on CUDA the clock is read after a synchronize.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from plasticity.benchmarks import build_benchmark
from plasticity.config import deep_merge, job_spec, load_protocol
from plasticity.data._torchvision import import_torchvision
from plasticity.engine.evaluation import ContinualEvaluator
from plasticity.data.augment import Augmentation
from plasticity.data.mnist import materialise_mnist
from plasticity.data.normalisation import NORMALISATION
from plasticity.data.store import write_dataset
from plasticity.engine.common import autograd_step
from plasticity.engine.job import train
from plasticity.methods import build_learner
from plasticity.methods.cbp import ContinualBackprop
from plasticity.models import build_model
from plasticity.models.mlp import loss_and_output_grad
from plasticity.seeding import generator
from plasticity.seeding.normal_stream import NormalStream
from plasticity.workflow import Workflow

PROTOCOL = load_protocol("config/experiments.yaml")


@dataclass
class Row:
    label: str
    ours: float                 # seed-steps per second
    plain: float
    target: float | None        # the ratio the case should reach, None for none
    cpu_time_ratio: float | None = None     # the same ratio in process CPU time (conv cases on the CPU)


@dataclass
class Session:
    """What every case reads (the options, the device) and writes (its rows and notes)."""
    args: argparse.Namespace
    device: torch.device
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def steps(self, count: int) -> int:
        return max(1, int(count * self.args.scale))

    def clock(self) -> float:
        """Seconds for the MLP cases: this process's CPU time on the CPU (one thread), which other work on the
        machine and a virtual machine's stolen time inflate far less than the wall clock; wall-clock time on a
        GPU, where the process waits for the device."""
        return time.perf_counter() if self.cuda else time.process_time()

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def add(self, row: Row) -> None:
        if not self.rows:
            print(f"\n{HEADER}", flush=True)
        self.rows.append(row)
        print(format_row(row), flush=True)


@dataclass
class Case:
    description: str
    run: Callable[[Session], None]


CASES: dict[str, Case] = {}


def case(name: str, description: str):
    def register(run):
        CASES[name] = Case(description, run)
        return run
    return register


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- MLPs: the engine's whole job, batch 1 -------------------------------------------------------------------------

MLP_ROUNDS = 3     # each MLP timing is the fastest of this many


def ours(session: Session, experiment: str, runs: list[str], seeds: int, examples: int, mnist=None) -> list[float]:
    """Seed-steps per second of the engine (batch 1) on each of `runs`, in steady state: the difference between a
    run of 2n and one of n examples (each the fastest of MLP_ROUNDS), so loading data, building the model and
    loading compiled kernels (paid once per job) do not count. The runs' rounds alternate, so that a machine whose
    speed drifts from minute to minute (a virtual machine losing time to its host) slows them alike."""
    def seconds(run: str, n: int) -> float:
        exp = deep_merge(PROTOCOL[experiment], dict(examples=n, bin_size=n, probe=None))
        spec = job_spec(experiment, exp, run, list(range(seeds)), session.device.type)
        start = session.clock()
        train(spec, mnist, progress=False)      # returns its results on the CPU: the device is done
        return session.clock() - start
    for run in runs:
        seconds(run, max(1, examples // 10))     # warm-up: compiled kernels loaded, allocator and caches primed
    fastest = {(run, n): math.inf for run in runs for n in (examples, 2 * examples)}
    for _ in range(MLP_ROUNDS):
        for key in fastest:
            fastest[key] = min(fastest[key], seconds(*key))
    return [seeds * examples / (fastest[run, 2 * examples] - fastest[run, examples]) for run in runs]


def plain(session: Session, sizes: list[int], steps: int, classification: bool, cbp: dict | None = None) -> float:
    """Steps per second of a textbook one-seed PyTorch loop, batch 1."""
    torch.manual_seed(0)
    layers = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    net = nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1])).to(session.device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.003)
    generate_and_test = ContinualBackprop.from_sequential(net, optimizer, **cbp) if cbp else None
    inputs = torch.rand(steps, 1, sizes[0], device=session.device)
    targets = (torch.randint(0, sizes[-1], (steps, 1)) if classification else torch.randn(steps, 1, 1)).to(
        session.device)
    loss_fn = nn.functional.cross_entropy if classification else nn.functional.mse_loss
    synchronize(session.device)

    def seconds() -> float:
        start = session.clock()
        for step in range(steps):
            loss = loss_fn(net(inputs[step]), targets[step])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if generate_and_test:
                generate_and_test.step()
        synchronize(session.device)
        return session.clock() - start
    return steps / min(seconds() for _ in range(MLP_ROUNDS))


CBP_REGRESSION = dict(replacement_rate=1e-4, maturity_threshold=10, decay_rate=0.99, accumulate=False)
CBP_MNIST = dict(replacement_rate=1e-6, maturity_threshold=100, decay_rate=0.99, accumulate=True)
MNIST_SIZES = [784, 2000, 2000, 2000, 10]


def mlp_target(session: Session, target: float) -> float | None:
    """The MLP targets are the CPU machine's (its batch-1 kernels); on a GPU the case is measured, not judged."""
    return None if session.cuda else target


@case("bit_flipping_bp", "slowly-changing regression 20-5-1, 100 seeds, BP, batch 1: engine job vs plain loop")
def bit_flipping_bp(session: Session) -> None:
    session.add(Row("bit-flipping 20-5-1, 100 seeds, BP", *ours(session, "bit_flipping", ["bp-activation_relu-lr_0.01"],
                                                               100, session.steps(20_000)),
                    plain(session, [20, 5, 1], session.steps(5_000), classification=False), mlp_target(session, 50)))


@case("bit_flipping_cbp", "slowly-changing regression 20-5-1, 100 seeds, CBP, batch 1: engine job vs plain loop "
                          "with ContinualBackprop")
def bit_flipping_cbp(session: Session) -> None:
    session.add(Row("bit-flipping 20-5-1, 100 seeds, CBP", *ours(session, "bit_flipping", ["cbp"], 100,
                                                                session.steps(20_000)),
                    plain(session, [20, 5, 1], session.steps(5_000), classification=False, cbp=CBP_REGRESSION),
                    mlp_target(session, 50)))


@case("pmnist_bp", "permuted MNIST 3x2000, batch 1, 1 seed, BP: engine job vs plain loop")
def pmnist_bp(session: Session) -> None:
    mine, = ours(session, "pmnist_methods", ["bp"], 1, session.steps(400), session.args.mnist)
    session.add(Row("permuted MNIST 3x2000, batch 1, 1 seed, BP", mine,
                    plain(session, MNIST_SIZES, session.steps(150), classification=True), mlp_target(session, 3)))


@case("pmnist_cbp", "permuted MNIST 3x2000, batch 1, 1 seed, CBP: engine job vs plain loop with ContinualBackprop, "
                    "and CBP's cost over BP, their rounds alternating (target <= +15%)")
def pmnist_cbp(session: Session) -> None:
    bp, cbp = ours(session, "pmnist_methods", ["bp", "cbp"], 1, session.steps(400), session.args.mnist)
    session.add(Row("permuted MNIST 3x2000, batch 1, 1 seed, CBP", cbp,
                    plain(session, MNIST_SIZES, session.steps(150), classification=True, cbp=CBP_MNIST), None))
    overhead = bp / cbp - 1
    session.notes.append(f"CBP cost over BP, permuted MNIST 3x2000 (rounds alternating): {overhead:+.0%} "
                         f"(target <= +15%: {'met' if overhead <= 0.15 else 'NOT met'})")


# --- conv nets: the engine's training step on S seeds against one plain nn.Module -----------------------------------

class PlainLopConvNet(nn.Module):
    """Dohare et al.'s continual-ImageNet ConvNet in plain torch.nn: three (conv, ReLU, 2×2 max-pool) stages of
    32 (5×5), 64 and 128 (3×3) channels, no padding, then fc 512→128, 128→128 (ReLU) and the output layer."""

    def __init__(self, classes: int):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3, 32, 5), nn.Conv2d(32, 64, 3), nn.Conv2d(64, 128, 3)])
        self.hidden = nn.ModuleList([nn.Linear(128 * 2 * 2, 128), nn.Linear(128, 128)])
        self.out = nn.Linear(128, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), 2)
        x = x.flatten(1)
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.out(x)


class PlainBasicBlock(nn.Module):
    """torchvision's BasicBlock with a bias on every conv (or none, `bias` False): two 3×3 conv–BN stages and the
    shortcut (a 1×1 conv–BN where the shape changes), ReLU after the first stage and after the sum."""

    def __init__(self, in_channels: int, channels: int, stride: int, bias: bool = True):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=bias), nn.BatchNorm2d(channels)
        self.conv2, self.bn2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=bias), nn.BatchNorm2d(channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=bias),
                                          nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inner = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(inner)) + self.shortcut(x))


class PlainResNet(nn.Module):
    """torchvision's ResNet-18 layout in plain torch.nn with a 3×3 stride-1 stem conv and no max-pool: BasicBlocks
    [2, 2, 2, 2] of `widths` channels (strides 1, 2, 2, 2), `pool` of the last maps, flattened, the output layer."""

    def __init__(self, widths: tuple[int, ...], classes: int, bias: bool,
                 pool: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=bias), nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, in_channels = [], widths[0]
        for stage, channels in enumerate(widths):
            blocks += [PlainBasicBlock(in_channels, channels, 2 if stage else 1, bias=bias),
                       PlainBasicBlock(channels, channels, 1, bias=bias)]
            in_channels = channels
        self.blocks = nn.Sequential(*blocks)
        self.pool = pool
        self.out = nn.Linear(widths[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.pool(self.blocks(self.stem(x))).flatten(1))


def PlainResNet18(classes: int) -> PlainResNet:
    """Dohare et al.'s CIFAR ResNet-18: stages of 64/128/256/512 channels, biased convs, global average pooling."""
    return PlainResNet((64, 128, 256, 512), classes, bias=True, pool=lambda x: F.adaptive_avg_pool2d(x, 1))


def PlainSlimResNet18(classes: int = 10) -> PlainResNet:
    """De Lange et al.'s slim ResNet-18 (nf 20): stages of 20/40/80/160 channels, bias-free convs, 4×4 average
    pooling."""
    return PlainResNet((20, 40, 80, 160), classes, bias=False, pool=lambda x: F.avg_pool2d(x, 4))


class PlainKumarCnn(nn.Module):
    """Kumar et al.'s CNN in plain torch.nn: two (conv 5×5 16 ch, ReLU, 2×2 max-pool) stages, fc 400→100, 100→100
    (ReLU) and the output layer."""

    def __init__(self, classes: int):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3, 16, 5), nn.Conv2d(16, 16, 5)])
        self.hidden = nn.ModuleList([nn.Linear(16 * 5 * 5, 100), nn.Linear(100, 100)])
        self.out = nn.Linear(100, classes)

    forward = PlainLopConvNet.forward


@dataclass
class ConvSetting:
    arch: str
    classes: int
    batch: int
    optimizer: dict             # torch.optim.SGD's arguments
    plain_net: Callable[[int], nn.Module]
    input_shape: tuple[int, int, int] = (3, 32, 32)


LOP_CONVNET = ConvSetting("lop_convnet", 2, 100, dict(lr=0.01, momentum=0.9), PlainLopConvNet)
KUMAR_CNN = ConvSetting("kumar_cnn", 10, 16, dict(lr=0.01), PlainKumarCnn)
RESNET18 = ConvSetting("resnet18", 100, 90, dict(lr=0.1, momentum=0.9, weight_decay=5e-4), PlainResNet18)


def engine_step(setting: ConvSetting, seeds: int, device: torch.device,
                augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Callable[[], None]:
    """One training step of the engine on `seeds` seeds: the seed-batched model, SGD over its parameters,
    `autograd_step` on a fixed random batch (S, B, C, H, W) on the device (through `augment` first, if given)."""
    torch.manual_seed(0)
    model = build_model({"arch": setting.arch}, setting.input_shape, setting.classes, list(range(seeds)),
                        "tasks").to(device)
    optimizer = torch.optim.SGD(model.parameters(), **setting.optimizer)
    inputs = torch.rand(seeds, setting.batch, *setting.input_shape, device=device)
    targets = torch.randint(0, setting.classes, (seeds, setting.batch), device=device)
    return lambda: autograd_step(model, optimizer, augment(inputs) if augment else inputs, targets, "cross_entropy")


def plain_step(setting: ConvSetting, device: torch.device) -> Callable[[], None]:
    """One step of the textbook loop for one seed: forward, cross-entropy, zero_grad, backward, SGD step."""
    torch.manual_seed(0)
    net = setting.plain_net(setting.classes).to(device)
    optimizer = torch.optim.SGD(net.parameters(), **setting.optimizer)
    inputs = torch.rand(setting.batch, *setting.input_shape, device=device)
    targets = torch.randint(0, setting.classes, (setting.batch,), device=device)

    def step() -> None:
        loss = F.cross_entropy(net(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


@dataclass
class Schedule:
    """Steps of each loop: warm-up (not timed), then `rounds` alternating rounds of `ours` and `plain` steps."""
    warmup: int
    ours: int
    plain: int
    rounds: int


def race(session: Session, ours_step: Callable[[], None], plain_step: Callable[[], None],
         schedule: Schedule) -> tuple[tuple[float, float], tuple[float, float]]:
    """(ours, plain) steps per second, each its fastest round of the alternating rounds, in wall-clock time and
    in this process's CPU time (which load from other work inflates less; one thread, so one core's time)."""
    def timed(step: Callable[[], None], count: int) -> tuple[float, float]:
        synchronize(session.device)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            step()
        synchronize(session.device)
        return count / (time.perf_counter() - wall), count / max(time.process_time() - cpu, 1e-9)
    for step in (ours_step, plain_step):
        timed(step, schedule.warmup)
    best = {ours_step: (0.0, 0.0), plain_step: (0.0, 0.0)}
    for _ in range(schedule.rounds):
        for step, count in ((ours_step, schedule.ours), (plain_step, schedule.plain)):
            best[step] = tuple(map(max, best[step], timed(step, session.steps(count))))
    return best[ours_step], best[plain_step]


def conv_case(session: Session, setting: ConvSetting, seeds: int, schedule: Schedule, target: float | None) -> None:
    (mine, mine_cpu), (theirs, theirs_cpu) = race(session, engine_step(setting, seeds, session.device),
                                                  plain_step(setting, session.device), schedule)
    label = f"{setting.arch}, batch {setting.batch}, {seeds} seed{'s' * (seeds > 1)}, {session.device.type}"
    session.add(Row(label, seeds * mine, theirs, target, None if session.cuda else seeds * mine_cpu / theirs_cpu))


@case("noise_draws", "Shrink & Perturb's Gaussian noise, 5 seeds: N(0, 1) draws per second of the per-seed Box-Muller "
                     "streams (plasticity.seeding.normal_stream, 100k samples a seed) vs torch.randn from a generator "
                     "per seed, and elements per second of NormalStream.add_to (generate and add in one pass) into a "
                     "784-100 weight stored input-major (a transposed view, as the CPU row kernels keep it) vs "
                     "torch.randn then add_")
def noise_draws(session: Session) -> None:
    seeds, size, steps = 5, 100_000, session.steps(200)
    stream = NormalStream(list(range(seeds)), "noise", (size,))
    generators = [generator(seed, "noise") for seed in range(seeds)]
    buffer = torch.empty(seeds, size)
    weight_stream = NormalStream(list(range(seeds)), "perturb:0", (100, 784))
    weight = torch.zeros(seeds, 784, 100).transpose(1, 2)
    noise = torch.empty(seeds, 100, 784)

    def box_muller() -> None:
        stream.next()

    def randn() -> None:
        for seed, rng in enumerate(generators):
            torch.randn(size, generator=rng, out=buffer[seed])

    def fused_add() -> None:
        weight_stream.add_to(weight, 0.01)

    def randn_add() -> None:
        for seed, rng in enumerate(generators):
            torch.randn((100, 784), generator=rng, out=noise[seed])
        weight.add_(noise, alpha=0.01)

    def per_second(draw: Callable[[], None], elements: int) -> float:
        draw()      # the compiled kernel loaded
        fastest = math.inf
        for _ in range(MLP_ROUNDS):
            start = session.clock()
            for _ in range(steps):
                draw()
            fastest = min(fastest, session.clock() - start)
        return steps * seeds * elements / fastest
    session.add(Row("S&P noise: N(0, 1) draws per second", per_second(box_muller, size), per_second(randn, size),
                    mlp_target(session, 2.0)))
    session.add(Row("S&P noise: generate + add, elements per second",
                    per_second(fused_add, 784 * 100), per_second(randn_add, 784 * 100), mlp_target(session, 2.0)))


@case("lop_convnet", "Dohare's continual-ImageNet ConvNet, batch 100, 3x32x32, 2 classes, SGD momentum 0.9: engine "
                     "step on 30 seeds vs one plain nn.Module (target: >= 10x on a GPU, >= 1x on the CPU)")
def lop_convnet(session: Session) -> None:
    torch.set_flush_denormal(True)      # as the engine's jobs run (both loops)
    session.notes.append("lop_convnet targets: 30 seeds >= 10x the plain loop's seed-steps/s on a GPU, >= 1x (no "
                         "slower) on the CPU")
    if session.cuda:
        conv_case(session, LOP_CONVNET, 30, Schedule(warmup=10, ours=30, plain=100, rounds=3), 10)
    else:
        conv_case(session, LOP_CONVNET, 30, Schedule(warmup=1, ours=1, plain=30, rounds=5), 1)


@case("resnet18", "Dohare's CIFAR ResNet-18, batch 90, 3x32x32, 100 classes, SGD momentum 0.9 wd 5e-4: engine step "
                  "on 1 seed (CPU) or 1 and 4 seeds (GPU) vs one plain nn.Module (measured, no target)")
def resnet18(session: Session) -> None:
    torch.set_flush_denormal(True)
    if session.cuda:
        for seeds in (1, 4):
            conv_case(session, RESNET18, seeds, Schedule(warmup=5, ours=10, plain=10 * seeds, rounds=3), None)
    else:
        conv_case(session, RESNET18, 1, Schedule(warmup=1, ours=1, plain=1, rounds=2), None)


@case("random_label_cifar10", "AdaLin's CIFAR benchmarks' training step: the engine on 10 seeds of kumar_cnn at batch "
                              "16 (SGD) vs one plain nn.Module (measured, no target)")
def random_label_cifar10(session: Session) -> None:
    torch.set_flush_denormal(True)
    schedule = Schedule(warmup=20, ours=100, plain=300, rounds=3) if session.cuda else \
        Schedule(warmup=5, ours=20, plain=100, rounds=3)
    conv_case(session, KUMAR_CNN, 10, schedule, None)


# --- the vision figures: ours against a reference-style loop, and what a figure costs at paper scale ----------------

# Seed-steps of each figure at the paper's protocol (config/experiments.yaml): Fig. 1, 3 step sizes x 2,000 tasks and
# 4 methods x 5,000 tasks of 3,000 steps, 30 seeds (the linear baseline left out: its cost is negligible); Fig. 2,
# 5 runs x 15 seeds x 200 epochs of ceil(2,250 t / 90) batches for tasks t = 1..20.
FIG1_SEED_STEPS = (3 * 2000 + 4 * 5000) * 3000 * 30
FIG2_SEED_STEPS = 5 * 15 * 200 * sum(-(-2250 * t // 90) for t in range(1, 21))


def project(session: Session, figure: str, seed_steps: int, ours: float, plain: float) -> None:
    session.notes.append(f"{figure} at paper scale ({seed_steps:,} seed-steps, training only): "
                         f"{seed_steps / ours / 3600:,.0f} {session.device.type.upper()}-hours ours, "
                         f"{seed_steps / plain / 3600:,.0f} with the reference-style loop")


def cifar_plain_step(device: torch.device) -> Callable[[], None]:
    """The reference's loop for one seed: a DataLoader over uint8 images with torchvision transforms (normalise,
    h-flip, random crop with reflect padding, rotation 0-15 degrees) in the main process, then the plain step."""
    transforms = import_torchvision().transforms
    mean, std = NORMALISATION["cifar100", "dohare2024"]
    augment = transforms.Compose([transforms.ConvertImageDtype(torch.float), transforms.Normalize(mean, std),
                                  transforms.RandomHorizontalFlip(),
                                  transforms.RandomCrop(32, 4, padding_mode="reflect"),
                                  transforms.RandomRotation((0, 15))])
    images = torch.randint(0, 256, (900, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, RESNET18.classes, (900,))
    dataset = [(augment, images[i], labels[i]) for i in range(len(images))]
    loader = torch.utils.data.DataLoader(dataset, batch_size=RESNET18.batch, shuffle=True,
                                         collate_fn=lambda rows: (torch.stack([t(x) for t, x, _ in rows]),
                                                                  torch.stack([y for _, _, y in rows])))
    torch.manual_seed(0)
    net = PlainResNet18(RESNET18.classes).to(device)
    optimizer = torch.optim.SGD(net.parameters(), **RESNET18.optimizer)
    batches = iter(())

    def step() -> None:
        nonlocal batches
        batch = next(batches, None)
        if batch is None:
            batches = iter(loader)
            batch = next(batches)
        inputs, targets = (part.to(device, non_blocking=True) for part in batch)
        loss = F.cross_entropy(net(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def cifar_engine_step(device: torch.device) -> Callable[[], None]:
    """Ours for one seed: the data resident on the device, the batch augmented there (flip, crop, rotation from the
    seed's generator), the engine's step on the seed-batched ResNet-18."""
    from plasticity.benchmarks.incremental_cifar100 import AUGMENTATION
    gens = [torch.Generator().manual_seed(0)]
    return engine_step(RESNET18, 1, device, augment=lambda inputs: AUGMENTATION(inputs, gens))


@case("continual_imagenet", "Fig. 1's training step: the engine on 30 seeds of lop_convnet vs one plain nn.Module "
                            "(SGD momentum 0.9, batch 100), and the figure's GPU-hours at paper scale")
def continual_imagenet(session: Session) -> None:
    torch.set_flush_denormal(True)
    rounds = Schedule(warmup=10, ours=30, plain=100, rounds=3) if session.cuda else \
        Schedule(warmup=1, ours=1, plain=5, rounds=2)
    (mine, _), (theirs, _) = race(session, engine_step(LOP_CONVNET, 30, session.device),
                                  plain_step(LOP_CONVNET, session.device), rounds)
    session.add(Row(f"continual_imagenet, 30 seeds, {session.device.type}", 30 * mine, theirs, None))
    project(session, "Fig. 1", FIG1_SEED_STEPS, 30 * mine, theirs)


@case("incremental_cifar100", "Fig. 2's training step: one seed of resnet18 with batched device augmentation vs a "
                              "DataLoader with torchvision transforms and a plain nn.Module, and the figure's "
                              "GPU-hours at paper scale")
def incremental_cifar100(session: Session) -> None:
    torch.set_flush_denormal(True)
    rounds = Schedule(warmup=5, ours=10, plain=10, rounds=3) if session.cuda else \
        Schedule(warmup=1, ours=1, plain=1, rounds=1)
    (mine, _), (theirs, _) = race(session, cifar_engine_step(session.device), cifar_plain_step(session.device),
                                  rounds)
    session.add(Row(f"incremental_cifar100, 1 seed, {session.device.type}", mine, theirs, None))
    project(session, "Fig. 2", FIG2_SEED_STEPS, mine, theirs)


# --- the stability-gap paper's vision arm: training plus evaluation after every iteration ----------------------------

# Split CIFAR-10 under joint training, shrunk to run in seconds on a CPU: 32x32 images, batch 256 (the paper's) on
# a GPU, 32 on the CPU; a 1,000-sample evaluation subset of two tasks (as in context 2) on a GPU, 64 per task on the
# CPU. Random images stand in for CIFAR (speed does not depend on the pixels).
PROTOCOL_CIFAR_MEAN, PROTOCOL_CIFAR_STD = NORMALISATION["cifar10", "ngm2025"]
JOINT_CIFAR = {"cuda": dict(batch=256, samples=1000, iterations=20), "cpu": dict(batch=32, samples=64, iterations=3)}


def joint_cifar_data(path: str, samples: int) -> str:
    """A synthetic cifar10.npz with enough images of classes 0-3 for the case."""
    rng = np.random.default_rng(0)
    labels = np.arange(4 * samples) % 4
    images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    write_dataset(path, "cifar10", {"x_train": images, "y_train": labels.astype(np.uint8), "x_test": images,
                                    "y_test": labels.astype(np.uint8)},
                  {"source": "synthetic", "form": "speed case", "detail": "random images", "synthetic": True})
    return path


def joint_engine_iteration(data: str, device: torch.device, batch: int, samples: int) -> Callable[[], None]:
    """One iteration of the engine's arm (NGM-SGD, 1 seed): an augmented batch from the joint sampler, the step,
    and the evaluation of both tasks' fixed subsets in eval mode, as plasticity.engine.joint runs them."""
    spec = PROTOCOL["ngm_split_cifar10"]
    bench = build_benchmark("split_cifar10", spec["benchmark_args"], [0], device, data)
    model = build_model(spec["model"], (3, 32, 32), 10, [0], "joint").to(device)
    learner = build_learner("ngm_sgd", model, [0], spec["runs"]["ngm_sgd"]["hparams"])
    evaluator = ContinualEvaluator(bench, samples)
    for task in (0, 1):
        evaluator.add_task(task)
    bench.start_context(1)

    def iteration() -> None:
        model.train()
        inputs, targets = bench.next_batch(batch)
        autograd_step(model, learner.optimizer, inputs, targets, "cross_entropy")
        model.eval()
        evaluator.evaluate(model)
    return iteration


def joint_plain_iteration(data: str, device: torch.device, batch: int, samples: int) -> Callable[[], None]:
    """One iteration of a reference-style loop: a torchvision-transformed `DataLoader` batch, the step of a plain
    nn.Module, then an evaluation loop over each task's test-subset DataLoader."""
    arrays = np.load(data)
    mean = torch.tensor(PROTOCOL_CIFAR_MEAN).view(3, 1, 1)
    std = torch.tensor(PROTOCOL_CIFAR_STD).view(3, 1, 1)

    def crop_and_flip(image: torch.Tensor) -> torch.Tensor:
        """torchvision's RandomCrop(32, padding=4) and RandomHorizontalFlip() on one image, as the reference's
        transforms apply them per example (torchvision itself is not needed to time them)."""
        top, left = torch.randint(0, 9, (2,)).tolist()
        image = F.pad(image, (4, 4, 4, 4))[:, top:top + 32, left:left + 32]
        return image.flip(-1) if torch.rand(()) < 0.5 else image

    class Images(Dataset):
        """The reference's per-example pipeline: uint8 HWC -> float CHW in [0, 1], augmented or not, normalised."""

        def __init__(self, augmented: bool):
            self.x, self.y, self.augmented = arrays["x_train"], arrays["y_train"], augmented

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            image = torch.from_numpy(self.x[i]).permute(2, 0, 1).float().div(255)
            return ((crop_and_flip(image) if self.augmented else image) - mean) / std, int(self.y[i])
    train, test = Images(True), Images(False)
    loader = DataLoader(train, batch_size=batch, sampler=RandomSampler(train, replacement=True, num_samples=10**9))
    tests = [DataLoader(Subset(test, np.flatnonzero(arrays["y_test"] // 2 == task)[:samples]), batch_size=500)
             for task in (0, 1)]
    net = PlainSlimResNet18().to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    batches = iter(loader)

    def iteration() -> None:
        net.train()
        x, y = next(batches)
        loss = F.cross_entropy(net(x.to(device)), y.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        net.eval()
        with torch.no_grad():
            for test_loader in tests:
                for x, y in test_loader:
                    (net(x.to(device)).argmax(1) == y.to(device)).float().mean().item()
    return iteration


@case("split_cifar10_joint", "The stability-gap paper's Split CIFAR-10 arm (slim ResNet-18, NGM-SGD): training "
                             "plus evaluation after every iteration, engine vs a reference-style DataLoader loop "
                             "(iterations per second, measured, no target)")
def split_cifar10_joint(session: Session) -> None:
    torch.set_flush_denormal(True)
    sizes = JOINT_CIFAR[session.device.type]
    with tempfile.TemporaryDirectory() as folder:
        data = joint_cifar_data(f"{folder}/cifar10.npz", sizes["samples"])
        steps = [joint_engine_iteration(data, session.device, sizes["batch"], sizes["samples"]),
                 joint_plain_iteration(data, session.device, sizes["batch"], sizes["samples"])]
        (mine, _), (theirs, _) = race(session, *steps, Schedule(warmup=1, ours=sizes["iterations"],
                                                                plain=sizes["iterations"], rounds=2))
    session.add(Row(f"split_cifar10 joint, batch {sizes['batch']}, eval 2x{sizes['samples']}, "
                    f"{session.device.type}", mine, theirs, None))


# --- augmentation: batched on the device vs torchvision's per-image transforms in a DataLoader ------------------------

AUGMENT_IMAGES, AUGMENT_BATCH = 4096, 256


class TransformedImages(torch.utils.data.Dataset):
    """What a torchvision pipeline augments: one image at a time, in the DataLoader's workers."""

    def __init__(self, images: torch.Tensor, transform):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(self.images[index])


def torchvision_augment_rate(images: torch.Tensor, rotation: bool) -> float:
    """Images per second of torchvision's v2 RandomHorizontalFlip, RandomCrop(32, 4, reflect) (and
    RandomRotation((0, 15))) per image, batched by a DataLoader with 2 workers; timed from its first batch on, so
    the workers' start-up does not count."""
    import_torchvision()
    from torchvision.transforms import v2
    steps = [v2.RandomHorizontalFlip(), v2.RandomCrop(32, padding=4, padding_mode="reflect")]
    transform = v2.Compose(steps + [v2.RandomRotation((0, 15))] * rotation)
    loader = torch.utils.data.DataLoader(TransformedImages(images, transform), batch_size=AUGMENT_BATCH,
                                         num_workers=2)
    count, start = 0, None
    for batch in loader:
        if start is None:
            start = time.perf_counter()
            continue
        count += len(batch)
    return count / (time.perf_counter() - start)


def batched_augment_rate(session: Session, images: torch.Tensor, device: torch.device, rotation: bool) -> float:
    """Images per second of plasticity.data.augment on `device`: draws on the CPU from a seed's generator, then
    one batched flip, crop (and rotation) of AUGMENT_BATCH images."""
    augmentation = Augmentation(padding=4, padding_mode="reflect", angles=(0, 15) if rotation else None)
    batch, gens = images[:AUGMENT_BATCH].to(device).unsqueeze(0), [generator(0, "augment")]
    for _ in range(2):
        augmentation(batch, gens)
    steps = session.steps(8 if device.type == "cpu" else 50)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        augmentation(batch, gens)
    synchronize(device)
    return steps * AUGMENT_BATCH / (time.perf_counter() - start)


@case("augment", "CIFAR-sized training augmentation (h-flip, random crop pad 4 reflect, with and without rotation "
                 "0-15 degrees): images/s of our batched transforms (CPU; and GPU when used) vs torchvision's "
                 "per-image transforms in a DataLoader with 2 workers (measured, no target)")
def augment(session: Session) -> None:
    images = torch.rand(AUGMENT_IMAGES, 3, 32, 32, generator=generator(0, "images"))
    devices = [torch.device("cpu")] + [session.device] * session.cuda
    for rotation in (False, True):
        theirs = torchvision_augment_rate(images, rotation)
        for device in devices:
            label = f"augment crop+flip{'+rotation' * rotation}, {AUGMENT_BATCH}/batch, {device.type}"
            session.add(Row(label, batched_augment_rate(session, images, device, rotation), theirs, None))
    session.notes.append(f"augment rows: images per second (not seed-steps); ours batched in this process "
                         f"({torch.get_num_threads()} torch thread(s)), plain = torchvision v2 transforms per image "
                         "in a DataLoader with 2 workers, both on CPU float images in [0, 1]")


# --- GPU against CPU ------------------------------------------------------------------------------------------------

def conv_agreement(arch: str, seeds: int, steps: int, batch: int, dtype: torch.dtype,
                   device: str = "cuda") -> dict[str, float]:
    """Train the same seed-batched conv net on the CPU and on `device` from one init and one data stream (the
    engine's step, SGD lr 0.01 momentum 0.9, 10 classes); max |difference| of the final parameters and buffers,
    and of the logits of a fresh batch in evaluation mode."""
    shape, classes = (3, 32, 32), 10
    cpu = build_model({"arch": arch}, shape, classes, list(range(seeds)), "tasks").to(dtype)
    runs = [("cpu", cpu), (device, copy.deepcopy(cpu).to(device))]
    optimizers = [torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) for _, model in runs]
    data = torch.Generator().manual_seed(0)
    for _ in range(steps):
        inputs = torch.rand(seeds, batch, *shape, generator=data, dtype=dtype)
        targets = torch.randint(0, classes, (seeds, batch), generator=data)
        for (where, model), optimizer in zip(runs, optimizers):
            autograd_step(model, optimizer, inputs.to(where), targets.to(where), "cross_entropy")
    probe = torch.rand(seeds, batch, *shape, generator=data, dtype=dtype)
    with torch.no_grad():
        logits = [model.eval()(probe.to(where)).cpu() for where, model in runs]
    states = [model.state_dict() for _, model in runs]
    return {"weights": max((states[0][key] - states[1][key].cpu()).abs().max().item()
                           for key in states[0] if states[0][key].is_floating_point()),
            "logits": (logits[0] - logits[1]).abs().max().item()}


def mlp_agreement(seeds: int, steps: int, device: str = "cuda") -> dict[str, float]:
    """The engine's MLP online step (batch 1, the hand-derived backward fused with plain SGD lr 0.01; the CPU's row
    kernels against `device`'s batched matmuls) from one init (the seeds') and one data stream, 784-100-100-10,
    cross-entropy, float32."""
    spec = {"width": 100, "depth": 2, "activation": "relu"}
    runs = [("cpu", build_model(spec, (784,), 10, list(range(seeds)), "online", row_kernels=True)),
            (device, build_model(spec, (784,), 10, list(range(seeds)), "online").to(device))]
    data = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(steps):
            inputs = torch.rand(seeds, 1, 784, generator=data)
            targets = torch.randint(0, 10, (seeds, 1), generator=data)
            for where, model in runs:
                _, output_grad = loss_and_output_grad(model(inputs.to(where)), targets.to(where), "cross_entropy")
                model.sgd_step_from_output_grad(output_grad, 0.01)
        probe = torch.rand(seeds, 16, 784, generator=data)
        logits = [model(probe.to(where)).cpu() for where, model in runs]
    (_, cpu), (_, other) = runs
    return {"weights": max((a - b.cpu()).abs().max().item() for a, b in zip(cpu.parameters(), other.parameters())),
            "logits": (logits[0] - logits[1]).abs().max().item()}


# (label, check, tolerance on max |Δ| of the final weights and logits, or None: reported only). A wrong layout or
# seeds mixed on one device give differences of the order of the weights (~0.1). Rounding differences alone stay
# near the precision's for the MLP, but the conv nets' training amplifies them (ReLU and max-pool choices flip):
# on the CPU, the grouped convolutions (the GPU's path) against the per-seed ones drift to ~2e-2 in the weights
# after 200 float32 steps of lop_convnet and agree to the last bit in float64. So the conv nets are judged in
# float64, and their float32 drift is shown for information.
AGREEMENT_CHECKS = [
    ("lop_convnet, 3 seeds, batch 8, 200 steps, float64",
     lambda: conv_agreement("lop_convnet", 3, 200, 8, torch.float64), 1e-8),
    ("slim_resnet18, 2 seeds, batch 8, 100 steps, float64",
     lambda: conv_agreement("slim_resnet18", 2, 100, 8, torch.float64), 1e-8),
    ("MLP 784-100-100-10, 3 seeds, batch 1, 300 steps, float32", lambda: mlp_agreement(3, 300), 1e-5),
    ("lop_convnet, 3 seeds, batch 8, 200 steps, float32",
     lambda: conv_agreement("lop_convnet", 3, 200, 8, torch.float32), None),
    ("slim_resnet18, 2 seeds, batch 8, 100 steps, float32",
     lambda: conv_agreement("slim_resnet18", 2, 100, 8, torch.float32), None),
]


@case("agreement", "GPU vs CPU: a few hundred steps of small seed-batched nets (lop_convnet, slim_resnet18, the "
                   "MLP) on both devices from one init and data; max |difference| of final weights and logits "
                   "against a float tolerance (needs CUDA)")
def agreement(session: Session) -> None:
    if not torch.cuda.is_available():
        print("agreement: needs a CUDA GPU (none visible); skipped", flush=True)
        return
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False     # the GPU in full float32
    print(f"\nagreement, GPU vs CPU, one init and one data stream (TF32 off; torch's defaults here: cudnn "
          f"{tf32[0]}, matmul {tf32[1]}): max |difference| of the final weights and of logits", flush=True)
    try:
        for label, check, tolerance in AGREEMENT_CHECKS:
            differences = check()
            verdict = ("(float32 drift, shown only)" if tolerance is None else
                       f"tolerance {tolerance:g}: "
                       f"{'met' if max(differences.values()) <= tolerance else 'NOT met'}")
            print(f"  {label:56s} weights {differences['weights']:.2e}  logits {differences['logits']:.2e}  "
                  f"{verdict}", flush=True)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32


# --- the default scale's longest jobs: their time now beside the time recorded from a whole default run ----------

DEFAULT_JOBS = Path("benchmarks/default_jobs.csv")
DEFAULT_JOB_FIELDS = ["experiment", "run", "block", "wall_seconds", "recorded", "host"]


def job_units(spec: dict) -> int:
    """What a job is a count of, for timing a part of it: bins of examples (online protocol) or iterations per
    context (joint; every context then runs that many)."""
    if spec.get("protocol", "online") == "online":
        return spec["examples"] // spec["bin_size"]
    if spec["protocol"] == "joint":
        return spec["iterations_per_context"]
    raise ValueError(f"default_jobs times online and joint jobs (the default scale's); not {spec['protocol']!r}")


def truncated(spec: dict, units: int) -> dict:
    """The job cut to its first `units` (job_units): the same per-unit work, so its time grows linearly in them."""
    if spec.get("protocol", "online") == "online":
        return {**spec, "examples": units * spec["bin_size"]}
    return {**spec, "iterations_per_context": units}


def projected_seconds(spec: dict, data: str | None, fraction: float) -> float:
    """A job's wall time projected from two cut runs of n and 2n units (n ≈ fraction of the job): the fixed cost
    (data, model, first compiled calls) is the intercept, the rest grows with the units."""
    total = job_units(spec)
    n = max(1, min(total // 2, round(fraction * total)))
    times = []
    for units in (n, 2 * n):
        start = time.perf_counter()
        train(truncated(spec, units), data, progress=False)
        times.append(time.perf_counter() - start)
    per_unit = (times[1] - times[0]) / n
    return times[0] + per_unit * (total - n)


def record_default_jobs(results: Path, out: Path = DEFAULT_JOBS) -> int:
    """Write `out` from a finished default run's provenance (results/runs/*/*/seeds*.json), longest job first."""
    rows = []
    for provenance in results.glob("runs/*/*/seeds*.json"):
        info = json.loads(provenance.read_text())
        rows.append({"experiment": provenance.parts[-3], "run": provenance.parts[-2],
                     "block": provenance.stem.removeprefix("seeds"), "wall_seconds": info["wall_seconds"],
                     "recorded": time.strftime("%Y-%m-%d", time.localtime(provenance.stat().st_mtime)),
                     "host": info["host"]})
    if not rows:
        raise SystemExit(f"--record-default: no job provenance under {results}/runs: run the default scale first")
    with out.open("w", newline="") as file:
        writer = csv.DictWriter(file, DEFAULT_JOB_FIELDS)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: -row["wall_seconds"]))
    return len(rows)


@case("default_jobs", "the default scale's longest jobs (benchmarks/default_jobs.csv, from a whole default run), "
                      "each timed on a part of it: projected wall time beside the recorded one")
def default_jobs(session: Session) -> None:
    with DEFAULT_JOBS.open() as file:
        recorded = list(csv.DictReader(file))[:session.args.jobs]
    workflow = Workflow(yaml.safe_load(Path("config/config.yaml").read_text()))  # the specs the workflow runs
    lines = [f"{'default-scale job':64s} {'recorded':>9s} {'now':>9s} {'ratio':>6s}"]
    print(lines[0], flush=True)
    for row in recorded:
        spec = json.loads(workflow.train_spec(row["experiment"], row["run"], row["block"]))
        data = session.args.mnist if workflow.dataset_of(row["experiment"]) == "mnist" else None
        now = projected_seconds({**spec, "device": session.device.type}, data, session.args.fraction)
        recorded_seconds = float(row["wall_seconds"])
        lines.append(f"{row['experiment'] + '/' + row['run'] + '/' + row['block']:64s} {recorded_seconds:8.0f}s "
                     f"{now:8.0f}s {now / recorded_seconds:5.2f}x")
        print(lines[-1], flush=True)
    session.notes.append("\n".join(lines + [f"(recorded: {recorded[0]['recorded']} on {recorded[0]['host']}, two "
                                            f"jobs at a time on 2 cores; now: one at a time, projected from "
                                            f"{session.args.fraction:.0%} and twice that of each job)"]))


# --- driver ---------------------------------------------------------------------------------------------------------

HEADER = f"{'case':50s} {'ours':>12s} {'plain':>10s} {'ratio':>7s}  target"


def format_row(row: Row) -> str:
    verdict = "" if row.target is None else \
        f">= {row.target:g}x  {'met' if row.ours / row.plain >= row.target else 'NOT met'}"
    cpu_time = "" if row.cpu_time_ratio is None else f"  (in CPU time {row.cpu_time_ratio:.2f}x)"
    return (f"{row.label:50s} {rate(row.ours):>12s} {rate(row.plain):>10s} {row.ours / row.plain:6.2f}x  "
            f"{verdict}{cpu_time}")


def rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="name the cases, one a line, and exit")
    parser.add_argument("--case", action="append", metavar="NAME",
                        help="run this case (repeatable; default: every case, in --list order)")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu", help="default: cuda when available")
    parser.add_argument("--mnist", default="resources/mnist.npz", help="materialised MNIST (made if missing)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the measured steps (longer = steadier)")
    parser.add_argument("--jobs", type=int, default=6, help="default_jobs: how many of the longest jobs")
    parser.add_argument("--fraction", type=float, default=0.02,
                        help="default_jobs: time each job on this fraction of it (and twice that)")
    parser.add_argument("--record-default", metavar="RESULTS", type=Path,
                        help=f"write {DEFAULT_JOBS} from a finished default run's results folder, and exit")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both loops (1 = what each Snakemake training job uses by default)")
    args = parser.parse_args(argv)
    if args.record_default:
        print(f"{DEFAULT_JOBS}: {record_default_jobs(args.record_default)} jobs")
        return 0
    if args.list:
        for name, entry in CASES.items():
            print(f"{name:18s} {entry.description}")
        return 0
    names = args.case or list(CASES)
    unknown = [name for name in names if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; valid: {', '.join(CASES)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is visible")
    torch.set_num_threads(args.threads)
    if any(name.startswith("pmnist") or name == "default_jobs" for name in names):
        try:
            open(args.mnist).close()
        except FileNotFoundError:
            materialise_mnist(args.mnist)
    session = Session(args, torch.device(args.device))
    gpu = f", {torch.cuda.get_device_name(session.device)}" if session.cuda else ""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}{gpu}", flush=True)
    for name in names:
        CASES[name].run(session)
    if session.rows:
        print(f"\n{HEADER}")
        for row in session.rows:
            print(format_row(row))
    for note in session.notes:
        print(f"\n{note}")
    if session.rows:
        print("(seed-steps per second; plain = one seed per process, nn.Module + autograd + torch.optim; "
              "MLP cases batch 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
