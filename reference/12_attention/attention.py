"""Module 12 - Attention: every position looks at every other one and takes what it needs.

A sequence of T vectors goes in; for each position i, attention forms a query q_i, compares it
with the key k_j of every position j (a dot product), turns the T scores into weights with a
softmax, and returns the weighted average of the values v_j:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + mask) V          (Vaswani et al., 2017)

This module gives tinytorch:

    masked_softmax(scores, allowed=None)        softmax over the last dim, over allowed entries only;
                                                a row with nothing allowed is all zeros (op "masked_softmax")
    causal_mask(L, S)                           the (L, S) boolean lower triangle, True = may attend
    scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, generator=None)
                                                torch.nn.functional.scaled_dot_product_attention
    MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True, batch_first=True, generator=None)
                                                torch.nn.MultiheadAttention (its parameter names and layout)

Mask conventions (the same as PyTorch's, which uses BOTH):

* ``scaled_dot_product_attention``'s boolean ``attn_mask``: **True = may attend**. A float mask
  is ADDED to the scores (0 keeps, -inf removes, anything else biases).
* ``MultiheadAttention``'s boolean ``key_padding_mask`` and ``attn_mask``: **True = ignore**
  (torch.nn's older convention). Float masks are added, as above.

A query row whose every key is masked: its weights are all 0 and its output is 0 (no NaN), as in
torch's ``scaled_dot_product_attention`` since 2.5. ``torch.nn.MultiheadAttention`` still gives
NaN there; this module's MultiheadAttention gives 0 (it calls the functional form).

One new op registers its backward rule through module 05's ``register_backward`` hook:
"masked_softmax" (the softmax Jacobian-vector product s * (g - sum(g * s)), zero for masked
entries and fully masked rows). Everything else is built from Tensor ops, so autograd
differentiates it unaided.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinytorch.autograd import register_backward
from tinytorch.layers import Linear, Module, Parameter, default_generator
from tinytorch.tensor import FLOAT_DTYPES, Tensor

# ----------------------------------------------------------------------------
# Helpers (given)
# ----------------------------------------------------------------------------


def _as_tensor(x: Any) -> Tensor:
    """Tensors pass through; numpy arrays and Python data are wrapped (given helper)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _as_array(x: Any) -> np.ndarray:
    """A mask given as a Tensor, numpy array or nested list, as a numpy array (given helper)."""
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def causal_mask(L: int, S: int | None = None) -> np.ndarray:
    """The (L, S) boolean causal mask, True = may attend: query i sees keys 0 .. i.

    S defaults to L. For L != S it is aligned at the top left (row i allows keys j <= i), which
    is PyTorch's convention for ``is_causal=True`` (np.tril of an (L, S) block of ones).
    """
    S = L if S is None else S
    # BEGIN SOLUTION
    return np.tril(np.ones((L, S), dtype=np.bool_))
    # END SOLUTION


# ----------------------------------------------------------------------------
# The masked, numerically stable softmax
# ----------------------------------------------------------------------------


