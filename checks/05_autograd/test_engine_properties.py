"""Module 05: properties of the engine that hold for every graph, not just the ones drawn by hand.

1. Random DAGs. Hypothesis builds small graphs (2-4 leaves, 3-12 nodes, float32 or float64) whose
   nodes take their operands from ANY earlier node or leaf, so sub-expressions are shared and
   reached along several paths, with broadcasting, reductions, reshapes, transposes and matmuls.
   Every leaf gradient must match PyTorch on the same graph, and every backward rule must run
   exactly once per node per backward(): each node is wrapped in an identity op whose rule counts
   its calls (checks/05_autograd/learner_side.py), so an engine that walks every path instead of
   every node is caught even when its sums come out right.
2. How a leaf's .grad is stored: a Tensor over an ndarray of the leaf's shape and dtype that is
   writeable, C-contiguous and shares memory with nothing else (no other leaf's .grad, no leaf's
   data, not the gradient passed to backward()). A read-only broadcast view or a transposed view
   has the right values and breaks clip_grad_norm_ and in-place optimizer updates later on.
3. zero_grad(set_to_none=False) gives such zeros in each leaf's own dtype; set_to_none=True gives None.
4. A second backward() adds into the existing .grad: the sum, in the leaf's dtype, stored the same way,
   without touching any other tensor.

The flags are read where the arrays live (learner_side.grad_storage): across the grader's trust
boundary arrays arrive as copies, which are always writeable and C-contiguous.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.learner_side import learner_side
from checks.harness.parity import assert_same
from tinytorch import activations as A
from tinytorch import autograd as ag
from tinytorch.tensor import Tensor

helpers = learner_side(__file__)

DTYPES = {"float32": np.float32, "float64": np.float64}


# -- 1. random DAGs ------------------------------------------------------------------------------------------------

OPS = ("add", "sub", "mul", "div", "matmul", "exp", "tanh", "sum", "mean", "reshape", "transpose")


def _compatible(shape, full) -> bool:
    """Whether `shape` broadcasts to `full` without growing it (every value stays in one broadcast family)."""
    try:
        return np.broadcast_shapes(tuple(shape), tuple(full)) == tuple(full)
    except ValueError:
        return False


def _matmul_shape(a, b):
    if not a or not b:
        return None
    try:
        return np.matmul(np.zeros(a), np.zeros(b)).shape
    except ValueError:
        return None


@st.composite
def dags(draw, dtype):
    """A random DAG: {"full", "leaves": [arrays], "nodes": [(op, operands, params)], "terms": [...]}.

    Values live in one broadcast family: every shape broadcasts to `full` = (n, n) or (b, n, n), so any
    two values can meet in an elementwise op, a transpose of the last two axes stays in the family,
    and matmuls appear where the inner sizes agree. Operands are indices into leaves + nodes so far;
    terms[k] says how value k (leaves first) enters the root (see _root).
    """
    n = draw(st.integers(1, 3))
    full = (n, n) if draw(st.booleans()) else (draw(st.integers(2, 3)), n, n)
    leaves, shapes = [], []
    for _ in range(draw(st.integers(2, 4))):
        ndim = draw(st.integers(0, len(full)))
        shape = tuple(1 if draw(st.booleans()) else side for side in full[len(full) - ndim:])
        leaves.append(draw(tst.arrays(shape, dtype=dtype, low=-2.0, high=2.0)))
        shapes.append(shape)
    nodes = []
    for _ in range(draw(st.integers(3, 12))):
        count = len(shapes)
        op = draw(st.sampled_from(OPS))
        operand = st.integers(0, count - 1)
        params: dict = {}
        if op == "matmul":
            pairs = [(i, j) for i in range(count) for j in range(count)
                     if (s := _matmul_shape(shapes[i], shapes[j])) is not None and _compatible(s, full)]
            if not pairs:
                op = "add"
            else:
                i, j = draw(st.sampled_from(pairs))
                nodes.append(("matmul", (i, j), params))
                shapes.append(_matmul_shape(shapes[i], shapes[j]))
                continue
        if op in ("add", "sub", "mul", "div"):
            i, j = draw(operand), draw(operand)
            nodes.append((op, (i, j), params))
            shapes.append(np.broadcast_shapes(shapes[i], shapes[j]))
            continue
        i = draw(operand)
        shape = shapes[i]
        if op == "transpose" and len(shape) < 2:
            op = "reshape"
        if op in ("sum", "mean"):
            axis = None
            if shape:
                dims = st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True)
                axis = tuple(draw(dims))
            keepdim = draw(st.booleans())
            result = np.sum(np.zeros(shape), axis=axis, keepdims=keepdim).shape
            if not _compatible(result, full):
                keepdim = True
                result = np.sum(np.zeros(shape), axis=axis, keepdims=True).shape
            params = {"axis": axis, "keepdim": keepdim}
        elif op == "reshape":
            if len(shape) < len(full):
                result = (1,) + shape
            elif shape[0] == 1:
                result = shape[1:]
            else:
                result = shape  # flattened and reshaped back
            params = {"shape": result}
        elif op == "transpose":
            result = shape[:-2] + (shape[-1], shape[-2])
        else:
            result = shape
        nodes.append((op, (i,), params))
        shapes.append(tuple(result))
    # How each value feeds the root: through a weighted sum, a plain sum, or only through the nodes that
    # use it ("none"; never for a value nothing uses, so every node is on a path to the root).
    used = {i for _, operands, _ in nodes for i in operands}
    terms = [draw(st.sampled_from(("weighted", "sum", "none") if k in used else ("weighted", "sum")))
             for k in range(len(shapes))]
    return {"full": full, "leaves": leaves, "nodes": nodes, "terms": terms}


def _apply(op, args, params, is_torch):
    a = args[0]
    if op == "add":
        return a + args[1]
    if op == "sub":
        return a - args[1]
    if op == "mul":
        return a * args[1]
    if op == "div":
        return a / (args[1] * args[1] + 1.0)  # the denominator stays >= 1
    if op == "matmul":
        return a @ args[1]
    if op == "exp":
        return a.exp()
    if op == "tanh":
        return torch.tanh(a) if is_torch else A.tanh(a)
    if op in ("sum", "mean"):
        if params["axis"] is None:
            return getattr(a, op)()
        return getattr(a, op)(dim=params["axis"], keepdim=params["keepdim"])
    if op == "reshape":
        shape = params["shape"]
        return a.reshape(shape) if shape != tuple(a.shape) else a.reshape(-1).reshape(shape)
    if op == "transpose":
        return a.transpose(-1, -2)
    raise AssertionError(f"unknown op {op}")


def _weights(shape, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.asarray(rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)


def _run_torch(dag):
    """The DAG in PyTorch. Returns (leaves, root, scales): scales[k] is the power of two node k is
    multiplied by to keep values within [-2, 2] (exact in both frameworks, so both use the same one)."""
    leaves = [torch.tensor(x.copy(order="C"), requires_grad=True) for x in dag["leaves"]]
    values, scales = list(leaves), []
    for op, operands, params in dag["nodes"]:
        value = _apply(op, [values[i] for i in operands], params, True)
        peak = float(value.detach().abs().max()) if value.numel() else 0.0
        scale = 2.0 ** -max(0, math.ceil(math.log2(peak / 2.0))) if peak > 2.0 else 1.0
        scales.append(scale)
        values.append(value * scale if scale != 1.0 else value)
    return leaves, _root(values, dag["terms"], lambda w: torch.from_numpy(w)), scales


def _run_tinytorch(dag, scales):
    """The same DAG in tinytorch, each node wrapped in helpers.tap(node, k) (an identity with a counting rule)."""
    leaves = [Tensor(x, requires_grad=True) for x in dag["leaves"]]
    values = list(leaves)
    for k, ((op, operands, params), scale) in enumerate(zip(dag["nodes"], scales)):
        value = _apply(op, [values[i] for i in operands], params, False)
        values.append(helpers.tap(value * scale if scale != 1.0 else value, k))
    return leaves, _root(values, dag["terms"], Tensor)


def _root(values, terms, constant):
    """The sum of v.sum() or (v * W).sum() (W fixed random weights) over the leaves and nodes v whose term
    is not "none": most values feed the root directly as well as through the nodes that use them."""
    total = None
    for position, (v, term) in enumerate(zip(values, terms)):
        if term == "none":
            continue
        if term == "weighted":
            v = v * constant(_weights(tuple(v.shape), np.dtype(str(v.dtype).removeprefix("torch.")), seed=position))
        total = v.sum() if total is None else total + v.sum()
    return total


def _describe(dag) -> str:
    count = len(dag["leaves"])
    names = [f"leaf {i}" for i in range(count)] + [f"node {k}" for k in range(len(dag["nodes"]))]
    lines = [f"leaves: {[tuple(x.shape) for x in dag['leaves']]}"]
    for k, (op, operands, params) in enumerate(dag["nodes"]):
        extra = f" {params}" if params else ""
        lines.append(f"node {k} = {op}({', '.join(names[i] for i in operands)}){extra}")
    parts = [f"{names[i]}.sum()" if term == "sum" else f"({names[i]} * W{i}).sum()"
             for i, term in enumerate(dag["terms"]) if term != "none"]
    lines.append(f"root = {' + '.join(parts)}")
    return "\n  ".join(lines)


@contextlib.contextmanager
def _in_dag(dag):
    """Append the graph, node by node, to the message of a failing assertion."""
    try:
        yield
    except AssertionError as err:
        raise AssertionError(f"{err}\n  in the random DAG:\n  {_describe(dag)}") from None


def _assert_leaf_grads_match(leaves, torch_leaves, context):
    for i, (leaf, ref) in enumerate(zip(leaves, torch_leaves)):
        where = f"{context}: gradient of leaf {i}"
        if ref.grad is None:
            assert leaf.grad is None, f"{where}: PyTorch gives no gradient, got one"
            continue
        assert leaf.grad is not None, f"{where}: .grad is None after backward()"
        assert_same(leaf.grad, ref.grad, where)


def _tap_registered():
    """Register the counting identity rule (again: a restarted worker forgets it) and reset the counts."""
    ag.register_backward("kata_tap")(helpers.tap_backward)
    helpers.reset_tap_calls()


@pytest.mark.parametrize("dtype_name", DTYPES)
@given(data=st.data())
def test_random_dag_leaf_gradients_match_torch(dtype_name, data):
    dag = data.draw(dags(DTYPES[dtype_name]), label="dag")
    torch_leaves, torch_root, scales = _run_torch(dag)
    torch_root.backward()
    _tap_registered()
    try:
        leaves, root = _run_tinytorch(dag, scales)
        root.backward()
        with _in_dag(dag):
            _assert_leaf_grads_match(leaves, torch_leaves, "random DAG")
    finally:
        helpers.forget_rules("kata_tap")


@pytest.mark.parametrize("dtype_name", DTYPES)
@given(data=st.data())
def test_random_dag_runs_each_backward_rule_once_per_node(dtype_name, data):
    dag = data.draw(dags(DTYPES[dtype_name]), label="dag")
    _, _, scales = _run_torch(dag)
    _tap_registered()
    try:
        leaves, root = _run_tinytorch(dag, scales)
        nodes = len(dag["nodes"])
        for calls, kwargs in ((1, {"retain_graph": True}), (2, {})):
            root.backward(**kwargs)
            counts = helpers.tap_calls()
            wrong = {k: counts.get(k, 0) for k in range(nodes) if counts.get(k, 0) != calls}
            assert not wrong, (
                f"after {calls} backward() call(s) every node's rule must have run exactly {calls} time(s);"
                f" these ran another number of times {{node: runs}}: {wrong}. An engine must visit each node"
                f" once, after all its users, with the summed gradient (not once per path)\n  in the random DAG:\n"
                f"  {_describe(dag)}")
    finally:
        helpers.forget_rules("kata_tap")


@pytest.mark.parametrize("dtype_name", DTYPES)
@given(data=st.data())
def test_random_dag_leaf_grads_are_fresh_c_contiguous_arrays(dtype_name, data):
    dag = data.draw(dags(DTYPES[dtype_name]), label="dag")
    _, _, scales = _run_torch(dag)
    _tap_registered()
    try:
        leaves, root = _run_tinytorch(dag, scales)
        root.backward()
        with _in_dag(dag):
            assert_grads_stored_well(leaves, [f"random DAG, leaf {i}" for i in range(len(leaves))])
    finally:
        helpers.forget_rules("kata_tap")


# -- 2. how a leaf's .grad is stored -------------------------------------------------------------------------------


def assert_grads_stored_well(leaves, names, others=()):
    """Each leaf's .grad: a Tensor over a writeable, C-contiguous ndarray of the leaf's shape and dtype that
    shares memory with no other leaf's .grad or .data and none of `others` ((label, Tensor) pairs)."""
    report = helpers.grad_storage(list(leaves), list(others))
    for name, entry in zip(names, report):
        where = f"{name}: .grad"
        assert entry is not None, f"{where} is None after backward()"
        assert entry["grad_type"] == "Tensor", f"{where} is a {entry['grad_type']}, expected a Tensor"
        assert entry["data_type"] == "ndarray", f"{where}.data is a {entry['data_type']}, expected a numpy ndarray"
        assert entry["shape"] == entry["leaf_shape"], (
            f"{where}: shape {entry['shape']}, expected the leaf's shape {entry['leaf_shape']}")
        assert entry["dtype"] == entry["leaf_dtype"], (
            f"{where}: dtype {entry['dtype']}, expected the leaf's dtype {entry['leaf_dtype']}")
        assert entry["writeable"], (
            f"{where}.data is read-only (e.g. an np.broadcast_to view of the upstream gradient): optimizers and"
            " clip_grad_norm_ update gradients in place; store a fresh array (np.array(..., order='C'))")
        assert entry["c_contiguous"], (
            f"{where}.data is not C-contiguous (a transposed, strided or broadcast view): store a fresh"
            " C-ordered array, laid out like the parameter (np.array(..., order='C'))")
        assert not entry["shares_memory_with"], (
            f"{where}.data shares memory with {', '.join(entry['shares_memory_with'])}"
            f" ({'it owns its buffer' if entry['owns_data'] else 'it is a view of another array'}):"
            " an in-place update of one would change the other; store a fresh array")


