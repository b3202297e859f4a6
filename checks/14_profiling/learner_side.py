"""Module 14 check helpers that run beside the learner's code (see checks/harness/learner_side.py).

The Timer checks hand the learner's Timer a fake clock and a workload: both are callbacks, so they
live here, on the learner's side of the trust boundary, and report what they saw as plain data.
"""

import time

from tinytorch.activations import ReLU
from tinytorch.layers import Linear, Module, Sequential


class Workload:
    """A function to time: counts its calls (optionally sleeping `seconds` in each)."""

    def __init__(self, seconds=0.0):
        self.calls = 0
        self.seconds = seconds

    def __call__(self):
        self.calls += 1
        if self.seconds:
            time.sleep(self.seconds)


class FakeClock:
    """A clock reading `before, after` pairs: after - before = durations[i], then `gap` ns pass.

    Every reading records how many times the workload had been called when the clock was read.
    """

    def __init__(self, durations, workload, start=1_000, gap=7):
        self.readings = []
        t = start
        for d in durations:
            self.readings += [t, t + d]
            t += d + gap
        self.workload = workload
        self.reads = 0
        self.calls_seen = []

    def __call__(self):
        if self.reads >= len(self.readings):
            raise RuntimeError(f"FakeClock: read {self.reads + 1} times, only {len(self.readings)} readings prepared")
        self.calls_seen.append(self.workload.calls)
        self.reads += 1
        return self.readings[self.reads - 1]


class TickingClock:
    """A clock that advances `step` ns on every read."""

    def __init__(self, step=1000):
        self.t, self.step = 0, step

    def __call__(self):
        self.t += self.step
        return self.t


class BackwardsClock:
    """A broken clock that goes back in time on every read."""

    def __init__(self):
        self.t = 10**9

    def __call__(self):
        self.t -= 5
        return self.t


class Mystery(Module):
    """A user-defined Module whose shape mapping model_flops cannot know."""

    def __init__(self):
        super().__init__()
        self.a = Linear(4, 4)
        self.b = Linear(4, 4)

    def forward(self, x):
        return self.a(x) + self.b(x)


class TwoTowers(Module):
    """A Linear used twice (shared), a Linear attribute, and a nested Sequential of a Linear and ReLUs."""

    def __init__(self):
        super().__init__()
        self.stem = Linear(6, 8)
        self.body = Sequential(ReLU(), Linear(8, 8), ReLU())
        self.shared = Linear(8, 8, bias=False)
        self.head = Linear(8, 3)

    def forward(self, x):
        return self.head(self.shared(self.shared(self.body(self.stem(x)))))


class Exploding(Module):
    """Raises in its forward pass once it has been called `after` times."""

    def __init__(self, after):
        super().__init__()
        self.fc = Linear(3, 3)
        self.seq = Sequential(ReLU(), Linear(3, 3))
        self.after, self.calls = after, 0

    def forward(self, x):
        self.calls += 1
        if self.calls > self.after:
            raise ValueError("Exploding: boom")
        return self.seq(self.fc(x))


def forward_overrides(module):
    """Names of the modules in the tree that carry an instance attribute `forward` (none, normally)."""
    return [name for name, m in module.named_modules() if "forward" in m.__dict__]


def hooks_left(module):
    """Names of the modules in the tree that still have forward (pre-)hooks registered (none, normally)."""
    return [name for name, m in module.named_modules() if m._forward_pre_hooks or m._forward_hooks]


def sequential_items(seq):
    """The items of a Sequential as stored (plain callables included)."""
    return list(seq._modules.values())


def same_items(a, b):
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))
