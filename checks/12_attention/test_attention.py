"""Checks for module 12: Attention.

`scaled_dot_product_attention` is compared with torch.nn.functional.scaled_dot_product_attention
(forward values and the gradients of query, key and value) on Hypothesis-drawn batch and head
dimensions, lengths L != S, feature sizes, dtypes, scales and masks: none, causal, boolean
(True = may attend) and additive float masks with -inf entries, rows with every key masked
included (PyTorch >= 2.5 and tinytorch both give 0 there). `MultiheadAttention` is compared
with torch.nn.MultiheadAttention loaded with the same weights (torch's in_proj_weight layout):
outputs, returned attention weights and the gradients of query, key, value and every
projection weight and bias, with key padding, 2-D and per-head 3-D attention masks, causal
masks, both layouts (batch_first) and unbatched input. Gradients are also checked against
central differences; dropout is checked statistically and for determinism under a seed.
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
from checks.harness.learner_side import learner_errstate
from checks.harness.parity import assert_parity, assert_same, upstream_weights
from tinytorch import attention as A
from tinytorch.layers import Linear, Module, Parameter, manual_seed
from tinytorch.tensor import Tensor

Z = 6.0  # standard errors allowed in statistical checks


def _is_torch(x) -> bool:
    return isinstance(x, torch.Tensor)


def _torch_mask(mask):
    return torch.from_numpy(np.ascontiguousarray(mask)) if isinstance(mask, np.ndarray) else mask


# -- masks and the masked softmax --------------------------------------------------------------------


@pytest.mark.parametrize("L, S", [(1, 1), (4, 4), (3, 5), (5, 3)])
def test_causal_mask_is_the_top_left_lower_triangle(L, S):
    mask = A.causal_mask(L, S)
    expected = torch.ones(L, S, dtype=torch.bool).tril()
    assert isinstance(mask, np.ndarray) and mask.dtype == np.bool_, "causal_mask returns a numpy bool array"
    np.testing.assert_array_equal(mask, expected.numpy(), err_msg=(
        f"causal_mask({L}, {S}): row i may attend keys 0..i (True), aligned at the top left like torch's is_causal"))
    np.testing.assert_array_equal(A.causal_mask(L), A.causal_mask(L, L), err_msg="S defaults to L")


@st.composite
def softmax_case(draw):
    """(scores, allowed): scores of 1-D to 4-D, allowed a boolean mask of the same or a broadcast shape."""
    dtype = draw(tst.float_dtypes)
    shape = draw(tst.shapes(min_dims=1, max_dims=4, max_side=5))
    scores = draw(tst.arrays(shape, dtype=dtype))
    kind = draw(st.sampled_from(["none", "full", "broadcast"]))
    if kind == "none":
        return scores, None
    mask_shape = shape if kind == "full" else (1,) * (len(shape) - 1) + shape[-1:]
    allowed = np.asarray(draw(tst.arrays(mask_shape, dtype=np.float64, low=0, high=1))) < 0.6
    return scores, allowed


def _torch_masked_softmax(scores: torch.Tensor, allowed) -> torch.Tensor:
    """The reference: softmax over allowed entries, rows with none allowed set to 0 (no NaN)."""
    if allowed is None:
        return torch.softmax(scores, dim=-1)
    allowed = torch.from_numpy(np.broadcast_to(allowed, scores.shape).copy())
    filled = scores.masked_fill(~allowed, float("-inf"))
    empty = ~allowed.any(dim=-1, keepdim=True)
    return torch.softmax(filled.masked_fill(empty, 0.0), dim=-1).masked_fill(~allowed, 0.0)


@given(case=softmax_case())
def test_masked_softmax_matches_torch_forward_and_gradient(case):
    scores, allowed = case

    def fn(x):
        return _torch_masked_softmax(x, allowed) if _is_torch(x) else A.masked_softmax(x, allowed)

    assert_parity(fn, scores, grad=True)


def test_masked_softmax_fully_masked_rows_are_zero_not_nan():
    scores = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 1.0]],
                      dtype=np.float32)
    allowed = np.array([[True, False, True], [False, False, False], [True, True, True], [True, True, True]])
    x = Tensor(scores, requires_grad=True)
    out = A.masked_softmax(x, allowed)
    assert out.dtype == np.float32 and out.shape == (4, 3)
    assert not np.isnan(out.data).any(), f"no NaN anywhere, got\n{out.data}"
    np.testing.assert_array_equal(out.data[1], 0.0, err_msg="a row with no allowed entry is all zeros")
    np.testing.assert_array_equal(out.data[2], 0.0, err_msg="a row whose scores are all -inf is all zeros")
    np.testing.assert_array_equal(out.data[0, 1], 0.0, err_msg="a disallowed entry has probability 0")
    e = np.exp(np.array([1.0, 3.0]) - 3.0)
    np.testing.assert_allclose(out.data[0, [0, 2]], e / e.sum(), rtol=1e-6, err_msg="row 0: softmax over keys 0, 2")
    np.testing.assert_allclose(out.data[3], [1 / (1 + math.e), 0.0, math.e / (1 + math.e)], rtol=1e-6,
                               err_msg="a -inf score gets probability 0")
    import tinytorch.autograd  # noqa: F401

    (out * Tensor(upstream_weights((4, 3), np.float32))).sum().backward()
    assert x.grad is not None, "scores.grad: .grad is None after backward()"
    assert not np.isnan(x.grad.data).any(), f"scores.grad has NaN:\n{x.grad.data}"
    np.testing.assert_array_equal(x.grad.data[1:3], 0.0, err_msg="scores.grad of a fully masked row is 0")
    assert x.grad.data[0, 1] == 0.0, "scores.grad of a disallowed entry is 0"


def test_masked_softmax_is_stable_for_extreme_scores_in_some_rows():
    scores = np.array([[1e4, -1e4, 0.0, 1e4], [0.5, 0.25, -0.5, 1.0], [-1e4, -1e4 + 1, -1e4, -1e4]],
                      dtype=np.float32)
    with learner_errstate(all="raise"):  # the softmax must not trip any floating-point warning
        out = A.masked_softmax(Tensor(scores), np.array([True, True, True, False]))
    expected = _torch_masked_softmax(torch.from_numpy(scores), np.array([True, True, True, False]))
    assert_same(out, expected, "masked_softmax with +-1e4 scores in rows 0 and 2")
    # a huge score in a DISALLOWED position must not set the shift: the max is over the allowed entries
    hidden = np.array([[0.0, 200.0, 1.0], [0.5, 1e4, -0.5], [1e4, -1.0, 2.0]], dtype=np.float32)
    allowed = np.array([[True, False, True], [True, False, True], [False, True, True]])
    assert_same(A.masked_softmax(Tensor(hidden), allowed), _torch_masked_softmax(torch.from_numpy(hidden), allowed),
                "masked_softmax with a large score in a masked position (shift by the max of the ALLOWED scores)")
    assert_same(A.masked_softmax(Tensor(scores)), torch.softmax(torch.from_numpy(scores), -1),
                "masked_softmax without a mask")


def test_masked_softmax_gradient_matches_central_differences():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(2, 3, 4))
    allowed = rng.random((3, 4)) < 0.7
    allowed[1] = False
    check_gradients(lambda s: A.masked_softmax(s, allowed), scores)
    check_gradients(lambda s: A.masked_softmax(s), scores)


# -- scaled dot-product attention --------------------------------------------------------------------


@st.composite
def sdpa_case(draw):
    """(q, k, v, mask kind, mask, scale): 0-2 leading batch/head dims, L != S allowed."""
    dtype = draw(tst.float_dtypes)
    lead = tuple(draw(tst.shapes(min_dims=0, max_dims=2, max_side=3)))
    L, S = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    E, Ev = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    q = draw(tst.arrays(lead + (L, E), dtype=dtype, low=-3, high=3))
    k = draw(tst.arrays(lead + (S, E), dtype=dtype, low=-3, high=3))
    v = draw(tst.arrays(lead + (S, Ev), dtype=dtype, low=-3, high=3))
    kind = draw(st.sampled_from(["none", "causal", "bool", "float", "float-inf"]))
    mask = None
    if kind in ("bool", "float", "float-inf"):
        mask_shape = draw(st.sampled_from([(L, S), lead + (L, S), (1, S)]))
        mask = np.asarray(draw(tst.arrays(mask_shape, dtype=np.float64, low=0, high=1)))
        if kind == "bool":
            mask = mask < 0.6
        elif kind == "float":
            mask = (mask * 4 - 2).astype(dtype)
        else:
            mask = np.where(mask < 0.6, 0.0, -np.inf).astype(dtype)
    scale = draw(st.one_of(st.none(), st.floats(0.05, 2.0)))
    return q, k, v, kind, mask, scale


@given(case=sdpa_case())
def test_sdpa_matches_torch_forward_and_gradients(case):
    q, k, v, kind, mask, scale = case
    causal = kind == "causal"

    def attend(a, b, c):
        if _is_torch(a):
            return F.scaled_dot_product_attention(a, b, c, attn_mask=_torch_mask(mask), is_causal=causal, scale=scale)
        return A.scaled_dot_product_attention(a, b, c, attn_mask=mask, is_causal=causal, scale=scale)

    assert_parity(attend, q, k, v, grad=True, scale=4.0)


def test_sdpa_known_answer_and_default_scale():
    """One query, two keys: weights softmax([q.k0, q.k1] / sqrt(E)), output their mix of the values."""
    q = np.array([[1.0, 1.0, 1.0, 1.0]])
    k = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
    v = np.array([[10.0, 0.0], [0.0, 20.0]])
    out = A.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v))
    w = np.exp(np.array([1.0, 3.0]) / 2.0)
    w /= w.sum()
    np.testing.assert_allclose(out.data, [[10 * w[0], 20 * w[1]]], rtol=1e-6, err_msg=(
        "scores are q.k / sqrt(E) with E = 4 (the query's last dim), softmax over the keys, then a mix of values"))
    out2 = A.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), scale=1.0)
    w2 = np.exp(np.array([1.0, 3.0]))
    w2 /= w2.sum()
    np.testing.assert_allclose(out2.data, [[10 * w2[0], 20 * w2[1]]], rtol=1e-6, err_msg="scale=1.0 replaces 1/sqrt(E)")
    assert out.shape == (1, 2) and out.dtype == np.float64


def test_sdpa_fully_masked_rows_give_zero_output_and_zero_gradients():
    rng = np.random.default_rng(1)
    q, k, v = (rng.normal(size=(2, 3, 4)).astype(np.float32) for _ in range(3))
    mask = np.ones((3, 3), dtype=bool)
    mask[1] = False
    float_mask = np.where(mask, 0.0, -np.inf).astype(np.float32)
    for m in (mask, float_mask):
        got = assert_parity(lambda a, b, c: (F.scaled_dot_product_attention(a, b, c, attn_mask=_torch_mask(m))
                                             if _is_torch(a) else A.scaled_dot_product_attention(a, b, c, attn_mask=m)),
                            q, k, v, grad=True)
        np.testing.assert_array_equal(got.data[:, 1], 0.0, err_msg=(
            "a query row whose every key is masked gives output 0 (not NaN), as torch's SDPA does"))


def test_sdpa_accepts_mask_tensors_and_numpy_inputs():
    rng = np.random.default_rng(2)
    q, k, v = (rng.normal(size=(3, 2)).astype(np.float32) for _ in range(3))
    mask = np.array([[True, False, False], [True, True, False], [False, True, True]])
    expected = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)), attn_mask=torch.from_numpy(mask))
    assert_same(A.scaled_dot_product_attention(q, k, v, attn_mask=Tensor(mask, dtype=np.bool_)), expected,
                "SDPA with numpy inputs and a bool Tensor mask")
    assert_same(A.scaled_dot_product_attention(q, k, v, attn_mask=mask.tolist()), expected,
                "SDPA with a nested-list bool mask")


@pytest.mark.parametrize("kind", ["causal", "float"])
def test_sdpa_gradients_match_central_differences(kind):
    rng = np.random.default_rng(3)
    q, k, v = rng.normal(size=(2, 3, 2)), rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 4, 3))
    mask = rng.normal(size=(3, 4))
    mask[0, 1:] = -np.inf
    kwargs = {"is_causal": True} if kind == "causal" else {"attn_mask": mask}
    check_gradients(lambda a, b, c: A.scaled_dot_product_attention(a, b, c, **kwargs), q, k, v)


def test_sdpa_dropout_drops_weights_and_rescales_the_survivors():
    """With value = the identity, the output IS the attention weight matrix (after dropout)."""
    rng = np.random.default_rng(4)
    S, p = 64, 0.3
    q, k = rng.normal(size=(8, S, 4)), rng.normal(size=(8, S, 4))
    eye = np.eye(S)
    clean = A.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(eye)).data
    g = manual_seed(7)
    dropped = A.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(eye), dropout_p=p, generator=g).data
    zero = dropped == 0
    n = zero.size
    assert abs(zero.mean() - p) <= Z * math.sqrt(p * (1 - p) / n), (
        f"dropout_p={p}: fraction of dropped attention weights {zero.mean():.4f}, expected {p}")
    np.testing.assert_allclose(dropped[~zero], clean[~zero] / (1 - p), rtol=1e-12, err_msg=(
        "surviving weights are scaled by 1 / (1 - p)"))
    g1, g2 = manual_seed(11), manual_seed(11)
    again = [A.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(eye), dropout_p=p, generator=gen).data
             for gen in (g1, g2)]
    np.testing.assert_array_equal(again[0], again[1], err_msg="the same generator seed gives the same dropout")
    manual_seed(5)
    first = A.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(eye), dropout_p=p).data
    manual_seed(5)
    np.testing.assert_array_equal(A.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(eye), dropout_p=p).data,
                                  first, err_msg="without generator=, dropout draws from module 03's default generator")
    everything = A.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(eye), dropout_p=1.0)
    np.testing.assert_array_equal(everything.data, 0.0, err_msg="dropout_p=1 zeroes every weight")


def test_sdpa_errors_name_the_problem():
    q = Tensor(np.zeros((2, 3, 4), dtype=np.float32))
    k = Tensor(np.zeros((2, 5, 4), dtype=np.float32))
    v = Tensor(np.zeros((2, 5, 6), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(2, 5, 3\)"):
        A.scaled_dot_product_attention(q, Tensor(np.zeros((2, 5, 3), dtype=np.float32)), v)
    with pytest.raises(ValueError, match=r"\(2, 4, 6\)"):
        A.scaled_dot_product_attention(q, k, Tensor(np.zeros((2, 4, 6), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        A.scaled_dot_product_attention(Tensor(np.zeros(4, dtype=np.float32)), k, v)
    with pytest.raises(TypeError, match="int64"):
        A.scaled_dot_product_attention(q, Tensor(np.zeros((2, 5, 4), dtype=np.int64)), v)
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        A.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(ValueError, match="is_causal"):
        A.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 5), dtype=bool), is_causal=True)
    with pytest.raises(TypeError, match="int64"):
        A.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="1.5"):
        A.scaled_dot_product_attention(q, k, v, dropout_p=1.5)


# -- multi-head attention ----------------------------------------------------------------------------


def _torch_twin(ours, batch_first: bool, bias: bool) -> torch.nn.MultiheadAttention:
    theirs = torch.nn.MultiheadAttention(ours.embed_dim, ours.num_heads, bias=bias, batch_first=batch_first)
    state = {name: torch.from_numpy(np.array(value)) for name, value in ours.state_dict().items()}
    theirs.load_state_dict(state)  # strict: the parameter names and shapes must be torch's
    return theirs


@st.composite
def mha_case(draw):
    H, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    B, L, S = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    layout = draw(st.sampled_from(["batch_first", "seq_first", "unbatched"]))
    self_attention = draw(st.booleans())
    if self_attention:
        S = L
    kpm_kind = draw(st.sampled_from(["none", "bool", "float"]))
    mask_kind = draw(st.sampled_from(["none", "bool", "float", "per-head", "causal"] if self_attention
                                     else ["none", "bool", "float", "per-head"]))
    if layout == "unbatched":
        B = 1
        mask_kind = "bool" if mask_kind == "per-head" else mask_kind
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # every query keeps at least one key (torch.nn.MultiheadAttention gives NaN for a fully masked row)
    kpm = rng.random((B, S)) < 0.4
    kpm[:, 0] = False
    attn = rng.random((B * H, L, S)) < 0.4
    attn[..., 0] = False
    padding = {"none": None, "bool": kpm, "float": np.where(kpm, -np.inf, rng.normal(size=(B, S))).astype(np.float32)}[kpm_kind]
    mask = {"none": None, "bool": attn[0], "float": rng.normal(size=(L, S)).astype(np.float32),
            "per-head": attn, "causal": ~A.causal_mask(L, S)}[mask_kind]
    if layout == "unbatched" and padding is not None:
        padding = padding[0]
    return dict(H=H, E=H * head_dim, B=B, L=L, S=S, layout=layout, self_attention=self_attention,
                padding=padding, mask=mask, causal=mask_kind == "causal", bias=draw(st.booleans()),
                need_weights=draw(st.booleans()), average=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@given(case=mha_case(), data=st.data())
def test_multihead_attention_matches_torch_forward_and_every_gradient(case, data):
    E, B, L, S, layout = case["E"], case["B"], case["L"], case["S"], case["layout"]
    batch_first = layout != "seq_first"
    shape = {"batch_first": lambda n: (B, n, E), "seq_first": lambda n: (n, B, E), "unbatched": lambda n: (n, E)}[layout]
    query = data.draw(tst.arrays(shape(L), low=-2, high=2), label="query")
    if case["self_attention"]:
        key = value = query
    else:
        key = data.draw(tst.arrays(shape(S), low=-2, high=2), label="key")
        value = data.draw(tst.arrays(shape(S), low=-2, high=2), label="value")
    manual_seed(case["seed"])
    ours = A.MultiheadAttention(E, case["H"], bias=case["bias"], batch_first=batch_first)
    theirs = _torch_twin(ours, batch_first, case["bias"])
    kwargs = dict(need_weights=case["need_weights"], average_attn_weights=case["average"], is_causal=case["causal"])

    tq = Tensor(query, requires_grad=True)
    tk, tv = (tq, tq) if case["self_attention"] else (Tensor(key, requires_grad=True), Tensor(value, requires_grad=True))
    pq = torch.tensor(query, requires_grad=True)
    pk, pv = (pq, pq) if case["self_attention"] else (torch.tensor(key, requires_grad=True),
                                                      torch.tensor(value, requires_grad=True))
    out, weights = ours(tq, tk, tv, key_padding_mask=case["padding"], attn_mask=case["mask"], **kwargs)
    expected, expected_weights = theirs(pq, pk, pv, key_padding_mask=_torch_mask(case["padding"]),
                                        attn_mask=_torch_mask(case["mask"]), **kwargs)
    assert_same(out, expected, "MultiheadAttention output", scale=4.0)
    if expected_weights is None:
        assert weights is None, "need_weights=False returns (output, None)"
    else:
        assert_same(weights, expected_weights, "MultiheadAttention attention weights", scale=4.0)

    import tinytorch.autograd  # noqa: F401

    u = upstream_weights(tuple(expected.shape), np.float32)
    loss, torch_loss = (out * Tensor(u)).sum(), (expected * torch.from_numpy(u)).sum()
    if expected_weights is not None:
        uw = upstream_weights(tuple(expected_weights.shape), np.float32)
        loss = loss + (weights * Tensor(uw)).sum()
        torch_loss = torch_loss + (expected_weights * torch.from_numpy(uw)).sum()
    loss.backward()
    torch_loss.backward()
    inputs = [("query", tq, pq)] + ([] if case["self_attention"] else [("key", tk, pk), ("value", tv, pv)])
    for name, t, p in inputs:
        assert t.grad is not None, f"gradient of {name}: .grad is None after backward()"
        assert_same(t.grad, p.grad, f"gradient of {name}", scale=4.0)
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert param.grad is not None, f"gradient of {name}: .grad is None after backward()"
        assert_same(param.grad, theirs_params[name].grad, f"gradient of {name}", scale=4.0)


def test_multihead_attention_parameters_have_torch_names_layout_and_init():
    manual_seed(0)
    E, H = 96, 4
    ours = A.MultiheadAttention(E, H)
    theirs = torch.nn.MultiheadAttention(E, H, batch_first=True)
    assert isinstance(ours, Module) and isinstance(ours.out_proj, Linear)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()], "parameter names and shapes are torch's"
    assert all(isinstance(p, Parameter) and p.dtype == np.float32 for p in ours.parameters())
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())
    assert (ours.embed_dim, ours.num_heads, ours.head_dim, ours.batch_first) == (E, H, E // H, True)
    w = ours.in_proj_weight.numpy().astype(np.float64)
    bound = math.sqrt(6.0 / (4 * E))
    assert np.abs(w).max() <= bound, f"in_proj_weight is Xavier-uniform: |w| <= {bound:.4f}"
    assert abs(w.var() - bound**2 / 3) <= Z * math.sqrt((bound**4 / 5 - bound**4 / 9) / w.size), (
        f"in_proj_weight variance {w.var():.4g}, Xavier-uniform gives {bound**2 / 3:.4g}")
    ow = ours.out_proj.weight.numpy()
    assert np.abs(ow).max() <= 1 / math.sqrt(E) and ow.std() > 0.5 / math.sqrt(3 * E), (
        "out_proj.weight is U(-1/sqrt(E), 1/sqrt(E)), as torch's Linear default")
    np.testing.assert_array_equal(ours.in_proj_bias.numpy(), 0.0, err_msg="in_proj_bias starts at 0")
    np.testing.assert_array_equal(ours.out_proj.bias.numpy(), 0.0, err_msg="out_proj.bias starts at 0")
    no_bias = A.MultiheadAttention(8, 2, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["in_proj_weight", "out_proj.weight"]
    assert no_bias.in_proj_bias is None and no_bias.out_proj.bias is None
    g1, g2 = manual_seed(3), manual_seed(3)
    manual_seed(0)
    np.testing.assert_array_equal(A.MultiheadAttention(8, 2, generator=g1).in_proj_weight.numpy(),
                                  A.MultiheadAttention(8, 2, generator=g2).in_proj_weight.numpy(),
                                  err_msg="generator= is used for the initialisation")
    assert "embed_dim=8, num_heads=2" in repr(no_bias)


def test_multihead_attention_dropout_only_in_training_mode():
    manual_seed(1)
    E, H, p = 8, 2, 0.4
    ours = A.MultiheadAttention(E, H, dropout=p)
    x = np.random.default_rng(5).normal(size=(3, 40, E)).astype(np.float32)
    ours.eval()
    theirs = _torch_twin(ours, True, True).eval()
    expected = theirs(*(torch.from_numpy(x),) * 3, average_attn_weights=False)
    got = ours(Tensor(x), Tensor(x), Tensor(x), average_attn_weights=False)
    assert_same(got[0], expected[0], "output in eval mode (no dropout)")
    assert_same(got[1], expected[1], "weights in eval mode (no dropout)")
    ours.train()
    _, dropped = ours(Tensor(x), Tensor(x), Tensor(x), average_attn_weights=False)
    zero = dropped.data == 0
    assert abs(zero.mean() - p) <= Z * math.sqrt(p * (1 - p) / zero.size), (
        f"training mode: fraction of dropped attention weights {zero.mean():.4f}, expected dropout={p}")
    clean = expected[1].detach().numpy()
    np.testing.assert_allclose(dropped.data[~zero], clean[~zero] / (1 - p), rtol=1e-5, atol=1e-6, err_msg=(
        "the returned weights are the ones used: after dropout, survivors scaled by 1 / (1 - p)"))


def test_multihead_attention_causal_without_a_mask_and_fully_masked_rows():
    manual_seed(2)
    E, H, T = 6, 3, 5
    ours = A.MultiheadAttention(E, H)
    x = np.random.default_rng(6).normal(size=(2, T, E)).astype(np.float32)
    theirs = _torch_twin(ours, True, True)
    causal = torch.from_numpy(~A.causal_mask(T))
    expected = theirs(*(torch.from_numpy(x),) * 3, attn_mask=causal, is_causal=True)
    got = ours(Tensor(x), Tensor(x), Tensor(x), is_causal=True)
    assert_same(got[0], expected[0], "is_causal=True without attn_mask applies the causal mask")
    assert_same(got[1], expected[1], "weights with is_causal=True")
    some_padding = np.zeros((2, T), dtype=bool)
    some_padding[0, 3:] = some_padding[1, 1] = True  # key 0 stays, so no query row is fully masked
    expected = theirs(*(torch.from_numpy(x),) * 3, attn_mask=causal, key_padding_mask=torch.from_numpy(some_padding),
                      is_causal=True)
    got = ours(Tensor(x), Tensor(x), Tensor(x), key_padding_mask=some_padding, is_causal=True)
    assert_same(got[1], expected[1], "weights with is_causal=True AND key_padding_mask: both masks apply")
    assert_same(got[0], expected[0], "output with is_causal=True AND key_padding_mask")
    padding = np.zeros((2, T), dtype=bool)
    padding[1] = True  # every key of sample 1 is padding: torch gives NaN there, tinytorch 0
    out, weights = ours(Tensor(x), Tensor(x), Tensor(x), key_padding_mask=padding)
    assert not np.isnan(out.data).any(), "a fully masked query row gives 0 weights, never NaN"
    np.testing.assert_array_equal(weights.data[1], 0.0, err_msg="sample 1 has no key to attend: weights 0")
    bias = ours.out_proj.bias.numpy()
    np.testing.assert_allclose(out.data[1], np.broadcast_to(bias, (T, E)), atol=1e-7, err_msg=(
        "sample 1: attention output 0, so the layer outputs out_proj's bias"))


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_multihead_attention_per_head_masks_match_torch(kind):
    """A 3-D attn_mask (batch * num_heads, L, S): mask i belongs to sample i // num_heads, head i % num_heads."""
    manual_seed(3)
    B, H, L, S, E = 2, 3, 4, 5, 6
    ours = A.MultiheadAttention(E, H)
    theirs = _torch_twin(ours, True, True)
    rng = np.random.default_rng(8)
    q, kv = rng.normal(size=(B, L, E)).astype(np.float32), rng.normal(size=(B, S, E)).astype(np.float32)
    mask = rng.random((B * H, L, S)) < 0.5
    mask[..., 2] = False
    if kind == "float":
        mask = np.where(mask, -np.inf, rng.normal(size=mask.shape)).astype(np.float32)
    got = ours(Tensor(q), Tensor(kv), Tensor(kv), attn_mask=mask, average_attn_weights=False)
    expected = theirs(torch.from_numpy(q), torch.from_numpy(kv), torch.from_numpy(kv), attn_mask=torch.from_numpy(mask),
                      average_attn_weights=False)
    assert_same(got[1], expected[1], f"per-head weights with a {kind} (batch * num_heads, L, S) attn_mask")
    assert_same(got[0], expected[0], f"output with a {kind} (batch * num_heads, L, S) attn_mask")