def _leaf(shape, dtype, seed):
    values = np.random.default_rng(seed).uniform(-2.0, 2.0, size=shape).astype(dtype)
    return Tensor(values.copy(), requires_grad=True), torch.tensor(values, requires_grad=True)


# name: (leaf shapes, fn on the leaves; an extra last argument is the upstream gradient, or None for .backward())
STORAGE_CASES = {
    "(3,1) + (2,3,4)": ([(3, 1), (2, 3, 4)], lambda a, b: (a + b).sum()),
    "() * (2,3,4)": ([(), (2, 3, 4)], lambda a, b: (a * b).sum()),
    "(4,) - (2,3,4) mean": ([(4,), (2, 3, 4)], lambda a, b: (a - b).mean()),
    "sum": ([(2, 3)], lambda a: a.sum()),
    "mean over dim 1": ([(2, 3, 4)], lambda a: a.mean(dim=1).sum()),
    "sum keepdim then expand": ([(2, 3), (1, 3)], lambda a, b: (a.sum(dim=0, keepdim=True) * b + a).sum()),
    "leaf used twice (x * x)": ([(3,)], lambda a: (a * a).sum()),
    "leaf used twice (x + x)": ([(2, 2)], lambda a: (a + a).sum()),
    "same-shape leaves added": ([(2, 3), (2, 3)], lambda a, b: (a + b).sum()),
    "transpose": ([(3, 2)], lambda a: (a.transpose(0, 1) * 2.0).sum()),
    "matmul with a transposed leaf": ([(2, 3), (2, 4)], lambda a, b: (a.transpose(0, 1) @ b).sum()),
    "reshape": ([(2, 3)], lambda a: (a.reshape(3, 2) * 1.0).sum()),
}

