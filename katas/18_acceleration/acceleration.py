# KATA: replace every `raise NotImplementedError` below with your implementation.
# Generated from reference/18_acceleration/acceleration.py by `kata stubs`; your edits are never overwritten.
"""Module 18 - Acceleration: the same answers, fewer passes over memory.

A modern CPU does a multiply-add in well under a nanosecond, but fetching a float that is not in
cache costs ~100 ns. Most "slow" numerical code is slow because it moves data, not because it
computes. This module gives tinytorch four classic ways to move less (or to move it in bigger,
cheaper pieces), each checked against its plain version:

    pairwise_sq_dists_loops(x, y)      given: the plain Python double loop
    pairwise_sq_dists(x, y)            vectorisation: the same numbers by numpy broadcasting
    matmul_loops(a, b)                 given: the plain triple loop
    blocked_matmul(a, b, block=64)     cache blocking: C[i:i+B, j:j+B] += A[i:i+B, k:k+B] @ B[k:k+B, j:j+B]
    fused_bias_gelu(x, bias)           operator fusion: tanh-GELU(x + bias) as ONE op with its own backward
    fused_softmax_cross_entropy(logits, target)
                                       operator fusion: mean cross-entropy whose backward is
                                       (softmax - onehot) / N from the saved softmax
    to_half(params), matmul_fp16(a, b) mixed precision: float16 storage, float32 accumulation
    GradScaler                         dynamic loss scaling with torch.amp.GradScaler's rules

Two new ops register their backward rules through module 05's `register_backward` hook:
"fused_bias_gelu" (inputs x, bias) and "fused_softmax_cross_entropy" (inputs logits, target).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from tinytorch.autograd import register_backward
from tinytorch.tensor import FLOAT_DTYPES, Tensor

GELU_C = math.sqrt(2.0 / math.pi)  # tanh-GELU: 0.5 u (1 + tanh(GELU_C (u + 0.044715 u^3)))
GELU_A = 0.044715

# ----------------------------------------------------------------------------
# Helpers (given)
# ----------------------------------------------------------------------------


def _matrix(x: Any, what: str) -> np.ndarray:
    """x as a 2-D float array; anything else is a ValueError naming `what` and the shape."""
    array = np.asarray(x.data if isinstance(x, Tensor) else x)
    if array.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D matrix, got shape {array.shape}")
    if array.dtype.kind != "f":
        raise TypeError(f"{what}: expected float values, got dtype {array.dtype}")
    return array


def _float_tensor(x: Any, what: str) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{what}: expected float32 or float64 values, got dtype {x.dtype}")
    return x


def pairwise_sq_dists_loops(x: Any, y: Any) -> np.ndarray:
    """The plain version (given): D[i, j] = sum_k (x[i, k] - y[j, k])**2 by Python loops over i and j."""
    x, y = _matrix(x, "pairwise_sq_dists_loops x"), _matrix(y, "pairwise_sq_dists_loops y")
    out = np.empty((x.shape[0], y.shape[0]), dtype=np.result_type(x, y))
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            d = x[i] - y[j]
            out[i, j] = np.sum(d * d)
    return out


def matmul_loops(a: Any, b: Any) -> np.ndarray:
    """The plain version (given): C[i, j] = sum_k A[i, k] B[k, j], one scalar multiply-add at a time."""
    a, b = _matrix(a, "matmul_loops a"), _matrix(b, "matmul_loops b")
    n, m = a.shape
    p = b.shape[1]
    out = np.zeros((n, p), dtype=np.result_type(a, b))
    for i in range(n):
        for j in range(p):
            acc = 0.0
            for k in range(m):
                acc += a[i, k] * b[k, j]
            out[i, j] = acc
    return out


# ----------------------------------------------------------------------------
# Vectorisation and cache blocking
# ----------------------------------------------------------------------------


def pairwise_sq_dists(x: Any, y: Any) -> np.ndarray:
    """D[i, j] = sum_k (x[i, k] - y[j, k])**2 for x (N, K) and y (M, K), with NO Python loop.

    Same numbers as pairwise_sq_dists_loops (differences first, then squares: the expansion
    |x|^2 + |y|^2 - 2 x.y is faster but cancels catastrophically for nearby points).
    Returns (N, M) in the inputs' result dtype. Errors: ValueError for non-2-D inputs or
    different feature counts K (naming both shapes).
    """
    # TODO: validate (use _matrix), then broadcast x[:, None, :] - y[None, :, :] (N, M, K),
    #       square and sum over the last axis.
    raise NotImplementedError('pairwise_sq_dists: your turn - see the TODOs above')


def blocked_matmul(a: Any, b: Any, block: int = 64) -> np.ndarray:
    """C = A @ B for A (N, K) and B (K, M), computed tile by tile.

    for i0 in range(0, N, block): for j0 in range(0, M, block): for k0 in range(0, K, block):
        C[i0:i0+block, j0:j0+block] += A[i0:i0+block, k0:k0+block] @ B[k0:k0+block, j0:j0+block]
    Each tile product is one np.matmul call on block x block pieces that fit in cache; edge tiles
    are smaller when a side is not a multiple of block. Accumulate into a C of the inputs'
    result dtype (np.result_type(a, b)). Equals a @ b up to summation order.
    Errors: ValueError for non-2-D inputs, inner dimensions that differ (naming both shapes),
    or a block that is not a positive integer.
    """
    # TODO: 1. Validate block (an int >= 1, not a bool), the inputs (use _matrix) and K == K'.
    # TODO: 2. C = np.zeros((N, M), dtype=np.result_type(a, b)); the three loops above; slices
    #          past the end are simply shorter (numpy clips them).
    raise NotImplementedError('blocked_matmul: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Operator fusion
# ----------------------------------------------------------------------------


def fused_bias_gelu(x: Any, bias: Any) -> Tensor:
    """tanh-GELU(x + bias) as ONE op: y = 0.5 u (1 + tanh(c (u + 0.044715 u^3))), u = x + bias,
    c = sqrt(2 / pi) (torch's F.gelu(x + bias, approximate="tanh")).

    x: (..., F) float; bias: (F,) of the same dtype, broadcast over the leading dimensions.
    Unfused, `gelu(x + bias)` records two ops and keeps u alive for backward; fused, one op
    records (x, bias) and its backward recomputes u (cheap) instead of storing it.
    Returns x's shape and dtype. Op "fused_bias_gelu", inputs (x, bias).
    Errors: ValueError if bias is not 1-D of length x.shape[-1]; TypeError for non-float data
    or x and bias of different dtypes.
    """
    x, bias = _float_tensor(x, "fused_bias_gelu x"), _float_tensor(bias, "fused_bias_gelu bias")
    # TODO: 1. Validate: x.ndim >= 1, bias.shape == (x.shape[-1],), same dtype (TypeError).
    # TODO: 2. u = x.data + bias.data; y = 0.5 * u * (1 + np.tanh(GELU_C * (u + GELU_A * u**3)))
    #          (in x's dtype); record with Tensor.from_op(y, "fused_bias_gelu", (x, bias)).
    raise NotImplementedError('fused_bias_gelu: your turn - see the TODOs above')


@register_backward("fused_bias_gelu")
def _fused_bias_gelu_backward(grad, out, inputs, saved):
    # u = x + bias recomputed; t = tanh(c (u + a u^3));
    # dy/du = 0.5 (1 + t) + 0.5 u (1 - t^2) c (1 + 3 a u^2). grad_x = g dy/du; grad_bias sums it
    # over every leading dimension.
    raise NotImplementedError('_fused_bias_gelu_backward: your turn - see the TODOs above')


def fused_softmax_cross_entropy(logits: Any, target: Any) -> Tensor:
    """Mean cross-entropy of logits (N, C) against integer classes target (N,), as ONE op.

    loss = mean_i (logsumexp(logits[i]) - logits[i, target[i]]), each row shifted by ITS OWN
    maximum (rows far apart must not underflow to 0/0). The forward saves the softmax p it
    already computed, so the backward is one pass: d loss / d logits = (p - onehot(target)) / N.
    Unfused (log_softmax then a gather, each with a backward) the logits are read ~3 times more.
    Returns a 0-D Tensor of the logits' dtype. Op "fused_softmax_cross_entropy", inputs
    (logits, target), saved probs.
    Errors: ValueError unless logits is 2-D with N >= 1 and target has shape (N,); TypeError for
    a non-integer target; IndexError for a class index outside [0, C) (naming it).
    """
    logits = _float_tensor(logits, "fused_softmax_cross_entropy logits")
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target))
    # TODO: 1. Validate as above (check EVERY target value, not only the first).
    # TODO: 2. shifted = logits - row max; e = exp(shifted); s = e.sum(1); p = e / s;
    #          loss = mean(log(s) - shifted[i, target[i]]).
    # TODO: 3. Tensor.from_op(loss (logits' dtype, 0-D), "fused_softmax_cross_entropy", (logits, target), probs=p).
    raise NotImplementedError('fused_softmax_cross_entropy: your turn - see the TODOs above')


@register_backward("fused_softmax_cross_entropy")
def _fused_softmax_cross_entropy_backward(grad, out, inputs, saved):
    # grad_logits = grad * (probs - onehot(target)) / N; the integer target gets no gradient (None).
    raise NotImplementedError('_fused_softmax_cross_entropy_backward: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Mixed precision
# ----------------------------------------------------------------------------


def to_half(params: Iterable[Any]) -> list[np.ndarray]:
    """float16 copies of each parameter's values (Tensors or arrays), in order: the half-size
    weights a mixed-precision step computes with, while the float32 originals stay the master
    copy the optimizer updates (small updates would round away in float16: 1 + 1e-4 == 1).
    Values beyond float16's range (65504) become +-inf, as torch's .half(). Errors: TypeError
    for non-float data."""
    # TODO: for each p: array = p.data if a Tensor else np.asarray(p); check float; astype(np.float16).
    raise NotImplementedError('to_half: your turn - see the TODOs above')


def matmul_fp16(a: Any, b: Any) -> np.ndarray:
    """A @ B for float16 matrices with float32 accumulation: the float32 result of multiplying
    the float16 values exactly (each float16 product is exact in float32) and summing in float32,
    as tensor cores do. Summing in float16 instead loses everything beyond ~3 digits.
    Errors: TypeError unless both are float16; ValueError for shapes as blocked_matmul."""
    # TODO: check dtypes are float16, shapes match; upcast both to float32, then np.matmul.
    raise NotImplementedError('matmul_fp16: your turn - see the TODOs above')


class GradScaler:
    """Dynamic loss scaling (torch.amp.GradScaler's rules, on tinytorch Tensors and optimizers).

    float16 gradients underflow to 0 below ~6e-8; multiplying the loss by a large `scale` before
    backward() lifts them into range. Before the optimizer step the gradients are divided by the
    scale again (unscale_). If any gradient is inf or NaN the scale was too large: the step is
    SKIPPED and the scale multiplied by backoff_factor. After growth_interval consecutive
    finite steps the scale is multiplied by growth_factor (unless that would overflow float32).

        scaler.scale(loss).backward()
        scaler.step(optimizer)        # unscale_ (if not done yet), then optimizer.step() unless inf/nan
        scaler.update()               # backoff or growth

    The scale is a float32 value (as torch's); unscaling multiplies each grad by the float32
    reciprocal 1 / scale. With enabled=False every method is a pass-through (scale() returns the
    loss, step() calls optimizer.step(), update() does nothing).
    """

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        # TODO: validate (ValueError naming the setting): init_scale positive and finite, growth_factor > 1,
        #       backoff_factor in (0, 1), growth_interval an int >= 1 (not a bool). Store the scale as
        #       np.float32, the growth tracker 0, and a per-optimizer dict {id(optimizer): {"unscaled",
        #       "found_inf", "stepped"}} (self._per_optimizer, read by self._state).
        raise NotImplementedError('GradScaler.__init__: your turn - see the TODOs above')

    def get_scale(self) -> float:
        """The current scale as a Python float (1.0 when disabled)."""
        raise NotImplementedError('GradScaler.get_scale: your turn - see the TODOs above')

    def scale(self, loss: Any) -> Any:
        """loss * scale as a Tensor op (so backward() produces scaled gradients); the loss if disabled."""
        # TODO: multiply by a Tensor holding the scale in the loss's dtype (a recorded op, so backward sees it).
        raise NotImplementedError('GradScaler.scale: your turn - see the TODOs above')

    def _state(self, optimizer: Any) -> dict[str, Any]:
        return self._per_optimizer.setdefault(id(optimizer), {"unscaled": False, "found_inf": False,
                                                              "stepped": False})

    def unscale_(self, optimizer: Any) -> None:
        """Divide every gradient of optimizer's parameters by the scale, in place (grad * float32(1 / scale)),
        and remember whether any of them is inf or NaN. A second call for the same optimizer before
        update() is a RuntimeError ("unscale_() has already been called on this optimizer since the
        last update()"). Parameters whose grad is None are skipped."""
        # TODO: 1. Disabled: return. Already unscaled for this optimizer (self._state): RuntimeError.
        # TODO: 2. inv = np.float32(1) / self._scale; for every p in optimizer.param_groups[*]["params"]
        #          with a grad: p.grad.data *= inv (keep its dtype); found_inf |= not all finite.
        raise NotImplementedError('GradScaler.unscale_: your turn - see the TODOs above')

    def step(self, optimizer: Any) -> Any:
        """unscale_(optimizer) unless already done, then optimizer.step() unless an inf/NaN was found.
        Returns what optimizer.step() returned, or None for a skipped step. A second step() for the
        same optimizer before update() is a RuntimeError."""
        # TODO: disabled: just optimizer.step(). Else use self._state(optimizer): refuse a second step,
        #       unscale_ if not yet done, mark "stepped", skip (None) if "found_inf".
        raise NotImplementedError('GradScaler.step: your turn - see the TODOs above')

    def update(self) -> None:
        """Once per iteration, after step(): if any optimizer found inf/NaN, scale *= backoff_factor and
        the growth tracker restarts at 0; else the tracker counts one more finite step, and when it
        reaches growth_interval the scale *= growth_factor (kept only if finite) and the tracker
        restarts. All in float32. Calling update() when no step()/unscale_() happened since the last
        update() is a RuntimeError. Disabled: does nothing."""
        # TODO: found = any found_inf in self._per_optimizer (none recorded: RuntimeError);
        #       the rule above; then clear self._per_optimizer.
        raise NotImplementedError('GradScaler.update: your turn - see the TODOs above')

    def state_dict(self) -> dict[str, Any]:
        """{"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"} (torch's keys);
        {} when disabled."""
        # TODO: the scale as a Python float, the rest as stored.
        raise NotImplementedError('GradScaler.state_dict: your turn - see the TODOs above')

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what state_dict() returned; an empty dict is a RuntimeError (saved while disabled)."""
        raise NotImplementedError('GradScaler.load_state_dict: your turn - see the TODOs above')
