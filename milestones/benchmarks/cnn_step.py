"""Benchmark: one training step of LeNet-5 and of the CIFAR-10 CNN, tinytorch vs PyTorch (CPU).

One step = forward, cross-entropy loss, backward, Adam update, in float32, on the same data from
the same initial weights, for the two models of the 1998 milestones:

* lenet: LeNet-5 (milestones/m1998_cnn.py) at batch 64 on 1x28x28 digits,
* cifar: the VGG-style CNN with BatchNorm (milestones/m1998_cifar_cnn.py, --width 16) at batch
  64 on 3x32x32 images, in training mode (BatchNorm uses the batch's statistics).

The target is tinytorch <= 2.0x PyTorch's time for each model.

    python milestones/benchmarks/cnn_step.py                   # reference tinytorch, 1 and 2 threads
    python milestones/benchmarks/cnn_step.py --threads 1       # one thread count only
    python milestones/benchmarks/cnn_step.py --model lenet     # one model only
    python milestones/benchmarks/cnn_step.py --profile         # + where tinytorch's time goes
    python milestones/benchmarks/cnn_step.py --impl katas      # your katas

How it is measured (as milestones/benchmarks/mlp_step.py), so that neither framework disturbs
the other:

* Each framework runs in its own fresh Python process (this script with `--worker`): the two
  never share a malloc heap, a BLAS/OpenMP thread pool, or each other's spinning worker
  threads, and the tinytorch process never imports torch.
* The thread count is fixed before each worker starts (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS,
  MKL_NUM_THREADS; torch.set_num_threads too) and read back inside the worker, where it can be.
* The parent runs the workers alternately, ABBA (tinytorch, pytorch, pytorch, tinytorch, ...),
  for --rounds rounds. A worker warms up (--warmup steps), then times --repeat steps and
  reports their median. A round's ratio pairs the two workers that ran next to each other in
  time; the verdict is the median of those ratios, and their min..max is printed as the noise.

This is a script, not a test: it prints the measurements and exits 0 when every measured ratio
is within --target, 3 when one is above (a crash exits 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MISSED = 3  # exit code when a ratio misses its target (a crash exits 1)
FRAMEWORKS = ("tinytorch", "pytorch")
MODELS = ("lenet", "cifar")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
CIFAR_WIDTH = 16  # m1998_cifar_cnn.py's default --width

ROOT = Path(__file__).resolve().parents[2]


def comma_list(kind, allowed=None):
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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="reference", help="TINYTORCH_IMPL (default: reference)")
    parser.add_argument("--threads", type=comma_list(int), default=[1, 2],
                        help="BLAS / torch thread counts to measure, e.g. 1 or 1,2 (default: 1,2)")
    parser.add_argument("--model", type=comma_list(str, MODELS), default=list(MODELS),
                        help="lenet, cifar or lenet,cifar (default: both)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps at the start of each worker")
    parser.add_argument("--repeat", type=int, default=20, help="timed steps per worker (their median counts)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of worker processes per thread count")
    parser.add_argument("--target", type=float, default=2.0)
    parser.add_argument("--profile", action="store_true",
                        help="also profile tinytorch's step (cProfile, one extra process per model and thread count)")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- the two models, as (name, arguments) layer lists both frameworks build --------------------


def architecture(model: str) -> tuple[tuple[int, int, int], list[tuple]]:
    """(input shape C, H, W; layers) with layers ("conv", c_in, c_out, k, padding, bias), ("bn", c),
    ("relu",), ("pool", k), ("flatten",), ("linear", in, out). Indices match nn.Sequential's."""
    if model == "lenet":
        return (1, 28, 28), [("conv", 1, 6, 5, 2, True), ("relu",), ("pool", 2), ("conv", 6, 16, 5, 0, True),
                             ("relu",), ("pool", 2), ("flatten",), ("linear", 400, 120), ("relu",),
                             ("linear", 120, 84), ("relu",), ("linear", 84, 10)]
    w, layers = CIFAR_WIDTH, []
    for c_in, c_out in ((3, w), (w, 2 * w), (2 * w, 4 * w)):
        for a, b in ((c_in, c_out), (c_out, c_out)):
            layers += [("conv", a, b, 3, 1, False), ("bn", b), ("relu",)]
        layers.append(("pool", 2))
    return (3, 32, 32), layers + [("flatten",), ("linear", 4 * w * 16, 10)]