def masked_softmax(scores: Tensor, allowed: Any = None) -> Tensor:
    """softmax(scores) over the last dimension, counting only the entries where `allowed` is True.

    scores:  Tensor (..., S), float32/float64; entries may be -inf (an additive mask did that).
    allowed: None (everything allowed) or a boolean array broadcastable to scores.shape.
    Returns a Tensor of scores' shape and dtype: each row sums to 1 over its allowed, finite
    entries and is exactly 0 elsewhere. A row with NO allowed finite entry is all zeros (module
    02's softmax would give NaN: max = -inf and -inf - (-inf) = NaN).
    Stable: subtract the row max over the allowed entries before exp.
    Recorded as op "masked_softmax" (inputs (scores,), nothing saved but the output).
    """
    scores = _as_tensor(scores)
    # TODO: 1. x = scores.data with the disallowed entries replaced by -inf (np.where).
    # TODO: 2. m = the row max (keepdims); where m is -inf (an empty row) use 0 instead, so that
    #          x - m stays -inf and exp gives 0 instead of NaN.
    # TODO: 3. e = exp(x - m) (silence underflow); divide by the row sum, treating a 0 sum as 1.
    # TODO: 4. Keep the dtype; record "masked_softmax".
    # BEGIN SOLUTION
    x = scores.data
    if allowed is not None:
        x = np.where(_as_array(allowed), x, np.array(-np.inf, dtype=x.dtype))
    with np.errstate(under="ignore", invalid="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        m = np.where(np.isneginf(m), np.array(0, dtype=x.dtype), m)
        e = np.exp(x - m)
        total = np.sum(e, axis=-1, keepdims=True)
        out = e / np.where(total == 0, np.array(1, dtype=x.dtype), total)
    return Tensor.from_op(out.astype(scores.dtype, copy=False), "masked_softmax", (scores,))
    # END SOLUTION


@register_backward("masked_softmax")
def _masked_softmax_backward(grad, out, inputs, saved):
    # The softmax JVP from the saved output s: s * (g - sum(g * s, -1)). Masked entries have
    # s = 0, so they get 0; a fully masked row is all zeros and gets zeros.
    # BEGIN SOLUTION
    s = out.data
    return (s * (grad - np.sum(grad * s, axis=-1, keepdims=True)),)
    # END SOLUTION


# ----------------------------------------------------------------------------
# Scaled dot-product attention
# ----------------------------------------------------------------------------


def _check_float(name: str, x: Tensor) -> None:
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"scaled_dot_product_attention: {name} must be float32 or float64, got dtype {x.dtype}")


def _mask_parts(attn_mask: Any, is_causal: bool, L: int, S: int, dtype: np.dtype) -> tuple[Any, Any]:
    """(allowed, additive) for a SDPA-convention mask: a boolean array (True = may attend) or None,
    and a float array to add to the scores or None. Given helper for the functional form."""
    if attn_mask is None:
        return (causal_mask(L, S) if is_causal else None), None
    if is_causal:
        raise ValueError("scaled_dot_product_attention: give either attn_mask or is_causal=True, not both")
    mask = _as_array(attn_mask)
    try:
        np.broadcast_shapes(mask.shape, (L, S))
    except ValueError:
        raise ValueError(f"scaled_dot_product_attention: attn_mask of shape {mask.shape} does not broadcast"
                         f" to the scores' (..., L, S) = (..., {L}, {S})") from None
    if mask.dtype == np.bool_:
        return mask, None
    if mask.dtype.kind != "f":
        raise TypeError(f"scaled_dot_product_attention: attn_mask must be bool or float, got dtype {mask.dtype}")
    return None, mask.astype(dtype, copy=False)


def _attention(query: Tensor, key: Tensor, value: Tensor, allowed: Any, additive: Any, dropout_p: float,
               scale: float | None, generator: np.random.Generator | None) -> tuple[Tensor, Tensor]:
    """The shared core: (output (..., L, Ev), attention weights (..., L, S) after dropout).

    allowed:  boolean array broadcastable to (..., L, S), True = may attend, or None.
    additive: float array broadcastable to (..., L, S) added to the scores, or None.
    """
    # TODO: 1. scale defaults to 1 / sqrt(E), E = query.shape[-1]. Multiply the QUERY by it (an
    #          (L, E) tensor, cheaper than scaling the (L, S) scores), then scores = q @ key^T.
    # TODO: 2. Add `additive` (as a Tensor), then weights = masked_softmax(scores, allowed).
    # TODO: 3. Dropout on the weights when dropout_p > 0: keep = rng.random(shape, dtype) >= p,
    #          multiply by the constant keep / (1 - p) (all zeros when p == 1); rng is `generator`
    #          or module 03's default_generator().
    # TODO: 4. Return (weights @ value, weights).
    # BEGIN SOLUTION
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    scores = (query * scale) @ key.transpose(-2, -1)
    if additive is not None:
        scores = scores + Tensor(additive)
    weights = masked_softmax(scores, allowed)
    if dropout_p > 0.0:
        dtype = weights.dtype
        if dropout_p >= 1.0:
            keep = np.zeros(weights.shape, dtype=dtype)
        else:
            rng = default_generator() if generator is None else generator
            keep = (rng.random(weights.shape, dtype=dtype) >= dropout_p) * np.asarray(1.0 / (1.0 - dropout_p), dtype)
        weights = weights * Tensor(keep)
    return weights @ value, weights
    # END SOLUTION


