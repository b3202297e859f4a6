"""Module 08 check helpers that run beside the learner's code (see checks/harness/learner_side.py)."""

from tinytorch.data import Dataset, TensorDataset


class ListDataset(Dataset):
    """A plain (non-Tensor) dataset: samples come from a Python list one at a time."""

    def __init__(self, samples):
        self.samples = samples
        self.calls = 0

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        self.calls += 1
        return self.samples[index]


class Counting(TensorDataset):
    """A TensorDataset that records every index it is asked for."""

    def __init__(self, *arrays, **kwargs):
        super().__init__(*arrays, **kwargs)
        self.calls = []

    def __getitem__(self, index):
        self.calls.append(index)
        return super().__getitem__(index)


class Incomplete(Dataset):
    """A Dataset subclass that implements neither __len__ nor __getitem__."""


def times_ten(a):
    return a * 10


def collate_incomplete(samples):
    return Incomplete()[0]


class LengthCollate:
    """A collate_fn that returns each batch's length and records it."""

    def __init__(self):
        self.seen = []

    def __call__(self, samples):
        self.seen.append(len(samples))
        return len(samples)