def test_multihead_attention_gradients_match_central_differences():
    manual_seed(4)
    ours = A.MultiheadAttention(4, 2)
    rng = np.random.default_rng(7)
    q, k, v = rng.normal(size=(1, 3, 4)), rng.normal(size=(1, 2, 4)), rng.normal(size=(1, 2, 4))
    mask = np.array([[False, True], [False, False], [True, False]])
    check_gradients(lambda a, b, c: ours(a, b, c, attn_mask=mask)[0], q, k, v, rtol=1e-4, atol=1e-5)


def test_multihead_attention_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"embed_dim=10.*num_heads=4"):
        A.MultiheadAttention(10, 4)
    for args in ((0, 1), (4, 0), (True, 1), (4.0, 2)):
        with pytest.raises(ValueError, match="embed_dim|num_heads"):
            A.MultiheadAttention(*args)
    with pytest.raises(ValueError, match="dropout"):
        A.MultiheadAttention(4, 2, dropout=1.5)
    mha = A.MultiheadAttention(4, 2)
    x = Tensor(np.zeros((2, 3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(2, 3, 5\)"):
        mha(Tensor(np.zeros((2, 3, 5), dtype=np.float32)), x, x)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        mha(x, Tensor(np.zeros((2, 2, 4), dtype=np.float32)), x)
    with pytest.raises(ValueError, match="batch"):
        mha(x, Tensor(np.zeros((1, 3, 4), dtype=np.float32)), Tensor(np.zeros((1, 3, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"key_padding_mask.*\(3, 3\)"):
        mha(x, x, x, key_padding_mask=np.zeros((3, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"attn_mask.*\(2, 2\)"):
        mha(x, x, x, attn_mask=np.zeros((2, 2), dtype=bool))
