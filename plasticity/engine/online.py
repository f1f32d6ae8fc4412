"""The online protocol of the loss-of-plasticity benchmarks: every example is seen once; the online metric
(squared error or accuracy, measured on the batch *before* the update) is averaged in bins of `bin_size`
examples; at each task start the hidden representation of the task's first `probe.size` examples is probed
(dead units, ranks, weight magnitude)."""
from __future__ import annotations

import sys

import pandas as pd
import torch
from tqdm import tqdm

from plasticity.benchmarks import benchmark_shapes, build_benchmark
from plasticity.config import ConfigError
from plasticity.engine.probes import probe
from plasticity.engine.checkpoint import Checkpoints
from plasticity.engine.common import Recorder, TrainingState, autograd_step, nonfinite_seeds, resolve_device
from plasticity.methods import build_learner
from plasticity.models import build_model
from plasticity.models.mlp import loss_and_output_grad

ONLINE_METRIC = {"mse": "squared_error", "cross_entropy": "online_accuracy"}


def plain_sgd_hyperparameters(optimizer: torch.optim.Optimizer) -> tuple[float, float] | None:
    """(lr, weight_decay) if `optimizer` is exactly torch.optim.SGD without momentum, whose step the engine then
    fuses with the backward pass (`SeedMLP.sgd_step_from_output_grad`); None for any other optimizer."""
    if type(optimizer) is not torch.optim.SGD or len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if group["momentum"] or group["nesterov"] or group["maximize"]:
        return None
    return group["lr"], group["weight_decay"]


def plain_adam_hyperparameters(optimizer: torch.optim.Optimizer) -> tuple[float, float, float, float] | None:
    """(lr, beta1, beta2, eps) if `optimizer` is torch.optim.Adam without weight decay or its variants (amsgrad,
    maximize), whose steps the MLP's kernels can take (`SeedMLP.train_steps`); None for any other optimizer."""
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if group["weight_decay"] or group["amsgrad"] or group["maximize"]:
        return None
    return group["lr"], *group["betas"], group["eps"]


