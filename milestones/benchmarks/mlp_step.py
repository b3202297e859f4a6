"""Benchmark: one training step of a 784-256-128-10 ReLU MLP, tinytorch vs PyTorch (CPU).

One step = forward, cross-entropy loss, backward, Adam update, at batch 128 in float32, on the
same data from the same initial weights. The target is tinytorch <= 1.0x PyTorch's time.

    python milestones/benchmarks/mlp_step.py                  # reference tinytorch, 1 and 2 threads
    python milestones/benchmarks/mlp_step.py --threads 1      # one thread count only (what CI runs)
    python milestones/benchmarks/mlp_step.py --impl katas     # your katas

How it is measured, so that neither framework disturbs the other:

* Each framework runs in its own fresh Python process (this script with `--worker`): the two
  never share a malloc heap, a BLAS/OpenMP thread pool, or each other's spinning worker
  threads, and the tinytorch process never imports torch.
* The thread count is fixed before each worker starts (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS,
  MKL_NUM_THREADS; torch.set_num_threads too) and read back inside the worker, where it can be.
* The parent runs the workers alternately, ABBA (tinytorch, pytorch, pytorch, tinytorch, ...),
  for --rounds rounds. A worker warms up (--warmup steps), then times --repeat steps and
  reports their median. A round's ratio pairs the two workers that ran next to each other in
  time; the verdict is the median of those ratios, and their min..max is printed as the noise.
* Each worker also records the process CPU time of every step. With 1 thread it hardly changes
  when other processes share the cores (no spinning worker threads), so its ratio is printed
  too, as a cross-check of the wall-clock verdict on a busy machine.
* Memory allocation is glibc malloc in both processes, with the environment's MALLOC_*
  settings (printed; none set means glibc's defaults). Both workers inherit the same environment.

This is a script, not a test: it prints the measurements and exits 0 when every measured ratio
is within --target, 3 when one is above (a crash exits 1).
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

TARGET_MISSED = 3  # exit code when a ratio misses its target (a crash exits 1)
FRAMEWORKS = ("tinytorch", "pytorch")
SIZES = (784, 256, 128, 10)
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

ROOT = Path(__file__).resolve().parents[2]


def thread_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--threads needs positive integers such as 1 or 1,2, got {text!r}")
    return counts


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="reference", help="TINYTORCH_IMPL (default: reference)")
    parser.add_argument("--threads", type=thread_counts, default=[1, 2],
                        help="BLAS / torch thread counts to measure, e.g. 1 or 1,2 (default: 1,2)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps at the start of each worker")
    parser.add_argument("--repeat", type=int, default=60, help="timed steps per worker (their median counts)")
    parser.add_argument("--rounds", type=int, default=5, help="pairs of worker processes per thread count")
    parser.add_argument("--target", type=float, default=1.0)
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- the workers: one framework per process ------------------------------------------------


def initial_state(seed: int = 0) -> dict:
    """The same starting weights for both frameworks: torch.nn.Linear's default init, from numpy."""
    import numpy as np

    rng = np.random.default_rng(seed)
    state = {}
    for i, (fan_in, fan_out) in enumerate(zip(SIZES, SIZES[1:])):
        bound = 1.0 / np.sqrt(fan_in)
        state[f"{2 * i}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        state[f"{2 * i}.bias"] = rng.uniform(-bound, bound, fan_out).astype(np.float32)
    return state


def numpy_blas_threads() -> int | None:
    """Threads of numpy's bundled OpenBLAS, read back through its C API (None when unknown)."""
    import ctypes
    import glob

    import numpy as np

    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*"))
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(handle, name):
                return int(getattr(handle, name)())
    return None


def tinytorch_step(batch: int):
    import numpy as np

    import tinytorch.autograd  # noqa: F401  (registers the backward engine)
    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.tensor import Tensor

    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(batch, SIZES[0])).astype(np.float32))
    y = Tensor(rng.integers(0, SIZES[-1], batch).astype(np.int64))
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    model.load_state_dict(initial_state())
    optimizer, loss_fn = Adam(model.parameters(), lr=1e-3), CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    info = {"numpy": np.__version__, "blas_threads": numpy_blas_threads()}
    return step, info


def pytorch_step(batch: int, threads: int):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(batch, SIZES[0])).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, SIZES[-1], batch).astype(np.int64))
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                torch.nn.ReLU(), torch.nn.Linear(128, 10))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in initial_state().items()})
    optimizer, loss_fn = torch.optim.Adam(model.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    info = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "numpy": np.__version__, "blas_threads": numpy_blas_threads()}
    return step, info


