"""Checks for module 11: Embeddings.

`embedding` and `Embedding` are compared with torch.nn.functional.embedding and
torch.nn.Embedding loaded with the same weights: forward values and the weight gradient,
on Hypothesis-drawn tables and index arrays of 0-D to 3-D (numpy arrays, lists and integer
Tensors), with repeated indices and a padding row. The sinusoidal table and RoPE are
compared with PyTorch implementations written below (RoPE in the interleaved convention:
pairs (x[2i], x[2i+1]), the one the lesson states). Properties: rotations preserve norms;
<rope(q, m), rope(k, n)> depends only on m - n. Gradients are also checked against central
differences.
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
from checks.harness.gradcheck import check_gradients, numerical_gradients
from checks.harness.parity import assert_parity, assert_same, upstream_weights
from tinytorch import embeddings as E
from tinytorch.layers import Module, Parameter, manual_seed
from tinytorch.tensor import Tensor

Z = 6.0  # standard errors allowed in statistical checks


# -- PyTorch twins -----------------------------------------------------------------------------------


def torch_sinusoidal(max_len: int, d_model: int) -> torch.Tensor:
    """Vaswani et al. 3.5, written with torch ops in float64 and returned as float32."""
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)[:, : d_model // 2]
    return pe.to(torch.float32)


def torch_rope(x: torch.Tensor, positions=None, base: float = 10000.0) -> torch.Tensor:
    """RoPE, interleaved pairs (x[..., 2i], x[..., 2i+1]) rotated by pos * base**(-2i/d): complex view."""
    seq, dim = x.shape[-2], x.shape[-1]
    pos = torch.arange(seq) if positions is None else torch.as_tensor(np.asarray(positions))
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = pos.to(torch.float64)[..., None] * inv_freq
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


def _as_form(idx: np.ndarray, form: str):
    """The same indices as a numpy array, a (nested) list, or an integer Tensor."""
    if form == "list":
        return idx.tolist()
    if form == "tensor":
        return Tensor(idx, dtype=idx.dtype)
    return idx


def _backward_weighted(out, shape, dtype) -> np.ndarray:
    """Backpropagate sum(u * out) with the harness's fixed upstream weights u; returns u."""
    import tinytorch.autograd  # noqa: F401

    weights = upstream_weights(tuple(shape), dtype)
    (out * Tensor(weights)).sum().backward()
    return weights


@st.composite
def lookup_case(draw):
    """(weight, idx, padding_idx): small tables so that indices repeat, idx of 0-D to 3-D."""
    dtype = draw(tst.float_dtypes)
    num, dim = draw(st.integers(1, 7)), draw(st.integers(1, 5))
    weight = draw(tst.arrays((num, dim), dtype=dtype))
    shape = draw(tst.shapes(min_dims=0, max_dims=3, max_side=4))
    idx_dtype = draw(st.sampled_from([np.int64, np.int32]))
    idx = np.asarray(draw(tst.arrays(shape, dtype=np.float64, low=0, high=num - 1e-9)))
    idx = np.asarray(np.floor(idx)).astype(idx_dtype)
    padding = draw(st.one_of(st.none(), st.integers(-num, num - 1)))
    return weight, idx, padding


# -- the functional lookup ---------------------------------------------------------------------------


@given(case=lookup_case(), form=st.sampled_from(["array", "list", "tensor"]))
def test_embedding_matches_torch_functional_embedding(case, form):
    weight, idx, padding = case
    torch_idx = torch.from_numpy(idx.astype(np.int64))

    def lookup(w):
        if isinstance(w, torch.Tensor):
            return F.embedding(torch_idx, w, padding_idx=padding)
        return E.embedding(_as_form(idx, form), w, padding_idx=padding)

    assert_parity(lookup, weight, grad=True)


