"""Checks for module 13: Transformers.

`layer_norm`/`LayerNorm` are compared with torch.nn.functional.layer_norm / torch.nn.LayerNorm
(values and the gradients of the input, weight and bias) on Hypothesis-drawn shapes and
normalized shapes, and with central differences. `gelu_tanh` is compared with
torch.nn.functional.gelu(approximate="tanh"). A whole `TransformerBlock` and a whole small `GPT`
are compared with PyTorch twins built below from torch.nn parts (nn.LayerNorm,
nn.MultiheadAttention, nn.Linear, nn.GELU, nn.Embedding) with the same attribute names, loaded
with the same weights through a strict load_state_dict: logits, loss and the gradient of every
parameter (the tied embedding included). `generate` is checked for its length, greedy decoding
(top_k=1 equals an argmax loop on the PyTorch twin), context cropping at block_size, top-k and
temperature sampling (statistically), and determinism under a seeded generator.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.gradcheck import check_gradients
from checks.harness.parity import assert_parity, assert_same, upstream_weights
from tinytorch import transformer as TF
from tinytorch.attention import MultiheadAttention
from tinytorch.layers import Module, Parameter, manual_seed
from tinytorch.tensor import Tensor

Z = 6.0  # standard errors allowed in statistical checks


# -- PyTorch twins (same attribute names as tinytorch's modules) --------------------------------------


class TorchMLP(torch.nn.Module):
    def __init__(self, C: int, dropout: float, bias: bool):
        super().__init__()
        self.c_fc = torch.nn.Linear(C, 4 * C, bias=bias)
        self.c_proj = torch.nn.Linear(4 * C, C, bias=bias)
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class TorchBlock(torch.nn.Module):
    def __init__(self, C: int, H: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(C, bias=bias)
        self.attn = torch.nn.MultiheadAttention(C, H, dropout=dropout, bias=bias, batch_first=True)
        self.drop = torch.nn.Dropout(dropout)
        self.ln_2 = torch.nn.LayerNorm(C, bias=bias)
        self.mlp = TorchMLP(C, dropout, bias)

    def forward(self, x):
        T = x.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)  # torch.nn convention: True = ignore
        h = self.ln_1(x)
        x = x + self.drop(self.attn(h, h, h, attn_mask=causal, need_weights=False, is_causal=True)[0])
        return x + self.mlp(self.ln_2(x))


class TorchGPT(torch.nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd, dropout=0.0, bias=True):
        super().__init__()
        self.wte = torch.nn.Embedding(vocab_size, n_embd)
        self.wpe = torch.nn.Embedding(block_size, n_embd)
        self.drop = torch.nn.Dropout(dropout)
        self.h = torch.nn.Sequential(*(TorchBlock(n_embd, n_head, dropout, bias) for _ in range(n_layer)))
        self.ln_f = torch.nn.LayerNorm(n_embd, bias=bias)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(T)))
        logits = self.ln_f(self.h(x)) @ self.wte.weight.T  # the tied head
        loss = None if targets is None else F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


def _load_into(theirs: torch.nn.Module, ours) -> torch.nn.Module:
    """Copy tinytorch's parameters into the torch twin; strict, so the names must agree."""
    theirs.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in ours.state_dict().items()})
    return theirs


def _twin_of(model, config: dict) -> TorchGPT:
    return _load_into(TorchGPT(**config), model)


def _scrambled(model, seed: int, std: float = 1.0):
    """The model with every parameter drawn from N(0, std^2): a fresh GPT's logits are nearly uniform and its
    attention nearly even, so temperature, top-k or a context cropped one token short barely change a greedy
    pick or a sample; scrambled, the logits spread over several units and depend on the whole context.
    Returns the model."""
    rng = np.random.default_rng(seed)
    model.load_state_dict({name: (rng.normal(size=np.shape(value)) * std).astype(np.float32)
                           for name, value in model.state_dict().items()})
    return model


