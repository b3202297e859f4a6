"""Checks for module 15: Memoization (the KV cache).

`KVCache` is checked against a plain numpy model of what it must hold (every appended key and
value, in order, per layer), its byte counts against the formula 2 x layers x batch x heads x
length x head_dim x itemsize, and for views instead of copies. `forward_with_cache` is run chunk by
chunk (a prompt, then single tokens or several at once) on Hypothesis-drawn GPT configurations
(1-2 layers, 1-4 heads, float32 and float64, with and without biases, dropout models left in
training mode) and its logits for the new positions are compared, at every step, with the
uncached model(context) (module 13) and with a PyTorch computation of the same GPT from the same
weights (F.layer_norm, F.scaled_dot_product_attention with a causal mask, tanh GELU, the tied
head). `generate_cached` is compared token for token with GPT.generate, greedy and sampled with
the same generator seed, for prompts of 1 to block_size + 3 tokens and lengths that run past
block_size; one documented allowance: where the two paths' logits (equal within the float
tolerance) straddle a decision boundary (two logits tied to within rounding, or the uniform draw
on a CDF step), the check recomputes both decisions from both logit vectors and accepts the
split only if each path's token is the one its own logits give. Instrumented blocks count the
positions each mlp processes: the cached schedule (prompt once, then one position per token,
re-prefilling block_size positions per token past the window) is checked exactly. `memoize` is
compared call by call with functools.lru_cache (results, hits, misses, currsize, evictions, real
calls); `decode_mask` with torch.nn.attention.bias.causal_lower_right.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st
from torch.nn.attention.bias import causal_lower_right

from checks.harness.learner_side import learner_side
from checks.harness.parity import assert_same
from tinytorch import kvcache as KV
from tinytorch import transformer as TF
from tinytorch.attention import causal_mask
from tinytorch.layers import manual_seed
from tinytorch.tensor import Tensor

helpers = learner_side(__file__)
LOGIT_SCALE = 4.0  # a forward through a few layers accumulates a few more roundings than one op


# -- models and the PyTorch computation of the same GPT ------------------------------------------------


def _gpt(seed=0, dtype="float32", **overrides):
    config = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.0, bias=True)
    config.update(overrides)
    manual_seed(seed)
    model = TF.GPT(TF.GPTConfig(**config))
    if dtype == "float64":
        helpers.to_float64(model)
    return model, config


@st.composite
def gpt_configs(draw, max_block=10):
    n_head = draw(st.integers(1, 4))
    return dict(n_layer=draw(st.integers(1, 2)), n_head=n_head, n_embd=n_head * draw(st.integers(1, 4)),
                vocab_size=draw(st.integers(2, 12)), block_size=draw(st.integers(1, max_block)),
                bias=draw(st.booleans()), dropout=draw(st.sampled_from([0.0, 0.2])))


def _torch_logits(model, config: dict, idx: np.ndarray) -> torch.Tensor:
    """The GPT of module 13 computed with PyTorch from the model's state_dict: logits (B, T, V)."""
    p = {name: torch.from_numpy(np.array(value)) for name, value in model.state_dict().items()}
    C, H = config["n_embd"], config["n_head"]
    B, T = idx.shape
    x = p["wte.weight"][torch.from_numpy(idx)] + p["wpe.weight"][:T]
    for i in range(config["n_layer"]):
        pre = f"h.{i}."
        h = F.layer_norm(x, (C,), p[pre + "ln_1.weight"], p.get(pre + "ln_1.bias"))
        qkv = F.linear(h, p[pre + "attn.in_proj_weight"], p.get(pre + "attn.in_proj_bias"))
        q, k, v = (t.reshape(B, T, H, C // H).transpose(1, 2) for t in qkv.split(C, dim=-1))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + F.linear(a, p[pre + "attn.out_proj.weight"], p.get(pre + "attn.out_proj.bias"))
        h = F.layer_norm(x, (C,), p[pre + "ln_2.weight"], p.get(pre + "ln_2.bias"))
        h = F.gelu(F.linear(h, p[pre + "mlp.c_fc.weight"], p.get(pre + "mlp.c_fc.bias")), approximate="tanh")
        x = x + F.linear(h, p[pre + "mlp.c_proj.weight"], p.get(pre + "mlp.c_proj.bias"))
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p.get("ln_f.bias"))
    return x @ p["wte.weight"].T


# -- GPT.generate's decision rule, for explaining a split between the two paths ------------------------


def _decide(logits: np.ndarray, temperature: float, top_k, u: np.ndarray) -> np.ndarray:
    """GPT.generate's rule (module 13): tempered top-k softmax, inverse CDF at the uniform draw u (B, 1)."""
    last = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < last.shape[-1]:
        threshold = np.sort(last, axis=-1)[:, -top_k][:, None]
        last = np.where(last < threshold, -np.inf, last)
    cdf = np.cumsum(np.exp(last - last.max(axis=-1, keepdims=True)), axis=-1)
    cdf /= cdf[:, -1:]
    return (cdf <= u).sum(axis=-1)


def _cached_schedule_logits(model, tokens: np.ndarray, prompt_len: int, step: int, block_size: int) -> np.ndarray:
    """The last-position logits the documented cached schedule samples token `step` from, given `tokens`."""
    cache = KV.KVCache.for_model(model, tokens.shape[0])
    logits = KV.forward_with_cache(model, tokens[:, :prompt_len][:, -block_size:], cache).data
    for s in range(1, step + 1):
        end = prompt_len + s
        if cache.length < block_size:
            logits = KV.forward_with_cache(model, tokens[:, end - 1:end], cache).data
        else:
            cache.reset()
            logits = KV.forward_with_cache(model, tokens[:, end - block_size:end], cache).data
    return np.asarray(logits)[:, -1]


def _assert_same_tokens(model, cached, uncached, prompt: np.ndarray, n: int, block_size: int, temperature: float,
                        top_k, seed: int, what: str) -> None:
    cached, uncached = np.asarray(cached.data), np.asarray(uncached.data)
    B, P = prompt.shape
    assert cached.shape == (B, P + n) and cached.dtype == np.int64, (
        f"{what}: generate_cached returned {cached.shape} {cached.dtype}, expected int64 {(B, P + n)}")
    np.testing.assert_array_equal(cached[:, :P], prompt, err_msg=f"{what}: the prompt is kept at the front")
    split = np.nonzero((cached != uncached).any(axis=0))[0]
    if split.size == 0:
        return
    pos = int(split[0])
    step = pos - P
    context = uncached[:, :pos]
    mine = _cached_schedule_logits(model, cached, P, step, block_size)
    theirs = np.asarray(model(context[:, -block_size:])[0].data)[:, -1]
    dtype = theirs.dtype
    assert_same(mine, theirs, f"{what}: logits of the cached path vs model(context) at new token {step}",
                scale=LOGIT_SCALE)
    rng = np.random.default_rng(seed)
    for _ in range(step + 1):
        u = rng.random((B, 1))
    explained = (np.array_equal(_decide(mine, temperature, top_k, u), cached[:, pos])
                 and np.array_equal(_decide(theirs, temperature, top_k, u), uncached[:, pos]))
    assert explained, (
        f"{what}: new token {step} (position {pos}) is {cached[:, pos].tolist()} with the cache but"
        f" {uncached[:, pos].tolist()} with GPT.generate, and the two paths' logits ({dtype}, equal within"
        " tolerance) do not explain it: the cached path must sample exactly as GPT.generate does (float64"
        " logits / temperature, top-k, inverse CDF with one generator.random((B, 1)) draw per token)")


def _expected_rows(prompt_len: int, n: int, block_size: int) -> int:
    """Positions each block processes in generate_cached's documented schedule."""
    if n == 0:
        return 0
    length = min(prompt_len, block_size)
    rows = length
    for _ in range(n - 1):
        if length < block_size:
            rows, length = rows + 1, length + 1
        else:
            rows = rows + block_size
    return rows


# -- KVCache ---------------------------------------------------------------------------------------------


@given(n_layer=st.integers(1, 3), B=st.integers(1, 3), H=st.integers(1, 4), max_len=st.integers(1, 9),
       hd=st.integers(1, 5), dtype=st.sampled_from(["float32", "float64"]), data=st.data())
def test_kvcache_holds_every_append_and_counts_bytes_exactly(n_layer, B, H, max_len, hd, dtype, data):
    cache = KV.KVCache(n_layer, B, H, max_len, hd, dtype)
    itemsize = np.dtype(dtype).itemsize
    assert cache.capacity_nbytes == 2 * n_layer * B * H * max_len * hd * itemsize, (
        f"capacity_nbytes {cache.capacity_nbytes}: expected 2 x {n_layer} layers x {B} x {H} heads x max_len"
        f" {max_len} x head_dim {hd} x {itemsize} bytes")
    arrays = list(cache.keys) + list(cache.values)
    assert len(arrays) == 2 * n_layer and all(
        a.shape == (B, H, max_len, hd) and a.dtype == np.dtype(dtype) for a in arrays), (
        f"keys and values: {n_layer} preallocated arrays each of shape {(B, H, max_len, hd)} and dtype {dtype}")
    assert sum(a.nbytes for a in arrays) == cache.capacity_nbytes, "capacity_nbytes = the arrays' bytes"
    assert cache.length == 0 and cache.nbytes == 0, "a new cache holds nothing"
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    stored = [([], []) for _ in range(n_layer)]
    total = 0
    while total < max_len:
        T = data.draw(st.integers(1, max_len - total), label="T")
        for layer in range(n_layer):
            k, v = (rng.normal(size=(B, H, T, hd)).astype(dtype) for _ in range(2))
            keys, values = cache.append(layer, k, v)
            stored[layer][0].append(k)
            stored[layer][1].append(v)
            np.testing.assert_array_equal(keys, np.concatenate(stored[layer][0], axis=2), err_msg=(
                f"append(layer {layer}) returns every key stored so far, in order, (B, H, length, head_dim)"))
            np.testing.assert_array_equal(values, np.concatenate(stored[layer][1], axis=2), err_msg=(
                f"append(layer {layer}) returns every value stored so far"))
            assert cache.layer_length(layer) == total + T
            expected_length = total + T if layer == n_layer - 1 else total
            assert cache.length == expected_length, (
                f"length {cache.length}: the positions EVERY layer holds (layer {layer} of {n_layer} just appended"
                f" {T} to {total})")
        total += T
        expected = 2 * n_layer * B * H * total * hd * itemsize
        assert cache.nbytes == expected, (
            f"nbytes {cache.nbytes} after {total} positions: expected 2 x {n_layer} x {B} x {H} x {total} x {hd}"
            f" x {itemsize} = {expected}")
    for layer in range(n_layer):
        np.testing.assert_array_equal(np.asarray(cache.keys[layer]), np.concatenate(stored[layer][0], axis=2),
                                      err_msg="the keys live in the preallocated array, at positions 0..length-1")
    assert helpers.reset_keeps_the_arrays(cache), (
        "reset() keeps the preallocated arrays (the same objects): only the lengths go back to 0")
    assert cache.length == 0 and cache.nbytes == 0 and cache.capacity_nbytes == 2 * n_layer * B * H * max_len * hd * \
        itemsize, "reset() forgets every position and keeps the memory"


def test_kvcache_appends_in_place_and_returns_views():
    cache = KV.KVCache(2, 1, 2, 6, 3)
    k = np.ones((1, 2, 2, 3), dtype=np.float32)
    assert helpers.append_returns_views(cache, 0, k, 2 * k), (
        "append must write into the preallocated arrays and return views of them (np.shares_memory), never"
        " reallocate or concatenate: that is what makes a decoding step O(1) in memory traffic")
    assert helpers.append_returns_views(cache, 0, 3 * k, 4 * k)
    assert cache.layer_length(0) == 4 and cache.layer_length(1) == 0 and cache.length == 0
    assert repr(cache) == "KVCache(n_layer=2, batch_size=1, n_head=2, max_len=6, head_dim=3, dtype=float32, length=0)"


def test_kvcache_errors_name_the_problem_and_store_nothing():
    for position in range(5):  # the bad size in every position, the last too
        sizes = [2, 1, 2, 4, 3]
        sizes[position] = 0
        with pytest.raises(ValueError, match=["n_layer", "batch_size", "n_head", "max_len", "head_dim"][position]):
            KV.KVCache(*sizes)
    with pytest.raises(ValueError, match="head_dim"):
        KV.KVCache(1, 1, 1, 4, 2.5)
    with pytest.raises(TypeError, match="int64"):
        KV.KVCache(1, 1, 1, 4, 2, np.int64)
    with pytest.raises(TypeError, match="float16"):  # float32 or float64 only, as every tinytorch tensor
        KV.KVCache(1, 1, 1, 4, 2, np.float16)
    cache = KV.KVCache(2, 2, 3, 4, 5)
    good = np.zeros((2, 3, 2, 5), dtype=np.float32)
    keys_before = np.asarray(cache.keys[1]).copy()
    cases = [
        (IndexError, "layer 2", (2, good, good)),
        (IndexError, "layer -1", (-1, good, good)),
        (ValueError, r"k has shape \(2, 3, 2, 4\)", (1, good[..., :4], good)),
        (ValueError, r"v has shape \(2, 2, 2, 5\)", (1, good, good[:, :2])),  # the bad one second
        (ValueError, r"v has shape \(3, 3, 2, 5\)", (1, good, np.zeros((3, 3, 2, 5), np.float32))),
        (ValueError, r"k \(2, 3, 2, 5\) and v \(2, 3, 1, 5\)", (1, good, good[:, :, :1])),
        (ValueError, r"k has shape \(2, 3, 0, 5\)", (1, good[:, :, :0], good[:, :, :0])),
        (ValueError, r"k has shape \(3, 2, 5\)", (1, good[0], good[0])),
        (TypeError, "float64", (1, good, good.astype(np.float64))),  # a wrong dtype is never converted
        (TypeError, "float64", (1, good.astype(np.float64), good)),
        (ValueError, "max_len=4", (1, np.zeros((2, 3, 5, 5), np.float32), np.zeros((2, 3, 5, 5), np.float32))),
    ]
    for error, pattern, args in cases:
        with pytest.raises(error, match=pattern):
            cache.append(*args)
        assert cache.layer_length(1) == 0, f"a failed append ({pattern}) stores nothing"
    cache.append(1, good, good)
    cache.append(1, good, good)
    with pytest.raises(ValueError, match=r"full.*4.*max_len=4"):
        cache.append(1, good[:, :, :1], good[:, :, :1])
    assert cache.layer_length(1) == 4 and cache.nbytes == 2 * 2 * 3 * 4 * 5 * 4
    np.testing.assert_array_equal(keys_before, 0.0)


def test_kvcache_for_model_fits_the_model_and_its_dtype():
    for dtype in ("float32", "float64"):
        model, config = _gpt(0, dtype, n_layer=3, n_head=2, n_embd=12, block_size=7)
        cache = KV.KVCache.for_model(model, 4)
        got = (cache.n_layer, cache.batch_size, cache.n_head, cache.max_len, cache.head_dim, np.dtype(cache.dtype))
        assert got == (3, 4, 2, 7, 6, np.dtype(dtype)), (
            f"KVCache.for_model: (n_layer, batch, n_head, max_len, head_dim, dtype) = {got}; expected the model's"
            f" 3 layers, batch 4, 2 heads, block_size 7, head_dim 12 // 2 = 6, {dtype}")
        assert KV.KVCache.for_model(model, 1, max_len=3).max_len == 3


# -- forward_with_cache --------------------------------------------------------------------------------


@given(config=gpt_configs(), B=st.integers(1, 2), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**16), data=st.data())
def test_forward_with_cache_gives_the_full_forwards_logits_at_every_step(config, B, dtype, seed, data):
    model, _ = _gpt(seed, dtype, **config)
    bs, V = config["block_size"], config["vocab_size"]
    tokens = np.random.default_rng(seed).integers(0, V, (B, bs))
    cache = KV.KVCache.for_model(model, B)
    start = 0
    while start < bs:
        T = data.draw(st.sampled_from(sorted({1, bs - start}))
                      if data.draw(st.booleans(), label="whole") else st.integers(1, bs - start), label="T")
        logits = KV.forward_with_cache(model, tokens[:, start:start + T], cache)
        got = np.asarray(logits.data)
        assert got.shape == (B, T, V) and got.dtype == np.dtype(dtype), (
            f"forward_with_cache returns logits (B, T_new, vocab) = {(B, T, V)} in the model's dtype {dtype},"
            f" got {got.shape} {got.dtype}")
        context = tokens[:, :start + T]
        model.eval()
        expected = np.asarray(model(context)[0].data)[:, start:]
        model.train()
        assert_same(got, expected, f"logits of positions {start}..{start + T - 1} after {start} cached positions"
                    " vs model(context) (no cache)", scale=LOGIT_SCALE)
        assert_same(got, _torch_logits(model, config, context)[:, start:], f"logits of positions {start}.."
                    f"{start + T - 1} vs PyTorch's forward of the same GPT", scale=LOGIT_SCALE)
        start += T
        assert cache.length == start, f"after feeding {start} positions the cache holds {cache.length}"
        assert cache.nbytes == 2 * config["n_layer"] * B * config["n_embd"] * start * np.dtype(dtype).itemsize
    assert model.training, "forward_with_cache restores the training mode"


