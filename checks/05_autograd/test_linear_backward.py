"""Checks for module 05's rule for module 03's op "linear" (y = x @ W.T + b, one node per layer).

Gradients of x, weight and bias are compared with torch.nn.functional.linear's on
Hypothesis-drawn inputs of 1 to 4 dimensions (any memory layout), with and without a bias, in
float32 and float64, and with central differences in float64. The weight's gradient must come
back in the weight's own layout (C-contiguous, writeable, the weight's dtype), and backward must
leave x, weight and bias unchanged. linear saves tensors: a second backward without
retain_graph raises, as in PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.gradcheck import check_gradients
from checks.harness.learner_side import learner_side
from checks.harness.parity import assert_parity
from tinytorch import layers as L
from tinytorch.tensor import Tensor

helpers = learner_side(__file__)


def either_linear(x, weight, bias=None):
    """One function for both sides of assert_parity: torch's F.linear or tinytorch's linear."""
    if isinstance(x, torch.Tensor):
        return F.linear(x, weight, bias)
    return L.linear(x, weight, bias)


@given(case=tst.linear_inputs())
def test_linear_gradients_match_torch(case):
    x, weight, bias = case
    rows = int(np.prod(x.shape[:-1]))
    assert_parity(either_linear, x, weight, bias, grad=True, scale=float(x.shape[-1]),
                  grad_scale=float(max(rows, weight.shape[0])))


@given(case=tst.linear_inputs(dtype=np.float64))
def test_gradcheck_linear(case):
    x, weight, bias = case
    inputs = (x, weight) if bias is None else (x, weight, bias)
    check_gradients(lambda *t: L.linear(*t), *inputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape", [(3,), (5, 3), (2, 5, 3), (2, 2, 5, 3)], ids=["1d", "2d", "3d", "4d"])
def test_linear_weight_gradient_is_in_the_weights_layout(x_shape, dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=x_shape).astype(dtype)
    weight, bias = rng.normal(size=(4, 3)).astype(dtype), rng.normal(size=4).astype(dtype)
    layouts = helpers.linear_gradient_layouts(x, weight, bias)
    for name in ("x", "weight", "bias"):
        contiguous, writeable, got_dtype, unchanged = layouts[name]
        assert got_dtype == np.dtype(dtype).name, f"{name}.grad has dtype {got_dtype}, expected {np.dtype(dtype).name}"
        assert contiguous and writeable, (
            f"{name}.grad for x of shape {x_shape}: C-contiguous {contiguous}, writeable {writeable}; expected both")
        assert unchanged, f"backward through linear modified {name}'s values in place"


def test_linear_saves_tensors_like_torch():
    x = Tensor(np.ones((2, 3), dtype=np.float32))
    weight = Tensor(np.ones((4, 3), dtype=np.float32), requires_grad=True)
    loss = L.linear(x, weight).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(weight.grad.numpy(), np.full((4, 3), 4.0), err_msg="two backward passes accumulate")
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()