def _compare_parameter_grads(ours, theirs: torch.nn.Module, scale: float) -> None:
    theirs_params = dict(theirs.named_parameters())
    names = [name for name, _ in ours.named_parameters()]
    assert sorted(names) == sorted(theirs_params), f"parameter names {names} vs the twin's {sorted(theirs_params)}"
    for name, param in ours.named_parameters():
        assert param.grad is not None, f"gradient of {name}: .grad is None after backward()"
        assert_same(param.grad, theirs_params[name].grad, f"gradient of {name}", scale=scale)


# -- LayerNorm ---------------------------------------------------------------------------------------


def _spread(x: np.ndarray, n: int) -> np.ndarray:
    """x plus a fixed ramp over its last n dims, so no normalised slice of 2+ elements is constant.

    A constant slice has variance 0: xhat = 0 * (1 / sqrt(eps)) amplifies each framework's rounding
    of the mean ~300x, so the two differ by chance, not by a mistake.
    """
    shape = x.shape[x.ndim - n:]
    ramp = np.linspace(-1.0, 1.0, int(np.prod(shape))).reshape(shape) if np.prod(shape) > 1 else np.zeros(shape)
    return (x + ramp).astype(x.dtype)


@st.composite
def layer_norm_case(draw):
    dtype = draw(tst.float_dtypes)
    shape = tuple(draw(tst.shapes(min_dims=1, max_dims=4, max_side=5)))
    n = draw(st.integers(1, len(shape)))
    x = draw(tst.arrays(shape, dtype=dtype, low=-5, high=5))
    weight = draw(tst.arrays(shape[len(shape) - n:], dtype=dtype, low=-2, high=2))
    bias = draw(tst.arrays(shape[len(shape) - n:], dtype=dtype, low=-2, high=2))
    return x, weight, bias, shape[len(shape) - n:], draw(st.sampled_from(["both", "weight", "none"]))


@given(case=layer_norm_case(), eps=st.sampled_from([1e-5, 1e-3, 0.5]))
def test_layer_norm_matches_torch_forward_and_gradients(case, eps):
    x, weight, bias, normalized_shape, affine = case

    def ln(a, w=None, b=None):
        if isinstance(a, torch.Tensor):
            return F.layer_norm(a, normalized_shape, w, b, eps)
        return TF.layer_norm(a, normalized_shape, w, b, eps)

    params = {"both": (weight, bias), "weight": (weight,), "none": ()}[affine]
    # a nearly constant slice (variance ~ 0) makes rstd ~ 1/sqrt(eps) amplify rounding: widen the scale
    assert_parity(ln, _spread(x, len(normalized_shape)), *params, grad=True, scale=10.0)


def test_layer_norm_normalises_each_row_and_handles_constant_rows():
    x = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0], [1e4, -1e4, 1e4, -1e4]], dtype=np.float32)
    out = TF.layer_norm(Tensor(x), 4)
    assert out.shape == (3, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out.data.mean(axis=1), 0.0, atol=1e-6, err_msg="each row has mean 0 after layer_norm")
    np.testing.assert_allclose(out.data[[0, 2]].var(axis=1), 1.0, rtol=1e-4, err_msg=(
        "each row has (biased) variance 1, up to eps"))
    np.testing.assert_array_equal(out.data[1], 0.0, err_msg="a constant row normalises to 0 (var 0 + eps, no NaN)")
    assert_same(out, F.layer_norm(torch.from_numpy(x), (4,)), "layer_norm with +-1e4 values in one row")


@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_gradients_match_central_differences(affine):
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    if affine == "both":
        check_gradients(lambda a, ww, bb: TF.layer_norm(a, (3, 4), ww, bb), x, w, b)
    elif affine == "weight":
        check_gradients(lambda a, ww: TF.layer_norm(a, (3, 4), ww), x, w)
    else:
        check_gradients(lambda a: TF.layer_norm(a, 4, eps=1e-3), x)


