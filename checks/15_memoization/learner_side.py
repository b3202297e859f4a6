"""Module 15 check helpers that run beside the learner's code (see checks/harness/learner_side.py).

numpy, the standard library and tinytorch only: under the grader these run in the learner's worker.
"""

import math

import numpy as np

from tinytorch.layers import Module


def to_float64(model):
    """Convert every parameter of `model` to float64 in place (the same values, widened); returns it."""
    for param in model.parameters():
        param.data = param.data.astype(np.float64)
    return model


class CountingRows(Module):
    """Wraps a module (a block's mlp): counts the positions (B * T rows) it is run on, then delegates."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.rows = 0
        self.calls = 0

    def forward(self, x):
        self.rows += math.prod(x.shape[:-1])
        self.calls += 1
        return self.inner(x)


def instrument(model):
    """Replace each block's mlp by a CountingRows around it (the same parameters, the same output)."""
    for block in model.h:
        block.mlp = CountingRows(block.mlp)
    return model


def rows_per_block(model):
    """[positions each block's mlp has processed] for an instrumented model."""
    return [int(block.mlp.rows) for block in model.h]


def append_returns_views(cache, layer, k, v):
    """Whether cache.append returns views of the cache's own arrays and keeps those arrays (no reallocation)."""
    keys_before, values_before = cache.keys[layer], cache.values[layer]
    keys, values = cache.append(layer, k, v)
    return bool(cache.keys[layer] is keys_before and cache.values[layer] is values_before
                and np.shares_memory(keys, keys_before) and np.shares_memory(values, values_before))


def reset_keeps_the_arrays(cache):
    """Whether cache.reset() keeps every preallocated array object (views handed out stay views of the cache)."""
    before = [*cache.keys, *cache.values]
    cache.reset()
    return all(a is b for a, b in zip(before, [*cache.keys, *cache.values]))


def memoize_keys_by_value(memoize):
    """Results of a memoized function called with temporary tuples (whose ids Python reuses) and with two
    equal ints that are different objects: ([f((i, i)) for i in range(5)], (hits, misses) after the ints)."""
    f = memoize(8)(lambda t: sum(t))
    by_tuple = [f(tuple([i, i])) for i in range(5)]
    g = memoize(8)(lambda n: n + 1)
    g(10**6)
    g(int("1000000"))
    info = g.cache_info()
    return by_tuple, (int(info[0]), int(info[1]))


def result_is_read_only(fn, *args):
    """Whether fn(*args) returns an array that cannot be written to (arrays crossing the boundary are copies)."""
    return not fn(*args).flags.writeable


def hit_returns_the_same_object(memoized, *args):
    """Two calls with the same arguments: the second (a hit) must hand back the stored object itself."""
    return memoized(*args) is memoized(*args)


class Counted:
    """A function that counts its real calls: f(x, y=0) = [x, y] (a new list each call); raises
    ValueError for x == fail_on (a failing call must not be memoized)."""

    def __init__(self, fail_on=None):
        self.calls = 0
        self.fail_on = fail_on
        self.__name__ = "counted"

    def __call__(self, x, y=0):
        self.calls += 1
        if self.fail_on is not None and x == self.fail_on:
            raise ValueError(f"counted: refusing x={x}")
        return [x, y]


def call_with_list_argument(memoized):
    """Call a memoized function with an unhashable (list) argument."""
    return memoized([1, 2])
