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


# -- buffers and forward hooks (checks/03_layers/test_buffers_and_hooks.py) --------------------------

from tinytorch.tensor import Tensor  # noqa: E402


class Normalizer(Module):
    """Buffers of every kind: persistent arrays (float32, 0-d int64), a non-persistent one, a None one,
    registered BEFORE the parameter (state_dict still lists parameters first, as torch does)."""

    def __init__(self, n: int = 3):
        super().__init__()
        self.register_buffer("mean", np.zeros(n, dtype=np.float32))
        self.register_buffer("cache", np.zeros(n, dtype=np.float32), persistent=False)
        self.register_buffer("count", np.array(0, dtype=np.int64))
        self.register_buffer("empty", None)
        self.scale = Parameter(np.ones(n, dtype=np.float32))
        self.fc = Linear(n, 2)

    def forward(self, x):
        if self.training:
            self.mean = (0.5 * self.mean + 0.5 * x.numpy().mean(axis=0)).astype(np.float32)  # re-assigned
            self.cache = x.numpy().max(axis=0).astype(np.float32)
            self.count += 1  # in place on the 0-d array
        return self.fc((x - Tensor(self.mean)) * self.scale)


class NetWithBuffers(Module):
    """A buffer of its own, a Normalizer child and a Sequential holding another one."""

    def __init__(self):
        super().__init__()
        self.register_buffer("steps", np.zeros((), dtype=np.int64))
        self.norm = Normalizer(3)
        self.head = Sequential(Linear(2, 3), ReLU(), Normalizer(3))
        self.bias = Parameter(np.zeros(2, dtype=np.float32))

    def forward(self, x):
        return self.head(self.norm(x)) + self.bias


class EarlyBuffer(Module):
    """Registers a buffer before calling super().__init__()."""

    def __init__(self):
        self.register_buffer("mean", np.zeros(2))


class Scaler(Module):
    """forward(x, scale=1.0): for hooks that see and replace keyword arguments."""

    def forward(self, x, scale=1.0):
        return x * scale


class HookLog:
    """Hooks that append what they see to `log` (strings), optionally replacing args or output."""

    def __init__(self):
        self.log = []

    def pre(self, tag, replace_with=None):
        def hook(module, args):
            self.log.append(f"pre {tag} {type(module).__name__} {len(args)}")
            return replace_with(args) if replace_with is not None else None
        return hook

    def post(self, tag, replace_with=None):
        def hook(module, args, output):
            self.log.append(f"post {tag} {type(module).__name__} {list(output.shape)}")
            return replace_with(output) if replace_with is not None else None
        return hook

    def pre_kwargs(self, tag, new_scale=None):
        def hook(module, args, kwargs):
            self.log.append(f"pre {tag} {sorted(kwargs.items())}")
            return (args, {**kwargs, "scale": new_scale}) if new_scale is not None else None
        return hook

    def post_kwargs(self, tag):
        def hook(module, args, kwargs, output):
            self.log.append(f"post {tag} {sorted(kwargs.items())}")
            return output * 10.0
        return hook

    def bad_pre_kwargs(self):
        def hook(module, args, kwargs):
            return args[0]
        return hook

    def once(self, module, tag):
        """A forward hook that removes itself during its first call."""
        handles = []

        def hook(mod, args, output):
            self.log.append(f"once {tag}")
            handles[0].remove()
        handles.append(module.register_forward_hook(hook))
        return handles[0]


def double_args(args):
    return tuple(a * 2.0 for a in args)


def negate_bare(args):
    return args[0] * -1.0  # not a tuple: becomes (that,)


def add_one(output):
    return output + 1.0