def test_forward_with_cache_uses_eval_mode_records_no_graph_and_projects_only_new_tokens():
    model, config = _gpt(2, dropout=0.5)
    helpers.instrument(model)
    tokens = np.array([[1, 2, 3, 4, 5, 6]])
    cache = KV.KVCache.for_model(model, 1)
    a = KV.forward_with_cache(model, tokens[:, :4], cache)
    assert helpers.rows_per_block(model) == [4, 4], "the prompt's 4 positions go through each block once"
    b = KV.forward_with_cache(model, tokens[:, 4:], cache)
    assert helpers.rows_per_block(model) == [6, 6], (
        f"feeding 2 more tokens must run only those 2 positions through each block (the cached keys and values"
        f" stand for the others); the blocks processed {helpers.rows_per_block(model)} positions in total")
    assert model.training, "the mode is restored"
    assert not a.requires_grad and a.grad_fn is None and b.grad_fn is None, "no graph is recorded (no_grad)"
    model.eval()
    full = np.asarray(model(tokens)[0].data)
    assert_same(np.concatenate([a.data, b.data], axis=1), full, "cached logits of a dropout=0.5 model left in"
                " training mode vs model.eval() logits: the cached forward is the inference forward",
                scale=LOGIT_SCALE)


def test_forward_with_cache_errors_name_the_problem():
    model, _ = _gpt(3)  # block_size 8, 2 layers, 2 heads of 4
    cache = KV.KVCache.for_model(model, 2)
    KV.forward_with_cache(model, np.zeros((2, 6), np.int64), cache)
    bad = [
        (ValueError, r"6 cached \+ 3 new.*block_size=8", np.zeros((2, 3), np.int64), cache),
        (ValueError, r"batch 1.*batch_size=2", np.zeros((1, 1), np.int64), cache),
        (ValueError, r"\(2,\)", np.zeros(2, np.int64), cache),
        (ValueError, "at least one", np.zeros((2, 0), np.int64), cache),
        (TypeError, "float", np.array([[1, 2.5]]), cache),
        (ValueError, "n_layer=3", np.zeros((1, 1), np.int64), KV.KVCache(3, 1, 2, 8, 4)),
        (ValueError, "n_head=4", np.zeros((1, 1), np.int64), KV.KVCache(2, 1, 4, 8, 2)),
        (ValueError, "dtype=float64", np.zeros((1, 1), np.int64), KV.KVCache(2, 1, 2, 8, 4, np.float64)),
    ]
    for error, pattern, idx, c in bad:
        with pytest.raises(error, match=pattern):
            KV.forward_with_cache(model, idx, c)
    assert cache.length == 6, "a rejected call appends nothing"
    small = KV.KVCache.for_model(model, 1, max_len=3)
    with pytest.raises(ValueError, match=r"max_len=3"):
        KV.forward_with_cache(model, np.zeros((1, 4), np.int64), small)
    assert small.length == 0


