"""Learner-side helpers for module 12's checks (numpy, the standard library and tinytorch only).

Under the grader these run in the learner's worker (checks.harness.learner_side): numpy's error
state is per thread of the process that computes, so a check that wants floating-point warnings
raised must set it where the learner's softmax runs.
"""

import numpy as np

from tinytorch.attention import masked_softmax
from tinytorch.tensor import Tensor


def masked_softmax_raising(scores, allowed=None):
    """masked_softmax(Tensor(scores), allowed) under np.errstate(all="raise"): any overflow, underflow,
    invalid or divide-by-zero warning inside it raises FloatingPointError. Returns the output array."""
    with np.errstate(all="raise"):
        return masked_softmax(Tensor(scores), allowed).data
