"""Module 05: the engine names a backward rule that returns the wrong thing.

A rule must return one gradient per input, as a tuple (or list). Returning the bare array is
the most common slip; without a check in the engine it surfaces far away (in unbroadcast, or
as a silently truncated zip). The rules below live beside the learner's code
(checks/05_autograd/learner_side.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from checks.harness.learner_side import learner_side
from tinytorch import autograd as ag
from tinytorch.tensor import Tensor

helpers = learner_side(__file__)


@pytest.mark.parametrize("op, rule, inputs, fragment", [
    ("kata_bare", "array_instead_of_tuple", 1, "returned ndarray"),
    ("kata_short", "one_gradient_for_two_inputs", 2, "returned 1 gradients"),
], ids=["array", "too-few"])
def test_a_rule_returning_the_wrong_shape_of_answer_is_named(op, rule, inputs, fragment):
    xs = [Tensor(np.array([1.0, 2.0]), requires_grad=True) for _ in range(inputs)]
    try:
        ag.register_backward(op)(getattr(helpers, rule))
        out = Tensor.from_op(np.array([3.0, 4.0]), op, tuple(xs))
        with pytest.raises(TypeError, match=f"rule for '{op}' {fragment}, expected a tuple of one gradient per input"):
            out.sum().backward()
    finally:
        helpers.forget_rules(op)
