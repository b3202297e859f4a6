# KATA: replace every `raise NotImplementedError` below with your implementation.
# Generated from reference/11_embeddings/embeddings.py by `kata stubs`; your edits are never overwritten.
"""Module 11 - Embeddings: turning token ids and positions into vectors.

A language model sees integers (module 10's token ids). The first thing it does is look
each one up in a table of learned vectors: an *embedding*. A transformer also needs to
know *where* each token sits, because attention by itself is blind to order. This module
gives tinytorch the three classic answers to that, next to the lookup table:

    Embedding(num_embeddings, embedding_dim, padding_idx=None, dtype=np.float32)
                               torch.nn.Embedding: weight (num_embeddings, embedding_dim), N(0, 1) init
    embedding(idx, weight, padding_idx=None)
                               torch.nn.functional.embedding: weight[idx], gradient a scatter-add
    PositionalEmbedding(max_len, embedding_dim)
                               learned absolute positions (GPT-2): forward(seq_len or positions)
    sinusoidal_encoding(max_len, d_model)
                               the fixed table of Vaswani et al. (2017), float32 numpy array
    apply_rope(x, positions=None, base=10000.0), RotaryEmbedding(head_dim, base)
                               rotary position embedding (Su et al. 2021) applied to queries/keys

Pairing convention of RoPE: INTERLEAVED. Dimension pair i is (x[..., 2i], x[..., 2i+1]) and is
rotated by the angle position * base ** (-2i / head_dim), as in the RoFormer paper and
Meta's original LLaMA code (which views each pair as one complex number). GPT-NeoX and the
Hugging Face LLaMA port pair x[..., i] with x[..., i + head_dim/2] instead ("rotate_half");
the two conventions are the same rotation applied to a permuted head dimension, so a model
trained with one needs its q/k projection rows permuted before it works with the other.

Two new ops register their backward rules with module 05's `register_backward` hook:
"embedding" (a scatter-add with np.add.at: a token that occurs twice gets both gradients,
the padding row gets none) and "rope" (the inverse rotation of the upstream gradient).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.autograd import register_backward
from tinytorch.layers import Module, Parameter, default_generator
from tinytorch.tensor import FLOAT_DTYPES, Tensor

# ----------------------------------------------------------------------------
# Index handling (given)
# ----------------------------------------------------------------------------


def _as_index_array(idx: Any, num_embeddings: int, what: str) -> np.ndarray:
    """idx (int, list, numpy array or integer Tensor, any shape) -> an int64 numpy array.

    Floats and booleans are a TypeError naming the dtype (as in PyTorch, indices must be
    integers); an index outside [0, num_embeddings) is an IndexError naming the first
    offending index and num_embeddings (PyTorch, like here, does not wrap negative indices).
    """
    array = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
    if isinstance(idx, (list, tuple)) and array.size == 0:
        array = array.astype(np.int64)  # [] is float64 to numpy, but means "no indices"
    if array.dtype.kind not in "iu":
        raise TypeError(f"{what}: indices must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    bad = (array < 0) | (array >= num_embeddings)
    if bad.any():
        first = int(array[bad].flat[0])
        raise IndexError(f"{what}: index {first} is out of range for num_embeddings={num_embeddings}")
    return array


def _padding_index(padding_idx: int | None, num_embeddings: int, what: str) -> int | None:
    """PyTorch's rule: padding_idx in [-num_embeddings, num_embeddings); negative counts from the end."""
    if padding_idx is None:
        return None
    if not isinstance(padding_idx, (int, np.integer)) or isinstance(padding_idx, bool) or not (
        -num_embeddings <= padding_idx < num_embeddings
    ):
        raise ValueError(f"{what}: padding_idx must be within num_embeddings={num_embeddings}, got {padding_idx!r}")
    return int(padding_idx) % num_embeddings


# ----------------------------------------------------------------------------
# The lookup table
# ----------------------------------------------------------------------------


