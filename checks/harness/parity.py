"""PyTorch parity: run one function on tinytorch and on PyTorch, compare everything.

    assert_parity(lambda a, b: (a @ b).sum(dim=0), x, y)             # forward
    assert_parity(lambda a, b: (a @ b).sum(dim=0), x, y, grad=True)  # and gradients

Comparison order is shape, then dtype, then values (with the per-dtype
tolerances from tolerances.py, through torch.testing.assert_close), so the
first message a learner sees names the most basic thing that is wrong. Value
mismatches report the max absolute and relative error, where it is, and the
expected and actual values there.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from checks.harness import tolerances

_rng_seed = 20240607


def _numpy_dtype_name(dtype: Any) -> str:
    if isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    return np.dtype(dtype).name


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    data = getattr(value, "data", value)
    return np.asarray(data)


def describe_mismatch(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> str:
    """A learner-friendly summary of where and by how much two arrays differ."""
    got64, exp64 = got.astype(np.float64), expected.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        abs_err = np.abs(got64 - exp64)
        abs_err = np.where(np.isnan(got64) ^ np.isnan(exp64), np.inf, np.nan_to_num(abs_err, nan=0.0))
        rel_err = np.where(exp64 != 0, abs_err / np.abs(exp64), np.nan)  # undefined where PyTorch gives 0
        bad = abs_err > atol + rtol * np.abs(exp64)
    where = np.unravel_index(int(np.argmax(abs_err)), abs_err.shape) if abs_err.size else ()
    index = tuple(int(i) for i in where)
    return (
        f"{int(bad.sum())} of {bad.size} values differ beyond rtol={rtol:g}, atol={atol:g}\n"
        f"  max abs error {float(abs_err.max()) if abs_err.size else 0.0:.3g} at index {index}:"
        f" expected {float(exp64[where]) if exp64.ndim else float(exp64)!r} (PyTorch),"
        f" got {float(got64[where]) if got64.ndim else float(got64)!r}\n"
        + (f"  max rel error {float(np.nanmax(rel_err)):.3g} (where PyTorch's value is not 0)"
           if np.isfinite(rel_err).any() else "  (PyTorch's values are all 0 there: no relative error)")
    )


def assert_same(got: Any, expected: Any, what: str = "value", rtol: float | None = None,
                atol: float | None = None, scale: float = 1.0) -> None:
    """Compare a tinytorch result (Tensor/array/number) with a PyTorch one: shape, dtype, values."""
    got_array, expected_array = _as_numpy(got), _as_numpy(expected)
    if got_array.shape != expected_array.shape:
        raise AssertionError(
            f"{what}: shape {tuple(got_array.shape)} but PyTorch gives {tuple(expected_array.shape)}"
        )
    got_dtype = _numpy_dtype_name(got_array.dtype)
    expected_dtype = _numpy_dtype_name(expected.dtype if isinstance(expected, torch.Tensor) else expected_array.dtype)
    if isinstance(expected, torch.Tensor) and got_dtype != expected_dtype:
        raise AssertionError(f"{what}: dtype {got_dtype} but PyTorch gives {expected_dtype}")
    default_rtol, default_atol = tolerances.for_dtype(expected_array.dtype, scale)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    torch.testing.assert_close(
        torch.from_numpy(got_array.copy(order="C")),
        torch.from_numpy(expected_array.copy(order="C")),
        rtol=rtol,
        atol=atol,
        equal_nan=True,
        check_dtype=False,
        msg=lambda _: f"{what}: values differ from PyTorch\n{describe_mismatch(got_array, expected_array, rtol, atol)}",
    )


def to_torch(value: Any, requires_grad: bool = False) -> Any:
    if isinstance(value, np.ndarray):
        return torch.tensor(value.copy(order="C"), requires_grad=requires_grad)
    return value


def to_tinytorch(value: Any, requires_grad: bool = False) -> Any:
    from tinytorch.tensor import Tensor

    if isinstance(value, np.ndarray):
        return Tensor(value, requires_grad=requires_grad)
    return value


def upstream_weights(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A fixed random weighting of the outputs, so every output element's gradient matters."""
    rng = np.random.default_rng(_rng_seed)
    magnitudes = rng.uniform(0.5, 1.5, size=shape).astype(dtype)
    signs = rng.choice([-1.0, 1.0], size=shape).astype(dtype)
    return np.asarray(magnitudes * signs)  # an ndarray even for 0-d outputs


