"""Benchmark: one training step of a 784-256-128-10 ReLU MLP, tinytorch vs PyTorch (CPU).

One step = forward, cross-entropy loss, backward, Adam update, at batch 128 in
float32. Both frameworks run in this one process on the same data and the same
initial weights, with the same number of BLAS / intra-op threads; each is warmed
up, then timed `--repeat` times, and the medians are compared. The target is
tinytorch <= 1.5x PyTorch's time.

    python milestones/benchmarks/mlp_step.py                 # reference tinytorch
    python milestones/benchmarks/mlp_step.py --impl katas    # your katas
    python milestones/benchmarks/mlp_step.py --threads 1

This is a script, not a test: it prints the measurements and exits 0 (1 if the
ratio is above --target, so CI can flag a regression).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

TARGET_MISSED = 3  # exit code when the ratio misses its target (a crash exits 1)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="reference", help="TINYTORCH_IMPL (default: reference)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS / torch threads (default: what numpy's BLAS uses, else the CPU count)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--target", type=float, default=1.5)
    return parser.parse_args(argv)


def blas_threads(requested: int | None) -> int:
    """Pin numpy's BLAS and torch to the same thread count (threadpoolctl if available)."""
    env = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    count = requested or (int(env) if env else cores)  # OpenBLAS defaults to one thread per core
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(count)
    except ImportError:  # the env vars below only work before numpy is imported
        pass
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(count)
    return count


def blocked_medians(steps, warmup: int, repeat: int, rounds: int = 5) -> list[float]:
    """Median time of each step, measured in alternating blocks (AAAA BBBB AAAA BBBB ...).

    Blocks rather than strict ABAB alternation: both numpy's OpenBLAS and torch's OpenMP keep
    their worker threads spinning for a while after each call, and with strict alternation the
    idle framework's spinning threads steal cores from the busy one. Each block starts with
    `warmup` untimed runs; several rounds spread machine noise over both frameworks alike.
    """
    samples: list[list[float]] = [[] for _ in steps]
    per_round = max(1, repeat // rounds)
    for _ in range(rounds):
        for step, times in zip(steps, samples):
            for _ in range(warmup):
                step()
            for _ in range(per_round):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
    return [statistics.median(times) for times in samples]


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["TINYTORCH_IMPL"] = args.impl
    threads = blas_threads(args.threads)

    import numpy as np
    import torch

    torch.set_num_threads(threads)

    import tinytorch.autograd  # noqa: F401
    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential, manual_seed
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.tensor import Tensor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, args.batch).astype(np.int64)

    manual_seed(0)
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    reference = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                    torch.nn.ReLU(), torch.nn.Linear(128, 10))
    reference.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})

    opt = Adam(model.parameters(), lr=1e-3)
    loss_fn = CrossEntropyLoss()
    xt, yt = Tensor(x), Tensor(y)

    def tinytorch_step():
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()

    torch_opt = torch.optim.Adam(reference.parameters(), lr=1e-3)
    torch_loss = torch.nn.CrossEntropyLoss()
    x_torch, y_torch = torch.from_numpy(x), torch.from_numpy(y)

    def torch_step():
        torch_opt.zero_grad()
        loss = torch_loss(reference(x_torch), y_torch)
        loss.backward()
        torch_opt.step()

    tt, th = blocked_medians([tinytorch_step, torch_step], args.warmup, args.repeat)

    flops = 2 * args.batch * (784 * 256 + 256 * 128 + 128 * 10) * 3  # forward + 2x backward matmuls
    params = model.num_parameters()
    print(f"MLP 784-256-128-10, batch {args.batch}, float32, {params:,} parameters, {threads} thread(s)")
    print(f"numpy {np.__version__}, torch {torch.__version__}, tinytorch={args.impl}")
    print(f"one step (forward + loss + backward + Adam), median of {args.repeat} runs in 5 alternating blocks, each after {args.warmup} warm-up runs:")
    print(f"  tinytorch: {tt * 1e3:8.3f} ms  ({flops / tt / 1e9:6.1f} GFLOP/s matmul-equivalent)")
    print(f"  pytorch:   {th * 1e3:8.3f} ms  ({flops / th / 1e9:6.1f} GFLOP/s)")
    ratio = tt / th
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"warning: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores - other processes compete"
              " for the CPU and multi-threaded timings are unreliable; compare with --threads 1")
    print(f"ratio tinytorch / pytorch = {ratio:.2f}  (target <= {args.target})")
    return 0 if ratio <= args.target else TARGET_MISSED


if __name__ == "__main__":
    raise SystemExit(main())
