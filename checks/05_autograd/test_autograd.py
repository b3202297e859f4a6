"""Checks for module 05: Autograd.

1. Every op of modules 01, 02 and 04 backpropagates exactly like torch.autograd
   (grad_parity(...)) on Hypothesis-drawn shapes, including
   broadcasting, non-contiguous layouts and float64.
2. Central differences (check_gradients) confirm each op family independently of PyTorch.
3. A 2-layer MLP written with raw Tensors gets the same gradient as PyTorch for
   every parameter.
4. Graph behaviour: accumulation, reuse, diamonds, deep chains, no_grad/enable_grad,
   detach, the errors PyTorch raises, and freeing the graph after backward.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.gradcheck import check_gradients
from checks.harness.learner_side import learner_errstate, learner_side
from checks.harness.parity import assert_parity, assert_same
from tinytorch import activations as A
from tinytorch import autograd as ag
from tinytorch import losses as L
from tinytorch.tensor import Tensor, is_grad_enabled

TT = types.SimpleNamespace(**{name: getattr(A, name) for name in
                              ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"]},
                           **{name: getattr(L, name) for name in
                              ["mse_loss", "cross_entropy", "binary_cross_entropy",
                               "binary_cross_entropy_with_logits"]})


def grad_parity(fn, *inputs, **kwargs):
    """Forward and gradient parity with PyTorch: assert_parity(..., grad=True)."""
    return assert_parity(fn, *inputs, grad=True, **kwargs)


def _const(like, array):
    """`array` as a constant in the framework of `like`."""
    return torch.from_numpy(array) if isinstance(like, torch.Tensor) else Tensor(array)


def nn(x):
    """torch.nn.functional for torch tensors, tinytorch's activations and losses otherwise."""
    return F if isinstance(x, torch.Tensor) else TT


# -- 1. per-op gradient parity with torch.autograd ------------------------------------------------------------

BINARY = {
    "add": (lambda a, b: a + b, {}),
    "sub": (lambda a, b: a - b, {}),
    "mul": (lambda a, b: a * b, {}),
    "div": (lambda a, b: a / b, {"exclude_near_zero": 0.5}),
    "pow": (lambda a, b: a**b, {"low": 0.5, "high": 2.0}),
}


@pytest.mark.parametrize("op", BINARY)
@given(dtype=tst.float_dtypes, data=st.data())
def test_binary_op_gradients_unbroadcast_like_torch(op, dtype, data):
    fn, bounds = BINARY[op]
    pair = data.draw(tst.broadcastable_arrays(dtype=dtype, **bounds))
    grad_parity(fn, *pair, scale=10.0)


@pytest.mark.parametrize(
    "fn",
    [lambda x: x + 2.0, lambda x: 3.0 - x, lambda x: x * 4.0, lambda x: 2.0 / x, lambda x: x / 4.0,
     lambda x: x**2, lambda x: x**0.5, lambda x: 2.0**x, lambda x: -x, lambda x: x**0],
    ids=["add", "rsub", "mul", "rdiv", "div", "square", "sqrt", "rpow", "neg", "pow0"],
)
@given(array=tst.arrays(dtype=tst.float_dtypes, low=0.5, high=3.0))
def test_ops_with_python_scalars(fn, array):
    grad_parity(fn, array)


@given(pair=tst.matmul_arrays(dtype=np.float32))
def test_matmul_gradients_float32_all_ranks(pair):
    grad_parity(lambda a, b: a @ b, *pair, scale=4.0)


@given(pair=tst.matmul_arrays(dtype=np.float64))
def test_matmul_gradients_float64_all_ranks(pair):
    grad_parity(lambda a, b: a.matmul(b), *pair)