# -- generate_cached -----------------------------------------------------------------------------------


@given(config=gpt_configs(), B=st.integers(1, 2), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**16), data=st.data())
def test_generate_cached_greedy_equals_generate_token_for_token(config, B, dtype, seed, data):
    model, _ = _gpt(seed, dtype, **config)
    bs = config["block_size"]
    P = data.draw(st.integers(1, bs + 3), label="prompt_len")
    n = data.draw(st.integers(0, 2 * bs + 3), label="max_new_tokens")  # runs past block_size
    prompt = np.random.default_rng(seed).integers(0, config["vocab_size"], (B, P))
    cached = KV.generate_cached(model, prompt, n, top_k=1, generator=np.random.default_rng(seed))
    uncached = model.generate(prompt, n, top_k=1, generator=np.random.default_rng(seed))
    _assert_same_tokens(model, cached, uncached, prompt, n, bs, 1.0, 1, seed,
                        f"greedy, prompt {P} tokens, {n} new, block_size {bs}, {dtype}")
    assert model.training, "generate_cached restores the training mode"


@given(config=gpt_configs(max_block=6), dtype=st.sampled_from(["float32", "float64"]),
       temperature=st.sampled_from([0.5, 1.0, 2.0]), top_k=st.sampled_from([None, 1, 2, 3, 100]),
       seed=st.integers(0, 2**16), data=st.data())
