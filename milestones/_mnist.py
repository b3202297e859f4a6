"""MNIST and the 1986 MLP, shared by the 2024 systems milestone and the compression benchmarks.

The recipe is the 1986 milestone's model (784-256-128-10 ReLU MLP, cross-entropy, Adam with
cosine decay per step, shuffled batches) trained for a few epochs: what
milestones/m2024_systems.py, milestones/benchmarks/quantize_mnist.py and
milestones/benchmarks/prune_mnist.py quantize and prune. (m1986_mnist_mlp.py keeps its own
readable top-to-bottom loop.)

Everything here works on either side of the trust boundary (docs/GRADING.md): under the grader
`tinytorch` is a proxy for the learner's sandboxed worker, so models are copied through their
state_dict as plain arrays (never copy.deepcopy of a proxy), the test labels stay on this side
(the framework sees test images only) and accuracy is computed here.

Import this module after TINYTORCH_IMPL is set (MilestoneRun.from_cli, or a benchmark's
--impl): tinytorch is imported by the functions, when they run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

MEAN, STD = 0.1307, 0.3081  # MNIST's pixel mean and standard deviation
LAYERS = (784, 256, 128, 10)


@dataclass
class Mnist:
    """Normalised float32 images (N, 784), int64 labels, and a loader of the test IMAGES only."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_loader: Any  # DataLoader(TensorDataset(x_test), batch_size=1000): no labels


def load() -> Mnist:
    """MNIST from --data-dir / $TINYTORCH_DATA / the cache, prepared once, vectorised over all 70,000 images.

    Raises tinytorch.datasets.DatasetError when the files are absent and cannot be fetched."""
    from tinytorch.data import Compose, DataLoader, Normalize, TensorDataset, ToTensor
    from tinytorch.datasets import load_mnist

    mnist = load_mnist()
    prepare = Compose([ToTensor("HW"), Normalize((MEAN,), (STD,))])
    x_train = prepare(mnist.train_images).reshape(len(mnist.train_images), 784)
    x_test = prepare(mnist.test_images).reshape(len(mnist.test_images), 784)
    return Mnist(x_train, mnist.train_labels, x_test, mnist.test_labels,
                 DataLoader(TensorDataset(x_test), batch_size=1000))


def mlp(seed: int):
    """The 1986 milestone's 784-256-128-10 ReLU MLP, initialised after manual_seed(seed)."""
    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential, manual_seed

    manual_seed(seed)
    return Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))


def weights(net) -> list:
    """The (module, "weight") pairs of the MLP's three Linear layers (what pruning acts on; biases untouched)."""
    return [(net[0], "weight"), (net[2], "weight"), (net[4], "weight")]


def clone(net, seed: int = 0):
    """A new MLP holding a copy of `net`'s parameters (through state_dict as plain arrays: works on proxies)."""
    copy = mlp(seed)
    copy.load_state_dict({name: np.array(value) for name, value in net.state_dict().items()})
    return copy


_LOSS: list = []  # one CrossEntropyLoss, made on first use (after TINYTORCH_IMPL is set)


def cross_entropy(net, batch) -> Any:
    """The default training loss: module 04's CrossEntropyLoss of net(x) against y, batch = (x, y, ...)."""
    if not _LOSS:
        from tinytorch.losses import CrossEntropyLoss

        _LOSS.append(CrossEntropyLoss())
    return _LOSS[0](net(batch[0]), batch[1])


def train(net, arrays: tuple, epochs: int, lr: float, batch_size: int, seed: int,
          loss_of: Callable[[Any, Any], Any] = cross_entropy, after_step: Callable[[int], None] | None = None) -> float:
    """Adam(lr) with cosine decay to 0 over all steps, `epochs` passes over shuffled batches of `arrays`
    (DataLoader(TensorDataset(*arrays), shuffle=True, generator=seed)); loss_of(net, batch) -> loss.
    after_step(done) runs after every optimizer step with the number of steps done so far.
    Returns the seconds spent. A non-finite loss stops with a FloatingPointError naming the step."""
    import math

    import tinytorch.autograd  # noqa: F401  (importing it registers the backward engine)
    from tinytorch.data import DataLoader, TensorDataset
    from tinytorch.optimizers import Adam
    from tinytorch.training import CosineAnnealingLR

    loader = DataLoader(TensorDataset(*arrays), batch_size=batch_size, shuffle=True, generator=seed)
    optimizer = Adam(net.parameters(), lr=lr)
    scheduler = CosineAnnealingLR(optimizer, T_max=max(1, epochs * len(loader)))
    started, step = time.perf_counter(), 0
    net.train()
    for _ in range(epochs):
        for batch in loader:
            loss = loss_of(net, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if after_step is not None:
                after_step(step)
        value = float(loss.item())  # once per epoch: a request less per step under the grader
        if not math.isfinite(value):
            raise FloatingPointError(f"training diverged: the loss is {value} after step {step}")
    return time.perf_counter() - started


def predict(net, loader) -> np.ndarray:
    """Class predictions of `net` for every image of `loader` (batches of images only), in order, under no_grad."""
    import tinytorch.autograd as autograd

    with autograd.no_grad():
        return np.concatenate([np.asarray(net(x).numpy()).argmax(axis=1) for (x,) in loader])


def evaluate(net, data: Mnist) -> float:
    """Accuracy on the 10,000 test images; the labels stay here, the framework sees images only."""
    predictions = predict(net, data.test_loader)
    if predictions.shape != data.y_test.shape:
        raise ValueError(f"the model returned {predictions.shape[0]} predictions for {len(data.y_test)} test images")
    return float(np.mean(predictions == data.y_test))


@dataclass
class GradualPruning:
    """What prune_gradually did: the pruner (masks), the applied (step, target sparsity) events, seconds."""

    pruner: Any
    schedule: list
    events: int
    seconds: float


def prune_gradually(net, data: Mnist, sparsity: float, epochs: int, lr: float, ramp: float, frequency: int,
                    batch_size: int, seed: int) -> GradualPruning:
    """Fine-tune `net` (in place) while module 17's global magnitude pruning follows Zhu & Gupta's cubic
    schedule (`gradual_sparsity`) from 0 to `sparsity` over the first `ramp` of the steps, one pruning
    event every `frequency` steps (the new mask is multiplied into the old one); `Pruner.apply()` after
    EVERY optimizer step keeps the pruned weights at 0 (Adam's moments would otherwise revive them)."""
    from tinytorch.compression import Pruner, gradual_sparsity

    pruner = Pruner()
    steps_per_epoch = -(-len(data.x_train) // batch_size)
    events = max(1, int(ramp * epochs * steps_per_epoch) // frequency)
    schedule: list = []

    def prune_step(step: int) -> None:
        if step % frequency == 0 and step // frequency <= events:
            target = gradual_sparsity(step, sparsity, 0.0, 0, events, frequency)
            pruner.global_unstructured(weights(net), target)
            schedule.append((step, float(target)))
        pruner.apply()

    prune_step(0)
    seconds = train(net, (data.x_train, data.y_train), epochs, lr, batch_size, seed, after_step=prune_step)
    return GradualPruning(pruner, schedule, events, seconds)
