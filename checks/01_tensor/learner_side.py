"""Module 01 check helpers that run beside the learner's code (see checks/harness/learner_side.py)."""

import numpy as np

from tinytorch.tensor import Tensor


def value_seen_after_writing_the_array(dtype=np.float32) -> float:
    """Wrap a numpy array, then write into the array: what does the Tensor see? (5.0 if it shares it)."""
    array = np.zeros(4, dtype=dtype)
    t = Tensor(array)
    array[0] = 5.0
    return float(t.numpy()[0])