def scaled_dot_product_attention(query: Any, key: Any, value: Any, attn_mask: Any = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 generator: np.random.Generator | None = None) -> Tensor:
    """torch.nn.functional.scaled_dot_product_attention: softmax(q k^T * scale + mask) v.

    query (..., L, E), key (..., S, E), value (..., S, Ev): Tensors (or arrays) of one float dtype;
    the leading (batch, head) dimensions broadcast. Returns (..., L, Ev).
    attn_mask: None; a boolean array (True = may attend) or a float array (added to the scores),
               broadcastable to (..., L, S); a Tensor of either works too.
    dropout_p: probability of zeroing each attention weight (survivors scaled by 1 / (1 - p)),
               applied whenever dropout_p > 0 (the functional form knows no train/eval mode).
    is_causal: mask with causal_mask(L, S); together with attn_mask it is a ValueError.
    scale:     defaults to 1 / sqrt(E).
    generator: the np.random.Generator for dropout (default: module 03's default generator).
    A row with every key masked gives weights 0 and output 0 (PyTorch >= 2.5 does the same).
    Errors: ValueError naming the shapes if E or S disagree, or the mask does not broadcast;
    TypeError naming the dtype for non-float inputs; ValueError naming dropout_p outside [0, 1].
    """
    query, key, value = _as_tensor(query), _as_tensor(key), _as_tensor(value)
    # TODO: 1. Validate: float dtypes (_check_float); at least 2 dims each; key.shape[-1] ==
    #          query.shape[-1] and value.shape[-2] == key.shape[-2] (ValueError naming all shapes);
    #          0 <= dropout_p <= 1 (ValueError naming it).
    # TODO: 2. allowed, additive = _mask_parts(attn_mask, is_causal, L, S, query.dtype).
    # TODO: 3. return _attention(...)[0].
    # BEGIN SOLUTION
    for name, t in (("query", query), ("key", key), ("value", value)):
        _check_float(name, t)
    shapes = f"query {query.shape}, key {key.shape}, value {value.shape}"
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise ValueError(f"scaled_dot_product_attention: inputs need shape (..., length, features), got {shapes}")
    if key.shape[-1] != query.shape[-1] or value.shape[-2] != key.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: shapes do not fit: {shapes} (query and key need the same"
                         " last dimension E, key and value the same length S)")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1], got {dropout_p}")
    allowed, additive = _mask_parts(attn_mask, is_causal, query.shape[-2], key.shape[-2], query.dtype)
    return _attention(query, key, value, allowed, additive, float(dropout_p), scale, generator)[0]
    # END SOLUTION


