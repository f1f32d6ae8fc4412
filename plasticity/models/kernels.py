"""CPU kernels for online training of wide MLPs: forward and fused backward + SGD that touch only nonzero inputs.

At batch 1 a wide layer is bound by memory traffic, not arithmetic: unfused PyTorch streams the weight matrix
four times per step (forward, backward matrix-vector product, read and write of the update) and autograd plus
`torch.optim.SGD` six. Two observations cut that to about 1.5 passes over *half* the matrix:

- An input that is zero (a ReLU unit that is off, a black MNIST pixel) contributes nothing to the forward pass
  and receives no weight update, so its row of the input-major weight matrix need not be read at all.
- The backward product, the SGD update and CBP's weight magnitudes of a row can be computed in one pass over it
  while it is in L1 cache: the gradient for the input (with the pre-update weights, as autograd computes it),
  then the update in place.

Weights are stored input-major: `weight_t[s, i]` is the row of seed s's outgoing weights of input i
(the `SeedLinear.weight` parameter is the transposed view (S, out, in) of this storage). Every loop over `i`
or the batch runs in a fixed order, so results do not depend on which seeds share a block; reductions over a
row (the backward dot products) let LLVM reassociate (`fastmath`), which, like BLAS, makes the last bits
depend on the CPU's vector width.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

# Reassociation lets the dot products vectorise; no-NaN/no-inf flags are excluded because diverging seeds
# must propagate NaN and inf into the recorded metrics.
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}


# Row loops: each streams one row of weights while it is in L1 cache. Loop-invariant choices are made outside
# them, so LLVM vectorises every one.
_row_loop = njit(inline="always", fastmath=FASTMATH)


@_row_loop
def _dot(row, d, total):
    for j in range(row.shape[0]):
        total += row[j] * d[j]
    return total


@_row_loop
def _update(row, d, scale):
    for j in range(row.shape[0]):
        row[j] -= scale * d[j]


@_row_loop
def _dot_and_update(row, d, scale, total):
    """row . d with the old weights, then row -= scale * d, in one pass."""
    for j in range(row.shape[0]):
        old = row[j]
        total += old * d[j]
        row[j] = old - scale * d[j]
    return total


@_row_loop
def _dot_and_update_tracked(row, d, scale, col_change, total, row_sum):
    """_dot_and_update that also returns the new sum of |row| and adds each entry's change of |w| to
    col_change."""
    for j in range(row.shape[0]):
        old = row[j]
        total += old * d[j]
        new = old - scale * d[j]
        row[j] = new
        row_sum += abs(new)
        col_change[j] += abs(new) - abs(old)
    return total, row_sum


@_row_loop
def _four_dots_and_updates_tracked(r0, r1, r2, r3, d, s0, s1, s2, s3, col_change, zero):
    """_dot_and_update_tracked on four rows in one pass: d and col_change are loaded and stored once for the four,
    which is what limits the one-row loop (it is bound by the L1 traffic of col_change, not by the rows)."""
    t0 = t1 = t2 = t3 = zero
    a0 = a1 = a2 = a3 = zero
    for j in range(d.shape[0]):
        dj = d[j]
        o0, o1, o2, o3 = r0[j], r1[j], r2[j], r3[j]
        t0 += o0 * dj
        t1 += o1 * dj
        t2 += o2 * dj
        t3 += o3 * dj
        n0, n1, n2, n3 = o0 - s0 * dj, o1 - s1 * dj, o2 - s2 * dj, o3 - s3 * dj
        r0[j], r1[j], r2[j], r3[j] = n0, n1, n2, n3
        a0 += abs(n0)
        a1 += abs(n1)
        a2 += abs(n2)
        a3 += abs(n3)
        col_change[j] += ((abs(n0) - abs(o0)) + (abs(n1) - abs(o1))) + ((abs(n2) - abs(o2)) + (abs(n3) - abs(o3)))
    return t0, t1, t2, t3, a0, a1, a2, a3


@_row_loop
def _update_tracked_rows(weight_t, x, d, lr, rows, grad_in, row_abs_sum, col_change, zero):
    """Update the given rows (all of nonzero inputs) of one seed, four at a time, writing each one's dot product
    with the old weights into grad_in, its new sum of |row| into row_abs_sum and the change of |w| per column into
    col_change."""
    first = 0
    while first + 4 <= rows.shape[0]:
        i0, i1, i2, i3 = rows[first], rows[first + 1], rows[first + 2], rows[first + 3]
        t0, t1, t2, t3, a0, a1, a2, a3 = _four_dots_and_updates_tracked(
            weight_t[i0], weight_t[i1], weight_t[i2], weight_t[i3], d,
            lr * x[i0], lr * x[i1], lr * x[i2], lr * x[i3], col_change, zero)
        grad_in[i0], grad_in[i1], grad_in[i2], grad_in[i3] = t0, t1, t2, t3
        row_abs_sum[i0], row_abs_sum[i1], row_abs_sum[i2], row_abs_sum[i3] = a0, a1, a2, a3
        first += 4
    for k in range(first, rows.shape[0]):
        i = rows[k]
        grad_in[i], row_abs_sum[i] = _dot_and_update_tracked(weight_t[i], d, lr * x[i], col_change, zero, zero)


@njit(inline="always", fastmath=FASTMATH)
def _rows_product(weight_t, bias, rows, values, o):
    """o = bias + sum_k values[k] * weight_t[rows[k]]: only the weight rows of nonzero inputs, four rows per pass
    over `o` (which halves the loads and stores of the output), rows in the given order."""
    o[:] = bias
    count = rows.shape[0]
    first = 0
    while first + 4 <= count:
        x0, x1, x2, x3 = values[first], values[first + 1], values[first + 2], values[first + 3]
        r0, r1, r2, r3 = weight_t[rows[first]], weight_t[rows[first + 1]], weight_t[rows[first + 2]], \
            weight_t[rows[first + 3]]
        for j in range(o.shape[0]):
            o[j] += (x0 * r0[j] + x1 * r1[j]) + (x2 * r2[j] + x3 * r3[j])
        first += 4
    for k in range(first, count):
        xi, row = values[k], weight_t[rows[k]]
        for j in range(o.shape[0]):
            o[j] += xi * row[j]


@njit(inline="always", fastmath=FASTMATH)
def _forward_one(weight_t, bias, x, o, active, values):
    """o = bias + sum_i x[i] * weight_t[i] for one seed's one example, reading only the rows of nonzero inputs;
    `active` and `values` are scratch of len(x) (the nonzero inputs' indices and values, in order)."""
    count = 0
    for i in range(x.shape[0]):
        if x[i] != 0.0:
            active[count] = i
            values[count] = x[i]
            count += 1
    _rows_product(weight_t, bias, active[:count], values[:count], o)


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def linear_forward(weight_t, bias, x, out):
    """out[s, b] = bias[s] + sum_i x[s, b, i] * weight_t[s, i], reading only the rows of nonzero inputs."""
    active = np.empty(x.shape[2], dtype=np.int64)
    values = np.empty(x.shape[2], dtype=x.dtype)
    for s in range(x.shape[0]):
        for b in range(x.shape[1]):
            _forward_one(weight_t[s], bias[s], x[s, b], out[s, b], active, values)


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def sparse_forward(weight_t, bias, starts, rows, values, out):
    """`linear_forward` for inputs given by their nonzero entries (made once for inputs used many times): example
    b of seed s has rows[s, starts[s, b]:starts[s, b + 1]] (ascending) with those values; the same numbers."""
    for s in range(out.shape[0]):
        for b in range(out.shape[1]):
            first, end = starts[s, b], starts[s, b + 1]
            _rows_product(weight_t[s], bias[s], rows[s, first:end], values[s, first:end], out[s, b])


@njit(inline="always", fastmath=FASTMATH)
def _backward_sgd_one(weight_t, bias, x, d, lr, need_grad, grad_in, row_abs_sum, col_abs_sum, col_change,
                      tracked_rows, zero):
    """linear_backward_sgd for one seed: x (in,), d (out,), need_grad (in,) or empty, grad_in (in,),
    row_abs_sum (in,) and col_abs_sum (out,) or empty; col_change (out,) and tracked_rows (in,) are scratch."""
    track = row_abs_sum.shape[0] > 0
    backward = need_grad.shape[0] > 0
    bias -= lr * d
    count = 0
    for i in range(x.shape[0]):
        row, scale = weight_t[i], lr * x[i]
        want_dot = backward and need_grad[i]
        total = zero
        if scale == 0.0:                              # no update for this row
            if want_dot:
                total = _dot(row, d, zero)
        elif track:         # updated below, four rows at a time (with their dot products, wanted or not)
            tracked_rows[count] = i
            count += 1
            continue
        elif want_dot:
            total = _dot_and_update(row, d, scale, zero)
        else:
            _update(row, d, scale)
        if backward:
            grad_in[i] = total
    if track:
        col_change[:] = zero
        _update_tracked_rows(weight_t, x, d, lr, tracked_rows[:count], grad_in, row_abs_sum, col_change, zero)
        col_abs_sum += col_change


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def linear_backward_sgd(weight_t, bias, x, delta, lr, need_grad, grad_in, row_abs_sum, col_abs_sum):
    """Backward pass of one layer at batch 1 fused with SGD (no momentum or weight decay), in place.

    x (S, 1, in), delta (S, 1, out): the layer's input and d(loss)/d(layer output). For every input i with
    need_grad[s, i] it writes grad_in[s, 0, i] = weight_t[s, i] . delta[s, 0] with the weights *before* the
    update (zero elsewhere; pass an empty need_grad for the first layer), and updates the rows of nonzero
    inputs: weight_t[s, i] -= lr * x[s, 0, i] * delta[s, 0]; bias[s] -= lr * delta[s, 0].

    Unless they are empty, row_abs_sum (S, in) and col_abs_sum (S, out), both float64, are kept equal to the
    sums of |weight_t| over each row and column: an updated row is re-summed; each column gets this step's
    change of its updated entries (summed in the weights' precision, added once per step in float64, so the
    running sum does not drift). They give CBP its weight magnitudes without a pass over the whole matrix.
    With them, grad_in is written for every input, wanted or not: give it the whole (S, 1, in).
    """
    zero = np.zeros(1, dtype=weight_t.dtype)[0]      # accumulate in the weights' precision, as BLAS does
    col_change = np.empty(weight_t.shape[2], dtype=weight_t.dtype)
    tracked_rows = np.empty(x.shape[2], dtype=np.int64)
    no_rows = np.empty(0, dtype=need_grad.dtype)
    no_sums = np.empty(0, dtype=row_abs_sum.dtype)
    for s in range(x.shape[0]):
        tracked = row_abs_sum.shape[0] > 0
        _backward_sgd_one(weight_t[s], bias[s], x[s, 0], delta[s, 0], lr,
                          need_grad[s] if need_grad.shape[0] > 0 else no_rows, grad_in[s, 0],
                          row_abs_sum[s] if tracked else no_sums, col_abs_sum[s] if tracked else no_sums,
                          col_change, tracked_rows, zero)


# The hidden activations `train_steps` computes itself, by code: each with its value and its derivative written as
# SeedMLP's Pointwise activations write them (plasticity.activations.POINTWISE), so that a step takes the same
# IEEE operations as the step-by-step path. ReLU keeps NaN (a diverging seed must stay diverged).
STEP_ACTIVATIONS = {"relu": 0, "tanh": 1, "linear": 2}
# The most layers `train_steps` trains: its tuples have this length whatever the depth (one compiled kernel).
MAX_STEP_LAYERS = 8


@njit(inline="always")
def _activate(code, z, h, derivative):
    for j in range(z.shape[0]):
        if code == 0:
            h[j] = z[j] if not z[j] <= 0.0 else 0.0
            derivative[j] = 1.0 if z[j] > 0.0 else 0.0
        elif code == 1:
            h[j] = np.tanh(z[j])
            derivative[j] = 1.0 - h[j] * h[j]
        else:
            h[j] = z[j]
            derivative[j] = 1.0


@njit(inline="always")
def _cross_entropy_grad(z, label, grad):
    """Writes d(loss)/dz into grad (log-softmax's gradient: softmax minus the one-hot label); returns whether the
    largest output (the first, on ties, as torch.argmax) is the label."""
    top = 0
    for j in range(z.shape[0]):
        if z[j] > z[top] or (np.isnan(z[j]) and not np.isnan(z[top])):
            top = j
    largest = z[top]
    total = 0.0
    for j in range(z.shape[0]):
        total += np.exp(z[j] - largest)
    shift = largest + np.log(np.float32(total))
    for j in range(z.shape[0]):
        grad[j] = np.exp(z[j] - shift)
    grad[label] -= 1.0
    return top == label


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")   # numpy's: a division that may be by zero vectorises
def _adam_layer(param, exp_avg, exp_avg_sq, x, d, beta1, beta2, rest1, rest2, step_size, root_correction, eps):
    """Adam's update of one seed's input-major (in, out) weights whose gradient is the outer product x·dᵀ of one
    example (zero in the rows of zero inputs, whose moments still decay and whose weights still move). Indexes the
    matrices whole rather than slicing a view per row: a layer's rows are short (its units)."""
    for i in range(param.shape[0]):
        xi = x[i]
        for j in range(param.shape[1]):
            grad = xi * d[j]
            exp_avg[i, j] = beta1 * exp_avg[i, j] + rest1 * grad
            exp_avg_sq[i, j] = beta2 * exp_avg_sq[i, j] + rest2 * grad * grad
            param[i, j] -= step_size * exp_avg[i, j] / (np.sqrt(exp_avg_sq[i, j]) / root_correction + eps)


@njit(inline="always")
def step_scratch(layers, weights, inputs):
    """The buffers one `step_one_seed` needs, made once per call of a kernel that takes many steps: per layer its
    pre-activations, activations, derivatives and deltas (`hidden[layer]` holds the step's hidden features), then
    row-sized scratch."""
    widest = inputs.shape[2]
    for layer in range(layers):
        widest = max(widest, weights[layer].shape[2])
    pre = [np.empty(weights[layer].shape[2], dtype=inputs.dtype) for layer in range(layers)]
    hidden = [np.empty(weights[layer].shape[2], dtype=inputs.dtype) for layer in range(layers)]
    derivative = [np.empty(weights[layer].shape[2], dtype=inputs.dtype) for layer in range(layers)]
    delta = [np.empty(weights[layer].shape[2], dtype=inputs.dtype) for layer in range(layers)]
    rows = (np.empty(widest, dtype=inputs.dtype), np.empty(widest, dtype=np.int64), np.empty(widest, dtype=np.int64),
            np.empty(widest, dtype=inputs.dtype), np.empty(widest, dtype=np.bool_), np.empty(widest, dtype=inputs.dtype))
    return pre, hidden, derivative, delta, rows


@njit(inline="always", fastmath=FASTMATH, error_model="numpy")
def step_one_seed(s, step, layers, weights, biases, moments, activation, inputs, labels, targets, hyper, typed,
                  metric_total, scratch, row_sums, col_sums):
    """One training step of seed s on example `step` (see `train_steps`). With non-empty row_sums and col_sums
    (per layer (S, in) and (S, out), float64) the plain SGD update keeps them equal to the sums of |weight| over
    each row and column, as `linear_backward_sgd` does."""
    lr, keep, beta1, beta2, eps, rest1, rest2 = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4], hyper[5], hyper[6]
    pre, hidden, derivative, delta, (grad_in, active, tracked_rows, col_change, need_grad, values) = scratch
    zero = np.zeros(1, dtype=inputs.dtype)[0]
    no_rows = np.empty(0, dtype=np.bool_)
    no_sums = np.empty(0, dtype=np.float64)
    adam = moments[0][0].shape[0] > 0
    decay = keep != 1.0
    track = row_sums[0].shape[0] > 0
    x = inputs[s, step]
    for layer in range(layers):
        _forward_one(weights[layer][s], biases[layer][s], x, pre[layer], active, values)
        if layer < layers - 1:
            _activate(activation, pre[layer], hidden[layer], derivative[layer])
            x = hidden[layer]
    out, grad = pre[layers - 1], delta[layers - 1]
    if labels.shape[0] > 0:
        correct = _cross_entropy_grad(out, labels[s, step], grad)
        metric_total[s] += 1.0 if correct else 0.0
    else:
        loss = zero
        outputs = np.float32(out.shape[0])
        scale = np.float32(2.0) / outputs
        for j in range(out.shape[0]):
            error = out[j] - targets[s, step, j]
            loss += error * error
            grad[j] = error * scale
        metric_total[s] += loss / outputs
    for layer in range(layers - 1, -1, -1):
        below = hidden[layer - 1] if layer > 0 else inputs[s, step]
        n_in = below.shape[0]
        if layer > 0:
            for i in range(n_in):
                need_grad[i] = derivative[layer - 1][i] != 0.0
        weight, bias, wants = weights[layer][s], biases[layer][s], need_grad[:n_in] if layer > 0 else no_rows
        d = delta[layer]
        if adam or decay:
            for i in range(wants.shape[0]):
                grad_in[i] = _dot(weight[i], d, zero) if wants[i] else zero
        if adam:
            _adam_layer(weight, moments[0][layer][s], moments[1][layer][s], below, d, beta1, beta2, rest1,
                        rest2, typed[0], typed[1], eps)
            _adam_layer(bias.reshape(1, -1), moments[2][layer][s].reshape(1, -1),
                        moments[3][layer][s].reshape(1, -1), typed[2:], d, beta1, beta2, rest1, rest2,
                        typed[0], typed[1], eps)
        else:
            if decay:
                weight *= keep
                bias *= keep
                wants = no_rows
            _backward_sgd_one(weight, bias, below, d, lr, wants, grad_in[:n_in],
                              row_sums[layer][s] if track else no_sums, col_sums[layer][s] if track else no_sums,
                              col_change[:d.shape[0]], tracked_rows, zero)
        if layer > 0:
            for i in range(n_in):
                delta[layer - 1][i] = grad_in[i] * derivative[layer - 1][i]


