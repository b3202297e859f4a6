"""Benchmark: one training step of a 784-256-128-10 ReLU MLP, tinytorch vs PyTorch (CPU).

One step = forward, cross-entropy loss, backward, Adam update, at batch 128 in float32, on the
same data from the same initial weights. The target is tinytorch <= 1.0x PyTorch's time.

    python milestones/benchmarks/mlp_step.py                  # reference tinytorch, 1 and 2 threads
    python milestones/benchmarks/mlp_step.py --threads 1      # one thread count only (what CI runs)
    python milestones/benchmarks/mlp_step.py --impl katas     # your katas

How it is measured, so that neither framework disturbs the other (the protocol is _paired.py's,
shared by the other paired benchmarks):

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
import statistics

import _paired as paired

SIZES = (784, 256, 128, 10)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    paired.add_common_arguments(parser)
    parser.add_argument("--batch", type=int, default=128)
    paired.add_timing_arguments(parser, warmup=20, repeat=60, rounds=5)
    parser.add_argument("--target", type=float, default=1.0)
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
    return paired.training_step(model, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-3), x, y)


def pytorch_step(batch: int):
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(batch, SIZES[0])).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, SIZES[-1], batch).astype(np.int64))
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                torch.nn.ReLU(), torch.nn.Linear(128, 10))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in initial_state().items()})
    return paired.training_step(model, torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-3),
                                x, y)


def worker(args: argparse.Namespace) -> int:
    """Time one framework in this process; print one JSON line."""
    paired.start_worker(args.worker)
    step = (tinytorch_step if args.worker == "tinytorch" else pytorch_step)(args.batch)
    return paired.report({**paired.time_steps(step, args.warmup, args.repeat), **paired.framework_info(args.worker)})


# -- the parent: alternate the workers, pair them, report ----------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    cores = paired.cpu_count()
    flops = 2 * args.batch * (784 * 256 + 256 * 128 + 128 * 10) * 3  # forward + 2x backward matmuls
    print(f"MLP 784-256-128-10, batch {args.batch}, float32, one step = forward + cross-entropy + backward + Adam;"
          f" tinytorch={args.impl}; {cores} CPU(s)")
    paired.print_protocol(args)
    flags = paired.worker_flags(args, "impl", "batch", "warmup", "repeat")
    verdicts = []
    for threads in args.threads:
        result = paired.measure(__file__, args, threads, flags)
        ratios, ratio = result.ratios(), result.ratio()
        verdicts.append((f"{threads} thread(s)", ratio))
        tt, th = result.median("tinytorch"), result.median("pytorch")
        print(f"\n{threads} thread(s): {paired.readback(result.last('tinytorch'), result.last('pytorch'))}")
        print(f"  tinytorch: {tt * 1e3:7.3f} ms  ({flops / tt / 1e9:5.1f} GFLOP/s matmul-equivalent)"
              f"  rounds: {paired.rounds_ms(result.values('tinytorch'), 3)}")
        print(f"  pytorch:   {th * 1e3:7.3f} ms  ({flops / th / 1e9:5.1f} GFLOP/s)                    "
              f"  rounds: {paired.rounds_ms(result.values('pytorch'), 3)}")
        print(f"  ratio tinytorch / pytorch = {ratio:.2f}  ({paired.spread(ratios)}; target <= {args.target:g})")
        if threads == 1:  # CPU time barely moves when other processes share the cores (1 thread: no spinning)
            cpu = result.ratios("cpu_median")
            print(f"  CPU-time ratio (less sensitive to other load) = {statistics.median(cpu):.2f}"
                  f"  (range {min(cpu):.2f}..{max(cpu):.2f})")
    paired.warn_if_loaded(cores, ". Multi-threaded figures are unreliable then (preempted BLAS/OpenMP threads"
                                 " stall each step); the 1-thread CPU-time ratio is not")
    return paired.verdict("ratio tinytorch / pytorch", verdicts, args.target)


if __name__ == "__main__":
    raise SystemExit(main())
