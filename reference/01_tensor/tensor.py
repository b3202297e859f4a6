"""Module 01 - Tensor: an n-dimensional array that remembers how it was made.

A `Tensor` wraps a numpy array (`.data`) and adds the two things deep learning
needs on top of numpy: a dtype policy (float32 unless told otherwise) and a
record of the computation graph, so that module 05 can run it backwards.

Names and semantics follow PyTorch wherever PyTorch has the same thing, so a
single lambda such as `lambda a, b: (a @ b).sum(dim=0)` runs on both frameworks.

Hooks that later modules use (documented here, never patched from outside):

* ``Tensor.from_op(data, op, inputs, **saved)`` - every differentiable op builds
  its result through this: it records a `Node` (op name, input tensors, saved
  non-tensor arguments) when gradients are enabled and some input requires them.
  Modules 02 and 04 record their own ops through it too.
* ``set_backward_engine(engine)`` - module 05 registers the function that
  `Tensor.backward()` calls: ``engine(root, gradient, retain_graph)``.
* ``is_grad_enabled()`` / ``set_grad_enabled(mode)`` - the switch that module
  05's ``no_grad()`` flips.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

DEFAULT_DTYPE = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
SUPPORTED_DTYPES = FLOAT_DTYPES + tuple(np.dtype(t) for t in (np.int32, np.int64, np.uint8, np.bool_))

# ----------------------------------------------------------------------------
# Hooks for later modules
# ----------------------------------------------------------------------------

_grad_enabled = True
_backward_engine: Callable[["Tensor", "Tensor | None", bool], None] | None = None


def is_grad_enabled() -> bool:
    """True when new ops record the graph (module 05's `no_grad()` turns it off)."""
    return _grad_enabled


def set_grad_enabled(mode: bool) -> bool:
    """Turn graph recording on or off; returns the previous mode so callers can restore it."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, bool(mode)
    return previous


def set_backward_engine(engine: Callable[["Tensor", "Tensor | None", bool], None] | None) -> None:
    """Register the reverse-mode engine that `Tensor.backward` delegates to (module 05)."""
    global _backward_engine
    _backward_engine = engine


class Node:
    """One recorded op: the graph edge from `inputs` to the tensor whose `grad_fn` it is.

    op:     the op's name, e.g. "add", "matmul", "sum"; module 05 keys its backward rules on it.
    inputs: the Tensor operands, in call order (constants are wrapped as Tensors too).
    saved:  non-tensor arguments the backward rule needs, e.g. {"axis": 0, "keepdims": False}.
    """

    __slots__ = ("op", "inputs", "saved")

    def __init__(self, op: str, inputs: tuple["Tensor", ...], saved: dict[str, Any]):
        self.op = op
        self.inputs = inputs
        self.saved = saved

    def __repr__(self) -> str:
        return f"<Node {self.op}>"


# ----------------------------------------------------------------------------
# Construction helpers
# ----------------------------------------------------------------------------


def to_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Turn `data` (Tensor, numpy array, nested lists, Python or numpy scalar) into an ndarray.

    Python data (lists, scalars) becomes float32 unless `dtype` is given; numpy
    arrays keep a supported dtype and are not copied when no conversion is needed.
    Raises TypeError naming the problem for non-numeric data or unsupported dtypes.
    """
    # TODO: 1. A Tensor contributes its .data; a numpy array is used as is.
    # TODO: 2. Anything else goes through np.asarray; ragged lists raise ValueError in numpy:
    #          turn that into a TypeError whose message contains "Tensor" and the Python type
    #          (e.g. "cannot build a Tensor from list: ...").
    # TODO: 3. Reject non-numeric kinds (strings, objects, complex) with a TypeError naming the
    #          numpy dtype and the Python type, e.g. "dtype object (dict)", "dtype <U5 (str)",
    #          "dtype complex128 (list)", "dtype object (NoneType)". Check the whole array's dtype,
    #          not the first element: a bad item may sit anywhere.
    # TODO: 4. Pick the dtype: the requested one, else float32 for Python data, else the array's.
    # TODO: 5. Reject dtypes outside SUPPORTED_DTYPES, listing the supported ones.
    # BEGIN SOLUTION
    if isinstance(data, Tensor):
        data = data.data
    from_python = not isinstance(data, (np.ndarray, np.generic))
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as err:
        raise TypeError(f"cannot build a Tensor from {type(data).__name__}: {err}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"cannot build a Tensor from data of dtype {array.dtype} ({type(data).__name__}):"
            " expected numbers or booleans"
        )
    if dtype is not None:
        target = np.dtype(dtype)
    elif from_python and array.dtype.kind != "b":
        target = DEFAULT_DTYPE
    else:
        target = array.dtype
    if target not in SUPPORTED_DTYPES:
        names = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"unsupported dtype {target}: tinytorch supports {names}")
    return array if array.dtype == target else array.astype(target)
    # END SOLUTION


