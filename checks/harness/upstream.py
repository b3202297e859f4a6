"""Backpropagate into the op under test with a READ-ONLY upstream gradient, beside the learner's rules.

Loaded with `checks.harness.learner_side.upstream()`: under the grader this file runs in the
learner's worker (it imports only numpy and tinytorch), because the property concerns the very
array the learner's backward rule receives: a copy made on the way across the trust boundary
would be writeable again.
"""

import numpy as np

from tinytorch.autograd import register_backward
from tinytorch.tensor import Tensor

OP = "harness_weighted_sum"


def _weighted_sum_rule(grad, out, inputs, saved):
    """The op under test receives weights * grad as a read-only array."""
    upstream = np.asarray(saved["weights"] * grad, dtype=inputs[0].dtype)
    upstream.flags.writeable = False
    return (upstream,)


def backward_weighted_sum(got, weights):
    """Backpropagate sum(got * weights), recorded as one op registered through module 05's hook.

    Returns None, or numpy's message when a backward rule wrote into the read-only gradient.
    """
    register_backward(OP)(_weighted_sum_rule)
    total = np.asarray((got.data * weights).sum(), dtype=weights.dtype)
    try:
        Tensor.from_op(total, OP, (got,), weights=weights).backward()
    except ValueError as error:
        if "read-only" not in str(error):
            raise
        return str(error)
    return None
