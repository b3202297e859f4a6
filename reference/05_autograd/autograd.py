"""Module 05 - Autograd: reverse-mode automatic differentiation.

Every op of modules 01, 02 and 04 recorded a `Node(op, inputs, saved)` on the
tensor it produced (``Tensor.from_op``). This module runs that graph backwards.

The hook (explicit, documented in module 01): importing this module calls

    tinytorch.tensor.set_backward_engine(backward)

so that ``Tensor.backward(gradient=None, retain_graph=False)`` runs
``backward(root, gradient, retain_graph)`` below. Nothing is patched.

Public API
    backward(root, gradient, retain_graph)  the engine (you normally call root.backward())
    BACKWARD_RULES        {op name: rule}; a rule maps the upstream gradient to one
                          gradient per input: rule(grad, out, inputs, saved) -> tuple
                          (numpy arrays or None). The engine un-broadcasts them.
    register_backward(op) decorator adding a rule (later modules use it for their own ops)
    SAVES_TENSORS         ops whose rule reads tensor values (freed after backward)
    no_grad(), enable_grad()   context managers and decorators that flip grad mode
    zero_grad(params)     set every parameter's .grad to None (or zeros)

Semantics (as in PyTorch)
* Only leaves that require grad receive ``.grad`` (a Tensor of their shape and dtype);
  gradients ACCUMULATE across backward() calls until zeroed.
* ``backward()`` without `gradient` needs a one-element output ("grad can be implicitly
  created only for scalar outputs"); a root that does not require grad is an error.
* Without ``retain_graph=True`` a backward pass frees the values the graph saved for it:
  going backward again through an op in SAVES_TENSORS raises RuntimeError. Ops that
  save nothing (add, sub, neg, sum, mean, reshape, permute, basic slicing) can be
  traversed again, exactly as in PyTorch. "Freeing" is modelled by replacing
  ``node.saved`` with a `ReleasedSaved` copy (the settings stay readable).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Iterable

import numpy as np

from tinytorch import tensor as _tensor
from tinytorch.activations import erf
from tinytorch.tensor import Node, Tensor

Rule = Callable[[np.ndarray, Tensor, tuple, dict], tuple]

BACKWARD_RULES: dict[str, Rule] = {}

# Ops whose backward reads saved tensor values (PyTorch frees those after backward()).
SAVES_TENSORS = {
    "mul", "div", "pow", "matmul", "max", "exp", "log", "linear",
    "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax",
    "mse_loss", "cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits",
}

SECOND_BACKWARD_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they"
    " have already been freed). Saved intermediate values of the graph are freed when you call"
    " .backward(). Specify retain_graph=True if you need to backward through the graph a second time."
)


class ReleasedSaved(dict):
    """`node.saved` after a backward pass without retain_graph: the settings, values freed."""


def register_backward(op: str) -> Callable[[Rule], Rule]:
    """Decorator: ``@register_backward("conv2d")`` adds a rule to BACKWARD_RULES."""

    def add(rule: Rule) -> Rule:
        BACKWARD_RULES[op] = rule
        return rule

    return add


def is_advanced_index(index: Any) -> bool:
    """Whether a getitem index uses arrays or lists (numpy's advanced indexing: elements may repeat)."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (np.ndarray, list)) for p in parts)


def _saves_tensors(node: Node) -> bool:
    """Whether the node's rule reads tensor values (advanced indexing saves its index arrays)."""
    if node.op == "getitem":
        return is_advanced_index(node.saved["index"])
    return node.op in SAVES_TENSORS


# ----------------------------------------------------------------------------
# Helpers the rules share: unbroadcast is yours; _expand and _reduced_count are given
# ----------------------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` down to `shape`, undoing numpy broadcasting (extra leading dims, size-1 dims).

    (4, 2, 3) -> (2, 3): sum axis 0.   (2, 3) -> (2, 1): sum axis 1 keeping it.   (2, 3) -> (): sum all.
    """
    # TODO: sum away the leading dimensions grad has beyond len(shape); then, for every
    #       dimension where shape has 1 and grad does not, sum it with keepdims=True.
    # BEGIN SOLUTION
    grad = np.asarray(grad)
    if grad.shape == tuple(shape):  # the common case: nothing to undo, no new array
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    squash = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    if squash:
        grad = grad.sum(axis=squash, keepdims=True)
    return grad.reshape(shape)
    # END SOLUTION


def _expand(grad: np.ndarray, shape: tuple[int, ...], axis: tuple[int, ...] | None, keepdims: bool) -> np.ndarray:
    """Broadcast a reduction's gradient back to the input's shape (re-inserting reduced axes)."""
    if not keepdims and axis is not None:
        grad = np.expand_dims(grad, axis)
    return np.broadcast_to(grad, shape)


def _reduced_count(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> int:
    if axis is None:
        return math.prod(shape)
    return math.prod(shape[a] for a in axis)


# ----------------------------------------------------------------------------
# Rules for module 01's ops. Each returns one gradient per input (before un-broadcasting).
# ----------------------------------------------------------------------------


@register_backward("add")
def _add_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    return grad, grad
    # END SOLUTION


@register_backward("sub")
def _sub_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    return grad, -grad
    # END SOLUTION


@register_backward("neg")
def _neg_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    return (-grad,)
    # END SOLUTION


@register_backward("mul")
def _mul_backward(grad, out, inputs, saved):
    # d(a*b)/da = b, d(a*b)/db = a
    # BEGIN SOLUTION
    a, b = inputs
    return grad * b.data, grad * a.data
    # END SOLUTION


@register_backward("div")
def _div_backward(grad, out, inputs, saved):
    # d(a/b)/da = 1/b, d(a/b)/db = -a/b**2
    # BEGIN SOLUTION
    a, b = inputs
    return grad / b.data, -grad * a.data / (b.data * b.data)
    # END SOLUTION


@register_backward("pow")
def _pow_backward(grad, out, inputs, saved):
    # base: b * a**(b-1) (0 where b == 0, as PyTorch); exponent: a**b * log(a) (0 where a == 0 and b >= 0).
    # Only compute the exponent's gradient if it requires grad (log of a negative base is nan).
    # BEGIN SOLUTION
    a, b = inputs
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        grad_a = np.where(b.data == 0, 0.0, grad * b.data * np.power(a.data, b.data - 1))
        grad_b = None
        if b.requires_grad:
            grad_b = np.where((a.data == 0) & (b.data >= 0), 0.0, grad * out.data * np.log(a.data))
    return grad_a, grad_b
    # END SOLUTION


@register_backward("matmul")
def _matmul_backward(grad, out, inputs, saved):
    # For 2-D and batched: dA = G @ B^T, dB = A^T @ G (batch dims un-broadcast by the engine).
    # 1-D operands were promoted: A (n,) -> (1, n), B (n,) -> (n, 1); promote G the same way
    # and squeeze the promoted axis from the result.
    # BEGIN SOLUTION
    a, b = inputs
    a2 = a.data[None, :] if a.ndim == 1 else a.data
    b2 = b.data[:, None] if b.ndim == 1 else b.data
    g = grad[..., None] if b.ndim == 1 else grad
    g = g[..., None, :] if a.ndim == 1 else g
    grad_a = grad_b = None
    if a.requires_grad:
        grad_a = np.matmul(g, np.swapaxes(b2, -1, -2))
        if a.ndim == 1:
            grad_a = np.squeeze(grad_a, -2)
    if b.requires_grad:
        grad_b = np.matmul(np.swapaxes(a2, -1, -2), g)
        if b.ndim == 1:
            grad_b = np.squeeze(grad_b, -1)
    return grad_a, grad_b
    # END SOLUTION


@register_backward("sum")
def _sum_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    return (_expand(grad, inputs[0].shape, saved["axis"], saved["keepdims"]),)
    # END SOLUTION


@register_backward("mean")
def _mean_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    (x,) = inputs
    count = _reduced_count(x.shape, saved["axis"])
    return (_expand(grad / count, x.shape, saved["axis"], saved["keepdims"]),)
    # END SOLUTION


@register_backward("max")
def _max_backward(grad, out, inputs, saved):
    # Like torch.amax: the gradient goes to every element equal to the max, split evenly among ties.
    # BEGIN SOLUTION
    (x,) = inputs
    axis, keepdims = saved["axis"], saved["keepdims"]
    mask = (x.data == _expand(out.data, x.shape, axis, keepdims)).astype(x.dtype)
    ties = np.sum(mask, axis=axis, keepdims=True)
    return (_expand(grad, x.shape, axis, keepdims) * mask / ties,)
    # END SOLUTION


@register_backward("reshape")
def _reshape_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    return (np.reshape(grad, inputs[0].shape),)
    # END SOLUTION


@register_backward("permute")
def _permute_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    return (np.transpose(grad, np.argsort(saved["dims"])),)
    # END SOLUTION


@register_backward("getitem")
def _getitem_backward(grad, out, inputs, saved):
    # Scatter grad into zeros of the input's shape. Advanced indices may repeat an element:
    # np.add.at accumulates repeats (z[index] += grad would keep only one of them).
    # BEGIN SOLUTION
    (x,) = inputs
    index = saved["index"]
    result = np.zeros(x.shape, dtype=np.result_type(x.dtype, grad.dtype))
    if is_advanced_index(index):
        np.add.at(result, index, grad)
    else:
        result[index] += grad
    return (result,)
    # END SOLUTION


@register_backward("exp")
def _exp_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    return (grad * out.data,)
    # END SOLUTION


@register_backward("log")
def _log_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    with np.errstate(divide="ignore", invalid="ignore"):
        return (grad / inputs[0].data,)
    # END SOLUTION


# ----------------------------------------------------------------------------
# Rule for module 03's linear op: y = x @ W.T + b, one node per layer
# ----------------------------------------------------------------------------


@register_backward("linear")
def _linear_backward(grad, out, inputs, saved):
    # y = x @ W.T + b with x (..., in) flattened to N rows. Written as G.T @ X, the weight's gradient
    # comes out of the GEMM already C-contiguous in W's (out, in) layout; matmul's rule on x @ W.T
    # gives (X.T @ G).T, a transposed view that the engine has to copy into C order.
    # TODO: 1. inputs are (x, W) or (x, W, b). N = math.prod(x.shape[:-1]) (not -1: x may be empty);
    #          G = grad.reshape(N, out_features); X = x.data.reshape(N, in_features).
    # TODO: 2. Only for inputs that require grad (None for the others):
    #          dx = (G @ W.data).reshape(x.shape);  dW = G.T @ X;  db = G.sum(axis=0).
    # TODO: 3. Return one gradient per input: (dx, dW) or (dx, dW, db).
    # BEGIN SOLUTION
    x, weight = inputs[0], inputs[1]
    out_features, in_features = weight.shape
    rows = math.prod(x.shape[:-1])  # not -1: a reshape cannot infer it when x has no elements
    g = grad.reshape(rows, out_features)
    grad_x = grad_w = grad_b = None
    if x.requires_grad:
        grad_x = np.matmul(g, weight.data).reshape(x.shape)
    if weight.requires_grad:
        grad_w = np.matmul(g.T, x.data.reshape(rows, in_features))
    if len(inputs) == 2:
        return grad_x, grad_w
    if inputs[2].requires_grad:
        grad_b = g.sum(axis=0)
    return grad_x, grad_w, grad_b
    # END SOLUTION


# ----------------------------------------------------------------------------
# Rules for module 02's activations: use the saved output where it is cheaper and stabler.
# ----------------------------------------------------------------------------


@register_backward("relu")
def _relu_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    return (grad * (out.data > 0),)
    # END SOLUTION


@register_backward("leaky_relu")
def _leaky_relu_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    x = inputs[0].data
    return (np.where(x > 0, grad, grad * saved["negative_slope"]),)
    # END SOLUTION


@register_backward("sigmoid")
def _sigmoid_backward(grad, out, inputs, saved):
    # d sigmoid = s * (1 - s), from the output s: no exp needed.
    # BEGIN SOLUTION
    s = out.data
    return (grad * s * (1 - s),)
    # END SOLUTION


@register_backward("tanh")
def _tanh_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    t = out.data
    return (grad * (1 - t * t),)
    # END SOLUTION


@register_backward("gelu")
def _gelu_backward(grad, out, inputs, saved):
    # "none": Phi(x) + x * phi(x) with phi the standard normal density.
    # "tanh": differentiate 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
    # BEGIN SOLUTION
    x = inputs[0].data.astype(np.float64)
    with np.errstate(under="ignore", over="ignore"):
        if saved["approximate"] == "none":
            cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
            pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
            local = cdf + x * pdf
        else:
            k = math.sqrt(2.0 / math.pi)
            t = np.tanh(k * (x + 0.044715 * x**3))
            local = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3 * 0.044715 * x * x)
    return ((grad * local).astype(grad.dtype),)
    # END SOLUTION


@register_backward("softmax")
def _softmax_backward(grad, out, inputs, saved):
    # Jacobian-vector product without the Jacobian: s * (g - sum(g * s, dim)).
    # BEGIN SOLUTION
    s = out.data
    return (s * (grad - np.sum(grad * s, axis=saved["dim"], keepdims=True)),)
    # END SOLUTION


@register_backward("log_softmax")
def _log_softmax_backward(grad, out, inputs, saved):
    # g - softmax * sum(g, dim), with softmax = exp(out).
    # BEGIN SOLUTION
    with np.errstate(under="ignore"):
        return (grad - np.exp(out.data) * np.sum(grad, axis=saved["dim"], keepdims=True),)
    # END SOLUTION


# ----------------------------------------------------------------------------
# Rules for module 04's losses
# ----------------------------------------------------------------------------


def _loss_upstream(grad: np.ndarray, shape: tuple[int, ...], reduction: str, count: int) -> np.ndarray:
    """The upstream gradient of each per-element loss: g ("none"), g ("sum"), g / count ("mean").

    count 0 (every target ignored) happens only where every local gradient is 0 anyway: divide by 1.
    """
    if reduction == "mean":
        grad = grad / max(count, 1)
    return np.broadcast_to(grad, shape)


@register_backward("mse_loss")
def _mse_loss_backward(grad, out, inputs, saved):
    # BEGIN SOLUTION
    x, t = inputs
    g = _loss_upstream(grad, x.shape, saved["reduction"], x.data.size)
    d = 2.0 * (x.data - t.data) * g
    return d, -d
    # END SOLUTION


@register_backward("cross_entropy")
def _cross_entropy_backward(grad, out, inputs, saved):
    # d loss_i / d logits_i = softmax_i - q_i, with q_i the target distribution (1 - eps) * onehot(y_i) + eps / C;
    # 0 for ignored targets. One fresh array (the softmax) updated in place: no put_along_axis scatter, no copies.
    # BEGIN SOLUTION
    x, target = inputs
    class_dim = 1 if x.ndim >= 2 else 0
    classes = x.shape[class_dim]
    per_slice = x.shape[:class_dim] + (1,) + x.shape[class_dim + 1:]  # one entry per slice, broadcasts over classes
    labels = target.data.reshape(per_slice)
    keep = labels != saved["ignore_index"]
    eps = saved["label_smoothing"]
    with np.errstate(under="ignore"):
        local = np.exp(x.data - x.data.max(axis=class_dim, keepdims=True))
    local /= local.sum(axis=class_dim, keepdims=True)  # softmax, each slice shifted by its own max
    onehot = labels == np.arange(classes).reshape((classes,) + (1,) * (x.ndim - class_dim - 1))
    local -= onehot if not eps else (1.0 - eps) * onehot + eps / classes
    # each slice's upstream gradient: g ("none"), g ("sum"), g / count ("mean"); 0 for ignored targets
    reduction = saved["reduction"]
    if reduction == "none":
        grad = grad.reshape(per_slice)
    elif reduction == "mean":
        grad = grad / max(int(np.count_nonzero(keep)), 1)
    local *= keep * grad
    return local.astype(x.dtype, copy=False), None
    # END SOLUTION


@register_backward("binary_cross_entropy")
def _binary_cross_entropy_backward(grad, out, inputs, saved):
    # input: g * (p - t) / max(p (1 - p), 1e-12) (PyTorch's guard); target: g * (log(1-p) - log(p)), logs clamped at -100.
    # BEGIN SOLUTION
    p, t = inputs
    g = _loss_upstream(grad, p.shape, saved["reduction"], p.data.size)
    grad_p = g * (p.data - t.data) / np.maximum(p.data * (1 - p.data), 1e-12)
    grad_t = None
    if t.requires_grad:
        with np.errstate(divide="ignore"):
            grad_t = g * (np.maximum(np.log1p(-p.data), -100) - np.maximum(np.log(p.data), -100))
    return grad_p, grad_t
    # END SOLUTION


@register_backward("binary_cross_entropy_with_logits")
def _bce_with_logits_backward(grad, out, inputs, saved):
    # input: g * (sigmoid(x) - t); target: -g * x.
    # BEGIN SOLUTION
    x, t = inputs
    g = _loss_upstream(grad, x.shape, saved["reduction"], x.data.size)
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(x.data))
    s = np.where(x.data >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return g * (s - t.data), -g * x.data
    # END SOLUTION


# ----------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------


def _topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that requires grad and that root depends on, each after all it depends on.

    Iterative depth-first search (a recursive one hits Python's recursion limit on deep graphs).
    """
    # TODO: keep a stack of (tensor, inputs_done). Pop; if inputs_done, append the tensor to
    #       the order; else (if not yet visited) mark visited, push (tensor, True) and then
    #       (input, False) for each input that requires grad. Key visited on id(tensor).
    # BEGIN SOLUTION
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        if t.grad_fn is not None:
            for parent in t.grad_fn.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order
    # END SOLUTION


def backward(root: Tensor, gradient: Tensor | None = None, retain_graph: bool = False) -> None:
    """The engine behind ``Tensor.backward``: accumulate d(root)/d(leaf) into each leaf's .grad.

    root:         the tensor backward() was called on.
    gradient:     d(something)/d(root), root's shape; None means 1 (only for one-element roots).
    retain_graph: keep saved values so the graph can be traversed again.
    Errors (RuntimeError, PyTorch's wording): root does not require grad; implicit gradient for a
    non-scalar root; gradient shape mismatch; a freed graph traversed again; an op without a rule.
    """
    # TODO: 1. Validate root and gradient with PyTorch's RuntimeError messages: "element 0 of tensors
    #          does not require grad and does not have a grad_fn"; "grad can be implicitly created
    #          only for scalar outputs"; a gradient of the wrong shape names both shapes, e.g.
    #          "Mismatch in shape: gradient has a shape of (2,) and output has a shape of (3,)".
    #          Seed grads = {id(root): gradient array in root's dtype}.
    # TODO: 2. Walk _topological_order(root) in reverse. For a non-leaf: look up the rule, refuse
    #          a released node whose op saves tensors (RuntimeError(SECOND_BACKWARD_MESSAGE)), an op with no rule
    #          (RuntimeError naming the op with repr(), e.g. "no backward rule for op 'kata_cube'"),
    #          call the rule (a rule that returns anything
    #          but a tuple/list of one gradient per input is a TypeError naming the op, e.g.
    #          "rule for 'mul' returned ndarray, expected a tuple of one gradient per input (2)"),
    #          un-broadcast each input's gradient to the input's shape and dtype, add it into grads; release node.saved
    #          (ReleasedSaved) unless retain_graph. For a leaf: accumulate into .grad as a fresh
    #          C-ordered array (np.array(..., order="C")): optimizers stream through it in order.
    # BEGIN SOLUTION
    if not root.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    if gradient is None:
        if root.numel() != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        seed = np.ones(root.shape, dtype=root.dtype)
    else:
        seed = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient)
        if seed.shape != root.shape:
            raise RuntimeError(f"Mismatch in shape: gradient has a shape of {seed.shape} and output has a"
                               f" shape of {root.shape}")
        seed = seed.astype(root.dtype)  # a copy: no .grad may share memory with the caller's array
    grads: dict[int, np.ndarray] = {id(root): seed}
    stored: set[int] = set()  # ids of the arrays this pass stored as some leaf's .grad
    for t in reversed(_topological_order(root)):
        grad = grads.pop(id(t), None)
        if grad is None:
            continue
        node = t.grad_fn
        if node is None:
            accumulated = grad if t.grad is None else t.grad.data + grad
            # .grad must be a fresh C-ordered array: never a view of another tensor, and laid out like
            # the parameter, so optimizers stream through both in order (a transposed grad is ~2x slower).
            # An array a rule has just computed (it owns its memory, is writeable, C-ordered, in the
            # leaf's dtype) and that no other leaf got in this pass already is one: keep it, no copy.
            # Anything else (a view, a broadcast, the array `add` also passed to another leaf) is copied.
            if not (accumulated.base is None and accumulated.flags.writeable and accumulated.flags.c_contiguous
                    and accumulated.dtype == t.dtype and id(accumulated) not in stored):
                accumulated = np.array(accumulated, dtype=t.dtype, order="C")
            stored.add(id(accumulated))
            t.grad = Tensor(accumulated)
            continue
        rule = BACKWARD_RULES.get(node.op)
        if rule is None:
            raise RuntimeError(f"no backward rule for op {node.op!r}: add one with"
                               " tinytorch.autograd.register_backward")
        if isinstance(node.saved, ReleasedSaved) and _saves_tensors(node):
            raise RuntimeError(SECOND_BACKWARD_MESSAGE)
        input_grads = rule(grad, t, node.inputs, node.saved)
        if not isinstance(input_grads, (tuple, list)) or len(input_grads) != len(node.inputs):
            got = (f"{len(input_grads)} gradients" if isinstance(input_grads, (tuple, list))
                   else type(input_grads).__name__)
            raise TypeError(f"rule for {node.op!r} returned {got}, expected a tuple of one gradient per input"
                            f" ({len(node.inputs)})")
        for parent, g in zip(node.inputs, input_grads):
            if g is None or not parent.requires_grad:
                continue
            g = unbroadcast(g, parent.shape).astype(parent.dtype, copy=False)
            grads[id(parent)] = grads[id(parent)] + g if id(parent) in grads else g
        if not retain_graph:
            node.saved = ReleasedSaved(node.saved)
    # END SOLUTION


