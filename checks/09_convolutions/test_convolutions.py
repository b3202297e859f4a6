"""Checks for module 09: Convolutions.

`conv2d` is compared with torch.nn.functional.conv2d (forward values and the gradients of input,
weight and bias) on Hypothesis-drawn configurations: batch 1-4, channels 1-6, kernels 1-5 (square
or not), stride 1-3, dilation 1-2, padding as an int, a pair, "same" (odd and even kernels: the
extra pixel goes bottom/right) or "valid", groups dividing both channel counts (depthwise
included), odd input sizes, non-contiguous inputs, float32 and float64 (the dtype is kept, inputs
are left unchanged). `im2col`/`col2im` are checked against their definition and for being adjoint.
`max_pool2d`/`avg_pool2d` are compared with torch's (ties go to the first maximum), `batch_norm`
with torch.nn.functional.batch_norm, `BatchNorm2d` with torch.nn.BatchNorm2d over several training
steps (outputs, gradients, running statistics) and in eval mode. `Conv2d` has torch's parameter
names, shapes and initialisation bounds. Gradients are also checked against central differences in
float64; wrong arguments give errors that name the problem. A LeNet-style network built from these
layers and module 03's Flatten/Linear matches its torch twin end to end.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.gradcheck import check_gradients
from checks.harness.learner_side import learner_side
from checks.harness.parity import assert_parity, assert_same, upstream_weights
from tinytorch import conv as C
from tinytorch.layers import Flatten, Linear, Module, Parameter, Sequential, manual_seed
from tinytorch.tensor import Tensor

Z = 6.0  # standard errors allowed in statistical checks
# A conv output sums up to C_in/groups*kH*kW = 150 products, a weight gradient up to N*OH*OW ~ 700, and
# torch's kernels sum in another order: float32 rounding grows with that length. Over 400 random configs
# of this file's sizes (values in [-2, 2]) the worst error was 0.4x (outputs) and 0.3x (gradients) of
# the plain float32 tolerance; these factors leave a 5-15x margin. float64 is far inside either way.
CONV_SCALE, CONV_GRAD_SCALE = 2.0, 4.0
BN_SCALE = 2.0  # batch statistics: a mean and a variance over <= 64 values, then a division
SAME_WARNING = "ignore:Using padding='same'"  # torch warns about even kernels; not our concern


def _is_torch(x) -> bool:
    return isinstance(x, torch.Tensor)


def _backward_weighted(out, dtype=np.float64) -> np.ndarray:
    """Backpropagate sum(u * out) with the harness's fixed upstream weights u; returns u."""
    import tinytorch.autograd  # noqa: F401

    weights = upstream_weights(tuple(out.shape), dtype)
    (out * Tensor(weights)).sum().backward()
    return weights


# -- conv2d ------------------------------------------------------------------------------------------


