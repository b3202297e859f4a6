"""Checks for module 16: Quantization.

Quantization parameters are compared with torch.ao.quantization's MinMaxObserver and
PerChannelMinMaxObserver (`calculate_qparams()`: scales bit for bit, zero points exactly) for
qint8/quint8, affine and symmetric, over one or several batches. `quantize_per_tensor` and
`quantize_per_channel` are compared with torch.quantize_per_tensor / torch.quantize_per_channel:
integer values (`int_repr()`), scales and zero points exactly, dequantized values with float32
tolerances, on Hypothesis-drawn arrays of 1-D to 4-D whose extreme slices hold values far outside
the range (+-1e6, +-3e38, +-inf) and exact rounding ties. One documented exception: torch's two
quantize kernels fuse the multiply and the zero-point add (FMA), so where x / scale lies within a
float32 rounding error of a .5 tie torch may round the other way; there the check demands the
lesson's rule, rint(x * float32(1 / scale)) + zero_point, which is torch's fake_quantize rule bit
for bit. Fake quantization is compared with torch.fake_quantize_per_tensor_affine and
torch.fake_quantize_per_channel_affine, forward values AND gradients (the straight-through
estimator), including custom ranges (4-bit) and clamped elements. QuantizedLinear's int32
accumulator is compared exactly with an int64 numpy computation; its output with the quantize-
dequantize reference (torch), and with the float Linear within a bound derived from the scales.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.learner_side import learner_side, probes
from checks.harness.parity import assert_parity, assert_same
from tinytorch import quantization as Q
from tinytorch.activations import ReLU
from tinytorch.layers import Linear, Sequential, manual_seed
from tinytorch.tensor import Tensor

# torch >= 2.10 warns that its quantized tensor types are deprecated; the checks still use them.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TORCH_DTYPES = {"qint8": torch.qint8, "quint8": torch.quint8}
RANGES = {"qint8": (-128, 127), "quint8": (0, 255)}
STORAGE = {"qint8": np.dtype(np.int8), "quint8": np.dtype(np.uint8)}
EXTREMES = (1e6, -1e6, 3e38, -3e38, np.inf, -np.inf)
SCALES = st.floats(float(np.float32(1e-3)), 2.0, width=32)       # bounds exactly representable in float32
FAKE_SCALES = st.floats(float(np.float32(1e-2)), 2.0, width=32)


def _torch_observer(dtype: str, symmetric: bool, per_channel_axis=None):
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

    if per_channel_axis is None:
        scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
        return MinMaxObserver(dtype=TORCH_DTYPES[dtype], qscheme=scheme)
    scheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
    return PerChannelMinMaxObserver(ch_axis=per_channel_axis, dtype=TORCH_DTYPES[dtype], qscheme=scheme)


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


# -- strategies ------------------------------------------------------------------------------------


@st.composite
def arrays_with_extremes(draw, min_dims=1, max_dims=4, extremes=EXTREMES, dtype=np.float32):
    """A float array; in some draws one slice along axis 0 is overwritten with extreme values."""
    shape = draw(tst.shapes(min_dims=min_dims, max_dims=max_dims, max_side=5))
    x = np.array(draw(tst.arrays(shape, dtype=dtype, low=-20.0, high=20.0)))
    if extremes and draw(st.booleans()):
        row = draw(st.integers(0, shape[0] - 1))
        x[row] = draw(st.sampled_from(extremes))
    return x


@st.composite
def qparams(draw, dtype=None):
    """(dtype, scale, zero_point): scale a float32-representable value in [1e-3, 2]."""
    dtype = dtype or draw(st.sampled_from(sorted(RANGES)))
    qmin, qmax = RANGES[dtype]
    scale = draw(SCALES)
    return dtype, float(scale), draw(st.integers(qmin, qmax))


def _with_ties(draw, x: np.ndarray, scale: float) -> np.ndarray:
    """Overwrite a few elements with exact .5 ties k + 0.5 times the float32 scale."""
    if draw(st.booleans()) and x.size:
        flat = x.reshape(-1).copy()
        k = draw(st.lists(st.integers(-300, 300), min_size=1, max_size=flat.size))
        flat[: len(k)] = (np.array(k, dtype=np.float64) + 0.5) * np.float32(scale)
        return flat.reshape(x.shape).astype(x.dtype)
    return x


def _lesson_rule(x: np.ndarray, scale, zero_point, qmin: int, qmax: int) -> np.ndarray:
    """The rule the lesson states: clamp(rint(x * float32(1 / scale)) + zero_point), float32 arithmetic."""
    inv = np.float32(1) / np.asarray(scale, dtype=np.float32)
    with np.errstate(over="ignore"):
        return np.clip(np.rint(x.astype(np.float32) * inv) + zero_point, qmin, qmax).astype(np.int64)


def _near_tie(x: np.ndarray, scale, zero_point) -> np.ndarray:
    """Where x * (1 / scale) is within float32 rounding error of a .5 tie, even after adding zero_point."""
    inv = np.float32(1) / np.asarray(scale, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        t = x.astype(np.float32) * inv
        frac = np.abs(t - np.floor(t))
        room = 4 * np.spacing(np.abs(t) + np.abs(np.asarray(zero_point, dtype=np.float32)) + 1).astype(np.float32)
        return np.isfinite(t) & (np.abs(frac - 0.5) <= room)


def assert_int_parity(got: np.ndarray, expected: np.ndarray, x: np.ndarray, scale, zero_point, qmin, qmax,
                      what: str) -> None:
    """Exact equality with torch's integers, except near float32 ties where the lesson's rule must hold."""
    got = np.asarray(got)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} but torch gives {expected.shape}"
    rule = _lesson_rule(x, scale, zero_point, qmin, qmax)
    ties = _near_tie(x, scale, zero_point)
    got64, expected64 = got.astype(np.int64), expected.astype(np.int64)
    bad = np.where(ties, got64 != rule, got64 != expected64)
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        where = "a float32 rounding tie (the lesson's rint rule applies)" if ties[i] else "not a tie"
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} integer values wrong; first at index {i}: x = {x[i]!r},"
            f" scale = {np.asarray(scale).ravel()[:4]}, got {got64[i]}, torch gives {expected64[i]},"
            f" rint(x * float32(1/scale)) + zero_point clamped = {rule[i]} ({where})")


# -- calculate_qparams and observers ----------------------------------------------------------------


@given(x=arrays_with_extremes(extremes=(1e6, -1e6, 1e30, -1e30)), dtype=st.sampled_from(sorted(RANGES)),
       symmetric=st.booleans(), shift=st.sampled_from([0.0, 5.0, -5.0, 25.0]))
def test_calculate_qparams_matches_torch_minmax_observer(x, dtype, symmetric, shift):
    x = (x + np.float32(shift)).astype(np.float32)  # ranges entirely above or below 0 too
    observer = _torch_observer(dtype, symmetric)
    observer(_t(x))
    scale, zero_point = observer.calculate_qparams()
    got_scale, got_zp = Q.calculate_qparams(float(x.min()), float(x.max()), dtype, symmetric)
    assert isinstance(got_scale, float) and isinstance(got_zp, int), (
        f"calculate_qparams of two numbers returns (float, int), got ({type(got_scale).__name__},"
        f" {type(got_zp).__name__})")
    assert_same(np.float32(got_scale), scale[0], f"scale for [{x.min()}, {x.max()}] {dtype} symmetric={symmetric}",
                rtol=0, atol=0)
    assert got_zp == int(zero_point[0]), (
        f"zero_point for [{x.min()}, {x.max()}] {dtype} symmetric={symmetric}: got {got_zp},"
        f" torch's MinMaxObserver gives {int(zero_point[0])}")


@given(batches=st.lists(arrays_with_extremes(extremes=(1e6, -1e6)), min_size=1, max_size=3),
       dtype=st.sampled_from(sorted(RANGES)), symmetric=st.booleans())
def test_minmax_observer_tracks_running_range_like_torch(batches, dtype, symmetric):
    ours, theirs = Q.MinMaxObserver(dtype, symmetric), _torch_observer(dtype, symmetric)
    for batch in batches:
        returned = ours(Tensor(batch))
        theirs(_t(batch))
        assert_same(returned, _t(batch), "the observer returns its input unchanged")
    assert_same(np.float32(ours.min_val), theirs.min_val, "MinMaxObserver.min_val after every batch", rtol=0, atol=0)
    assert_same(np.float32(ours.max_val), theirs.max_val, "MinMaxObserver.max_val after every batch", rtol=0, atol=0)
    scale, zero_point = theirs.calculate_qparams()
    got_scale, got_zp = ours.calculate_qparams()
    assert_same(np.float32(got_scale), scale[0], "MinMaxObserver.calculate_qparams() scale", rtol=0, atol=0)
    assert got_zp == int(zero_point[0]), f"MinMaxObserver zero_point: got {got_zp}, torch {int(zero_point[0])}"


@st.composite
def channel_case(draw):
    x = draw(arrays_with_extremes(min_dims=2, max_dims=4, extremes=(1e6, -1e6)))  # torch needs 2-D+
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return x, axis


@given(case=channel_case(), dtype=st.sampled_from(sorted(RANGES)), symmetric=st.booleans(), batches=st.integers(1, 2))
def test_per_channel_observer_matches_torch(case, dtype, symmetric, batches):
    x, axis = case
    ours, theirs = Q.PerChannelMinMaxObserver(axis, dtype, symmetric), _torch_observer(dtype, symmetric, axis % x.ndim)
    for b in range(batches):
        batch = (x * np.float32(1 + b)).astype(np.float32)
        ours(batch)
        theirs(_t(batch))
    scales, zero_points = theirs.calculate_qparams()
    got_scales, got_zps = ours.calculate_qparams()
    assert_same(np.asarray(got_scales, dtype=np.float32), scales,
                f"per-channel scales (axis {axis}, {dtype}, symmetric={symmetric})", rtol=0, atol=0)
    np.testing.assert_array_equal(np.asarray(got_zps, dtype=np.int64), zero_points.numpy().astype(np.int64),
                                  err_msg=f"per-channel zero points (axis {axis}, {dtype}, symmetric={symmetric})"
                                          " differ from torch's PerChannelMinMaxObserver")
    direct = Q.calculate_qparams(ours.min_val, ours.max_val, dtype, symmetric)
    np.testing.assert_array_equal(direct[0], got_scales, err_msg="calculate_qparams(arrays) = the observer's scales")


def test_calculate_qparams_known_values_and_eps_floor():
    # [-1, 3] onto quint8: scale 4/255, zero point 0 - round(-1 / (4/255)) = round(63.75) = 64
    scale, zp = Q.calculate_qparams(-1.0, 3.0, "quint8")
    assert abs(scale - 4 / 255) < 1e-8 and zp == 64, f"[-1, 3] quint8 affine: expected (4/255, 64), got ({scale}, {zp})"
    # symmetric qint8: scale = max(|min|, |max|) / 127.5, zero point 0; quint8 symmetric: zero point 128
    scale, zp = Q.calculate_qparams(-1.0, 3.0, "qint8", symmetric=True)
    assert abs(scale - 3 / 127.5) < 1e-8 and zp == 0, (
        f"[-1, 3] qint8 symmetric: expected (3/127.5, 0), got ({scale}, {zp})")
    assert Q.calculate_qparams(-1.0, 3.0, "quint8", symmetric=True)[1] == 128, "quint8 symmetric zero point is 128"
    # a range that excludes 0 is widened to include it: [2, 5] behaves as [0, 5]
    assert Q.calculate_qparams(2.0, 5.0) == Q.calculate_qparams(0.0, 5.0), "the range must be widened to include 0"
    # a constant zero tensor: scale floored at float32 eps, not 0 (no division by zero later)
    scale, zp = Q.calculate_qparams(0.0, 0.0)
    assert scale == float(np.finfo(np.float32).eps) and zp == 0, f"[0, 0]: expected (eps, 0), got ({scale}, {zp})"


def test_observers_skip_empty_inputs_and_accept_python_lists():
    observer = Q.MinMaxObserver("qint8")
    observer(np.zeros(0, dtype=np.float32))
    observer([1, 2, 3])
    observer(Tensor(np.array([-0.5, 0.25], dtype=np.float32)))
    assert (observer.min_val, observer.max_val) == (-0.5, 3.0), (
        f"running range of [], [1, 2, 3] and [-0.5, 0.25]: expected (-0.5, 3.0), got"
        f" ({observer.min_val}, {observer.max_val}) (an empty tensor changes nothing)")
    per_channel = Q.PerChannelMinMaxObserver(1, "qint8", symmetric=True)
    per_channel(np.zeros((0, 3), dtype=np.float32))
    assert per_channel.min_val is None, "an empty tensor is not observed (torch returns it untouched)"
    per_channel(np.array([[1.0, -2.0, 0.5]], dtype=np.float32))
    scales, zero_points = per_channel.calculate_qparams()
    np.testing.assert_allclose(scales, np.array([1.0, 2.0, 0.5]) / 127.5, rtol=1e-6, err_msg="per-channel scales")
    np.testing.assert_array_equal(zero_points, 0, err_msg="symmetric qint8 zero points")


@given(x=arrays_with_extremes(extremes=(1e4, -1e4)), p=st.sampled_from([50.0, 90.0, 99.0, 99.9, 100.0]))
def test_calibrate_percentile_matches_torch_quantile(x, p):
    low, high = Q.calibrate_percentile(Tensor(x), p)
    expected = torch.quantile(_t(x).double().flatten(), torch.tensor([1 - p / 100, p / 100], dtype=torch.float64))
    assert_same(np.array([low, high]), expected, f"calibrate_percentile(x, {p}) vs torch.quantile", rtol=1e-9,
                atol=1e-9)


def test_percentile_calibration_ignores_an_outlier_that_minmax_cannot():
    rng = np.random.default_rng(0)
    x = rng.normal(size=10_000).astype(np.float32)
    x[17] = 1000.0  # one wild activation
    minmax = Q.MinMaxObserver()
    minmax(x)
    percentile = Q.PercentileObserver(99.9)
    percentile(x[:5000])
    percentile(x[5000:])
    mm_scale, _ = minmax.calculate_qparams()
    pc_scale, pc_zp = percentile.calculate_qparams()
    assert (pc_scale, pc_zp) == Q.calculate_qparams(*Q.calibrate_percentile(x, 99.9)), (
        "PercentileObserver: the qparams of calibrate_percentile over everything observed")
    assert pc_scale < mm_scale / 100, (
        f"one outlier at 1000 must not set the scale: min-max {mm_scale}, 99.9% {pc_scale}")
    typical = x[np.abs(x) < 3]
    mm_err = np.abs(Q.quantize_per_tensor(typical, *minmax.calculate_qparams()).dequantize().data - typical).mean()
    pc_err = np.abs(Q.quantize_per_tensor(typical, pc_scale, pc_zp).dequantize().data - typical).mean()
    assert pc_err < mm_err / 10, f"typical values: mean error with min-max {mm_err:.4g}, with percentile {pc_err:.4g}"


# -- quantize / dequantize -----------------------------------------------------------------------------


@given(data=st.data(), x=arrays_with_extremes(), params=qparams())
def test_quantize_per_tensor_matches_torch(data, x, params):
    dtype, scale, zero_point = params
    x = _with_ties(data.draw, x, scale)
    qmin, qmax = RANGES[dtype]
    expected = torch.quantize_per_tensor(_t(x), scale, zero_point, TORCH_DTYPES[dtype])
    q = Q.quantize_per_tensor(Tensor(x), scale, zero_point, dtype)
    values = q.int_repr()
    assert values.dtype == STORAGE[dtype], f"{dtype} values are stored as {STORAGE[dtype]}, got {values.dtype}"
    assert_int_parity(values, expected.int_repr().numpy(), x, scale, zero_point, qmin, qmax,
                      f"quantize_per_tensor(scale={scale}, zero_point={zero_point}, {dtype})")
    assert q.scale == expected.q_scale() and q.zero_point == expected.q_zero_point(), (
        f"QTensor scale/zero_point: got ({q.scale}, {q.zero_point}), torch ({expected.q_scale()},"
        f" {expected.q_zero_point()})")
    assert q.axis is None and q.dtype == dtype, f"a per-tensor QTensor has axis None and dtype {dtype}"
    if np.array_equal(values, expected.int_repr().numpy()):
        assert_same(q.dequantize(), expected.dequantize(), "dequantize() vs torch's dequantize()")
    assert_same(q.dequantize(), _t(((values.astype(np.float32) - zero_point) * np.float32(scale)).astype(np.float32)),
                "dequantize() = (q - zero_point) * scale in float32")


@st.composite
def per_channel_case(draw):
    x = draw(arrays_with_extremes())
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    dtype = draw(st.sampled_from(sorted(RANGES)))
    qmin, qmax = RANGES[dtype]
    channels = x.shape[axis]
    scales = np.array(draw(st.lists(SCALES, min_size=channels, max_size=channels)),
                      dtype=np.float64)
    zero_points = np.array(draw(st.lists(st.integers(qmin, qmax), min_size=channels, max_size=channels)),
                           dtype=np.int64)
    x = _with_ties(draw, x, scales[0]) if channels == 1 else x
    return x, axis, dtype, scales, zero_points


@given(case=per_channel_case())
def test_quantize_per_channel_matches_torch(case):
    x, axis, dtype, scales, zero_points = case
    qmin, qmax = RANGES[dtype]
    ax = axis % x.ndim
    expected = torch.quantize_per_channel(_t(x), torch.from_numpy(scales), torch.from_numpy(zero_points), ax,
                                          TORCH_DTYPES[dtype])
    q = Q.quantize_per_channel(x, scales, zero_points, axis, dtype)
    shape = [1] * x.ndim
    shape[ax] = -1
    assert_int_parity(q.int_repr(), expected.int_repr().numpy(), x, scales.reshape(shape), zero_points.reshape(shape),
                      qmin, qmax, f"quantize_per_channel(axis={axis}, {dtype})")
    assert q.axis == ax, f"QTensor.axis: got {q.axis}, expected {ax} (negative axes count from the end)"
    assert_same(np.asarray(q.scale), expected.q_per_channel_scales(), "QTensor per-channel scales (float64)",
                rtol=0, atol=0)
    np.testing.assert_array_equal(np.asarray(q.zero_point), expected.q_per_channel_zero_points().numpy(),
                                  err_msg="QTensor per-channel zero points differ from torch's")
    if np.array_equal(q.int_repr(), expected.int_repr().numpy()):
        assert_same(q.dequantize(), expected.dequantize(), "per-channel dequantize() vs torch's")


def test_quantize_saturates_extremes_and_rounds_ties_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1e6, -1e6, np.inf, -np.inf, 3e38], dtype=np.float32)
    q = Q.quantize_per_tensor(x, 1.0, 0, "qint8").int_repr()
    np.testing.assert_array_equal(q, [0, 2, 2, 0, -2, 127, -128, 127, -128, 127], err_msg=(
        "ties go to the even integer (np.rint, like torch), out-of-range values saturate at qmin/qmax"))
    u = Q.quantize_per_tensor(x, 1.0, 10, "quint8").int_repr()
    np.testing.assert_array_equal(u, [10, 12, 12, 10, 8, 255, 0, 255, 0, 255], err_msg=(
        "quint8 with zero point 10: round first (to even), then add the zero point, then clamp to [0, 255]"))
    assert_same(Q.quantize_per_tensor(np.float64(0.3) * np.ones(3), 0.1, 0, "qint8").dequantize(),
                torch.quantize_per_tensor(torch.full((3,), 0.3), 0.1, 0, torch.qint8).dequantize(),
                "float64 input is rounded to float32 first (torch quantizes float32 only)")
    # just above a tie in float64, exactly on it in float32: rounding to float32 first makes it a tie (to even)
    near_ties = np.array([0.5000000001, 2.5000000001, -1.5000000001, 1.4999999999])
    expected = torch.quantize_per_tensor(torch.from_numpy(near_ties.astype(np.float32)), 1.0, 0, torch.qint8)
    for name, q in (("quantize_per_tensor", Q.quantize_per_tensor(near_ties, 1.0, 0, "qint8")),
                    ("quantize_per_channel", Q.quantize_per_channel(near_ties.reshape(4, 1), np.ones(1),
                                                                    np.zeros(1, dtype=np.int64), 1, "qint8"))):
        np.testing.assert_array_equal(q.int_repr().reshape(-1), expected.int_repr().numpy(), err_msg=(
            f"{name} of float64 {near_ties.tolist()} (scale 1): round to float32 first, where 0.5000000001 IS 0.5,"
            " a tie that goes to the even 0 (torch quantizes float32 only)"))


def test_qtensor_nbytes_counts_values_scales_and_zero_points():
    x = np.zeros((16, 32), dtype=np.float32)
    per_tensor = Q.quantize_per_tensor(x, 0.1, 0, "qint8")
    assert per_tensor.nbytes == 16 * 32 + 4 + 4, f"per tensor: 512 int8 + float32 scale + int32 zero point, got" \
                                                  f" {per_tensor.nbytes}"
    per_channel = Q.quantize_per_channel(x, np.full(16, 0.1), np.zeros(16, dtype=np.int64), 0, "qint8")
    assert per_channel.nbytes == 16 * 32 + 16 * 4 + 16 * 4, f"per channel: 512 int8 + 16 float32 + 16 int32, got" \
                                                             f" {per_channel.nbytes}"
    assert per_channel.shape == (16, 32) and per_channel.int_repr().dtype == np.int8
    assert "per_tensor" in repr(per_tensor) and "per_channel" in repr(per_channel), "QTensor's repr names its scheme"


# -- fake quantization ---------------------------------------------------------------------------------


# (edge, offset in steps): rounds back inside (+-0.3), rounds outside (+-0.7), exactly on the edge
OFFSETS = [("max", 0.3), ("max", 0.7), ("max", 0.0), ("min", -0.3), ("min", -0.7), ("min", 0.0)]


@st.composite
def fake_case(draw):
    dtype = draw(tst.float_dtypes)
    x = draw(arrays_with_extremes(extremes=(1e4, -1e4), dtype=dtype))
    qmin, qmax = draw(st.sampled_from([(-128, 127), (0, 255), (0, 15), (-8, 7), (-2, 2)]))
    scale = float(draw(FAKE_SCALES))
    zero_point = draw(st.integers(qmin, qmax))
    x = _with_ties(draw, x, scale)
    if draw(st.booleans()):  # just inside / outside the clamp boundaries, before and after rounding
        offsets = draw(st.lists(st.sampled_from(OFFSETS), min_size=1, max_size=x.size))
        flat = x.reshape(-1).copy()
        for i, (edge, offset) in enumerate(offsets):
            flat[i] = ((qmax if edge == "max" else qmin) - zero_point + offset) * np.float32(scale)
        x = flat.reshape(x.shape).astype(x.dtype)
    return x, scale, zero_point, qmin, qmax


@given(case=fake_case())
def test_fake_quantize_per_tensor_matches_torch_forward_and_gradient(case):
    x, scale, zero_point, qmin, qmax = case

    def fn(a):
        module = torch if isinstance(a, torch.Tensor) else Q
        return module.fake_quantize_per_tensor_affine(a, scale, zero_point, qmin, qmax)

    assert_parity(fn, x, grad=True)


@st.composite
def fake_channel_case(draw):
    dtype = draw(tst.float_dtypes)
    x = draw(arrays_with_extremes(extremes=(1e4, -1e4), dtype=dtype))
    axis = draw(st.integers(0, x.ndim - 1))
    qmin, qmax = draw(st.sampled_from([(-128, 127), (0, 255), (0, 15), (-8, 7)]))
    channels = x.shape[axis]
    scales = np.array(draw(st.lists(FAKE_SCALES, min_size=channels, max_size=channels)),
                      dtype=np.float32)
    zero_points = np.array(draw(st.lists(st.integers(qmin, qmax), min_size=channels, max_size=channels)),
                           dtype=np.int32)
    if draw(st.booleans()):  # one element per channel just inside / outside a clamp boundary
        edge, offset = draw(st.sampled_from(OFFSETS))
        x = np.array(x)
        bound = np.float64(qmax if edge == "max" else qmin)
        first = np.moveaxis(x, axis, 0)[(slice(None),) + (0,) * (x.ndim - 1)]
        first[...] = (bound - zero_points + offset) * scales.astype(np.float64)
    return x, scales, zero_points, axis, qmin, qmax


@given(case=fake_channel_case())
def test_fake_quantize_per_channel_matches_torch_forward_and_gradient(case):
    x, scales, zero_points, axis, qmin, qmax = case

    def fn(a):
        if isinstance(a, torch.Tensor):
            return torch.fake_quantize_per_channel_affine(a, torch.from_numpy(scales), torch.from_numpy(zero_points),
                                                          axis, qmin, qmax)
        return Q.fake_quantize_per_channel_affine(a, scales, zero_points, axis, qmin, qmax)

    # Exact: each output is one rounding and one product, no sum, and torch computes them with the float32
    # scales cast to the input's dtype. float64 scales (1 / 0.1 in float64) differ only in the 8th digit,
    # inside any tolerance, yet give other levels than torch's (0.2 instead of float32(0.1) * 2).
    assert_parity(fn, x, grad=True, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fake_quantize_per_channel_uses_float32_scales_at_ties(dtype):
    """x = 0.15, 0.25, 0.35 with scale float32(0.1): x * (1 / scale) lands on the .5 ties only when 1 / scale is
    rounded to float32 (10.0), as torch does; float64 scales give 1.49999998 and round down a level."""
    x = np.array([[0.15, -0.25], [0.25, 0.35], [0.35, -0.15]], dtype=dtype)
    scales, zero_points = np.array([0.1, 0.1], dtype=np.float32), np.zeros(2, dtype=np.int32)
    got = Q.fake_quantize_per_channel_affine(Tensor(x), scales, zero_points, 1, -128, 127)
    expected = torch.fake_quantize_per_channel_affine(torch.from_numpy(x), torch.from_numpy(scales),
                                                      torch.from_numpy(zero_points), 1, -128, 127)
    assert_same(got, expected, "fake_quantize_per_channel_affine at ties (float32 scales, then the input's dtype)",
                rtol=0, atol=0)


def test_fake_quantize_straight_through_gradient_known_answer():
    import tinytorch.autograd  # noqa: F401

    # scale 0.5, zero point 0, range [-4, 3]: x / 0.5 rounds to -5 (clamped), -4, 0, 3, 4 (clamped), 3
    x = Tensor(np.array([-2.6, -2.0, 0.1, 1.5, 2.0, 1.7], dtype=np.float32), requires_grad=True)
    y = Q.fake_quantize_per_tensor_affine(x, 0.5, 0, -4, 3)
    np.testing.assert_allclose(y.data, [-2.0, -2.0, 0.0, 1.5, 1.5, 1.5], err_msg="fake quantize forward values")
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 1, 1, 1, 0, 1], err_msg=(
        "straight-through gradient: 1 where rint(x / scale) + zero_point is inside [quant_min, quant_max], 0 where"
        " it was clamped"))
    w = Tensor(np.array([[0.3, -9.0], [0.3, 9.0]], dtype=np.float64), requires_grad=True)
    z = Q.fake_quantize_per_channel_affine(w, np.array([0.1, 1.0], dtype=np.float32), np.array([0, 5]), 0, -8, 7)
    assert z.dtype == np.float64, f"fake quantization keeps the input's dtype, got {z.dtype}"
    z.sum().backward()
    np.testing.assert_array_equal(w.grad.data, [[1, 0], [1, 0]], err_msg=(
        "per channel: row 0 (scale 0.1, zp 0): 0.3 -> 3 inside, -9 -> -90 clamped; row 1 (scale 1, zp 5):"
        " 0.3 -> 5 inside, 9 -> 14 clamped"))


# -- QuantizedLinear -------------------------------------------------------------------------------


@st.composite
def linear_case(draw):
    n_in, n_out = draw(st.integers(1, 12)), draw(st.integers(1, 8))
    lead = tuple(draw(tst.shapes(min_dims=1, max_dims=2, max_side=4)))
    x = draw(tst.arrays(lead + (n_in,), dtype=np.float32, low=-3.0, high=3.0))
    dtype = draw(st.sampled_from(sorted(RANGES)))
    return n_in, n_out, x, dtype, draw(st.booleans()), draw(st.integers(0, 2**16))


def _build(n_in, n_out, x, dtype, bias, seed):
    manual_seed(seed)
    linear = Linear(n_in, n_out, bias=bias)
    # calibrated on at least [-1, 1]: a range wider than the data is legitimate, a degenerate one is not
    observer = _torch_observer(dtype, False)
    observer(torch.tensor([min(float(x.min()), -1.0), max(float(x.max()), 1.0)]))
    scale, zero_point = (float(v[0]) for v in observer.calculate_qparams())
    zero_point = int(zero_point)
    return linear, Q.QuantizedLinear.from_float(linear, scale, zero_point, dtype), scale, zero_point


@given(case=linear_case())
def test_quantized_linear_weights_are_torchs_per_channel_symmetric_qint8(case):
    n_in, n_out, x, dtype, bias, seed = case
    linear, qlinear, _, _ = _build(n_in, n_out, x, dtype, bias, seed)
    w = linear.weight.data
    observer = _torch_observer("qint8", True, 0)
    observer(_t(w))
    scales, zero_points = observer.calculate_qparams()
    expected = torch.quantize_per_channel(_t(w), scales.double(), zero_points, 0, torch.qint8)
    weight = qlinear.weight
    assert weight.dtype == "qint8" and weight.axis == 0, "QuantizedLinear.weight: qint8, per channel along axis 0"
    assert_int_parity(weight.int_repr(), expected.int_repr().numpy(), w, scales.numpy()[:, None], 0, -128, 127,
                      "QuantizedLinear.weight integers")
    assert_same(np.asarray(weight.scale, dtype=np.float32), scales, "QuantizedLinear.weight scales", rtol=0, atol=0)
    np.testing.assert_array_equal(np.asarray(weight.zero_point), 0, err_msg="symmetric weights: zero points 0")


@given(case=linear_case())
def test_quantized_linear_int32_accumulation_is_exact(case):
    n_in, n_out, x, dtype, bias, seed = case
    _, qlinear, scale, zero_point = _build(n_in, n_out, x, dtype, bias, seed)
    x_q = torch.quantize_per_tensor(_t(x), scale, zero_point, TORCH_DTYPES[dtype]).int_repr().numpy()
    acc = qlinear.accumulate(x_q)
    assert acc.dtype == np.int32, f"accumulate() must return the int32 accumulator, got {acc.dtype}"
    w_q = qlinear.weight.int_repr().astype(np.int64)
    expected = (x_q.astype(np.int64) - zero_point) @ w_q.T
    np.testing.assert_array_equal(acc.astype(np.int64), expected, err_msg=(
        "accumulate(x_q) = (x_q - input_zero_point) @ W_q.T, computed exactly in int32 (compared with int64)"))


def test_quantized_linear_int32_accumulator_does_not_overflow_at_extremes():
    # weights -1 at scale 1/128 are -128 exactly; weights 1 at scale 1/127 are 127
    w = np.stack([-np.ones(784), np.ones(784)]).astype(np.float32)
    weight = Q.quantize_per_channel(w, np.array([1 / 128, 1 / 127]), np.zeros(2, dtype=np.int64), 0, "qint8")
    np.testing.assert_array_equal(weight.int_repr()[:, :3], [[-128] * 3, [127] * 3], err_msg="extreme weights")
    qlinear = Q.QuantizedLinear(weight, None, 1.0, 0, "quint8")
    x_q = np.full((1, 784), 255, dtype=np.uint8)
    acc = qlinear.accumulate(x_q)
    np.testing.assert_array_equal(acc, [[255 * -128 * 784, 255 * 127 * 784]], err_msg=(
        "784 products of 255 and -128 / 127 sum to -25,589,760 / 25,389,840: int32 holds them; int8 or int16"
        " accumulators would wrap"))
    y = qlinear(Tensor(np.full((1, 784), 300.0, dtype=np.float32)))
    np.testing.assert_allclose(y.data, [[-255 * 784, 255 * 784]], rtol=1e-6, err_msg=(
        "inputs beyond the calibrated range saturate at 255 before the matmul"))


def _error_bound(qlinear, linear, x, scale):
    """Per-output bound on |quantized - float| from the scales (the lesson derives it):
    s_x / 2 * ||w_o||_1 + s_w[o] / 2 * ||x_hat||_1 + s_x * s_w[o] / 2 (bias rounding), plus float32 slack."""
    w = linear.weight.data.astype(np.float64)
    s_w = np.asarray(qlinear.weight.scale, dtype=np.float64)
    x_hat = torch.quantize_per_tensor(_t(x), scale, qlinear.input_zero_point, TORCH_DTYPES[qlinear.input_dtype])
    x_hat = x_hat.dequantize().numpy().astype(np.float64)
    bound = scale / 2 * np.abs(w).sum(axis=1) + np.abs(x_hat).sum(axis=-1, keepdims=True) * s_w / 2 + scale * s_w / 2
    slack = 1e-5 * (1 + np.abs(x_hat) @ np.abs(w).T)
    return bound + slack


@given(case=linear_case())
def test_quantized_linear_output_is_within_the_derived_error_bound(case):
    n_in, n_out, x, dtype, bias, seed = case
    linear, qlinear, scale, _ = _build(n_in, n_out, x, dtype, bias, seed)
    y = qlinear(Tensor(x))
    assert y.dtype == np.float32 and y.shape == x.shape[:-1] + (n_out,), (
        f"QuantizedLinear output: float32 of shape {x.shape[:-1] + (n_out,)}, got {y.dtype} {y.shape}")
    error = np.abs(y.data.astype(np.float64) - linear(Tensor(x)).data.astype(np.float64))
    bound = _error_bound(qlinear, linear, x, scale)
    if (error > bound).any():
        i = tuple(int(v) for v in np.argwhere(error > bound)[0])
        raise AssertionError(f"QuantizedLinear vs float Linear at {i}: error {error[i]:.4g} exceeds the bound"
                             f" {bound[i]:.4g} (s_x/2 |w|_1 + s_w/2 |x_hat|_1 + s_x s_w/2)")


@given(case=linear_case())
def test_quantized_linear_matches_torch_quantize_dequantize_reference(case):
    n_in, n_out, x, dtype, bias, seed = case
    linear, qlinear, scale, zero_point = _build(n_in, n_out, x, dtype, bias, seed)
    x_hat = torch.quantize_per_tensor(_t(x), scale, zero_point, TORCH_DTYPES[dtype]).dequantize()
    weight = qlinear.weight
    w_hat = torch.from_numpy(weight.int_repr().astype(np.float32)) * torch.from_numpy(
        np.asarray(weight.scale, dtype=np.float32))[:, None]
    b = None if linear.bias is None else _t(linear.bias.data)
    expected = F.linear(x_hat.double(), w_hat.double(), None if b is None else b.double())
    # the only differences: the int32 bias rounds b to a multiple of s_x * s_w[o] (half of it at most), float32,
    # and an input within float32 rounding of a .5 tie, where torch's fused quantize may take the other step
    # (the module's documented exception): one step s_x times that input's |weight| in each output
    s_w = np.asarray(weight.scale, dtype=np.float64)
    got = qlinear(Tensor(x)).data.astype(np.float64)
    ties = _near_tie(x, scale, zero_point).astype(np.float64)
    allowed = (scale * s_w / 2 * (b is not None) + 1e-5 * (1 + np.abs(expected.numpy()))
               + scale * ties @ np.abs(w_hat.double().numpy()).T)
    worst = np.abs(got - expected.numpy()) - allowed
    assert (worst <= 0).all(), (
        f"QuantizedLinear vs torch's quantize-dequantize reference F.linear(dq(x), dq(W), b): max excess"
        f" {worst.max():.3g} at {np.unravel_index(int(np.argmax(worst)), worst.shape)}")


def test_quantized_linear_requantizes_its_output_when_given_output_qparams():
    rng = np.random.default_rng(3)
    manual_seed(3)
    linear = Linear(10, 4)
    x = rng.normal(size=(5, 10)).astype(np.float32)
    s_x, z_x = Q.calculate_qparams(float(x.min()), float(x.max()))
    y_float = linear(Tensor(x)).data
    s_y, z_y = Q.calculate_qparams(float(y_float.min()), float(y_float.max()))
    plain = Q.QuantizedLinear.from_float(linear, s_x, z_x)
    requant = Q.QuantizedLinear.from_float(linear, s_x, z_x, output_scale=s_y, output_zero_point=z_y)
    y = requant(Tensor(x)).data
    levels = y / np.float32(s_y) + z_y
    np.testing.assert_allclose(levels, np.rint(levels), atol=1e-3, err_msg=(
        "a requantized output is (y_q - z_y) * s_y: a whole number of output steps"))
    expected = Q.quantize_per_tensor(plain(Tensor(x)), s_y, z_y).dequantize().data
    changed = np.abs(y - expected) > 1e-6
    assert changed.sum() <= 1 and np.abs(y - expected).max() <= s_y * 1.001, (
        f"requantize(acc) = quantize(dequantize(acc)) up to a rounding tie; {int(changed.sum())} values differ, by up"
        f" to {np.abs(y - expected).max():.3g} (one output step is {s_y:.3g})")
    assert requant.nbytes() == plain.nbytes() + 8, "output qparams add a float32 scale and an int32 zero point"
    # output qparams far too fine for these outputs: every value saturates at the ends of quint8's range
    tiny = Q.QuantizedLinear.from_float(linear, s_x, z_x, output_scale=0.001, output_zero_point=128)
    y = tiny(Tensor(x)).data
    low, high = (0 - 128) * np.float32(0.001), (255 - 128) * np.float32(0.001)
    assert y.min() >= low - 1e-7 and y.max() <= high + 1e-7, (
        f"requantized output with scale 0.001, zero point 128 (quint8) must saturate to [{low:.4g}, {high:.4g}]: got"
        f" values from {y.min():.4g} to {y.max():.4g} (clamp y_q to [0, 255] before dequantizing)")
    expected = Q.quantize_per_tensor(plain(Tensor(x)), 0.001, 128, "quint8").dequantize().data
    assert np.abs(y - expected).max() <= 0.001 * 1.001, (
        f"saturated requantization differs from quantize(dequantize(acc)) by {np.abs(y - expected).max():.3g}")


def test_quantized_linear_from_float_and_forward_errors():
    manual_seed(0)
    qlinear = Q.QuantizedLinear.from_float(Linear(4, 2), 0.1, 128)
    with pytest.raises(ValueError, match=r"\(3, 5\).*in_features=4|in_features=4.*\(3, 5\)"):
        qlinear(Tensor(np.zeros((3, 5), dtype=np.float32)))
    with pytest.raises(TypeError, match="Linear"):
        Q.QuantizedLinear.from_float(ReLU(), 0.1, 128)
    with pytest.raises(ValueError, match="zero_point"):
        Q.QuantizedLinear.from_float(Linear(4, 2), 0.1, 300, "quint8")
    with pytest.raises(ValueError, match="scale"):
        Q.QuantizedLinear.from_float(Linear(4, 2), 0.0, 0)
    assert qlinear.bias.dtype == np.int32, f"the bias is stored as int32, got {qlinear.bias.dtype}"
    with pytest.raises(ValueError, match="int32"):
        Q.QuantizedLinear.from_float(Linear(4, 2), 1e-30, 0, "qint8")
    with pytest.raises(TypeError, match="QTensor"):
        Q.QuantizedLinear(np.zeros((2, 4), dtype=np.int8), None, 0.1, 0)


# -- whole models ----------------------------------------------------------------------------------------


def test_quantize_model_replaces_every_linear_in_a_module_tree():
    helpers = learner_side(__file__)
    names = probes().class_names
    rng = np.random.default_rng(0)
    model = helpers.TwoTowers(np.random.default_rng(1))
    batches = [rng.normal(size=(16, 6)).astype(np.float32) for _ in range(3)]
    x = rng.normal(size=(8, 6)).astype(np.float32)
    before = model(Tensor(x)).data
    quantized = Q.quantize_model(model, batches)
    kinds = names(quantized.modules())
    assert "Linear" not in kinds and kinds.count("QuantizedLinear") == 4, (
        f"every Linear (4 distinct, one shared by two parents) becomes a QuantizedLinear; modules now: {kinds}")
    assert names(quantized.body) == ["ReLU", "QuantizedLinear", "ReLU"], (
        f"Sequential keeps its order and names: {names(quantized.body)}")
    assert probes().same_object(quantized.shared, quantized.head[0]), (
        "a Linear shared by two parents becomes ONE QuantizedLinear shared by both")
    assert names(model.modules()).count("Linear") == 4, "quantize_model(inplace=False) leaves the float model alone"
    assert "QuantizedLinear(in_features=6, out_features=8" in repr(quantized), (
        f"repr of the quantized model:\n{quantized!r}")
    np.testing.assert_array_equal(model(Tensor(x)).data, before, err_msg="the float model still computes the same")
    after = quantized(Tensor(x)).data
    assert after.shape == before.shape and np.abs(after - before).max() < 0.05 * (np.abs(before).max() + 1), (
        f"the quantized model's outputs must stay close to the float model's: max error"
        f" {np.abs(after - before).max():.3g}")


def test_quantize_model_calibrates_each_layer_on_its_own_inputs():
    manual_seed(0)
    rng = np.random.default_rng(1)
    model = Sequential(Linear(5, 7), ReLU(), Linear(7, 3))
    batches = [Tensor(rng.normal(size=(10, 5)).astype(np.float32)) for _ in range(2)]
    for calibration in ("minmax", "percentile"):
        quantized = Q.quantize_model(model, batches, calibration=calibration, percentile=99.0)
        first_inputs = np.concatenate([b.data for b in batches])
        hidden = np.maximum(first_inputs @ model[0].weight.data.T + model[0].bias.data, 0)
        for layer, seen in ((quantized[0], first_inputs), (quantized[2], hidden)):
            if calibration == "minmax":
                expected = Q.calculate_qparams(float(seen.min()), float(seen.max()))
            else:
                expected = Q.calculate_qparams(*Q.calibrate_percentile(seen, 99.0))
            got = (layer.input_scale, layer.input_zero_point)
            assert np.isclose(got[0], expected[0], rtol=1e-6) and got[1] == expected[1], (
                f"{calibration} calibration: a layer's input qparams come from the activations it saw over every"
                f" batch: expected {expected}, got {got}")


def test_quantize_model_in_place_and_on_a_bare_linear():
    manual_seed(0)
    rng = np.random.default_rng(2)
    model = Sequential(Linear(4, 4), ReLU())
    result = Q.quantize_model(model, [rng.normal(size=(3, 4))], inplace=True)
    assert probes().same_object(result, model), "inplace=True quantizes the model itself and returns it"
    assert probes().class_names(model) == ["QuantizedLinear", "ReLU"], "inplace=True replaces the Linear in place"
    bare = Q.quantize_model(Linear(4, 2), [rng.normal(size=(3, 4)).astype(np.float32)])
    assert probes().class_names([bare]) == ["QuantizedLinear"], "a model that IS a Linear becomes a QuantizedLinear"


def test_model_size_bytes_counts_what_is_stored():
    manual_seed(0)
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    params = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert Q.model_size_bytes(model) == 4 * params, f"float32 model: 4 bytes x {params} parameters"
    rng = np.random.default_rng(0)
    quantized = Q.quantize_model(model, [rng.normal(size=(32, 784)).astype(np.float32)])
    weights = 784 * 256 + 256 * 128 + 128 * 10
    per_channel = 256 + 128 + 10
    expected = weights + 4 * per_channel * 3 + 8 * 3  # int8 W; float32 scales, int32 zero points, int32 bias; x qparams
    assert Q.model_size_bytes(quantized) == expected, (
        f"quantized: {weights} int8 weights + 12 bytes per output channel (float32 scale, int32 zero point,"
        f" int32 bias) + 8 per layer (input scale and zero point) = {expected}, got {Q.model_size_bytes(quantized)}")
    shared = Linear(3, 3)
    assert Q.model_size_bytes(Sequential(shared, shared)) == 4 * 12, "a shared layer is counted once"
    first, second = Linear(3, 3), Linear(3, 3)
    second.weight = first.weight  # weight tying across two different layers (as a GPT's embedding and head)
    assert Q.model_size_bytes(Sequential(first, second)) == 4 * (9 + 3 + 3), (
        "a Parameter shared by two layers is stored once: 9 tied weights + 2 x 3 biases = 15 floats")


# -- errors ---------------------------------------------------------------------------------------------


def test_errors_name_the_problem():
    x = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="int4"):
        Q.quantize_per_tensor(x, 0.1, 0, "int4")
    with pytest.raises(ValueError, match="int4"):
        Q.calculate_qparams(0.0, 1.0, "int4")
    with pytest.raises(ValueError, match="scale"):
        Q.quantize_per_tensor(x, 0.0, 0, "qint8")
    with pytest.raises(ValueError, match="scale"):
        Q.quantize_per_tensor(x, -0.1, 0, "qint8")
    with pytest.raises(ValueError, match="zero_point.*300|300.*zero_point"):
        Q.quantize_per_tensor(x, 0.1, 300, "quint8")
    with pytest.raises(ValueError, match="zero_point"):
        Q.quantize_per_tensor(x, 0.1, -1, "quint8")
    with pytest.raises(TypeError, match="zero_point"):
        Q.quantize_per_tensor(x, 0.1, 1.5, "qint8")
    with pytest.raises(TypeError, match="int64|int32"):
        Q.quantize_per_tensor(np.zeros(3, dtype=np.int64), 0.1, 0, "qint8")
    with pytest.raises(ValueError, match="NaN"):
        Q.quantize_per_tensor(np.array([np.nan], dtype=np.float32), 0.1, 0, "qint8")
    with pytest.raises(ValueError, match=r"\(3,\)"):
        Q.quantize_per_channel(x, np.ones(2), np.zeros(2, dtype=np.int64), 1, "qint8")
    with pytest.raises(ValueError, match="zero_points"):
        Q.quantize_per_channel(x, np.ones(3), np.zeros(4, dtype=np.int64), 1, "qint8")
    with pytest.raises(ValueError, match="axis"):
        Q.quantize_per_channel(x, np.ones(3), np.zeros(3, dtype=np.int64), 2, "qint8")
    with pytest.raises(ValueError, match="x_min"):
        Q.calculate_qparams(1.0, -1.0)
    with pytest.raises(ValueError, match="finite"):
        Q.calculate_qparams(-np.inf, 1.0)
    with pytest.raises(ValueError, match="shape"):
        Q.calculate_qparams(np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="quant_min"):
        Q.fake_quantize_per_tensor_affine(Tensor(x), 0.1, 0, 5, 2)
    with pytest.raises(ValueError, match="zero_point"):
        Q.fake_quantize_per_tensor_affine(Tensor(x), 0.1, 20, 0, 15)
    with pytest.raises(TypeError, match="int64"):
        Q.fake_quantize_per_tensor_affine(Tensor(np.zeros(3, dtype=np.int64)), 0.1, 0, 0, 15)
    with pytest.raises(TypeError, match="quant_max"):
        Q.fake_quantize_per_tensor_affine(Tensor(x), 0.1, 0, 0, 15.5)
    with pytest.raises(ValueError, match="scales"):
        Q.fake_quantize_per_channel_affine(Tensor(x), np.ones(2, dtype=np.float32), np.zeros(3, dtype=np.int32), 1,
                                           0, 15)
    with pytest.raises(ValueError, match="p must"):
        Q.calibrate_percentile(x, 30)
    with pytest.raises(ValueError, match="empty"):
        Q.calibrate_percentile(np.zeros(0, dtype=np.float32), 99)
    with pytest.raises(RuntimeError, match="no values observed"):
        Q.MinMaxObserver().calculate_qparams()
    with pytest.raises(RuntimeError, match="no values observed"):
        Q.PerChannelMinMaxObserver().calculate_qparams()
    with pytest.raises(RuntimeError, match="no values observed"):
        Q.PercentileObserver(99.0).calculate_qparams()
    observer = Q.PerChannelMinMaxObserver(1)
    observer(x)
    with pytest.raises(ValueError, match="channels"):
        observer(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="Module"):
        Q.quantize_model("not a model", [x])
    with pytest.raises(ValueError, match="calibration"):
        Q.quantize_model(Sequential(Linear(3, 2)), [x], calibration="entropy")
    with pytest.raises(ValueError, match="empty"):
        Q.quantize_model(Sequential(Linear(3, 2)), [])
