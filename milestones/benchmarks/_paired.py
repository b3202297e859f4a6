"""The measurement protocol the tinytorch-vs-PyTorch benchmarks share (mlp_step.py, cnn_step.py,
gpt_step.py, mnist_time_to_target.py; kv_cache.py uses its thread pinning, ABBA order and verdict).

Why each piece is there:

* One framework per process. `run_worker` starts this script again with `--worker NAME`: the two
  frameworks never share a malloc heap, a BLAS/OpenMP thread pool or each other's spinning worker
  threads, and the tinytorch process never imports torch.
* Threads are pinned before the process starts. numpy's OpenBLAS reads OPENBLAS_NUM_THREADS (and
  torch reads OMP/MKL_NUM_THREADS) once, at import: setting them later has no effect, so the parent
  puts them into the worker's environment (`thread_env`) and the worker reads them back
  (`framework_info`: OpenBLAS through its C API, torch.get_num_threads()) so that the printout shows
  what really ran, not what was asked for.
* ABBA order (`abba`, `compare`). A machine drifts (other load, thermal state); running
  A B B A A B ... and pairing the two runs of a round that sat next to each other in time
  cancels a linear drift that a fixed A-then-B order would charge to one side.
* Warm-up, then the median (`time_steps`). The first steps pay for lazy imports, allocator growth
  and caches; the median of the timed steps ignores the odd preempted one. Process CPU time is
  recorded too: with one thread it hardly moves when other processes share the cores.
* The verdict is the median of the per-round ratios, with their min..max printed as the noise
  (`spread`), never one lucky draw.
* Exit codes (`verdict`), which .ci/run relies on: 0 = every ratio within its target,
  3 (TARGET_MISSED) = a ratio missed it; anything else (1 from an exception or SystemExit with a
  message) = the benchmark itself is broken.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

TARGET_MISSED = 3  # exit code when a ratio misses its target (a crash exits 1)
FRAMEWORKS = ("tinytorch", "pytorch")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
ROOT = Path(__file__).resolve().parents[2]


# -- command line -----------------------------------------------------------------------------


def comma_list(kind: Callable = int, allowed: tuple[str, ...] | None = None):
    """An argparse type for "1" or "1,2" (positive ints), or for names out of `allowed`."""
    def parse(text: str) -> list:
        try:
            items = [kind(part) for part in text.split(",") if part.strip()]
        except ValueError:
            items = []
        if not items or (allowed is None and min(items) < 1) or (allowed and not set(items) <= set(allowed)):
            wanted = f"any of {', '.join(allowed)}" if allowed else "positive integers such as 1 or 1,2"
            raise argparse.ArgumentTypeError(f"expected {wanted}, comma-separated; got {text!r}")
        return items
    return parse


def at_least(minimum: int):
    """An argparse type for an integer >= minimum (a count of steps or rounds)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value
    return parse


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--impl, --threads and the hidden --worker that every paired benchmark has."""
    parser.add_argument("--impl", default="reference", help="TINYTORCH_IMPL (default: reference)")
    parser.add_argument("--threads", type=comma_list(int), default=[1, 2],
                        help="BLAS / torch thread counts to measure, e.g. 1 or 1,2 (default: 1,2)")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)


def add_timing_arguments(parser: argparse.ArgumentParser, *, warmup: int, repeat: int, rounds: int,
                         min_warmup: int = 0) -> None:
    """--warmup, --repeat, --rounds of a per-step benchmark (see `time_steps` and `compare`)."""
    parser.add_argument("--warmup", type=at_least(min_warmup), default=warmup,
                        help="untimed steps at the start of each worker")
    parser.add_argument("--repeat", type=at_least(1), default=repeat,
                        help="timed steps per worker (their median counts)")
    parser.add_argument("--rounds", type=at_least(1), default=rounds,
                        help="pairs of worker processes per thread count")


# -- the worker side: one framework in this process -------------------------------------------


def start_worker(framework: str) -> int:
    """Call first in a worker, before any model is built. Returns the pinned thread count.

    The checkout goes on sys.path (tinytorch, and the data loaders of the milestones); a PyTorch
    worker also calls torch.set_num_threads, which its intra-op pool honours from then on."""
    threads = int(os.environ["OMP_NUM_THREADS"])
    sys.path.insert(0, str(ROOT))
    if framework == "pytorch":
        import torch

        torch.set_num_threads(threads)
    return threads


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


def framework_info(framework: str) -> dict:
    """What actually runs in this worker: versions and thread counts as the libraries report them."""
    import numpy as np

    info = {"threads": int(os.environ["OMP_NUM_THREADS"]), "numpy": np.__version__,
            "blas_threads": numpy_blas_threads()}
    if framework == "pytorch":
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def training_step(model, loss_fn, optimizer, x, y) -> Callable[[], None]:
    """One training step, spelled the same for a tinytorch and a torch model (zero_grad, forward,
    loss, backward, update): both workers time the same sequence of calls."""
    def step() -> None:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    return step


def time_steps(step: Callable[[], object], warmup: int, repeat: int) -> dict:
    """`warmup` untimed calls, then the medians of `repeat` timed ones: wall clock ("median") and this
    process's CPU time ("cpu_median", all threads), in seconds."""
    for _ in range(warmup):
        step()
    times, cpu_times = [], []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return {"median": statistics.median(times), "cpu_median": statistics.median(cpu_times)}


