"""Module 03 check helpers that run beside the learner's code (see checks/harness/learner_side.py)."""

import numpy as np

from tinytorch.activations import ReLU, Tanh
from tinytorch.layers import Linear, Module, Parameter, Sequential


class TwoLayer(Module):
    """A user-defined Module: a parameter, submodules, a nested Sequential, an optional tied layer."""

    def __init__(self, tied: bool = False):
        super().__init__()
        self.scale = Parameter(np.ones(3, dtype=np.float32))
        self.encoder = Linear(4, 3)
        self.act = Tanh()
        self.head = Sequential(Linear(3, 5), ReLU(), Linear(5, 2))
        self.tied = self.encoder if tied else None
        self.note = "plain attribute"

    def forward(self, x):
        return self.head(self.act(self.encoder(x) * self.scale))


class Forgetful(Module):
    """Assigns a submodule before calling super().__init__()."""

    def __init__(self):
        self.fc = Linear(2, 2)


def double(t):
    """A plain callable (not a Module) inside a Sequential."""
    return t * 2.0
