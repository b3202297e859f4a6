"""Module 19 check helpers that run beside the learner's code (see checks/harness/learner_side.py).

The scenarios take a `predict` callback and a `clock` callback: both live here, on the learner's
side of the trust boundary, and report what they saw as plain data. numpy, stdlib and tinytorch only.
"""

import time

import numpy as np


class Predict:
    """A model stand-in: records what it was called with (ints as is, arrays by their leading size)."""

    def __init__(self, seconds=0.0):
        self.seen = []
        self.seconds = seconds

    def __call__(self, query):
        self.seen.append(int(np.shape(query)[0]) if np.ndim(query) else int(query))
        if self.seconds:
            time.sleep(self.seconds)
        return query


class FakeClock:
    """A clock whose consecutive (before, after) readings differ by durations[i]; `gap` ns between pairs.

    Every reading records how many calls `predict` had completed when the clock was read.
    """

    def __init__(self, durations, predict, start=1_000, gap=7):
        self.readings = []
        t = start
        for d in durations:
            self.readings += [t, t + int(d)]
            t += int(d) + gap
        self.predict = predict
        self.reads = 0
        self.calls_seen = []

    def __call__(self):
        if self.reads >= len(self.readings):
            raise RuntimeError(f"FakeClock: read {self.reads + 1} times, only {len(self.readings)} readings prepared")
        self.calls_seen.append(len(self.predict.seen))
        self.reads += 1
        return self.readings[self.reads - 1]


class BackwardsClock:
    """A broken clock that goes back in time on every read."""

    def __init__(self):
        self.t = 10**9

    def __call__(self):
        self.t -= 5
        return self.t


def p90(x, axis=None):
    """A user-defined statistic: the 90th percentile along `axis`."""
    return np.percentile(x, 90, axis=axis)