def initial_state(model: str, seed: int = 0) -> dict:
    """The same starting weights for both frameworks (torch's default init, drawn with numpy)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    state = {}
    for i, layer in enumerate(architecture(model)[1]):
        if layer[0] in ("conv", "linear"):
            shape = (layer[2], layer[1], layer[3], layer[3]) if layer[0] == "conv" else (layer[2], layer[1])
            bound = 1.0 / np.sqrt(np.prod(shape[1:]))
            state[f"{i}.weight"] = rng.uniform(-bound, bound, shape).astype(np.float32)
            if layer[0] == "linear" or layer[5]:
                state[f"{i}.bias"] = rng.uniform(-bound, bound, shape[0]).astype(np.float32)
        elif layer[0] == "bn":
            state[f"{i}.weight"] = np.ones(layer[1], np.float32)
            state[f"{i}.bias"] = np.zeros(layer[1], np.float32)
            state[f"{i}.running_mean"] = np.zeros(layer[1], np.float32)
            state[f"{i}.running_var"] = np.ones(layer[1], np.float32)
            state[f"{i}.num_batches_tracked"] = np.array(0, np.int64)
    return state


def batch(model: str, size: int):
    import numpy as np

    rng = np.random.default_rng(1)
    shape = architecture(model)[0]
    return rng.normal(size=(size, *shape)).astype(np.float32), rng.integers(0, 10, size).astype(np.int64)


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


# -- the workers: one framework per process ------------------------------------------------


def tinytorch_step(model_name: str, size: int):
    import numpy as np

    import tinytorch.autograd  # noqa: F401  (registers the backward engine)
    from tinytorch.activations import ReLU
    from tinytorch.conv import BatchNorm2d, Conv2d, MaxPool2d
    from tinytorch.layers import Flatten, Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.tensor import Tensor

    build = {"conv": lambda a, b, k, p, bias: Conv2d(a, b, k, padding=p, bias=bias), "bn": BatchNorm2d,
             "relu": ReLU, "pool": MaxPool2d, "flatten": Flatten, "linear": Linear}
    model = Sequential(*(build[kind](*params) for kind, *params in architecture(model_name)[1]))
    model.load_state_dict(initial_state(model_name))
    model.train()
    x, y = batch(model_name, size)
    x, y = Tensor(x), Tensor(y)
    optimizer, loss_fn = Adam(model.parameters(), lr=1e-3), CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    return step, {"numpy": np.__version__, "blas_threads": numpy_blas_threads()}


def pytorch_step(model_name: str, size: int, threads: int):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    nn = torch.nn
    build = {"conv": lambda a, b, k, p, bias: nn.Conv2d(a, b, k, padding=p, bias=bias), "bn": nn.BatchNorm2d,
             "relu": nn.ReLU, "pool": nn.MaxPool2d, "flatten": nn.Flatten, "linear": nn.Linear}
    model = nn.Sequential(*(build[kind](*params) for kind, *params in architecture(model_name)[1]))
    state = model.state_dict()
    state.update({k: torch.from_numpy(v) for k, v in initial_state(model_name).items()})
    model.load_state_dict(state)
    model.train()
    x, y = (torch.from_numpy(a) for a in batch(model_name, size))
    optimizer, loss_fn = torch.optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    return step, {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                  "numpy": np.__version__, "blas_threads": numpy_blas_threads()}


# Where tinytorch's time goes: each Python function's own time (tottime) by what it does. Time in C
# functions (numpy's matmul, copies, reductions) is charged to the Python function that called them.
PROFILE_GROUPS = (
    ("conv forward (im2col + GEMM)", ("conv2d", "im2col", "_pad", "_offset_view", "_conv_padding")),
    ("conv backward (2 GEMMs + col2im)", ("_conv2d_backward", "col2im", "_crop")),
    ("max-pool forward", ("max_pool2d", "_pool_args")),
    ("max-pool backward", ("_max_pool2d_backward",)),
    ("batch norm forward", ("batch_norm",)),
    ("batch norm backward", ("_batch_norm_backward",)),
    ("linear forward + backward", ("linear", "_linear_backward", "matmul", "_matmul_backward")),
    ("relu forward + backward", ("relu", "_relu_backward")),
    ("cross-entropy forward + backward", ("cross_entropy", "_cross_entropy_backward", "log_softmax")),
    ("Adam step + zero_grad", ("step", "zero_grad")),
)
OTHER = "other (autograd engine, Tensor, Python)"


def _group(function: str) -> str:
    for name, functions in PROFILE_GROUPS:
        if function in functions:
            return name
    return OTHER


def profile(step, steps: int = 10) -> dict:
    """cProfile `steps` steps; seconds per step by group, and the top functions (C time charged to callers)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile(time.process_time)  # CPU time: robust to other processes on the cores
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    own: dict[tuple, float] = {}
    for key, (_, _, tottime, _, callers) in stats.items():
        python_callers = {caller: edge[2] for caller, edge in callers.items() if caller[0] != "~"}
        if key[0] == "~" and python_callers:  # a C function: split its time over its Python callers
            for caller, seconds in python_callers.items():
                own[caller] = own.get(caller, 0.0) + seconds
        else:
            own[key] = own.get(key, 0.0) + tottime
    total = sum(own.values())
    groups = {name: 0.0 for name, _ in PROFILE_GROUPS}
    groups[OTHER] = 0.0
    for (filename, _, function), seconds in own.items():
        in_tinytorch = str(ROOT) in filename
        groups[_group(function) if in_tinytorch else OTHER] += seconds / steps
    top = sorted(((seconds / steps, f"{Path(f).name}:{fn}") for (f, _, fn), seconds in own.items()), reverse=True)
    return {"total": total / steps, "groups": groups, "top": top[:8]}