@given(array=tst.arrays(tst.shapes(min_dims=1, max_dims=3), dtype=np.float64))
def test_matmul_gradient_when_one_side_is_constant(array):
    weight = np.linspace(-1, 1, array.shape[-1] * 2).reshape(array.shape[-1], 2)
    out = grad_parity(lambda x: x @ _const(x, weight), array)
    assert out.grad_fn.inputs[1].grad is None
    out = grad_parity(lambda x: _const(x, weight.T) @ x.reshape(-1, 1)[: weight.shape[0]], array)
    assert out.grad_fn.inputs[0].grad is None


@pytest.mark.parametrize("name", ["sum", "mean", "amax"])
@given(case=tst.reduction_case(dtype=tst.float_dtypes))
def test_reduction_gradients(name, case):
    array, axis, keepdim = case
    grad_parity(lambda x: getattr(x, name)(dim=axis, keepdim=keepdim), array, scale=10.0)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_max_ties_share_the_gradient_like_amax(axis):
    array = np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    grad_parity(lambda x: x.amax(dim=axis) if axis is not None else x.amax(), array)
    grad_parity(lambda x: x.max(), array)


@given(array=tst.arrays(tst.shapes(min_dims=1, max_dims=4), dtype=tst.float_dtypes), data=st.data())
def test_shape_op_gradients(array, data):
    order = data.draw(st.permutations(range(array.ndim)))
    dim0, dim1 = data.draw(st.integers(-array.ndim, array.ndim - 1)), data.draw(st.integers(-array.ndim, array.ndim - 1))
    grad_parity(lambda x: x.reshape(-1) * 1.5, array)
    grad_parity(lambda x: x.permute(*order), array)
    grad_parity(lambda x: x.transpose(dim0, dim1).reshape(array.size, 1), array)
    grad_parity(lambda x: x.permute(tuple(reversed(range(x.ndim)))) if isinstance(x, torch.Tensor) else x.T, array)


@pytest.mark.parametrize("name", tst.INDEX_CASES)
@given(array=tst.indexable_arrays(dtype=tst.float_dtypes))
def test_getitem_gradients_scatter_and_accumulate_repeats(name, array):
    grad_parity(tst.INDEX_CASES[name], array)


UNARY = {
    "exp": (lambda x: x.exp(), {"low": -5.0, "high": 5.0}),
    "log": (lambda x: x.log(), {"low": 0.1, "high": 10.0}),
    "relu": (lambda x: nn(x).relu(x), {}),
    "leaky_relu": (lambda x: nn(x).leaky_relu(x, 0.1), {}),
    "sigmoid": (lambda x: nn(x).sigmoid(x), {}),
    "tanh": (lambda x: nn(x).tanh(x), {}),
    "gelu": (lambda x: nn(x).gelu(x), {}),
    "gelu_tanh": (lambda x: nn(x).gelu(x, approximate="tanh"), {}),
}


@pytest.mark.parametrize("name", UNARY)
@given(dtype=tst.float_dtypes, data=st.data())
def test_elementwise_gradients(name, dtype, data):
    fn, bounds = UNARY[name]
    array = data.draw(tst.arrays(dtype=dtype, **bounds))
    grad_parity(fn, array)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_relu_family_gradient_at_zero_follows_torch(name):
    fn = UNARY[name][0]
    grad_parity(fn, np.array([-1.0, 0.0, 2.0], dtype=np.float32))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(array=tst.with_extreme_slices(tst.arrays(tst.shapes(min_dims=1, max_dims=4), dtype=tst.float_dtypes)),
       data=st.data())
def test_softmax_family_gradients(name, array, data):
    dim = data.draw(st.integers(-array.ndim, array.ndim - 1))
    grad_parity(lambda x: getattr(nn(x), name)(x, dim=dim), array)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "sigmoid", "tanh", "gelu"])
def test_activation_gradients_are_finite_at_extremes(name):
    array = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]])
    with learner_errstate(over="raise", invalid="raise", divide="raise"):
        out = grad_parity(lambda x: getattr(nn(x), name)(x) if "softmax" not in name
                            else getattr(nn(x), name)(x, dim=-1), array)
    assert np.isfinite(out.grad_fn.inputs[0].grad.numpy()).all()