def test_embedding_gradient_is_a_scatter_add():
    """Row r's gradient is the sum over every position that looked r up; the padding row gets none."""
    weight = np.arange(12, dtype=np.float32).reshape(4, 3)
    idx = np.array([[0, 2, 0], [0, 1, 2]])
    w = Tensor(weight, requires_grad=True)
    out = E.embedding(idx, w, padding_idx=2)
    assert out.shape == (2, 3, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out.data[0, 1], weight[2], err_msg="the padding row's forward value is its row")
    import tinytorch.autograd  # noqa: F401

    out.sum().backward()
    expected = np.array([[3, 3, 3], [1, 1, 1], [0, 0, 0], [0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(w.grad.data, expected, err_msg=(
        "gradient of weight: row 0 is looked up 3 times (accumulate every repeat: np.add.at),"
        " row 2 is padding_idx (no gradient), row 3 is never used (zero)"))
    tw = torch.tensor(weight, requires_grad=True)
    F.embedding(torch.from_numpy(idx), tw, padding_idx=2).sum().backward()
    assert_same(w.grad, tw.grad, "gradient of weight")


@pytest.mark.parametrize("padding", [None, 1, -1])
def test_embedding_gradient_matches_central_differences(padding):
    idx = np.array([[3, 1, 1], [0, 3, 3]])
    weight = np.random.default_rng(0).normal(size=(4, 3))
    if padding is None:
        check_gradients(lambda w: E.embedding(idx, w), weight)
        return
    # Central differences see the padding row's true derivative (the row is used in the forward
    # pass); PyTorch's rule gives it none. Compare every other row numerically, that one with 0.
    w = Tensor(weight, requires_grad=True)
    out = E.embedding(idx, w, padding_idx=padding)
    weights = _backward_weighted(out, out.shape, np.float64)
    numeric = numerical_gradients(lambda t: E.embedding(idx, t, padding_idx=padding), [weight], weights)[0]
    numeric[padding] = 0.0
    np.testing.assert_allclose(w.grad.data, numeric, rtol=1e-5, atol=1e-5, err_msg=(
        f"gradient of weight vs central differences (padding_idx={padding}: that row must get none)"))


@pytest.mark.parametrize("form", ["array", "list", "tensor"])
@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 1, 3)], ids=["0d", "1d", "2d", "3d"])
@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32, np.uint8])
def test_index_forms_and_shapes(form, shape, idx_dtype):
    weight = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
    idx = (np.arange(int(np.prod(shape))) * 3 % 5).reshape(shape).astype(idx_dtype)
    out = E.embedding(_as_form(idx, form), Tensor(weight))
    expected = F.embedding(torch.from_numpy(idx.astype(np.int64)), torch.from_numpy(weight))
    assert out.shape == shape + (2,), f"output shape must be idx.shape + (embedding_dim,), got {out.shape}"
    assert_same(out, expected, f"embedding of a {len(shape)}-D {form} of {np.dtype(idx_dtype).name}")


def test_python_int_and_empty_indices():
    weight = Tensor(np.arange(6, dtype=np.float32).reshape(3, 2))
    assert_same(E.embedding(2, weight), torch.tensor([4.0, 5.0]), "embedding of the Python int 2")
    empty = E.embedding([], weight)
    assert empty.shape == (0, 2), f"an empty list of indices gives shape (0, embedding_dim), got {empty.shape}"


@pytest.mark.parametrize("bad", [5, 7, -1])
def test_out_of_range_index_names_the_index(bad):
    weight = Tensor(np.zeros((5, 2), dtype=np.float32))
    with pytest.raises(IndexError, match=rf"index {bad}\b.*num_embeddings=5"):
        E.embedding(np.array([[0, 1], [bad, 2]]), weight)
    with pytest.raises(IndexError, match=rf"index {bad}\b"):
        E.Embedding(5, 2)(Tensor(np.array([bad, 0])))


