"""Checks for module 01: Tensor.

Every op is compared with PyTorch through one lambda that runs on both
frameworks, on Hypothesis-drawn shapes (broadcasting, non-contiguous layouts,
float32 and float64). Gradients are module 05's job; here we check that the
graph is *recorded* correctly, which is all module 05 needs from this module.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.learner_side import learner_side
from checks.harness.parity import assert_parity
from tinytorch import tensor as tt
from tinytorch.tensor import Tensor

# -- construction and dtype policy ---------------------------------------------


@pytest.mark.parametrize(
    "data, shape",
    [(3.5, ()), (7, ()), ([1, 2, 3], (3,)), ([[1.0, 2.0], [3.0, 4.0]], (2, 2)), ([[[0.5]]], (1, 1, 1))],
)
def test_python_data_becomes_float32(data, shape):
    t = Tensor(data)
    assert t.dtype == np.float32, "Python numbers default to float32 (the deep-learning default)"
    assert t.shape == shape
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_])
def test_numpy_arrays_keep_their_supported_dtype(dtype):
    array = np.arange(6).reshape(2, 3).astype(dtype)
    t = Tensor(array)
    assert t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(t.numpy(), array)


def test_explicit_dtype_converts():
    t = Tensor([1.7, 2.2], dtype=np.float64)
    assert t.dtype == np.float64
    assert Tensor(np.array([1.9, 2.2]), dtype=np.int64).numpy().tolist() == [1, 2]


def test_tensor_from_tensor_and_functional_constructor():
    a = Tensor([[1.0, 2.0]])
    b = Tensor(a)
    assert b.shape == (1, 2) and b.dtype == np.float32
    c = tt.tensor([1, 2], requires_grad=True)
    assert c.requires_grad and c.dtype == np.float32


def test_numpy_data_is_shared_not_copied():
    seen = learner_side(__file__).value_seen_after_writing_the_array(np.float32)
    assert seen == 5.0, "like torch.from_numpy, a float32 array is wrapped without copying"


@pytest.mark.parametrize(
    "bad, fragment",
    [("hello", "dtype"), ([1, "a"], "dtype"), ([[1, 2], [3]], "Tensor"), (np.array([1 + 2j]), "complex"),
     ({"a": 1}, "dict"), (None, "NoneType"),
     # the bad item in a later position: validating only the first element is a classic bug
     ([1.0, 2.0, 3.0, "x"], "dtype"), ([[1, 2], [3, 4], [5]], "Tensor"), ([[1.0, 2.0], [3.0, None]], "object"),
     ([0.5, 1j], "complex"), ([[1, 2], [3, [4, 5]]], "Tensor")],
)
def test_non_numeric_data_is_a_clear_type_error(bad, fragment):
    with pytest.raises(TypeError, match=fragment):
        Tensor(bad)


@pytest.mark.parametrize("dtype", [np.float16, np.int8, np.uint16, np.complex64])
def test_unsupported_dtypes_are_rejected_by_name(dtype):
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        Tensor(np.zeros(3, dtype=dtype))


def test_only_float_tensors_require_grad():
    assert Tensor([1.0], requires_grad=True).requires_grad
    with pytest.raises(TypeError, match="int64"):
        Tensor(np.array([1, 2]), requires_grad=True)


def test_fresh_tensor_is_a_leaf_without_grad():
    t = Tensor([1.0, 2.0], requires_grad=True)
    assert t.grad is None and t.grad_fn is None and t.is_leaf


# -- properties ------------------------------------------------------------------


@given(tst.arrays(dtype=tst.float_dtypes))
def test_properties_match_numpy_and_torch(array):
    t, ref = Tensor(array), torch.tensor(array.copy(order="C"))
    assert t.shape == tuple(ref.shape)
    assert t.ndim == ref.ndim
    assert t.size() == tuple(ref.size())
    if t.ndim:
        assert t.size(-1) == ref.size(-1) and len(t) == len(ref)
    assert t.numel() == ref.numel()
    assert t.nbytes == array.nbytes
    assert t.dtype == array.dtype
    np.testing.assert_array_equal(t.numpy(), array)


def test_item_repr_bool_and_len():
    assert Tensor([[2.5]]).item() == 2.5
    with pytest.raises(ValueError, match=r"\(2,\)"):
        Tensor([1.0, 2.0]).item()
    assert "requires_grad=True" in repr(Tensor([1.0], requires_grad=True))
    assert "float32" in repr(Tensor([1.5, 2.5])) and "1.5" in repr(Tensor([1.5, 2.5]))
    assert bool(Tensor([3.0])) and not bool(Tensor([0.0]))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))
    with pytest.raises(TypeError):
        len(Tensor(1.0))
    assert np.asarray(Tensor([1.0, 2.0])).tolist() == [1.0, 2.0]
    assert np.asarray(Tensor([1.5]), dtype=np.float64).dtype == np.float64


# -- elementwise arithmetic ------------------------------------------------------

BINARY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
}


@pytest.mark.parametrize("op", BINARY_OPS)
@given(pair=tst.broadcastable_arrays(dtype=tst.float_dtypes))
def test_binary_ops_broadcast_like_torch(op, pair):
    assert_parity(BINARY_OPS[op], *pair)


@given(pair=tst.broadcastable_arrays(dtype=np.float64))
def test_float64_is_kept_through_ops(pair):
    assert_parity(lambda a, b: a * b - a, *pair)


@given(tst.arrays(), tst.arrays(exclude_near_zero=0.1).map(lambda a: a.reshape(-1)[:1].reshape(())))
def test_division(a, b):
    assert_parity(lambda x, y: x / y, a, b)


@given(tst.broadcastable_arrays(dtype=tst.float_dtypes, exclude_near_zero=0.1))
def test_division_by_a_broadcast_tensor(pair):
    assert_parity(lambda x, y: x / y, *pair)
    assert_parity(lambda x, y: y / x, *pair)


@given(tst.arrays(low=0.1, high=4.0), st.sampled_from([0.5, 1.0, 2.0, 3.0, -1.0]))
def test_power_by_scalar(a, exponent):
    assert_parity(lambda x: x**exponent, a)


@given(tst.broadcastable_arrays(low=0.5, high=2.0))
def test_power_by_tensor(pair):
    assert_parity(lambda x, y: x**y, *pair)


@given(tst.arrays())
def test_negation(a):
    assert_parity(lambda x: -x, a)


@pytest.mark.parametrize(
    "fn",
    [lambda x: 2.0 + x, lambda x: x + 2, lambda x: 3.0 - x, lambda x: x - 1.5, lambda x: 0.5 * x, lambda x: x * 4,
     lambda x: 1.0 / x, lambda x: x / 2, lambda x: 2.0**x],
    ids=["radd", "add", "rsub", "sub", "rmul", "mul", "rdiv", "div", "rpow"],
)
@given(a=tst.arrays(low=0.5, high=3.0))
def test_python_scalars_on_either_side_keep_float32(fn, a):
    assert_parity(fn, a)


def test_numpy_scalar_on_the_left_gives_a_tensor():
    out = np.float32(2.0) * Tensor([1.0, 2.0])
    assert isinstance(out, Tensor) and out.numpy().tolist() == [2.0, 4.0]


def test_integer_tensors_with_integer_scalars_stay_int64():
    assert_parity(lambda a: a * 3 + 1, np.array([1, 2, 3]))
    assert (Tensor([1.0, 2.0]) - [0.5, 1.5]).numpy().tolist() == [0.5, 0.5], "lists are lifted to float32 tensors"


def test_integer_division_gives_float32_as_in_torch():
    assert_parity(lambda a, b: a / b, np.array([1, 2, 3]), np.array([2, 2, 2]))


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "<"])
def test_shapes_that_do_not_broadcast_name_both_shapes(op):
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4,)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        eval(f"a {op} b")


# -- comparisons -------------------------------------------------------------------

COMPARISONS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


@pytest.mark.parametrize("op", COMPARISONS)
@given(pair=tst.broadcastable_arrays(low=-2, high=2).map(lambda p: tuple(np.asarray(np.round(x)) for x in p)))
def test_comparisons_give_bool_tensors(op, pair):
    out = assert_parity(COMPARISONS[op], *pair)
    assert out.grad_fn is None


def test_comparison_with_scalar_and_hashing():
    t = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert (t > 1.5).numpy().tolist() == [False, True, True]
    assert len({t, Tensor([1.0])}) == 2, "tensors hash by identity, since == is elementwise"


# -- matmul ------------------------------------------------------------------------


@given(tst.matmul_arrays(dtype=np.float32))
def test_matmul_matches_torch_including_batches(pair):
    assert_parity(lambda a, b: a @ b, *pair, scale=4.0)


@given(tst.matmul_arrays(dtype=np.float64))
def test_matmul_method_in_float64(pair):
    assert_parity(lambda a, b: a.matmul(b), *pair)


def test_matmul_with_a_plain_array_on_the_left():
    out = np.eye(2, dtype=np.float32).tolist() @ Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert out.numpy().tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    "left, right, pattern",
    [((2, 3), (4, 5), r"\(2, 3\) @ \(4, 5\).*3.*4"), ((3,), (2,), r"\(3,\) @ \(2,\)"),
     ((2, 2, 3), (5, 3, 1), r"batch"), ((), (3,), r"at least 1")],
)
def test_matmul_errors_name_the_shapes(left, right, pattern):
    with pytest.raises(ValueError, match=pattern):
        Tensor(np.ones(left)) @ Tensor(np.ones(right))


# -- reductions ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sum", "mean", "amax"])
@given(case=tst.reduction_case())
def test_reductions_with_dim_and_keepdim(name, case):
    array, axis, keepdim = case
    assert_parity(lambda x: getattr(x, name)(dim=axis, keepdim=keepdim), array, scale=10.0)


@given(case=tst.reduction_case(dtype=np.float64))
def test_numpy_style_axis_and_keepdims(case):
    array, axis, keepdims = case
    out = Tensor(array).sum(axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(out.numpy(), np.sum(array, axis=axis, keepdims=keepdims), rtol=1e-12, atol=1e-12)
    out = Tensor(array).max(axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(out.numpy(), np.max(array, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("axis", [2, -3, (0, 2), (1, -3)])
def test_reduction_axis_out_of_range(axis):
    bad = axis if isinstance(axis, int) else axis[1]
    with pytest.raises(IndexError, match=f"axis {bad}"):
        Tensor(np.ones((2, 3))).sum(dim=axis)


# -- shape ops -------------------------------------------------------------------------


@st.composite
def reshape_case(draw):
    array = draw(tst.arrays(tst.shapes(min_dims=0, max_dims=4)))
    n = array.size
    factors = [d for d in range(1, n + 1) if n % d == 0]
    first = draw(st.sampled_from(factors))
    targets = [(n,), (-1,), (first, n // first), (first, -1), (-1, first, 1), (1, -1, 1, first)]
    return array, draw(st.sampled_from(targets + ([()] if n == 1 else [])))


@given(reshape_case())
def test_reshape(case):
    array, target = case
    assert_parity(lambda x: x.reshape(target), array)
    if target:  # torch's reshape() needs at least one argument
        assert_parity(lambda x: x.reshape(*target), array)


def test_reshape_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        Tensor(np.ones((2, 3))).reshape(4, 2)


@st.composite
def transpose_case(draw):
    array = draw(tst.arrays(tst.shapes(min_dims=1, max_dims=4)))
    dim0 = draw(st.integers(-array.ndim, array.ndim - 1))
    dim1 = draw(st.integers(-array.ndim, array.ndim - 1))
    return array, dim0, dim1


@given(transpose_case())
def test_transpose_and_permute(case):
    array, dim0, dim1 = case
    assert_parity(lambda x: x.transpose(dim0, dim1), array)
    assert_parity(lambda x: x.permute(*reversed(range(array.ndim))), array)


@given(array=tst.arrays(tst.shapes(min_dims=0, max_dims=4)), data=st.data())
def test_permute_any_order_with_negative_dims(array, data):
    order = data.draw(st.permutations(range(array.ndim)))
    negative = [d - array.ndim if data.draw(st.booleans()) else d for d in order]
    assert_parity(lambda x: x.permute(tuple(negative)), array)
    if order:  # torch's permute() needs at least one argument
        assert_parity(lambda x: x.permute(*order), array)


@given(tst.arrays(tst.shapes(min_dims=0, max_dims=4)))
def test_T_reverses_every_dimension(array):
    # torch's .T reverses all dims too (deprecated beyond 2-D, so the torch side says it explicitly)
    assert_parity(lambda x: x.permute(tuple(reversed(range(x.ndim)))) if isinstance(x, torch.Tensor) else x.T, array)


def test_shape_op_errors():
    with pytest.raises(IndexError, match="dim 3"):
        Tensor(np.ones((2, 3))).transpose(0, 3)
    with pytest.raises(ValueError, match="permutation"):
        Tensor(np.ones((2, 3))).permute(0, 0)


# -- elementwise math ----------------------------------------------------------------------


@given(tst.arrays(dtype=tst.float_dtypes))
def test_exp(array):
    assert_parity(lambda x: x.exp(), array)


@given(tst.arrays(dtype=tst.float_dtypes, low=1e-3, high=1e3))
def test_log(array):
    assert_parity(lambda x: x.log(), array)


def test_exp_and_log_edge_values_follow_ieee():
    assert np.isinf(Tensor([1000.0]).exp().numpy()[0])
    out = Tensor([0.0, -1.0]).log().numpy()
    assert out[0] == -np.inf and np.isnan(out[1])


# -- indexing ---------------------------------------------------------------------------------



@pytest.mark.parametrize("name", tst.INDEX_CASES)
@given(array=tst.indexable_arrays(dtype=tst.float_dtypes))
def test_indexing_matches_torch(name, array):
    assert_parity(tst.INDEX_CASES[name], array)


@pytest.mark.parametrize("make_index", [
    lambda: Tensor(np.array([2, 0, 2])),
    lambda: (Tensor(np.array([0, 2, 0])), slice(1, None)),
    lambda: (slice(None), Tensor(np.array([[1, 1], [0, 2]]))),
    lambda: (Tensor(np.array([1, 1])), Tensor(np.array([2, 2]))),
], ids=["alone", "first-in-tuple", "later-in-tuple", "pair"])
def test_tensor_indices_are_saved_as_numpy_arrays(make_index):
    # module 05 scatters gradients with the saved index: every Tensor in it must be its .data (an
    # integer ndarray), or repeated entries stop accumulating there
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    index = make_index()
    saved = x[index].grad_fn.saved["index"]
    parts, given_parts = (saved, index) if isinstance(index, tuple) else ((saved,), (index,))
    assert isinstance(saved, tuple) == isinstance(index, tuple) and len(parts) == len(given_parts)
    for position, (part, original) in enumerate(zip(parts, given_parts)):
        if isinstance(original, slice):
            assert part == original, f"index part {position}: a slice is saved unchanged"
        else:
            assert isinstance(part, np.ndarray) and part.dtype == np.int64, (
                f"index part {position}: a Tensor index must be saved as its integer numpy array, got {part!r}")
            np.testing.assert_array_equal(part, original.numpy())


def test_tensor_indices_and_index_errors():
    t = Tensor(np.arange(6.0).reshape(2, 3))
    assert t[Tensor(np.array([1, 0]))].numpy().tolist() == [[3, 4, 5], [0, 1, 2]]
    assert t[Tensor(np.array([1])), 2].numpy().tolist() == [5.0]
    with pytest.raises(IndexError):
        t[5]


# -- the graph record (what module 05 builds on) --------------------------------------------------


def test_ops_record_the_graph_when_an_input_requires_grad():
    a = Tensor([[1.0, 2.0]], requires_grad=True)
    b = Tensor([[3.0], [4.0]])
    c = a @ b
    assert c.requires_grad and not c.is_leaf
    assert c.grad_fn.op == "matmul" and c.grad_fn.inputs[0] is a and c.grad_fn.inputs[1] is b
    s = (c * 2.0).sum(dim=1, keepdim=True)
    assert s.grad_fn.op == "sum" and s.grad_fn.saved == {"axis": (1,), "keepdims": True}
    assert s.grad_fn.inputs[0].grad_fn.op == "mul"
    assert isinstance(s.grad_fn.inputs[0].grad_fn.inputs[1], Tensor), "constants are wrapped as Tensors"


@pytest.mark.parametrize(
    "fn, op, saved",
    [(lambda x: x + 1, "add", {}), (lambda x: 1 - x, "sub", {}), (lambda x: x / 2, "div", {}),
     (lambda x: x**2, "pow", {}), (lambda x: -x, "neg", {}), (lambda x: x.exp(), "exp", {}),
     (lambda x: x.log(), "log", {}), (lambda x: x.mean(), "mean", {"axis": None, "keepdims": False}),
     (lambda x: x.max(dim=-1), "max", {"axis": (1,), "keepdims": False}), (lambda x: x.reshape(-1), "reshape", {}),
     (lambda x: x.T, "permute", {"dims": (1, 0)}), (lambda x: x.transpose(0, 1), "permute", {"dims": (1, 0)}),
     (lambda x: x[0], "getitem", {"index": 0})],
)
def test_each_op_records_its_name_and_saved_arguments(fn, op, saved):
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    out = fn(x)
    assert out.grad_fn is not None and out.grad_fn.op == op
    assert out.grad_fn.saved == saved
    assert any(i is x for i in out.grad_fn.inputs)
    assert "Node" in repr(out.grad_fn)


def test_nothing_is_recorded_without_requires_grad_or_in_no_grad_mode():
    a = Tensor([1.0, 2.0])
    assert (a * a).grad_fn is None and not (a * a).requires_grad
    b = Tensor([1.0, 2.0], requires_grad=True)
    previous = tt.set_grad_enabled(False)
    try:
        assert not tt.is_grad_enabled()
        out = b * 2
        assert out.grad_fn is None and not out.requires_grad
    finally:
        tt.set_grad_enabled(previous)
    assert tt.is_grad_enabled() and (b * 2).grad_fn is not None


def test_from_op_is_the_hook_for_later_modules():
    x = Tensor([1.0, -1.0], requires_grad=True)
    out = Tensor.from_op(np.maximum(x.data, 0), "relu", (x,), slope=0.0)
    assert out.grad_fn.op == "relu" and out.grad_fn.saved == {"slope": 0.0} and out.requires_grad
    assert out.dtype == np.float32
    plain = Tensor.from_op(np.array([1, 2]), "custom", (Tensor([1.0]),))
    assert plain.grad_fn is None and plain.dtype == np.int64


def test_detach_shares_data_but_leaves_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * 3).detach()
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(y.numpy(), [3.0, 6.0])