def report(result: dict) -> int:
    """A worker's result: one JSON line on stdout, the last one (what `run_worker` reads). Returns 0."""
    print(json.dumps(result))
    return 0


# -- the parent side: pin, alternate, pair, judge ---------------------------------------------


def thread_env(threads: int) -> dict[str, str]:
    """The variables that fix the BLAS / OpenMP thread count; they only act on a process that has
    not imported numpy or torch yet."""
    return {var: str(threads) for var in THREAD_VARS}


def worker_flags(args: argparse.Namespace, *names: str) -> list[str]:
    """The parent's options `names` (argparse dests) as command-line flags for a worker:
    "batch_size" -> ["--batch-size", "128"]; a True store_true option -> its flag alone; a
    comma_list -> its items joined by commas."""
    flags = []
    for name in names:
        value, flag = getattr(args, name), "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags += [flag] if value else []
        elif isinstance(value, (list, tuple)):
            flags += [flag, ",".join(map(str, value))]
        else:
            flags += [flag, str(value)]
    return flags


def run_worker(script: str, framework: str, threads: int, impl: str, flags: list[str],
               env: dict[str, str] | None = None, what: str = "worker") -> dict:
    """Run `script --worker framework *flags` in a fresh process with `threads` pinned and
    TINYTORCH_IMPL=impl; return the JSON of its last stdout line. A failed worker stops the
    benchmark (exit 1, its stderr shown): a crash must never read as a measurement."""
    env = {**os.environ, "TINYTORCH_IMPL": impl, **thread_env(threads), **(env or {})}
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", framework, *flags]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {framework} {what} failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def abba(r: int, pair: tuple = FRAMEWORKS) -> tuple:
    """The order of round r: `pair` in even rounds, reversed in odd ones (A B, B A, A B, ...)."""
    return pair if r % 2 == 0 else pair[::-1]


def spread(values: list[float], what: str = "paired rounds") -> str:
    """The text "median of N <what>, range lo..hi": how a verdict was formed and how noisy it was."""
    return f"median of {len(values)} {what}, range {min(values):.2f}..{max(values):.2f}"


