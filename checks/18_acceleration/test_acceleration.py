"""Checks for module 18: Acceleration.

Every accelerated op is compared with its plain version on Hypothesis-drawn inputs (float32 and
float64, contiguous/transposed/strided layouts): `pairwise_sq_dists` with the double loop
(computed here in numpy), `blocked_matmul` with `a @ b` for every block size from 1 to past the
matrix sides, `fused_bias_gelu` with torch's F.gelu(x + bias, approximate="tanh") (forward AND
gradients of x and bias) and with module 02's gelu(x + bias, "tanh"), `fused_softmax_cross_entropy`
with torch's F.cross_entropy (forward AND gradient, some rows moved +-1000 away) and with module
04's cross_entropy. The fused ops must be ONE recorded op (a single graph node whose inputs are the
caller's Tensors). Mixed precision: `to_half` is numpy's float16 cast (overflow to inf included),
`matmul_fp16` equals torch's float32 matmul of the upcast float16 inputs. `GradScaler` runs side by
side with torch.amp.GradScaler("cpu") on the same Hypothesis-drawn sequence of finite and inf/NaN
gradients and SGD steps: after every iteration the scale, the growth tracker and the parameters
must agree exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.parity import assert_parity, assert_same
from checks.harness.tolerances import for_dtype
from tinytorch import acceleration as A
from tinytorch.activations import gelu
from tinytorch.losses import cross_entropy
from tinytorch.optimizers import SGD
from tinytorch.tensor import Tensor


def _is_torch(x) -> bool:
    return isinstance(x, torch.Tensor)


@st.composite
def matrix_pair(draw, max_side=9):
    dtype = draw(tst.float_dtypes)
    n, k, m = (draw(st.integers(1, max_side)) for _ in range(3))
    a = draw(tst.arrays((n, k), dtype=dtype))
    b = draw(tst.arrays((k, m), dtype=dtype))
    return a, b


# -- vectorisation --------------------------------------------------------------------------------


@given(st.data())
def test_pairwise_sq_dists_equals_the_loops(data):
    dtype = data.draw(tst.float_dtypes)
    n, m, k = (data.draw(st.integers(1, 6)) for _ in range(3))
    x = data.draw(tst.arrays((n, k), dtype=dtype))
    y = data.draw(tst.arrays((m, k), dtype=dtype))
    expected = np.array([[np.sum((x[i] - y[j]) ** 2) for j in range(m)] for i in range(n)], dtype=dtype)
    got = A.pairwise_sq_dists(x, y)
    assert_same(got, expected, f"pairwise_sq_dists of x {x.shape} and y {y.shape} against the double loop")
    assert_same(got, A.pairwise_sq_dists_loops(x, y), "pairwise_sq_dists against the given pairwise_sq_dists_loops")


def test_pairwise_sq_dists_no_cancellation_for_close_points():
    """|x|^2 + |y|^2 - 2 x.y loses every digit for nearby points far from the origin; differences do not."""
    x = np.array([[1e4, 1e4]], dtype=np.float32)
    y = np.array([[1e4 + 1.0, 1e4], [1e4, 1e4]], dtype=np.float32)
    assert_same(A.pairwise_sq_dists(x, y), np.array([[1.0, 0.0]], dtype=np.float32),
                "pairwise_sq_dists of two points 1 apart near (1e4, 1e4)")


def test_pairwise_sq_dists_errors():
    with pytest.raises(ValueError, match="feature"):
        A.pairwise_sq_dists(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="2-D"):
        A.pairwise_sq_dists(np.zeros((2, 3)), np.zeros(3))


# -- cache blocking -------------------------------------------------------------------------------


@given(matrix_pair(), st.integers(1, 11))
def test_blocked_matmul_equals_matmul(pair, block):
    a, b = pair
    got = A.blocked_matmul(a, b, block=block)
    expected = torch.from_numpy(np.ascontiguousarray(a)) @ torch.from_numpy(np.ascontiguousarray(b))
    assert_same(got, expected, f"blocked_matmul(a {a.shape}, b {b.shape}, block={block}) against a @ b",
                scale=float(a.shape[1]))


@given(st.data())
def test_blocked_matmul_accumulates_tile_by_tile(data):
    """block=1 makes every tile product one exact float32 product, added to C in k order: the result is the
    sequential float32 sum bit for bit. A single a @ b (BLAS reorders and vectorises its sums) is not."""
    n, k, m = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 40)), data.draw(st.integers(1, 4))
    a = data.draw(tst.arrays((n, k), dtype=np.float32))
    b = data.draw(tst.arrays((k, m), dtype=np.float32))
    expected = np.zeros((n, m), dtype=np.float32)
    for kk in range(k):
        expected += np.outer(a[:, kk], b[kk, :]).astype(np.float32)
    got = np.asarray(A.blocked_matmul(a, b, block=1))
    np.testing.assert_array_equal(got, expected, err_msg=(
        f"blocked_matmul(a {a.shape}, b {b.shape}, block=1) must add the k tiles into C in order, in float32"))


def test_blocked_matmul_default_block_and_large_edges():
    rng = np.random.default_rng(18)
    a, b = rng.standard_normal((130, 70)), rng.standard_normal((70, 129))
    assert_same(A.blocked_matmul(a, b), a @ b, "blocked_matmul with the default block=64 (edge tiles of 2 and 1)")
    assert_same(A.blocked_matmul(a, b, 1000), a @ b, "blocked_matmul with one tile bigger than the matrices")
    small_a, small_b = a[:7, :5], b[:5, :6]
    assert_same(A.blocked_matmul(small_a, small_b, 3), A.matmul_loops(small_a, small_b),
                "blocked_matmul against the given triple loop matmul_loops")


def test_blocked_matmul_result_dtype():
    a32 = np.ones((3, 4), dtype=np.float32)
    assert A.blocked_matmul(a32, a32.T.copy(), 2).dtype == np.float32
    assert A.blocked_matmul(a32, np.ones((4, 2)), 2).dtype == np.float64


@pytest.mark.parametrize("block", [0, -3, 2.5, True, "8"])
def test_blocked_matmul_rejects_bad_blocks(block):
    with pytest.raises(ValueError, match="block"):
        A.blocked_matmul(np.ones((2, 2)), np.ones((2, 2)), block=block)


def test_blocked_matmul_rejects_bad_shapes():
    with pytest.raises(ValueError, match="inner"):
        A.blocked_matmul(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        A.blocked_matmul(np.ones((2, 3)), np.ones(3))
    with pytest.raises(TypeError, match="float"):
        A.blocked_matmul(np.ones((2, 3), dtype=np.int64), np.ones((3, 2)))


# -- fused bias + GELU ------------------------------------------------------------------------------


@st.composite
def bias_gelu_case(draw):
    dtype = draw(tst.float_dtypes)
    shape = draw(tst.shapes(min_dims=1, max_dims=4))
    x = draw(tst.arrays(shape, dtype=dtype, low=-6.0, high=6.0))
    bias = draw(tst.arrays((shape[-1],), dtype=dtype, low=-3.0, high=3.0))
    return x, bias


@given(bias_gelu_case())
def test_fused_bias_gelu_matches_torch_values_and_gradients(case):
    x, bias = case

    def fn(a, b):
        return F.gelu(a + b, approximate="tanh") if _is_torch(a) else A.fused_bias_gelu(a, b)

    assert_parity(fn, x, bias, grad=True, grad_scale=float(max(1, x.size // bias.size)))


@given(bias_gelu_case())
def test_fused_bias_gelu_equals_the_plain_version(case):
    x, bias = case
    plain = gelu(Tensor(x) + Tensor(bias), approximate="tanh")
    assert_same(A.fused_bias_gelu(Tensor(x), Tensor(bias)), plain.data,
                "fused_bias_gelu against module 02's gelu(x + bias, approximate='tanh')")


def test_fused_bias_gelu_is_one_op():
    x = Tensor(np.linspace(-3, 3, 12).reshape(3, 4), requires_grad=True)
    bias = Tensor(np.array([0.5, -1.0, 0.0, 2.0]), requires_grad=True)
    y = A.fused_bias_gelu(x, bias)
    node = y.grad_fn
    assert node is not None, "fused_bias_gelu of Tensors that require grad records no op (grad_fn is None)"
    assert node.op == "fused_bias_gelu", f"fused_bias_gelu must record ONE op named 'fused_bias_gelu', got {node.op!r}"
    assert len(node.inputs) == 2, f"the fused op's inputs are (x, bias), got {len(node.inputs)} inputs"


def test_fused_bias_gelu_errors():
    with pytest.raises(ValueError, match="bias"):
        A.fused_bias_gelu(np.zeros((2, 3), dtype=np.float32), np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match="bias"):
        A.fused_bias_gelu(np.zeros((2, 3), dtype=np.float32), np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="dtype"):
        A.fused_bias_gelu(np.zeros((2, 3), dtype=np.float32), np.zeros(3, dtype=np.float64))
    with pytest.raises(TypeError, match="float"):
        A.fused_bias_gelu(np.zeros((2, 3), dtype=np.int64), np.zeros(3, dtype=np.float32))


# -- fused softmax + cross-entropy ------------------------------------------------------------------


@st.composite
def ce_case(draw):
    dtype = draw(tst.float_dtypes)
    n, c = draw(st.integers(1, 8)), draw(st.integers(1, 7))
    logits = draw(tst.with_extreme_slices(tst.arrays((n, c), dtype=dtype)))
    target = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    return logits, target


@given(ce_case())
def test_fused_softmax_cross_entropy_matches_torch_values_and_gradients(case):
    logits, target = case

    def fn(z, t):
        return F.cross_entropy(z, t) if _is_torch(z) else A.fused_softmax_cross_entropy(z, t)

    assert_parity(fn, logits, target, grad=True)


@given(ce_case())
def test_fused_softmax_cross_entropy_equals_the_plain_version(case):
    logits, target = case
    plain = cross_entropy(Tensor(logits), Tensor(target))
    assert_same(A.fused_softmax_cross_entropy(Tensor(logits), Tensor(target)), plain.data,
                "fused_softmax_cross_entropy against module 04's cross_entropy (mean)")


def test_fused_softmax_cross_entropy_is_one_op():
    logits = Tensor(np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]]), requires_grad=True)
    loss = A.fused_softmax_cross_entropy(logits, np.array([2, 0]))
    node = loss.grad_fn
    assert node is not None, "fused_softmax_cross_entropy of logits that require grad records no op"
    assert node.op == "fused_softmax_cross_entropy", (
        f"fused_softmax_cross_entropy must record ONE op named 'fused_softmax_cross_entropy', got {node.op!r}")
    assert loss.shape == (), f"the mean loss is 0-D, got shape {loss.shape}"


def test_fused_softmax_cross_entropy_errors():
    z = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="logits"):
        A.fused_softmax_cross_entropy(np.zeros(4, dtype=np.float32), np.array([0]))
    with pytest.raises(TypeError, match="integer"):
        A.fused_softmax_cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="target shape"):
        A.fused_softmax_cross_entropy(z, np.array([0, 1]))
    with pytest.raises(IndexError, match="7"):
        A.fused_softmax_cross_entropy(z, np.array([0, 1, 7]))      # the bad value last, not first
    with pytest.raises(IndexError, match="-1"):
        A.fused_softmax_cross_entropy(z, np.array([0, -1, 2]))


# -- mixed precision --------------------------------------------------------------------------------


@given(st.lists(tst.arrays(tst.shapes(min_dims=0, max_dims=3), dtype=tst.float_dtypes, low=-1e5, high=1e5),
                min_size=1, max_size=3))
def test_to_half_is_the_float16_cast(arrays):
    params = [Tensor(a) if i % 2 else a for i, a in enumerate(arrays)]
    got = A.to_half(params)
    assert len(got) == len(arrays), f"to_half returned {len(got)} arrays for {len(arrays)} parameters"
    for i, (g, a) in enumerate(zip(got, arrays)):
        g = np.asarray(g)
        assert g.dtype == np.float16, f"to_half: parameter {i} came back as {g.dtype}, expected float16"
        expected = torch.from_numpy(np.ascontiguousarray(a)).half().numpy()
        np.testing.assert_array_equal(g, expected, err_msg=f"to_half: parameter {i} differs from torch's .half()")


def test_to_half_errors():
    with pytest.raises(TypeError, match="float"):
        A.to_half([np.zeros(2, dtype=np.float32), np.zeros(2, dtype=np.int32)])


@given(st.data())
def test_matmul_fp16_accumulates_in_float32(data):
    n, k, m = (data.draw(st.integers(1, 40)) for _ in range(3))
    a = data.draw(tst.arrays((n, k), dtype=np.float32, low=-4, high=4)).astype(np.float16)
    b = data.draw(tst.arrays((k, m), dtype=np.float32, low=-4, high=4)).astype(np.float16)
    got = A.matmul_fp16(a, b)
    expected = torch.from_numpy(a.astype(np.float32)) @ torch.from_numpy(b.astype(np.float32))
    assert_same(got, expected, f"matmul_fp16 of {a.shape} @ {b.shape} against float32 matmul of the float16 values",
                scale=float(k))


def test_matmul_fp16_keeps_small_terms_that_float16_sums_lose():
    a = np.full((1, 4096), 1.0, dtype=np.float16)
    b = np.full((4096, 1), 1.0, dtype=np.float16)
    got = float(np.asarray(A.matmul_fp16(a, b))[0, 0])
    assert got == 4096.0, f"matmul_fp16 of 4096 ones: got {got}, expected 4096 (a float16 running sum stalls at 2048)"


def test_matmul_fp16_errors():
    with pytest.raises(TypeError, match="float16"):
        A.matmul_fp16(np.ones((2, 2), dtype=np.float16), np.ones((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="inner"):
        A.matmul_fp16(np.ones((2, 3), dtype=np.float16), np.ones((2, 3), dtype=np.float16))


# -- dynamic loss scaling ---------------------------------------------------------------------------


@st.composite
def scaler_run(draw):
    settings = {
        "init_scale": 2.0 ** draw(st.sampled_from([0, 4, 16, 100, 126, 127])),
        "growth_factor": draw(st.sampled_from([2.0, 4.0, 1.5])),
        "backoff_factor": draw(st.sampled_from([0.5, 0.25, 0.125])),
        "growth_interval": draw(st.integers(1, 4)),
    }
    steps = draw(st.lists(st.sampled_from(["finite", "finite", "inf", "-inf", "nan"]), min_size=1, max_size=12))
    weights = draw(tst.arrays((3,), dtype=np.float32, low=-2.0, high=2.0))
    return settings, steps, weights


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # scale 2**127 overflows: a skipped step
@given(scaler_run())
def test_grad_scaler_matches_torch(run):
    settings, steps, weights = run
    start = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    scaler = A.GradScaler(**settings)
    reference = torch.amp.GradScaler("cpu", **settings)
    p = Tensor(start.copy(), requires_grad=True)
    tp = torch.nn.Parameter(torch.from_numpy(start.copy()))
    opt, topt = SGD([p], lr=0.125), torch.optim.SGD([tp], lr=0.125)
    for i, kind in enumerate(steps):
        opt.zero_grad()
        topt.zero_grad()
        scaler.scale((p * Tensor(weights)).sum()).backward()
        reference.scale((tp * torch.from_numpy(weights)).sum()).backward()
        if kind != "finite":
            bad = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan}[kind]
            g = np.asarray(p.grad.data).copy()
            g[i % 3] = bad
            p.grad = Tensor(g)
            tp.grad[i % 3] = bad
        if i % 2:  # unscale_ first on some iterations (e.g. to clip), then step
            scaler.unscale_(opt)
            reference.unscale_(topt)
        scaler.step(opt)
        reference.step(topt)
        scaler.update()
        reference.update()
        where = f"after iteration {i} of {steps} with {settings}"
        assert scaler.get_scale() == reference.get_scale(), (
            f"GradScaler scale {where}: got {scaler.get_scale()}, torch.amp.GradScaler has {reference.get_scale()}")
        tracker = scaler.state_dict()["_growth_tracker"]
        assert tracker == reference.state_dict()["_growth_tracker"], (
            f"GradScaler _growth_tracker {where}: got {tracker}, torch has {reference.state_dict()['_growth_tracker']}")
        assert_same(p, tp.detach(), f"parameters {where} (a step with inf/nan grads must be skipped)")


def test_grad_scaler_scales_the_loss_and_unscales_the_grads():
    scaler = A.GradScaler(init_scale=1024.0)
    p = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    loss = (p * Tensor(np.array([3.0, -0.5], dtype=np.float32))).sum()
    scaled = scaler.scale(loss)
    assert_same(scaled, np.float32(1024.0 * 2.0), "scaler.scale(loss) with scale 1024 and loss 2")
    scaled.backward()
    assert_same(p.grad, np.array([3072.0, -512.0], dtype=np.float32), "the gradient of the scaled loss")
    opt = SGD([p], lr=1.0)
    scaler.unscale_(opt)
    assert_same(p.grad, np.array([3.0, -0.5], dtype=np.float32), "the gradient after unscale_")
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    assert_same(p, np.array([-2.0, 2.5], dtype=np.float32), "the parameters after scaler.step (lr=1)")
    with pytest.raises(RuntimeError, match="step"):
        scaler.step(opt)
    scaler.update()
    with pytest.raises(RuntimeError, match="update"):
        scaler.update()


def test_grad_scaler_skips_params_without_grad_and_state_dict_round_trip():
    scaler = A.GradScaler(init_scale=8.0, growth_interval=3)
    p, q = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    opt = SGD([p, q], lr=0.5)
    scaler.scale((p * 2.0).sum()).backward()      # q gets no grad
    scaler.step(opt)
    scaler.update()
    assert_same(p, np.array([0.0, 0.0]), "p after one unscaled SGD step of gradient 2 (lr 0.5)")
    state = scaler.state_dict()
    assert state == {"scale": 8.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 3,
                     "_growth_tracker": 1}, f"GradScaler.state_dict() after one finite step: {state}"
    other = A.GradScaler()
    other.load_state_dict(state)
    assert other.state_dict() == state, "load_state_dict(state_dict()) must restore every entry"
    with pytest.raises(RuntimeError, match="empty"):
        other.load_state_dict({})


def test_grad_scaler_disabled_is_a_pass_through():
    scaler = A.GradScaler(enabled=False)
    p = Tensor(np.array([1.0]), requires_grad=True)
    opt = SGD([p], lr=1.0)
    loss = (p * 3.0).sum()
    scaled = scaler.scale(loss)
    scaled.backward()
    assert_same(p.grad, np.array([3.0]), "the gradient with a disabled scaler (no scaling)")
    scaler.unscale_(opt)
    assert_same(p.grad, np.array([3.0]), "unscale_ with a disabled scaler leaves the gradient alone")
    scaler.step(opt)
    scaler.update()
    assert_same(p, np.array([-2.0]), "a disabled scaler's step() is optimizer.step()")
    assert scaler.get_scale() == 1.0 and scaler.state_dict() == {}, "a disabled scaler reports scale 1.0 and {}"


@pytest.mark.parametrize("kwargs, word", [
    ({"init_scale": 0.0}, "init_scale"), ({"init_scale": float("inf")}, "init_scale"),
    ({"growth_factor": 1.0}, "growth_factor"), ({"backoff_factor": 1.0}, "backoff_factor"),
    ({"backoff_factor": 0.0}, "backoff_factor"), ({"growth_interval": 0}, "growth_interval"),
    ({"growth_interval": 2.0}, "growth_interval"),
])
def test_grad_scaler_rejects_bad_settings(kwargs, word):
    with pytest.raises(ValueError, match=word):
        A.GradScaler(**kwargs)


def test_grad_scaler_does_not_grow_past_float32():
    """At scale 2**127 one more growth would be inf in float32: torch keeps the scale, and so must you."""
    scaler = A.GradScaler(init_scale=2.0**127, growth_interval=1)
    reference = torch.amp.GradScaler("cpu", init_scale=2.0**127, growth_interval=1)
    p = Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    tp = torch.nn.Parameter(torch.zeros(2))
    opt, topt = SGD([p], lr=1.0), torch.optim.SGD([tp], lr=1.0)
    for _ in range(2):
        scaler.scale(Tensor(np.float32(1.0)))
        reference.scale(torch.tensor(1.0))   # torch creates its scale lazily here
        p.grad = Tensor(np.full(2, 2.0**120, dtype=np.float32))
        tp.grad = torch.full((2,), 2.0**120)
        scaler.step(opt)
        reference.step(topt)
        scaler.update()
        reference.update()
        assert scaler.get_scale() == reference.get_scale() == 2.0**127, (
            f"GradScaler scale after a finite step at 2**127: got {scaler.get_scale()}, torch {reference.get_scale()}")
        assert scaler.state_dict()["_growth_tracker"] == 0, "the growth tracker restarts even when growth is refused"
    assert_same(p, tp.detach(), "parameters after two finite steps at scale 2**127")