# -- losses ------------------------------------------------------------------------------------------------------------



LOSSES = {
    "mse_loss": ({}, {}),
    "binary_cross_entropy_with_logits": ({}, {"target_low": 0.0, "target_high": 1.0}),
    "binary_cross_entropy": ({}, {"low": 0.02, "high": 0.98, "target_low": 0.0, "target_high": 1.0}),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", LOSSES)
@given(data=st.data())
def test_loss_gradients_for_input_and_target(name, reduction, data):
    pair = data.draw(tst.same_shape_pair(**LOSSES[name][1]))
    grad_parity(lambda x, t: getattr(nn(x), name)(x, t, reduction=reduction), *pair, scale=10.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(case=tst.classification_case(ignore="one", extreme_slices=True), smoothing=st.sampled_from([0.0, 0.2]))
def test_cross_entropy_gradients(reduction, case, smoothing):
    grad_parity(lambda x, t: nn(x).cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing),
                  *case, scale=10.0)


def test_bce_gradient_is_guarded_at_probabilities_0_and_1():
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.3])
    with learner_errstate(over="raise", invalid="raise", divide="raise"):
        out = grad_parity(lambda x: nn(x).binary_cross_entropy(x, _const(x, t), reduction="none"), p)
    assert np.isfinite(out.grad_fn.inputs[0].grad.numpy()).all()


# -- 2. central differences, independent of PyTorch ---------------------------------------------------------------

small = tst.shapes(min_dims=1, max_dims=2, max_side=3)


@given(pair=tst.broadcastable_arrays(dtype=np.float64, max_dims=2, low=0.5, high=2.0))
def test_gradcheck_arithmetic(pair):
    check_gradients(lambda a, b: (a * b + a / b + b) ** 1.5 - a**b, *pair)


@given(pair=tst.matmul_arrays(dtype=np.float64, max_batch_dims=1))
def test_gradcheck_matmul(pair):
    check_gradients(lambda a, b: a @ b, *pair)


@given(array=tst.arrays(small, dtype=np.float64), data=st.data())
def test_gradcheck_reductions_and_shapes(array, data):
    axis = data.draw(tst.axes(array.ndim))
    distinct = array + np.arange(array.size).reshape(array.shape) * 0.01  # no ties for max
    check_gradients(lambda x: x.sum(dim=axis) + x.mean(dim=axis) * 2.0 + x.amax(dim=axis), distinct)
    check_gradients(lambda x: x.reshape(-1)[np.array([0, 0, -1])] * x.T.reshape(-1)[0], array)


@pytest.mark.parametrize("name", [n for n in UNARY if n not in ("relu", "leaky_relu")])
@given(data=st.data())
def test_gradcheck_smooth_elementwise(name, data):
    fn, bounds = UNARY[name]
    check_gradients(fn, data.draw(tst.arrays(small, dtype=np.float64, **bounds)))


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
@given(array=tst.arrays(small, dtype=np.float64, exclude_near_zero=1e-3))
def test_gradcheck_relu_family_away_from_the_kink(name, array):
    check_gradients(UNARY[name][0], array)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(array=tst.arrays(tst.shapes(min_dims=1, max_dims=2, max_side=4), dtype=np.float64), data=st.data())
def test_gradcheck_softmax_family(name, array, data):
    dim = data.draw(st.integers(-array.ndim, array.ndim - 1))
    check_gradients(lambda x: getattr(A, name)(x, dim=dim), array)


@given(case=tst.classification_case(ignore="one"), smoothing=st.sampled_from([0.0, 0.3]))
def test_gradcheck_cross_entropy(case, smoothing):
    logits, target = case
    check_gradients(lambda x: L.cross_entropy(x, target, label_smoothing=smoothing, reduction="sum"), logits)