def worker(args: argparse.Namespace) -> int:
    """Time one framework in this process; print one JSON line."""
    threads = int(os.environ["OMP_NUM_THREADS"])
    if args.worker == "tinytorch":
        sys.path.insert(0, str(ROOT))
        step, info = tinytorch_step(args.batch)
    else:
        step, info = pytorch_step(args.batch, threads)
    for _ in range(args.warmup):
        step()
    times, cpu_times = [], []
    for _ in range(args.repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    print(json.dumps({"median": statistics.median(times), "cpu_median": statistics.median(cpu_times),
                      "threads": threads, **info}))
    return 0


# -- the parent: alternate the workers, pair them, report ----------------------------------


def run_worker(framework: str, threads: int, args: argparse.Namespace) -> dict:
    env = {**os.environ, "TINYTORCH_IMPL": args.impl, **{var: str(threads) for var in THREAD_VARS}}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", framework, "--impl", args.impl,
           "--batch", str(args.batch), "--warmup", str(args.warmup), "--repeat", str(args.repeat)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {framework} worker failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(threads: int, args: argparse.Namespace) -> dict:
    """ABBA over rounds: round r runs (tinytorch, pytorch) if r is even, else (pytorch, tinytorch)."""
    medians: dict[str, list[float]] = {name: [] for name in FRAMEWORKS}
    cpu: dict[str, list[float]] = {name: [] for name in FRAMEWORKS}
    infos: dict[str, dict] = {}
    for r in range(args.rounds):
        for name in (FRAMEWORKS if r % 2 == 0 else FRAMEWORKS[::-1]):
            result = run_worker(name, threads, args)
            medians[name].append(result["median"])
            cpu[name].append(result["cpu_median"])
            infos[name] = result
    ratios = [t / p for t, p in zip(medians["tinytorch"], medians["pytorch"])]
    return {"threads": threads, "medians": medians, "cpu": cpu, "ratios": ratios, "infos": infos,
            "ratio": statistics.median(ratios)}


def allocator_settings() -> str:
    malloc = {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))}
    libc = " ".join(platform.libc_ver()) or "unknown libc"
    settings = ", ".join(f"{k}={v}" for k, v in sorted(malloc.items())) or "no MALLOC_* / GLIBC_TUNABLES set (defaults)"
    return f"{libc} malloc in both processes; {settings}"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    flops = 2 * args.batch * (784 * 256 + 256 * 128 + 128 * 10) * 3  # forward + 2x backward matmuls
    print(f"MLP 784-256-128-10, batch {args.batch}, float32, one step = forward + cross-entropy + backward + Adam;"
          f" tinytorch={args.impl}; {cores} CPU(s)")
    print(f"each framework in its own process, ABBA order, {args.rounds} rounds; per process {args.warmup} warm-up"
          f" steps, then the median of {args.repeat} timed steps")
    print(f"allocator: {allocator_settings()}")
    results = []
    for threads in args.threads:
        result = measure(threads, args)
        results.append(result)
        tt, th = (statistics.median(result["medians"][name]) for name in FRAMEWORKS)
        info_t, info_p = result["infos"]["tinytorch"], result["infos"]["pytorch"]
        print(f"\n{threads} thread(s): tinytorch numpy {info_t['numpy']} with OpenBLAS threads ="
              f" {info_t['blas_threads']}; torch {info_p['torch']} with torch.get_num_threads() ="
              f" {info_p['torch_threads']}")
        print(f"  tinytorch: {tt * 1e3:7.3f} ms  ({flops / tt / 1e9:5.1f} GFLOP/s matmul-equivalent)"
              f"  rounds: {' '.join(f'{t * 1e3:.3f}' for t in result['medians']['tinytorch'])}")
        print(f"  pytorch:   {th * 1e3:7.3f} ms  ({flops / th / 1e9:5.1f} GFLOP/s)                    "
              f"  rounds: {' '.join(f'{t * 1e3:.3f}' for t in result['medians']['pytorch'])}")
        print(f"  ratio tinytorch / pytorch = {result['ratio']:.2f}  (median of {args.rounds} paired rounds,"
              f" range {min(result['ratios']):.2f}..{max(result['ratios']):.2f}; target <= {args.target})")
        if threads == 1:  # CPU time barely moves when other processes share the cores (1 thread: no spinning)
            cpu = [t / p for t, p in zip(result["cpu"]["tinytorch"], result["cpu"]["pytorch"])]
            print(f"  CPU-time ratio (less sensitive to other load) = {statistics.median(cpu):.2f}"
                  f"  (range {min(cpu):.2f}..{max(cpu):.2f})")
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > (cores or 1):
        print(f"\nwarning: load average {os.getloadavg()[0]:.1f} on {cores} cores - other processes compete for"
              " the CPU; the ranges above show how much that moved the figures. Multi-threaded figures are"
              " unreliable then (preempted BLAS/OpenMP threads stall each step); the 1-thread CPU-time ratio is not")
    summary = ", ".join(f"{r['threads']} thread(s) {r['ratio']:.2f}" for r in results)
    print(f"\nratio tinytorch / pytorch: {summary} (target <= {args.target})")
    return 0 if all(r["ratio"] <= args.target for r in results) else TARGET_MISSED


if __name__ == "__main__":
    raise SystemExit(main())
