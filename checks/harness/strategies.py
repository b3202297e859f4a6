"""Hypothesis strategies for tensors: shapes, arrays (contiguous or not), broadcasting, axes.

Values are bounded (|x| <= 10 by default) so that tolerances in tolerances.py
hold for every op; strategies that need a safe domain (log, division) say so.
Arrays come in three memory layouts because a framework that only works on
contiguous arrays is a bug waiting for a transpose: contiguous, a transposed
view, and a strided slice.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = (np.float32, np.float64)


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5) -> st.SearchStrategy:
    """Tensor shapes, e.g. (), (3,), (2, 1, 4)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def _elements(dtype, low: float, high: float, exclude_near_zero: float = 0.0) -> st.SearchStrategy:
    width = 32 if np.dtype(dtype) == np.float32 else 64
    if width == 32:  # bounds must be exactly representable in float32
        low, high = float(np.float32(low)), float(np.float32(high))
    values = st.floats(low, high, width=width, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if exclude_near_zero:
        values = values.filter(lambda v: abs(v) >= exclude_near_zero)
    return values


@st.composite
def arrays(
    draw,
    shape=None,
    dtype=np.float32,
    low: float = -10.0,
    high: float = 10.0,
    exclude_near_zero: float = 0.0,
    layouts: tuple[str, ...] = ("contiguous", "transposed", "strided"),
) -> np.ndarray:
    """A float array of `shape` (a tuple, a strategy, or None for any shape) in [low, high], in one of several memory layouts."""
    if shape is None:
        shape = shapes()
    shape = tuple(draw(shape) if isinstance(shape, st.SearchStrategy) else shape)
    if isinstance(dtype, st.SearchStrategy):
        dtype = draw(dtype)
    elements = _elements(dtype, low, high, exclude_near_zero)
    layout = draw(st.sampled_from(layouts)) if len(shape) >= 1 else "contiguous"
    if layout == "transposed" and len(shape) >= 2:
        base = draw(hnp.arrays(dtype, tuple(reversed(shape)), elements=elements))
        return base.T
    if layout == "strided":
        padded = shape[:-1] + (2 * shape[-1],)
        base = draw(hnp.arrays(dtype, padded, elements=elements))
        return base[..., ::2]
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def broadcastable_arrays(draw, count: int = 2, dtype=np.float32, max_dims: int = 4, **bounds) -> tuple[np.ndarray, ...]:
    """`count` arrays whose shapes broadcast together (some dimensions are 1 or missing)."""
    drawn = draw(hnp.mutually_broadcastable_shapes(num_shapes=count, max_dims=max_dims, max_side=5))
    if isinstance(dtype, st.SearchStrategy):  # one dtype for all of them: mixed-dtype promotion is its own check
        dtype = draw(dtype)
    return tuple(draw(arrays(shape, dtype=dtype, **bounds)) for shape in drawn.input_shapes)


@st.composite
def matmul_arrays(draw, dtype=np.float32, max_batch_dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A pair (a, b) valid for a @ b: 1-D, 2-D and batched with broadcast batch dimensions."""
    m, n, p = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["vec-vec", "mat-vec", "vec-mat", "mat-mat", "batched"]))
    if kind == "vec-vec":
        a_shape, b_shape = (n,), (n,)
    elif kind == "mat-vec":
        a_shape, b_shape = (m, n), (n,)
    elif kind == "vec-mat":
        a_shape, b_shape = (n,), (n, p)
    elif kind == "mat-mat":
        a_shape, b_shape = (m, n), (n, p)
    else:
        batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=max_batch_dims, max_side=3))
        a_batch, b_batch = batch.input_shapes
        a_shape, b_shape = a_batch + (m, n), b_batch + (n, p)
    return draw(arrays(a_shape, dtype=dtype)), draw(arrays(b_shape, dtype=dtype))


@st.composite
def axes(draw, ndim: int, allow_none: bool = True, allow_tuple: bool = True):
    """A reduction axis for an `ndim`-D tensor: None, an int (maybe negative) or a tuple of ints."""
    choices = ["int"] if ndim else []
    if allow_none or not ndim:
        choices.append("none")
    if allow_tuple and ndim >= 2:
        choices.append("tuple")
    kind = draw(st.sampled_from(choices))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    picked = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(picked)


float_dtypes = st.sampled_from(FLOAT_DTYPES)


@st.composite
def with_extreme_slices(draw, array_strategy: st.SearchStrategy, offsets=(-1000.0, 1000.0)) -> np.ndarray:
    """An array from `array_strategy` with SOME (never all) slices along one axis moved far away.

    A softmax shifted by the global maximum instead of each row's, or a loss that is stable only
    when every sample sits at one scale, passes while all values are moderate and turns into 0/0
    when one row is 1000 below another. Shifting whole slices (not single elements) keeps each
    slice's internal spread, so the exact answer stays well conditioned in float32.
    Arrays with no axis of length >= 2 come back unchanged.
    """
    array = draw(array_strategy)
    candidates = [axis for axis, size in enumerate(array.shape) if size >= 2]
    if not candidates:
        return array
    axis = draw(st.sampled_from(candidates))
    size = array.shape[axis]
    moved = draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=size - 1, unique=True))
    shift = np.zeros(size, dtype=array.dtype)
    for index in moved:
        shift[index] = draw(st.sampled_from(offsets))
    return array + shift.reshape((size,) + (1,) * (array.ndim - axis - 1))


def index_tensor(like, values) -> object:
    """`values` as an integer index tensor of the framework `like` belongs to (torch or tinytorch).

    Lets one indexing lambda put a Tensor index (alone or inside a tuple) on both sides of a parity check.
    """
    array = np.asarray(values, dtype=np.int64)
    if type(like).__module__.startswith("torch"):
        import torch

        return torch.from_numpy(array)
    from tinytorch.tensor import Tensor

    return Tensor(array)


# Indexing patterns, each a lambda that runs on tinytorch and on PyTorch, for arrays
# drawn by `indexable_arrays` (first dimension 3, at least 2-D). Repeated indices matter
# for gradients: their contributions must accumulate, whether the index is a numpy array,
# a list or a Tensor, alone or inside a tuple, in the first position or a later one.
INDEX_CASES = {
    "int": lambda x: x[1],
    "negative": lambda x: x[-1],
    "slice": lambda x: x[1:],
    "step": lambda x: x[::2],
    "2d": lambda x: x[1, 0:2],
    "newaxis-ellipsis": lambda x: x[None, ..., 0],
    "int-array-repeats": lambda x: x[np.array([0, 2, 0, 0])],
    "2d-int-array": lambda x: x[np.array([[0, 1], [1, 1]])],
    "bool-mask": lambda x: x[np.array([True, False, True])],
    "pair-arrays-repeats": lambda x: x[np.array([0, 1, 0]), np.array([2, 0, 2])],
    "array-and-slice": lambda x: x[np.array([2, 2]), 1:],
    "list-in-tuple-repeats": lambda x: x[1:, [0, 2, 2, 0]],
    "tensor-index-repeats": lambda x: x[index_tensor(x, [2, 0, 2])],
    "tensor-in-tuple-repeats": lambda x: x[index_tensor(x, [0, 2, 0, 0]), 1:],
    "tensor-pair-repeats": lambda x: x[index_tensor(x, [1, 1, 0]), index_tensor(x, [2, 2, -1])],
    "slice-then-tensor": lambda x: x[::2, index_tensor(x, [[1, 1], [0, 1]])],
}


def indexable_arrays(dtype=np.float32) -> st.SearchStrategy:
    """Arrays of shape (3, d1[, d2]) with every d >= 3, valid for every case of INDEX_CASES."""
    return arrays(shapes(min_dims=2, max_dims=3, min_side=3, max_side=4).map(lambda s: (3,) + s[1:]), dtype=dtype)


@st.composite
def linear_inputs(draw, dtype=None):
    """(x, weight, bias or None) for y = x @ weight.T + bias: x of 1 to 4 dims, sizes 1..6, any memory layout."""
    dtype = draw(st.sampled_from(FLOAT_DTYPES)) if dtype is None else dtype
    in_features, out_features = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    batch = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3)))
    x = draw(arrays(batch + (in_features,), dtype=dtype, low=-3, high=3))
    weight = draw(arrays((out_features, in_features), dtype=dtype, low=-3, high=3))
    bias = draw(st.one_of(st.none(), arrays((out_features,), dtype=dtype, low=-3, high=3)))
    return x, weight, bias


@st.composite
def reduction_case(draw, dtype=np.float32):
    """(array, axis, keepdims) for sum/mean/max: any axis form valid for the array's ndim.
    `dtype` may be a strategy such as `float_dtypes`."""
    array = draw(arrays(shapes(max_dims=4), dtype=dtype))
    return array, draw(axes(array.ndim)), draw(st.booleans())


@st.composite
def same_shape_pair(draw, low=-10.0, high=10.0, target_low=-10.0, target_high=10.0, extreme_slices=False):
    """(input, target) float arrays of one drawn shape and dtype, e.g. for elementwise losses.
    extreme_slices: some slices of the input sit +-1000 away (see `with_extreme_slices`)."""
    dtype = draw(float_dtypes)
    shape = draw(shapes(max_dims=3))
    inputs = arrays(shape, dtype=dtype, low=low, high=high)
    return (draw(with_extreme_slices(inputs) if extreme_slices else inputs),
            draw(arrays(shape, dtype=dtype, low=target_low, high=target_high)))


@st.composite
def classification_case(draw, ignore: str = "some", ignore_index: int = -100, extreme_slices: bool = False):
    """Logits (C,), (N, C) or (N, C, d1[, d2]) with int64 class targets of the matching shape.

    ignore: "some" marks a random ~30% of batched targets `ignore_index` (possibly all of
    them), "one" marks exactly one sample's targets (the rest keep a defined gradient).
    extreme_slices: some slices of the logits sit +-1000 away (see `with_extreme_slices`).
    """
    dtype = draw(float_dtypes)
    classes = draw(st.integers(1, 6))
    layout = draw(st.sampled_from(["unbatched", "batched", "spatial"]))
    n = draw(st.integers(1, 5))
    extra = draw(shapes(min_dims=1, max_dims=2, max_side=3)) if layout == "spatial" else ()
    shape = (classes,) if layout == "unbatched" else (n, classes) + tuple(extra)
    target_shape = () if layout == "unbatched" else (n,) + tuple(extra)
    logits = draw(with_extreme_slices(arrays(shape, dtype=dtype)) if extreme_slices else arrays(shape, dtype=dtype))
    target = np.asarray(np.floor(draw(arrays(target_shape, dtype=np.float64, low=0, high=classes - 1e-9))))
    target = target.astype(np.int64)
    if target.ndim and draw(st.booleans()):
        if ignore == "one":
            target[draw(st.integers(0, target.shape[0] - 1))] = ignore_index
        else:
            mask = draw(arrays(target_shape, dtype=np.float64, low=0, high=1)) < 0.3
            target = np.where(mask, ignore_index, target)
    return logits, target