@pytest.mark.parametrize("name", list(LOSSES))
@given(data=st.data())
def test_gradcheck_elementwise_losses(name, data):
    bounds = dict(LOSSES[name][1], low=0.05, high=0.95) if name == "binary_cross_entropy" else LOSSES[name][1]
    pair = data.draw(tst.same_shape_pair(**bounds))
    check_gradients(lambda x, t: getattr(L, name)(x, t, reduction="mean"), *pair)


# -- 3. a 2-layer MLP written with raw Tensors ----------------------------------------------------------------------------


@st.composite
def mlp_case(draw):
    dtype = draw(tst.float_dtypes)
    n, d, h, c = draw(st.integers(1, 8)), draw(st.integers(1, 6)), draw(st.integers(1, 8)), draw(st.integers(2, 5))
    arrays = [draw(tst.arrays(shape, dtype=dtype, low=-2.0, high=2.0)) for shape in [(n, d), (d, h), (h,), (h, c), (c,)]]
    labels = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    return arrays, labels


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
@given(case=mlp_case())
def test_two_layer_mlp_gradients_match_torch_for_every_parameter(activation, case):
    (x, w1, b1, w2, b2), y = case

    def mlp(x, w1, b1, w2, b2, y):
        f = nn(x)
        hidden = getattr(f, activation)(x @ w1 + b1)
        return f.cross_entropy(hidden @ w2 + b2, y)

    grad_parity(mlp, x, w1, b1, w2, b2, y, scale=10.0)


def test_two_layer_mlp_gradcheck():
    rng = np.random.default_rng(7)
    x, w1, b1, w2, b2 = (rng.normal(size=s) for s in [(4, 3), (3, 5), (5,), (5, 3), (3,)])
    y = np.array([0, 2, 1, 2])
    check_gradients(lambda *p: L.cross_entropy(A.relu(p[0] @ p[1] + p[2]) @ p[3] + p[4], y), x, w1, b1, w2, b2)


# -- 4. graph behaviour ---------------------------------------------------------------------------------------------------


def _pair(values, dtype=np.float64):
    """The same leaf in both frameworks."""
    array = np.asarray(values, dtype=dtype)
    return Tensor(array.copy(), requires_grad=True), torch.tensor(array, requires_grad=True)


def test_reused_tensor_accumulates_y_equals_x_times_x():
    x, xt = _pair([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    (xt * xt).sum().backward()
    assert_same(x.grad, xt.grad, "x.grad")
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])


def test_diamond_graph():
    x, xt = _pair([[0.5, -1.0], [2.0, 0.1]])
    for leaf in (x, xt):
        a = leaf * 2.0
        b = a.exp()
        c = a * 3.0
        (b + c * a - a).sum().backward()
    assert_same(x.grad, xt.grad, "x.grad")


def test_gradients_accumulate_across_backward_calls_until_zeroed():
    x, xt = _pair([1.0, 2.0])
    for _ in range(3):
        (x * x * 2.0).sum().backward()
        (xt * xt * 2.0).sum().backward()
    assert_same(x.grad, xt.grad, "x.grad")
    ag.zero_grad([x])
    assert x.grad is None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    fresh = Tensor([1.0], requires_grad=True)
    ag.zero_grad([x, fresh], set_to_none=False)
    assert x.grad is not None and x.grad.numpy().tolist() == [0.0, 0.0] and x.grad.dtype == x.dtype
    assert fresh.grad is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_only_leaves_get_grad_tensors_of_their_dtype(dtype):
    x = Tensor(np.ones((2, 3), dtype=dtype), requires_grad=True)
    w = Tensor(np.ones((3,), dtype=dtype) * 2, requires_grad=True)
    const = Tensor(np.ones((2, 3), dtype=dtype))
    hidden = x * w + const
    hidden.sum().backward()
    assert isinstance(x.grad, Tensor) and x.grad.dtype == dtype and x.grad.shape == (2, 3)
    assert w.grad.shape == (3,) and w.grad.numpy().tolist() == [2.0, 2.0, 2.0]
    assert not x.grad.requires_grad and x.grad.grad_fn is None
    assert hidden.grad is None, "non-leaf tensors do not keep .grad (as in PyTorch)"
    assert const.grad is None