@given(n=st.integers(1, 9), batch=st.lists(st.integers(1, 4), max_size=2), bias=st.booleans(),
       affine=st.booleans(), data=st.data())
def test_layer_norm_module_matches_torch_nn_layer_norm(n, batch, bias, affine, data):
    ours = TF.LayerNorm(n, eps=1e-5, elementwise_affine=affine, bias=bias)
    theirs = torch.nn.LayerNorm(n, eps=1e-5, elementwise_affine=affine, bias=bias)
    assert [(k, tuple(p.shape)) for k, p in ours.named_parameters()] == \
        [(k, tuple(p.shape)) for k, p in theirs.named_parameters()], "LayerNorm's parameters are torch's"
    assert all(isinstance(p, Parameter) and p.dtype == np.float32 for p in ours.parameters())
    assert repr(ours) == f"LayerNorm(({n},), eps=1e-05, elementwise_affine={affine}, bias={affine and bias})", (
        "torch 2.13's repr")
    if affine:
        np.testing.assert_array_equal(ours.weight.numpy(), 1.0, err_msg="weight starts at 1")
        w = data.draw(tst.arrays((n,), low=-2, high=2), label="weight")
        ours.load_state_dict({"weight": w, **({"bias": w[::-1].copy()} if bias else {})})
        _load_into(theirs, ours)
    x = _spread(data.draw(tst.arrays(tuple(batch) + (n,), low=-3, high=3), label="x"), 1)
    tx, px = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(tx), theirs(px)
    assert_same(out, expected, "LayerNorm forward")
    import tinytorch.autograd  # noqa: F401

    u = upstream_weights(tuple(expected.shape), np.float32)
    (out * Tensor(u)).sum().backward()
    (expected * torch.from_numpy(u)).sum().backward()
    assert_same(tx.grad, px.grad, "gradient of the LayerNorm input", scale=10.0)
    if affine:
        _compare_parameter_grads(ours, theirs, scale=10.0)
    assert TF.LayerNorm((2, 3)).normalized_shape == (2, 3)


def test_layer_norm_module_uses_its_eps():
    x = np.array([[0.0, 0.1, 0.2, 0.3]], dtype=np.float32)
    for eps in (0.1, 1e-5):
        assert_same(TF.LayerNorm(4, eps=eps)(Tensor(x)), torch.nn.LayerNorm(4, eps=eps)(torch.from_numpy(x)),
                    f"LayerNorm(4, eps={eps}) on {x.tolist()} (the module passes its eps to layer_norm)")


def test_layer_norm_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        TF.layer_norm(Tensor(np.zeros((2, 3), dtype=np.float32)), 4)
    with pytest.raises(ValueError, match=r"weight.*\(3,\)"):
        TF.layer_norm(Tensor(np.zeros((2, 4), dtype=np.float32)), 4, weight=Tensor(np.ones(3, dtype=np.float32)))
    with pytest.raises(ValueError, match=r"bias.*\(5,\)"):
        TF.layer_norm(Tensor(np.zeros((2, 4), dtype=np.float32)), 4, bias=Tensor(np.ones(5, dtype=np.float32)))
    for bad in (0, -2, (), (3, 0), 2.5, True):
        with pytest.raises(ValueError, match="normalized_shape"):
            TF.LayerNorm(bad)


# -- GELU and the MLP --------------------------------------------------------------------------------


@given(x=tst.arrays(tst.shapes(max_dims=4), dtype=tst.float_dtypes))
def test_gelu_tanh_matches_torch(x):
    def gelu(a):
        return F.gelu(a, approximate="tanh") if isinstance(a, torch.Tensor) else TF.gelu_tanh(a)

    got = assert_parity(gelu, x, grad=True)
    assert got.dtype == x.dtype, "gelu_tanh computes in the input's dtype"


def test_gelu_tanh_gradient_matches_central_differences():
    check_gradients(TF.gelu_tanh, np.linspace(-6, 6, 25).reshape(5, 5))


