"""Checks for module 02: Activations.

Forward values are compared with torch.nn.functional through one lambda that
runs on both frameworks, on Hypothesis arrays (float32/float64, non-contiguous
layouts). Mathematical properties (softmax sums to 1, shift invariance,
log_softmax == log(softmax), sigmoid symmetry, ranges) are checked on their
own, and so is stability at +-1e4 with numpy's floating-point errors turned
into exceptions. Gradients are module 05's job: here we check that each
activation records its own op, which is what module 05's rules key on.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.learner_side import learner_errstate, learner_numpy
from checks.harness.parity import assert_parity, assert_same
from tinytorch import activations as A
from tinytorch.tensor import Tensor


def both(name: str, *args, **kwargs):
    """A lambda that calls `name` from tinytorch.activations or torch.nn.functional, whichever fits x."""

    def run(x):
        namespace = F if isinstance(x, torch.Tensor) else A
        return getattr(namespace, name)(x, *args, **kwargs)

    return run


ELEMENTWISE = {
    "relu": both("relu"),
    "leaky_relu": both("leaky_relu"),
    "leaky_relu_0.2": both("leaky_relu", negative_slope=0.2),
    "sigmoid": both("sigmoid"),
    "tanh": both("tanh"),
    "gelu": both("gelu"),
    "gelu_tanh": both("gelu", approximate="tanh"),
}


@pytest.mark.parametrize("name", ELEMENTWISE)
@given(array=tst.arrays(dtype=tst.float_dtypes))
def test_elementwise_forward_matches_torch(name, array):
    out = assert_parity(ELEMENTWISE[name], array)
    assert isinstance(out, Tensor)


@st.composite
def array_and_dim(draw, extreme_slices: bool = False):
    array = tst.arrays(tst.shapes(min_dims=1, max_dims=4), dtype=tst.float_dtypes)
    array = draw(tst.with_extreme_slices(array) if extreme_slices else array)
    return array, draw(st.integers(-array.ndim, array.ndim - 1))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(case=array_and_dim())
def test_softmax_family_forward_matches_torch(name, case):
    array, dim = case
    assert_parity(both(name, dim=dim), array)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(case=array_and_dim(extreme_slices=True))
def test_softmax_family_is_stable_when_some_slices_sit_far_from_the_rest(name, case):
    # each slice must be shifted by ITS OWN max: one global max turns rows 1000 below it into 0/0
    array, dim = case
    assert_parity(both(name, dim=dim), array)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_default_dim_and_0d(name):
    array = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    assert_parity(lambda x: both(name, dim=-1)(x) if isinstance(x, torch.Tensor) else getattr(A, name)(x), array)
    assert_parity(both(name, dim=0), np.array(2.5, dtype=np.float32))
    with pytest.raises(IndexError, match="2"):
        getattr(A, name)(Tensor(np.ones((2, 3))), dim=2)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"])
def test_numpy_arrays_are_accepted(name):
    array = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    kwargs = {"dim": -1} if "softmax" in name else {}
    assert_same(getattr(A, name)(array, **kwargs), getattr(F, name)(torch.from_numpy(array), **kwargs))


# -- stability: extreme inputs, no numpy floating-point errors ---------------------------------------

EXTREME = np.array([-1e4, -100.0, -20.0, -1.0, 0.0, 1.0, 20.0, 100.0, 1e4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", [*ELEMENTWISE, "softmax", "log_softmax"])
def test_extreme_inputs_are_finite_and_raise_no_numpy_errors(name, dtype):
    fn = ELEMENTWISE.get(name) or both(name, dim=-1)
    array = EXTREME.astype(dtype)
    before = dict(learner_numpy().geterr())
    with learner_errstate(over="raise", invalid="raise", divide="raise"):
        out = fn(Tensor(array))
    assert dict(learner_numpy().geterr()) == before, (
        "silence numpy locally (np.errstate), never with a global np.seterr")
    assert np.isfinite(out.numpy()).all(), f"{name} gave non-finite values for {EXTREME.tolist()}: {out.numpy()}"
    assert_same(out, fn(torch.from_numpy(array)))


def test_log_softmax_is_finite_where_softmax_underflows():
    x = Tensor(np.array([[0.0, -1000.0, 1000.0]]))
    assert A.softmax(x).numpy()[0, 1] == 0.0
    np.testing.assert_allclose(A.log_softmax(x).numpy(), [[-1000.0, -2000.0, 0.0]])


# -- properties -----------------------------------------------------------------------------------------


@given(case=array_and_dim(), shift=st.floats(-50, 50))
def test_softmax_sums_to_one_and_is_shift_invariant(case, shift):
    array, dim = case
    array = array.astype(np.float64)
    p = A.softmax(Tensor(array), dim=dim).numpy()
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p.sum(axis=dim), 1.0, rtol=1e-12)
    np.testing.assert_allclose(A.softmax(Tensor(array + shift), dim=dim).numpy(), p, rtol=1e-9, atol=1e-12)


@given(case=array_and_dim())
def test_log_softmax_is_log_of_softmax(case):
    array, dim = case
    array = array.astype(np.float64)
    log_p = A.log_softmax(Tensor(array), dim=dim).numpy()
    p = A.softmax(Tensor(array), dim=dim).numpy()
    finite = p > 0
    np.testing.assert_allclose(log_p[finite], np.log(p[finite]), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.exp(log_p), p, rtol=1e-9, atol=1e-15)


@given(array=tst.arrays(dtype=np.float64, low=-50, high=50))
def test_sigmoid_is_in_unit_interval_and_symmetric(array):
    s = A.sigmoid(Tensor(array)).numpy()
    assert ((s >= 0) & (s <= 1)).all()
    np.testing.assert_allclose(A.sigmoid(Tensor(-array)).numpy(), 1 - s, atol=1e-15)
    np.testing.assert_allclose(2 * A.sigmoid(Tensor(2 * array)).numpy() - 1, A.tanh(Tensor(array)).numpy(),
                               atol=1e-12)


@given(array=tst.arrays(dtype=np.float64))
def test_relu_family_and_gelu_identities(array):
    r = A.relu(Tensor(array)).numpy()
    assert (r >= 0).all() and np.array_equal(r - A.relu(Tensor(-array)).numpy(), array)
    leaky = A.leaky_relu(Tensor(array), 0.1).numpy()
    np.testing.assert_allclose(leaky, np.where(array > 0, array, 0.1 * array))
    g = A.gelu(Tensor(array)).numpy()
    np.testing.assert_allclose(g - A.gelu(Tensor(-array)).numpy(), array, atol=1e-12)  # x*Phi(x) - (-x)*Phi(-x) = x


# -- dtype and shape ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*ELEMENTWISE, "softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_are_kept(name, dtype):
    fn = ELEMENTWISE.get(name) or both(name, dim=1)
    out = fn(Tensor(np.ones((2, 3, 1), dtype=dtype)))
    assert out.dtype == dtype and out.shape == (2, 3, 1)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="'erf'"):
        A.gelu(Tensor([1.0]), approximate="erf")
    with pytest.raises(ValueError, match="'fast'"):
        A.GELU(approximate="fast")


# -- classes --------------------------------------------------------------------------------------------------

CLASSES = [
    (lambda: A.ReLU(), lambda: torch.nn.ReLU()),
    (lambda: A.LeakyReLU(), lambda: torch.nn.LeakyReLU()),
    (lambda: A.LeakyReLU(0.3), lambda: torch.nn.LeakyReLU(0.3)),
    (lambda: A.Sigmoid(), lambda: torch.nn.Sigmoid()),
    (lambda: A.Tanh(), lambda: torch.nn.Tanh()),
    (lambda: A.GELU(), lambda: torch.nn.GELU()),
    (lambda: A.GELU(approximate="tanh"), lambda: torch.nn.GELU(approximate="tanh")),
    (lambda: A.Softmax(dim=0), lambda: torch.nn.Softmax(dim=0)),
    (lambda: A.Softmax(), lambda: torch.nn.Softmax(dim=-1)),
    (lambda: A.LogSoftmax(dim=1), lambda: torch.nn.LogSoftmax(dim=1)),
    (lambda: A.LogSoftmax(), lambda: torch.nn.LogSoftmax(dim=-1)),
]


@pytest.mark.parametrize("make", CLASSES, ids=lambda pair: repr(pair[1]()))
def test_classes_are_callables_matching_torch_modules(make):
    ours_factory, theirs_factory = make
    ours, theirs = ours_factory(), theirs_factory()
    array = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    assert_same(ours(Tensor(array)), theirs(torch.from_numpy(array)))
    assert_same(ours.forward(Tensor(array)), theirs(torch.from_numpy(array)))
    assert repr(ours) == repr(theirs)


# -- the graph record (what module 05 builds on) ------------------------------------------------------------------

RECORDS = [
    (lambda x: A.relu(x), "relu", {}),
    (lambda x: A.leaky_relu(x, 0.2), "leaky_relu", {"negative_slope": 0.2}),
    (lambda x: A.sigmoid(x), "sigmoid", {}),
    (lambda x: A.tanh(x), "tanh", {}),
    (lambda x: A.gelu(x), "gelu", {"approximate": "none"}),
    (lambda x: A.gelu(x, approximate="tanh"), "gelu", {"approximate": "tanh"}),
    (lambda x: A.softmax(x, dim=-1), "softmax", {"dim": 1}),
    (lambda x: A.log_softmax(x, dim=0), "log_softmax", {"dim": 0}),
]


@pytest.mark.parametrize("fn, op, saved", RECORDS, ids=[f"{r[1]}-{i}" for i, r in enumerate(RECORDS)])
def test_each_activation_records_its_own_op(fn, op, saved):
    x = Tensor(np.array([[-1.0, 0.5], [2.0, -3.0]], dtype=np.float32), requires_grad=True)
    out = fn(x)
    assert out.grad_fn is not None, f"{op} must record its result with Tensor.from_op"
    assert out.grad_fn.op == op, f"record one '{op}' op (module 05 has a rule for it), not a chain of primitives"
    assert out.grad_fn.saved == saved
    assert len(out.grad_fn.inputs) == 1 and out.grad_fn.inputs[0] is x
    assert out.requires_grad and out.dtype == np.float32
    assert fn(Tensor(x.numpy())).grad_fn is None
