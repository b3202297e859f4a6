"""Benchmark: generating 256 tokens with module 15's KV cache vs module 13's GPT.generate (no cache).

The model has the 2017 milestone's size (milestones/m2017_transformer.py, FULL recipe: 4 layers,
4 heads, 128 wide, a 65-character vocabulary) but block_size 256 instead of the milestone's 128:
a one-token prompt plus 256 new tokens then never leaves the context window, which is the regime
a KV cache speeds up. (Past block_size the window slides, every learned absolute position shifts
and generate_cached must re-prefill the window at every step - GPT.generate's cost; `--block 128`
shows what that does to the ratio.) The weights are GPT-2's random initialisation from a fixed
seed: the cost of a step does not depend on what the weights are.

Both sides decode greedily (top_k=1) from the same one-token prompt; the generated tokens are
compared and reported. Protocol: one warm-up call of each (--warmup-tokens new tokens), then
--rounds interleaved rounds (the order alternates: cached first in even rounds, uncached first in
odd ones), each timing one full generation per side; a round's speed-up is
time(GPT.generate) / time(generate_cached) of that round, and the verdict is the median of the
rounds' speed-ups, with their min..max as the noise.

    python milestones/benchmarks/kv_cache.py                      # reference tinytorch, 1 BLAS thread
    python milestones/benchmarks/kv_cache.py --impl katas         # your katas
    python milestones/benchmarks/kv_cache.py --sweep              # also: speed-up vs tokens, cache bytes

This is a script, not a test: it prints the measurements and exits 0 when the median speed-up is at
least --target (default 5), 3 when it is below (a crash exits 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import _paired as paired

# The 2017 milestone's model size (FULL recipe) with a 256-token window.
VOCAB, LAYERS, HEADS, EMBD, BLOCK = 65, 4, 4, 128, 256


def build_model(block_size: int = BLOCK, seed: int = 0):
    """A GPT of the milestone's size, GPT-2 initialisation from `seed` (module 03's manual_seed)."""
    from tinytorch.layers import manual_seed
    from tinytorch.transformer import GPT, GPTConfig

    manual_seed(seed)
    return GPT(GPTConfig(vocab_size=VOCAB, block_size=block_size, n_layer=LAYERS, n_head=HEADS, n_embd=EMBD))


def kv_cache_speedup(new_tokens: int = 256, block_size: int = BLOCK, rounds: int = 3, warmup_tokens: int = 32,
                     model=None) -> dict:
    """Median over `rounds` interleaved rounds of time(model.generate) / time(generate_cached), greedy,
    `new_tokens` tokens after a one-token prompt. Returns {"speedup", "samples" (per round), "cached_s",
    "uncached_s" (medians), "tokens_identical", "new_tokens", "block_size"}."""
    import numpy as np

    from tinytorch.kvcache import generate_cached

    model = build_model(block_size) if model is None else model
    prompt = np.zeros((1, 1), dtype=np.int64)

    def cached():
        return generate_cached(model, prompt, new_tokens, top_k=1)

    def uncached():
        return model.generate(prompt, new_tokens, top_k=1)

    generate_cached(model, prompt, warmup_tokens, top_k=1)
    model.generate(prompt, warmup_tokens, top_k=1)
    speedups, cached_times, uncached_times, identical = [], [], [], True
    for r in range(rounds):
        seconds, outputs = {}, {}
        for fn in paired.abba(r, (cached, uncached)):
            start = time.perf_counter()
            outputs[fn] = np.asarray(fn().data)
            seconds[fn] = time.perf_counter() - start
        identical = identical and bool(np.array_equal(outputs[cached], outputs[uncached]))
        cached_times.append(seconds[cached])
        uncached_times.append(seconds[uncached])
        speedups.append(seconds[uncached] / seconds[cached])
    return {"speedup": statistics.median(speedups), "samples": [round(s, 3) for s in speedups],
            "cached_s": statistics.median(cached_times), "uncached_s": statistics.median(uncached_times),
            "tokens_identical": identical, "new_tokens": new_tokens, "block_size": block_size}


def cache_bytes_table(lengths=(64, 128, 256, 512, 1024, 2048)) -> list[tuple[int, int, int]]:
    """(context length, KVCache.nbytes filled to that length, KVCache.capacity_nbytes) for the milestone's
    model at batch 1, float32, measured on real caches."""
    import numpy as np

    from tinytorch.kvcache import KVCache

    rows = []
    for n in lengths:
        cache = KVCache(LAYERS, 1, HEADS, n, EMBD // HEADS, np.float32)
        for layer in range(LAYERS):
            block = np.zeros((1, HEADS, n, EMBD // HEADS), dtype=np.float32)
            cache.append(layer, block, block)
        rows.append((n, cache.nbytes, cache.capacity_nbytes))
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="reference", help="TINYTORCH_IMPL (default: reference)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (set before numpy loads; default 1)")
    parser.add_argument("--tokens", type=paired.at_least(1), default=256,
                        help="new tokens per generation (default 256)")
    parser.add_argument("--block", type=int, default=BLOCK, help=f"block_size of the model (default {BLOCK})")
    parser.add_argument("--rounds", type=paired.at_least(1), default=3, help="interleaved timed rounds (default 3)")
    parser.add_argument("--warmup-tokens", type=int, default=32)
    parser.add_argument("--target", type=float, default=5.0, help="minimum median speed-up (default 5)")
    parser.add_argument("--sweep", action="store_true",
                        help="also print the speed-up for 32..256 tokens and the cache's bytes per context length")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.update(paired.thread_env(args.threads))  # before numpy is imported (by tinytorch) in this process
    os.environ["TINYTORCH_IMPL"] = args.impl
    sys.path.insert(0, str(paired.ROOT))
    import numpy as np

    import tinytorch.autograd  # noqa: F401  (registers the backward engine, as every milestone does)

    cores = paired.cpu_count()
    print(f"GPT {LAYERS} layers x {EMBD} wide, {HEADS} heads, vocab {VOCAB}, block_size {args.block}, float32;"
          f" greedy, 1-token prompt, {args.tokens} new tokens; tinytorch={args.impl}; numpy {np.__version__},"
          f" {args.threads} BLAS thread(s), {cores} CPU(s)")
    print(f"one warm-up call per side ({args.warmup_tokens} tokens), then {args.rounds} interleaved rounds;"
          " speed-up = time(GPT.generate) / time(generate_cached) per round, median reported")
    model = build_model(args.block)
    if args.sweep:
        print("\nnew tokens | GPT.generate | generate_cached | speed-up")
        for n in (32, 64, 128, 256):
            r = kv_cache_speedup(n, args.block, rounds=args.rounds, warmup_tokens=args.warmup_tokens, model=model)
            print(f"{n:10d} | {r['uncached_s'] * 1e3:9.0f} ms | {r['cached_s'] * 1e3:12.0f} ms | {r['speedup']:6.1f}x"
                  f"  (rounds {' '.join(f'{s:.1f}' for s in r['samples'])}; tokens identical: {r['tokens_identical']})")
        print("\ncontext length | KVCache.nbytes (filled) | = 2 x layers x heads x length x head_dim x 4 bytes")
        for n, filled, capacity in cache_bytes_table():
            print(f"{n:14d} | {filled:>12,d} bytes = {filled / 2**20:6.2f} MiB | capacity {capacity:,d}")
    result = kv_cache_speedup(args.tokens, args.block, rounds=args.rounds, warmup_tokens=args.warmup_tokens,
                              model=model)
    print(f"\n{args.tokens} new tokens: GPT.generate {result['uncached_s']:.3f} s, generate_cached"
          f" {result['cached_s']:.3f} s (medians); tokens identical: {result['tokens_identical']}")
    print(f"speed-up {result['speedup']:.2f}x ({paired.spread(result['samples'], 'rounds')};"
          f" target >= {args.target:g}x)")
    paired.warn_if_loaded(cores)
    return paired.verdict("speed-up GPT.generate / generate_cached", [(f"{args.tokens} tokens", result["speedup"])],
                          args.target, higher_is_better=True, unit="x")

if __name__ == "__main__":
    raise SystemExit(main())