def test_non_integer_indices_and_bad_weights_are_errors():
    weight = Tensor(np.zeros((5, 2), dtype=np.float32))
    with pytest.raises(TypeError, match="float64"):
        E.embedding(np.array([1.0, 2.0]), weight)
    with pytest.raises(TypeError, match="bool"):
        E.embedding(np.array([True, False]), weight)
    with pytest.raises(ValueError, match=r"\(10,\)"):
        E.embedding(np.array([1]), Tensor(np.zeros(10, dtype=np.float32)))
    with pytest.raises(ValueError, match="padding_idx"):
        E.embedding(np.array([1]), weight, padding_idx=5)
    with pytest.raises(ValueError, match="padding_idx"):
        E.embedding(np.array([1]), weight, padding_idx=-6)


# -- the module --------------------------------------------------------------------------------------


@given(
    num=st.integers(1, 9), dim=st.integers(1, 6), seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(["float32", "float64"]), data=st.data(),
)
def test_embedding_module_matches_torch_nn_embedding(num, dim, seed, dtype, data):
    padding = data.draw(st.one_of(st.none(), st.integers(-num, num - 1)), label="padding_idx")
    manual_seed(seed)
    ours = E.Embedding(num, dim, padding_idx=padding, dtype=np.dtype(dtype))
    theirs = torch.nn.Embedding(num, dim, padding_idx=padding, dtype=getattr(torch, dtype))
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.numpy()))
    assert ours.padding_idx == theirs.padding_idx, "padding_idx is stored in [0, num_embeddings), as in torch"
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == ["weight"]
    assert isinstance(ours.weight, Parameter) and ours.weight.shape == (num, dim)
    if padding is not None:
        assert np.all(ours.weight.numpy()[padding] == 0), "the padding row starts at zero"
    idx = np.asarray(np.floor(data.draw(tst.arrays(tst.shapes(0, 3, max_side=4), dtype=np.float64, low=0,
                                                   high=num - 1e-9), label="idx"))).astype(np.int64)
    out, expected = ours(Tensor(idx, dtype=np.int64)), theirs(torch.from_numpy(idx))
    assert_same(out, expected, "Embedding forward")
    weights = _backward_weighted(out, expected.shape, np.dtype(dtype))
    (expected * torch.from_numpy(weights)).sum().backward()
    assert ours.weight.grad is not None, "gradient of weight: .grad is None after backward()"
    assert_same(ours.weight.grad, theirs.weight.grad, "gradient of weight")


def test_embedding_initialisation_is_standard_normal_and_seeded():
    manual_seed(3)
    table = E.Embedding(400, 100).weight.numpy().astype(np.float64)
    n = table.size
    assert abs(table.mean()) <= Z / math.sqrt(n), f"weight mean {table.mean():.4g} is not ~0: init is N(0, 1)"
    # Var of the sample variance of N(0, 1) is 2 / n.
    assert abs(table.var() - 1.0) <= Z * math.sqrt(2.0 / n), f"weight variance {table.var():.4g}, expected 1"
    assert E.Embedding(3, 2).weight.dtype == np.float32 and E.Embedding(3, 2, dtype=np.float64).weight.dtype == np.float64
    manual_seed(5)
    first = E.Embedding(4, 3).weight.numpy().copy()
    manual_seed(5)
    np.testing.assert_array_equal(E.Embedding(4, 3).weight.numpy(), first,
                                  err_msg="without generator=, draw from module 03's default generator")


def test_explicit_generators_are_used():
    # Generators made (and kept) on tinytorch's side by manual_seed: each call rebinds the default
    # to a NEW generator, so g1 and g2 are two independent generators seeded 11.
    g1 = manual_seed(11)
    g2 = manual_seed(11)
    manual_seed(0)
    a = E.Embedding(4, 3, generator=g1).weight.numpy()
    default = E.Embedding(4, 3).weight.numpy()
    np.testing.assert_array_equal(E.Embedding(4, 3, generator=g2).weight.numpy(), a,
                                  err_msg="with generator=, draw from that generator, not the default one")
    assert not np.array_equal(a, default)
    g3 = manual_seed(11)
    g4 = manual_seed(11)
    b = E.PositionalEmbedding(4, 3, generator=g3).weight.numpy()
    np.testing.assert_array_equal(E.PositionalEmbedding(4, 3, generator=g4).weight.numpy(), b,
                                  err_msg="PositionalEmbedding(generator=) draws from that generator")