def test_generate_cached_samples_exactly_like_generate_with_the_same_seed(config, dtype, temperature, top_k, seed,
                                                                          data):
    model, _ = _gpt(seed, dtype, **config)
    bs = config["block_size"]
    P = data.draw(st.integers(1, bs), label="prompt_len")
    n = data.draw(st.integers(1, 2 * bs + 2), label="max_new_tokens")
    prompt = np.random.default_rng(seed + 1).integers(0, config["vocab_size"], (3, P))
    cached = KV.generate_cached(model, prompt, n, temperature=temperature, top_k=top_k,
                                generator=np.random.default_rng(seed))
    uncached = model.generate(prompt, n, temperature=temperature, top_k=top_k, generator=np.random.default_rng(seed))
    _assert_same_tokens(model, cached, uncached, prompt, n, bs, temperature, top_k, seed,
                        f"sampling at temperature {temperature}, top_k={top_k}, {n} new tokens, block_size {bs}")


@pytest.mark.parametrize("prompt_len,n", [(1, 12), (3, 5), (8, 4), (11, 3), (5, 1), (2, 0)])
def test_generate_cached_runs_each_token_through_the_blocks_once_while_it_fits(prompt_len, n):
    model, config = _gpt(4)  # block_size 8
    helpers.instrument(model)
    prompt = np.random.default_rng(prompt_len).integers(0, 11, (2, prompt_len))
    out = KV.generate_cached(model, prompt, n, top_k=1)
    assert out.shape == (2, prompt_len + n)
    expected = _expected_rows(prompt_len, n, config["block_size"]) * 2  # batch 2
    assert helpers.rows_per_block(model) == [expected] * config["n_layer"], (
        f"prompt {prompt_len}, {n} new tokens, block_size 8, batch 2: each block must process {expected} positions"
        " (the cropped prompt once, then ONE position per new token while the context fits, and the whole"
        " block_size window per token once it slides), got"
        f" {helpers.rows_per_block(model)}; GPT.generate's uncached loop would process"
        f" {2 * sum(min(prompt_len + s, 8) for s in range(n))}")


