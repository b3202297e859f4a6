"""Module 16 check helpers that run beside the learner's code (see checks/harness/learner_side.py)."""

from tinytorch.activations import ReLU
from tinytorch.layers import Linear, Module, Sequential


class TwoTowers(Module):
    """A user-defined Module: a Linear attribute, a nested Sequential holding Linears, and a Linear
    used twice (shared), so quantize_model must walk the whole tree, not just a top-level Sequential."""

    def __init__(self, generator=None):
        super().__init__()
        self.stem = Linear(6, 8, generator=generator)
        self.body = Sequential(ReLU(), Linear(8, 8, generator=generator), ReLU())
        self.shared = Linear(8, 8, generator=generator)
        self.head = Sequential(self.shared, ReLU(), Linear(8, 3, bias=False, generator=generator))

    def forward(self, x):
        return self.head(self.shared(self.body(self.stem(x))))