def test_mlp_matches_torch():
    manual_seed(0)
    ours = TF.MLP(6, bias=True)
    theirs = _load_into(TorchMLP(6, 0.0, True), ours)
    assert [n for n, _ in ours.named_parameters()] == ["c_fc.weight", "c_fc.bias", "c_proj.weight", "c_proj.bias"]
    x = np.random.default_rng(1).normal(size=(2, 3, 6)).astype(np.float32)
    assert_parity(lambda a: theirs(a) if isinstance(a, torch.Tensor) else ours(a), x, grad=True, scale=4.0)


# -- the block ---------------------------------------------------------------------------------------


@given(n_head=st.integers(1, 3), head_dim=st.integers(1, 4), B=st.integers(1, 3), T=st.integers(1, 6),
       bias=st.booleans(), seed=st.integers(0, 2**16), data=st.data())
def test_transformer_block_matches_a_torch_twin_forward_and_every_gradient(n_head, head_dim, B, T, bias, seed, data):
    C = n_head * head_dim
    manual_seed(seed)
    ours = TF.TransformerBlock(C, n_head, bias=bias)
    theirs = _load_into(TorchBlock(C, n_head, bias=bias), ours)
    x = _spread(data.draw(tst.arrays((B, T, C), low=-2, high=2), label="x"), 1)
    tx, px = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(tx), theirs(px)
    assert_same(out, expected, "TransformerBlock forward", scale=4.0)
    import tinytorch.autograd  # noqa: F401

    u = upstream_weights(tuple(expected.shape), np.float32)
    (out * Tensor(u)).sum().backward()
    (expected * torch.from_numpy(u)).sum().backward()
    assert_same(tx.grad, px.grad, "gradient of the block's input", scale=10.0)
    _compare_parameter_grads(ours, theirs, scale=10.0)


def test_transformer_block_is_causal_and_pre_norm():
    manual_seed(1)
    block = TF.TransformerBlock(8, 2)
    assert [n for n, _ in block.named_children()] == ["ln_1", "attn", "drop", "ln_2", "mlp"]
    assert isinstance(block.attn, MultiheadAttention) and isinstance(block.ln_1, TF.LayerNorm)
    x = np.random.default_rng(2).normal(size=(1, 5, 8)).astype(np.float32)
    y = x.copy()
    y[0, 3:] += 10.0  # change the future
    a, b = block(Tensor(x)).data, block(Tensor(y)).data
    np.testing.assert_allclose(a[0, :3], b[0, :3], rtol=1e-6, atol=1e-6, err_msg=(
        "outputs at positions 0..2 must not depend on positions 3, 4: attention must be causal"))
    assert not np.allclose(a[0, 3:], b[0, 3:])
    with pytest.raises(ValueError, match=r"n_embd=10.*n_head=4"):
        TF.TransformerBlock(10, 4)


# -- GPT ---------------------------------------------------------------------------------------------


def _gpt(seed=0, **overrides):
    config = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.0, bias=True)
    config.update(overrides)
    manual_seed(seed)
    return TF.GPT(TF.GPTConfig(**config)), config


@given(n_layer=st.integers(1, 3), n_head=st.integers(1, 2), head_dim=st.integers(1, 4), vocab=st.integers(2, 12),
       block_size=st.integers(1, 8), B=st.integers(1, 3), bias=st.booleans(), seed=st.integers(0, 2**16),
       data=st.data())
def test_gpt_logits_loss_and_every_gradient_match_a_torch_twin(n_layer, n_head, head_dim, vocab, block_size, B, bias,
                                                               seed, data):
    model, config = _gpt(seed, vocab_size=vocab, block_size=block_size, n_layer=n_layer, n_head=n_head,
                         n_embd=n_head * head_dim, bias=bias)
    theirs = _twin_of(model, config)
    T = data.draw(st.integers(1, block_size), label="T")
    rng = np.random.default_rng(seed)
    idx, targets = rng.integers(0, vocab, (B, T)), rng.integers(0, vocab, (B, T))
    logits, loss = model(idx, targets)
    expected_logits, expected_loss = theirs(torch.from_numpy(idx), torch.from_numpy(targets))
    assert_same(logits, expected_logits, "GPT logits", scale=4.0)
    assert_same(loss, expected_loss, "GPT loss (cross-entropy over every position)", scale=4.0)
    loss.backward()
    expected_loss.backward()
    _compare_parameter_grads(model, theirs, scale=10.0)


