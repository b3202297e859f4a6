"""Central-difference gradient checks, independent of PyTorch.

    check_gradients(lambda x, w: (x @ w).exp().sum(dim=1), x, w)

Every positional input is a differentiable float array (it is converted to
float64); pass non-differentiable arguments such as integer class targets by
closing over them in the lambda.

The function's output is weighted by fixed random upstream weights u, so the
scalar checked is L = sum(u * f(inputs)) and every output element matters.
Each input element is nudged by +-h in float64 and (L(x+h) - L(x-h)) / 2h is
compared with the gradient that tinytorch's backward() computed (the op's
backward rule receives u read-only, as in parity.assert_parity).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from checks.harness import tolerances
from checks.harness.parity import backward_with_read_only_upstream, describe_mismatch, upstream_weights


def numerical_gradients(fn: Callable, arrays: list[np.ndarray], weights: np.ndarray,
                        h: float = tolerances.GRADCHECK_STEP) -> list[np.ndarray]:
    from tinytorch.tensor import Tensor

    def loss(values: list[np.ndarray]) -> float:
        return float(np.sum(np.asarray(fn(*[Tensor(v) for v in values]).data, dtype=np.float64) * weights))

    grads = []
    for i, array in enumerate(arrays):
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            bumped = [a.copy() for a in arrays]
            bumped[i][index] = array[index] + h
            up = loss(bumped)
            bumped[i][index] = array[index] - h
            down = loss(bumped)
            grad[index] = (up - down) / (2 * h)
        grads.append(grad)
    return grads


def check_gradients(fn: Callable, *inputs: np.ndarray, h: float = tolerances.GRADCHECK_STEP,
                    rtol: float | None = None, atol: float | None = None) -> None:
    """Assert that tinytorch's backward() agrees with central differences for every input."""
    from tinytorch.tensor import Tensor

    default_rtol, default_atol = tolerances.GRADCHECK_TOLERANCE
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    arrays = [np.array(x, dtype=np.float64) for x in inputs]
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    weights = upstream_weights(tuple(out.shape), np.float64)
    backward_with_read_only_upstream(out, weights)
    numeric = numerical_gradients(fn, arrays, weights, h)
    for position, (tensor, expected) in enumerate(zip(tensors, numeric)):
        if tensor.grad is None:
            raise AssertionError(f"gradient of input {position}: .grad is None after backward()")
        got = np.asarray(tensor.grad.data, dtype=np.float64)
        if got.shape != expected.shape:
            raise AssertionError(f"gradient of input {position}: shape {got.shape}, input shape {expected.shape}")
        if not np.allclose(got, expected, rtol=rtol, atol=atol):
            raise AssertionError(
                f"gradient of input {position} disagrees with central differences (h={h:g})\n"
                + describe_mismatch(got, expected, rtol, atol).replace("(PyTorch)", "(numerical)")
            )
