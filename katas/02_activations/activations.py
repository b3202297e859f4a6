# KATA: replace every `raise NotImplementedError` below with your implementation.
# Generated from reference/02_activations/activations.py by `kata stubs`; your edits are never overwritten.
"""Module 02 - Activations: the nonlinearities between layers.

Without a nonlinearity, a stack of linear layers collapses into one linear map.
This module gives tinytorch the standard ones, as functions (like
``torch.nn.functional``) and as small callable classes (like ``torch.nn``):

    relu, leaky_relu, sigmoid, tanh, gelu, softmax, log_softmax
    ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax, LogSoftmax

Each function computes its result with numpy and records ITS OWN op through
``Tensor.from_op`` (op names "relu", "leaky_relu", "sigmoid", "tanh", "gelu",
"softmax", "log_softmax"), so module 05 can give each one a direct, stable
backward rule instead of differentiating through a chain of primitives.

Numerical stability is part of the contract: every function is finite for
inputs as large as +-1e4 and never trips numpy's floating-point warnings
(any overflow that is harmless is silenced locally with ``np.errstate``).

The classes have no base class on purpose: the ``Module`` base arrives in
module 03, and its ``Sequential`` accepts any callable.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinytorch.tensor import Tensor

GELU_APPROXIMATIONS = ("none", "tanh")

# Chebyshev coefficients for erfc(z), z >= 0 (Numerical Recipes, 3rd ed., section 6.2.2).
# numpy has no erf; this one is accurate to ~5e-16 absolute in float64. It is given, not a kata.
_ERFC_COEFFICIENTS = np.array([
    -1.3026537197817094, 6.4196979235649026e-1, 1.9476473204185836e-2, -9.561514786808631e-3,
    -9.46595344482036e-4, 3.66839497852761e-4, 4.2523324806907e-5, -2.0278578112534e-5,
    -1.624290004647e-6, 1.303655835580e-6, 1.5626441722e-8, -8.5238095915e-8, 6.529054439e-9,
    5.059343495e-9, -9.91364156e-10, -2.27365122e-10, 9.6467911e-11, 2.394038e-12, -6.886027e-12,
    8.94487e-13, 3.13092e-13, -1.12708e-13, 3.81e-16, 7.106e-15, -1.523e-15, -9.4e-17, 1.21e-16,
    -2.8e-17,
])


def erf(x: np.ndarray) -> np.ndarray:
    """The error function elementwise on a numpy array, computed in float64 (given helper)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    t = 2.0 / (2.0 + z)
    ty = 4.0 * t - 2.0
    d = np.zeros_like(z)
    dd = np.zeros_like(z)
    for c in _ERFC_COEFFICIENTS[:0:-1]:
        d, dd = ty * d - dd + c, d
    with np.errstate(under="ignore"):
        erfc = t * np.exp(-z * z + 0.5 * (_ERFC_COEFFICIENTS[0] + ty * d) - dd)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def _as_tensor(x: Any) -> Tensor:
    """Tensors pass through; numpy arrays and Python numbers are wrapped (given helper)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _softmax_axis(x: Tensor, dim: int) -> int | None:
    """Normalise `dim` for x (None for a 0-d tensor); IndexError naming dim and ndim if out of range."""
    size = max(x.ndim, 1)
    if not isinstance(dim, (int, np.integer)) or not -size <= dim < size:
        raise IndexError(f"dim {dim} is out of range for a tensor with {x.ndim} dimensions")
    return int(dim) % size if x.ndim else None


# ----------------------------------------------------------------------------
# Functions
# ----------------------------------------------------------------------------


def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise. x: any shape, float32/float64. Returns the same shape and dtype. Op "relu"."""
    x = _as_tensor(x)
    # TODO: compute np.maximum(x.data, 0) and record it with Tensor.from_op(..., "relu", (x,)).
    raise NotImplementedError('relu: your turn - see the TODOs above')


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, negative_slope * x elsewhere. Same shape and dtype.

    Op "leaky_relu" with saved negative_slope (the backward rule needs it).
    """
    x = _as_tensor(x)
    # TODO: np.where(x > 0, x, negative_slope * x); keep the dtype (a Python float does not
    #       upcast float32 in numpy 2). Record "leaky_relu" with negative_slope=negative_slope.
    raise NotImplementedError('leaky_relu: your turn - see the TODOs above')


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)) elementwise, in (0, 1)... and exactly 0 or 1 only when it must round there.

    The naive formula overflows exp(-x) for x << 0. Stable form: with e = exp(-|x|) (never
    overflows), sigmoid = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0. Op "sigmoid".
    """
    x = _as_tensor(x)
    # TODO: e = np.exp(-np.abs(x.data)) (silence underflow with np.errstate(under="ignore")),
    #       pick 1/(1+e) or e/(1+e) by the sign of x, record "sigmoid".
    raise NotImplementedError('sigmoid: your turn - see the TODOs above')


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent elementwise, in [-1, 1]. np.tanh is already stable. Op "tanh"."""
    x = _as_tensor(x)
    raise NotImplementedError('tanh: your turn - see the TODOs above')


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian Error Linear Unit: x * Phi(x), Phi the standard normal CDF.

    approximate="none":  0.5 * x * (1 + erf(x / sqrt(2)))                       (use `erf` above)
    approximate="tanh":  0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))  (GPT-2's form)
    Any other value is a ValueError naming it. Same shape and dtype as x.
    Op "gelu" with saved approximate.
    """
    x = _as_tensor(x)
    # TODO: validate `approximate`: a ValueError naming the bad value with repr() (e.g. "got 'erf'")
    #       and the allowed ones.
    # TODO: compute in float64 for accuracy, cast back to x.dtype, record "gelu" with approximate=...
    raise NotImplementedError('gelu: your turn - see the TODOs above')


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim`: each slice along dim becomes a probability vector.

    Stable: subtract the slice's max first (softmax is shift-invariant, and then the largest
    exponent is exp(0) = 1, so nothing overflows). x: any shape (a 0-d tensor gives 1).
    A dim out of range is an IndexError naming it. Op "softmax" with saved dim
    (the normalised non-negative axis, or None for a 0-d tensor).
    """
    x = _as_tensor(x)
    axis = _softmax_axis(x, dim)
    # TODO: shifted = x - max(x, axis, keepdims=True); e = exp(shifted); out = e / e.sum(axis, keepdims=True).
    #       Silence underflow locally. Record "softmax" with dim=axis.
    raise NotImplementedError('softmax: your turn - see the TODOs above')


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """log(softmax(x)) along `dim`, computed without ever taking log of a rounded-to-0 probability.

    log_softmax = (x - m) - log(sum(exp(x - m))) with m the slice max (the log-sum-exp trick):
    finite wherever x is finite, even when softmax itself underflows to 0.
    Op "log_softmax" with saved dim (as for softmax).
    """
    x = _as_tensor(x)
    axis = _softmax_axis(x, dim)
    # TODO: the log-sum-exp trick above; record "log_softmax" with dim=axis.
    raise NotImplementedError('log_softmax: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Classes: callables holding their settings (torch.nn style)
# ----------------------------------------------------------------------------


class ReLU:
    """relu as a callable object: ReLU()(x)."""

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError('ReLU.forward: your turn - see the TODOs above')

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def __repr__(self) -> str:
        return "ReLU()"


class LeakyReLU:
    """leaky_relu with a fixed negative_slope: LeakyReLU(0.2)(x)."""

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError('LeakyReLU.forward: your turn - see the TODOs above')

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"


class Sigmoid:
    """sigmoid as a callable object."""

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError('Sigmoid.forward: your turn - see the TODOs above')

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def __repr__(self) -> str:
        return "Sigmoid()"


class Tanh:
    """tanh as a callable object."""

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError('Tanh.forward: your turn - see the TODOs above')

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def __repr__(self) -> str:
        return "Tanh()"


class GELU:
    """gelu with a fixed approximation ("none" or "tanh"); a bad value is a ValueError at construction."""

    def __init__(self, approximate: str = "none"):
        if approximate not in GELU_APPROXIMATIONS:
            raise ValueError(f"GELU: approximate must be one of {GELU_APPROXIMATIONS}, got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError('GELU.forward: your turn - see the TODOs above')

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def __repr__(self) -> str:
        return f"GELU(approximate={self.approximate!r})"


class Softmax:
    """softmax along a fixed dim (default -1; torch.nn.Softmax has no default, always pass one there)."""

    def __init__(self, dim: int = -1):
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError('Softmax.forward: your turn - see the TODOs above')

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def __repr__(self) -> str:
        return f"Softmax(dim={self.dim})"


class LogSoftmax:
    """log_softmax along a fixed dim (default -1)."""

    def __init__(self, dim: int = -1):
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError('LogSoftmax.forward: your turn - see the TODOs above')

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def __repr__(self) -> str:
        return f"LogSoftmax(dim={self.dim})"
