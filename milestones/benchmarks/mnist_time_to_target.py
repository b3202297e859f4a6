"""Time to 97% MNIST test accuracy: tinytorch vs PyTorch (CPU), one recipe, one run.

Both frameworks train the 1986 milestone's model (784-256-128-10 ReLU MLP,
cross-entropy, Adam lr 1e-3, batch 128) from the *same* initial weights (tinytorch's,
copied into torch), on the *same* batches in the *same* order (each epoch's order is
one `np.random.Generator.permutation` shared by both), evaluating the full 10,000-image
test set every `--eval-every` steps. The clock covers training steps, batching and
evaluations until the first evaluation at or above the target; data preparation
(decoding and normalising MNIST, once, identical for both) is outside it.

    python milestones/benchmarks/mnist_time_to_target.py --data-dir ../shared/data
    python milestones/benchmarks/mnist_time_to_target.py --impl katas --repeats 3

Prints both times, the steps each needed and the ratio tinytorch / PyTorch (goal <= 1.5).
Exit code 0 when both reached the target and the ratio is within --max-ratio, else 1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="reference", help="tinytorch implementation (default: reference)")
    parser.add_argument("--data-dir", default=None, help="dataset directory (else $TINYTORCH_DATA or the cache)")
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=100, help="steps between test-set evaluations")
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="alternate the two runs this often; report medians")
    parser.add_argument("--max-ratio", type=float, default=1.5)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS/OpenMP threads for both frameworks (default: each library's own default);"
                             " 1 gives stable figures on a shared machine")
    return parser.parse_args(argv)


args = parse_args()
os.environ["TINYTORCH_IMPL"] = args.impl  # before importing tinytorch
if args.threads:  # before numpy and torch load their thread pools
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
if args.data_dir:
    os.environ["TINYTORCH_DATA"] = str(Path(args.data_dir).resolve())

import numpy as np  # noqa: E402
import torch  # noqa: E402

import tinytorch.autograd as autograd  # noqa: E402
from tinytorch.activations import ReLU  # noqa: E402
from tinytorch.data import Compose, DataLoader, Normalize, TensorDataset, ToTensor  # noqa: E402
from tinytorch.datasets import load_mnist  # noqa: E402
from tinytorch.layers import Linear, Sequential, manual_seed  # noqa: E402
from tinytorch.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.optimizers import Adam  # noqa: E402
from tinytorch.tensor import Tensor  # noqa: E402

TARGET_MISSED = 3  # exit code when the ratio misses its target (a crash exits 1)

SIZES = (784, 256, 128, 10)


def prepare():
    mnist = load_mnist()
    prep = Compose([ToTensor("HW"), Normalize((0.1307,), (0.3081,))])
    x_train = prep(mnist.train_images).numpy().reshape(-1, 784)
    x_test = prep(mnist.test_images).numpy().reshape(-1, 784)
    return x_train, mnist.train_labels, x_test, mnist.test_labels


def tinytorch_model(seed: int):
    manual_seed(seed)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(SIZES, SIZES[1:])):
        layers.append(Linear(fan_in, fan_out))
        if i < len(SIZES) - 2:
            layers.append(ReLU())
    return Sequential(*layers)


def torch_copy(model) -> torch.nn.Sequential:
    """The same network in PyTorch, starting from tinytorch's initial weights."""
    layers = []
    linears = [layer for layer in model if isinstance(layer, Linear)]
    for i, linear in enumerate(linears):
        twin = torch.nn.Linear(linear.in_features, linear.out_features)
        with torch.no_grad():
            twin.weight.copy_(torch.from_numpy(linear.weight.numpy()))
            twin.bias.copy_(torch.from_numpy(linear.bias.numpy()))
        layers.append(twin)
        if i < len(linears) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def run_tinytorch(data, seed):
    x_train, y_train, x_test, y_test = data
    model = tinytorch_model(seed)
    optimizer = Adam(model.parameters(), lr=args.lr)
    loss_fn = CrossEntropyLoss()
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True,
                        generator=np.random.default_rng(seed))
    x_eval = Tensor(x_test)

    def accuracy():
        with autograd.no_grad():
            return float(np.mean(model(x_eval).numpy().argmax(axis=1) == y_test))

    start, step = time.perf_counter(), 0
    for _ in range(args.max_epochs):
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % args.eval_every == 0 and (acc := accuracy()) >= args.target:
                return time.perf_counter() - start, step, acc
    return float("inf"), step, accuracy()


def run_torch(data, seed):
    x_train, y_train, x_test, y_test = data
    model = torch_copy(tinytorch_model(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    x_eval, y_eval = torch.from_numpy(x_test), torch.from_numpy(y_test)
    rng = np.random.default_rng(seed)  # the same epoch orders as the tinytorch DataLoader

    def accuracy():
        with torch.no_grad():
            return float((model(x_eval).argmax(dim=1) == y_eval).float().mean())

    start, step, n, bs = time.perf_counter(), 0, len(xt), args.batch_size
    for _ in range(args.max_epochs):
        order = torch.from_numpy(rng.permutation(n))
        for b in range((n + bs - 1) // bs):
            idx = order[b * bs:(b + 1) * bs]
            loss = loss_fn(model(xt[idx]), yt[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % args.eval_every == 0 and (acc := accuracy()) >= args.target:
                return time.perf_counter() - start, step, acc
    return float("inf"), step, accuracy()


def main() -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    data = prepare()
    print(f"MNIST time to {args.target:.0%} test accuracy: 784-256-128-10 MLP, Adam lr {args.lr}, batch"
          f" {args.batch_size}, evaluation every {args.eval_every} steps; tinytorch={args.impl};"
          f" torch {torch.__version__} with {torch.get_num_threads()} threads; {os.cpu_count()} CPUs", flush=True)
    results = {"tinytorch": [], "pytorch": []}
    for repeat in range(args.repeats):
        for name, fn in (("pytorch", run_torch), ("tinytorch", run_tinytorch)):
            seconds, steps, acc = fn(data, args.seed)
            results[name].append(seconds)
            print(f"  [{repeat + 1}/{args.repeats}] {name:9s}: {seconds:7.2f} s, {steps} steps,"
                  f" test accuracy {acc:.4f}", flush=True)
    tt, pt = statistics.median(results["tinytorch"]), statistics.median(results["pytorch"])
    ratio = tt / pt
    print(f"tinytorch {tt:.2f} s / PyTorch {pt:.2f} s = {ratio:.2f}x (goal <= {args.max_ratio:g}x)")
    return 0 if ratio <= args.max_ratio else TARGET_MISSED


if __name__ == "__main__":
    sys.exit(main())