def test_generate_cached_validates_like_generate_and_uses_the_default_generator():
    model, _ = _gpt(9, dropout=0.2)
    prompt = np.array([[1, 2]])
    manual_seed(4)
    a = KV.generate_cached(model, prompt, 6)
    manual_seed(4)
    b = model.generate(prompt, 6)
    np.testing.assert_array_equal(a.data, b.data, err_msg=(
        "without generator=, generate_cached draws from module 03's default generator, as GPT.generate does"))
    assert model.training, "generate_cached restores training mode afterwards"
    model.eval()
    out = KV.generate_cached(model, prompt, 0)
    assert out.shape == (1, 2) and out.dtype == np.int64 and not model.training
    np.testing.assert_array_equal(out.data, prompt)
    for kwargs, fragment in (({"temperature": 0.0}, "temperature"), ({"top_k": 0}, "top_k"),
                             ({"top_k": True}, "top_k"), ({"max_new_tokens": -1}, "max_new_tokens")):
        with pytest.raises(ValueError, match=fragment):
            KV.generate_cached(model, prompt, **{"max_new_tokens": 2, **kwargs})
    with pytest.raises(ValueError, match="at least one token"):
        KV.generate_cached(model, np.zeros((1, 0), np.int64), 2)
    with pytest.raises(TypeError, match="integers"):
        KV.generate_cached(model, np.array([[1.0, 2.0]]), 2)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        KV.generate_cached(model, np.array([1, 2, 3]), 2)
    long_prompt = np.arange(11).reshape(1, 11) % 11  # longer than block_size 8: cropped like GPT.generate
    np.testing.assert_array_equal(KV.generate_cached(model, Tensor(long_prompt, dtype=np.int64), 3, top_k=1).data,
                                  model.generate(long_prompt, 3, top_k=1).data,
                                  err_msg="a prompt longer than block_size is cropped to its last block_size tokens")


