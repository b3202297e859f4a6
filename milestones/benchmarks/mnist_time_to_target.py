"""Time to 97% MNIST test accuracy: tinytorch vs PyTorch (CPU), one recipe.

Both frameworks train the 1986 milestone's model (784-256-128-10 ReLU MLP, cross-entropy,
Adam lr 1e-3, batch 128) from the *same* initial weights (Kaiming-uniform weights, as
tinytorch's Linear draws them, from one numpy generator), on the *same* batches in the
*same* order (each epoch's order is one `np.random.Generator.permutation` shared by both),
evaluating the full 10,000-image test set every `--eval-every` steps. The clock covers
training steps, batching and evaluations until the first evaluation at or above the target;
data preparation (decoding and normalising MNIST, identical for both) is outside it.

    python milestones/benchmarks/mnist_time_to_target.py --data-dir ../shared/data
    python milestones/benchmarks/mnist_time_to_target.py --threads 1 --repeats 5
    python milestones/benchmarks/mnist_time_to_target.py --impl katas
    python milestones/benchmarks/mnist_time_to_target.py --threads 1 --repeats 1 --target 0.5 \
        --eval-every 10 --max-epochs 1            # a seconds-long check that it runs (its smoke test)

How it is measured (as milestones/benchmarks/mlp_step.py, with the protocol of _paired.py): each
run is a fresh Python process running one framework only (the tinytorch process never imports
torch), with the thread count fixed before it starts (OPENBLAS/OMP/MKL_NUM_THREADS,
torch.set_num_threads) and read back; runs alternate ABBA (pytorch, tinytorch, tinytorch,
pytorch, ...) `--repeats` times per thread count; a repeat's ratio pairs two neighbouring runs
and the verdict is the median ratio, with the min..max printed as the noise. Pair r uses seed
`--seed + r` for both runs: the two frameworks round differently, so their trajectories part
after a few hundred steps and which one first crosses 97% at an evaluation is partly luck;
several seeds put that luck into the median instead of into one fixed draw. The time per step is
printed too. Memory allocation is glibc malloc with the environment's
MALLOC_* settings (printed). Target: tinytorch <= 1.0x PyTorch's time.

Exit code 0 when, at every thread count, both frameworks reached the target accuracy and the
ratio is within --max-ratio; 3 when not (a crash exits 1).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _paired as paired

SIZES = (784, 256, 128, 10)
ORDER = ("pytorch", "tinytorch")  # the ABBA order of a thread count's runs: PyTorch first


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    paired.add_common_arguments(parser)
    parser.add_argument("--data-dir", default=None, help="dataset directory (else $TINYTORCH_DATA or the cache)")
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=100, help="steps between test-set evaluations")
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0, help="pair r uses seed + r (the same for both runs of a pair)")
    parser.add_argument("--repeats", type=paired.at_least(1), default=5,
                        help="pairs of runs per thread count; report medians")
    parser.add_argument("--max-ratio", type=float, default=1.0)
    return parser.parse_args(argv)


# -- the workers: one framework per process ------------------------------------------------


def prepare():
    """MNIST as float32 rows, normalised with the usual mean/std (the same arrays for both)."""
    import numpy as np

    from tinytorch.datasets import load_mnist  # provided framework code: file reading only

    mnist = load_mnist()

    def rows(images):
        return ((images.reshape(len(images), -1).astype(np.float32) / 255 - 0.1307) / 0.3081).astype(np.float32)

    return rows(mnist.train_images), mnist.train_labels, rows(mnist.test_images), mnist.test_labels


def initial_state(seed: int) -> dict:
    """Kaiming-uniform weights U(+-sqrt(6 / fan_in)) and biases U(+-1/sqrt(fan_in)), as tinytorch's Linear."""
    import numpy as np

    rng = np.random.default_rng(seed)
    state = {}
    for i, (fan_in, fan_out) in enumerate(zip(SIZES, SIZES[1:])):
        bound = np.sqrt(6.0 / fan_in)
        state[f"{2 * i}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        state[f"{2 * i}.bias"] = rng.uniform(-1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in), fan_out).astype(np.float32)
    return state


def train_to_target(args, epoch, model, loss_fn, optimizer, accuracy):
    """Train until the first evaluation (every --eval-every steps) at or above --target, for at most
    --max-epochs passes over epoch() (an iterable of (x, y) batches), spelled the same for both
    frameworks. Returns (seconds, steps, accuracy); seconds is inf when the target was not reached."""
    start, step = time.perf_counter(), 0
    for _ in range(args.max_epochs):
        for x, y in epoch():
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % args.eval_every == 0 and (acc := accuracy()) >= args.target:
                return time.perf_counter() - start, step, acc
    return float("inf"), step, accuracy()


def run_tinytorch(args, data):
    import numpy as np

    import tinytorch.autograd as autograd
    from tinytorch.activations import ReLU
    from tinytorch.data import DataLoader, TensorDataset
    from tinytorch.layers import Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.tensor import Tensor

    x_train, y_train, x_test, y_test = data
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    model.load_state_dict(initial_state(args.seed))
    optimizer = Adam(model.parameters(), lr=args.lr)
    loss_fn = CrossEntropyLoss()
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True,
                        generator=np.random.default_rng(args.seed))
    x_eval = Tensor(x_test)

    def accuracy():
        with autograd.no_grad():
            return float(np.mean(model(x_eval).numpy().argmax(axis=1) == y_test))

    return train_to_target(args, lambda: loader, model, loss_fn, optimizer, accuracy)