def test_mixed_precision_gradients_keep_each_leaf_dtype():
    a = np.array([1.0, 2.0], dtype=np.float32)
    b = np.array([3.0, 4.0], dtype=np.float64)
    grad_parity(lambda x, y: x * y + x, a, b)


def test_non_scalar_backward_needs_a_gradient():
    x, xt = _pair([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs"):
        (x * 2.0).backward()
    upstream = np.array([1.0, -1.0, 0.5])
    (x * x).backward(Tensor(upstream))
    (xt * xt).backward(torch.from_numpy(upstream))
    assert_same(x.grad, xt.grad, "x.grad")
    with pytest.raises(RuntimeError, match=r"\(2,\).*\(3,\)"):
        (x * 2.0).backward(Tensor(np.ones(2)))


def test_one_element_output_and_leaf_root():
    x, xt = _pair([[2.0]])
    (x * 3.0).backward()
    (xt * 3.0).backward()
    assert_same(x.grad, xt.grad, "x.grad")
    leaf = Tensor(np.ones(3), requires_grad=True)
    leaf.backward(Tensor(np.array([1.0, 2.0, 3.0])))
    assert leaf.grad.numpy().tolist() == [1.0, 2.0, 3.0]


def test_backward_on_a_tensor_that_does_not_require_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0, 2.0]).sum().backward()
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2.0).detach().sum().backward()


def test_detach_stops_the_gradient():
    x, xt = _pair([1.0, 2.0])
    (x * x.detach()).sum().backward()
    (xt * xt.detach()).sum().backward()
    assert_same(x.grad, xt.grad, "x.grad")


def test_deep_chain_of_5000_ops_has_no_recursion_limit():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**5000] * 2, rtol=1e-9)


def test_wide_fan_out_accumulates_once_per_use():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    total = x * 0.0
    for i in range(300):
        total = total + x * float(i)
    total.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [sum(range(300))] * 2)


SECOND_BACKWARD = {
    "mul-self": lambda x: (x * x).sum(),
    "mul-scalar": lambda x: (x * 2.0).sum(),
    "add-scalar": lambda x: (x + 1.0).sum(),
    "sub-neg": lambda x: (-(x - 1.0)).sum(),
    "exp": lambda x: x.exp().sum(),
    "mean-reshape-permute": lambda x: x.reshape(3, 1).permute(1, 0).mean(),
    "slice": lambda x: x[1:].sum(),
    "advanced-index": lambda x: x[np.array([0, 0])].sum() if isinstance(x, Tensor) else x[torch.tensor([0, 0])].sum(),
    "amax": lambda x: x.amax(),
    "matmul": lambda x: x @ x,
    "relu": lambda x: nn(x).relu(x).sum(),
    "softmax": lambda x: (nn(x).softmax(x, dim=0) * x).sum(),
    "cross_entropy": lambda x: nn(x).cross_entropy(x.reshape(1, 3), _labels(x)),
    "mse_loss": lambda x: nn(x).mse_loss(x, x.detach() * 0.5),
}


def _labels(x):
    return torch.tensor([1]) if isinstance(x, torch.Tensor) else Tensor(np.array([1]))


def _second_backward(fn, leaf, retain):
    out = fn(leaf)
    out.backward(retain_graph=retain)
    try:
        out.backward()
    except RuntimeError as err:
        return "error", str(err)
    return "ok", ""


@pytest.mark.parametrize("case", SECOND_BACKWARD)
def test_second_backward_frees_the_graph_like_torch(case):
    fn = SECOND_BACKWARD[case]
    x, xt = _pair([0.5, -1.0, 2.0])
    ours, theirs = _second_backward(fn, x, False), _second_backward(fn, xt, False)
    assert ours[0] == theirs[0], f"{case}: second backward() gives {ours[0]}, PyTorch gives {theirs[0]}"
    if ours[0] == "error":
        assert "second time" in ours[1] and "retain_graph" in ours[1]
    else:
        assert_same(x.grad, xt.grad, "x.grad")


