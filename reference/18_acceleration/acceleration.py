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
    # BEGIN SOLUTION
    x, y = _matrix(x, "pairwise_sq_dists x"), _matrix(y, "pairwise_sq_dists y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"pairwise_sq_dists: x {x.shape} and y {y.shape} have different feature counts")
    d = x[:, None, :] - y[None, :, :]
    return np.sum(d * d, axis=-1)
    # END SOLUTION


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
    # BEGIN SOLUTION
    if not isinstance(block, (int, np.integer)) or isinstance(block, bool) or block < 1:
        raise ValueError(f"blocked_matmul: block must be a positive integer, got {block!r}")
    a, b = _matrix(a, "blocked_matmul a"), _matrix(b, "blocked_matmul b")
    n, k = a.shape
    if b.shape[0] != k:
        raise ValueError(f"blocked_matmul: inner dimensions differ: a {a.shape} @ b {b.shape}")
    m = b.shape[1]
    out = np.zeros((n, m), dtype=np.result_type(a, b))
    for i0 in range(0, n, block):
        for j0 in range(0, m, block):
            tile = out[i0:i0 + block, j0:j0 + block]
            for k0 in range(0, k, block):
                tile += a[i0:i0 + block, k0:k0 + block] @ b[k0:k0 + block, j0:j0 + block]
    return out
    # END SOLUTION


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
    # BEGIN SOLUTION
    if x.ndim == 0 or bias.shape != (x.shape[-1],):
        raise ValueError(f"fused_bias_gelu: bias must have shape (x.shape[-1],), got x {x.shape} and bias"
                         f" {bias.shape}")
    if x.dtype != bias.dtype:
        raise TypeError(f"fused_bias_gelu: x and bias must share a dtype, got {x.dtype} and {bias.dtype}")
    u = x.data + bias.data
    y = 0.5 * u * (1.0 + np.tanh(GELU_C * (u + GELU_A * (u * u * u))))
    return Tensor.from_op(y.astype(x.dtype, copy=False), "fused_bias_gelu", (x, bias))
    # END SOLUTION


@register_backward("fused_bias_gelu")
def _fused_bias_gelu_backward(grad, out, inputs, saved):
    # u = x + bias recomputed; t = tanh(c (u + a u^3));
    # dy/du = 0.5 (1 + t) + 0.5 u (1 - t^2) c (1 + 3 a u^2). grad_x = g dy/du; grad_bias sums it
    # over every leading dimension.
    # BEGIN SOLUTION
    x, bias = inputs
    u = x.data + bias.data
    u2 = u * u
    t = np.tanh(GELU_C * (u + GELU_A * u2 * u))
    dudx = 0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * u2)
    gx = (grad * dudx).astype(x.dtype, copy=False)
    return gx, gx.reshape(-1, gx.shape[-1]).sum(axis=0)
    # END SOLUTION


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
    # BEGIN SOLUTION
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(f"fused_softmax_cross_entropy: logits must be (N, C) with N >= 1, got {logits.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"fused_softmax_cross_entropy: target must hold integer classes, got dtype {target.dtype}")
    n, classes = logits.shape
    if target.shape != (n,):
        raise ValueError(f"fused_softmax_cross_entropy: target shape {target.shape} does not match logits"
                         f" {logits.shape}: expected ({n},)")
    labels = target.data.astype(np.int64)
    bad = (labels < 0) | (labels >= classes)
    if bad.any():
        raise IndexError(f"fused_softmax_cross_entropy: target value {int(labels[bad][0])} is out of range for"
                         f" {classes} classes")
    shifted = logits.data - np.max(logits.data, axis=1, keepdims=True)
    with np.errstate(under="ignore"):
        e = np.exp(shifted)
    s = np.sum(e, axis=1)
    probs = e / s[:, None]
    picked = shifted[np.arange(n), labels]
    loss = np.asarray(np.mean(np.log(s) - picked), dtype=logits.dtype)
    return Tensor.from_op(loss, "fused_softmax_cross_entropy", (logits, target), probs=probs)
    # END SOLUTION


@register_backward("fused_softmax_cross_entropy")
def _fused_softmax_cross_entropy_backward(grad, out, inputs, saved):
    # grad_logits = grad * (probs - onehot(target)) / N; the integer target gets no gradient (None).
    # BEGIN SOLUTION
    logits, target = inputs
    n = logits.shape[0]
    g = saved["probs"].copy()
    g[np.arange(n), target.data.astype(np.int64)] -= 1.0
    return (g * (np.asarray(grad) / n)).astype(logits.dtype, copy=False), None
    # END SOLUTION


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
    # BEGIN SOLUTION
    out = []
    for p in params:
        array = np.asarray(p.data if isinstance(p, Tensor) else p)
        if array.dtype.kind != "f":
            raise TypeError(f"to_half: expected float parameters, got dtype {array.dtype}")
        with np.errstate(over="ignore"):
            out.append(array.astype(np.float16))
    return out
    # END SOLUTION


def matmul_fp16(a: Any, b: Any) -> np.ndarray:
    """A @ B for float16 matrices with float32 accumulation: the float32 result of multiplying
    the float16 values exactly (each float16 product is exact in float32) and summing in float32,
    as tensor cores do. Summing in float16 instead loses everything beyond ~3 digits.
    Errors: TypeError unless both are float16; ValueError for shapes as blocked_matmul."""
    # TODO: check dtypes are float16, shapes match; upcast both to float32, then np.matmul.
    # BEGIN SOLUTION
    a, b = _matrix(a, "matmul_fp16 a"), _matrix(b, "matmul_fp16 b")
    if a.dtype != np.float16 or b.dtype != np.float16:
        raise TypeError(f"matmul_fp16: expected float16 inputs, got {a.dtype} and {b.dtype}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul_fp16: inner dimensions differ: a {a.shape} @ b {b.shape}")
    return a.astype(np.float32) @ b.astype(np.float32)
    # END SOLUTION


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
        # BEGIN SOLUTION
        if not (math.isfinite(init_scale) and init_scale > 0):
            raise ValueError(f"GradScaler: init_scale must be positive and finite, got {init_scale!r}")
        if not growth_factor > 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor!r}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor!r}")
        if not isinstance(growth_interval, int) or isinstance(growth_interval, bool) or growth_interval < 1:
            raise ValueError(f"GradScaler: growth_interval must be a positive integer, got {growth_interval!r}")
        self.enabled = bool(enabled)
        self._scale = np.float32(init_scale)
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval = growth_interval
        self._growth_tracker = 0
        self._per_optimizer: dict[int, dict[str, Any]] = {}  # id(optimizer) -> {"unscaled", "found_inf", "stepped"}
        # END SOLUTION

    def get_scale(self) -> float:
        """The current scale as a Python float (1.0 when disabled)."""
        # BEGIN SOLUTION
        return float(self._scale) if self.enabled else 1.0
        # END SOLUTION

    def scale(self, loss: Any) -> Any:
        """loss * scale as a Tensor op (so backward() produces scaled gradients); the loss if disabled."""
        # TODO: multiply by a Tensor holding the scale in the loss's dtype (a recorded op, so backward sees it).
        # BEGIN SOLUTION
        if not self.enabled:
            return loss
        return loss * Tensor(np.asarray(self._scale, dtype=loss.dtype))
        # END SOLUTION

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
        # BEGIN SOLUTION
        if not self.enabled:
            return
        state = self._state(optimizer)
        if state["unscaled"]:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update()")
        inv = np.float32(1.0) / self._scale
        found_inf = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                g *= inv.astype(g.dtype)
                found_inf = found_inf or not bool(np.all(np.isfinite(g)))
        state["unscaled"], state["found_inf"] = True, found_inf
        # END SOLUTION

    def step(self, optimizer: Any) -> Any:
        """unscale_(optimizer) unless already done, then optimizer.step() unless an inf/NaN was found.
        Returns what optimizer.step() returned, or None for a skipped step. A second step() for the
        same optimizer before update() is a RuntimeError."""
        # TODO: disabled: just optimizer.step(). Else use self._state(optimizer): refuse a second step,
        #       unscale_ if not yet done, mark "stepped", skip (None) if "found_inf".
        # BEGIN SOLUTION
        if not self.enabled:
            return optimizer.step()
        state = self._state(optimizer)
        if state["stepped"]:
            raise RuntimeError("step() has already been called since the last update()")
        if not state["unscaled"]:
            self.unscale_(optimizer)
        state["stepped"] = True
        if state["found_inf"]:
            return None
        return optimizer.step()
        # END SOLUTION

    def update(self) -> None:
        """Once per iteration, after step(): if any optimizer found inf/NaN, scale *= backoff_factor and
        the growth tracker restarts at 0; else the tracker counts one more finite step, and when it
        reaches growth_interval the scale *= growth_factor (kept only if finite) and the tracker
        restarts. All in float32. Calling update() when no step()/unscale_() happened since the last
        update() is a RuntimeError. Disabled: does nothing."""
        # TODO: found = any found_inf in self._per_optimizer (none recorded: RuntimeError);
        #       the rule above; then clear self._per_optimizer.
        # BEGIN SOLUTION
        if not self.enabled:
            return
        if not self._per_optimizer:
            raise RuntimeError("update(): no inf checks were recorded; call step() or unscale_() first")
        found_inf = any(s["found_inf"] for s in self._per_optimizer.values())
        if found_inf:
            self._scale = np.float32(self._scale * np.float32(self._backoff_factor))
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                with np.errstate(over="ignore"):
                    grown = np.float32(self._scale * np.float32(self._growth_factor))
                if np.isfinite(grown):
                    self._scale = grown
                self._growth_tracker = 0
        self._per_optimizer = {}
        # END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        """{"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"} (torch's keys);
        {} when disabled."""
        # TODO: the scale as a Python float, the rest as stored.
        # BEGIN SOLUTION
        if not self.enabled:
            return {}
        return {"scale": float(self._scale), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}
        # END SOLUTION

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what state_dict() returned; an empty dict is a RuntimeError (saved while disabled)."""
        # BEGIN SOLUTION
        if not state_dict:
            raise RuntimeError("GradScaler.load_state_dict: the state dict is empty (saved from a disabled scaler)")
        self._scale = np.float32(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
        # END SOLUTION
