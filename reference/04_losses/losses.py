"""Module 04 - Losses: one number that says how wrong the model is.

Functions (like ``torch.nn.functional``) and callable classes (like ``torch.nn``):

    mse_loss(input, target, reduction="mean")                                  MSELoss
    cross_entropy(input, target, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0)                                         CrossEntropyLoss
    binary_cross_entropy(input, target, reduction="mean")                      BCELoss
    binary_cross_entropy_with_logits(input, target, reduction="mean")          BCEWithLogitsLoss

`reduction` is "mean" (default), "sum" or "none" (one loss per element/sample);
anything else is a ValueError naming it. Shapes follow PyTorch:

* mse / bce / bce-with-logits: input and target have the same shape (any).
* cross_entropy: input (C,) with target (); (N, C) with target (N,); or
  (N, C, d1, ...) with target (N, d1, ...). Targets are integer class indices
  in [0, C) or `ignore_index`; anything else raises an error naming the value.

Each loss records ITS OWN op through ``Tensor.from_op`` ("mse_loss",
"cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits"),
with inputs (input, target) and the settings saved, so module 05 gives each a
fused, numerically stable backward rule (e.g. softmax(x) - onehot(y) for
cross-entropy) instead of differentiating through log/exp chains.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.activations import log_softmax
from tinytorch.tensor import FLOAT_DTYPES, Tensor

REDUCTIONS = ("mean", "sum", "none")


# -- given helpers ---------------------------------------------------------------


def _as_tensor(x: Any, dtype: Any = None) -> Tensor:
    """Tensors pass through (converted to `dtype` if given, as a constant); arrays are wrapped."""
    if isinstance(x, Tensor):
        return x if dtype is None or x.dtype == np.dtype(dtype) else Tensor(x.data, dtype=dtype)
    return Tensor(x, dtype=dtype)


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_same_shape(name: str, input: Tensor, target: Tensor) -> None:
    if input.shape != target.shape:
        raise ValueError(
            f"{name}: target shape {target.shape} must match input shape {input.shape}"
            " (tinytorch does not broadcast targets)"
        )


def _reduce(losses: np.ndarray, reduction: str, count: int | None = None) -> np.ndarray:
    """Apply a reduction to per-element losses; `count` overrides the divisor for "mean"."""
    if reduction == "none":
        return losses
    total = np.sum(losses, dtype=losses.dtype)
    if reduction == "sum":
        return np.asarray(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / (losses.size if count is None else count), dtype=losses.dtype)


# ----------------------------------------------------------------------------
# Functions
# ----------------------------------------------------------------------------


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error: (input - target) ** 2, reduced. Same-shape input and target.

    Op "mse_loss", inputs (input, target), saved reduction.
    """
    input = _as_tensor(input)
    target = _as_tensor(target, input.dtype)
    # TODO: check the reduction and the shapes (the helpers above), compute the squared
    #       differences, reduce them with _reduce and record "mse_loss" with reduction=...
    # BEGIN SOLUTION
    _check_reduction(reduction)
    _check_same_shape("mse_loss", input, target)
    losses = (input.data - target.data) ** 2
    return Tensor.from_op(_reduce(losses, reduction), "mse_loss", (input, target), reduction=reduction)
    # END SOLUTION


