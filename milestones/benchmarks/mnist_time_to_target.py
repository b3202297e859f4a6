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

How it is measured (as milestones/benchmarks/mlp_step.py): each run is a fresh Python process
running one framework only (the tinytorch process never imports torch), with the thread count
fixed before it starts (OPENBLAS/OMP/MKL_NUM_THREADS, torch.set_num_threads) and read back;
runs alternate ABBA (pytorch, tinytorch, tinytorch, pytorch, ...) `--repeats` times per thread
count; a repeat's ratio pairs two neighbouring runs and the verdict is the median ratio, with
the min..max printed as the noise. Pair r uses seed `--seed + r` for both runs: the two
frameworks round differently, so their trajectories part after a few hundred steps and which
one first crosses 97% at an evaluation is partly luck; several seeds put that luck into the
median instead of into one fixed draw. The time per step is printed too. Memory allocation is glibc malloc with the environment's
MALLOC_* settings (printed). Target: tinytorch <= 1.0x PyTorch's time.

Exit code 0 when, at every thread count, both frameworks reached the target accuracy and the
ratio is within --max-ratio; 3 when not (a crash exits 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MISSED = 3  # exit code when the ratio misses its target (a crash exits 1)
FRAMEWORKS = ("pytorch", "tinytorch")
SIZES = (784, 256, 128, 10)
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
ROOT = Path(__file__).resolve().parents[2]


def thread_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--threads needs positive integers such as 1 or 1,2, got {text!r}")
    return counts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="reference", help="tinytorch implementation (default: reference)")
    parser.add_argument("--data-dir", default=None, help="dataset directory (else $TINYTORCH_DATA or the cache)")
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=100, help="steps between test-set evaluations")
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0, help="pair r uses seed + r (the same for both runs of a pair)")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of runs per thread count; report medians")
    parser.add_argument("--max-ratio", type=float, default=1.0)
    parser.add_argument("--threads", type=thread_counts, default=[1, 2],
                        help="BLAS/OpenMP thread counts to measure, e.g. 1 or 1,2 (default: 1,2)")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
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


def numpy_blas_threads() -> int | None:
    """Threads of numpy's bundled OpenBLAS, read back through its C API (None when unknown)."""
    import ctypes
    import glob

    import numpy as np

    for lib in glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")):
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(handle, name):
                return int(getattr(handle, name)())
    return None


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


def worker(args) -> int:
    threads = int(os.environ["OMP_NUM_THREADS"])
    sys.path.insert(0, str(ROOT))
    data = prepare()
    if args.worker == "tinytorch":
        seconds, steps, acc = run_tinytorch(args, data)
        info = {}
    else:
        import torch

        torch.set_num_threads(threads)
        seconds, steps, acc = run_torch(args, data)
        info = {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    import numpy as np

    print(json.dumps({"seconds": seconds, "steps": steps, "accuracy": acc, "numpy": np.__version__,
                      "blas_threads": numpy_blas_threads(), **info}))
    return 0


# -- the parent: alternate the workers, pair them, report ----------------------------------


def run_worker(framework: str, threads: int, seed: int, args) -> dict:
    env = {**os.environ, "TINYTORCH_IMPL": args.impl, **{var: str(threads) for var in THREAD_VARS}}
    if args.data_dir:
        env["TINYTORCH_DATA"] = str(Path(args.data_dir).resolve())
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", framework, "--impl", args.impl,
           "--target", str(args.target), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
           "--eval-every", str(args.eval_every), "--max-epochs", str(args.max_epochs), "--seed", str(seed)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {framework} run failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def allocator_settings() -> str:
    malloc = {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))}
    libc = " ".join(platform.libc_ver()) or "unknown libc"
    settings = ", ".join(f"{k}={v}" for k, v in sorted(malloc.items())) or "no MALLOC_* / GLIBC_TUNABLES set (defaults)"
    return f"{libc} malloc in both processes; {settings}"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    print(f"MNIST time to {args.target:.0%} test accuracy: 784-256-128-10 MLP, Adam lr {args.lr}, batch"
          f" {args.batch_size}, evaluation every {args.eval_every} steps; tinytorch={args.impl}; {os.cpu_count()} CPUs")
    print(f"each run in its own process, ABBA order, {args.repeats} pair(s) per thread count;"
          f" allocator: {allocator_settings()}", flush=True)
    verdicts = []
    for threads in args.threads:
        runs: dict[str, list[dict]] = {name: [] for name in FRAMEWORKS}
        for repeat in range(args.repeats):
            for name in (FRAMEWORKS if repeat % 2 == 0 else FRAMEWORKS[::-1]):
                result = run_worker(name, threads, args.seed + repeat, args)
                runs[name].append(result)
                extra = f", torch threads {result['torch_threads']}" if "torch_threads" in result else ""
                print(f"  {threads} thread(s) [{repeat + 1}/{args.repeats}] seed {args.seed + repeat} {name:9s}:"
                      f" {result['seconds']:7.2f} s, {result['steps']} steps"
                      f" ({1e3 * result['seconds'] / result['steps']:.2f} ms/step), test accuracy {result['accuracy']:.4f}"
                      f" (OpenBLAS threads {result['blas_threads']}{extra})", flush=True)
        tt = statistics.median(r["seconds"] for r in runs["tinytorch"])
        pt = statistics.median(r["seconds"] for r in runs["pytorch"])
        ratios = [a["seconds"] / b["seconds"] for a, b in zip(runs["tinytorch"], runs["pytorch"])]
        per_step = [(a["seconds"] / a["steps"]) / (b["seconds"] / b["steps"])
                    for a, b in zip(runs["tinytorch"], runs["pytorch"])]
        ratio = statistics.median(ratios)
        verdicts.append((threads, ratio))
        print(f"{threads} thread(s): tinytorch {tt:.2f} s / PyTorch {pt:.2f} s; ratio {ratio:.2f}x (median of"
              f" {len(ratios)} pairs, range {min(ratios):.2f}..{max(ratios):.2f}; goal <= {args.max_ratio:g}x);"
              f" per step (training + evaluations / steps) {statistics.median(per_step):.2f}x"
              f" (range {min(per_step):.2f}..{max(per_step):.2f})", flush=True)
    summary = ", ".join(f"{threads} thread(s) {ratio:.2f}x" for threads, ratio in verdicts)
    print(f"time-to-target ratio tinytorch / PyTorch: {summary} (goal <= {args.max_ratio:g}x)")
    return 0 if all(ratio <= args.max_ratio for _, ratio in verdicts) else TARGET_MISSED


if __name__ == "__main__":
    sys.exit(main())
