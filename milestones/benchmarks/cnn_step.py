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

How it is measured: as milestones/benchmarks/mlp_step.py, with the protocol of _paired.py. Each
framework runs in its own fresh process (this script with `--worker`), its thread count pinned
before it starts and read back inside; the parent runs the workers ABBA for --rounds rounds; a
worker warms up (--warmup steps), times --repeat steps and reports their median; the verdict is
the median of the paired rounds' ratios, their min..max printed as the noise. The CPU time per
step is printed as a cross-check when other processes share the cores.

This is a script, not a test: it prints the measurements and exits 0 when every measured ratio
is within --target, 3 when one is above (a crash exits 1).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _paired as paired

MODELS = ("lenet", "cifar")
CIFAR_WIDTH = 16  # m1998_cifar_cnn.py's default --width


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    paired.add_common_arguments(parser)
    parser.add_argument("--model", type=paired.comma_list(str, MODELS), default=list(MODELS),
                        help="lenet, cifar or lenet,cifar (default: both)")
    parser.add_argument("--batch", type=int, default=64)
    paired.add_timing_arguments(parser, warmup=5, repeat=20, rounds=3)
    parser.add_argument("--target", type=float, default=2.0)
    parser.add_argument("--profile", action="store_true",
                        help="also profile tinytorch's step (cProfile, one extra process per model and thread count)")
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


# -- the workers: one framework per process ------------------------------------------------


def tinytorch_step(model_name: str, size: int):
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
    return paired.training_step(model, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-3), x, y)


def pytorch_step(model_name: str, size: int):
    import torch

    nn = torch.nn
    build = {"conv": lambda a, b, k, p, bias: nn.Conv2d(a, b, k, padding=p, bias=bias), "bn": nn.BatchNorm2d,
             "relu": nn.ReLU, "pool": nn.MaxPool2d, "flatten": nn.Flatten, "linear": nn.Linear}
    model = nn.Sequential(*(build[kind](*params) for kind, *params in architecture(model_name)[1]))
    state = model.state_dict()
    state.update({k: torch.from_numpy(v) for k, v in initial_state(model_name).items()})
    model.load_state_dict(state)
    model.train()
    x, y = (torch.from_numpy(a) for a in batch(model_name, size))
    return paired.training_step(model, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-3), x, y)


# Where tinytorch's time goes: each Python function's own time (tottime) by what it does. Time in C
# functions (numpy's matmul, copies, reductions) is charged to the Python function that called them.
PROFILE_GROUPS = (
    ("conv im2col copies (forward, and dx as a convolution)", ("im2col", "_pad", "_offset_view")),
    ("conv GEMMs + reorders (forward and backward)",
     ("conv2d", "_conv_gemm", "_to_nchw", "_conv_padding", "_conv2d_backward", "_input_grad_as_conv")),
    ("conv col2im (dx of expanding layers)", ("col2im", "_crop")),
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
        in_tinytorch = str(paired.ROOT) in filename
        groups[_group(function) if in_tinytorch else OTHER] += seconds / steps
    top = sorted(((seconds / steps, f"{Path(f).name}:{fn}") for (f, _, fn), seconds in own.items()), reverse=True)
    return {"total": total / steps, "groups": groups, "top": top[:8]}


def worker(args: argparse.Namespace) -> int:
    """Time (or profile) one framework on one model in this process; print one JSON line."""
    paired.start_worker(args.worker)
    step = (tinytorch_step if args.worker == "tinytorch" else pytorch_step)(args.model[0], args.batch)
    info = paired.framework_info(args.worker)
    if args.profile:
        for _ in range(args.warmup):
            step()
        return paired.report({"profile": profile(step), **info})
    return paired.report({**paired.time_steps(step, args.warmup, args.repeat), **info})


# -- the parent: alternate the workers, pair them, report ----------------------------------


def flags(model: str, args: argparse.Namespace) -> list[str]:
    """A worker's options: one model."""
    return paired.worker_flags(args, "impl", "batch", "warmup", "repeat") + ["--model", model]


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
    cores = paired.cpu_count()
    print(f"one step = forward + cross-entropy + backward + Adam, batch {args.batch}, float32; tinytorch={args.impl};"
          f" {cores} CPU(s)")
    paired.print_protocol(args)
    verdicts = []
    for model in args.model:
        flops = flops_per_step(model, args.batch)
        shape = "x".join(map(str, architecture(model)[0]))
        title = "LeNet-5" if model == "lenet" else f"CIFAR CNN (VGG-style, width {CIFAR_WIDTH}, BatchNorm)"
        for threads in args.threads:
            result = paired.measure(__file__, args, threads, flags(model, args), what=f"worker ({model})")
            ratio = result.ratio()
            verdicts.append((f"{model} {threads} thread(s)", ratio))
            tt, th = result.median("tinytorch"), result.median("pytorch")
            print(f"\n{title} on {shape}, {threads} thread(s): "
                  f"{paired.readback(result.last('tinytorch'), result.last('pytorch'))}")
            print(f"  tinytorch: {tt * 1e3:8.2f} ms  ({flops / tt / 1e9:5.1f} GFLOP/s conv+linear)"
                  f"  rounds: {paired.rounds_ms(result.values('tinytorch'), 2)}")
            print(f"  pytorch:   {th * 1e3:8.2f} ms  ({flops / th / 1e9:5.1f} GFLOP/s)              "
                  f"  rounds: {paired.rounds_ms(result.values('pytorch'), 2)}")
            print(f"  ratio tinytorch / pytorch = {ratio:.2f}  ({paired.spread(result.ratios())}; target <="
                  f" {args.target:g})")
            ct, cp = result.median("tinytorch", "cpu_median"), result.median("pytorch", "cpu_median")
            print(f"  CPU time per step (all threads): tinytorch {ct * 1e3:.2f} ms, pytorch {cp * 1e3:.2f} ms,"
                  f" ratio {result.ratio('cpu_median'):.2f} (a cross-check when other processes share the cores)")
            if args.profile:
                prof = paired.run_worker(__file__, "tinytorch", threads, args.impl, flags(model, args) + ["--profile"],
                                         what=f"profiler ({model})")["profile"]
                print(f"  where tinytorch's step goes (cProfile, CPU time, {prof['total'] * 1e3:.1f} ms per step with"
                      " the profiler's overhead):")
                for name, seconds in sorted(prof["groups"].items(), key=lambda item: -item[1]):
                    if seconds > 0:
                        print(f"    {name:<34} {seconds * 1e3:7.2f} ms  {100 * seconds / prof['total']:5.1f} %")
                print("    top functions: " + "; ".join(f"{where} {s * 1e3:.2f} ms" for s, where in prof["top"][:6]))
    paired.warn_if_loaded(cores)
    return paired.verdict("ratio tinytorch / pytorch", verdicts, args.target)


if __name__ == "__main__":
    raise SystemExit(main())