# -- memoize and decode_mask -------------------------------------------------------------------------------


LRU_NOT_FIFO = [(1, 0, False), (2, 0, False), (1, 0, False), (3, 0, False), (1, 0, False)]  # 1 must survive 3


@given(maxsize=st.sampled_from([None, 0, 1, 2, 3, 5]),
       calls=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1), st.booleans()), min_size=1, max_size=30))
@example(maxsize=2, calls=LRU_NOT_FIFO)
def test_memoize_matches_functools_lru_cache_call_by_call(maxsize, calls):
    counted = helpers.Counted()
    ours = KV.memoize(maxsize)(counted)
    real_calls = [0]

    def plain(x, y=0):
        real_calls[0] += 1
        return [x, y]

    theirs = functools.lru_cache(maxsize=maxsize)(plain)
    for i, (x, y, keyword) in enumerate(calls):
        got = ours(x, y=y) if keyword else ours(x, y)
        expected = theirs(x, y=y) if keyword else theirs(x, y)
        assert list(got) == expected, f"call {i}: f({x}, {y}) returned {got}"
        info, their_info = tuple(ours.cache_info()), tuple(theirs.cache_info())
        assert info == their_info, (
            f"after call {i} ({'f(x, y=y)' if keyword else 'f(x, y)'} with x={x}, y={y}) of {calls[:i + 1]}:"
            f" cache_info() (hits, misses, maxsize, currsize) = {info}, functools.lru_cache(maxsize={maxsize})"
            f" gives {their_info} (keyword and positional calls are different keys; the least recently USED"
            " entry is evicted)")
        assert (int(ours.hits), int(ours.misses)) == info[:2], "hits and misses attributes agree with cache_info()"
        assert int(counted.calls) == real_calls[0], (
            f"after call {i}: the wrapped function ran {counted.calls} times, functools would have run it"
            f" {real_calls[0]} times")
    ours.cache_clear()
    theirs.cache_clear()
    assert tuple(ours.cache_info()) == tuple(theirs.cache_info()), "cache_clear() empties the table and the counters"
    ours(calls[0][0])
    assert int(ours.misses) == 1, "after cache_clear() the next call is a miss"