def assert_parity(fn: Callable[..., Any], *inputs: Any, grad: bool = False, rtol: float | None = None,
                  atol: float | None = None, scale: float = 1.0, grad_scale: float | None = None) -> Any:
    """Run `fn` on tinytorch and on PyTorch with the same inputs and compare.

    inputs: numpy arrays become Tensors on each side (requiring grad when `grad`
    and floating point); anything else is passed through unchanged.
    grad:   also weight the outputs by fixed random upstream weights, backpropagate
            on both sides and compare each input's gradient.
    Returns the tinytorch output.
    """
    wants_grad = [grad and isinstance(x, np.ndarray) and x.dtype.kind == "f" for x in inputs]
    snapshots = [x.copy() if isinstance(x, np.ndarray) else None for x in inputs]
    tt_inputs = [to_tinytorch(x, g) for x, g in zip(inputs, wants_grad)]
    torch_inputs = [to_torch(x, g) for x, g in zip(inputs, wants_grad)]
    expected = fn(*torch_inputs)
    got = fn(*tt_inputs)
    assert_inputs_unchanged(inputs, tt_inputs, snapshots, "the forward pass")
    assert_same(got, expected, "forward", rtol, atol, scale)
    if grad:
        weights = upstream_weights(tuple(expected.shape), _as_numpy(expected).dtype)
        (expected * torch.from_numpy(weights)).sum().backward()
        backward_with_read_only_upstream(got, weights)
        for position, (x_tt, x_torch, g) in enumerate(zip(tt_inputs, torch_inputs, wants_grad)):
            if not g:
                continue
            expected_grad = x_torch.grad if x_torch.grad is not None else torch.zeros_like(x_torch)
            what = f"gradient of input {position} (its Tensor's .grad)"
            if x_tt.grad is None:
                raise AssertionError(f"{what}: .grad is None after backward()")
            assert_same(x_tt.grad, expected_grad, what, rtol, atol, grad_scale if grad_scale is not None else scale)
        assert_inputs_unchanged(inputs, tt_inputs, snapshots, "backward()")
    return got


def backward_with_read_only_upstream(got: Any, weights: np.ndarray) -> None:
    """Backpropagate sum(got * weights) into the op that made `got`, handing its backward rule a
    READ-ONLY gradient (checks/harness/upstream.py, run beside the learner's rules).

    A rule that writes into the gradient it receives (`grad *= mask`, `np.exp(grad, out=grad)`)
    gets the right answer in a lone test and corrupts real graphs: engines pass one array to several
    places (add's rule returns the same array for both inputs; a leaf may keep the array as its
    .grad). Here that write raises, and the failure says what happened.
    """
    from checks.harness.learner_side import upstream

    message = upstream().backward_weighted_sum(got, weights)
    if message is not None:
        raise AssertionError(
            f"backward(): a backward rule wrote into the gradient it received (read-only in this check:"
            f" {message}). Rules must return new arrays; the engine may hand the same gradient array to"
            " other inputs or keep it as a leaf's .grad")


def assert_inputs_unchanged(inputs, tt_inputs, snapshots, stage: str) -> None:
    """Every array input, and the Tensor made from it, still holds its original values.

    An op that writes into its input (np.exp(x.data, out=x.data)) gives a right answer once
    and corrupts everything computed from that input afterwards, e.g. autograd's saved values.
    """
    for position, (original, tensor, snapshot) in enumerate(zip(inputs, tt_inputs, snapshots)):
        if snapshot is None:
            continue
        for what, now in (("the array passed in", original), ("its Tensor's .data", _as_numpy(tensor))):
            if now.shape != snapshot.shape or not np.array_equal(now, snapshot, equal_nan=True):
                raise AssertionError(
                    f"input {position}: {stage} modified {what} in place; ops must return new data"
                    f" and leave their inputs unchanged\n{describe_mismatch(now, snapshot, 0.0, 0.0)}"
                    .replace("(PyTorch)", "(before the op)")
                )
