"""Checks for module 03's functional `linear(x, weight, bias=None)`: torch.nn.functional.linear.

The forward pass is compared with torch.nn.functional.linear on Hypothesis-drawn inputs of
1 to 4 dimensions (contiguous, transposed and strided layouts), with and without a bias, in
float32 and float64; the inputs must be left unchanged. The op must be recorded as ONE node
"linear" whose inputs are (x, weight, bias), or (x, weight) without a bias, so that module
05's rule can differentiate it. Its gradients are module 05's job (the rule lives there), as
for every other op: nothing here calls backward().
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.learner_side import probes
from checks.harness.parity import assert_parity, assert_same
from tinytorch import layers as L
from tinytorch.layers import Linear
from tinytorch.tensor import Tensor


def either_linear(x, weight, bias=None):
    """One function for both sides of assert_parity: torch's F.linear or tinytorch's linear."""
    if isinstance(x, torch.Tensor):
        return F.linear(x, weight, bias)
    return L.linear(x, weight, bias)


@given(case=tst.linear_inputs())
def test_linear_op_forward_matches_torch(case):
    x, weight, bias = case
    out = assert_parity(either_linear, x, weight, bias, scale=float(x.shape[-1]))
    assert out.shape == x.shape[:-1] + (weight.shape[0],), f"linear output shape {out.shape} for x {x.shape}"


def test_linear_op_empty_batch_and_numpy_inputs():
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    bias = np.array([1.0, -1.0], dtype=np.float32)
    empty = assert_parity(either_linear, np.zeros((0, 3), dtype=np.float32), weight, bias)
    assert empty.shape == (0, 2), f"a batch of 0 rows gives shape (0, 2), got {empty.shape}"
    x = np.ones((4, 3), dtype=np.float32)
    expected = F.linear(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias))
    assert_same(L.linear(x, weight, bias), expected, "linear on plain numpy arrays")


def test_linear_op_is_one_recorded_node():
    same = probes().same_object
    x = Tensor(np.ones((2, 5, 3), dtype=np.float32))
    weight = Tensor(np.ones((4, 3), dtype=np.float32), requires_grad=True)
    bias = Tensor(np.zeros(4, dtype=np.float32), requires_grad=True)
    out = L.linear(x, weight, bias)
    assert out.requires_grad and out.grad_fn is not None, "linear is recorded when an input requires grad"
    assert out.grad_fn.op == "linear", f"recorded as op 'linear' (one node), got {out.grad_fn.op!r}"
    inputs = out.grad_fn.inputs
    assert len(inputs) == 3 and all(same(a, b) for a, b in zip(inputs, (x, weight, bias))), (
        "the node's inputs are (x, weight, bias), the Tensors passed in")
    no_bias = L.linear(x, weight)
    assert no_bias.grad_fn.op == "linear" and len(no_bias.grad_fn.inputs) == 2, (
        "without a bias the inputs are (x, weight)")
    assert same(no_bias.grad_fn.inputs[1], weight)
    constant = L.linear(x, Tensor(np.ones((4, 3), dtype=np.float32)))
    assert constant.grad_fn is None and not constant.requires_grad, "nothing requires grad: no node"


def test_linear_layer_records_the_linear_op():
    same = probes().same_object
    layer = Linear(3, 2)
    out = layer(Tensor(np.ones((4, 3), dtype=np.float32)))
    assert out.grad_fn is not None and out.grad_fn.op == "linear", "Linear.forward calls linear(): one node"
    inputs = out.grad_fn.inputs
    assert len(inputs) == 3 and same(inputs[1], layer.weight) and same(inputs[2], layer.bias), (
        "the node's inputs are (x, layer.weight, layer.bias)")
    no_bias = Linear(3, 2, bias=False)
    out = no_bias(np.ones((4, 3), dtype=np.float32))
    assert out.grad_fn.op == "linear" and len(out.grad_fn.inputs) == 2, "bias=False: inputs (x, weight)"


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, fragment",
    [((4, 5), (2, 3), None, r"\(4, 5\)"),
     ((), (2, 3), None, r"\(\)"),
     ((4, 3), (3,), None, r"\(3,\)"),
     ((4, 3), (2, 3), (3,), r"\(3,\)"),
     ((4, 3), (2, 3), (2, 1), r"\(2, 1\)")],
    ids=["last-dim", "0-d-x", "1-d-weight", "bias-length", "2-d-bias"],
)
def test_linear_op_shape_errors_name_the_shapes(x_shape, w_shape, b_shape, fragment):
    x, weight = np.ones(x_shape, dtype=np.float32), np.ones(w_shape, dtype=np.float32)
    bias = None if b_shape is None else np.ones(b_shape, dtype=np.float32)
    with pytest.raises(ValueError, match=fragment):
        L.linear(Tensor(x), Tensor(weight), None if bias is None else Tensor(bias))
