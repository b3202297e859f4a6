"""Module 07 check helpers that run beside the learner's code (see checks/harness/learner_side.py)."""

import io

import numpy as np


def text_stream() -> io.StringIO:
    return io.StringIO()


def byte_buffer() -> io.BytesIO:
    return io.BytesIO()


def shuffled(x, y, batch=32):
    """A data source as fit() accepts it: a function of the epoch returning that epoch's batches."""

    def batches(epoch):
        order = np.random.default_rng(1000 + epoch).permutation(len(x))
        return [(x[order[i:i + batch]], y[order[i:i + batch]]) for i in range(0, len(x), batch)]

    return batches


def halves_without_len(x, y):
    """A data source whose batches come from a generator (no len(): progress shows a count)."""
    return lambda epoch: ((x[i:i + 32], y[i:i + 32]) for i in (0, 32))


class Recorder:
    """A metric that records the outputs it is given and scores 0."""

    def __init__(self):
        self.outputs = []

    def __call__(self, out, target):
        self.outputs.append(out)
        return 0.0


def refit_returns_the_same_history(trainer, data, epochs) -> bool:
    """fit() again up to the same total: it returns the trainer's one history object."""
    history = trainer.history
    return trainer.fit(data, epochs=epochs) is history