# Roots that take an explicit upstream gradient: the leaves' .grad must not share memory with it.
UPSTREAM_CASES = {
    "leaf + leaf": ([(2, 3), (2, 3)], lambda a, b: a + b),
    "leaf + broadcast leaf": ([(2, 3), (3,)], lambda a, b: a + b),
    "reshape": ([(2, 3)], lambda a: a.reshape(6)),
    "transpose": ([(2, 3)], lambda a: a.transpose(0, 1)),
    "the leaf itself": ([(2, 3)], lambda a: a),
    "leaf - leaf": ([(3,), (3,)], lambda a, b: a - b),
}


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("case", STORAGE_CASES)
def test_leaf_grad_is_a_fresh_writeable_c_contiguous_array(case, dtype_name):
    shapes, fn = STORAGE_CASES[case]
    pairs = [_leaf(shape, DTYPES[dtype_name], seed) for seed, shape in enumerate(shapes)]
    leaves, torch_leaves = [p[0] for p in pairs], [p[1] for p in pairs]
    fn(*leaves).backward()
    fn(*torch_leaves).backward()
    _assert_leaf_grads_match(leaves, torch_leaves, case)
    assert_grads_stored_well(leaves, [f"{case}, leaf {i}" for i in range(len(leaves))])


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("case", UPSTREAM_CASES)
def test_leaf_grad_does_not_share_memory_with_the_upstream_gradient(case, dtype_name):
    shapes, fn = UPSTREAM_CASES[case]
    dtype = DTYPES[dtype_name]
    pairs = [_leaf(shape, dtype, seed) for seed, shape in enumerate(shapes)]
    leaves, torch_leaves = [p[0] for p in pairs], [p[1] for p in pairs]
    out_shape = tuple(fn(*torch_leaves).shape)
    upstream = _weights(out_shape, dtype, seed=99)
    gradient = Tensor(upstream.copy())
    fn(*leaves).backward(gradient)
    fn(*torch_leaves).backward(torch.from_numpy(upstream.copy()))
    _assert_leaf_grads_match(leaves, torch_leaves, case)
    assert_grads_stored_well(leaves, [f"{case}, leaf {i}" for i in range(len(leaves))],
                             others=[("the gradient passed to backward()", gradient)])
    assert np.array_equal(gradient.numpy(), upstream), (
        f"{case}: backward() modified the gradient passed to it; it must only read it")


