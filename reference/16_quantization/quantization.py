"""Module 16 - Quantization: the same network in a quarter of the bytes.

A float32 weight costs 4 bytes. Most trained networks do not need 24 bits of mantissa: an
8-bit integer plus one shared float *scale* per tensor (or per output channel) is enough to
keep the accuracy. *Affine* (asymmetric) quantization maps a float x to an integer q by

    q = clamp(round(x / scale) + zero_point, qmin, qmax)          x_hat = (q - zero_point) * scale

with qint8 = [-128, 127] (numpy int8) and quint8 = [0, 255] (numpy uint8). The zero point is
the integer that stands for 0.0, so zero padding and ReLU outputs are represented exactly.
*Symmetric* quantization fixes the zero point (0 for qint8, 128 for quint8), which makes integer
matrix products cheaper: no cross terms with the weights' zero point.

This module gives tinytorch (names and semantics follow torch.ao.quantization):

    calculate_qparams(x_min, x_max, dtype="quint8", symmetric=False)
                                      (scale, zero_point) as torch's MinMaxObserver computes them
    calibrate_percentile(x, p)        (low, high) = the (100 - p)-th and p-th percentiles of x
    MinMaxObserver, PerChannelMinMaxObserver, PercentileObserver
                                      running statistics of the tensors they see -> qparams
    QTensor                           integer values + scale(s) + zero point(s) (+ channel axis)
    quantize_per_tensor(x, scale, zero_point, dtype)       torch.quantize_per_tensor
    quantize_per_channel(x, scales, zero_points, axis, dtype)  torch.quantize_per_channel
    fake_quantize_per_tensor_affine(x, scale, zero_point, quant_min, quant_max)
    fake_quantize_per_channel_affine(x, scales, zero_points, axis, quant_min, quant_max)
                                      quantize-then-dequantize as a float Tensor op with the
                                      straight-through gradient (quantization-aware training)
    QuantizedLinear.from_float(linear, input_scale, input_zero_point, ...)
                                      int8 per-channel symmetric weights, uint8/int8 activations,
                                      int32 accumulation, int32 bias, float (or requantized) output
    quantize_model(model, calibration_batches)   every Linear of a Module tree -> QuantizedLinear
    model_size_bytes(model)           bytes of parameters as actually stored

Rounding: half to even (np.rint), as torch, computed in float32 as x * (1 / scale) with the
reciprocal taken in float32 (torch's fake_quantize_* formula, bit for bit). torch's
quantize_per_tensor fuses the multiply and the zero-point add (one FMA, one rounding) and
quantize_per_channel adds the zero point in float32 before rounding; those differ from this rule
only where x / scale lies within a float32 rounding error of a .5 tie.

Two new ops register their backward rules through module 05's `register_backward` hook:
"fake_quantize_per_tensor_affine" and "fake_quantize_per_channel_affine". Their gradient is the
straight-through estimator: the upstream gradient passes where round(x / scale) + zero_point
landed inside [quant_min, quant_max], and is 0 where the value was clamped (torch's rule).
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

import numpy as np

from tinytorch.autograd import no_grad, register_backward
from tinytorch.layers import Linear, Module
from tinytorch.tensor import FLOAT_DTYPES, Tensor

# name: (numpy storage dtype, qmin, qmax)
QDTYPES: dict[str, tuple[type, int, int]] = {
    "qint8": (np.int8, -128, 127),
    "quint8": (np.uint8, 0, 255),
}
EPS = float(np.finfo(np.float32).eps)  # torch's observers floor the scale here

# ----------------------------------------------------------------------------
# Helpers (given)
# ----------------------------------------------------------------------------


def qrange(dtype: str) -> tuple[type, int, int]:
    """(numpy dtype, qmin, qmax) of "qint8" or "quint8"; anything else is a ValueError naming it."""
    if dtype not in QDTYPES:
        raise ValueError(f"unknown quantized dtype {dtype!r}: expected one of {sorted(QDTYPES)}")
    return QDTYPES[dtype]


def _float_array(x: Any, what: str) -> np.ndarray:
    """x (Tensor, array, list, number) as a float32 array; non-float data is a TypeError, NaN a ValueError."""
    array = np.asarray(x.data if isinstance(x, Tensor) else x)
    if array.dtype.kind in "iub" and not isinstance(x, (Tensor, np.ndarray)):
        array = array.astype(np.float32)  # Python numbers and lists of ints are fine
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{what}: expected float32 or float64 values, got dtype {array.dtype}")
    if np.isnan(array).any():
        raise ValueError(f"{what}: the input contains NaN, which has no quantized value")
    return array.astype(np.float32, copy=False)


def _check_scale(scale: Any, what: str) -> np.ndarray:
    scale = np.asarray(scale, dtype=np.float64)
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError(f"{what}: scale must be positive and finite, got {scale.tolist()}")
    return scale


def _check_zero_point(zero_point: Any, qmin: int, qmax: int, what: str) -> np.ndarray:
    zp = np.asarray(zero_point)
    if zp.dtype.kind not in "iu" and not (zp.dtype.kind == "f" and np.all(zp == np.round(zp))):
        raise TypeError(f"{what}: zero_point must be an integer, got {zero_point!r}")
    zp = zp.astype(np.int64)
    if np.any(zp < qmin) or np.any(zp > qmax):
        raise ValueError(f"{what}: zero_point {zp.tolist()} is outside the quantized range [{qmin}, {qmax}]")
    return zp


def _channel_axis(axis: int, ndim: int, what: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -ndim <= axis < ndim:
        raise ValueError(f"{what}: axis {axis!r} is out of range for a tensor with {ndim} dimensions")
    return int(axis) % ndim


def _per_channel(values: Any, channels: int, what: str, name: str) -> np.ndarray:
    values = np.asarray(values.data if isinstance(values, Tensor) else values)
    if values.shape != (channels,):
        raise ValueError(f"{what}: {name} must have shape ({channels},), one per channel along the axis,"
                         f" got shape {values.shape}")
    return values


def _along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """Reshape a per-channel vector so that it broadcasts along `axis` of an ndim-D array."""
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


# ----------------------------------------------------------------------------
# Quantization parameters and calibration
# ----------------------------------------------------------------------------


def calculate_qparams(x_min: Any, x_max: Any, dtype: str = "quint8", symmetric: bool = False) -> tuple[Any, Any]:
    """(scale, zero_point) mapping the range [x_min, x_max] onto dtype's integers, as torch's
    MinMaxObserver / PerChannelMinMaxObserver `calculate_qparams()` compute them.

    x_min, x_max: numbers (per tensor) or equal-shape arrays (per channel); x_min <= x_max.
    The range is first widened to include 0 (min_neg = min(x_min, 0), max_pos = max(x_max, 0)),
    so that 0.0 is exactly representable. All arithmetic is float32, as torch's.
      affine:    scale = (max_pos - min_neg) / (qmax - qmin)
                 zero_point = clamp(qmin - round(min_neg / scale), qmin, qmax)
      symmetric: scale = max(-min_neg, max_pos) / ((qmax - qmin) / 2)
                 zero_point = 0 for qint8, 128 for quint8
    The scale is floored at float32 eps (a constant tensor gets scale eps, not 0).
    Returns (float, int) for numbers, (float32 array, int64 array) for arrays.
    Errors: ValueError for an unknown dtype, non-finite bounds, x_min > x_max, or shapes that differ.
    """
    _, qmin, qmax = qrange(dtype)
    # TODO: 1. Convert both to float32 arrays; check shapes equal, finite, x_min <= x_max (ValueError).
    # TODO: 2. min_neg = np.minimum(x_min, 0), max_pos = np.maximum(x_max, 0) (float32).
    # TODO: 3. The two formulas above, in float32 (np.float32 constants), scale = np.maximum(scale, EPS);
    #          round with np.rint (half to even, as torch.round).
    # TODO: 4. 0-d inputs give (float(scale), int(zero_point)); arrays (float32, int64) arrays.
    # BEGIN SOLUTION
    lo, hi = np.asarray(x_min, dtype=np.float32), np.asarray(x_max, dtype=np.float32)
    if lo.shape != hi.shape:
        raise ValueError(f"calculate_qparams: x_min has shape {lo.shape} but x_max has shape {hi.shape}")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError(f"calculate_qparams: the range must be finite, got x_min={lo.tolist()}, x_max={hi.tolist()}")
    if np.any(lo > hi):
        raise ValueError(f"calculate_qparams: x_min must be <= x_max, got x_min={lo.tolist()}, x_max={hi.tolist()}")
    min_neg = np.minimum(lo, np.float32(0))
    max_pos = np.maximum(hi, np.float32(0))
    if symmetric:
        scale = np.maximum(-min_neg, max_pos) / np.float32((qmax - qmin) / 2)
        scale = np.maximum(scale, np.float32(EPS))
        zero_point = np.full(scale.shape, 128 if dtype == "quint8" else 0, dtype=np.int64)
    else:
        scale = (max_pos - min_neg) / np.float32(qmax - qmin)
        scale = np.maximum(scale, np.float32(EPS))
        zero_point = qmin - np.rint(min_neg / scale).astype(np.int64)
        zero_point = np.clip(zero_point, qmin, qmax)
    scale = scale.astype(np.float32)
    if scale.ndim == 0:
        return float(scale), int(zero_point)
    return scale, zero_point.astype(np.int64)
    # END SOLUTION


def calibrate_percentile(x: Any, p: float = 99.99) -> tuple[float, float]:
    """(low, high): the (100 - p)-th and p-th percentiles of x's values (linear interpolation,
    np.percentile's and torch.quantile's default). Clipping the range to them ignores rare
    outliers, so the scale spends its 256 levels on where the values actually are.

    p: in [50, 100]; p = 100 gives (min, max). Errors: ValueError for p outside [50, 100] or an
    empty x; TypeError for non-float x.
    """
    # TODO: validate p and x (use _float_array), then np.percentile of the flattened values at
    #       100 - p and p, computed in float64; return two Python floats.
    # BEGIN SOLUTION
    if not isinstance(p, (int, float, np.integer, np.floating)) or isinstance(p, bool) or not 50 <= p <= 100:
        raise ValueError(f"calibrate_percentile: p must be a percentage in [50, 100], got {p!r}")
    values = _float_array(x, "calibrate_percentile").ravel()
    if values.size == 0:
        raise ValueError("calibrate_percentile: x is empty, there is nothing to calibrate on")
    low, high = np.percentile(values.astype(np.float64), [100.0 - float(p), float(p)])
    return float(low), float(high)
    # END SOLUTION


class MinMaxObserver:
    """Remembers the running min and max of every tensor passed through it (torch.ao.quantization's).

    observer(x) updates min_val/max_val and returns x unchanged; calculate_qparams() gives
    (scale, zero_point) for the range seen so far. Empty tensors are ignored.
    """

    def __init__(self, dtype: str = "quint8", symmetric: bool = False):
        qrange(dtype)
        self.dtype, self.symmetric = dtype, bool(symmetric)
        self.min_val, self.max_val = float("inf"), float("-inf")

    def __call__(self, x: Any) -> Any:
        # TODO: values = _float_array(x, ...); unless empty, fold np.min/np.max into min_val/max_val.
        # BEGIN SOLUTION
        values = _float_array(x, "MinMaxObserver")
        if values.size:
            self.min_val = min(self.min_val, float(values.min()))
            self.max_val = max(self.max_val, float(values.max()))
        return x
        # END SOLUTION

    def calculate_qparams(self) -> tuple[float, int]:
        """(scale, zero_point); before any data a RuntimeError saying "no values observed yet"."""
        # BEGIN SOLUTION
        if self.min_val > self.max_val:
            raise RuntimeError("MinMaxObserver: no values observed yet; call the observer on data first")
        return calculate_qparams(self.min_val, self.max_val, self.dtype, self.symmetric)
        # END SOLUTION


class PerChannelMinMaxObserver:
    """Running min and max of each channel along ch_axis (every other axis is reduced).

    calculate_qparams() gives (float32 scales, int64 zero points), one per channel. A tensor
    with a different number of channels than the ones seen before is a ValueError.
    """

    def __init__(self, ch_axis: int = 0, dtype: str = "quint8", symmetric: bool = False):
        qrange(dtype)
        self.ch_axis, self.dtype, self.symmetric = ch_axis, dtype, bool(symmetric)
        self.min_val: np.ndarray | None = None
        self.max_val: np.ndarray | None = None

    def __call__(self, x: Any) -> Any:
        # TODO: axis = _channel_axis(self.ch_axis, ndim, ...); reduce every other axis with
        #       np.min/np.max (float32), then fold into min_val/max_val with np.minimum/np.maximum.
        # BEGIN SOLUTION
        values = _float_array(x, "PerChannelMinMaxObserver")
        axis = _channel_axis(self.ch_axis, values.ndim, "PerChannelMinMaxObserver")
        if values.size == 0:
            return x
        others = tuple(a for a in range(values.ndim) if a != axis)
        lo, hi = values.min(axis=others), values.max(axis=others)
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        elif self.min_val.shape != lo.shape:
            raise ValueError(f"PerChannelMinMaxObserver: saw {self.min_val.shape[0]} channels before,"
                             f" now {lo.shape[0]} along axis {self.ch_axis}")
        else:
            self.min_val, self.max_val = np.minimum(self.min_val, lo), np.maximum(self.max_val, hi)
        return x
        # END SOLUTION

    def calculate_qparams(self) -> tuple[np.ndarray, np.ndarray]:
        """(scales, zero_points), arrays of one entry per channel; before any data a RuntimeError saying
        "no values observed yet"."""
        # BEGIN SOLUTION
        if self.min_val is None:
            raise RuntimeError("PerChannelMinMaxObserver: no values observed yet; call the observer on data first")
        return calculate_qparams(self.min_val, self.max_val, self.dtype, self.symmetric)
        # END SOLUTION


class PercentileObserver:
    """Keeps every value it sees; calculate_qparams() uses calibrate_percentile(values, p) as the range.

    Memory grows with the calibration set: fine for a few thousand activations, which is all
    calibration needs (torch's HistogramObserver keeps a 2048-bin histogram instead).
    """

    def __init__(self, p: float = 99.99, dtype: str = "quint8", symmetric: bool = False):
        qrange(dtype)
        calibrate_percentile(np.zeros(1, dtype=np.float32), p)  # validates p
        self.p, self.dtype, self.symmetric = p, dtype, bool(symmetric)
        self.values: list[np.ndarray] = []

    def __call__(self, x: Any) -> Any:
        # BEGIN SOLUTION
        self.values.append(_float_array(x, "PercentileObserver").ravel().copy())
        return x
        # END SOLUTION

    def calculate_qparams(self) -> tuple[float, int]:
        """(scale, zero_point) of calibrate_percentile over everything observed; before any data a
        RuntimeError saying "no values observed yet"."""
        # BEGIN SOLUTION
        values = np.concatenate(self.values) if self.values else np.zeros(0, dtype=np.float32)
        if values.size == 0:
            raise RuntimeError("PercentileObserver: no values observed yet; call the observer on data first")
        low, high = calibrate_percentile(values, self.p)
        return calculate_qparams(low, high, self.dtype, self.symmetric)
        # END SOLUTION


# ----------------------------------------------------------------------------
# Quantized tensors
# ----------------------------------------------------------------------------


class QTensor:
    """A quantized tensor: integer `values` plus what it takes to read them back as floats.

    values:     np.int8 (qint8) or np.uint8 (quint8) array.
    scale:      a float (per tensor) or a float64 array of one scale per channel along `axis`.
    zero_point: an int (per tensor) or an int64 array, one per channel.
    axis:       None (per tensor) or the channel axis (per channel).
    dtype:      "qint8" or "quint8".
    The float it stands for is (values - zero_point) * scale (dequantize()).
    """

    def __init__(self, values: np.ndarray, scale: Any, zero_point: Any, dtype: str, axis: int | None = None):
        self.values, self.scale, self.zero_point, self.dtype, self.axis = values, scale, zero_point, dtype, axis

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def int_repr(self) -> np.ndarray:
        """A copy of the integer values (torch's Tensor.int_repr())."""
        return self.values.copy()

    def dequantize(self) -> Tensor:
        """(values - zero_point) * scale as a float32 Tensor (per channel: each channel its own pair)."""
        # TODO: compute in float32: (values as float32 - zero_point) * scale; per channel, reshape the
        #       scales and zero points with _along(..., self.axis, ndim) first.
        # BEGIN SOLUTION
        q = self.values.astype(np.float32)
        scale = np.asarray(self.scale, dtype=np.float32)
        zero_point = np.asarray(self.zero_point, dtype=np.float32)
        if self.axis is not None:
            scale, zero_point = _along(scale, self.axis, q.ndim), _along(zero_point, self.axis, q.ndim)
        return Tensor(((q - zero_point) * scale).astype(np.float32, copy=False))
        # END SOLUTION

    @property
    def nbytes(self) -> int:
        """Bytes as stored: the integer values + 4 bytes (float32) per scale + 4 (int32) per zero point."""
        # BEGIN SOLUTION
        return int(self.values.nbytes + 4 * np.size(self.scale) + 4 * np.size(self.zero_point))
        # END SOLUTION

    def __repr__(self) -> str:
        scheme = "per_tensor" if self.axis is None else f"per_channel(axis={self.axis})"
        return f"QTensor(shape={self.shape}, dtype={self.dtype}, {scheme})"


def _quantize(x: np.ndarray, inv_scale: np.ndarray, zero_point: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    """clamp(rint(x * inv_scale) + zero_point, qmin, qmax) as float values (no overflow warnings)."""
    with np.errstate(over="ignore"):
        return np.clip(np.rint(x * inv_scale) + zero_point, qmin, qmax)


def quantize_per_tensor(x: Any, scale: float, zero_point: int, dtype: str = "quint8") -> QTensor:
    """torch.quantize_per_tensor: q = clamp(rint(x * (1 / scale)) + zero_point, qmin, qmax).

    x: float Tensor or array of any shape (float64 is rounded to float32 first: torch accepts
    float32 only). The reciprocal 1 / scale and the product are float32; values outside the range
    saturate at qmin / qmax (also +-inf). Returns a QTensor with int8 / uint8 values, scale as a
    Python float and zero_point as an int.
    Errors: ValueError for an unknown dtype, scale <= 0 or not finite, zero_point outside the
    dtype's range, NaN in x; TypeError for non-float x or a non-integer zero_point.
    """
    np_dtype, qmin, qmax = qrange(dtype)
    # TODO: 1. x32 = _float_array(x, ...); validate scale (_check_scale) and zero_point (_check_zero_point).
    # TODO: 2. inv = np.float32(1) / np.float32(scale); values = _quantize(x32, inv, zp, qmin, qmax).
    # TODO: 3. Return QTensor(values.astype(np_dtype), float(scale), int(zero_point), dtype).
    # BEGIN SOLUTION
    values = _float_array(x, "quantize_per_tensor")
    scale = float(_check_scale(scale, "quantize_per_tensor"))
    zero_point = int(_check_zero_point(zero_point, qmin, qmax, "quantize_per_tensor"))
    inv = np.float32(1) / np.float32(scale)
    q = _quantize(values, inv, np.float32(zero_point), qmin, qmax)
    return QTensor(q.astype(np_dtype), scale, zero_point, dtype)
    # END SOLUTION


def quantize_per_channel(x: Any, scales: Any, zero_points: Any, axis: int, dtype: str = "qint8") -> QTensor:
    """torch.quantize_per_channel: channel c along `axis` uses scales[c] and zero_points[c].

    scales: 1-D, one positive float per channel (kept as float64, torch's q_per_channel_scales);
    zero_points: 1-D integers in the dtype's range (kept as int64). Rounding as quantize_per_tensor,
    with each reciprocal taken in float32.
    Errors: as quantize_per_tensor, plus ValueError for an axis out of range or scales /
    zero_points whose shape is not (x.shape[axis],).
    """
    np_dtype, qmin, qmax = qrange(dtype)
    # TODO: validate (_channel_axis, _per_channel, _check_scale, _check_zero_point); reshape the
    #       float32 reciprocals and the zero points with _along so they broadcast over x; _quantize.
    # BEGIN SOLUTION
    values = _float_array(x, "quantize_per_channel")
    axis = _channel_axis(axis, values.ndim, "quantize_per_channel")
    channels = values.shape[axis]
    scales = _check_scale(_per_channel(scales, channels, "quantize_per_channel", "scales"), "quantize_per_channel")
    zero_points = _check_zero_point(_per_channel(zero_points, channels, "quantize_per_channel", "zero_points"),
                                    qmin, qmax, "quantize_per_channel")
    inv = np.float32(1) / scales.astype(np.float32)
    q = _quantize(values, _along(inv, axis, values.ndim), _along(zero_points.astype(np.float32), axis, values.ndim),
                  qmin, qmax)
    return QTensor(q.astype(np_dtype), scales.astype(np.float64), zero_points.astype(np.int64), dtype, axis)
    # END SOLUTION


# ----------------------------------------------------------------------------
# Fake quantization: quantize-dequantize as a differentiable float op
# ----------------------------------------------------------------------------


def _check_qrange(quant_min: Any, quant_max: Any, what: str) -> tuple[int, int]:
    for name, value in (("quant_min", quant_min), ("quant_max", quant_max)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{what}: {name} must be an integer, got {value!r}")
    if quant_min > quant_max:
        raise ValueError(f"{what}: quant_min {quant_min} must be <= quant_max {quant_max}")
    return int(quant_min), int(quant_max)


def _float_tensor(x: Any, what: str) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{what}: expected a float32 or float64 Tensor, got dtype {x.dtype}")
    return x


def fake_quantize_per_tensor_affine(x: Any, scale: float, zero_point: int, quant_min: int, quant_max: int) -> Tensor:
    """torch.fake_quantize_per_tensor_affine: (clamp(rint(x * inv) + zp, qmin, qmax) - zp) * scale.

    x: float32/float64 Tensor, any shape; the result has its shape and dtype. inv = 1 / scale in
    float32 (scale itself is used as float32 too). Recorded as op "fake_quantize_per_tensor_affine"
    saving the boolean `mask` of elements whose rint(x * inv) + zp lies in [quant_min, quant_max]:
    the gradient is upstream * mask (straight-through inside the range, 0 where clamped).
    Errors: TypeError for non-float x or non-integer bounds; ValueError for quant_min > quant_max,
    zero_point outside [quant_min, quant_max], or scale <= 0.
    """
    x = _float_tensor(x, "fake_quantize_per_tensor_affine")
    # TODO: 1. Validate (_check_qrange, _check_scale, _check_zero_point).
    # TODO: 2. s = np.float32(scale), inv = np.float32(1) / s; q = rint(x.data * inv) + zp (x's dtype).
    # TODO: 3. mask = (q >= quant_min) & (q <= quant_max); out = (clip(q) - zp) * s in x's dtype.
    # TODO: 4. Tensor.from_op(out, "fake_quantize_per_tensor_affine", (x,), mask=mask).
    # BEGIN SOLUTION
    qmin, qmax = _check_qrange(quant_min, quant_max, "fake_quantize_per_tensor_affine")
    s = np.float32(_check_scale(scale, "fake_quantize_per_tensor_affine"))
    zp = int(_check_zero_point(zero_point, qmin, qmax, "fake_quantize_per_tensor_affine"))
    inv = np.float32(1) / s
    with np.errstate(over="ignore", invalid="ignore"):
        q = np.rint(x.data * inv) + zp
        mask = (q >= qmin) & (q <= qmax)
        out = ((np.clip(q, qmin, qmax) - zp) * s).astype(x.dtype, copy=False)
    return Tensor.from_op(out, "fake_quantize_per_tensor_affine", (x,), mask=mask)
    # END SOLUTION


@register_backward("fake_quantize_per_tensor_affine")
def _fake_quantize_per_tensor_backward(grad, out, inputs, saved):
    # Straight-through estimator: pass the gradient where the value was not clamped.
    # BEGIN SOLUTION
    return (grad * saved["mask"],)
    # END SOLUTION


def fake_quantize_per_channel_affine(x: Any, scales: Any, zero_points: Any, axis: int, quant_min: int,
                                     quant_max: int) -> Tensor:
    """torch.fake_quantize_per_channel_affine: fake_quantize_per_tensor_affine with channel c along
    `axis` using scales[c] (as float32) and zero_points[c].

    Recorded as op "fake_quantize_per_channel_affine" with the same straight-through `mask`.
    Errors: as the per-tensor form, plus ValueError for an axis out of range or scales /
    zero_points whose shape is not (x.shape[axis],).
    """
    x = _float_tensor(x, "fake_quantize_per_channel_affine")
    # TODO: as the per-tensor form, with scales, reciprocals and zero points reshaped by _along.
    # BEGIN SOLUTION
    what = "fake_quantize_per_channel_affine"
    qmin, qmax = _check_qrange(quant_min, quant_max, what)
    axis = _channel_axis(axis, x.ndim, what)
    channels = x.shape[axis]
    s = _check_scale(_per_channel(scales, channels, what, "scales"), what).astype(np.float32)
    zp = _check_zero_point(_per_channel(zero_points, channels, what, "zero_points"), qmin, qmax, what)
    inv = _along(np.float32(1) / s, axis, x.ndim)
    s, zp = _along(s, axis, x.ndim), _along(zp, axis, x.ndim)
    with np.errstate(over="ignore", invalid="ignore"):
        q = np.rint(x.data * inv) + zp.astype(x.dtype)
        mask = (q >= qmin) & (q <= qmax)
        out = ((np.clip(q, qmin, qmax) - zp.astype(x.dtype)) * s).astype(x.dtype, copy=False)
    return Tensor.from_op(out, "fake_quantize_per_channel_affine", (x,), mask=mask)
    # END SOLUTION


@register_backward("fake_quantize_per_channel_affine")
def _fake_quantize_per_channel_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    return (grad * saved["mask"],)
    # END SOLUTION


# ----------------------------------------------------------------------------
# An integer Linear layer
# ----------------------------------------------------------------------------


class QuantizedLinear(Module):
    """y = x @ W.T + b computed on integers, for inference.

    weight:  QTensor (out_features, in_features), qint8, per channel along axis 0, symmetric
             (zero points 0), so each output row has its own scale s_w[o].
    bias:    int32 array (out_features,) in units of s_x * s_w[o] (zero point 0), or None.
    input_scale, input_zero_point, input_dtype: how a float input x is quantized (per tensor,
             from calibration): x_q = quantize_per_tensor(x, s_x, z_x, input_dtype).
    output_scale, output_zero_point, output_dtype: None (the default) returns the float output
             dequantized straight from the int32 accumulator; given, the accumulator is first
             REQUANTIZED to output_dtype (what an integer-only pipeline hands the next layer),
             then dequantized.

    forward(x): float Tensor (..., in_features) -> float32 Tensor (..., out_features):
        acc[..., o] = sum_k (x_q[..., k] - z_x) * W_q[o, k]        int32 (accumulate())
        y[..., o]   = (acc[..., o] + bias[o]) * (s_x * s_w[o])      float32
    Not differentiable (no graph is recorded): train in float or with fake quantization.
    """

    def __init__(self, weight: QTensor, bias: np.ndarray | None, input_scale: float, input_zero_point: int,
                 input_dtype: str = "quint8", output_scale: float | None = None, output_zero_point: int | None = None,
                 output_dtype: str = "quint8"):
        super().__init__()
        # TODO: weight must be a 2-D qint8 QTensor quantized per channel along axis 0, else a TypeError that
        #       names "QTensor"; validate the input (and output) dtype and zero point; keep every argument;
        #       in_features, out_features from the weight's shape.
        # BEGIN SOLUTION
        if not isinstance(weight, QTensor) or weight.dtype != "qint8" or weight.axis != 0 or len(weight.shape) != 2:
            raise TypeError("QuantizedLinear: weight must be a 2-D qint8 QTensor quantized per channel along axis 0")
        _, qmin, qmax = qrange(input_dtype)
        self.out_features, self.in_features = weight.shape
        self.weight, self.bias = weight, None if bias is None else np.asarray(bias, dtype=np.int32)
        self.input_scale = float(_check_scale(input_scale, "QuantizedLinear"))
        self.input_zero_point = int(_check_zero_point(input_zero_point, qmin, qmax, "QuantizedLinear"))
        self.input_dtype = input_dtype
        self.output_scale, self.output_zero_point, self.output_dtype = None, None, output_dtype
        if output_scale is not None:
            _, out_min, out_max = qrange(output_dtype)
            self.output_scale = float(_check_scale(output_scale, "QuantizedLinear output"))
            self.output_zero_point = int(_check_zero_point(0 if output_zero_point is None else output_zero_point,
                                                           out_min, out_max, "QuantizedLinear output"))
        # END SOLUTION

    @classmethod
    def from_float(cls, linear: Linear, input_scale: float, input_zero_point: int, input_dtype: str = "quint8",
                   output_scale: float | None = None, output_zero_point: int | None = None,
                   output_dtype: str = "quint8") -> "QuantizedLinear":
        """Quantize a trained float Linear: per-channel symmetric qint8 weights (scales from a
        PerChannelMinMaxObserver(ch_axis=0, dtype="qint8", symmetric=True)), and the bias as
        int32 = rint(b / (s_x * s_w[o])) with s_x * s_w[o] computed in float32.
        A non-Linear is a TypeError; a bias too large for int32 at that scale a ValueError.
        """
        # TODO: 1. observer = PerChannelMinMaxObserver(0, "qint8", symmetric=True); observe the weight;
        #          weight = quantize_per_channel(W, scales, zero_points, 0, "qint8").
        # TODO: 2. bias (if any): rint(b / (np.float32(s_x) * scales)) as int32; beyond int32's range: ValueError.
        # BEGIN SOLUTION
        if not isinstance(linear, Linear):
            raise TypeError(f"QuantizedLinear.from_float expects a tinytorch Linear, got {type(linear).__name__}")
        input_scale = float(_check_scale(input_scale, "QuantizedLinear.from_float"))
        observer = PerChannelMinMaxObserver(0, "qint8", symmetric=True)
        observer(linear.weight.data)
        scales, zero_points = observer.calculate_qparams()
        weight = quantize_per_channel(linear.weight.data, scales, zero_points, 0, "qint8")
        bias = None
        if linear.bias is not None:
            bias_scale = np.float32(input_scale) * np.asarray(weight.scale, dtype=np.float32)
            bias = np.rint(linear.bias.data.astype(np.float64) / bias_scale)
            info = np.iinfo(np.int32)
            if np.any(np.abs(bias) > info.max):
                raise ValueError(f"QuantizedLinear.from_float: the bias does not fit in int32 at scale input_scale *"
                                 f" weight_scale (input_scale={input_scale:g} is too small for this layer)")
            bias = bias.astype(np.int32)
        return cls(weight, bias, input_scale, input_zero_point, input_dtype, output_scale, output_zero_point,
                   output_dtype)
        # END SOLUTION

    def accumulate(self, x_values: np.ndarray) -> np.ndarray:
        """The int32 accumulator (..., out_features) for quantized inputs x_values (..., in_features):
        (x_values - input_zero_point) @ W_q.T, every operand int32 (np.matmul on int32 arrays), no bias.
        """
        # BEGIN SOLUTION
        x = np.asarray(x_values).astype(np.int32) - np.int32(self.input_zero_point)
        return np.matmul(x, self.weight.values.astype(np.int32).T)
        # END SOLUTION

    def forward(self, x: Any) -> Tensor:
        """Float (..., in_features) -> float32 (..., out_features); a wrong last dimension is a ValueError
        naming the input shape and the layer's width: "input shape (3, 5) does not end in in_features=4"."""
        # TODO: 1. Check the last dimension; x_q = quantize_per_tensor(x, s_x, z_x, input_dtype).
        # TODO: 2. acc = self.accumulate(x_q.values) (+ bias); multiplier = np.float32(s_x) * s_w (float32).
        # TODO: 3. No output qparams: Tensor(acc * multiplier). Else y_q = clamp(rint(acc * (multiplier /
        #          s_y)) + z_y) and return its dequantized float32 value (y_q - z_y) * s_y.
        # BEGIN SOLUTION
        shape = np.shape(x.data if isinstance(x, Tensor) else x)
        if len(shape) == 0 or shape[-1] != self.in_features:
            raise ValueError(f"QuantizedLinear: input shape {tuple(shape)} does not end in"
                             f" in_features={self.in_features}")
        x_q = quantize_per_tensor(x, self.input_scale, self.input_zero_point, self.input_dtype)
        acc = self.accumulate(x_q.values)
        if self.bias is not None:
            acc = acc + self.bias
        multiplier = np.float32(self.input_scale) * np.asarray(self.weight.scale, dtype=np.float32)
        if self.output_scale is None:
            return Tensor((acc * multiplier).astype(np.float32))
        _, out_min, out_max = qrange(self.output_dtype)
        s_y = np.float32(self.output_scale)
        y_q = np.clip(np.rint(acc * (multiplier / s_y)) + self.output_zero_point, out_min, out_max)
        return Tensor(((y_q - self.output_zero_point) * s_y).astype(np.float32))
        # END SOLUTION

    def nbytes(self) -> int:
        """Bytes as stored: int8 weights, float32 weight scales, int32 weight zero points, int32 bias,
        and the float32 scale + int32 zero point of the input (and of the output, if set)."""
        # BEGIN SOLUTION
        total = self.weight.nbytes + 8
        if self.bias is not None:
            total += self.bias.nbytes
        if self.output_scale is not None:
            total += 8
        return int(total)
        # END SOLUTION

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None},"
                f" input={self.input_dtype}(scale={self.input_scale:.4g}, zero_point={self.input_zero_point})")


# ----------------------------------------------------------------------------
# Whole models
# ----------------------------------------------------------------------------


class _Observed(Module):
    """A Linear with an observer in front of it (what quantize_model calibrates with; given)."""

    def __init__(self, linear: Linear, observer: Any):
        super().__init__()
        self.linear, self.observer = linear, observer

    def forward(self, x: Any) -> Any:
        self.observer(x)
        return self.linear(x)


def _replace_children(model: Module, make: Any) -> Module:
    """Replace every child (at any depth) for which make(child) returns a Module, keeping its name and
    position in the parent's _modules; a child shared by two parents gets one replacement. Returns the
    new root (model itself unless make(model) replaced it). Given helper."""
    replaced: dict[int, Module] = {}

    def swap(module: Any) -> Any:
        if id(module) not in replaced:
            new = make(module)
            replaced[id(module)] = module if new is None else new
        return replaced[id(module)]

    root = swap(model)
    if root is not model:
        return root
    for _, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            new = swap(child)
            if new is not child:
                parent._modules[name] = new  # module 03's child registry: same key, same place (setattr moves it last)
    return model


def quantize_model(model: Module, calibration_batches: Iterable[Any], input_dtype: str = "quint8",
                   calibration: str = "minmax", percentile: float = 99.99, inplace: bool = False) -> Module:
    """Post-training static quantization: every Linear in the tree becomes a QuantizedLinear.

    1. (unless inplace) work on copy.deepcopy(model): the float model stays usable.
    2. Put an observer in front of every Linear (_Observed, via _replace_children): MinMaxObserver
       (calibration="minmax") or PercentileObserver(percentile) (calibration="percentile"), both of
       input_dtype, affine.
    3. Run the model on every calibration batch (Tensors or arrays) under no_grad.
    4. Replace each _Observed by QuantizedLinear.from_float(linear, *observer.calculate_qparams()).
    The model's other modules (activations, Flatten...) stay float. Returns the quantized model.
    Errors: TypeError if model is not a Module; ValueError for an unknown calibration, an unknown
    dtype, or no calibration batch at all ("calibration_batches is empty").
    """
    # BEGIN SOLUTION
    if not isinstance(model, Module):
        raise TypeError(f"quantize_model expects a tinytorch Module, got {type(model).__name__}")
    if calibration not in ("minmax", "percentile"):
        raise ValueError(f"quantize_model: calibration must be 'minmax' or 'percentile', got {calibration!r}")
    qrange(input_dtype)
    if not inplace:
        model = copy.deepcopy(model)

    def observe(module: Any) -> Any:
        if not isinstance(module, Linear):
            return None
        if calibration == "minmax":
            return _Observed(module, MinMaxObserver(input_dtype))
        return _Observed(module, PercentileObserver(percentile, input_dtype))

    model = _replace_children(model, observe)
    seen = 0
    with no_grad():
        for batch in calibration_batches:
            model(batch if isinstance(batch, Tensor) else Tensor(batch))
            seen += 1
    if not seen:
        raise ValueError("quantize_model: calibration_batches is empty; at least one batch is needed to"
                         " choose the activation ranges")

    def convert(module: Any) -> Any:
        if not isinstance(module, _Observed):
            return None
        scale, zero_point = module.observer.calculate_qparams()
        return QuantizedLinear.from_float(module.linear, scale, zero_point, input_dtype)

    return _replace_children(model, convert)
    # END SOLUTION


def model_size_bytes(model: Module) -> int:
    """Bytes of the model's parameters as actually stored: a float Parameter counts its nbytes, a
    QuantizedLinear its nbytes() (int8 weights + float32 scales + int32 zero points and bias).
    Every module of the tree counted once (a shared module or Parameter once)."""
    # BEGIN SOLUTION
    total, seen = 0, set()
    for module in model.modules():
        if isinstance(module, QuantizedLinear):
            total += module.nbytes()
        for param in module.parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                total += int(param.nbytes)
    return total
    # END SOLUTION
