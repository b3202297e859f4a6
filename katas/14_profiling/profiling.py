# KATA: replace every `raise NotImplementedError` below with your implementation.
# Generated from reference/14_profiling/profiling.py by `kata stubs`; your edits are never overwritten.
"""Module 14 - Profiling: count before you optimise, measure before you believe.

Three questions decide where a model's time goes: how much work it does (FLOPs), how much data it
keeps for the backward pass (activation memory), and how fast this machine actually runs each
layer (measured time, achieved GFLOP/s). This module gives tinytorch the tools to answer them:

    count_parameters(module, trainable_only=False)       module 03's num_parameters (shared ones once)
    linear_flops(in_features, out_features, batch_elems=1, bias=True)
    conv2d_flops(batch, in_channels, out_channels, in_hw, kernel_size, stride=1, padding=0, dilation=1, groups=1)
    attention_flops(B, heads, L, S, head_dim, value_dim=None)
    layer_flops(layer, *input_shapes)    the FLOPs ONE call of a layer does itself (children excluded)
    model_flops(module, input_shape)     forward FLOPs of a Module tree, by walking it with shapes
    backward_flops(module, input_shape)  the "backward = 2 x forward" rule (see its assumptions)
    activation_memory(module, input_shape, dtype=np.float32, training=None)
                                         bytes of activations autograd saves for backward
    Stats, Timer(warmup, repeats, clock), measure(fn, warmup, repeats, clock)
    profile(module, *inputs, backward=True, warmup=1, repeats=5, clock=time.perf_counter_ns)
                                         a per-layer table: params, forward/backward ms, FLOPs, GFLOP/s

FLOP convention (PyTorch's torch.utils.flop_counter.FlopCounterMode, so the numbers can be
compared with torch's): only matrix products and convolutions are counted, one multiply-add = 2
FLOPs. A (M, K) @ (K, N) product is 2*M*N*K; a bias add, an activation, a softmax, a LayerNorm,
an embedding lookup count 0 (they are O(n) next to the O(n*k) products, and torch's counter ignores
them too). Attention counts q @ k^T and weights @ v over the FULL L x S score matrix, even when a
causal mask throws half of it away (torch counts the same).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from tinytorch.layers import Linear, Module, Sequential
from tinytorch.tensor import Tensor

# Layers that map a shape to the same shape and do no counted FLOPs (activations, normalisation, dropout).
SHAPE_PRESERVING = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax", "Dropout",
                    "LayerNorm", "BatchNorm2d")
# Layers that autograd saves their OUTPUT for (torch: relu, sigmoid, tanh, softmax, log_softmax save `result`).
SAVES_OUTPUT = ("ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax")
# Layers that save their INPUT (torch: gelu and leaky_relu save `self`).
SAVES_INPUT = ("GELU", "LeakyReLU")


def _is_size(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_sizes(op: str, minimum: int = 1, **sizes: Any) -> None:
    """Every size an int >= minimum, else a ValueError naming it (given helper)."""
    for name, value in sizes.items():
        if not _is_size(value) or value < minimum:
            raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value!r}")


def _pair(value: Any, name: str, op: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints (each >= minimum) -> (h, w) (given helper)."""
    pair = (value, value) if _is_size(value) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or not all(_is_size(v) and v >= minimum for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _kind(layer: Any) -> str:
    if isinstance(layer, _Run):
        return "+".join(_kind(item) for item in layer.items)
    return type(layer).__name__


# ----------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------


def count_parameters(module: Module, trainable_only: bool = False) -> int:
    """How many scalars `module` learns: a Parameter shared by two layers (GPT's tied wte) counts once.

    trainable_only=True skips parameters with requires_grad=False (frozen layers). This is module
    03's Module.num_parameters; a non-Module is a TypeError naming its type.
    """
    # TODO: reuse module 03: module.num_parameters(trainable_only).
    raise NotImplementedError('count_parameters: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Analytic FLOPs (PyTorch's FlopCounterMode convention)
# ----------------------------------------------------------------------------


def linear_flops(in_features: int, out_features: int, batch_elems: int = 1, bias: bool = True) -> int:
    """FLOPs of y = x @ W.T + b for `batch_elems` rows x (prod of x.shape[:-1]): 2 * batch_elems * in * out.

    The bias add (batch_elems * out additions) is NOT counted, whatever `bias` says: torch's counter
    books the whole addmm as 2*M*N*K. `bias` is accepted so call sites read like the layer.
    batch_elems may be 0 (an empty batch does no work); the features must be >= 1.
    """
    # TODO: validate (ValueError naming the bad size), then return the product as a Python int.
    raise NotImplementedError('linear_flops: your turn - see the TODOs above')


def conv2d_output_hw(in_hw: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                     dilation: Any = 1) -> tuple[int, int]:
    """(OH, OW) of a convolution or pooling window: floor((size + 2p - d*(k-1) - 1) / s) + 1 per side.

    padding: an int, a pair, "valid" (0) or "same" (output = input, stride 1 only, like torch).
    A window larger than the padded input is a ValueError naming the sizes.
    """
    raise NotImplementedError('conv2d_output_hw: your turn - see the TODOs above')


def conv2d_flops(batch: int, in_channels: int, out_channels: int, in_hw: Any, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True) -> int:
    """FLOPs of torch.nn.functional.conv2d on a (batch, in_channels, H, W) input (bias not counted, as torch):

        2 * batch * out_channels * OH * OW * (in_channels / groups) * kH * kW

    Each output pixel of each output channel is a dot product of length (in_channels/groups)*kH*kW.
    in_channels and out_channels must be divisible by groups (ValueError naming them).
    """
    # TODO: validate, get (OH, OW) from conv2d_output_hw, multiply.
    raise NotImplementedError('conv2d_flops: your turn - see the TODOs above')


def attention_flops(B: int, heads: int, L: int, S: int, head_dim: int, value_dim: int | None = None) -> int:
    """FLOPs of scaled dot-product attention with B*heads independent (L, S) score matrices:

        scores  = q @ k^T:      2 * B * heads * L * S * head_dim
        output  = weights @ v:  2 * B * heads * L * S * value_dim     (value_dim defaults to head_dim)

    The scale, the mask, the softmax and dropout are not counted (torch's convention); a causal
    mask does not halve the count (the dense kernels compute every score).
    """
    raise NotImplementedError('attention_flops: your turn - see the TODOs above')


def _mha_flops(mha: Any, query_shape: tuple[int, ...], key_shape: tuple[int, ...]) -> int:
    """MultiheadAttention's own FLOPs (in-projections + attention; out_proj is its child Linear) (given)."""
    if len(query_shape) == 2:  # unbatched (L, E)
        B, L, S = 1, query_shape[0], key_shape[0]
    elif mha.batch_first:
        B, L, S = query_shape[0], query_shape[1], key_shape[1]
    else:
        B, L, S = query_shape[1], query_shape[0], key_shape[0]
    E, H = mha.embed_dim, mha.num_heads
    projections = linear_flops(E, E, B * L) + 2 * linear_flops(E, E, B * S)
    return projections + attention_flops(B, H, L, S, E // H)


def layer_flops(layer: Any, *input_shapes: Any) -> int:
    """The FLOPs ONE call of `layer` does itself, its child Modules excluded, given its inputs' shapes.

        Linear             2 * prod(x.shape[:-1]) * in * out
        Conv2d             conv2d_flops on x (N, C, H, W) with the layer's settings
        MultiheadAttention q, k, v in-projections + attention_flops (out_proj is a child Linear)
        GPT                the tied head only: 2 * B * T * n_embd * vocab_size (blocks are children)
        anything else      0 (activations, norms, dropout, embeddings, containers)

    input_shapes: one shape (tuple) per positional input as the layer receives it (for GPT the
    (B, T) index array; for MultiheadAttention query's and key's). Layers are recognised by
    their class name and attributes (duck typing), so this module needs none of 09-13.
    """
    # TODO: dispatch on isinstance(layer, Linear) and _kind(layer) ("Conv2d", "MultiheadAttention", "GPT");
    #       use the helpers above (_mha_flops is given). Everything else does 0 counted FLOPs.
    raise NotImplementedError('layer_flops: your turn - see the TODOs above')


def _pool_hw(layer: Any, hw: tuple[int, int]) -> tuple[int, int]:
    stride = layer.kernel_size if layer.stride is None else layer.stride
    return conv2d_output_hw(hw, layer.kernel_size, stride, layer.padding)


def _walk(module: Any, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(forward FLOPs, output shape) of `module` applied to an input of `shape` (given the rules below)."""
    kind = _kind(module)
    if isinstance(module, Sequential):
        total = 0
        for layer in module:
            flops, shape = _walk(layer, shape)
            total += flops
        return total, shape
    if isinstance(module, Linear):
        if not shape or shape[-1] != module.in_features:
            raise ValueError(f"model_flops: Linear(in_features={module.in_features}) cannot take shape {shape}")
        return layer_flops(module, shape), shape[:-1] + (module.out_features,)
    if kind == "Conv2d":
        if len(shape) != 4 or shape[1] != module.in_channels:
            raise ValueError(f"model_flops: Conv2d(in_channels={module.in_channels}) cannot take shape {shape}")
        hw = conv2d_output_hw(shape[2:], module.kernel_size, module.stride, module.padding, module.dilation)
        return layer_flops(module, shape), (shape[0], module.out_channels) + hw
    if kind in ("MaxPool2d", "AvgPool2d"):
        return 0, shape[:2] + _pool_hw(module, shape[2:])
    if kind == "Flatten":
        ndim = max(len(shape), 1)
        start, end = module.start_dim % ndim, module.end_dim % ndim
        return 0, shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]
    if kind == "Embedding":
        return 0, shape + (module.embedding_dim,)
    if kind == "MultiheadAttention":  # self-attention: query = key = value
        flops = layer_flops(module, shape, shape)
        rows = math.prod(shape[:-1])
        return flops + _walk(module.out_proj, (rows, shape[-1]))[0], shape
    if kind in ("TransformerBlock", "MLP"):  # children in order, each on the same stream
        total, rows = 0, (math.prod(shape[:-1]), shape[-1])
        for name, child in module.named_children():
            flops, out = _walk(child, rows if kind == "MLP" else shape)
            total += flops
            rows = out if kind == "MLP" else rows
        return total, shape
    if kind == "GPT":
        if len(shape) != 2:
            raise ValueError(f"model_flops: GPT takes (batch, time) token ids, got shape {shape}")
        B, T = shape
        return _walk(module.h, (B, T, module.config.n_embd))[0] + layer_flops(module, shape), \
            (B, T, module.config.vocab_size)
    if kind in SHAPE_PRESERVING or not (isinstance(module, Module) and (module._parameters or module._modules)):
        return 0, shape
    raise TypeError(f"model_flops: does not know how a {kind} maps input shapes to output shapes; use"
                    f" profile(module, x), which counts FLOPs from the shapes each layer really receives")


def model_flops(module: Module, input_shape: Any) -> int:
    """Forward FLOPs of `module` on one input of `input_shape` (torch's convention, see the module docstring).

    Walks the tree with shapes: a Sequential applies its items in order (Linear, Conv2d, pooling,
    Flatten, activations, Dropout, norms); a GPT (module 13) is its blocks - per block the q, k, v
    and output projections, attention over the full T x T scores, the MLP's two Linears - plus the
    tied head. Each layer's own count comes from layer_flops, so profile's rows sum to this.
    A module whose shape mapping is unknown is a TypeError naming its class.
    """
    # TODO: validate input_shape (a tuple of ints >= 0, else ValueError naming it); return _walk(...)[0].
    raise NotImplementedError('model_flops: your turn - see the TODOs above')


def backward_flops(module: Module, input_shape: Any, input_requires_grad: bool = True) -> int:
    """The rule of thumb: backward = 2 x forward FLOPs, so a training step is ~3 x forward.

    Why: every counted op is a product Y = X @ W (convolutions and attention included); backward
    computes dX = dY @ W^T and dW = X^T @ dY, each the size of the forward product. Assumptions:
    (1) every product needs BOTH gradients - true inside a network, but the first layer's dX is
    not needed when the input does not require grad: with input_requires_grad=False the first
    Linear/Conv2d of a Sequential (or a MultiheadAttention's in-projections) that reads the input
    skips it, one forward-sized product less; (2) elementwise ops are free, as in the forward count.
    PyTorch's FlopCounterMode books exactly this for backward().
    """
    # TODO: 2 * model_flops; without input grad, subtract the products that see the raw input once.
    raise NotImplementedError('backward_flops: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Activation memory
# ----------------------------------------------------------------------------


def activation_memory(module: Module, input_shape: Any, dtype: Any = np.float32, training: bool | None = None) -> int:
    """Bytes of activations autograd keeps alive for the backward pass of `module` on `input_shape`.

    What counts (PyTorch's choice of saved tensors, each distinct tensor once, parameters never):
      Linear, Conv2d            their input (needed for dW = dY^T X)
      ReLU, Sigmoid, Tanh, Softmax, LogSoftmax   their output (the derivative is a function of it)
      GELU, LeakyReLU           their input
      Dropout (training, 0 < p < 1)              its scaled keep mask, in the activations' dtype (on a CPU
                                torch, like tinytorch, multiplies by a float mask; CUDA saves a 1-byte bool one)
      Flatten, Dropout in eval  nothing (views / identity)
    A ReLU's output that the next Linear saves is ONE tensor, counted once. Before the first layer
    with parameters nothing requires grad, so activations there save nothing (a Linear still saves
    its input: dW needs it). dtype: the activations' float dtype.
    training: Dropout's mode (default: module.training). Supports Sequential stacks of the layers
    above; anything else is a TypeError naming its class.
    """
    # TODO: walk the Sequential keeping ids for "the current tensor" and a dict id -> bytes of saved ones.
    raise NotImplementedError('activation_memory: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Timings of `repeats` calls, in nanoseconds, in the order they ran.

    percentile(q) interpolates linearly between the two nearest ranks (numpy's default
    np.percentile method): with n sorted samples s, rank r = q/100 * (n - 1),
    value = s[floor(r)] + (r - floor(r)) * (s[floor(r) + 1] - s[floor(r)]).
    """

    samples_ns: tuple[int, ...]

    def percentile(self, q: float) -> float:
        """The q-th percentile (0 <= q <= 100) of the samples, in ns (ValueError outside [0, 100])."""
        # TODO: sort, compute the rank r = q / 100 * (n - 1), interpolate between floor(r) and floor(r) + 1.
        raise NotImplementedError('Stats.percentile: your turn - see the TODOs above')

    @property
    def median_ns(self) -> float:
        return self.percentile(50)

    @property
    def p50_ns(self) -> float:
        return self.percentile(50)

    @property
    def p90_ns(self) -> float:
        return self.percentile(90)

    @property
    def p99_ns(self) -> float:
        return self.percentile(99)

    @property
    def min_ns(self) -> int:
        return min(self.samples_ns)

    @property
    def max_ns(self) -> int:
        return max(self.samples_ns)

    @property
    def mean_ns(self) -> float:
        return sum(self.samples_ns) / len(self.samples_ns)

    @property
    def median_ms(self) -> float:
        return self.median_ns / 1e6

    def __repr__(self) -> str:
        return (f"Stats(n={len(self.samples_ns)}, median={self.median_ns / 1e6:.4g} ms, p90={self.p90_ns / 1e6:.4g} ms,"
                f" p99={self.p99_ns / 1e6:.4g} ms, min={self.min_ns / 1e6:.4g} ms)")


class Timer:
    """Time a function: `warmup` untimed calls (caches, lazy allocation, BLAS thread start-up), then
    `repeats` calls each timed alone as clock() after - clock() before.

    clock: a function returning integer nanoseconds (default time.perf_counter_ns: monotonic, the
    highest resolution Python has, and integers, so no float rounding). Inject a fake one to test.
    """

    def __init__(self, warmup: int = 3, repeats: int = 10, clock: Callable[[], int] = time.perf_counter_ns):
        raise NotImplementedError('Timer.__init__: your turn - see the TODOs above')

    def measure(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Stats:
        """Call fn(*args, **kwargs) warmup times untimed, then repeats times timed; return their Stats.

        The clock is read exactly twice per timed call, never during warm-up. A clock that goes
        backwards (after < before) is a ValueError naming both readings.
        """
        # TODO: warm-up loop; then for each repeat: before = clock(); fn(...); after = clock(); keep after - before.
        raise NotImplementedError('Timer.measure: your turn - see the TODOs above')


def measure(fn: Callable[[], Any], warmup: int = 3, repeats: int = 10,
            clock: Callable[[], int] = time.perf_counter_ns) -> Stats:
    """Timer(warmup, repeats, clock).measure(fn)."""
    return Timer(warmup, repeats, clock).measure(fn)


# ----------------------------------------------------------------------------
# The per-layer profiler
# ----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a profile. forward_ms/backward_ms: medians over the repeats (exclusive of children)."""

    name: str
    kind: str
    params: int
    forward_ms: float
    backward_ms: float
    flops: int

    @property
    def gflops_per_s(self) -> float:
        """Achieved forward GFLOP/s: flops / forward time (0 when either is 0)."""
        return self.flops / (self.forward_ms * 1e6) if self.flops and self.forward_ms > 0 else 0.0


@dataclass
class Profile:
    """profile()'s result: rows in call order, the whole forward pass's median, and render()."""

    rows: list[Row]
    total_forward_ms: float
    total_flops: int = 0
    other_forward_ms: float = 0.0  # median per pass of the time outside every row (containers' own code)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The table as text, one line per row, then the totals."""
        header = f"{'layer':<24} {'kind':<20} {'params':>10} {'fwd ms':>9} {'bwd ms':>9} {'MFLOP':>10} {'GFLOP/s':>8}"
        lines = [header, "-" * len(header)]
        for r in self.rows:
            lines.append(f"{r.name:<24} {r.kind:<20} {r.params:>10,} {r.forward_ms:>9.3f} {r.backward_ms:>9.3f}"
                         f" {r.flops / 1e6:>10.2f} {r.gflops_per_s:>8.2f}")
        lines.append("-" * len(header))
        lines.append(f"{'(outside the rows)':<24} {'':<20} {'':>10} {self.other_forward_ms:>9.3f}")
        total_gflops = self.total_flops / (self.total_forward_ms * 1e6) if self.total_forward_ms > 0 else 0.0
        lines.append(f"{'total forward':<24} {'':<20} {sum(r.params for r in self.rows):>10,}"
                     f" {self.total_forward_ms:>9.3f} {sum(r.backward_ms for r in self.rows):>9.3f}"
                     f" {self.total_flops / 1e6:>10.2f} {total_gflops:>8.2f}")
        return "\n".join(lines + self.notes)

    def __str__(self) -> str:
        return self.render()


def _shape_of(value: Any) -> tuple[int, ...]:
    if isinstance(value, Tensor):
        return tuple(value.shape)
    if _is_size(value):
        return ()
    return tuple(np.shape(value))


def _first_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, Tensor):
                return item
    return None


class _Run:
    """Consecutive non-Module items of a Sequential (module 02's ReLU() ...), profiled as one layer."""

    def __init__(self, items: list[Callable]):
        self.items = items

    def __call__(self, x: Any) -> Any:
        for item in self.items:
            x = item(x)
        return x


class _Frame:
    """One open Module call: where it started, the ns spent in rows inside it, and - for the gaps of a
    Sequential - when its last Module item ended (`mark`), what it returned (`last`), how many have run."""

    def __init__(self, entry: int, start: int, first_input: Any):
        self.entry, self.start, self.children = entry, start, 0
        self.mark, self.last, self.items_done = start, first_input, 0


class _Recorder:
    """The timing hooks' shared state: a stack of open calls (for exclusive times) and per-entry records.

    A Module is timed by a forward pre-hook (opens a frame) and a forward hook (closes it): module 03's
    documented hooks, nothing of the model is replaced. A run of non-Module items in a Sequential has
    no hooks: it is timed as the gap it leaves in its Sequential's call, from the end of the Module item
    before it (or the Sequential's start) to the start of the Module item after it (or the Sequential's
    end); its input is what that previous item returned (or the Sequential's input).
    """

    def __init__(self, clock: Callable[[], int]):
        self.clock = clock
        self.stack: list[_Frame] = []
        self.exclusive: dict[int, int] = {}  # entry -> ns in the current pass
        self.calls: dict[int, list[tuple[tuple, dict]]] = {}  # entry -> (args, kwargs) of each call
        self.first_call: dict[int, int] = {}  # entry -> the order of its first call
        self.capture = True
        self.run_before: dict[tuple[int, int], int] = {}  # (Sequential entry, k) -> run before its k-th Module item
        self.run_at_end: dict[int, int] = {}  # Sequential entry -> the run that ends it

    def _record(self, entry: int, args: tuple, kwargs: dict) -> None:
        if self.capture:
            self.calls.setdefault(entry, []).append((args, kwargs))
            self.first_call.setdefault(entry, len(self.first_call))

    def _close_gap(self, run: int | None, frame: _Frame, now: int) -> None:
        if run is None:
            return
        self._record(run, (frame.last,), {})
        gap = now - frame.mark
        self.exclusive[run] = self.exclusive.get(run, 0) + gap
        frame.children += gap

    def hooks(self, entry: int) -> tuple[Callable, Callable]:
        """(pre-hook, hook) for the Module of `entry`, both registered with_kwargs=True."""
        def pre(module: Module, args: tuple, kwargs: dict) -> None:
            now = self.clock()
            if self.stack:
                parent = self.stack[-1]
                self._close_gap(self.run_before.get((parent.entry, parent.items_done)), parent, now)
                parent.items_done += 1
            self._record(entry, args, kwargs)
            self.stack.append(_Frame(entry, now, args[0] if args else None))

        def post(module: Module, args: tuple, kwargs: dict, output: Any) -> None:
            now = self.clock()
            frame = self.stack.pop()
            self._close_gap(self.run_at_end.get(entry), frame, now)
            elapsed = now - frame.start
            self.exclusive[entry] = self.exclusive.get(entry, 0) + elapsed - frame.children
            if self.stack:
                parent = self.stack[-1]
                parent.children += elapsed
                parent.mark, parent.last = now, output
        return pre, post


def _flops_of(layer: Any, args: tuple) -> int:
    """layer_flops of one recorded call; a _Run adds up its items, each on the shape it receives."""
    if not isinstance(layer, _Run):
        return layer_flops(layer, *(_shape_of(a) for a in args))
    total, x = 0, args[0]
    for item in layer.items:
        total += layer_flops(item, _shape_of(x))
        x = item(x)
    return total


def _replay_backward(layer: Callable, calls: list[tuple[tuple, dict]], timer: Timer) -> float:
    """Median ns of the backward pass of each recorded call of `layer`, replayed on fresh copies of its inputs."""
    total = 0.0
    for args, kwargs in calls:
        fresh = tuple(Tensor(a.data.copy(), requires_grad=a.dtype.kind == "f") if isinstance(a, Tensor) else a
                      for a in args)
        samples = []
        for i in range(timer.warmup + timer.repeats):
            out = _first_tensor(layer(*fresh, **kwargs))
            if out is None or not out.requires_grad:
                break
            upstream = Tensor(np.ones(out.shape, dtype=out.dtype))
            before = timer.clock()
            out.backward(upstream)
            elapsed = timer.clock() - before
            if i >= timer.warmup:
                samples.append(elapsed)
        total += float(np.median(samples)) if samples else 0.0
    return total


def profile(module: Module, *inputs: Any, backward: bool = True, warmup: int = 1, repeats: int = 5,
            clock: Callable[[], int] = time.perf_counter_ns) -> Profile:
    """Run module(*inputs) `warmup + repeats` times and time every layer; return a Profile.

    Rows, in the order of their first call: every leaf Module, every non-Module callable held by a
    Sequential (module 02's ReLU() ...), and a "<name> (self)" row for each container that does
    counted FLOPs of its own (MultiheadAttention's projections and attention, GPT's tied head), so
    the rows' FLOPs sum to model_flops. forward_ms: the median over the repeats of the time spent
    in that layer itself (children excluded), measured inside the real forward pass. backward_ms:
    each call replayed alone on copies of its recorded inputs, timing out.backward(ones); for a
    self row, its replay minus the rows inside it (at least 0), so it also holds the backward of
    code that is in no row beneath it (GPT's: gelu, residual adds, the head). FLOPs come from
    layer_flops on the shapes each layer really received. The input of a replay always requires
    grad, so a first layer's backward includes its dX even when the model's input needs none.

    How the layers are timed: through module 03's forward hooks. Every Module gets a pre-hook and a
    hook (with_kwargs=True, so the recorded calls keep their keyword arguments) that open and close
    its timing frame; nothing of the model is replaced, and a `finally` removes every hook, even
    when the forward pass raises. A non-Module item of a Sequential has no hooks: each run of
    consecutive such items is one row, named after its key ("1") or its first and last keys ("3-4",
    kind "ReLU+Dropout"), timed as the gap it leaves between the hooks of the Sequential's Module
    items (so it also holds the Sequential's loop overhead there). Modules called through
    `.forward(...)` instead of `module(...)` bypass the hooks and count in their caller's time. The
    parameters' .grad are restored. Train/eval mode is left as is.
    """
    # TODO: 1. A non-Module is a TypeError. timer = Timer(warmup, repeats, clock), recorder = _Recorder(clock);
    #          remember (p, p.grad) for every parameter (the replays accumulate gradients).
    # TODO: 2. entries = [(name, layer, is_leaf)]: every module of named_modules() (a leaf has no
    #          named_children); for each, pre, post = recorder.hooks(entry) and keep the handles of
    #          mod.register_forward_pre_hook(pre, with_kwargs=True) and mod.register_forward_hook(post,
    #          with_kwargs=True). In a Sequential, each run of consecutive non-Module items is one more
    #          (leaf) entry: f"{name}.{key}" (or f"{name}.{first}-{last}", the layer a _Run of the items);
    #          recorder.run_before[(sequential entry, number of Module items before the run)] = its entry,
    #          or recorder.run_at_end[sequential entry] = its entry when no Module item follows it.
    # TODO: 3. Inside try/finally (the finally removes every hook handle): warmup + repeats passes of
    #          module(*inputs); recorder.capture only in the first; reset recorder.exclusive before each;
    #          after warm-up keep a copy of recorder.exclusive and the whole call's clock difference.
    # TODO: 4. Rows, deepest entries first: flops = sum of layer_flops over the recorded calls' shapes
    #          (_shape_of); skip a container whose flops are 0; forward = median exclusive ns; backward =
    #          _replay_backward (for a container: minus the rows inside it, at least 0); params = the
    #          layer's own _parameters; label = name, or "<name> (self)" / "(self)" for a container.
    # TODO: 5. Order the rows by recorder.first_call; other = median over passes of (whole call - the
    #          rows' exclusive ns), at least 0; put the .grad back; return Profile(rows, total ms,
    #          total flops, other ms, notes).
    raise NotImplementedError('profile: your turn - see the TODOs above')