# -- 3. zero_grad --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_zero_grad_keeps_zeros_in_each_leafs_dtype_shape_and_storage(dtype_name):
    dtype = DTYPES[dtype_name]
    shapes = [(2, 3), (2, 3), (3,), (), (3, 1)]  # two of one shape: zeros shared between them are caught
    pairs = [_leaf(shape, dtype, seed) for seed, shape in enumerate(shapes)]
    leaves, torch_leaves = [p[0] for p in pairs], [p[1] for p in pairs]
    untouched = Tensor(np.ones(2, dtype=dtype), requires_grad=True)

    def loss(a, a2, b, c, d):
        return ((a + b) * c + d.transpose(0, 1) * a2).sum()

    loss(*leaves).backward()
    ag.zero_grad(leaves + [untouched], set_to_none=False)
    names = [f"zero_grad(set_to_none=False) on a {dtype_name} leaf of shape {s}" for s in shapes]
    assert_grads_stored_well(leaves, names)
    for name, leaf in zip(names, leaves):
        values = leaf.grad.numpy()
        assert not values.any(), f"{name}: .grad holds {values}, expected zeros"
    assert untouched.grad is None, "zero_grad(set_to_none=False) on a leaf whose .grad is None keeps None (as PyTorch)"
    # gradients computed after zeroing land in the zeros, in the leaf's dtype
    loss(*leaves).backward()
    loss(*torch_leaves).backward()
    _assert_leaf_grads_match(leaves, torch_leaves, "backward() after zero_grad(set_to_none=False)")
    assert_grads_stored_well(leaves, [f"after zero_grad(set_to_none=False) and backward(), leaf {i}"
                                      for i in range(len(leaves))])
    ag.zero_grad(leaves, set_to_none=True)
    assert all(leaf.grad is None for leaf in leaves), "zero_grad(set_to_none=True) sets every .grad to None"
    loss(*leaves).backward()
    ag.zero_grad(leaves)
    assert all(leaf.grad is None for leaf in leaves), "zero_grad() sets every .grad to None by default (as PyTorch)"