@st.composite
def conv_case(draw):
    """(x, weight, bias or None, kwargs) for a valid conv2d call."""
    dtype = draw(tst.float_dtypes)
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise"]))
    if kind == "plain":
        groups, c_in, c_out = 1, draw(st.integers(1, 6)), draw(st.integers(1, 6))
    elif kind == "grouped":
        groups = draw(st.integers(2, 3))
        c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    else:
        c_in = draw(st.integers(1, 6))
        groups, c_out = c_in, c_in * draw(st.integers(1, max(1, 6 // c_in)))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dilation = draw(st.sampled_from([1, 2, (1, 2), (2, 1)]))
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    pad_kind = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    stride = 1 if pad_kind == "same" else draw(st.sampled_from([1, 2, 3, (1, 2), (3, 1)]))
    if pad_kind == "int":
        padding = draw(st.integers(0, 2))
        ph, pw = padding, padding
    elif pad_kind == "pair":
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        ph, pw = padding
    else:
        padding, ph, pw = pad_kind, 0, 0
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    H = max(1, span_h - 2 * ph) + draw(st.integers(0, 4))
    W = max(1, span_w - 2 * pw) + draw(st.integers(0, 4))
    N = draw(st.integers(1, 4))
    x = draw(tst.arrays((N, c_in, H, W), dtype=dtype, low=-2, high=2))
    weight = draw(tst.arrays((c_out, c_in // groups, kh, kw), dtype=dtype, low=-2, high=2))
    bias = draw(st.one_of(st.none(), tst.arrays((c_out,), dtype=dtype, low=-2, high=2)))
    return x, weight, bias, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.filterwarnings(SAME_WARNING)
@given(case=conv_case())
def test_conv2d_matches_torch_forward_and_gradients(case):
    x, weight, bias, kwargs = case

    def conv(a, w, b=None):
        return (F.conv2d if _is_torch(a) else C.conv2d)(a, w, b, **kwargs)

    inputs = (x, weight) if bias is None else (x, weight, bias)
    assert_parity(conv, *inputs, grad=True, scale=CONV_SCALE, grad_scale=CONV_GRAD_SCALE)


def test_conv2d_known_answer():
    """A 2x2 kernel of ones on a 3x3 ramp sums each 2x2 block; the bias is added to every output."""
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2), dtype=np.float32)
    out = C.conv2d(Tensor(x), Tensor(w), Tensor(np.array([0.5], dtype=np.float32)))
    assert out.shape == (1, 1, 2, 2) and out.dtype == np.float32, (
        f"3x3 input, 2x2 kernel, stride 1, no padding: output (1, 1, 2, 2) float32, got {out.shape} {out.dtype}")
    np.testing.assert_array_equal(out.data[0, 0], [[8.5, 12.5], [20.5, 24.5]], err_msg=(
        "out[0, 0, i, j] = x[i, j] + x[i, j+1] + x[i+1, j] + x[i+1, j+1] + bias (no kernel flip: PyTorch's"
        " 'convolution' is a cross-correlation)"))
    # Stride 2 with padding 1: the corners of the zero-padded 5x5 input.
    out = C.conv2d(Tensor(x), Tensor(w), stride=2, padding=1)
    np.testing.assert_array_equal(out.data[0, 0], [[0, 1 + 2], [3 + 6, 4 + 5 + 7 + 8]], err_msg=(
        "padding=1 adds a ring of zeros; stride=2 moves the window by 2 pixels"))


# A backward pass may compute dx by col2im or, for stride 1, as a convolution of dOut with the flipped
# kernel (the lesson's "transposed convolution"), which the reference uses when C_out <= C_in: every
# padding case below runs with more output than input channels and with fewer, so both routes meet it.
CHANNELS = pytest.mark.parametrize("c_in, c_out", [(2, 3), (3, 2)], ids=["expanding", "narrowing"])


@pytest.mark.filterwarnings(SAME_WARNING)
@CHANNELS
@pytest.mark.parametrize("kernel, dilation", [((4, 4), 1), ((2, 3), 1), ((3, 2), (2, 1)), ((4, 1), 3)])
def test_conv2d_same_padding_puts_the_extra_pixel_bottom_right(kernel, dilation, c_in, c_out):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, c_in, 7, 6)).astype(np.float32)
    w = rng.normal(size=(c_out, c_in) + kernel).astype(np.float32)
    got = assert_parity(lambda a, b: (F.conv2d if _is_torch(a) else C.conv2d)(a, b, padding="same", dilation=dilation),
                        x, w, grad=True, scale=CONV_SCALE, grad_scale=CONV_GRAD_SCALE)
    assert got.shape == (2, c_out, 7, 6), f"padding='same' keeps H, W = (7, 6), got {got.shape}"
    valid = C.conv2d(Tensor(x), Tensor(w), padding="valid")
    assert_same(valid, F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding="valid"), "padding='valid'",
                scale=CONV_SCALE)


@CHANNELS
@pytest.mark.parametrize("kernel, padding, dilation", [((1, 1), 1, 1), ((3, 3), (3, 1), 1), ((2, 3), (2, 0), (1, 2))],
                         ids=["1x1-pad-1", "3x3-pad-3-1", "2x3-pad-2-0-dilated"])
def test_conv2d_padding_wider_than_the_kernel_reaches(kernel, padding, dilation, c_in, c_out):
    """Padding beyond dilation*(k-1) makes outputs that see only zeros; their gradient still flows to the weight
    and bias, and dx must ignore it (a dx computed as a convolution cannot pad dOut by a negative amount)."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, c_in, 5, 6)).astype(np.float32)
    w = rng.normal(size=(c_out, c_in) + kernel).astype(np.float32)
    b = rng.normal(size=c_out).astype(np.float32)
    assert_parity(lambda a, ww, bb: (F.conv2d if _is_torch(a) else C.conv2d)(a, ww, bb, padding=padding,
                                                                             dilation=dilation),
                  x, w, b, grad=True, scale=CONV_SCALE, grad_scale=CONV_GRAD_SCALE)


def test_conv2d_first_layer_input_needs_no_gradient():
    """Only the inputs that require grad get one: the image fed to a first layer never does."""
    import tinytorch.autograd  # noqa: F401

    rng = np.random.default_rng(1)
    x = Tensor(rng.normal(size=(2, 1, 6, 6)).astype(np.float32))
    w = Tensor(rng.normal(size=(4, 1, 3, 3)).astype(np.float32), requires_grad=True)
    b = Tensor(rng.normal(size=4).astype(np.float32), requires_grad=True)
    out = C.conv2d(x, w, b, padding=1)
    u = _backward_weighted(out, np.float32)
    tw, tb = torch.tensor(w.data, requires_grad=True), torch.tensor(b.data, requires_grad=True)
    (F.conv2d(torch.from_numpy(x.data), tw, tb, padding=1) * torch.from_numpy(u)).sum().backward()
    assert x.grad is None, "the input does not require grad: its .grad stays None"
    assert_same(w.grad, tw.grad, "gradient of weight", scale=CONV_GRAD_SCALE)
    assert_same(b.grad, tb.grad, "gradient of bias", scale=CONV_GRAD_SCALE)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(stride=2, padding=1),
    dict(dilation=2, padding=(2, 1)),
    dict(groups=2, stride=(1, 2)),
    dict(groups=4, padding="same"),
], ids=["plain", "stride-pad", "dilation", "groups", "depthwise-same"])
def test_conv2d_gradients_match_central_differences(kwargs):
    rng = np.random.default_rng(2)
    groups = kwargs.get("groups", 1)
    x = rng.normal(size=(2, 4, 5, 6))
    w = rng.normal(size=(4, 4 // groups, 3, 2))
    b = rng.normal(size=4)
    check_gradients(lambda a, ww, bb: C.conv2d(a, ww, bb, **kwargs), x, w, b)


def test_im2col_follows_its_definition_and_col2im_is_its_adjoint():
    """cols[c, i, j, n, oh, ow] = xp[n, c, oh*sh + i*dh, ow*sw + j*dw]; <im2col(x), y> = <x, col2im(y)>."""
    rng = np.random.default_rng(3)
    xp = rng.normal(size=(2, 3, 9, 8))
    kernel, stride, dilation = (3, 2), (2, 1), (2, 3)
    OH, OW = (9 - 2 * 2 - 1) // 2 + 1, (8 - 3 * 1 - 1) // 1 + 1
    cols = np.asarray(C.im2col(xp, kernel, stride, dilation, (OH, OW)))
    assert cols.shape == (3, 3, 2, 2, OH, OW), (
        f"im2col shape (C, kH, kW, N, OH, OW) = {(3, 3, 2, 2, OH, OW)}, got {cols.shape}")
    expected = np.empty_like(cols)
    for c, i, j, n, oh, ow in np.ndindex(*cols.shape):
        expected[c, i, j, n, oh, ow] = xp[n, c, oh * 2 + i * 2, ow * 1 + j * 3]
    np.testing.assert_array_equal(cols, expected,
                                  err_msg="im2col: cols[c, i, j, n, oh, ow] = xp[n, c, oh*sh + i*dh, ow*sw + j*dw]")
    y = rng.normal(size=cols.shape)
    back = np.asarray(C.col2im(y, xp.shape, stride, dilation))
    assert back.shape == xp.shape, f"col2im returns the padded input's shape {xp.shape}, got {back.shape}"
    np.testing.assert_allclose(np.sum(cols * y), np.sum(xp * back), rtol=1e-12, err_msg=(
        "col2im must be im2col's adjoint: every column entry is ADDED back where it was read from"))


def test_conv2d_errors_name_the_problem():
    x = Tensor(np.zeros((2, 4, 5, 5), dtype=np.float32))
    w = Tensor(np.zeros((6, 2, 3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"4 dims.*\(4, 5, 5\)"):
        C.conv2d(Tensor(np.zeros((4, 5, 5), dtype=np.float32)), w)
    with pytest.raises(ValueError, match=r"weight.*\(6, 2, 3\)"):
        C.conv2d(x, Tensor(np.zeros((6, 2, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"4 channels.*expects 2"):
        C.conv2d(x, w)  # groups=1: the weight wants 2 input channels
    with pytest.raises(ValueError, match=r"groups=4.*out_channels=6|out_channels=6.*groups=4"):
        C.conv2d(x, Tensor(np.zeros((6, 1, 3, 3), dtype=np.float32)), groups=4)
    with pytest.raises(ValueError, match=r"\(7, 7\).*\(5, 5\)"):
        C.conv2d(x, Tensor(np.zeros((6, 2, 4, 4), dtype=np.float32)), groups=2, dilation=2)
    with pytest.raises(ValueError, match="strided"):
        C.conv2d(x, w, groups=2, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding"):
        C.conv2d(x, w, groups=2, padding="full")
    with pytest.raises(ValueError, match="stride"):
        C.conv2d(x, w, groups=2, stride=0)
    with pytest.raises(ValueError, match="padding"):
        C.conv2d(x, w, groups=2, padding=(1, -1))
    with pytest.raises(ValueError, match="groups"):
        C.conv2d(x, w, groups=0)
    with pytest.raises(ValueError, match=r"bias.*\(6,\)"):
        C.conv2d(x, w, Tensor(np.zeros(5, dtype=np.float32)), groups=2)
    with pytest.raises(TypeError, match="float64"):
        C.conv2d(x, Tensor(np.zeros((6, 2, 3, 3))), groups=2)
    with pytest.raises(TypeError, match="float64"):
        C.conv2d(x, w, Tensor(np.zeros(6)), groups=2)
    with pytest.raises(TypeError, match="int64"):
        C.conv2d(Tensor(np.zeros((2, 4, 5, 5), dtype=np.int64)), w, groups=2)


# -- Conv2d ------------------------------------------------------------------------------------------


def _torch_conv_twin(ours, **kwargs) -> torch.nn.Conv2d:
    theirs = torch.nn.Conv2d(ours.in_channels, ours.out_channels, ours.kernel_size, **kwargs)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    return theirs


@pytest.mark.filterwarnings(SAME_WARNING)
@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(stride=2, padding=1, bias=False),
    dict(padding="same", dilation=2, groups=3),
    dict(stride=(2, 1), padding=(0, 2), groups=3),
], ids=["default", "stride-nobias", "same-dilated-grouped", "pairs"])
def test_conv2d_layer_matches_torch_conv2d(kwargs):
    manual_seed(4)
    ours = C.Conv2d(3, 6, (3, 2), **kwargs)
    assert isinstance(ours, Module)
    theirs = _torch_conv_twin(ours, **kwargs)
    x = np.random.default_rng(5).normal(size=(2, 3, 9, 8)).astype(np.float32)
    tx, px = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(tx), theirs(px)
    assert_same(out, expected, f"Conv2d(3, 6, (3, 2), {kwargs}) output", scale=CONV_SCALE)
    u = _backward_weighted(out, np.float32)
    (expected * torch.from_numpy(u)).sum().backward()
    assert_same(tx.grad, px.grad, "gradient of the input", scale=CONV_GRAD_SCALE)
    for name, param in theirs.named_parameters():
        assert_same(getattr(ours, name).grad, param.grad, f"gradient of {name}", scale=CONV_GRAD_SCALE)


def test_conv2d_layer_parameters_have_torch_names_shapes_and_init():
    manual_seed(0)
    ours = C.Conv2d(8, 12, (3, 5), groups=2)
    theirs = torch.nn.Conv2d(8, 12, (3, 5), groups=2)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()], "parameter names and shapes are torch's"
    assert all(isinstance(p, Parameter) and p.dtype == np.float32 for p in ours.parameters()), (
        "weight and bias are float32 Parameters")
    fan_in = 8 // 2 * 3 * 5
    bound = 1 / math.sqrt(fan_in)
    w, b = ours.weight.numpy().astype(np.float64), ours.bias.numpy().astype(np.float64)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound, (
        f"weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels/groups*kH*kW = {fan_in}:"
        f" |values| <= {bound:.4f}, got max {max(np.abs(w).max(), np.abs(b).max()):.4f}")
    assert abs(w.var() - bound**2 / 3) <= Z * math.sqrt((bound**4 / 5 - bound**4 / 9) / w.size), (
        f"weight variance {w.var():.4g}, U(-b, b) gives b^2/3 = {bound**2 / 3:.4g}")
    assert (ours.in_channels, ours.out_channels, ours.kernel_size, ours.stride, ours.padding, ours.dilation,
            ours.groups) == (8, 12, (3, 5), (1, 1), (0, 0), (1, 1), 2), "settings are kept as torch keeps them (pairs)"
    assert "8, 12, kernel_size=(3, 5), stride=(1, 1), groups=2" in repr(ours), f"torch-like repr, got {ours!r}"
    no_bias = C.Conv2d(2, 3, 1, bias=False, padding="same", dilation=2)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight"] and no_bias.bias is None, "bias=False: no bias"
    assert "bias=False" in repr(no_bias) and "padding='same'" in repr(no_bias) and "dilation=(2, 2)" in repr(no_bias)
    g1, g2 = manual_seed(3), manual_seed(3)
    manual_seed(0)
    np.testing.assert_array_equal(C.Conv2d(2, 3, 3, generator=g1).weight.numpy(),
                                  C.Conv2d(2, 3, 3, generator=g2).weight.numpy(),
                                  err_msg="generator= is used for the initialisation")
    manual_seed(9)
    first = C.Conv2d(2, 3, 3).bias.numpy()
    manual_seed(9)
    np.testing.assert_array_equal(C.Conv2d(2, 3, 3).bias.numpy(), first, err_msg=(
        "without generator=, the default generator of module 03 (manual_seed) is used"))


def test_conv2d_layer_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"groups=3.*in_channels=4|in_channels=4.*groups=3"):
        C.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match=r"groups=2.*out_channels=3|out_channels=3.*groups=2"):
        C.Conv2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="in_channels"):
        C.Conv2d(0, 3, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        C.Conv2d(2, 3, (3, 0))
    with pytest.raises(ValueError, match="kernel_size"):
        C.Conv2d(2, 3, (3, 3, 3))
    with pytest.raises(ValueError, match="strided"):
        C.Conv2d(2, 3, 3, stride=2, padding="same")


# -- pooling -----------------------------------------------------------------------------------------


@st.composite
def pool_case(draw):
    """(x, kernel_size, stride or None, padding) valid for max/avg pooling (padding <= kernel/2)."""
    dtype = draw(tst.float_dtypes)
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kernel = draw(st.sampled_from([kh, (kh, kw)]))
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    stride = draw(st.sampled_from([None, 1, 2, 3, (1, 2), (2, 1)]))
    padding = draw(st.sampled_from([0, (kh // 2, kw // 2), min(kh, kw) // 2]))
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    H = max(1, kh - 2 * ph) + draw(st.integers(0, 5))
    W = max(1, kw - 2 * pw) + draw(st.integers(0, 5))
    # Few distinct values: windows often hold ties, where the gradient must go to the FIRST maximum.
    values = draw(st.sampled_from([(-10, 10), (-1, 1)]))
    x = draw(tst.arrays((draw(st.integers(1, 3)), draw(st.integers(1, 4)), H, W), dtype=dtype,
                        low=values[0], high=values[1]))
    if draw(st.booleans()):
        x = np.round(x * 2) / 2  # many exact ties
    return x, kernel, stride, padding


@given(case=pool_case())
def test_max_pool2d_matches_torch_forward_and_gradient(case):
    x, kernel, stride, padding = case

    def pool(a):
        return (F.max_pool2d if _is_torch(a) else C.max_pool2d)(a, kernel, stride, padding)

    assert_parity(pool, x, grad=True)


@given(case=pool_case())
def test_avg_pool2d_matches_torch_forward_and_gradient(case):
    x, kernel, stride, padding = case

    def pool(a):
        return (F.avg_pool2d if _is_torch(a) else C.avg_pool2d)(a, kernel, stride, padding)

    assert_parity(pool, x, grad=True)


def test_max_pool2d_ties_go_to_the_first_maximum_in_window_order():
    """All-equal windows: torch sends each output's gradient to the window's first (top-left) element."""
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 1.0  # a tie inside overlapping windows
    got = assert_parity(lambda a: (F.max_pool2d if _is_torch(a) else C.max_pool2d)(a, 2, 1), x, grad=True)
    np.testing.assert_array_equal(got.data[0, 0], [[1, 1, 1], [1, 1, 1], [0, 0, 0]])
    t = Tensor(np.ones((1, 1, 4, 4), dtype=np.float32), requires_grad=True)
    import tinytorch.autograd  # noqa: F401

    C.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(t.grad.data[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]],
                                  err_msg="every window is a tie: the gradient goes to its top-left element only")


def test_max_pool2d_padding_never_wins():
    """Padding is -inf for max pooling: a window of negative numbers and padding returns the largest number."""
    x = -np.arange(1, 10, dtype=np.float64).reshape(1, 1, 3, 3)
    got = assert_parity(lambda a: (F.max_pool2d if _is_torch(a) else C.max_pool2d)(a, 3, 2, 1), x, grad=True)
    np.testing.assert_array_equal(got.data[0, 0], [[-1, -2], [-4, -5]], err_msg=(
        "3x3 windows, stride 2, padding 1 over -1..-9: each output is its window's largest REAL value"))


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=(2, 3), stride=1)], ids=["2x2", "3x3-s2-p1", "2x3-s1"])
@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
def test_pool_gradients_match_central_differences(pool, kwargs):
    x = np.random.default_rng(6).permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6) / 7.0  # distinct values
    check_gradients(lambda a: getattr(C, pool)(a, **kwargs), x)


@pytest.mark.parametrize("name", ["MaxPool2d", "AvgPool2d"])
def test_pool_layers_match_torch(name):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, 7, 7)).astype(np.float32)
    for args, kwargs in (((2,), {}), ((3,), dict(stride=2, padding=1)), (((2, 3),), dict(stride=(1, 2)))):
        ours, theirs = getattr(C, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
        assert isinstance(ours, Module) and list(ours.parameters()) == [], f"{name} has no parameters"
        got = assert_parity(lambda a: (theirs if _is_torch(a) else ours)(a), x, grad=True)
        assert got.dtype == np.float32
    assert "kernel_size=3, stride=2, padding=1" in repr(getattr(C, name)(3, 2, 1))


def test_pool_errors_name_the_problem():
    x = Tensor(np.zeros((1, 2, 5, 5), dtype=np.float32))
    for fn in (C.max_pool2d, C.avg_pool2d):
        with pytest.raises(ValueError, match="half"):
            fn(x, 2, padding=2)
        with pytest.raises(ValueError, match=r"4 dims.*\(2, 5, 5\)"):
            fn(Tensor(np.zeros((2, 5, 5), dtype=np.float32)), 2)
        with pytest.raises(ValueError, match="too small"):
            fn(x, 8, padding=1)  # the padded 7x7 input is smaller than the 8x8 window
        with pytest.raises(ValueError, match="kernel_size"):
            fn(x, 0)
        with pytest.raises(TypeError, match="int64"):
            fn(Tensor(np.zeros((1, 2, 5, 5), dtype=np.int64)), 2)


# -- batch normalisation -----------------------------------------------------------------------------


@st.composite
def batch_norm_case(draw):
    dtype = draw(tst.float_dtypes)
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 4))) + tuple(draw(tst.shapes(0, 2, max_side=4)))
    if shape[0] * math.prod(shape[2:]) < 2:
        shape = (2,) + shape[1:]
    x = draw(tst.arrays(shape, dtype=dtype, low=-1, high=1))
    # Plus a ramp over each channel's N*H*W positions, so every channel's variance stays >= ~1.7: for
    # near-constant data the float32 batch statistics are ill-conditioned in ANY implementation (1/sqrt(var)
    # amplifies rounding), and that is not what this check is about.
    reduced = (shape[0], 1) + shape[2:]
    x = x + np.linspace(-4, 4, math.prod(reduced), dtype=dtype).reshape(reduced)
    C_ = shape[1]
    weight = draw(st.one_of(st.none(), tst.arrays((C_,), dtype=dtype, low=-2, high=2)))
    bias = draw(st.one_of(st.none(), tst.arrays((C_,), dtype=dtype, low=-2, high=2)))
    training = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    mean, var = rng.normal(size=C_).astype(dtype), rng.uniform(0.5, 2.0, size=C_).astype(dtype)
    return x, weight, bias, training, mean, var, draw(st.sampled_from([1e-5, 1e-3]))


@given(case=batch_norm_case())
def test_batch_norm_matches_torch_forward_and_gradients(case):
    x, weight, bias, training, mean, var, eps = case
    # training uses the batch statistics (running stats None here: their in-place update is checked below)
    stats = (None, None) if training else (mean, var)

    def norm(a, *params):
        given = iter(params)
        w = next(given) if weight is not None else None
        b = next(given) if bias is not None else None
        if _is_torch(a):
            rm, rv = (None, None) if training else (torch.from_numpy(mean), torch.from_numpy(var))
            return F.batch_norm(a, rm, rv, w, b, training=training, eps=eps)
        return C.batch_norm(a, *stats, w, b, training=training, eps=eps)

    assert_parity(norm, x, *[p for p in (weight, bias) if p is not None], grad=True, scale=BN_SCALE)


@pytest.mark.parametrize("momentum", [0.1, 0.7])
def test_batch_norm_updates_running_stats_in_place(momentum):
    x = np.random.default_rng(8).normal(2.0, 3.0, size=(5, 3, 4, 2)).astype(np.float32)
    mean, var = np.array([0.5, -1.0, 0.0], dtype=np.float32), np.array([1.0, 2.0, 0.5], dtype=np.float32)
    out, new_mean, new_var = learner_side(__file__).batch_norm_running_update(x, mean, var, momentum, 1e-5)
    rm, rv = torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())
    expected = F.batch_norm(torch.from_numpy(x), rm, rv, training=True, momentum=momentum)
    assert_same(out, expected, "batch_norm output in training mode", scale=BN_SCALE)
    assert_same(new_mean, rm, f"running_mean after one step: (1 - {momentum}) * running + {momentum} * batch mean")
    assert_same(new_var, rv, f"running_var after one step, with the UNBIASED batch variance (momentum {momentum})")


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batchnorm2d_running_stats_match_torch_over_training_steps(momentum):
    ours, theirs = C.BatchNorm2d(3, momentum=momentum), torch.nn.BatchNorm2d(3, momentum=momentum)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == [("weight", (3,)), ("bias", (3,))]
    rng = np.random.default_rng(9)
    with torch.no_grad():  # non-trivial affine parameters on both sides
        theirs.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, 3).astype(np.float32)))
        theirs.bias.copy_(torch.from_numpy(rng.normal(size=3).astype(np.float32)))
    ours.load_state_dict({name: p.detach().numpy() for name, p in theirs.named_parameters()}, strict=False)
    for step in range(4):
        x = rng.normal(step, 1.0 + step, size=(4, 3, 5, 3)).astype(np.float32)
        tx, px = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ours.zero_grad()
        theirs.zero_grad()
        out, expected = ours(tx), theirs(px)
        assert_same(out, expected, f"training step {step}: output (batch statistics)", scale=BN_SCALE)
        u = _backward_weighted(out, np.float32)
        (expected * torch.from_numpy(u)).sum().backward()
        assert_same(tx.grad, px.grad, f"training step {step}: gradient of the input", scale=BN_SCALE)
        assert_same(ours.weight.grad, theirs.weight.grad, f"training step {step}: gradient of weight", scale=BN_SCALE)
        assert_same(ours.bias.grad, theirs.bias.grad, f"training step {step}: gradient of bias", scale=BN_SCALE)
        assert_same(ours.running_mean, theirs.running_mean,
                    f"running_mean after {step + 1} steps (momentum {momentum})")
        assert_same(ours.running_var, theirs.running_var, f"running_var after {step + 1} steps (momentum {momentum},"
                    " unbiased batch variance)", scale=BN_SCALE)
        assert ours.num_batches_tracked == step + 1, (
            f"num_batches_tracked counts training batches: {step + 1}, got {ours.num_batches_tracked}")
    ours.eval()
    theirs.eval()
    x = rng.normal(1.0, 2.0, size=(2, 3, 4, 4)).astype(np.float32)
    tx, px = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(tx), theirs(px)
    assert_same(out, expected, "eval mode: output uses the running statistics", scale=BN_SCALE)
    u = _backward_weighted(out, np.float32)
    (expected * torch.from_numpy(u)).sum().backward()
    assert_same(tx.grad, px.grad, "eval mode: gradient of the input (the statistics are constants)", scale=BN_SCALE)
    assert ours.num_batches_tracked == 4, "eval mode does not count batches"
    assert_same(ours.running_mean, theirs.running_mean, "running_mean is not updated in eval mode")


@pytest.mark.parametrize("affine, track", [(False, True), (True, False), (False, False)])
def test_batchnorm2d_without_affine_or_running_stats(affine, track):
    ours = C.BatchNorm2d(2, affine=affine, track_running_stats=track)
    theirs = torch.nn.BatchNorm2d(2, affine=affine, track_running_stats=track)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()], (
        "affine=False: no weight or bias parameters")
    if not affine:
        assert ours.weight is None and ours.bias is None
    if not track:
        assert ours.running_mean is None and ours.running_var is None, (
            "track_running_stats=False: running_mean and running_var are None")
    rng = np.random.default_rng(10)
    for mode in ("train", "eval", "train"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        x = rng.normal(1.0, 3.0, size=(3, 2, 4, 5)).astype(np.float32)
        got = assert_parity(lambda a: (theirs if _is_torch(a) else ours)(a), x, grad=True, scale=BN_SCALE)
        assert got.dtype == np.float32
    if track:
        assert_same(ours.running_var, theirs.running_var, "running_var", scale=BN_SCALE)
    assert f"2, eps=1e-05, momentum=0.1, affine={affine}, track_running_stats={track}" in repr(ours)


@pytest.mark.parametrize("affine, track", [(True, True), (False, True), (True, False)])
def test_batchnorm2d_state_dict_has_torch_keys_dtypes_and_shapes(affine, track):
    ours = C.BatchNorm2d(3, affine=affine, track_running_stats=track)
    theirs = torch.nn.BatchNorm2d(3, affine=affine, track_running_stats=track)
    state, expected = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(expected), (
        f"BatchNorm2d(affine={affine}, track_running_stats={track}).state_dict() keys: {list(state)},"
        f" torch's: {list(expected)} (parameters, then the running-statistics buffers)")
    for key, value in expected.items():
        got = np.asarray(state[key])
        assert got.shape == tuple(value.shape) and got.dtype == value.numpy().dtype, (
            f"state_dict[{key!r}]: shape {got.shape} dtype {got.dtype}, torch's {tuple(value.shape)} {value.dtype}")
        np.testing.assert_array_equal(got, value.numpy(), err_msg=f"initial state_dict[{key!r}] vs torch's")
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()], "named_buffers()"


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_state_dict_round_trip_restores_running_stats(momentum):
    rng = np.random.default_rng(12)
    source, theirs = C.BatchNorm2d(3, momentum=momentum), torch.nn.BatchNorm2d(3, momentum=momentum)
    for step in range(3):
        source(Tensor(rng.normal(step, 1.0 + step, size=(4, 3, 5, 3)).astype(np.float32)))
    state = source.state_dict()
    assert int(state["num_batches_tracked"]) == 3, f"num_batches_tracked saved as 3, got {state['num_batches_tracked']}"
    source(Tensor(rng.normal(size=(4, 3, 5, 3)).astype(np.float32)))
    assert int(state["num_batches_tracked"]) == 3, "state_dict() is a copy: a later training step must not change it"
    target = C.BatchNorm2d(3, momentum=momentum)
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == [], f"load_state_dict: {result}"
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    for key in ("running_mean", "running_var"):
        np.testing.assert_array_equal(np.asarray(getattr(target, key)), state[key],
                                      err_msg=f"{key} restored by load_state_dict")
    assert target.num_batches_tracked == 3 and np.asarray(target.num_batches_tracked).dtype == np.int64, (
        f"num_batches_tracked restored as a 0-d int64: got {target.num_batches_tracked!r}")
    saved = C.BatchNorm2d(3, momentum=momentum)
    saved.load_state_dict(state)
    target.eval()
    saved.eval()
    theirs.eval()
    x = rng.normal(1.0, 2.0, size=(2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(target(Tensor(x)).numpy(), saved(Tensor(x)).numpy(),
                                  err_msg="eval outputs of two models loaded from one state_dict")
    assert_same(target(Tensor(x)), theirs(torch.from_numpy(x)), "eval output after loading the state_dict"
                " (ours) vs torch.nn.BatchNorm2d loaded from the same state_dict", scale=BN_SCALE)
    fresh = C.BatchNorm2d(3, momentum=momentum).eval()
    assert not np.allclose(fresh(Tensor(x)).numpy(), target(Tensor(x)).numpy()), (
        "the running statistics must matter in eval mode (a fresh layer gives other outputs)")
    target.train()
    target(Tensor(x))
    assert target.num_batches_tracked == 4, "training after loading continues the loaded count"


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients_match_central_differences(training):
    rng = np.random.default_rng(11)
    x, w, b = rng.normal(size=(3, 2, 2, 3)), rng.normal(size=2), rng.normal(size=2)
    mean, var = np.array([0.3, -0.2]), np.array([1.5, 0.7])
    stats = (None, None) if training else (mean, var)
    check_gradients(lambda a, ww, bb: C.batch_norm(a, *stats, ww, bb, training=training), x, w, b)


def test_batch_norm_errors_name_the_problem():
    bn = C.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"4D.*\(3, 4, 4\)"):
        bn(Tensor(np.zeros((3, 4, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"2 channels.*num_features=3"):
        bn(Tensor(np.zeros((2, 2, 4, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(Tensor(np.zeros((1, 3, 1, 1), dtype=np.float32)))
    with pytest.raises(ValueError, match="num_features"):
        C.BatchNorm2d(0)
    with pytest.raises(ValueError, match=r"weight.*\(3,\)"):
        C.batch_norm(Tensor(np.zeros((2, 3), dtype=np.float32)), None, None, Tensor(np.ones(2, dtype=np.float32)))
    with pytest.raises(ValueError, match="2 dims"):
        C.batch_norm(Tensor(np.zeros(3, dtype=np.float32)), None, None)
    with pytest.raises(TypeError, match="int64"):
        C.batch_norm(Tensor(np.zeros((2, 3), dtype=np.int64)), None, None)


# -- a whole network ---------------------------------------------------------------------------------


def test_lenet_style_network_matches_torch_end_to_end():
    """Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, Flatten and Linear: outputs and every gradient."""
    from tinytorch.activations import ReLU

    manual_seed(12)
    ours = Sequential(C.Conv2d(1, 6, 5, padding=2), C.BatchNorm2d(6), ReLU(), C.MaxPool2d(2),
                      C.Conv2d(6, 16, 5), ReLU(), C.AvgPool2d(2), Flatten(), Linear(16 * 5 * 5, 10))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
                                 torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(),
                                 torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(400, 10))
    state = {k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    assert not unexpected and all("running" in k or "num_batches" in k for k in missing), (
        f"parameter names must be torch's: unexpected {unexpected}, missing {missing}")
    x = np.random.default_rng(13).random((4, 1, 28, 28), dtype=np.float32)
    out, expected = ours(Tensor(x)), theirs(torch.from_numpy(x))
    assert_same(out, expected, "LeNet-style network output (training mode)", scale=CONV_SCALE)
    u = _backward_weighted(out, np.float32)
    (expected * torch.from_numpy(u)).sum().backward()
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert param.grad is not None, f"gradient of {name}: .grad is None after backward()"
        assert_same(param.grad, theirs_params[name].grad, f"gradient of {name}", scale=CONV_GRAD_SCALE)