def embedding(idx: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of `weight` selected by `idx`: out[..., :] = weight[idx[...], :].

    idx:         int, list, numpy int array or integer Tensor of any shape (0-D included).
    weight:      Tensor (num_embeddings, embedding_dim), float32 or float64 (another shape is a
                 ValueError naming weight.shape).
    padding_idx: a row that receives no gradient (its forward value is whatever the row holds).
    Returns a Tensor of shape idx.shape + (embedding_dim,) and weight's dtype, recorded as op
    "embedding" (inputs (weight,), saved `indices` and `padding_idx`).
    """
    # TODO: 1. weight must be a 2-D Tensor (ValueError naming its shape otherwise).
    # TODO: 2. Convert idx with _as_index_array(idx, weight.shape[0], "embedding") and
    #          padding_idx with _padding_index(...).
    # TODO: 3. out = weight.data[indices] (numpy fancy indexing copies: shape idx.shape + (D,)).
    # TODO: 4. Record it with Tensor.from_op(out, "embedding", (weight,), indices=..., padding_idx=...).
    raise NotImplementedError('embedding: your turn - see the TODOs above')


@register_backward("embedding")
def _embedding_backward(grad, out, inputs, saved):
    # The forward pass copied row idx[j] into output slot j, so the gradient of row r is the
    # SUM of the upstream gradients of every slot that copied it: a scatter-add. `w[idx] += g`
    # would keep only one of the repeats; np.add.at accumulates them. Then zero the padding row.
    # Speed: np.add.at on a 1-D view with one flat index per element (row * dim + column) takes
    # numpy's fast path, ~5x quicker than np.add.at(grad_weight, rows, grad_rows) on 2-D arrays.
    raise NotImplementedError('_embedding_backward: your turn - see the TODOs above')


class Embedding(Module):
    """torch.nn.Embedding: a learned table of `num_embeddings` vectors of size `embedding_dim`.

    weight:      Parameter (num_embeddings, embedding_dim) of `dtype` (float32 or float64), drawn
                 from N(0, 1) as in PyTorch, with the padding row (if any) set to zeros.
    padding_idx: that row starts at zero and never receives a gradient (negative counts from the end).
    generator:   the np.random.Generator to draw from (default: module 03's seeded default).
    forward(idx): idx of any shape -> Tensor idx.shape + (embedding_dim,).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype: Any = np.float32, generator: np.random.Generator | None = None):
        super().__init__()
        # TODO: 1. Validate: positive integer sizes (ValueError naming num_embeddings/embedding_dim;
        #          bools are not sizes), dtype float32/float64 (TypeError naming it), padding_idx.
        # TODO: 2. weight = rng.standard_normal((num_embeddings, embedding_dim)) in `dtype`;
        #          zero the padding row; store it as a Parameter, plus the settings.
        raise NotImplementedError('Embedding.__init__: your turn - see the TODOs above')

    def forward(self, idx: Any) -> Tensor:
        """Look the indices up: embedding(idx, self.weight, self.padding_idx)."""
        raise NotImplementedError('Embedding.forward: your turn - see the TODOs above')

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


# ----------------------------------------------------------------------------
# Absolute positions: learned and fixed
# ----------------------------------------------------------------------------


class PositionalEmbedding(Module):
    """Learned absolute positions (GPT-1/2): one trainable vector per position 0 .. max_len-1.

    weight: Parameter (max_len, embedding_dim), N(0, 1) like Embedding.
    forward(seq_len) -> (seq_len, embedding_dim): the rows for positions 0 .. seq_len-1, to be
    broadcast-added to token embeddings of shape (B, seq_len, embedding_dim).
    forward(positions) with an int array/list/Tensor -> positions.shape + (embedding_dim,).
    A seq_len above max_len (or a position outside [0, max_len)) is an error naming both numbers.
    """

    def __init__(self, max_len: int, embedding_dim: int, dtype: Any = np.float32,
                 generator: np.random.Generator | None = None):
        super().__init__()
        # TODO: validate like Embedding (ValueError naming max_len / embedding_dim); draw the
        #       N(0, 1) table (max_len, embedding_dim) as self.weight; keep max_len, embedding_dim.
        raise NotImplementedError('PositionalEmbedding.__init__: your turn - see the TODOs above')

    def forward(self, seq_len_or_positions: Any) -> Tensor:
        # TODO: a Python/numpy integer n means positions arange(n): 0 <= n <= max_len, else a
        #       ValueError f"... seq_len {n} exceeds max_len={self.max_len}" (or "... {n} is negative").
        #       Anything else is a positions array. Then embedding(positions, self.weight).
        raise NotImplementedError('PositionalEmbedding.forward: your turn - see the TODOs above')

    def extra_repr(self) -> str:
        return f"{self.max_len}, {self.embedding_dim}"


def sinusoidal_encoding(max_len: int, d_model: int) -> np.ndarray:
    """The fixed positional table of "Attention Is All You Need" (section 3.5), float32 (max_len, d_model).

        PE[pos, 2i]   = sin(pos / 10000 ** (2i / d_model))
        PE[pos, 2i+1] = cos(pos / 10000 ** (2i / d_model))

    Column pair (2i, 2i+1) is a sinusoid of wavelength 2*pi * 10000 ** (2i / d_model), from 2*pi
    (i = 0) to ~10000 * 2*pi. An odd d_model has one more sin column than cos columns.
    Computed in float64 and returned as float32 (float32 angles lose ~1e-5 at pos ~ 500).
    Sizes must be positive integers (ValueError naming the argument).
    """
    # TODO: 1. Validate max_len and d_model.
    # TODO: 2. pos = arange(max_len)[:, None]; freq = 10000 ** (-arange(0, d_model, 2) / d_model)
    #          (float64); angles = pos * freq; sin into the even columns, cos into the odd ones
    #          (only the first d_model // 2 frequencies for the cos columns).
    raise NotImplementedError('sinusoidal_encoding: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Rotary position embedding (RoPE)
# ----------------------------------------------------------------------------


def rope_angles(positions: np.ndarray, head_dim: int, base: float = 10000.0) -> np.ndarray:
    """float64 angles positions[..., None] * base ** (-2i / head_dim), shape positions.shape + (head_dim // 2,)."""
    raise NotImplementedError('rope_angles: your turn - see the TODOs above')


def apply_rope(x: Any, positions: Any = None, base: float = 10000.0) -> Tensor:
    """Rotate each interleaved pair (x[..., 2i], x[..., 2i+1]) of x by position * base ** (-2i / head_dim).

    x:         Tensor (..., T, head_dim), head_dim even, float32/float64 (kept; other dtypes are a
               TypeError naming the dtype). Typically the
               queries or keys of one attention layer, (B, heads, T, head_dim).
    positions: None (0 .. T-1), or integers (list/array/Tensor) whose shape broadcasts to
               x.shape[:-1], e.g. (T,) or (B, 1, T). Non-integers are a TypeError.
    Returns a Tensor of x's shape and dtype, recorded as op "rope" (saved `cos`, `sin`).

        out[2i]   = x[2i] * cos - x[2i+1] * sin
        out[2i+1] = x[2i] * sin + x[2i+1] * cos

    A rotation preserves every pair's norm, and <rope(q, m), rope(k, n)> depends only on m - n.
    Errors: ValueError f"... head_dim={head_dim}" if it is odd; ValueError naming x.shape if x has
    fewer than 2 dimensions; TypeError naming the dtype of non-integer positions; ValueError
    naming positions.shape (and x.shape[:-1]) if they do not broadcast to x.shape[:-1].
    """
    # TODO: 1. Validate x (ndim >= 2, even last dim) and positions (default np.arange(T)).
    # TODO: 2. angles = rope_angles(positions, head_dim, base); cos, sin in x's dtype.
    # TODO: 3. Rotate even/odd slices x[..., 0::2], x[..., 1::2] into a new array; record "rope".
    raise NotImplementedError('apply_rope: your turn - see the TODOs above')


def _rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate the interleaved pairs of x (..., head_dim) by the angles whose cos/sin are given (..., head_dim/2)."""
    raise NotImplementedError('_rotate: your turn - see the TODOs above')


@register_backward("rope")
def _rope_backward(grad, out, inputs, saved):
    # A rotation matrix R is orthogonal: its inverse is its transpose, the rotation by MINUS the
    # angle. The vector-Jacobian product of out = R x is R^T g: rotate the gradient back.
    raise NotImplementedError('_rope_backward: your turn - see the TODOs above')


class RotaryEmbedding(Module):
    """apply_rope as a Module for one head size: RotaryEmbedding(64)(q) rotates q (..., T, 64).

    No parameters (the rotation is fixed). forward(x, positions=None). head_dim must be a positive
    even integer (ValueError f"... head_dim={head_dim!r}"); x's last dimension must equal it
    (ValueError naming x.shape and head_dim). repr: RotaryEmbedding(head_dim=64, base=10000).
    """

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        raise NotImplementedError('RotaryEmbedding.__init__: your turn - see the TODOs above')

    def forward(self, x: Any, positions: Any = None) -> Tensor:
        raise NotImplementedError('RotaryEmbedding.forward: your turn - see the TODOs above')

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base:g}"