def test_memoize_returns_the_stored_object_keeps_failures_out_and_validates():
    ours = KV.memoize(4)(helpers.Counted(fail_on=3))
    assert helpers.hit_returns_the_same_object(ours, 1), "a hit returns the stored result itself (no copy, no call)"
    for _ in range(2):
        with pytest.raises(ValueError, match="refusing x=3"):
            ours(3)
    assert tuple(ours.cache_info()) == (1, 3, 4, 1), (
        f"cache_info() {tuple(ours.cache_info())}: a call that raised is a miss that stores nothing, so the second"
        " f(3) runs again (functools.lru_cache does the same)")
    with pytest.raises(TypeError):
        helpers.call_with_list_argument(ours)
    ours, theirs = KV.memoize(None)(helpers.Counted()), functools.lru_cache(maxsize=None)(lambda x, y=0: [x, y])
    for args, kwargs in (((), {"x": 1, "y": 2}), ((), {"y": 2, "x": 1}), ((1, 2), {}), ((1,), {"y": 2}),
                         ((), {"x": 1, "y": 2})):
        ours(*args, **kwargs)
        theirs(*args, **kwargs)
    assert tuple(ours.cache_info()) == tuple(theirs.cache_info()), (
        f"f(x=1, y=2), f(y=2, x=1), f(1, 2), f(1, y=2), f(x=1, y=2): cache_info() {tuple(ours.cache_info())},"
        f" functools gives {tuple(theirs.cache_info())}: the key keeps the keywords in call order, after a marker")
    assert ours.__name__ == "counted"
    by_tuple, (hits, misses) = helpers.memoize_keys_by_value(KV.memoize)
    assert list(by_tuple) == [0, 2, 4, 6, 8], (
        f"f = memoize(8)(sum): [f((i, i)) for i in range(5)] gave {list(by_tuple)}, expected [0, 2, 4, 6, 8]: key on the"
        " arguments' VALUES (hash and ==), never on id(), which Python reuses once a temporary is freed")
    assert (hits, misses) == (1, 1), (
        f"g(10**6) then g(int('1000000')): (hits, misses) = {(hits, misses)}, functools gives (1, 1): equal arguments"
        " are the same key even when they are different objects")
    for bad in (-1, 2.5, "8", True):
        with pytest.raises(ValueError, match="maxsize"):
            KV.memoize(bad)(helpers.Counted())
    with pytest.raises(TypeError, match="callable"):
        KV.memoize(4)(42)