@pytest.mark.parametrize(
    "args, kwargs, exc, fragment",
    [((0, 3), {}, ValueError, "num_embeddings"), ((3, -2), {}, ValueError, "embedding_dim"),
     ((True, 3), {}, ValueError, "num_embeddings"), ((3, 2.5), {}, ValueError, "embedding_dim"),
     ((3, 2), {"padding_idx": 3}, ValueError, "padding_idx"), ((3, 2), {"padding_idx": 1.0}, ValueError, "padding_idx"),
     ((3, 2), {"dtype": np.int64}, TypeError, "int64")],
)
def test_embedding_rejects_bad_arguments(args, kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment):
        E.Embedding(*args, **kwargs)


# -- learned absolute positions ----------------------------------------------------------------------


@given(max_len=st.integers(1, 12), dim=st.integers(1, 5), data=st.data())
def test_positional_embedding_is_a_table_of_positions(max_len, dim, data):
    seq_len = data.draw(st.integers(0, max_len), label="seq_len")
    manual_seed(seq_len)
    pos = E.PositionalEmbedding(max_len, dim)
    assert [n for n, _ in pos.named_parameters()] == ["weight"] and pos.weight.shape == (max_len, dim)
    table = torch.tensor(pos.weight.numpy(), requires_grad=True)
    out, expected = pos(seq_len), F.embedding(torch.arange(seq_len), table)
    assert out.shape == (seq_len, dim), f"forward(seq_len) gives (seq_len, embedding_dim), got {out.shape}"
    assert_same(out, expected, "PositionalEmbedding(seq_len)")
    if seq_len:
        weights = _backward_weighted(out, expected.shape, np.float32)
        (expected * torch.from_numpy(weights)).sum().backward()
        assert_same(pos.weight.grad, table.grad, "gradient of weight")
    positions = np.array([[max_len - 1, 0], [0, 0]])
    assert_same(pos(positions), F.embedding(torch.from_numpy(positions), table), "PositionalEmbedding(positions)")


def test_positional_embedding_errors_name_the_numbers():
    pos = E.PositionalEmbedding(8, 4)
    with pytest.raises(ValueError, match=r"9.*max_len=8"):
        pos(9)
    with pytest.raises(ValueError, match="-1"):
        pos(-1)
    with pytest.raises(IndexError, match=r"index 8\b"):
        pos(np.array([8]))
    with pytest.raises(ValueError, match="max_len"):
        E.PositionalEmbedding(0, 4)
    with pytest.raises(ValueError, match="embedding_dim"):
        E.PositionalEmbedding(4, False)
    with pytest.raises(TypeError, match="int32"):
        E.PositionalEmbedding(4, 2, dtype=np.int32)
    assert E.PositionalEmbedding(4, 2, dtype=np.float64)(3).dtype == np.float64
    assert repr(pos) == "PositionalEmbedding(8, 4)"


# -- sinusoidal encoding -----------------------------------------------------------------------------


@given(max_len=st.integers(1, 64), d_model=st.integers(1, 24))
def test_sinusoidal_encoding_matches_a_torch_twin(max_len, d_model):
    table = E.sinusoidal_encoding(max_len, d_model)
    assert isinstance(table, np.ndarray), f"sinusoidal_encoding returns a numpy array, got {type(table).__name__}"
    assert_same(table, torch_sinusoidal(max_len, d_model), f"sinusoidal_encoding({max_len}, {d_model})")