@dataclass
class Comparison:
    """The workers' results of one paired measurement, by framework, in round order."""

    runs: dict[str, list[dict]]

    def values(self, framework: str, key: str | Callable[[dict], float] = "median") -> list[float]:
        get = key if callable(key) else (lambda run: run[key])
        return [get(run) for run in self.runs[framework]]

    def median(self, framework: str, key: str | Callable[[dict], float] = "median") -> float:
        return statistics.median(self.values(framework, key))

    def ratios(self, key: str | Callable[[dict], float] = "median") -> list[float]:
        """tinytorch / pytorch of each round: the two runs that sat next to each other in time."""
        return [t / p for t, p in zip(self.values("tinytorch", key), self.values("pytorch", key))]

    def ratio(self, key: str | Callable[[dict], float] = "median") -> float:
        """The verdict: the median of the per-round ratios."""
        return statistics.median(self.ratios(key))

    def last(self, framework: str) -> dict:
        """The latest run of a framework (its versions and thread read-back)."""
        return self.runs[framework][-1]


def compare(rounds: int, run: Callable[[str, int], dict], order: tuple = FRAMEWORKS) -> Comparison:
    """`rounds` rounds in ABBA order; run(framework, round) runs one worker and returns its result."""
    runs: dict[str, list[dict]] = {name: [] for name in order}
    for r in range(rounds):
        for name in abba(r, order):
            runs[name].append(run(name, r))
    return Comparison(runs)


def measure(script: str, args: argparse.Namespace, threads: int, flags: list[str], what: str = "worker") -> Comparison:
    """The per-step benchmarks' comparison: --rounds ABBA rounds of `script`'s two workers with
    `threads` pinned, each run with `flags` (see `worker_flags`)."""
    return compare(args.rounds, lambda name, _: run_worker(script, name, threads, args.impl, flags, what=what))


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask), else all of them."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def allocator_settings() -> str:
    """Which malloc both workers use, with the MALLOC_* / GLIBC_TUNABLES / LD_PRELOAD they inherit."""
    malloc = {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))}
    libc = " ".join(platform.libc_ver()) or "unknown libc"
    settings = ", ".join(f"{k}={v}" for k, v in sorted(malloc.items())) or "no MALLOC_* / GLIBC_TUNABLES set (defaults)"
    return f"{libc} malloc in both processes; {settings}"


def print_protocol(args: argparse.Namespace, then: str = "") -> None:
    """Print how `measure` runs with these --rounds/--warmup/--repeat (+ `then`, what a worker does
    after the timed steps), and which allocator both workers use."""
    print(f"each framework in its own process, ABBA order, {args.rounds} rounds; per process {args.warmup} warm-up"
          f" steps, then the median of {args.repeat} timed steps{then}")
    print(f"allocator: {allocator_settings()}")


def readback(tinytorch: dict, pytorch: dict) -> str:
    """The thread counts the two workers reported (`framework_info`), for the printout."""
    return (f"tinytorch numpy {tinytorch['numpy']} with OpenBLAS threads = {tinytorch['blas_threads']};"
            f" torch {pytorch['torch']} with torch.get_num_threads() = {pytorch['torch_threads']}")


def rounds_ms(values: list[float], digits: int) -> str:
    """Per-round medians in milliseconds, for the printout."""
    return " ".join(f"{t * 1e3:.{digits}f}" for t in values)


def warn_if_loaded(cores: int, note: str = "") -> None:
    """Say so when the load average exceeds the cores: the printed ranges then include other load."""
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > cores:
        print(f"\nwarning: load average {os.getloadavg()[0]:.1f} on {cores} cores - other processes compete for"
              f" the CPU; the ranges above show how much that moved the figures{note}")


def verdict(title: str, measured: list[tuple[str, float]], target: float, *, higher_is_better: bool = False,
            unit: str = "") -> int:
    """Print the closing line "<title>: <label> <value>, ... (target <= t)" and return the exit code:
    0 when every value is within the target (<= it, or >= it for a speed-up), TARGET_MISSED when not."""
    shown = ", ".join(f"{label} {value:.2f}{unit}" for label, value in measured)
    print(f"\n{title}: {shown} (target {'>=' if higher_is_better else '<='} {target:g}{unit})")
    within = all((value >= target) if higher_is_better else (value <= target) for _, value in measured)
    return 0 if within else TARGET_MISSED