@pytest.mark.parametrize("case", SECOND_BACKWARD)
def test_retain_graph_allows_a_second_backward(case):
    fn = SECOND_BACKWARD[case]
    x, xt = _pair([0.5, -1.0, 2.0])
    assert _second_backward(fn, x, True) == ("ok", "") == _second_backward(fn, xt, True)
    assert_same(x.grad, xt.grad, "x.grad")


def test_retained_graph_is_freed_by_the_next_plain_backward():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


# -- grad mode -----------------------------------------------------------------------------------------------------------


def test_no_grad_context_nests_and_restores():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert is_grad_enabled()
    with ag.no_grad():
        assert not ag.is_grad_enabled()
        y = x * 2.0
        with ag.no_grad():
            assert not is_grad_enabled()
        assert not is_grad_enabled()
        with ag.enable_grad():
            assert is_grad_enabled()
            z = x * 2.0
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad
    assert z.grad_fn is not None and z.requires_grad


def test_no_grad_restores_the_mode_on_exceptions():
    with pytest.raises(KeyError):
        with ag.no_grad():
            raise KeyError("boom")
    assert is_grad_enabled()
    with ag.no_grad():
        with pytest.raises(ValueError):
            with ag.enable_grad():
                raise ValueError("boom")
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_no_grad_and_enable_grad_as_decorators():
    x = Tensor([1.0, 2.0], requires_grad=True)
    evaluate, train_step, failing = learner_side(__file__).grad_mode_decorated()
    out = evaluate(x)
    assert out.grad_fn is None and is_grad_enabled()
    assert evaluate.__name__ == "evaluate" and evaluate.__doc__ == "Docstring kept."
    with ag.no_grad():
        assert train_step(x).grad_fn is not None
        assert not is_grad_enabled()
    with pytest.raises(RuntimeError, match="inside"):
        failing()
    assert is_grad_enabled()


def test_same_no_grad_object_can_be_reentered():
    guard = ag.no_grad()
    with guard:
        with guard:
            assert not is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()


# -- the engine's registry --------------------------------------------------------------------------------------------------


def test_register_backward_extends_the_engine_and_unknown_ops_are_named():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="'kata_cube'"):
        Tensor.from_op(x.data**3, "kata_cube", (x,)).sum().backward()
    helpers = learner_side(__file__)
    try:
        _cube_backward = ag.register_backward("kata_cube")(helpers.cube_backward)
        assert _cube_backward is helpers.cube_backward, "register_backward returns the rule (a decorator)"
        assert ag.BACKWARD_RULES["kata_cube"] is _cube_backward
        Tensor.from_op(x.data**3, "kata_cube", (x,)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])
        # a rule may return None for an input: that input gets no gradient from this op
        ag.register_backward("kata_stop")(helpers.stop_backward)
        y = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        (Tensor.from_op(y.data * 2, "kata_stop", (y,)) + y * 0.0).sum().backward()
        assert y.grad.numpy().tolist() == [0.0, 0.0]
        z = Tensor(np.array([1.0]), requires_grad=True)
        Tensor.from_op(z.data, "kata_stop", (z,)).sum().backward()
        assert z.grad is None
    finally:
        helpers.forget_rules("kata_cube", "kata_stop")


def test_unbroadcast_sums_back_to_the_input_shape():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(ag.unbroadcast(g, (3, 4)), g.sum(axis=0))
    np.testing.assert_array_equal(ag.unbroadcast(g, (2, 1, 4)), g.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(ag.unbroadcast(g, (1, 1)), g.sum(axis=0).sum(axis=(0, 1), keepdims=True))
    np.testing.assert_array_equal(ag.unbroadcast(g, ()), g.sum())
    np.testing.assert_array_equal(ag.unbroadcast(g, (2, 3, 4)), g)
