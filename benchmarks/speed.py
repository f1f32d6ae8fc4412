"""Measured speed of the training engine against a plain PyTorch loop, in one run on this machine.

The plain loop is what one would write without this project: one seed per process, an `nn.Sequential`,
autograd, `torch.optim.SGD`, batch 1 (and, for CBP, `ContinualBackprop.from_sequential` on that network).
Ours trains S seeds at once through `plasticity.engine.job.train` (data generation included).
Prints seed-steps per second for both and their ratio, per case, plus CBP's cost over BP.

    python benchmarks/speed.py            # all cases, ~3 minutes on a 2-core CPU
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

from plasticity.config import deep_merge, job_spec, load_protocol
from plasticity.data.mnist import materialise_mnist
from plasticity.methods.cbp import ContinualBackprop
from plasticity.engine.job import train

PROTOCOL = load_protocol("config/experiments.yaml")


def ours(experiment: str, run: str, seeds: int, examples: int, mnist=None) -> float:
    """Seed-steps per second of the engine (batch 1), in steady state: the difference between a run of 2n and
    one of n examples, so loading data, building the model and loading compiled kernels (paid once per job) do
    not count."""
    def seconds(n: int) -> float:
        exp = deep_merge(PROTOCOL[experiment], dict(examples=n, bin_size=n, probe=None))
        spec = job_spec(experiment, exp, run, list(range(seeds)), "cpu")
        start = time.perf_counter()
        train(spec, mnist, progress=False)
        return time.perf_counter() - start
    seconds(max(1, examples // 10))       # warm-up: compiled kernels loaded, allocator and caches primed
    return seeds * examples / (seconds(2 * examples) - seconds(examples))


def plain(sizes: list[int], steps: int, classification: bool, cbp: dict | None = None) -> float:
    """Steps per second of a textbook one-seed PyTorch loop, batch 1."""
    torch.manual_seed(0)
    layers = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    net = nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.003)
    generate_and_test = ContinualBackprop.from_sequential(net, optimizer, **cbp) if cbp else None
    inputs = torch.rand(steps, 1, sizes[0])
    targets = torch.randint(0, sizes[-1], (steps, 1)) if classification else torch.randn(steps, 1, 1)
    loss_fn = nn.functional.cross_entropy if classification else nn.functional.mse_loss
    start = time.perf_counter()
    for step in range(steps):
        loss = loss_fn(net(inputs[step]), targets[step])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if generate_and_test:
            generate_and_test.step()
    return steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", default="resources/mnist.npz", help="materialised MNIST (made if missing)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the measured steps (longer = steadier)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both loops (1 = what each Snakemake training job uses by default)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        open(args.mnist).close()
    except FileNotFoundError:
        materialise_mnist(args.mnist)
    n = lambda steps: max(1, int(steps * args.scale))  # noqa: E731
    cbp_regression = dict(replacement_rate=1e-4, maturity_threshold=10, decay_rate=0.99, accumulate=False)
    cbp_mnist = dict(replacement_rate=1e-6, maturity_threshold=100, decay_rate=0.99, accumulate=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    rows = []
    for label, method, cbp in (("BP", "bp-activation_relu-lr_0.01", None), ("CBP", "cbp", cbp_regression)):
        mine = ours("bit_flipping", method, 100, n(20_000))
        theirs = plain([20, 5, 1], n(5_000), classification=False, cbp=cbp)
        rows.append((f"bit-flipping 20-5-1, 100 seeds, {label}", mine, theirs, 50))
    mnist_bp = ours("pmnist_methods", "bp", 1, n(400), args.mnist)
    mnist_cbp = ours("pmnist_methods", "cbp", 1, n(400), args.mnist)
    rows.append(("permuted MNIST 3x2000, batch 1, 1 seed, BP", mnist_bp,
                 plain([784, 2000, 2000, 2000, 10], n(150), classification=True), 3))
    rows.append(("permuted MNIST 3x2000, batch 1, 1 seed, CBP", mnist_cbp,
                 plain([784, 2000, 2000, 2000, 10], n(150), classification=True, cbp=cbp_mnist), None))
    print(f"\n{'case':50s} {'ours':>12s} {'plain':>10s} {'ratio':>7s}  target")
    for label, mine, theirs, target in rows:
        verdict = "" if target is None else f">= {target}x  {'met' if mine / theirs >= target else 'NOT met'}"
        print(f"{label:50s} {mine:12,.0f} {theirs:10,.0f} {mine / theirs:6.1f}x  {verdict}")
    overhead = mnist_bp / mnist_cbp - 1
    print(f"\nCBP cost over BP, permuted MNIST 3x2000: {overhead:+.0%} (target <= +15%: "
          f"{'met' if overhead <= 0.15 else 'NOT met'})")
    print("(seed-steps per second; plain = one seed per process, nn.Module + autograd + torch.optim, batch 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
