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

import numpy as np
import torch
from numba import njit

# Reassociation lets the dot products vectorise; no-NaN/no-inf flags are excluded because diverging seeds
# must propagate NaN and inf into the recorded metrics.
_FASTMATH = {"reassoc", "contract", "arcp", "nsz"}


# Row loops: each streams one row of weights while it is in L1 cache. Loop-invariant choices are made outside
# them, so LLVM vectorises every one.
_row_loop = njit(inline="always", fastmath=_FASTMATH)


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


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def linear_forward(weight_t, bias, x, out):
    """out[s, b] = bias[s] + sum_i x[s, b, i] * weight_t[s, i], reading only the rows of nonzero inputs
    (four rows per pass over `out`, which halves the loads and stores of the output)."""
    seeds, batch, n_in = x.shape
    n_out = weight_t.shape[2]
    active = np.empty(n_in, dtype=np.int64)
    for s in range(seeds):
        for b in range(batch):
            out[s, b, :] = bias[s]
            count = 0
            for i in range(n_in):
                if x[s, b, i] != 0.0:
                    active[count] = i
                    count += 1
            o = out[s, b]
            first = 0
            while first + 4 <= count:
                i0, i1, i2, i3 = active[first], active[first + 1], active[first + 2], active[first + 3]
                x0, x1, x2, x3 = x[s, b, i0], x[s, b, i1], x[s, b, i2], x[s, b, i3]
                r0, r1, r2, r3 = weight_t[s, i0], weight_t[s, i1], weight_t[s, i2], weight_t[s, i3]
                for j in range(n_out):
                    o[j] += (x0 * r0[j] + x1 * r1[j]) + (x2 * r2[j] + x3 * r3[j])
                first += 4
            for k in range(first, count):
                i = active[k]
                xi, row = x[s, b, i], weight_t[s, i]
                for j in range(n_out):
                    o[j] += xi * row[j]


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
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
    """
    seeds, n_in = x.shape[0], x.shape[2]
    track = row_abs_sum.shape[0] > 0
    backward = need_grad.shape[0] > 0
    zero = np.zeros(1, dtype=weight_t.dtype)[0]      # accumulate in the weights' precision, as BLAS does
    col_change = np.empty(weight_t.shape[2], dtype=weight_t.dtype)
    for s in range(seeds):
        d = delta[s, 0]
        bias[s] -= lr * d
        col_change[:] = zero
        for i in range(n_in):
            row, scale = weight_t[s, i], lr * x[s, 0, i]
            want_dot = backward and need_grad[s, i]
            total = zero
            if scale == 0.0:                              # no update for this row
                if want_dot:
                    total = _dot(row, d, zero)
            elif track:         # (the dot product rides along in the same pass even where it is not wanted)
                total, row_abs_sum[s, i] = _dot_and_update_tracked(row, d, scale, col_change, zero, zero)
            elif want_dot:
                total = _dot_and_update(row, d, scale, zero)
            else:
                _update(row, d, scale)
            if backward:
                grad_in[s, 0, i] = total
        if track:
            col_abs_sum[s] += col_change


class FillShiftedInputs:
    """First-layer inputs x (S, N, in) most of whose entries equal one value `fill` (black MNIST pixels after
    standardisation), for a layer's product without autograd on the CPU.

    They are kept as x − fill, exactly zero at those entries, and x Wᵀ = (x − fill) Wᵀ + fill · Σ_i W[:, :, i] reads
    only the weight rows of the other entries (`linear_forward`, the online protocol's kernel):
    for the ~19% non-black pixels of MNIST about twice as fast as the dense product, which the joint protocol's
    evaluation of thousands of test images after every iteration is bound by. The same numbers but for float
    rounding (another order of summation); each seed's are computed on their own, in a fixed order.
    """

    def __init__(self, x: torch.Tensor, fill: float):
        if x.device.type != "cpu":
            raise ValueError("FillShiftedInputs runs on the CPU kernels; keep inputs on other devices dense")
        self.fill = fill
        self.shifted = (x - fill).contiguous()

    @property
    def density(self) -> float:
        """The fraction of entries that differ from `fill`: the share of the dense product's work left."""
        return (self.shifted != 0).float().mean().item()

    def product(self, weight: torch.Tensor) -> torch.Tensor:
        """x Wᵀ for weight (S, out, in): (S, N, out)."""
        weight = weight.detach()
        seeds, batch, _ = self.shifted.shape
        out = self.shifted.new_empty(seeds, batch, weight.shape[1])
        offset = weight.sum(2).mul_(self.fill)
        linear_forward(weight.transpose(1, 2).contiguous().numpy(), offset.numpy(), self.shifted.numpy(),
                               out.numpy())
        return out
