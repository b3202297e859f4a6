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

How it is measured: as milestones/benchmarks/mlp_step.py (the protocol of _paired.py). Each
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
import statistics
import time

import _paired as paired

# The milestone's model (milestones/m2017_transformer.py, FULL recipe).
VOCAB, LAYERS, HEADS, EMBD = 65, 4, 4, 128
LOSS_AGREEMENT = 1e-4  # first-step losses of the two frameworks: same model, weights and batch


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    paired.add_common_arguments(parser)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--block", type=int, default=128, help="context length T")
    # The first warm-up step is always run: its loss is the two frameworks' agreement check.
    paired.add_timing_arguments(parser, warmup=3, repeat=10, rounds=3, min_warmup=1)
    parser.add_argument("--gen-tokens", type=int, default=100, help="tokens to sample for the generation speed")
    parser.add_argument("--target", type=float, default=2.0)
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

    return step, generate, {"parameters": model.num_parameters()}


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


def pytorch_step(args: argparse.Namespace):
    import torch

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

    return step, generate, {}


def worker(args: argparse.Namespace) -> int:
    """Time one framework in this process; print one JSON line."""
    paired.start_worker(args.worker)
    step, generate, info = (tinytorch_step if args.worker == "tinytorch" else pytorch_step)(args)
    first_loss = step()
    timing = paired.time_steps(step, args.warmup - 1, args.repeat)
    gen_rate = None
    if args.gen_tokens > 0:
        start = time.perf_counter()
        generate(args.gen_tokens)
        gen_rate = args.gen_tokens / (time.perf_counter() - start)
    return paired.report({**timing, "first_loss": first_loss, "gen_tokens_per_s": gen_rate,
                          **paired.framework_info(args.worker), **info})


# -- the parent: alternate the workers, pair them, report ----------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    cores = paired.cpu_count()
    tokens = args.batch * args.block
    print(f"GPT {LAYERS} layers x {EMBD} wide, {HEADS} heads, vocab {VOCAB}; batch {args.batch} x context"
          f" {args.block} = {tokens:,} tokens, float32; one step = forward + cross-entropy + backward + clip + AdamW;"
          f" tinytorch={args.impl}; {cores} CPU(s)")
    paired.print_protocol(args, then=f"; then {args.gen_tokens} generated tokens")
    flags = paired.worker_flags(args, "impl", "batch", "block", "warmup", "repeat", "gen_tokens")
    verdicts = []
    for threads in args.threads:
        result = paired.measure(__file__, args, threads, flags)
        ratio = result.ratio()
        verdicts.append((f"{threads} thread(s)", ratio))
        info_t, info_p = result.last("tinytorch"), result.last("pytorch")
        losses = (info_t["first_loss"], info_p["first_loss"])
        if abs(losses[0] - losses[1]) > LOSS_AGREEMENT:
            raise SystemExit(f"the two models disagree: first-step loss tinytorch {losses[0]:.6f} vs pytorch"
                             f" {losses[1]:.6f} (> {LOSS_AGREEMENT:g}): not the same computation, nothing to compare")
        print(f"\n{threads} thread(s): {paired.readback(info_t, info_p)}; {info_t['parameters']:,} parameters;"
              f" first-step loss {losses[0]:.5f} / {losses[1]:.5f}")
        for name in paired.FRAMEWORKS:
            median = result.median(name)
            gen = [r["gen_tokens_per_s"] for r in result.runs[name] if r["gen_tokens_per_s"]]
            print(f"  {name + ':':10s} {median * 1e3:8.1f} ms/step ({tokens / median:7.0f} tokens/s)"
                  f"  rounds: {paired.rounds_ms(result.values(name), 1)}"
                  + (f"; generation {statistics.median(gen):6.1f} tokens/s" if gen else ""))
        print(f"  ratio tinytorch / pytorch = {ratio:.2f}  ({paired.spread(result.ratios())};"
              f" target <= {args.target:g})")
    paired.warn_if_loaded(cores)
    return paired.verdict("ratio tinytorch / pytorch", verdicts, args.target)


if __name__ == "__main__":
    raise SystemExit(main())
