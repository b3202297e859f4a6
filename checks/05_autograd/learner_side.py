"""Module 05 check helpers that run beside the learner's code (see checks/harness/learner_side.py)."""

from tinytorch import autograd as ag
from tinytorch.tensor import is_grad_enabled


def grad_mode_decorated():
    """(evaluate, train_step, failing) decorated with no_grad() / enable_grad(), as a user writes them."""

    @ag.no_grad()
    def evaluate(t):
        """Docstring kept."""
        assert not is_grad_enabled()
        return t * 3.0

    @ag.enable_grad()
    def train_step(t):
        return t * 3.0

    @ag.no_grad()
    def failing():
        raise RuntimeError("inside")

    return evaluate, train_step, failing


def cube_backward(grad, out, inputs, saved):
    return (grad * 3 * inputs[0].data ** 2,)


def stop_backward(grad, out, inputs, saved):
    return (None,)


def forget_rules(*ops: str) -> None:
    for op in ops:
        ag.BACKWARD_RULES.pop(op, None)


def array_instead_of_tuple(grad, out, inputs, saved):
    """A common slip: returning the gradient itself instead of a 1-tuple."""
    return grad * 2.0


def one_gradient_for_two_inputs(grad, out, inputs, saved):
    return (grad,)


# -- test_engine_properties.py: a counting identity op and a probe of how gradients are stored ---------

import numpy as np  # noqa: E402  (helpers below only)

from tinytorch.tensor import Tensor  # noqa: E402

_TAP_CALLS: dict = {}


def tap(x, key: int):
    """x unchanged, recorded as op "kata_tap" (saved key): lets a check count how often the engine
    runs the rule of the node it wraps."""
    return Tensor.from_op(x.data, "kata_tap", (x,), key=key)


def tap_backward(grad, out, inputs, saved):
    """The identity rule of "kata_tap"; counts its calls per key. Returns the upstream array itself,
    as add's rule does: the engine decides whether to copy."""
    _TAP_CALLS[saved["key"]] = _TAP_CALLS.get(saved["key"], 0) + 1
    return (grad,)


def reset_tap_calls() -> None:
    _TAP_CALLS.clear()


def tap_calls() -> dict:
    """{key: how many times tap_backward ran for that key} since reset_tap_calls()."""
    return dict(_TAP_CALLS)


def grad_storage(leaves, others=()) -> list:
    """How each leaf's .grad is stored, asked where the arrays live (they cross the boundary as copies).

    leaves: tensors whose .grad is described. others: (label, Tensor) pairs whose .data no gradient may
    share memory with (an upstream gradient passed to backward(), graph outputs...). For each leaf, None
    if .grad is None, else a dict: grad_type, data_type, leaf_shape, leaf_dtype and, when .grad.data is an
    ndarray, shape, dtype, writeable, c_contiguous, owns_data (base is None) and shares_memory_with (labels
    of the other leaves' .grad and .data, and of `others`, whose memory it overlaps).
    """
    buffers = []
    for i, leaf in enumerate(leaves):
        grad = getattr(leaf.grad, "data", None)
        if isinstance(grad, np.ndarray):
            buffers.append((("grad", i), f"the .grad of leaf {i}", grad))
        buffers.append((("data", i), f"the .data of leaf {i}", leaf.data))
    for label, tensor in others:
        buffers.append((("other", label), f"{label}'s .data", tensor.data))
    report = []
    for i, leaf in enumerate(leaves):
        if leaf.grad is None:
            report.append(None)
            continue
        array = getattr(leaf.grad, "data", None)
        entry = {"grad_type": type(leaf.grad).__name__, "data_type": type(array).__name__,
                 "leaf_shape": tuple(leaf.shape), "leaf_dtype": str(leaf.dtype)}
        if isinstance(array, np.ndarray):
            entry.update(shape=tuple(array.shape), dtype=str(array.dtype), writeable=bool(array.flags.writeable),
                         c_contiguous=bool(array.flags.c_contiguous), owns_data=array.base is None,
                         shares_memory_with=[label for key, label, other in buffers
                                             if key != ("grad", i) and np.shares_memory(array, other)])
        report.append(entry)
    return report


def linear_gradient_layouts(x, weight, bias):
    """For linear(x, weight, bias) summed and backpropagated: {name: (C-contiguous, writeable,
    dtype name, values unchanged)} of each input's .grad, read where the arrays live."""
    import numpy as np

    from tinytorch.layers import linear
    from tinytorch.tensor import Tensor

    tensors = {name: Tensor(np.array(a), requires_grad=True) for name, a in
               (("x", x), ("weight", weight), ("bias", bias))}
    before = {name: t.data.copy() for name, t in tensors.items()}
    linear(tensors["x"], tensors["weight"], tensors["bias"]).sum().backward()
    result = {}
    for name, t in tensors.items():
        g = t.grad.data
        result[name] = (bool(g.flags.c_contiguous), bool(g.flags.writeable), g.dtype.name,
                        bool(np.array_equal(t.data, before[name])))
    return result