@njit(inline="always")
def adam_step_factors(typed, lr, beta1, beta2, first_step, step):
    """torch.optim.Adam's bias corrections of step `first_step + step + 1`, from the step count in float64, into
    typed[0:2] (the weights' precision), and 1 (the bias's "input") into typed[2]."""
    count = first_step + step + 1
    typed[0] = lr / (1.0 - np.float64(beta1) ** count)
    typed[1] = np.sqrt(1.0 - np.float64(beta2) ** count)
    typed[2] = 1.0


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def train_steps(layers, weights, biases, moments, activation, inputs, labels, targets, hyper, first_step, row_sums,
                col_sums, metric_total):
    """Online training at batch 1 for all of `inputs` in one call: per step and seed, the forward of
    `linear_forward`, the loss's output gradient, then down the layers the backward products (with the weights
    before the update) and the layer's update.

    weights, biases: for each of the `layers` layers the input-major (S, in, out) weights and (S, out) biases,
    updated in place, then empty arrays up to MAX_STEP_LAYERS entries (as in `moments`);
    activation: a code of STEP_ACTIVATIONS for every hidden layer; inputs (S, n, in). Cross-entropy when `labels`
    (S, n) is non-empty (metric: 1 where the output's argmax is the label, else 0), else squared error against
    `targets` (S, n, out) averaged over outputs (metric: that loss). Each step's metric, measured before its
    update, is added to metric_total (S,) in turn, as the step-by-step path accumulates its bins.

    The update: with empty `moments`, plain SGD (torch.optim.SGD: p <- keep·p - lr·grad, keep = 1 - lr·wd) fused
    with the backward pass as in `linear_backward_sgd`, reading only the weight rows of nonzero inputs; every
    weight is shrunk first where keep != 1. With moments (exp_avg and exp_avg_sq of the weights, input-major, and
    of the biases), torch.optim.Adam without weight decay, whose step count before these steps is `first_step`.
    hyper: (lr, keep, beta1, beta2, eps, 1 - beta1, 1 - beta2), in the weights' precision. row_sums, col_sums:
    per layer the float64 sums of |weight| over rows (S, in) and columns (S, out) that plain SGD keeps up to date
    (as `linear_backward_sgd` does), or empty arrays.
    """
    typed = np.zeros(3, dtype=inputs.dtype)     # Adam's step factors in the weights' precision
    scratch = step_scratch(layers, weights, inputs)
    adam = moments[0][0].shape[0] > 0
    for step in range(inputs.shape[1]):
        if adam:
            adam_step_factors(typed, hyper[0], hyper[2], hyper[3], first_step, step)
        for s in range(inputs.shape[0]):
            step_one_seed(s, step, layers, weights, biases, moments, activation, inputs, labels, targets, hyper,
                          typed, metric_total, scratch, row_sums, col_sums)


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def abs_sums(weight_t, row_abs_sum, col_abs_sum):
    """row_abs_sum (S, in) and col_abs_sum (S, out), float64, set to the sums of |weight_t| over each row and
    column in one pass over the weights (the exact start of the sums that `linear_backward_sgd` keeps)."""
    for s in range(weight_t.shape[0]):
        col_abs_sum[s, :] = 0.0
        col = col_abs_sum[s]
        for i in range(weight_t.shape[1]):
            row = weight_t[s, i]
            total = 0.0
            for j in range(row.shape[0]):
                magnitude = np.float64(abs(row[j]))
                total += magnitude
                col[j] += magnitude
            row_abs_sum[s, i] = total


