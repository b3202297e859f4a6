"""Test fixture (valid): the baseline's MLP trained with tinytorch, shipped as int8 weights + float32 scales.

Every other capstone fixture is this file with one edit (SUBMISSIONS in test_capstone_harness.py)."""

import numpy as np

import tinytorch.autograd  # noqa: F401
from tinytorch.activations import ReLU
from tinytorch.layers import Linear, Sequential, manual_seed
from tinytorch.losses import cross_entropy
from tinytorch.optimizers import Adam
from tinytorch.tensor import Tensor

LAYERS = ("0", "2", "4")


def train(images, labels, seed):
    manual_seed(seed)
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    optimizer = Adam(model.parameters(), lr=1e-3)
    x = images.reshape(len(images), 784)
    order = np.random.default_rng(seed).permutation(len(x))
    for start in range(0, len(x), 128):
        index = order[start:start + 128]
        loss = cross_entropy(model(Tensor(x[index])), Tensor(labels[index]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    state = {}
    for name, value in model.state_dict().items():
        value = np.asarray(value, dtype=np.float32)
        if name.endswith("weight"):
            scale = np.float32(np.abs(value).max() / 127.0)
            state[name] = np.round(value / scale).astype(np.int8)
            state[name + ".scale"] = np.array([scale], dtype=np.float32)
        else:
            state[name] = value
    return state


def load(state):
    return [(state[f"{i}.weight"].astype(np.float32).T * state[f"{i}.weight.scale"][0], state[f"{i}.bias"])
            for i in LAYERS]


def predict(model, images):
    h = images.reshape(len(images), 784)
    for k, (w, b) in enumerate(model):
        h = h @ w + b
        if k < len(model) - 1:
            h = np.maximum(h, 0)
    return h.astype(np.float32)