# -- 4. accumulation -----------------------------------------------------------------------------------------------

# name: (leaf shapes and dtypes, first and second function; the second backward() adds into the first's .grad;
#        second None: the first graph again, kept with retain_graph=True)
ACCUMULATION_CASES = {
    "same graph twice, retain_graph": ([((2, 3), "float32"), ((2, 3), "float32")],
                                       lambda a, b: (a * b + a).sum(), None),
    "broadcast then transpose": ([((3, 1), "float32"), ((2, 3), "float32")],
                                 lambda a, b: (a.transpose(0, 1) * b).sum(),
                                 lambda a, b: (a + b.transpose(0, 1)).sum()),
    "sum then add": ([((2, 2), "float32"), ((2, 2), "float32")],
                     lambda a, b: a.sum() * 2.0 + b.sum(), lambda a, b: (a + b).sum()),
    "float32 leaf in a float64 graph": ([((3,), "float32"), ((3,), "float64")],
                                        lambda a, b: (a * b).sum(), lambda a, b: (b - a).mean()),
    "float64 leaves": ([((2, 3), "float64"), ((3,), "float64")],
                       lambda a, b: (a * b).sum(), lambda a, b: (a + b).exp().sum()),
}


@pytest.mark.parametrize("case", ACCUMULATION_CASES)
def test_second_backward_accumulates_into_grad_in_the_leafs_dtype(case):
    specs, first, second = ACCUMULATION_CASES[case]
    pairs = [_leaf(shape, DTYPES[name], seed) for seed, (shape, name) in enumerate(specs)]
    leaves, torch_leaves = [p[0] for p in pairs], [p[1] for p in pairs]
    snapshots = [leaf.numpy().copy() for leaf in leaves]
    if second is None:
        root, torch_root = first(*leaves), first(*torch_leaves)
        root.backward(retain_graph=True)
        torch_root.backward(retain_graph=True)
        _assert_leaf_grads_match(leaves, torch_leaves, f"{case}, first backward()")
        root.backward()
        torch_root.backward()
    else:
        first(*leaves).backward()
        first(*torch_leaves).backward()
        _assert_leaf_grads_match(leaves, torch_leaves, f"{case}, first backward()")
        second(*leaves).backward()
        second(*torch_leaves).backward()
    for i, (leaf, ref, (_, name)) in enumerate(zip(leaves, torch_leaves, specs)):
        assert_same(leaf.grad, ref.grad, f"{case}: .grad of leaf {i} ({name}) after two backward() calls"
                    " (it must hold the sum of both gradients)")
    assert_grads_stored_well(leaves, [f"{case}, after two backward() calls, leaf {i}" for i in range(len(leaves))])
    for i, (leaf, snapshot) in enumerate(zip(leaves, snapshots)):
        assert np.array_equal(leaf.numpy(), snapshot), f"{case}: backward() changed the values of leaf {i}"