def worker(args: argparse.Namespace) -> int:
    """Time one framework on one model in this process; print one JSON line."""
    threads = int(os.environ["OMP_NUM_THREADS"])
    model = args.model[0]
    if args.worker == "tinytorch":
        sys.path.insert(0, str(ROOT))
        step, info = tinytorch_step(model, args.batch)
    else:
        step, info = pytorch_step(model, args.batch, threads)
    for _ in range(args.warmup):
        step()
    if args.profile:
        print(json.dumps({"profile": profile(step), "threads": threads, **info}))
        return 0
    times, cpu = [], []
    for _ in range(args.repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(json.dumps({"median": statistics.median(times), "cpu_median": statistics.median(cpu), "threads": threads,
                      **info}))
    return 0


# -- the parent: alternate the workers, pair them, report ----------------------------------


def run_worker(framework: str, model: str, threads: int, args: argparse.Namespace, profile: bool = False) -> dict:
    env = {**os.environ, "TINYTORCH_IMPL": args.impl, **{var: str(threads) for var in THREAD_VARS}}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", framework, "--impl", args.impl,
           "--model", model, "--batch", str(args.batch), "--warmup", str(args.warmup), "--repeat", str(args.repeat)]
    done = subprocess.run(cmd + (["--profile"] if profile else []), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {framework} worker ({model}) failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(model: str, threads: int, args: argparse.Namespace) -> dict:
    """ABBA over rounds: round r runs (tinytorch, pytorch) if r is even, else (pytorch, tinytorch)."""
    medians: dict[str, list[float]] = {name: [] for name in FRAMEWORKS}
    cpu: dict[str, list[float]] = {name: [] for name in FRAMEWORKS}
    infos: dict[str, dict] = {}
    for r in range(args.rounds):
        for name in (FRAMEWORKS if r % 2 == 0 else FRAMEWORKS[::-1]):
            result = run_worker(name, model, threads, args)
            medians[name].append(result["median"])
            cpu[name].append(result["cpu_median"])
            infos[name] = result
    ratios = [t / p for t, p in zip(medians["tinytorch"], medians["pytorch"])]
    cpu_ratios = [t / p for t, p in zip(cpu["tinytorch"], cpu["pytorch"])]
    return {"model": model, "threads": threads, "medians": medians, "ratios": ratios, "infos": infos,
            "ratio": statistics.median(ratios), "cpu": cpu, "cpu_ratio": statistics.median(cpu_ratios)}


def flops_per_step(model: str, size: int) -> float:
    """Multiply-adds x 2 of the convolutions and linear layers, forward + 2x backward."""
    (c, h, w), total = architecture(model)[0], 0
    for layer in architecture(model)[1]:
        if layer[0] == "conv":
            _, c_in, c_out, k, p, _ = layer
            h, w = h + 2 * p - k + 1, w + 2 * p - k + 1
            total += 2 * c_out * h * w * c_in * k * k
        elif layer[0] == "pool":
            h, w = h // layer[1], w // layer[1]
        elif layer[0] == "linear":
            total += 2 * layer[1] * layer[2]
    return 3 * size * total


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"one step = forward + cross-entropy + backward + Adam, batch {args.batch}, float32; tinytorch={args.impl};"
          f" {cores} CPU(s)")
    print(f"each framework in its own process, ABBA order, {args.rounds} rounds; per process {args.warmup} warm-up"
          f" steps, then the median of {args.repeat} timed steps")
    results = []
    for model in args.model:
        flops = flops_per_step(model, args.batch)
        shape = "x".join(map(str, architecture(model)[0]))
        title = "LeNet-5" if model == "lenet" else f"CIFAR CNN (VGG-style, width {CIFAR_WIDTH}, BatchNorm)"
        for threads in args.threads:
            result = measure(model, threads, args)
            results.append(result)
            tt, th = (statistics.median(result["medians"][name]) for name in FRAMEWORKS)
            info_t, info_p = result["infos"]["tinytorch"], result["infos"]["pytorch"]
            print(f"\n{title} on {shape}, {threads} thread(s): tinytorch numpy {info_t['numpy']} with OpenBLAS"
                  f" threads = {info_t['blas_threads']}; torch {info_p['torch']} with torch.get_num_threads() ="
                  f" {info_p['torch_threads']}")
            print(f"  tinytorch: {tt * 1e3:8.2f} ms  ({flops / tt / 1e9:5.1f} GFLOP/s conv+linear)"
                  f"  rounds: {' '.join(f'{t * 1e3:.2f}' for t in result['medians']['tinytorch'])}")
            print(f"  pytorch:   {th * 1e3:8.2f} ms  ({flops / th / 1e9:5.1f} GFLOP/s)              "
                  f"  rounds: {' '.join(f'{t * 1e3:.2f}' for t in result['medians']['pytorch'])}")
            print(f"  ratio tinytorch / pytorch = {result['ratio']:.2f}  (median of {args.rounds} paired rounds,"
                  f" range {min(result['ratios']):.2f}..{max(result['ratios']):.2f}; target <= {args.target})")
            ct, cp = (statistics.median(result["cpu"][name]) for name in FRAMEWORKS)
            print(f"  CPU time per step (all threads): tinytorch {ct * 1e3:.2f} ms, pytorch {cp * 1e3:.2f} ms,"
                  f" ratio {result['cpu_ratio']:.2f} (a cross-check when other processes share the cores)")
            if args.profile:
                prof = run_worker("tinytorch", model, threads, args, profile=True)["profile"]
                print(f"  where tinytorch's step goes (cProfile, CPU time, {prof['total'] * 1e3:.1f} ms per step with"
                      " the profiler's overhead):")
                for name, seconds in sorted(prof["groups"].items(), key=lambda item: -item[1]):
                    if seconds > 0:
                        print(f"    {name:<34} {seconds * 1e3:7.2f} ms  {100 * seconds / prof['total']:5.1f} %")
                print("    top functions: " + "; ".join(f"{where} {s * 1e3:.2f} ms" for s, where in prof["top"][:6]))
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > (cores or 1):
        print(f"\nwarning: load average {os.getloadavg()[0]:.1f} on {cores} cores - other processes compete for"
              " the CPU; the ranges above show how much that moved the figures")
    summary = ", ".join(f"{r['model']} {r['threads']} thread(s) {r['ratio']:.2f}" for r in results)
    print(f"\nratio tinytorch / pytorch: {summary} (target <= {args.target})")
    return 0 if all(r["ratio"] <= args.target for r in results) else TARGET_MISSED


if __name__ == "__main__":
    raise SystemExit(main())