def test_gpt_structure_weight_tying_and_initialisation():
    model, config = _gpt(0, vocab_size=50, block_size=16, n_layer=3, n_head=4, n_embd=64)
    assert isinstance(model, Module)
    names = [n for n, _ in model.named_parameters()]
    assert names[:2] == ["wte.weight", "wpe.weight"] and names[-2:] == ["ln_f.weight", "ln_f.bias"]
    assert "h.2.attn.in_proj_weight" in names and "h.0.mlp.c_proj.weight" in names
    assert not any("lm_head" in n for n in names), "the head is tied to wte: no parameter of its own"
    theirs = _twin_of(model, config)
    assert model.num_parameters() == sum(p.numel() for p in theirs.parameters())
    params = dict(model.named_parameters())
    for name, std in (("wte.weight", 0.02), ("wpe.weight", 0.02), ("h.1.attn.in_proj_weight", 0.02),
                      ("h.1.mlp.c_fc.weight", 0.02), ("h.1.mlp.c_proj.weight", 0.02 / math.sqrt(6)),
                      ("h.1.attn.out_proj.weight", 0.02 / math.sqrt(6))):
        w = params[name].numpy().astype(np.float64)
        n = w.size
        assert abs(w.mean()) <= Z * std / math.sqrt(n), f"{name}: mean {w.mean():.3g} is not ~0"
        assert abs(w.std() - std) <= Z * std / math.sqrt(2 * n), f"{name}: std {w.std():.4g}, GPT-2 init gives {std:.4g}"
        tails, expected = float(np.mean(np.abs(w) > 2 * std)), math.erfc(2 / math.sqrt(2))  # 4.55% beyond 2 std
        assert abs(tails - expected) <= Z * math.sqrt(expected * (1 - expected) / n), (
            f"{name}: {tails:.2%} of the weights lie beyond 2 std, a normal draw puts {expected:.2%} there (a"
            " uniform draw with the same std puts none: GPT-2 draws N(0, std^2))")
    for name in ("h.0.attn.in_proj_bias", "h.0.mlp.c_fc.bias", "h.0.attn.out_proj.bias", "ln_f.bias"):
        np.testing.assert_array_equal(params[name].numpy(), 0.0, err_msg=f"{name} starts at 0")
    np.testing.assert_array_equal(params["h.0.ln_1.weight"].numpy(), 1.0, err_msg="LayerNorm weights start at 1")
    manual_seed(0)
    again = TF.GPT(TF.GPTConfig(**config))
    np.testing.assert_array_equal(again.wte.weight.numpy(), model.wte.weight.numpy(), err_msg="seeded init")
    g1, g2 = manual_seed(9), manual_seed(9)
    a, b = TF.GPT(TF.GPTConfig(**config), generator=g1), TF.GPT(TF.GPTConfig(**config), generator=g2)
    np.testing.assert_array_equal(a.h[0].attn.in_proj_weight.numpy(), b.h[0].attn.in_proj_weight.numpy(),
                                  err_msg="generator= drives the initialisation")
    no_bias, _ = _gpt(0, bias=False)
    assert not any(n.endswith("bias") for n, _ in no_bias.named_parameters()), "bias=False: no biases, LayerNorm too"


