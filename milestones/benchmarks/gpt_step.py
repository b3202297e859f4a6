"""Benchmark: one training step of the 2017 milestone's character-level GPT, tinytorch vs PyTorch (CPU).

One step = forward (token + position embeddings, 4 pre-norm blocks of causal multi-head
attention and a GELU MLP, final LayerNorm, weight-tied head), cross-entropy over every
position, backward, gradient clipping at norm 1, AdamW update: the milestone's full recipe
(milestones/m2017_transformer.py) at its batch 32 and context 128, in float32, on the same batch
from the same initial weights. PyTorch runs a twin built from torch.nn parts (nn.Embedding,
nn.LayerNorm, nn.MultiheadAttention, nn.Linear) with tinytorch's parameter names. The target is
tinytorch <= 2.0x PyTorch's time. Generation speed (tokens/s sampling --gen-tokens tokens after a
one-token prompt; no KV cache on either side: every step re-reads the context) is printed too.

    python milestones/benchmarks/gpt_step.py                  # reference tinytorch, 1 and 2 threads
    python milestones/benchmarks/gpt_step.py --threads 1      # one thread count only (what CI runs)
    python milestones/benchmarks/gpt_step.py --impl katas     # your katas

How it is measured: as milestones/benchmarks/mlp_step.py (whose helpers it imports). Each
framework runs in its own fresh process (this script with `--worker`), the thread count fixed
before it starts (OPENBLAS/OMP/MKL_NUM_THREADS, torch.set_num_threads) and read back inside; the
parent runs the workers ABBA for --rounds rounds; a worker warms up, times --repeat steps and
reports their median; a round's ratio pairs the two workers that ran next to each other, the
verdict is the median of those ratios, and their min..max is printed as the noise. Both workers
also report the loss of their first step, which must agree (same model, same weights, same batch).

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mlp_step import (  # noqa: E402  (the shared protocol: thread pinning, read-back, allocator report)
    FRAMEWORKS, TARGET_MISSED, THREAD_VARS, allocator_settings, numpy_blas_threads, thread_counts)

ROOT = Path(__file__).resolve().parents[2]

# The milestone's model (milestones/m2017_transformer.py, FULL recipe).
VOCAB, LAYERS, HEADS, EMBD = 65, 4, 4, 128
LOSS_AGREEMENT = 1e-4  # first-step losses of the two frameworks: same model, weights and batch


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="reference", help="TINYTORCH_IMPL (default: reference)")
    parser.add_argument("--threads", type=thread_counts, default=[1, 2],
                        help="BLAS / torch thread counts to measure, e.g. 1 or 1,2 (default: 1,2)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--block", type=int, default=128, help="context length T")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of each worker")
    parser.add_argument("--repeat", type=int, default=10, help="timed steps per worker (their median counts)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of worker processes per thread count")
    parser.add_argument("--gen-tokens", type=int, default=100, help="tokens to sample for the generation speed")
    parser.add_argument("--target", type=float, default=2.0)
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- the workers: one framework per process ------------------------------------------------


def initial_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict:
    """The same starting weights for both frameworks, from numpy, by GPT-2's rule (reference/13's GPT):
    LayerNorms 1/0, biases 0, projections into the residual stream N(0, 0.02/sqrt(2 * layers)),
    every other weight N(0, 0.02). Drawn in sorted-name order, so both sides get the same arrays."""
    import numpy as np

    rng = np.random.default_rng(seed)
    state = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if name.startswith("ln") or ".ln_" in name:
            value = np.ones(shape) if name.endswith("weight") else np.zeros(shape)
        elif name.endswith("bias"):
            value = np.zeros(shape)
        else:
            std = 0.02 / np.sqrt(2 * LAYERS) if name.endswith(("out_proj.weight", "c_proj.weight")) else 0.02
            value = rng.normal(0.0, std, shape)
        state[name] = value.astype(np.float32)
    return state


def batch(args: argparse.Namespace):
    import numpy as np

    rng = np.random.default_rng(1)
    return (rng.integers(0, VOCAB, (args.batch, args.block)).astype(np.int64),
            rng.integers(0, VOCAB, (args.batch, args.block)).astype(np.int64))


def tinytorch_step(args: argparse.Namespace):
    import numpy as np

    import tinytorch.autograd  # noqa: F401  (registers the backward engine)
    from tinytorch.optimizers import AdamW
    from tinytorch.training import clip_grad_norm_
    from tinytorch.transformer import GPT, GPTConfig

    idx, targets = batch(args)
    model = GPT(GPTConfig(VOCAB, args.block, LAYERS, HEADS, EMBD))
    model.load_state_dict(initial_state({k: tuple(v.shape) for k, v in model.state_dict().items()}))
    optimizer = AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)

    def step() -> float:
        _, loss = model(idx, targets)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return float(loss.item())

    def generate(n: int) -> None:
        model.generate(np.zeros((1, 1), dtype=np.int64), n, generator=np.random.default_rng(0))

    info = {"numpy": np.__version__, "blas_threads": numpy_blas_threads(), "parameters": model.num_parameters()}
    return step, generate, info


def torch_twin(block: int):
    """nanoGPT's model from torch.nn parts, with tinytorch's parameter names."""
    import torch
    import torch.nn.functional as F

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = torch.nn.LayerNorm(EMBD)
            self.attn = torch.nn.MultiheadAttention(EMBD, HEADS, batch_first=True)
            self.ln_2 = torch.nn.LayerNorm(EMBD)
            self.mlp = torch.nn.Module()
            self.mlp.c_fc = torch.nn.Linear(EMBD, 4 * EMBD)
            self.mlp.c_proj = torch.nn.Linear(4 * EMBD, EMBD)

        def forward(self, x, causal):
            h = self.ln_1(x)
            x = x + self.attn(h, h, h, attn_mask=causal, need_weights=False, is_causal=True)[0]
            return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = torch.nn.Embedding(VOCAB, EMBD)
            self.wpe = torch.nn.Embedding(block, EMBD)
            self.h = torch.nn.ModuleList(Block() for _ in range(LAYERS))
            self.ln_f = torch.nn.LayerNorm(EMBD)

        def forward(self, idx, targets=None):
            T = idx.shape[1]
            causal = torch.ones(T, T, dtype=torch.bool).triu(1)
            x = self.wte(idx) + self.wpe(torch.arange(T))
            for blk in self.h:
                x = blk(x, causal)
            logits = self.ln_f(x) @ self.wte.weight.T
            loss = None if targets is None else F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
            return logits, loss

    return GPT()


def pytorch_step(args: argparse.Namespace, threads: int):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    idx, targets = (torch.from_numpy(a) for a in batch(args))
    twin = torch_twin(args.block)
    state = initial_state({k: tuple(v.shape) for k, v in twin.state_dict().items()})
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    optimizer = torch.optim.AdamW(twin.parameters(), lr=1e-3, weight_decay=0.1)

    def step() -> float:
        _, loss = twin(idx, targets)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0)
        optimizer.step()
        return float(loss.item())

    def generate(n: int) -> None:
        generator = torch.Generator().manual_seed(0)
        twin.eval()
        with torch.no_grad():
            out = torch.zeros((1, 1), dtype=torch.int64)
            for _ in range(n):
                logits, _ = twin(out[:, -args.block:])
                out = torch.cat([out, torch.multinomial(torch.softmax(logits[:, -1], -1), 1, generator=generator)], 1)
        twin.train()

    info = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "numpy": np.__version__, "blas_threads": numpy_blas_threads()}
    return step, generate, info


def worker(args: argparse.Namespace) -> int:
    """Time one framework in this process; print one JSON line."""
    threads = int(os.environ["OMP_NUM_THREADS"])
    if args.worker == "tinytorch":
        sys.path.insert(0, str(ROOT))
        step, generate, info = tinytorch_step(args)
    else:
        step, generate, info = pytorch_step(args, threads)
    first_loss = step()
    for _ in range(args.warmup - 1):
        step()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    gen_rate = None
    if args.gen_tokens > 0:
        start = time.perf_counter()
        generate(args.gen_tokens)
        gen_rate = args.gen_tokens / (time.perf_counter() - start)
    print(json.dumps({"median": statistics.median(times), "first_loss": first_loss, "gen_tokens_per_s": gen_rate,
                      "threads": threads, **info}))
    return 0


# -- the parent: alternate the workers, pair them, report ----------------------------------


def run_worker(framework: str, threads: int, args: argparse.Namespace) -> dict:
    env = {**os.environ, "TINYTORCH_IMPL": args.impl, **{var: str(threads) for var in THREAD_VARS}}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", framework, "--impl", args.impl,
           "--batch", str(args.batch), "--block", str(args.block), "--warmup", str(args.warmup),
           "--repeat", str(args.repeat), "--gen-tokens", str(args.gen_tokens)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {framework} worker failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(threads: int, args: argparse.Namespace) -> dict:
    """ABBA over rounds: round r runs (tinytorch, pytorch) if r is even, else (pytorch, tinytorch)."""
    runs: dict[str, list[dict]] = {name: [] for name in FRAMEWORKS}
    for r in range(args.rounds):
        for name in (FRAMEWORKS if r % 2 == 0 else FRAMEWORKS[::-1]):
            runs[name].append(run_worker(name, threads, args))
    medians = {name: [run["median"] for run in runs[name]] for name in FRAMEWORKS}
    ratios = [t / p for t, p in zip(medians["tinytorch"], medians["pytorch"])]
    return {"threads": threads, "runs": runs, "medians": medians, "ratios": ratios, "ratio": statistics.median(ratios)}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    if args.warmup < 1 or args.repeat < 1 or args.rounds < 1:
        raise SystemExit("--warmup, --repeat and --rounds must be at least 1")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    tokens = args.batch * args.block
    print(f"GPT {LAYERS} layers x {EMBD} wide, {HEADS} heads, vocab {VOCAB}; batch {args.batch} x context"
          f" {args.block} = {tokens:,} tokens, float32; one step = forward + cross-entropy + backward + clip + AdamW;"
          f" tinytorch={args.impl}; {cores} CPU(s)")
    print(f"each framework in its own process, ABBA order, {args.rounds} rounds; per process {args.warmup} warm-up"
          f" steps, then the median of {args.repeat} timed steps; then {args.gen_tokens} generated tokens")
    print(f"allocator: {allocator_settings()}")
    results = []
    for threads in args.threads:
        result = measure(threads, args)
        results.append(result)
        info_t, info_p = result["runs"]["tinytorch"][-1], result["runs"]["pytorch"][-1]
        losses = (info_t["first_loss"], info_p["first_loss"])
        if abs(losses[0] - losses[1]) > LOSS_AGREEMENT:
            raise SystemExit(f"the two models disagree: first-step loss tinytorch {losses[0]:.6f} vs pytorch"
                             f" {losses[1]:.6f} (> {LOSS_AGREEMENT:g}): not the same computation, nothing to compare")
        tt, th = (statistics.median(result["medians"][name]) for name in FRAMEWORKS)
        print(f"\n{threads} thread(s): tinytorch numpy {info_t['numpy']} with OpenBLAS threads ="
              f" {info_t['blas_threads']}; torch {info_p['torch']} with torch.get_num_threads() ="
              f" {info_p['torch_threads']}; {info_t['parameters']:,} parameters; first-step loss"
              f" {losses[0]:.5f} / {losses[1]:.5f}")
        for name, median in (("tinytorch", tt), ("pytorch", th)):
            gen = [r["gen_tokens_per_s"] for r in result["runs"][name] if r["gen_tokens_per_s"]]
            print(f"  {name + ':':10s} {median * 1e3:8.1f} ms/step ({tokens / median:7.0f} tokens/s)"
                  f"  rounds: {' '.join(f'{t * 1e3:.1f}' for t in result['medians'][name])}"
                  + (f"; generation {statistics.median(gen):6.1f} tokens/s" if gen else ""))
        print(f"  ratio tinytorch / pytorch = {result['ratio']:.2f}  (median of {args.rounds} paired rounds,"
              f" range {min(result['ratios']):.2f}..{max(result['ratios']):.2f}; target <= {args.target})")
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > (cores or 1):
        print(f"\nwarning: load average {os.getloadavg()[0]:.1f} on {cores} cores - other processes compete for"
              " the CPU; the ranges above show how much that moved the figures")
    summary = ", ".join(f"{r['threads']} thread(s) {r['ratio']:.2f}" for r in results)
    print(f"\nratio tinytorch / pytorch: {summary} (target <= {args.target})")
    return 0 if all(r["ratio"] <= args.target for r in results) else TARGET_MISSED


if __name__ == "__main__":
    raise SystemExit(main())