_tensor.set_backward_engine(backward)


# ----------------------------------------------------------------------------
# Grad mode
# ----------------------------------------------------------------------------


class _GradMode:
    """Set grad mode to `self.mode` inside a `with` block or a decorated function; restore after."""

    mode = True

    def __init__(self):
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        # TODO: push set_grad_enabled(self.mode)'s return value (the previous mode).
        # BEGIN SOLUTION
        self._previous.append(_tensor.set_grad_enabled(self.mode))
        # END SOLUTION

    def __exit__(self, *exc_info: Any) -> bool:
        # TODO: pop and restore the previous mode (also when an exception is propagating).
        # BEGIN SOLUTION
        _tensor.set_grad_enabled(self._previous.pop())
        return False
        # END SOLUTION

    def __call__(self, fn: Callable) -> Callable:
        """Use as a decorator: @no_grad() def evaluate(...): ..."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Ops inside record no graph (evaluation, optimizer updates). Nests; restores on exceptions."""

    mode = False


class enable_grad(_GradMode):
    """Turn recording back on inside a no_grad region."""

    mode = True


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph."""
    return _tensor.is_grad_enabled()


def zero_grad(params: Iterable[Tensor], set_to_none: bool = True) -> None:
    """Forget accumulated gradients: .grad = None (default, like PyTorch) or zeros of the right shape."""
    # BEGIN SOLUTION
    for p in params:
        if set_to_none:
            p.grad = None
        elif p.grad is not None:
            p.grad = Tensor(np.zeros(p.shape, dtype=p.dtype))
    # END SOLUTION