# ----------------------------------------------------------------------------
# Multi-head attention
# ----------------------------------------------------------------------------


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention: h attention heads of size embed_dim // h, side by side.

    Parameters (torch's names and layout, so a state_dict copies across):
        in_proj_weight  (3 * embed_dim, embed_dim)   rows [0, E) project queries, [E, 2E) keys, [2E, 3E) values
        in_proj_bias    (3 * embed_dim,)             (absent when bias=False)
        out_proj        Linear(embed_dim, embed_dim, bias)
    Initialisation as torch: in_proj_weight Xavier-uniform (bound sqrt(6 / (E + 3E))), out_proj.weight
    U(-1/sqrt(E), 1/sqrt(E)), every bias 0; drawn from `generator` (default: module 03's).
    dropout:     probability of dropping attention weights, in training mode only.
    batch_first: True (the default HERE: every tinytorch layer is batch-first) means (batch, seq, feature);
                 False is torch's default layout (seq, batch, feature). Unbatched (seq, feature) inputs work too.
    embed_dim must be a positive multiple of num_heads (ValueError naming both as name=value:
    "embed_dim=10 must be divisible by num_heads=4").
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = True, generator: np.random.Generator | None = None):
        super().__init__()
        # TODO: 1. Validate embed_dim, num_heads (positive ints, embed_dim % num_heads == 0) and
        #          0 <= dropout <= 1 (ValueError naming the values).
        # TODO: 2. Draw in_proj_weight with rng.uniform(-a, a, (3E, E)), a = sqrt(6 / (4E)), float32;
        #          in_proj_bias zeros (or None without bias); out_proj = Linear(E, E, bias), then
        #          overwrite its weight with U(-1/sqrt(E), 1/sqrt(E)) and its bias with zeros.
        # TODO: 3. Keep embed_dim, num_heads, head_dim, dropout, batch_first, generator.
        # BEGIN SOLUTION
        for name, size in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size <= 0:
                raise ValueError(f"MultiheadAttention: {name} must be a positive integer, got {size!r}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1], got {dropout!r}")
        E = int(embed_dim)
        rng = default_generator() if generator is None else generator
        self.embed_dim, self.num_heads, self.head_dim = E, int(num_heads), E // int(num_heads)
        self.dropout, self.batch_first, self.generator = float(dropout), bool(batch_first), generator
        bound = math.sqrt(6.0 / (E + 3 * E))
        self.in_proj_weight = Parameter(rng.uniform(-bound, bound, (3 * E, E)).astype(np.float32))
        self.in_proj_bias = Parameter(np.zeros(3 * E, dtype=np.float32)) if bias else None
        self.out_proj = Linear(E, E, bias=bias, generator=rng)
        self.out_proj.weight.data[...] = rng.uniform(-1.0 / math.sqrt(E), 1.0 / math.sqrt(E), (E, E))
        if bias:
            self.out_proj.bias.data[...] = 0.0
        # END SOLUTION

    def _project(self, x: Tensor, part: int) -> Tensor:
        """x (B, T, E) @ W_part^T + b_part -> split into heads (B, num_heads, T, head_dim).

        part 0/1/2 = query/key/value: rows [part*E, (part+1)*E) of in_proj_weight (a basic slice:
        its gradient lands in those rows of in_proj_weight.grad).
        Speed: multiply the 2-D (B*T, E) view, not the 3-D x. numpy's matmul sends a 3-D array
        times a TRANSPOSED 2-D view (W.T) to a slow non-BLAS loop, ~15x slower than BLAS.
        """
        # BEGIN SOLUTION
        E, H = self.embed_dim, self.num_heads
        B, T = x.shape[0], x.shape[1]
        rows = slice(part * E, (part + 1) * E)
        out = x.reshape(B * T, E) @ self.in_proj_weight[rows].T
        if self.in_proj_bias is not None:
            out = out + self.in_proj_bias[rows]
        return out.reshape(B, T, H, self.head_dim).permute(0, 2, 1, 3)
        # END SOLUTION

    def _masks(self, key_padding_mask: Any, attn_mask: Any, is_causal: bool, B: int, L: int, S: int,
               dtype: np.dtype) -> tuple[Any, Any]:
        """torch.nn-convention masks -> (allowed (B|1, H|1, L|1, S) bool or None, additive float or None).

        key_padding_mask: (B, S) (or (S,) unbatched); True = that key is padding, ignore it.
        attn_mask:        (L, S) or (B * num_heads, L, S); True = ignore; float = added.
        is_causal:        without attn_mask, apply causal_mask(L, S); with one, attn_mask is trusted
                          to be causal (torch's "hint").
        Shapes that do not fit are a ValueError naming the mask and its shape.
        """
        # TODO: turn each mask into (allowed, additive) parts shaped to broadcast over (B, H, L, S)
        #       and combine them: allowed = AND of the boolean parts, additive = SUM of the float parts.
        # BEGIN SOLUTION
        allowed, additive = None, None

        def add(part: np.ndarray) -> None:
            nonlocal allowed, additive
            if part.dtype == np.bool_:
                allowed = ~part if allowed is None else allowed & ~part
            else:
                part = part.astype(dtype, copy=False)
                additive = part if additive is None else additive + part

        if key_padding_mask is not None:
            kpm = _as_array(key_padding_mask)
            if kpm.shape != (B, S):
                raise ValueError(f"MultiheadAttention: key_padding_mask of shape {kpm.shape} must be (batch, S) ="
                                 f" {(B, S)}")
            add(kpm.reshape(B, 1, 1, S))
        if attn_mask is not None:
            mask = _as_array(attn_mask)
            if mask.shape == (L, S):
                add(mask)
            elif mask.shape == (B * self.num_heads, L, S):
                add(mask.reshape(B, self.num_heads, L, S))
            else:
                raise ValueError(f"MultiheadAttention: attn_mask of shape {mask.shape} must be (L, S) = {(L, S)}"
                                 f" or (batch * num_heads, L, S) = {(B * self.num_heads, L, S)}")
        elif is_causal:
            add(~causal_mask(L, S))
        return allowed, additive
        # END SOLUTION

    def forward(self, query: Any, key: Any, value: Any, key_padding_mask: Any = None, need_weights: bool = True,
                attn_mask: Any = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """(attn_output, attn_weights) as torch.nn.MultiheadAttention returns them.

        query (B, L, E), key (B, S, E), value (B, S, E) when batch_first (else (L, B, E) ...), or
        unbatched (L, E), (S, E), (S, E). attn_output has query's layout. attn_weights (after dropout,
        as torch) is (B, L, S) averaged over heads, (B, num_heads, L, S) with
        average_attn_weights=False, without the batch dim for unbatched input, or None when
        need_weights=False.
        Errors (ValueError naming the shapes): a last dimension other than embed_dim, key and value of
        different lengths, or ranks that differ: "query (2, 3, 4), key (2, 2, 4) and value (2, 3, 4) must
        be (batch, length, embed_dim=4) ..."; query and key with different batch sizes ("batch");
        a key_padding_mask or attn_mask of the wrong shape names the mask and its shape.
        """
        query, key, value = _as_tensor(query), _as_tensor(key), _as_tensor(value)
        # TODO: 1. Check the shapes (see Errors: every message names all three shapes); add a batch dim
        #          to unbatched inputs (and to key_padding_mask);
        #          for batch_first=False move the batch dim first (transpose(0, 1)).
        # TODO: 2. q, k, v = self._project(query, 0), self._project(key, 1), self._project(value, 2).
        # TODO: 3. allowed, additive = self._masks(...); out, weights = _attention(q, k, v, allowed,
        #          additive, self.dropout if self.training else 0.0, None, self.generator).
        # TODO: 4. Merge the heads: (B, H, L, hd) -> (B, L, H, hd) -> (B * L, E); apply out_proj
        #          (on the 2-D view, see _project) and reshape to (B, L, E);
        #          undo step 1's layout changes; average the weights over heads (dim 1) if asked.
        # BEGIN SOLUTION
        E = self.embed_dim
        if query.ndim not in (2, 3) or query.ndim != key.ndim or key.ndim != value.ndim or any(
                t.shape[-1] != E for t in (query, key, value)) or key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"MultiheadAttention: query {query.shape}, key {key.shape} and value {value.shape}"
                             f" must be (batch, length, embed_dim={E}) (or unbatched), key and value of one length")
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = (t.reshape((1,) + t.shape) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = _as_array(key_padding_mask)[None]
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        B, L, S = query.shape[0], query.shape[1], key.shape[1]
        if key.shape[0] != B:
            raise ValueError(f"MultiheadAttention: query {query.shape} and key {key.shape} have different batch sizes")
        q, k, v = self._project(query, 0), self._project(key, 1), self._project(value, 2)
        allowed, additive = self._masks(key_padding_mask, attn_mask, is_causal, B, L, S, q.dtype)
        dropout_p = self.dropout if self.training else 0.0
        out, weights = _attention(q, k, v, allowed, additive, dropout_p, None, self.generator)
        out = self.out_proj(out.permute(0, 2, 1, 3).reshape(B * L, E)).reshape(B, L, E)
        if unbatched:
            out = out.reshape(L, E)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        if unbatched:
            weights = weights.reshape(weights.shape[1:])
        return out, weights
        # END SOLUTION

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout},"
                f" batch_first={self.batch_first}")