def adam_moments(optimizer: torch.optim.Adam) -> tuple[int, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The steps Adam has taken and each parameter's (exp_avg, exp_avg_sq), made as torch.optim.Adam makes them
    (zeros with the parameter's strides, a float32 step count) before its first step."""
    pairs = []
    for param in optimizer.param_groups[0]["params"]:
        state = optimizer.state[param]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
            for name in ("exp_avg", "exp_avg_sq"):
                state[name] = torch.zeros_like(param, memory_format=torch.preserve_format)
        pairs.append((state["exp_avg"], state["exp_avg_sq"]))
    return int(optimizer.state[optimizer.param_groups[0]["params"][0]]["step"].item()), pairs


@torch.no_grad()
def train_online(spec: dict, data_path: str | None = None, progress: bool = True,
                 checkpoints: Checkpoints | None = None) -> pd.DataFrame:
    """Train the online-protocol job `spec` (see docs/architecture.md) and return its tidy results.

    With `checkpoints`, resume from its checkpoint if one matches, save the state as it says, and on SIGTERM save
    and raise Terminated at the next step boundary."""
    checkpoints = checkpoints or Checkpoints()
    seeds, batch_size, bin_size = spec["seeds"], spec["batch_size"], spec["bin_size"]
    if bin_size % batch_size or spec["examples"] % bin_size:
        raise ConfigError(f"bin_size {bin_size} must be a multiple of batch_size {batch_size} and divide "
                          f"examples {spec['examples']}")
    device = resolve_device(spec["device"])
    # Confident softmax outputs leave subnormal floats in the gradients, which make CPU arithmetic ~50x slower;
    # flushing them to zero changes values below 1.2e-38 only (GPUs flush them in most kernels too).
    torch.set_flush_denormal(True)
    benchmark = build_benchmark(spec["benchmark"], spec["benchmark_args"], seeds, device, data_path)
    # The MLP's CPU kernels serve every CPU run at batch 1 (whatever its number of seeds, so a seed's numbers never
    # depend on the size of its block); larger batches are BLAS's.
    input_shape, outputs = benchmark_shapes(spec["benchmark"], spec["benchmark_args"])
    model = build_model(spec["model"], input_shape, outputs, seeds, "online",
                        row_kernels=device.type == "cpu" and batch_size == 1).to(device)
    learner = build_learner(spec["method"], model, seeds, spec["hparams"])
    # The MLP's fast path (a model capability): its hand-derived backward pass, fused with plain SGD's update where
    # the optimizer is plain SGD; every other model trains through autograd.
    hand_derived = hasattr(model, "backward_from_output_grad")
    fused_sgd = plain_sgd_hyperparameters(learner.optimizer) if hand_derived else None
    recorder = Recorder(seeds)
    online_metric = ONLINE_METRIC[spec["loss"]]
    task_length = benchmark.examples_per_task if spec.get("probe") else None
    bin_total = torch.zeros(len(seeds), device=device)
    diverged_at = torch.full((len(seeds),), -1, dtype=torch.long)
    state = TrainingState(model, learner, benchmark, recorder=recorder, bin_total=bin_total,
                          diverged_at=diverged_at)

    def train_step(batch) -> None:
        """One step of the step-by-step path: forward, loss, update and the method's hook; the online metric (of
        the batch before its update) into the bin."""
        inputs, targets = batch
        if hand_derived:
            output = model(inputs)
            loss, output_grad = loss_and_output_grad(output, targets, spec["loss"])
        else:
            output, loss = autograd_step(model, learner.optimizer, inputs, targets, spec["loss"])
        if online_metric == "squared_error":
            bin_total.add_(loss)
        else:
            bin_total.add_((output.argmax(dim=-1) == targets).float().mean(dim=1))
        if fused_sgd:
            model.sgd_step_from_output_grad(output_grad, *fused_sgd)
        elif hand_derived:
            model.backward_from_output_grad(output_grad)
            learner.optimizer.step()
        if learner.after_step is not None:
            learner.after_step(model.features)

    first_step = 0
    saved = checkpoints.resume(spec)
    if saved is not None:
        state.load_state_dict(saved["state"])
        first_step = saved["step"]
    steps_per_task = benchmark.examples_per_task // batch_size if benchmark.examples_per_task else None
    checkpoints.start(first_step, steps_per_task)

    # Plain SGD or Adam at batch 1 on a network that the kernels train whole runs many steps per call
    # (`SeedMLP.train_steps`, or the method's own `train_steps` where it has an after_step hook: CBP, Shrink &
    # Perturb): every step up to the next point where the loop looks (a bin's end, a probe, a check).
    adam = plain_adam_hyperparameters(learner.optimizer) if hand_derived else None
    method_steps = learner.train_steps if fused_sgd else None
    steps_in_kernels = (batch_size == 1 and hasattr(model, "train_steps") and model.trains_steps_in_kernels(spec["loss"])
                        and ((fused_sgd or adam) is not None and learner.after_step is None or method_steps is not None))
    steps = spec["examples"] // batch_size
    bin_steps = bin_size // batch_size
    binned = first_step * batch_size // bin_size * bin_size
    with checkpoints.stopping_on_sigterm(), tqdm(
            total=spec["examples"], initial=binned, unit="ex", unit_scale=True, disable=not progress, mininterval=5,
            desc=f"{spec['experiment']}/{spec['run']} seeds {seeds[0]}-{seeds[-1]}", file=sys.stderr) as bar:
        step = first_step
        while step < steps:
            seen = step * batch_size
            if step >= checkpoints.next_check:
                checkpoints.at_step(step, seen, state.state_dict)
            if task_length and seen % task_length == 0:
                probe(model, benchmark.peek(spec["probe"]["size"]), recorder, seen, diverged=diverged_at >= 0)
            if steps_in_kernels:
                stops = [(step // bin_steps + 1) * bin_steps, checkpoints.next_check]
                if task_length:
                    stops.append((step // steps_per_task + 1) * steps_per_task)
                count = int(min(stops)) - step
                inputs, targets = benchmark.next_batch(count)
                if method_steps:
                    method_steps(model, inputs, targets, spec["loss"], bin_total, *fused_sgd)
                elif adam:
                    taken, pairs = adam_moments(learner.optimizer)
                    model.train_steps(inputs, targets, spec["loss"], bin_total, adam[0], adam=(*adam[1:], taken, pairs))
                    for moments in learner.optimizer.state.values():
                        moments["step"] += count
                else:
                    model.train_steps(inputs, targets, spec["loss"], bin_total, *fused_sgd)
                step += count
            else:
                step += 1
                train_step(benchmark.next_batch(batch_size))
            seen = step * batch_size
            if seen % bin_size == 0:
                value = bin_total / bin_steps
                newly = ((~torch.isfinite(value)).cpu() | nonfinite_seeds(model)) & (diverged_at < 0)
                diverged_at[newly] = seen
                recorder.add(seen, online_metric, torch.where(diverged_at.to(device) >= 0, torch.nan, value))
                bin_total.zero_()
                bar.update(bin_size)
                if bool((diverged_at >= 0).all()):
                    break        # every seed has diverged: nothing left to learn
    recorder.add(spec["examples"], "diverged", (diverged_at >= 0).double())
    recorder.add(spec["examples"], "diverged_at", diverged_at.double())
    return recorder.frame(spec)
