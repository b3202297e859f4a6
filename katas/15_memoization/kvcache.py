# KATA: replace every `raise NotImplementedError` below with your implementation.
# Generated from reference/15_memoization/kvcache.py by `kata stubs`; your edits are never overwritten.
"""Module 15 - Memoization: never compute the same thing twice (the KV cache).

Module 13's ``GPT.generate`` runs the WHOLE context through the model for every new token: to
emit token t+1 it recomputes the keys and values of tokens 0..t, which were already computed for
token t. In a causal transformer those keys and values never change once a token is in the
context (position i only attends to positions <= i), so they can be kept - memoized - and each
step only has to push ONE new token through the network:

    step cost without a cache:  the full forward of t tokens          O(t) projections, O(t^2) attention
    step cost with a KV cache:  one token's projections + its row     O(1) projections, O(t)   attention

This module reuses a trained module-13 GPT as it is (its wte, wpe, blocks' ln_1 / attn weights /
ln_2 / mlp, ln_f and the tied head) and gives tinytorch:

    KVCache(n_layer, batch_size, n_head, max_len, head_dim, dtype=np.float32)
        preallocated keys/values per layer, (B, n_head, max_len, head_dim) each, in the model's dtype;
        append(layer, k, v) -> the (keys, values) so far; length; nbytes (filled) / capacity_nbytes;
        reset(); KVCache.for_model(model, batch_size, max_len=None)
    forward_with_cache(model, idx_new, cache) -> logits (B, T_new, vocab) for the NEW positions only
    generate_cached(model, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None)
        GPT.generate's contract and sampling, token for token, with a KV cache
    memoize(maxsize=128)     an LRU memoizing decorator with functools.lru_cache's counters
    decode_mask(q_len, k_len)  the memoized (read-only) causal mask of q_len new queries over k_len keys

Past block_size. GPT.generate crops the context to its last block_size tokens, and the model's
position embeddings are ABSOLUTE (learned wpe rows 0..block_size-1): once the window slides by
one token, every token in it sits at a new position, so every cached key and value is stale.
generate_cached therefore decodes incrementally while the context fits (cache length <
block_size) and, for every step after that, re-fills ("re-prefills") the cache from the cropped
window - exactly GPT.generate's computation, so the tokens stay the same, but without a speed-up
past block_size. (Models with relative positions - RoPE, ALiBi - can keep a sliding-window cache.)
"""

from __future__ import annotations

import math
from collections import OrderedDict, namedtuple
from typing import Any, Callable

import numpy as np

from tinytorch.attention import masked_softmax
from tinytorch.autograd import no_grad
from tinytorch.layers import default_generator
from tinytorch.tensor import FLOAT_DTYPES, Tensor

CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "maxsize", "currsize"])  # functools' fields

_KWARGS_MARK = object()  # separates positional from keyword arguments in a memo key (as functools does)


# ----------------------------------------------------------------------------
# Memoization: an LRU cache with counters
# ----------------------------------------------------------------------------


class Memoized:
    """A function wrapped with an LRU memo table: functools.lru_cache's contract and counters.

    call(*args, **kwargs): the key is args, plus a marker and kwargs.items() in call order when
    there are keyword arguments (f(1) and f(x=1) are different entries, as in functools). A key in
    the table is a HIT: its stored result is returned (the same object) and the entry becomes the
    most recently used. Otherwise a MISS: fn runs, and its result is stored if maxsize allows;
    storing beyond maxsize evicts the LEAST recently used entry. maxsize=None never evicts,
    maxsize=0 stores nothing (every call a miss). Unhashable arguments raise TypeError (from the
    dict lookup), and fn's exceptions propagate without storing anything.
    hits, misses: counters; cache_info() -> CacheInfo(hits, misses, maxsize, currsize);
    cache_clear() empties the table and zeroes the counters.
    """

    def __init__(self, fn: Callable[..., Any], maxsize: int | None = 128):
        if not callable(fn):
            raise TypeError(f"memoize: expected a callable, got {type(fn).__name__}")
        if maxsize is not None and (not isinstance(maxsize, (int, np.integer)) or isinstance(maxsize, bool)
                                    or maxsize < 0):
            raise ValueError(f"memoize: maxsize must be None or a non-negative integer, got {maxsize!r}")
        self.fn, self.maxsize = fn, None if maxsize is None else int(maxsize)
        self.__name__ = getattr(fn, "__name__", "memoized")
        self.__doc__ = getattr(fn, "__doc__", None)
        self.hits = self.misses = 0
        self._table: OrderedDict = OrderedDict()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # TODO: 1. key = args, or args + (_KWARGS_MARK,) + tuple(kwargs.items()) with keywords.
        # TODO: 2. Found: count a hit, move the entry to the end (most recent), return it.
        # TODO: 3. Not found: count a miss, call fn; store the result at the end unless maxsize == 0,
        #          evicting from the front (popitem(last=False)) while over maxsize.
        raise NotImplementedError('Memoized.__call__: your turn - see the TODOs above')

    def cache_info(self) -> CacheInfo:
        """CacheInfo(hits, misses, maxsize, currsize) like functools.lru_cache's cache_info()."""
        raise NotImplementedError('Memoized.cache_info: your turn - see the TODOs above')

    def cache_clear(self) -> None:
        """Forget every stored result and zero both counters."""
        raise NotImplementedError('Memoized.cache_clear: your turn - see the TODOs above')