def run_torch(args, data):
    import numpy as np
    import torch

    x_train, y_train, x_test, y_test = data
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                torch.nn.ReLU(), torch.nn.Linear(128, 10))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in initial_state(args.seed).items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    x_eval, y_eval = torch.from_numpy(x_test), torch.from_numpy(y_test)
    rng = np.random.default_rng(args.seed)  # the same epoch orders as the tinytorch DataLoader

    def accuracy():
        with torch.no_grad():
            return float((model(x_eval).argmax(dim=1) == y_eval).float().mean())

    def epoch():
        n, bs = len(xt), args.batch_size
        order = torch.from_numpy(rng.permutation(n))
        for b in range((n + bs - 1) // bs):
            idx = order[b * bs:(b + 1) * bs]
            yield xt[idx], yt[idx]

    return train_to_target(args, epoch, model, loss_fn, optimizer, accuracy)


def worker(args) -> int:
    paired.start_worker(args.worker)
    data = prepare()
    seconds, steps, acc = (run_tinytorch if args.worker == "tinytorch" else run_torch)(args, data)
    return paired.report({"seconds": seconds, "steps": steps, "accuracy": acc, **paired.framework_info(args.worker)})


# -- the parent: alternate the workers, pair them, report ----------------------------------


def run_worker(framework: str, threads: int, seed: int, args) -> dict:
    env = {"TINYTORCH_DATA": str(Path(args.data_dir).resolve())} if args.data_dir else {}
    flags = paired.worker_flags(args, "impl", "target", "batch_size", "lr", "eval_every", "max_epochs")
    return paired.run_worker(__file__, framework, threads, args.impl, flags + ["--seed", str(seed)], env=env,
                             what="run")


def seconds_per_step(run: dict) -> float:
    return run["seconds"] / run["steps"]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    print(f"MNIST time to {args.target:.0%} test accuracy: 784-256-128-10 MLP, Adam lr {args.lr}, batch"
          f" {args.batch_size}, evaluation every {args.eval_every} steps; tinytorch={args.impl};"
          f" {paired.cpu_count()} CPU(s)")
    print(f"each run in its own process, ABBA order, {args.repeats} pair(s) per thread count;"
          f" allocator: {paired.allocator_settings()}", flush=True)
    verdicts = []
    for threads in args.threads:
        def run(name: str, repeat: int) -> dict:
            result = run_worker(name, threads, args.seed + repeat, args)
            extra = f", torch threads {result['torch_threads']}" if "torch_threads" in result else ""
            print(f"  {threads} thread(s) [{repeat + 1}/{args.repeats}] seed {args.seed + repeat} {name:9s}:"
                  f" {result['seconds']:7.2f} s, {result['steps']} steps"
                  f" ({1e3 * seconds_per_step(result):.2f} ms/step), test accuracy {result['accuracy']:.4f}"
                  f" (OpenBLAS threads {result['blas_threads']}{extra})", flush=True)
            return result

        result = paired.compare(args.repeats, run, order=ORDER)
        ratio, per_step = result.ratio("seconds"), result.ratios(seconds_per_step)
        verdicts.append((f"{threads} thread(s)", ratio))
        print(f"{threads} thread(s): tinytorch {result.median('tinytorch', 'seconds'):.2f} s / PyTorch"
              f" {result.median('pytorch', 'seconds'):.2f} s; ratio {ratio:.2f}x"
              f" ({paired.spread(result.ratios('seconds'), 'pairs')}; target <= {args.max_ratio:g}x);"
              f" per step (training + evaluations / steps) {result.ratio(seconds_per_step):.2f}x"
              f" (range {min(per_step):.2f}..{max(per_step):.2f})", flush=True)
    return paired.verdict("time-to-target ratio tinytorch / pytorch", verdicts, args.max_ratio, unit="x")


if __name__ == "__main__":
    raise SystemExit(main())