def cross_entropy(input: Tensor, target: Tensor, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy from raw logits and integer class targets (log_softmax + negative log-likelihood).

    input:  logits (C,), (N, C) or (N, C, d1, ...); the class dimension is 1 (0 for 1-D input).
    target: integer class indices, the input's shape without the class dimension. Entries equal
            to `ignore_index` contribute 0 and are left out of the "mean" divisor.
    label_smoothing in [0, 1]: the target distribution is (1 - eps) * onehot + eps / C, so
            loss_i = -(1 - eps) * logp[i, y_i] - eps / C * sum_c logp[i, c].
    Returns a scalar ("mean", "sum") or the target's shape ("none"); the input's dtype.
    Errors: non-integer target (TypeError naming the dtype), shape mismatch (ValueError naming
    both shapes), class index out of range (IndexError naming the value and C), bad
    label_smoothing or reduction (ValueError naming the value).
    Op "cross_entropy", inputs (input, target), saved ignore_index, reduction, label_smoothing.
    """
    input = _as_tensor(input)
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target))  # a list of ints stays int
    # TODO: 1. Validate (each error names the offending value or shapes):
    #          reduction (_check_reduction); label_smoothing in [0, 1] (ValueError with its value);
    #          input has >= 1 dim and is float ("class dimension"); target dtype is an integer kind
    #          (TypeError naming the dtype); target.shape == input.shape without the class dim
    #          (ValueError naming both shapes and the expected one); EVERY target value (not only the
    #          first) is in [0, C) or equals ignore_index (IndexError: "target value 7 is out of range
    #          for 3 classes").
    # TODO: 2. logp = log_softmax(input, dim=class_dim).data   (stable log-sum-exp, module 02).
    # TODO: 3. Gather logp at the target class (np.take_along_axis), with ignored targets replaced
    #          by 0 before gathering and their loss set to 0 afterwards.
    # TODO: 4. Mix in label smoothing, reduce ("mean" divides by the number of non-ignored targets),
    #          record the op.
    # BEGIN SOLUTION
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if input.ndim == 0 or input.dtype not in FLOAT_DTYPES:
        raise ValueError(f"cross_entropy: input must be float logits with a class dimension, got shape"
                         f" {input.shape} and dtype {input.dtype}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype {target.dtype}")
    class_dim = 1 if input.ndim >= 2 else 0
    classes = input.shape[class_dim]
    expected = input.shape[:class_dim] + input.shape[class_dim + 1:]
    if target.shape != expected:
        raise ValueError(f"cross_entropy: target shape {target.shape} does not match input shape {input.shape}:"
                         f" expected {expected} (the input's shape without the class dimension {class_dim})")
    labels = target.data
    kept = labels != ignore_index
    bad = kept & ((labels < 0) | (labels >= classes))
    if bad.any():
        raise IndexError(f"cross_entropy: target value {int(labels[bad].flat[0])} is out of range for"
                         f" {classes} classes (expected 0..{classes - 1} or ignore_index={ignore_index})")
    logp = log_softmax(Tensor(input.data), dim=class_dim).data
    picked = np.take_along_axis(logp, np.expand_dims(np.where(kept, labels, 0), class_dim), axis=class_dim)
    losses = np.squeeze(picked, axis=class_dim) * -(1.0 - label_smoothing)  # logp's dtype: a Python float never upcasts
    if label_smoothing:
        losses -= label_smoothing / classes * np.sum(logp, axis=class_dim)
    losses = np.where(kept, losses, 0)  # ignored targets contribute 0 (also where their logits are inf)
    out = _reduce(losses, reduction, count=int(np.count_nonzero(kept)))
    return Tensor.from_op(out, "cross_entropy", (input, target), ignore_index=ignore_index,
                          reduction=reduction, label_smoothing=label_smoothing)
    # END SOLUTION


def binary_cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """-(t * log(p) + (1 - t) * log(1 - p)) for probabilities p = input in [0, 1].

    Each log is clamped at -100 (as PyTorch does) so p = 0 or 1 gives a large finite loss,
    never inf or nan. Same-shape input and target; input outside [0, 1] is a ValueError.
    Op "binary_cross_entropy", inputs (input, target), saved reduction.
    """
    input = _as_tensor(input)
    target = _as_tensor(target, input.dtype)
    # TODO: validate (reduction, shapes, 0 <= input <= 1); compute the clamped logs with
    #       np.maximum(np.log(...), -100) under np.errstate(divide="ignore"); reduce; record.
    # BEGIN SOLUTION
    _check_reduction(reduction)
    _check_same_shape("binary_cross_entropy", input, target)
    if input.data.size and not ((input.data >= 0) & (input.data <= 1)).all():
        raise ValueError("binary_cross_entropy: every input must be a probability in [0, 1]"
                         f" (got values from {input.data.min()} to {input.data.max()}); for logits use"
                         " binary_cross_entropy_with_logits")
    p, t = input.data, target.data
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), -100)
        log_1mp = np.maximum(np.log1p(-p), -100)
    losses = -(t * log_p + (1 - t) * log_1mp)
    return Tensor.from_op(_reduce(losses, reduction), "binary_cross_entropy", (input, target), reduction=reduction)
    # END SOLUTION


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """binary_cross_entropy(sigmoid(input), target) computed stably from logits x:

        loss = max(x, 0) - x * t + log(1 + exp(-|x|))

    which never overflows (exp of a non-positive number) and keeps precision where
    sigmoid would round to 0 or 1. Same-shape input and target.
    Op "binary_cross_entropy_with_logits", inputs (input, target), saved reduction.
    """
    input = _as_tensor(input)
    target = _as_tensor(target, input.dtype)
    # TODO: validate, compute the stable formula (np.log1p, silence underflow), reduce, record.
    # BEGIN SOLUTION
    _check_reduction(reduction)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    x, t = input.data, target.data
    with np.errstate(under="ignore"):
        losses = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return Tensor.from_op(_reduce(losses, reduction), "binary_cross_entropy_with_logits", (input, target),
                          reduction=reduction)
    # END SOLUTION


# ----------------------------------------------------------------------------
# Classes: callables holding their settings (torch.nn style)
# ----------------------------------------------------------------------------


class MSELoss:
    """mse_loss with a fixed reduction: MSELoss(reduction="sum")(input, target)."""

    def __init__(self, *, reduction: str = "mean"):
        _check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        # BEGIN SOLUTION
        return mse_loss(input, target, reduction=self.reduction)
        # END SOLUTION

    def __call__(self, input: Tensor, target: Tensor) -> Tensor:
        return self.forward(input, target)

    def __repr__(self) -> str:
        return "MSELoss()"


class CrossEntropyLoss:
    """cross_entropy with fixed settings: CrossEntropyLoss(label_smoothing=0.1)(logits, labels)."""

    def __init__(self, *, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0):
        _check_reduction(reduction)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        # BEGIN SOLUTION
        return cross_entropy(input, target, ignore_index=self.ignore_index, reduction=self.reduction,
                             label_smoothing=self.label_smoothing)
        # END SOLUTION

    def __call__(self, input: Tensor, target: Tensor) -> Tensor:
        return self.forward(input, target)

    def __repr__(self) -> str:
        return "CrossEntropyLoss()"


class BCELoss:
    """binary_cross_entropy (on probabilities) with a fixed reduction."""

    def __init__(self, *, reduction: str = "mean"):
        _check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        # BEGIN SOLUTION
        return binary_cross_entropy(input, target, reduction=self.reduction)
        # END SOLUTION

    def __call__(self, input: Tensor, target: Tensor) -> Tensor:
        return self.forward(input, target)

    def __repr__(self) -> str:
        return "BCELoss()"


class BCEWithLogitsLoss:
    """binary_cross_entropy_with_logits with a fixed reduction."""

    def __init__(self, *, reduction: str = "mean"):
        _check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        # BEGIN SOLUTION
        return binary_cross_entropy_with_logits(input, target, reduction=self.reduction)
        # END SOLUTION

    def __call__(self, input: Tensor, target: Tensor) -> Tensor:
        return self.forward(input, target)

    def __repr__(self) -> str:
        return "BCEWithLogitsLoss()"