def test_sinusoidal_encoding_known_values():
    table = E.sinusoidal_encoding(512, 128)
    assert table.dtype == np.float32 and table.shape == (512, 128)
    np.testing.assert_array_equal(table[0], np.tile([0.0, 1.0], 64).astype(np.float32),
                                  err_msg="position 0: sin(0) = 0 in even columns, cos(0) = 1 in odd ones")
    np.testing.assert_allclose(table[1, :2], [math.sin(1.0), math.cos(1.0)], rtol=1e-6,
                               err_msg="columns 0 and 1 have wavelength 2*pi: angle = position")
    np.testing.assert_allclose(table[100, 2:4], [math.sin(100 / 10000 ** (2 / 128)), math.cos(100 / 10000 ** (2 / 128))],
                               rtol=1e-5, atol=1e-6, err_msg="column pair i=1 has angle pos / 10000**(2/d_model)")
    assert_same(table, torch_sinusoidal(512, 128), "sinusoidal_encoding(512, 128)")
    assert E.sinusoidal_encoding(3, 5).shape == (3, 5), "an odd d_model has one more sin column"
    for args, fragment in (((0, 4), "max_len"), ((4, -1), "d_model"), ((4.0, 4), "max_len")):
        with pytest.raises(ValueError, match=fragment):
            E.sinusoidal_encoding(*args)


# -- rotary position embedding -----------------------------------------------------------------------


@st.composite
def rope_case(draw):
    """x (..., T, head_dim) of 2-D to 4-D, head_dim even, and positions None or drawn integers."""
    dtype = draw(tst.float_dtypes)
    lead = draw(tst.shapes(min_dims=0, max_dims=2, max_side=3))
    seq, half = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    x = draw(tst.arrays(tuple(lead) + (seq, 2 * half), dtype=dtype, low=-3, high=3))
    kind = draw(st.sampled_from(["default", "sequence", "batched"]))
    if kind == "default":
        return x, None
    pos_shape = (seq,) if kind == "sequence" or not lead else (lead[0],) + (1,) * (len(lead) - 1) + (seq,)
    positions = np.asarray(draw(st.lists(st.integers(0, 2048), min_size=int(np.prod(pos_shape)),
                                         max_size=int(np.prod(pos_shape))))).reshape(pos_shape)
    return x, positions


@given(case=rope_case())
def test_rope_matches_a_torch_twin_forward_and_gradient(case):
    x, positions = case

    def rope(a):
        return torch_rope(a, positions) if isinstance(a, torch.Tensor) else E.apply_rope(a, positions)

    assert_parity(rope, x, grad=True)


def test_rope_pairs_are_interleaved():
    """Known answer: pair i of x = (1, 0, 1, 0) at position p is (cos a_i, sin a_i), a_i = p / 10000**(2i/4)."""
    x = np.array([[1.0, 0.0, 1.0, 0.0]] * 3)
    out = E.apply_rope(Tensor(x)).data
    for p in range(3):
        angles = [p, p / 100.0]
        expected = [math.cos(angles[0]), math.sin(angles[0]), math.cos(angles[1]), math.sin(angles[1])]
        np.testing.assert_allclose(out[p], expected, rtol=1e-12, atol=1e-12, err_msg=(
            f"position {p}: pairs are (x[2i], x[2i+1]) (interleaved), rotated by p * 10000**(-2i/head_dim)"))
    y = np.array([[0.0, 1.0, 0.0, 0.0]])
    np.testing.assert_allclose(E.apply_rope(Tensor(y), np.array([2])).data, [[-math.sin(2), math.cos(2), 0, 0]],
                               atol=1e-12, err_msg="the odd member of a pair rotates to (-sin, cos)")


