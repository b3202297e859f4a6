# KATA: replace every `raise NotImplementedError` below with your implementation.
# Generated from reference/13_transformers/transformer.py by `kata stubs`; your edits are never overwritten.
"""Module 13 - Transformers: attention, an MLP, two LayerNorms and two residual connections, N times.

A GPT is a stack of identical blocks on top of token + position embeddings (module 11):

    x = wte[idx] + wpe[0..T-1]                                 (B, T, C)
    for each block:                                            "pre-norm" (GPT-2) residual block
        x = x + Dropout(CausalSelfAttention(LayerNorm(x)))     module 12's MultiheadAttention
        x = x + MLP(LayerNorm(x))                              C -> 4C -> GELU -> C
    logits = LayerNorm(x) @ wte^T                              (B, T, vocab): the head is TIED to wte

This module gives tinytorch:

    layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5)   torch.nn.functional.layer_norm, op "layer_norm"
    LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True)
    gelu_tanh(x)          GPT-2's tanh-approximate GELU computed in x's dtype (op "gelu_tanh"); module 02's
                          gelu works in float64 with a series for erf: exact, but ~50x slower
    MLP(n_embd, dropout=0.0, bias=True)                       c_fc -> gelu_tanh -> c_proj -> dropout
    TransformerBlock(n_embd, n_head, dropout=0.0, bias=True)  ln_1, attn, drop, ln_2, mlp
    GPTConfig(vocab_size, block_size, n_layer, n_head, n_embd, dropout=0.0, bias=True)
    GPT(config, generator=None)   forward(idx, targets=None) -> (logits, loss or None);
                                  generate(idx, max_new_tokens, temperature=1.0, top_k=None, generator=None)

Two new ops register their backward rules through module 05's ``register_backward`` hook:
"layer_norm" (the fused LayerNorm backward, one pass instead of ~10 recorded primitive ops) and
"gelu_tanh". Parameter names follow a torch twin built from torch.nn parts with the same
attribute names (``h.0.attn.in_proj_weight``, ``h.0.mlp.c_fc.weight``, ``ln_f.weight`` ...), so
a state_dict copies across with ``load_state_dict``.

Speed rule used throughout: Linear layers see 2-D (B*T, C) views. numpy's matmul runs a 3-D
array times a transposed 2-D view (what ``x @ W.T`` is) in a slow loop instead of BLAS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinytorch.attention import MultiheadAttention
from tinytorch.autograd import no_grad, register_backward
from tinytorch.embeddings import Embedding, PositionalEmbedding
from tinytorch.layers import Dropout, Linear, Module, Parameter, Sequential, default_generator
from tinytorch.losses import cross_entropy
from tinytorch.tensor import FLOAT_DTYPES, Tensor

GELU_TANH_K = math.sqrt(2.0 / math.pi)
GELU_TANH_C = 0.044715


def _as_tensor(x: Any) -> Tensor:
    """Tensors pass through; numpy arrays and Python data are wrapped (given helper)."""
    return x if isinstance(x, Tensor) else Tensor(x)


# ----------------------------------------------------------------------------
# LayerNorm: a fused op with its own backward rule
# ----------------------------------------------------------------------------


def _normalized_shape(normalized_shape: Any) -> tuple[int, ...]:
    """An int or a sequence of ints -> a tuple of positive ints (ValueError naming it otherwise)."""
    if isinstance(normalized_shape, (int, np.integer)):
        shape = (normalized_shape,)
    else:
        shape = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else ()
    if not shape or any(not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d <= 0 for d in shape):
        raise ValueError(f"layer_norm: normalized_shape must be positive integers, got {normalized_shape!r}")
    return tuple(int(d) for d in shape)


def layer_norm(x: Any, normalized_shape: Any, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """torch.nn.functional.layer_norm: normalise over the trailing `normalized_shape` dimensions.

        mean, var = mean and biased variance of x over those dims
        xhat = (x - mean) / sqrt(var + eps);   out = xhat * weight + bias

    x: Tensor (..., *normalized_shape), float32/float64; weight, bias: Tensors of normalized_shape or None.
    Returns x's shape and dtype. Recorded as ONE op "layer_norm" with inputs (x[, weight][, bias]),
    saved xhat, rstd = 1 / sqrt(var + eps), the reduced axes and which of weight/bias are present.
    Errors: ValueError naming both shapes if x does not end in normalized_shape (or weight/bias
    have another shape).
    """
    x = _as_tensor(x)
    shape = _normalized_shape(normalized_shape)
    # TODO: 1. Validate: x.shape ends in `shape`, weight/bias (when given) have exactly `shape`.
    # TODO: 2. axes = the last len(shape) axes. mean, centred xc, var = mean(xc * xc) (biased),
    #          rstd = 1 / sqrt(var + eps), xhat = xc * rstd; all in x's dtype (keepdims=True).
    # TODO: 3. out = xhat (* weight.data) (+ bias.data); inputs = (x, weight?, bias?);
    #          record "layer_norm" with xhat, rstd, axes, has_weight, has_bias.
    raise NotImplementedError('layer_norm: your turn - see the TODOs above')


@register_backward("layer_norm")
def _layer_norm_backward(grad, out, inputs, saved):
    # With g_hat = grad * weight (or grad), N the number of normalised elements:
    #   dx = rstd * (g_hat - mean(g_hat) - xhat * mean(g_hat * xhat))     (means over the normalised axes)
    #   dweight = grad * xhat,  dbias = grad   (the engine sums them over the leading dims: unbroadcast)
    raise NotImplementedError('_layer_norm_backward: your turn - see the TODOs above')


class LayerNorm(Module):
    """torch.nn.LayerNorm: layer_norm with a learned per-feature scale (weight, ones) and shift (bias, zeros).

    normalized_shape: int or tuple; elementwise_affine=False has no parameters; bias=False has no bias.
    Parameters are float32, named "weight" and "bias" as in torch.
    """

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True):
        super().__init__()
        raise NotImplementedError('LayerNorm.__init__: your turn - see the TODOs above')

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError('LayerNorm.forward: your turn - see the TODOs above')

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps:g}, elementwise_affine={self.elementwise_affine},"
                f" bias={self.bias is not None}")


# ----------------------------------------------------------------------------
# The MLP and its activation
# ----------------------------------------------------------------------------


def gelu_tanh(x: Any) -> Tensor:
    """GELU, tanh approximation (GPT-2), computed in x's dtype:

        0.5 * x * (1 + tanh(k * (x + 0.044715 * x**3))),   k = sqrt(2 / pi)

    = torch.nn.functional.gelu(x, approximate="tanh"). Op "gelu_tanh", saved `t` (the tanh value)
    for the backward rule. Same shape and dtype as x (float32 stays float32: that is the point).
    """
    x = _as_tensor(x)
    # TODO: compute t = np.tanh(K * (v + C * v**3)) and 0.5 * v * (1 + t) with v = x.data; Python
    #       float constants keep float32 arrays float32. Record "gelu_tanh" with t=t.
    raise NotImplementedError('gelu_tanh: your turn - see the TODOs above')


@register_backward("gelu_tanh")
def _gelu_tanh_backward(grad, out, inputs, saved):
    # d/dx [0.5 x (1 + t)] = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2),   t = tanh(k (x + c x^3))
    raise NotImplementedError('_gelu_tanh_backward: your turn - see the TODOs above')


class MLP(Module):
    """The position-wise feed-forward network: c_fc Linear(C, 4C) -> gelu_tanh -> c_proj Linear(4C, C) -> dropout.

    forward(x (..., C)) -> (..., C), with the Linear layers applied to the 2-D (N, C) view.
    """

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True,
                 generator: np.random.Generator | None = None):
        super().__init__()
        raise NotImplementedError('MLP.__init__: your turn - see the TODOs above')

    def forward(self, x: Tensor) -> Tensor:
        # TODO: reshape to (N, C), c_fc, gelu_tanh, c_proj, dropout, reshape back to x's shape.
        raise NotImplementedError('MLP.forward: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# The block
# ----------------------------------------------------------------------------


class TransformerBlock(Module):
    """A pre-norm (GPT-2) block on x (B, T, C):

        x = x + drop(attn(ln_1(x)))          causal self-attention, module 12's MultiheadAttention
        x = x + mlp(ln_2(x))

    Children, in this order (their names are the state_dict's): ln_1 LayerNorm(C, bias=bias), attn
    MultiheadAttention(C, n_head, dropout, bias, batch_first=True), drop Dropout(dropout) (the
    residual dropout of the attention branch), ln_2 LayerNorm(C, bias=bias), mlp MLP(C, dropout, bias).
    bias=False removes every bias, the LayerNorms' too (as nanoGPT).
    n_embd must be divisible by n_head (ValueError naming both).
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True,
                 generator: np.random.Generator | None = None):
        super().__init__()
        raise NotImplementedError('TransformerBlock.__init__: your turn - see the TODOs above')

    def forward(self, x: Tensor) -> Tensor:
        # TODO: h = ln_1(x); a = attn(h, h, h, need_weights=False, is_causal=True)[0];
        #       x = x + drop(a); return x + mlp(ln_2(x)).
        raise NotImplementedError('TransformerBlock.forward: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# GPT
# ----------------------------------------------------------------------------


@dataclass
class GPTConfig:
    """The model's shape (nanoGPT's names). block_size is the longest context the model sees."""

    vocab_size: int
    block_size: int
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True


class GPT(Module):
    """A decoder-only transformer language model (Radford et al. 2018/2019; nanoGPT's layout).

    Children: wte Embedding(vocab_size, n_embd), wpe PositionalEmbedding(block_size, n_embd),
    drop Dropout(dropout), h Sequential of n_layer TransformerBlocks, ln_f LayerNorm(n_embd, bias=bias).
    The output head has NO parameter of its own: logits = ln_f(x) @ wte.weight^T (weight tying,
    Press & Wolf 2017), so wte.weight gets gradient from both ends.
    Initialisation (GPT-2): every Linear and embedding weight N(0, 0.02), biases 0, LayerNorms 1/0,
    and the projections back into the residual stream (attn.out_proj.weight, mlp.c_proj.weight)
    N(0, 0.02 / sqrt(2 * n_layer)), so the residual stream's variance does not grow with depth.
    Random draws come from `generator` (default: module 03's default generator).
    """

    def __init__(self, config: GPTConfig, generator: np.random.Generator | None = None):
        super().__init__()
        # TODO: 1. Validate the config (positive sizes; n_embd % n_head == 0): ValueError naming the field.
        # TODO: 2. Build the children above, in that order (Sequential registers blocks as h.0, h.1, ...).
        # TODO: 3. Re-initialise every parameter by its name with rng.normal (see the docstring), in place.
        raise NotImplementedError('GPT.__init__: your turn - see the TODOs above')

    def forward(self, idx: Any, targets: Any = None) -> tuple[Tensor, Tensor | None]:
        """idx: integer (B, T) array/Tensor with T <= block_size -> (logits (B, T, vocab_size), loss).

        loss is module 04's cross_entropy of the logits against `targets` (B, T) (mean over all
        B*T positions), or None without targets. T > block_size is a ValueError naming both.
        """
        # TODO: 1. idx as an int array (B, T); check T <= block_size.
        # TODO: 2. x = drop(wte(idx) + wpe(T)); x = h(x); x = ln_f(x).
        # TODO: 3. logits = (x.reshape(B*T, C) @ wte.weight.T): a 2-D matmul (see the module docstring);
        #          loss = cross_entropy(logits2d, targets.reshape(-1)); return (logits.reshape(B, T, V), loss).
        raise NotImplementedError('GPT.forward: your turn - see the TODOs above')

    def generate(self, idx: Any, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: np.random.Generator | None = None) -> Tensor:
        """Sample max_new_tokens tokens after idx (B, T): an int64 Tensor (B, T + max_new_tokens).

        Each step crops the context to the last block_size tokens, runs the model without recording
        a graph (and in eval mode: no dropout; the mode is restored afterwards), takes the last
        position's logits / temperature, keeps only the top_k largest (the rest -inf) if top_k is
        given, and samples from their softmax with `generator` (default: module 03's). top_k=1 is
        greedy decoding (argmax). temperature must be > 0 and top_k a positive int (ValueError
        naming the value); top_k above vocab_size means all of them.
        """
        # TODO: 1. Validate; idx as an int64 array (B, T); remember self.training, switch to eval.
        # TODO: 2. Loop under no_grad(): logits of idx[:, -block_size:], last position, in float64,
        #          / temperature; top-k filter (np.sort, the k-th largest as threshold); stable softmax;
        #          sample by inverse CDF: cdf = cumsum(probs) / its last entry, u = rng.random((B, 1)),
        #          token = number of cdf entries <= u (a token of probability 0 is never picked).
        # TODO: 3. Append, restore the mode, return Tensor(idx, dtype=np.int64).
        raise NotImplementedError('GPT.generate: your turn - see the TODOs above')