def _shape_str(shape: Sequence[int]) -> str:
    return str(tuple(int(d) for d in shape))


class Tensor:
    """An n-dimensional array of float32 (default), float64, int32, int64, uint8 or bool.

    data:          np.ndarray holding the values (shared with a numpy array passed in).
    requires_grad: whether backward() should compute `.grad` for this tensor.
    grad:          a Tensor of the same shape and dtype after backward(), else None.
    grad_fn:       the `Node` that produced this tensor, or None for a leaf.
    """

    # Makes numpy defer to Tensor's reflected operators: np.float32(2) * t -> Tensor.
    __array_priority__ = 1000

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = False):
        """Build a tensor from lists, scalars, numpy arrays or another Tensor's data.

        Shapes: any. dtype: float32 for Python data unless `dtype` is given.
        Only floating-point tensors may require gradients (as in PyTorch).
        """
        # TODO: Store to_array(data, dtype) in self.data; set grad and grad_fn to None.
        # TODO: requires_grad on a non-float tensor is a TypeError that names its dtype.
        # BEGIN SOLUTION
        self.data = to_array(data, dtype)
        if requires_grad and self.data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad: Tensor | None = None
        self.grad_fn: Node | None = None
        # END SOLUTION

    # -- the graph hook ------------------------------------------------------

    @classmethod
    def from_op(cls, data: np.ndarray, op: str, inputs: Iterable["Tensor"], **saved: Any) -> "Tensor":
        """Wrap an op's result and, if any input requires grad (and grad mode is on), record it.

        data:   the computed np.ndarray. op: the op's name for module 05's rules.
        inputs: the Tensor operands. saved: extra arguments the backward rule needs.
        """
        # TODO: Build the result Tensor from data (keep its dtype).
        # TODO: If grad mode is on and any input requires grad: the result requires grad
        #       and its grad_fn is Node(op, tuple(inputs), saved).
        # BEGIN SOLUTION
        inputs = tuple(inputs)
        out = cls(data, dtype=np.asarray(data).dtype)
        if _grad_enabled and any(t.requires_grad for t in inputs):
            out.requires_grad = True
            out.grad_fn = Node(op, inputs, saved)
        return out
        # END SOLUTION

    def backward(self, gradient: "Tensor | None" = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (engine supplied by module 05)."""
        if _backward_engine is None:
            raise RuntimeError(
                "Tensor.backward() needs the autograd engine from module 05: `import tinytorch.autograd` first"
            )
        _backward_engine(self, gradient, retain_graph)

    # -- properties ----------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        """The size of each dimension, e.g. (batch, features)."""
        # BEGIN SOLUTION
        return tuple(self.data.shape)
        # END SOLUTION

    @property
    def ndim(self) -> int:
        """The number of dimensions (0 for a scalar)."""
        # BEGIN SOLUTION
        return self.data.ndim
        # END SOLUTION

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the values, e.g. dtype('float32')."""
        # BEGIN SOLUTION
        return self.data.dtype
        # END SOLUTION

    @property
    def nbytes(self) -> int:
        """Bytes held by the values: numel() * itemsize."""
        # BEGIN SOLUTION
        return int(self.data.nbytes)
        # END SOLUTION

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (their .grad is kept by backward)."""
        return self.grad_fn is None

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        """PyTorch's size(): the shape, or the size of one dimension `dim`."""
        # BEGIN SOLUTION
        return self.shape if dim is None else self.shape[dim]
        # END SOLUTION

    def numel(self) -> int:
        """The number of elements: the product of the shape (1 for a scalar)."""
        # BEGIN SOLUTION
        return int(self.data.size)
        # END SOLUTION

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        # BEGIN SOLUTION
        return self.data
        # END SOLUTION

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        # TODO: any other size is a ValueError naming the shape, e.g. "... got shape (2,)".
        # BEGIN SOLUTION
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {_shape_str(self.shape)}")
        return self.data.item()
        # END SOLUTION

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data, cut from the graph (requires_grad=False)."""
        # BEGIN SOLUTION
        return Tensor(self.data, dtype=self.data.dtype)
        # END SOLUTION

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {_shape_str(self.shape)} is ambiguous")
        return bool(self.data.item())

    __hash__ = object.__hash__  # == is elementwise, so hash by identity as PyTorch does

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({body}, dtype={self.data.dtype}{grad})"

    # -- elementwise arithmetic ----------------------------------------------

    def _lift(self, other: Any) -> "Tensor":
        """Wrap a Python/numpy scalar or array so it can meet this tensor in an op.

        A Python number adopts this tensor's dtype when this tensor is floating point,
        so `t * 2.0` stays float32 (PyTorch's rule for Python scalars).
        """
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (bool, int, float)) and self.dtype in FLOAT_DTYPES:
            return Tensor(other, dtype=self.dtype)
        if isinstance(other, (bool, int)):
            return Tensor(other, dtype=np.int64 if not isinstance(other, bool) else np.bool_)
        if isinstance(other, (list, tuple, float)):
            return Tensor(other)
        return Tensor(to_array(other))

    def _elementwise(self, other: Any, op: str, fn: Callable, reverse: bool = False) -> "Tensor":
        """Apply the binary numpy ufunc `fn` with broadcasting and record it as `op`."""
        # TODO: Lift `other`; order the operands (other first when `reverse`).
        # TODO: Check that the shapes broadcast (np.broadcast_shapes); if not raise a ValueError
        #       naming the op and both shapes.
        # TODO: Compute fn(a.data, b.data) and return Tensor.from_op(result, op, (a, b)).
        # BEGIN SOLUTION
        other = self._lift(other)
        a, b = (other, self) if reverse else (self, other)
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(
                f"{op}: shapes {_shape_str(a.shape)} and {_shape_str(b.shape)} cannot be broadcast together"
            ) from None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            result = fn(a.data, b.data)
        if op == "div" and a.dtype not in FLOAT_DTYPES and b.dtype not in FLOAT_DTYPES:
            result = result.astype(DEFAULT_DTYPE)
        return Tensor.from_op(result, op, (a, b))
        # END SOLUTION

    def __add__(self, other: Any) -> "Tensor":
        return self._elementwise(other, "add", np.add)

    def __radd__(self, other: Any) -> "Tensor":
        return self._elementwise(other, "add", np.add, reverse=True)

    def __sub__(self, other: Any) -> "Tensor":
        return self._elementwise(other, "sub", np.subtract)

    def __rsub__(self, other: Any) -> "Tensor":
        return self._elementwise(other, "sub", np.subtract, reverse=True)

    def __mul__(self, other: Any) -> "Tensor":
        return self._elementwise(other, "mul", np.multiply)

    def __rmul__(self, other: Any) -> "Tensor":
        return self._elementwise(other, "mul", np.multiply, reverse=True)

    def __truediv__(self, other: Any) -> "Tensor":
        return self._elementwise(other, "div", np.true_divide)

    def __rtruediv__(self, other: Any) -> "Tensor":
        return self._elementwise(other, "div", np.true_divide, reverse=True)

    def __pow__(self, other: Any) -> "Tensor":
        return self._elementwise(other, "pow", np.power)

    def __rpow__(self, other: Any) -> "Tensor":
        return self._elementwise(other, "pow", np.power, reverse=True)

    def __neg__(self) -> "Tensor":
        """-x, recorded as op "neg"."""
        # BEGIN SOLUTION
        return Tensor.from_op(np.negative(self.data), "neg", (self,))
        # END SOLUTION

    # -- comparisons (bool results, never part of the graph) -----------------

    def _compare(self, other: Any, fn: Callable, symbol: str) -> "Tensor":
        # TODO: Lift `other`, check broadcasting like _elementwise (name `symbol` in the error),
        #       and return a plain bool Tensor: comparisons have no gradient.
        # BEGIN SOLUTION
        other = self._lift(other)
        try:
            np.broadcast_shapes(self.shape, other.shape)
        except ValueError:
            raise ValueError(
                f"{symbol}: shapes {_shape_str(self.shape)} and {_shape_str(other.shape)} cannot be broadcast together"
            ) from None
        return Tensor(fn(self.data, other.data), dtype=np.bool_)
        # END SOLUTION

    def __eq__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return self._compare(other, np.equal, "==")

    def __ne__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return self._compare(other, np.not_equal, "!=")

    def __lt__(self, other: Any) -> "Tensor":
        return self._compare(other, np.less, "<")

    def __le__(self, other: Any) -> "Tensor":
        return self._compare(other, np.less_equal, "<=")

    def __gt__(self, other: Any) -> "Tensor":
        return self._compare(other, np.greater, ">")

    def __ge__(self, other: Any) -> "Tensor":
        return self._compare(other, np.greater_equal, ">=")

    # -- linear algebra ------------------------------------------------------

    def matmul(self, other: Any) -> "Tensor":
        """Matrix product with numpy/PyTorch semantics, batched over leading dimensions.

        (n,) @ (n,) -> ();  (m, n) @ (n,) -> (m,);  (..., m, n) @ (..., n, p) -> (..., m, p),
        with the batch dimensions (...) broadcast. 0-d operands and mismatched inner
        dimensions raise a ValueError that names both shapes.
        """
        # TODO: 1. Lift `other`. Reject 0-d operands: ValueError with "at least 1" (dimension)
        #          and both shapes as "(2, 3) @ ()".
        # TODO: 2. The inner dimensions must agree: a.shape[-1] == b.shape[-2] (or b.shape[0] for 1-D b);
        #          if not, a ValueError with "(2, 3) @ (4, 5)" followed by the two sizes (3 ... 4).
        # TODO: 3. The batch dimensions must broadcast; if not, a ValueError with the word "batch".
        # TODO: 4. Compute np.matmul and record the op as "matmul".
        # BEGIN SOLUTION
        other = self._lift(other)
        a_shape, b_shape = self.shape, other.shape
        pair = f"{_shape_str(a_shape)} @ {_shape_str(b_shape)}"
        if not a_shape or not b_shape:
            raise ValueError(f"matmul: both operands need at least 1 dimension, got {pair}")
        inner_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
        if a_shape[-1] != inner_b:
            raise ValueError(
                f"matmul: shapes {pair} are not aligned: {a_shape[-1]} (last dim of the left)"
                f" != {inner_b} ({'only' if len(b_shape) == 1 else 'second-to-last'} dim of the right)"
            )
        try:
            np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of {pair} cannot be broadcast together") from None
        return Tensor.from_op(np.matmul(self.data, other.data), "matmul", (self, other))
        # END SOLUTION

    def __matmul__(self, other: Any) -> "Tensor":
        return self.matmul(other)

    def __rmatmul__(self, other: Any) -> "Tensor":
        return self._lift(other).matmul(self)

    # -- reductions ----------------------------------------------------------

    def _reduce(self, fn: Callable, op: str, axis, keepdims: bool) -> "Tensor":
        """Reduce over `axis` (None = all, int, or tuple of ints) and record `op`."""
        # TODO: Normalise axis: None stays None; an int or tuple becomes a tuple of
        #       non-negative ints (-1 is the last). Every out-of-range entry of a tuple is an
        #       IndexError with "axis <the value as given>", e.g. "axis -3 is out of range ...".
        # TODO: Compute fn(self.data, axis=..., keepdims=...) as an ndarray and record
        #       `op` with saved axis (the normalised tuple or None) and keepdims.
        # BEGIN SOLUTION
        if axis is not None:
            axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
            for ax in axes:
                if not -max(self.ndim, 1) <= ax < max(self.ndim, 1):
                    raise IndexError(f"{op}: axis {ax} is out of range for a tensor with {self.ndim} dimensions")
            axis = tuple(sorted(int(ax) % max(self.ndim, 1) for ax in axes)) if self.ndim else None
        result = np.asarray(fn(self.data, axis=axis, keepdims=keepdims))
        return Tensor.from_op(result, op, (self,), axis=axis, keepdims=keepdims)
        # END SOLUTION

    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool | None = None) -> "Tensor":
        """Sum over `dim` (PyTorch) a.k.a. `axis` (numpy); all elements when both are None."""
        return self._reduce(np.sum, "sum", dim if axis is None else axis, keepdim if keepdims is None else keepdims)

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool | None = None) -> "Tensor":
        """Arithmetic mean over `dim`/`axis` (float tensors)."""
        return self._reduce(np.mean, "mean", dim if axis is None else axis, keepdim if keepdims is None else keepdims)

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool | None = None) -> "Tensor":
        """Maximum values over `dim`/`axis` (PyTorch's amax: values only; ties share the gradient)."""
        return self._reduce(np.max, "max", dim if axis is None else axis, keepdim if keepdims is None else keepdims)

    amax = max

    # -- shape ---------------------------------------------------------------

    def reshape(self, *shape: int | Sequence[int]) -> "Tensor":
        """Same values in a new shape; one dimension may be -1. reshape(2, 3) or reshape((2, 3))."""
        # TODO: Accept both reshape(2, 3) and reshape((2, 3)).
        # TODO: A shape that does not fit numel() is a ValueError naming both shapes.
        # TODO: Record op "reshape" (the backward rule reshapes back to the input's shape).
        # BEGIN SOLUTION
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            result = self.data.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot view a tensor of shape {_shape_str(self.shape)} ({self.numel()} elements)"
                f" as shape {_shape_str(shape)}"
            ) from None
        return Tensor.from_op(result, "reshape", (self,))
        # END SOLUTION

    view = reshape

    def transpose(self, dim0: int = -2, dim1: int = -1) -> "Tensor":
        """Swap two dimensions (default: the last two). Returns a view-like new tensor."""
        # TODO: Build the permutation that swaps dim0 and dim1 (IndexError with "dim <value>",
        #       e.g. "dim 3 is out of range ...", if either is out of range),
        #       apply np.transpose and record op "permute" with saved `dims`.
        # BEGIN SOLUTION
        dims = list(range(self.ndim))
        for d in (dim0, dim1):
            if not -self.ndim <= d < self.ndim:
                raise IndexError(f"transpose: dim {d} is out of range for a tensor with {self.ndim} dimensions")
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(*dims)
        # END SOLUTION

    def permute(self, *dims: int) -> "Tensor":
        """Reorder all dimensions: permute(2, 0, 1) maps shape (a, b, c) to (c, a, b)."""
        # BEGIN SOLUTION
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of the {self.ndim} dimensions")
        dims = tuple(d % self.ndim for d in dims)
        return Tensor.from_op(np.transpose(self.data, dims), "permute", (self,), dims=dims)
        # END SOLUTION

    @property
    def T(self) -> "Tensor":
        """All dimensions reversed (the matrix transpose for 2-D tensors)."""
        return self.permute(*reversed(range(self.ndim)))

    # -- elementwise math ----------------------------------------------------

    def exp(self) -> "Tensor":
        """e ** x elementwise (overflows to inf, as in PyTorch)."""
        # BEGIN SOLUTION
        with np.errstate(over="ignore"):
            return Tensor.from_op(np.exp(self.data), "exp", (self,))
        # END SOLUTION

    def log(self) -> "Tensor":
        """Natural log elementwise: -inf at 0 and nan below, as in PyTorch."""
        # BEGIN SOLUTION
        with np.errstate(divide="ignore", invalid="ignore"):
            return Tensor.from_op(np.log(self.data), "log", (self,))
        # END SOLUTION

    # -- indexing ------------------------------------------------------------

    def __getitem__(self, index: Any) -> "Tensor":
        """Basic and advanced numpy indexing; Tensor indices are used by their values.

        The index is saved (op "getitem") so module 05 can scatter gradients back.
        """
        # TODO: Replace Tensor indices (alone or inside a tuple) by their .data.
        # TODO: Index self.data; let numpy's IndexError through with its message.
        # TODO: Record op "getitem" with saved `index` (the converted one).
        # BEGIN SOLUTION
        if isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        elif isinstance(index, Tensor):
            index = index.data
        result = np.asarray(self.data[index])
        return Tensor.from_op(result, "getitem", (self,), index=index)
        # END SOLUTION


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Functional constructor, like torch.tensor (but float32 for Python data)."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)