@given(case=rope_case())
def test_rope_preserves_pair_norms(case):
    x, positions = case
    out = E.apply_rope(Tensor(x), positions)
    assert out.shape == x.shape and out.dtype == x.dtype
    pairs_in = np.hypot(x[..., 0::2].astype(np.float64), x[..., 1::2])
    pairs_out = np.hypot(out.data[..., 0::2].astype(np.float64), out.data[..., 1::2])
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(pairs_out, pairs_in, rtol=tol, atol=tol,
                               err_msg="a rotation preserves the norm of every pair (x[2i], x[2i+1])")


@given(
    half=st.integers(1, 8), m=st.integers(0, 500), n=st.integers(0, 500), shift=st.integers(-400, 400),
    data=st.data(),
)
def test_rope_scores_depend_only_on_relative_position(half, m, n, shift, data):
    q = data.draw(tst.arrays((1, 2 * half), dtype=np.float64, low=-2, high=2), label="q")
    k = data.draw(tst.arrays((1, 2 * half), dtype=np.float64, low=-2, high=2), label="k")

    def score(a, b):
        qa = E.apply_rope(Tensor(q), np.array([a])).data[0]
        kb = E.apply_rope(Tensor(k), np.array([b])).data[0]
        return float(qa @ kb)

    base = score(m, n)
    bound = 1e-9 * (1 + float(np.abs(q).sum() * np.abs(k).max()))
    assert abs(score(m + shift, n + shift) - base) <= bound, (
        f"<rope(q, {m}), rope(k, {n})> = {base} but shifting both positions by {shift} gives"
        f" {score(m + shift, n + shift)}: the score must depend only on m - n")
    assert abs(score(0, n - m) - base) <= bound, "<rope(q, m), rope(k, n)> = <q, rope(k, n - m)>"


@pytest.mark.parametrize("shape, positions", [((3, 4), None), ((2, 2, 6), np.array([5, 900])),
                                              ((2, 1, 3, 2), np.array([[[0, 7, 3]], [[1, 1, 1]]]))])
def test_rope_gradient_matches_central_differences(shape, positions):
    x = np.random.default_rng(4).normal(size=shape)
    check_gradients(lambda t: E.apply_rope(t, positions), x)


def test_rotary_embedding_module_and_errors():
    rot = E.RotaryEmbedding(6, base=500.0)
    assert isinstance(rot, Module) and list(rot.parameters()) == [], "RoPE has no parameters"
    assert repr(rot) == "RotaryEmbedding(head_dim=6, base=500)"
    x = np.random.default_rng(5).normal(size=(2, 3, 6)).astype(np.float32)
    assert_same(rot(Tensor(x)), torch_rope(torch.from_numpy(x), base=500.0), "RotaryEmbedding(6, base=500)(x)")
    assert_same(rot(x, np.array([4, 2, 0])), torch_rope(torch.from_numpy(x), [4, 2, 0], base=500.0),
                "RotaryEmbedding(6, base=500)(x, positions)")
    with pytest.raises(ValueError, match="head_dim=5"):
        E.RotaryEmbedding(5)
    with pytest.raises(ValueError, match="head_dim"):
        E.RotaryEmbedding(True)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        rot(Tensor(np.zeros((2, 3, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match="head_dim=5"):
        E.apply_rope(Tensor(np.zeros((2, 5))))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        E.apply_rope(Tensor(np.zeros(4)))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        E.apply_rope(Tensor(np.zeros((3, 4))), np.arange(4))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        E.apply_rope(Tensor(np.zeros((3, 4))), np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="float64"):
        E.apply_rope(Tensor(np.zeros((3, 4))), np.zeros(3))
    with pytest.raises(TypeError, match="int64"):
        E.apply_rope(Tensor(np.zeros((3, 4), dtype=np.int64)))
    out = E.apply_rope(np.ones((2, 4), dtype=np.float32), Tensor(np.array([0, 1]), dtype=np.int64))
    assert out.dtype == np.float32, "numpy input and Tensor positions are accepted; float32 is kept"