@given(k_len=st.integers(1, 12), data=st.data())
def test_decode_mask_is_torchs_lower_right_causal_mask_and_is_memoized(k_len, data):
    q_len = data.draw(st.integers(1, k_len), label="q_len")
    before = KV.decode_mask.cache_info()
    mask = KV.decode_mask(q_len, k_len)
    expected = causal_lower_right(q_len, k_len)._materialize().numpy()
    assert mask.dtype == np.bool_ and mask.shape == (q_len, k_len)
    np.testing.assert_array_equal(mask, expected, err_msg=(
        f"decode_mask({q_len}, {k_len}): the new queries are the LAST {q_len} of {k_len} positions, so query i sees"
        f" keys 0..{k_len - q_len}+i (torch.nn.attention.bias.causal_lower_right)"))
    if q_len == k_len:
        np.testing.assert_array_equal(mask, causal_mask(q_len), err_msg="a full prefill: module 12's causal mask")
    KV.decode_mask(q_len, k_len)
    after = KV.decode_mask.cache_info()
    assert after.hits >= before.hits + 1, "asking for the same mask twice is a hit the second time"
    assert helpers.hit_returns_the_same_object(KV.decode_mask, q_len, k_len), "a hit returns the stored mask itself"
    assert helpers.result_is_read_only(KV.decode_mask, q_len, k_len), (
        "a memoized array is shared by every caller: decode_mask's result must be read-only"
        " (mask.flags.writeable = False) so no caller can corrupt it")


def test_decode_mask_errors_and_hits_during_generation_past_block_size():
    for q_len, k_len in ((0, 3), (4, 3), (2, 0), (1.5, 3)):
        with pytest.raises(ValueError, match=rf"q_len={q_len}.*k_len={k_len}"):
            KV.decode_mask(q_len, k_len)
    model, _ = _gpt(5, block_size=4)
    before = KV.decode_mask.cache_info()
    KV.generate_cached(model, np.array([[1, 2]]), 10, top_k=1)
    after = KV.decode_mask.cache_info()
    # tokens 3..9 are sampled after a re-prefill of the 4-token window: 7 re-prefills, each asking for the
    # (4, 4) mask in each of the 2 layers; only the first of those 14 calls may be a miss
    assert after.hits - before.hits >= 2 * 7 - 1, (
        f"generating 10 tokens after 2 with block_size 4 re-prefills the 4-token window 7 times, asking for"
        f" decode_mask(4, 4) in each of 2 layers: expected at least 13 hits, got {after.hits - before.hits}")
