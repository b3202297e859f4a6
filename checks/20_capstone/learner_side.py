"""Module 20 check helpers that run beside the learner's submission (see checks/harness/learner_side.py).

Each helper calls the submission where it lives (in the grader's sandboxed worker) and reports what it
saw as plain data: whether an input was modified there (a copy sent across the trust boundary would
hide that), and the logits. numpy, the standard library and tinytorch only.
"""

import importlib.util

import numpy as np

from tinytorch import capstone
from tinytorch.tensor import Tensor


def _logits(out):
    """What the harness does with predict's result: np.asarray (a Tensor's data, or the array)."""
    return np.asarray(out.data if isinstance(out, Tensor) else out)


def train_keeps_its_inputs(images, labels, seed):
    """train() on copies of images and labels: (images unchanged?, labels unchanged?, the state)."""
    x, y = images.copy(), labels.copy()
    state = capstone.train(x, y, seed)
    return bool(np.array_equal(x, images)), bool(np.array_equal(y, labels)), state


def load_keeps_the_state(state):
    """load() on a copy of state: the names of the arrays it changed (or removed, or added)."""
    copies = {name: np.array(value, copy=True) for name, value in state.items()}
    capstone.load(copies)
    changed = sorted(set(copies) ^ set(state))
    changed += sorted(name for name in state if name in copies and not (
        copies[name].dtype == state[name].dtype and np.array_equal(copies[name], state[name])))
    return changed


def predict_keeps_its_input(state, images):
    """predict() on a writeable copy of images, then on a READ-ONLY, NON-CONTIGUOUS view holding the same
    images: (the copy unchanged?, logits of the copy, logits of the view)."""
    model = capstone.load(state)
    x = images.copy()
    first = _logits(capstone.predict(model, x))
    unchanged = bool(np.array_equal(x, images))
    holder = np.zeros((2 * len(images),) + images.shape[1:], dtype=images.dtype)
    holder[1::2] = images
    view = holder[1::2]  # every other image of a larger batch: a strided view
    view.flags.writeable = False
    second = _logits(capstone.predict(model, view))
    return unchanged, first, second


def predict_with_a_fresh_module(state, images):
    """Load and predict with a FRESH copy of the submission's module (its own globals, none of which
    train() has set): what a process that never ran train() would compute."""
    spec = importlib.util.spec_from_file_location("capstone_fresh_copy", capstone.__file__)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    return _logits(fresh.predict(fresh.load(state), images))