class FillShiftedInputs:
    """First-layer inputs x (S, N, in) most of whose entries equal one value `fill` (black MNIST pixels after
    standardisation), for a layer's product without autograd on the CPU.

    They are kept as the nonzero entries of x − fill (their indices and values per example, found once: the joint
    protocol evaluates the same test images after every iteration), and x Wᵀ = (x − fill) Wᵀ + fill · Σ_i W[:, :, i]
    reads only the weight rows of those entries (`sparse_forward`, the online kernel's row product): for the ~19%
    non-black pixels of MNIST about twice as fast as the dense product, which that evaluation is bound by. The same
    numbers but for float rounding (another order of summation); each seed's are computed on their own, in a fixed
    order.
    """

    def __init__(self, x: torch.Tensor, fill: float):
        if x.device.type != "cpu":
            raise ValueError("FillShiftedInputs runs on the CPU kernels; keep inputs on other devices dense")
        self.fill = fill
        self.shape = tuple(x.shape)
        shifted = x - fill
        nonzero = shifted != 0
        counts = nonzero.sum(2)
        self.starts = torch.zeros(x.shape[0], x.shape[1] + 1, dtype=torch.int64)
        torch.cumsum(counts, dim=1, out=self.starts[:, 1:])
        most = int(self.starts[:, -1].max())
        self.rows = torch.zeros(x.shape[0], most, dtype=torch.int32)
        self.values = torch.zeros(x.shape[0], most, dtype=x.dtype)
        for seed in range(x.shape[0]):
            examples, inputs = nonzero[seed].nonzero(as_tuple=True)      # row-major: by example, then input
            self.rows[seed, :len(inputs)] = inputs.to(torch.int32)
            self.values[seed, :len(inputs)] = shifted[seed, examples, inputs]

    @property
    def density(self) -> float:
        """The fraction of entries that differ from `fill`: the share of the dense product's work left."""
        return self.starts[:, -1].sum().item() / math.prod(self.shape)

    def product(self, weight: torch.Tensor) -> torch.Tensor:
        """x Wᵀ for weight (S, out, in): (S, N, out)."""
        weight = weight.detach()
        seeds, batch, _ = self.shape
        out = self.values.new_empty(seeds, batch, weight.shape[1])
        offset = weight.sum(2).mul_(self.fill)
        sparse_forward(weight.transpose(1, 2).contiguous().numpy(), offset.numpy(), self.starts.numpy(),
                       self.rows.numpy(), self.values.numpy(), out.numpy())
        return out