def memoize(maxsize: int | None = 128) -> Callable[[Callable[..., Any]], Memoized]:
    """Decorator: ``@memoize(maxsize=64) def f(...)`` wraps f in a Memoized LRU table (see Memoized)."""

    def decorate(fn: Callable[..., Any]) -> Memoized:
        return Memoized(fn, maxsize)

    return decorate


@memoize(maxsize=64)
def decode_mask(q_len: int, k_len: int) -> np.ndarray:
    """Causal mask of q_len NEW queries over k_len keys (the cached ones first), True = may attend.

    The queries are the LAST q_len positions 0..k_len-1: query i sits at position
    k_len - q_len + i and sees keys j <= k_len - q_len + i (aligned bottom-right; module 12's
    causal_mask(L, S) is aligned top-left, which is only the same when q_len == k_len).
    Memoized: every call with the same sizes returns the SAME array, so it is made read-only
    (a caller writing into a shared result would corrupt every later call). During generation
    past block_size each step re-prefills a block_size window and asks for the same
    (block_size, block_size) mask: a hit each time.
    q_len, k_len: 1 <= q_len <= k_len (ValueError naming both otherwise).
    """
    # TODO: validate; mask = np.tril of ones((q_len, k_len), bool) with offset k = k_len - q_len;
    #       mark it read-only (mask.flags.writeable = False) and return it.
    raise NotImplementedError('decode_mask: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# The cache
# ----------------------------------------------------------------------------


class KVCache:
    """Per-layer key and value memory for incremental decoding, allocated once.

    keys[l], values[l]: np.ndarray (batch_size, n_head, max_len, head_dim) of `dtype` (the model's),
    allocated up front (np.zeros), so appending never reallocates or copies what is stored.
    Each layer has its own fill level: forward_with_cache appends layer 0, then 1, ...; `length`
    is the number of positions every layer holds.
    nbytes:          bytes of the FILLED part: 2 (K and V) * sum over layers of
                     batch_size * n_head * (that layer's length) * head_dim * itemsize
                     = 2 * n_layer * B * n_head * length * head_dim * itemsize when all layers agree.
    capacity_nbytes: bytes allocated: the same with max_len, = the arrays' total nbytes.
    Sizes must be positive integers and dtype float32/float64 (ValueError / TypeError naming them).
    """

    def __init__(self, n_layer: int, batch_size: int, n_head: int, max_len: int, head_dim: int,
                 dtype: Any = np.float32):
        # TODO: validate the sizes and dtype; store them; allocate keys and values (lists of n_layer
        #       zero arrays (batch_size, n_head, max_len, head_dim) of dtype); per-layer lengths 0.
        raise NotImplementedError('KVCache.__init__: your turn - see the TODOs above')

    @classmethod
    def for_model(cls, model: Any, batch_size: int, max_len: int | None = None) -> "KVCache":
        """A cache shaped for a module-13 GPT: its n_layer, n_head, n_embd // n_head and the dtype of
        its parameters (wte.weight); max_len defaults to block_size (the longest context it sees)."""
        raise NotImplementedError('KVCache.for_model: your turn - see the TODOs above')

    @property
    def length(self) -> int:
        """Positions held by every layer (the smallest per-layer fill level)."""
        raise NotImplementedError('KVCache.length: your turn - see the TODOs above')

    def layer_length(self, layer: int) -> int:
        """Positions held by one layer."""
        raise NotImplementedError('KVCache.layer_length: your turn - see the TODOs above')

    def _layer(self, layer: int) -> int:
        """Validate a layer index (given helper)."""
        if not isinstance(layer, (int, np.integer)) or isinstance(layer, bool) or not 0 <= layer < self.n_layer:
            raise IndexError(f"KVCache: layer {layer!r} out of range for n_layer={self.n_layer}")
        return int(layer)

    def append(self, layer: int, k: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
        """Store the keys and values of T new positions for one layer; return everything stored.

        k, v: arrays or Tensors (batch_size, n_head, T, head_dim) of the cache's dtype, written at
        positions [L, L + T) of that layer (L its current length). Returns (keys, values) as VIEWS
        [:, :, :L + T] of the preallocated arrays (no copy).
        Errors, naming the problem and nothing stored: IndexError for a bad layer; ValueError for a
        shape other than (batch_size, n_head, T >= 1, head_dim) or k and v of different shapes;
        TypeError for another dtype (the cache never converts silently: a float64 k in a float32
        cache is a bug upstream); ValueError "full" when L + T > max_len.
        """
        # TODO: 1. Unwrap Tensors (.data); validate layer, shapes, dtypes and room, in that order.
        # TODO: 2. Write into keys[layer][:, :, L:L+T] and values[layer][:, :, L:L+T]; advance the
        #          layer's length; return views up to the new length.
        raise NotImplementedError('KVCache.append: your turn - see the TODOs above')

    def reset(self) -> None:
        """Forget every stored position (the memory stays allocated)."""
        raise NotImplementedError('KVCache.reset: your turn - see the TODOs above')

    @property
    def nbytes(self) -> int:
        """Bytes of the filled part of every layer's keys and values (see the class docstring)."""
        raise NotImplementedError('KVCache.nbytes: your turn - see the TODOs above')

    @property
    def capacity_nbytes(self) -> int:
        """Bytes allocated: 2 * n_layer * batch_size * n_head * max_len * head_dim * itemsize."""
        raise NotImplementedError('KVCache.capacity_nbytes: your turn - see the TODOs above')

    def __repr__(self) -> str:
        return (f"KVCache(n_layer={self.n_layer}, batch_size={self.batch_size}, n_head={self.n_head},"
                f" max_len={self.max_len}, head_dim={self.head_dim}, dtype={self.dtype}, length={self.length})")


# ----------------------------------------------------------------------------
# Cached forward and generation
# ----------------------------------------------------------------------------


def _as_index_array(idx: Any, what: str) -> np.ndarray:
    """idx (array, list or Tensor) as a 2-D int64 array (given helper; ValueError / TypeError naming it)."""
    idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{what}: token ids must be integers, got dtype {idx.dtype}")
    if idx.ndim != 2:
        raise ValueError(f"{what}: token ids must be (batch, time), got shape {idx.shape}")
    return idx.astype(np.int64, copy=False)


def _cached_attention(attn: Any, h: Tensor, cache: KVCache, layer: int) -> Tensor:
    """One block's causal self-attention for the T new positions h (B, T, C), keys and values of the
    earlier positions taken from (and the new ones appended to) the cache. Returns (B, T, C)."""
    # TODO: 1. Project h's 2-D (B*T, C) view with attn.in_proj_weight (3C, C) in ONE matmul (+ in_proj_bias):
    #          rows [0, C) give q, [C, 2C) k, [2C, 3C) v, as in module 12; split into heads:
    #          (B*T, 3C) -> (B, T, 3, H, hd) -> q, k, v each (B, H, T, hd).
    # TODO: 2. keys, values = cache.append(layer, k, v): everything so far, S = L + T positions.
    # TODO: 3. scores = (q * 1/sqrt(hd)) @ keys^T  (B, H, T, S); T == 1 sees every key; T > 1 needs
    #          decode_mask(T, S); weights = masked_softmax(scores, mask); out = weights @ values.
    # TODO: 4. Merge heads (B, H, T, hd) -> (B*T, C), attn.out_proj, reshape to (B, T, C).
    raise NotImplementedError('_cached_attention: your turn - see the TODOs above')


def forward_with_cache(model: Any, idx_new: Any, cache: KVCache) -> Tensor:
    """The GPT's logits (B, T_new, vocab_size) for the T_new tokens idx_new (B, T_new) that come AFTER
    the cache.length tokens already in `cache`; appends their keys and values to the cache.

    Equals model(context)[0][:, L:] for context = (the tokens cached so far) + idx_new, L = cache.length:
    token embeddings of idx_new plus the position embeddings of positions L .. L + T_new - 1; in each
    block ln_1, the cached attention (new queries over cached + new keys, causal), the residual,
    ln_2, mlp, the residual; then ln_f and the tied head (@ wte.weight^T).
    Always the inference forward: the model is put in eval mode for the call (no dropout) and its
    mode restored; no graph is recorded (no_grad).
    Errors, naming the problem, the cache unchanged: idx_new not integers (TypeError naming the dtype),
    not 2-D (ValueError naming the shape, "(2,)") or with T_new = 0 (ValueError: "at least one" token);
    a batch other than cache.batch_size (ValueError "batch 1 ... batch_size=2"); a cache whose layers, heads, head size or dtype do not fit the model (ValueError that
    names both, e.g. "dtype=float64" for the cache and "dtype=float32" for the model); cache.length + T_new
    beyond block_size (the model has no position embedding there: ValueError "6 cached + 3 new positions
    exceed block_size=8") or beyond the cache's max_len ("cache full: ... max_len=...").
    """
    idx = _as_index_array(idx_new, "forward_with_cache")
    # TODO: 1. Validate (see above), before anything is appended.
    # TODO: 2. Remember the mode, eval(); under no_grad(): x = drop(wte(idx) + wpe(positions L..L+T-1)).
    # TODO: 3. For each block i: x = x + drop(_cached_attention(attn, ln_1(x), cache, i));
    #          x = x + mlp(ln_2(x)).
    # TODO: 4. logits = ln_f(x).reshape(B*T, C) @ wte.weight.T, reshaped (B, T, V); restore the mode.
    raise NotImplementedError('forward_with_cache: your turn - see the TODOs above')


def _sample(logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> np.ndarray:
    """GPT.generate's sampling rule on the last position's logits (B, V) -> tokens (B,) (given helper).

    float64 logits / temperature; top-k filter (the k-th largest as threshold); stable softmax;
    inverse CDF with one rng.random((B, 1)) draw per step, so the same generator gives the same
    tokens as module 13's GPT.generate.
    """
    last = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < last.shape[-1]:
        threshold = np.sort(last, axis=-1)[:, -top_k][:, None]
        last = np.where(last < threshold, -np.inf, last)
    probs = np.exp(last - last.max(axis=-1, keepdims=True))
    cdf = np.cumsum(probs, axis=-1)
    cdf /= cdf[:, -1:]
    u = rng.random((logits.shape[0], 1))
    return (cdf <= u).sum(axis=-1)


def generate_cached(model: Any, idx: Any, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                    generator: np.random.Generator | None = None) -> Tensor:
    """GPT.generate (module 13) with a KV cache: an int64 Tensor (B, T + max_new_tokens), the same tokens.

    Same validation, messages and sampling (_sample) as GPT.generate; eval mode during the call (the
    mode is restored), no graph. A prompt must hold at least one token (ValueError); a prompt longer
    than block_size is cropped to its last block_size tokens, as GPT.generate does.
    Schedule: prefill - forward_with_cache on the (cropped) prompt into a fresh
    KVCache.for_model(model, B); then per new token: sample from the last logits, append the token,
    and if the cache has room (length < block_size) feed just that token; otherwise (the window
    slides: every position shifts, see the module docstring) reset the cache and re-prefill the last
    block_size tokens. No forward after the last token.
    """
    # TODO: 1. Validate like GPT.generate (copy its checks and messages), then the prompt length >= 1.
    # TODO: 2. eval(); under no_grad(): the schedule above with _sample(logits[:, -1], ...), the rng
    #          being `generator` or module 03's default_generator(); restore the mode in `finally`.
    raise NotImplementedError('generate_cached: your turn - see the TODOs above')