def test_gpt_without_targets_and_tensor_inputs():
    model, config = _gpt(3)
    idx = np.array([[1, 2, 3], [4, 5, 6]])
    logits, loss = model(Tensor(idx, dtype=np.int64))
    assert loss is None and logits.shape == (2, 3, 11) and logits.dtype == np.float32
    expected, _ = _twin_of(model, config)(torch.from_numpy(idx))
    assert_same(logits, expected, "GPT logits for an integer Tensor idx", scale=4.0)
    _, loss2 = model(idx, Tensor(idx, dtype=np.int64))
    assert loss2.shape == () and loss2.item() > 0


def test_gpt_is_causal_and_errors_name_the_problem():
    model, _ = _gpt(4)
    idx = np.array([[1, 2, 3, 4, 5]])
    changed = idx.copy()
    changed[0, 3:] = [9, 9]
    a, b = model(idx)[0].data, model(changed)[0].data
    np.testing.assert_allclose(a[0, :3], b[0, :3], rtol=1e-6, atol=1e-6, err_msg=(
        "logits at position t must depend only on tokens 0..t"))
    with pytest.raises(ValueError, match=r"9.*block_size=8"):
        model(np.zeros((1, 9), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        model(np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="n_head"):
        _gpt(0, n_embd=10, n_head=4)
    for field in ("vocab_size", "n_layer", "block_size"):
        with pytest.raises(ValueError, match=field):
            _gpt(0, **{field: 0})


def test_every_dropout_is_in_its_place():
    """With p = 1 every dropout zeroes what it gets: an MLP returns 0, a block returns its input (both residual
    branches dropped), a GPT's blocks see zeros (embedding dropout) and its logits are ln_f(0) @ wte^T = 0."""
    x = np.random.default_rng(4).normal(size=(2, 3, 8)).astype(np.float32)
    manual_seed(4)
    mlp = TF.MLP(8, dropout=1.0)
    mlp.train()
    np.testing.assert_array_equal(mlp(Tensor(x)).data, 0.0, err_msg="MLP(8, dropout=1.0) in training mode: the"
                                  " dropout after c_proj zeroes the output")
    block = _scrambled(TF.TransformerBlock(8, 2, dropout=1.0), 5)  # nonzero biases: attn(0 weights) != 0
    block.train()
    np.testing.assert_array_equal(block(Tensor(x)).data, x, err_msg=(
        "TransformerBlock(dropout=1.0) in training mode returns its input: the attention branch (block.drop) and"
        " the MLP branch (mlp.dropout) are both dropped before they are added to the residual"))
    assert float(TF.TransformerBlock(8, 2, dropout=0.25).attn.dropout) == 0.25, (
        "the block's MultiheadAttention gets the dropout too (on its attention weights)")
    model, _ = _gpt(4, dropout=1.0)
    model.train()
    np.testing.assert_array_equal(model(np.array([[1, 2, 3]]))[0].data, 0.0, err_msg=(
        "GPT(dropout=1.0) in training mode: drop(wte + wpe) is 0, every block returns it, ln_f(0) is its bias 0,"
        " so every logit is 0"))


def test_gpt_dropout_is_active_in_training_and_off_in_eval():
    model, config = _gpt(5, dropout=0.3)
    idx = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    model.eval()
    theirs = _twin_of(model, config).eval()
    assert_same(model(idx)[0], theirs(torch.from_numpy(idx))[0], "GPT logits in eval mode (dropout off)", scale=4.0)
    model.train()
    manual_seed(1)
    first = model(idx)[0].data
    manual_seed(1)
    np.testing.assert_array_equal(model(idx)[0].data, first, err_msg="dropout draws from module 03's default generator")
    assert not np.allclose(first, model(idx)[0].data), "in training mode, dropout=0.3 changes the logits"


# -- generation --------------------------------------------------------------------------------------


def _torch_greedy(theirs: TorchGPT, idx: np.ndarray, steps: int, block_size: int) -> np.ndarray:
    out = torch.from_numpy(idx)
    with torch.no_grad():
        for _ in range(steps):
            logits, _ = theirs(out[:, -block_size:])
            out = torch.cat([out, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return out.numpy()


@pytest.mark.parametrize("prompt_len", [1, 3, 8], ids=["short", "mid", "full-block"])
def test_generate_greedy_equals_an_argmax_loop_and_crops_the_context(prompt_len):
    model, config = _gpt(6)
    _scrambled(model, 3)  # spread logits that depend on the whole context: cropping one token short shows
    theirs = _twin_of(model, config).eval()
    idx = np.random.default_rng(prompt_len).integers(0, 11, (2, prompt_len))
    steps = 12  # runs well past block_size = 8: the context must be cropped to the last 8 tokens
    out = model.generate(idx, steps, top_k=1)
    assert out.shape == (2, prompt_len + steps) and out.dtype == np.int64, (
        f"generate returns int64 (B, T + max_new_tokens), got {out.shape} {out.dtype}")
    np.testing.assert_array_equal(out.data[:, :prompt_len], idx, err_msg="the prompt is kept at the front")
    np.testing.assert_array_equal(out.data, _torch_greedy(theirs, idx, steps, config["block_size"]), err_msg=(
        "top_k=1 is greedy decoding: each new token is the argmax of the last position's logits, computed on"
        " the last block_size tokens of the context"))


def test_generate_samples_from_the_tempered_top_k_distribution():
    model, config = _gpt(7)
    _scrambled(model, 7, 0.5)  # spread logits: temperature 3 and 1/3 give clearly different distributions
    prompt = np.array([[3, 1, 4]])
    logits = _twin_of(model, config).eval()(torch.from_numpy(prompt))[0][0, -1].detach().numpy().astype(np.float64)
    n = 4000
    g = manual_seed(8)
    for temperature, top_k in ((1.0, None), (0.5, 3), (3.0, None)):
        tokens = model.generate(np.repeat(prompt, n, axis=0), 1, temperature=temperature, top_k=top_k,
                                generator=g).data[:, -1]
        scaled = logits / temperature
        if top_k is not None:
            keep = np.argsort(scaled)[-top_k:]
            assert set(np.unique(tokens)) <= set(keep.tolist()), f"top_k={top_k}: only the {top_k} likeliest tokens"
            scaled = np.where(np.isin(np.arange(scaled.size), keep), scaled, -np.inf)
        p = np.exp(scaled - scaled.max())
        p /= p.sum()
        counts = np.bincount(tokens, minlength=p.size) / n
        bound = Z * np.sqrt(p * (1 - p) / n) + 1e-12
        assert np.all(np.abs(counts - p) <= bound), (
            f"temperature={temperature}, top_k={top_k}: sampled frequencies {np.round(counts, 3)} do not follow"
            f" softmax(logits / temperature) = {np.round(p, 3)}")


def test_generate_is_reproducible_restores_the_mode_and_validates():
    model, _ = _gpt(9, dropout=0.2)
    prompt = np.array([[1, 2]])
    g1, g2 = manual_seed(3), manual_seed(3)
    a, b = model.generate(prompt, 6, generator=g1), model.generate(prompt, 6, generator=g2)
    np.testing.assert_array_equal(a.data, b.data, err_msg="the same generator seed gives the same sample")
    manual_seed(4)
    c = model.generate(prompt, 6)
    manual_seed(4)
    np.testing.assert_array_equal(model.generate(prompt, 6).data, c.data, err_msg=(
        "without generator=, sampling draws from module 03's default generator"))
    assert model.training, "generate() restores training mode afterwards"
    model.eval()
    assert model.generate(prompt, 0).shape == (1, 2) and not model.training
    for kwargs, fragment in (({"temperature": 0.0}, "temperature"), ({"top_k": 0}, "top_k"),
                             ({"max_new_tokens": -1}, "max_new_tokens")):
        with pytest.raises(ValueError, match=fragment):
            model.generate(prompt, **{"max_new_tokens": 2, **kwargs})
    out = model.generate(prompt, 3, top_k=100)
    assert out.shape == (1, 5), "top_k above vocab_size keeps every token"
