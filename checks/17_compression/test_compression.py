"""Checks for module 17: Compression (pruning, distillation, low-rank factorization).

Masks are compared exactly with torch.nn.utils.prune (l1_unstructured, ln_structured with n in
{1, 2, 3, inf, -inf} and every dim in [-ndim, ndim), global_unstructured with L1Unstructured) on
the same weights: Hypothesis-drawn 1-D to 4-D arrays (float32 and float64, C- and Fortran-ordered)
whose magnitudes are all distinct (torch breaks ties with topk, whose order is unspecified; the
lesson's tie rule is checked on its own), with some slices moved +-1000 away (unstructured) or
scaled by up to 3^+-6 (structured), and amounts drawn as counts (0..size) and fractions
(including exact .5 rounding cases). Training with a Pruner is compared with torch training a
model pruned by torch.nn.utils.prune (weights after every SGD-with-momentum and Adam step). The
distillation loss is compared with F.kl_div(F.log_softmax(s / T), F.softmax(t / T),
reduction="batchmean") * T * T, value AND gradients to both inputs, on logits with extreme rows;
the alpha mix adds F.cross_entropy. The low-rank factorization is checked against the
Eckart-Young error sqrt(sum of the squared tail singular values) from torch.linalg.svdvals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch.nn.utils.prune as torch_prune
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.learner_side import probes
from checks.harness.parity import assert_parity, assert_same
from checks.harness.tolerances import for_dtype
import tinytorch.autograd  # noqa: F401  (registers the backward engine)
from tinytorch import compression as C
from tinytorch.activations import ReLU
from tinytorch.layers import Linear, Sequential, manual_seed
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import SGD, Adam
from tinytorch.tensor import Tensor

NORMS = [1, 2, 3, math.inf, -math.inf]
HALF_FRACTIONS = [0.0, 0.1, 0.25, 0.3, 0.5, 0.75, 0.9, 1.0]


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def _layout(draw, x: np.ndarray) -> np.ndarray:
    """The same values, sometimes in Fortran order (a transposed view), to catch reshape/ravel slips."""
    if x.ndim >= 2 and draw(st.booleans()):
        return np.asfortranarray(x)
    return x


@st.composite
def distinct_weights(draw, min_dims=1, max_dims=4, extremes=True):
    """Values +-k/8 with distinct k in [1, 3999] (so all |w| distinct, exact in float32); in some draws
    some slices are moved +-1000 away: |w| stays distinct (1000 + a = 1000 - b needs a = -b)."""
    dtype = draw(tst.float_dtypes)
    shape = tuple(draw(tst.shapes(min_dims=min_dims, max_dims=max_dims, max_side=5 if max_dims < 4 else 4)))
    size = math.prod(shape)
    ks = np.array(draw(st.lists(st.integers(1, 3999), min_size=size, max_size=size, unique=True)))
    signs = np.array(draw(st.lists(st.sampled_from([-1, 1]), min_size=size, max_size=size)))
    x = (ks * signs / 8).reshape(shape).astype(dtype)
    if extremes:
        x = draw(tst.with_extreme_slices(st.just(x)))
    return _layout(draw, x)


def amounts(size: int) -> st.SearchStrategy:
    """An int count in [0, size] or a float fraction in [0, 1] (common fractions, and any)."""
    return st.one_of(st.integers(0, size), st.sampled_from(HALF_FRACTIONS), st.floats(0.0, 1.0))


def _torch_mask(method, x: np.ndarray, **kwargs) -> np.ndarray:
    """The weight_mask torch.nn.utils.prune leaves on a module holding x as its weight."""
    holder = torch.nn.Module()
    holder.weight = torch.nn.Parameter(_t(x).clone())
    method(holder, "weight", **kwargs)
    return holder.weight_mask.numpy()


def assert_mask(got, expected: np.ndarray, x: np.ndarray, what: str) -> None:
    got = np.asarray(got)
    assert got.shape == expected.shape, f"{what}: mask shape {got.shape}, torch's is {expected.shape}"
    assert got.dtype == x.dtype, f"{what}: the mask has the weight's dtype {x.dtype} (torch's rule), got {got.dtype}"
    if not np.array_equal(got, expected):
        bad = np.argwhere(got != expected)
        i = tuple(int(v) for v in bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} of {got.size} mask entries differ from torch.nn.utils.prune; first at index {i}:"
            f" weight {x[i]!r}, got {got[i]}, torch {expected[i]} (torch prunes {int((expected == 0).sum())},"
            f" you pruned {int((got == 0).sum())})")


# -- amounts and masks ---------------------------------------------------------------------------------


@given(data=st.data(), x=distinct_weights())
def test_l1_unstructured_mask_matches_torch(data, x):
    amount = data.draw(amounts(x.size), label="amount")
    expected = _torch_mask(torch_prune.l1_unstructured, x, amount=amount)
    got = C.l1_unstructured(Tensor(x) if data.draw(st.booleans()) else x, amount)
    assert_mask(got, expected, x, f"l1_unstructured(shape {x.shape}, amount={amount!r})")


def test_amount_rounding_is_pythons_round_half_to_even():
    cases = [(0.5, 5, 2), (0.5, 7, 4), (0.3, 5, 2), (0.5, 1, 0), (0.5, 3, 2), (0.1, 25, 2), (3, 10, 3), (0.0, 9, 0),
             (1.0, 9, 9)]
    for amount, size, count in cases:
        got = C.amount_to_count(amount, size)
        assert got == count, (f"amount_to_count({amount}, {size}): expected {count} (round({amount} * {size}) ="
                              f" round({amount * size}), half to even), got {got}")
        mask = C.l1_unstructured(np.arange(1, size + 1, dtype=np.float32), amount)
        assert int((mask == 0).sum()) == count, f"l1_unstructured(size {size}, amount={amount}) prunes {count}"


def test_tie_rule_prunes_the_lowest_flat_index_first():
    w = np.array([[2.0, -1.0, 1.0], [1.0, -3.0, -1.0]], dtype=np.float32)
    np.testing.assert_array_equal(C.l1_unstructured(w, 2), [[1, 0, 0], [1, 1, 1]], err_msg=(
        "four entries tie at |w| = 1 (flat indices 1, 2, 3, 5); pruning 2 takes indices 1 and 2 (stable order)"))
    np.testing.assert_array_equal(C.ln_structured(np.ones((3, 2), dtype=np.float32), 1, 2, 0), [[0, 0], [1, 1], [1, 1]],
                                  err_msg="three rows with equal norms: pruning one takes row 0")
    ints = C.l1_unstructured(np.array([3, -1, 2]), 1)
    assert ints.dtype == np.float32 and ints.tolist() == [1, 0, 1], f"integer weights get a float32 mask, got {ints!r}"
    # past 16 elements numpy's default sort (introsort) reorders equal keys: only a stable sort keeps the rule
    a = np.array([2, 1, 1, 0, 0, 0, 0, 0, 0, 2, 1, 2, 1, 1, 2, 2, 1, 1, 1, 2], dtype=np.float32)
    stable = np.ones(20, dtype=np.float32)
    stable[[1, 3, 4, 5, 6, 7, 8]] = 0  # the six zeros, then the first tied 1 (torch's topk breaks slice ties its own way)
    for name, got, expected in (
            ("l1_unstructured", C.l1_unstructured(a, 7), _torch_mask(torch_prune.l1_unstructured, a, amount=7)),
            ("ln_structured", C.ln_structured(a.reshape(20, 1), 7, 1, 0), stable)):
        np.testing.assert_array_equal(np.asarray(got).reshape(-1), np.asarray(expected).reshape(-1), err_msg=(
            f"{name} of 20 values with 7 zeros and many ties at 1 (amount 7): prune the 6 zeros and then the"
            " tied 1 with the LOWEST index, as torch does (np.argsort(..., kind='stable'))"))
    counted = C.l1_unstructured(np.array([0.4, -0.1, 0.3, 0.2], dtype=np.float32), np.int64(2))
    assert counted.tolist() == [1, 0, 1, 0], (
        f"amount=np.int64(2) is a count (any integer type, numbers.Integral), not a fraction: got {counted.tolist()}")


@st.composite
def structured_case(draw):
    """Slice i along dim scaled by 3^e_i (distinct e_i in [-6, 6]), elements of magnitude in [1, 2):
    every L_n norm of slice i then lies in [3^e_i c, 2 * 3^e_i c), so the norms are distinct by a factor >= 1.5."""
    dtype = draw(tst.float_dtypes)
    shape = tuple(draw(tst.shapes(min_dims=2, max_dims=4, max_side=4)))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    base = np.array(draw(tst.arrays(shape, dtype=np.float64, low=1.0, high=1.99, layouts=("contiguous",))))
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=base.size, max_size=base.size)))
    exponents = np.array(draw(st.lists(st.integers(-6, 6), min_size=shape[dim], max_size=shape[dim], unique=True)))
    scale_shape = [1] * len(shape)
    scale_shape[dim] = -1
    x = (base * signs.reshape(shape) * (3.0 ** exponents).reshape(scale_shape)).astype(dtype)
    amount = draw(amounts(shape[dim]))
    return _layout(draw, x), amount, draw(st.sampled_from(NORMS)), dim


@given(case=structured_case())
def test_ln_structured_mask_matches_torch(case):
    x, amount, n, dim = case
    expected = _torch_mask(torch_prune.ln_structured, x, amount=amount, n=n, dim=dim)
    got = C.ln_structured(x, amount, n, dim)
    assert_mask(got, expected, x, f"ln_structured(shape {x.shape}, amount={amount!r}, n={n}, dim={dim})")


def test_ln_structured_known_answer_and_fro():
    w = np.array([[3.0, 4.0], [1.0, 1.0], [-2.0, 0.0]], dtype=np.float32)  # row L2 norms 5, 1.41, 2; L1 7, 2, 2
    np.testing.assert_array_equal(C.ln_structured(w, 1, 2, 0), [[1, 1], [0, 0], [1, 1]],
                                  err_msg="L2 row norms (5, 1.41, 2): pruning 1 row removes row 1")
    np.testing.assert_array_equal(C.ln_structured(w, 2, "fro", 0), [[1, 1], [0, 0], [0, 0]],
                                  err_msg="n='fro' is the L2 norm")
    np.testing.assert_array_equal(C.ln_structured(w, 1, 1, 1), [[1, 0], [1, 0], [1, 0]],
                                  err_msg="L1 column norms (6, 5): pruning 1 column (dim=1) removes column 1")
    lopsided = np.array([[0.1, 5.0], [1.0, 1.0]], dtype=np.float32)  # min |.| 0.1 vs 1, max 5 vs 1
    for n in (-np.inf, np.inf):
        assert_mask(C.ln_structured(lopsided, 1, n, 0),
                    _torch_mask(torch_prune.ln_structured, lopsided, amount=1, n=n, dim=0), lopsided,
                    f"ln_structured(n={n}) on rows (0.1, 5) and (1, 1): n=-inf ranks rows by their SMALLEST |value|")
    huge = np.array([[2e20, 0.0], [1e20, 0.0]], dtype=np.float32)  # squares overflow float32
    assert_mask(C.ln_structured(huge, 1, 2, 0), _torch_mask(torch_prune.ln_structured, huge, amount=1, n=2, dim=0),
                huge, "ln_structured of rows with norms 2e20 and 1e20: norms in float64 (float32 squares overflow)")


@st.composite
def global_case(draw):
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    total = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    ks = np.array(draw(st.lists(st.integers(1, 3999), min_size=total, max_size=total, unique=True)))
    signs = np.array(draw(st.lists(st.sampled_from([-1, 1]), min_size=total, max_size=total)))
    flat = (ks * signs / 8).astype(np.float32)
    # a layer scaled far up or down: global pruning must then take most of its weights, or spare them
    scales = draw(st.lists(st.sampled_from([1.0, 1.0, 1e-3, 1e3]), min_size=len(sizes) - 1, max_size=len(sizes) - 1))
    weights, start = [], 0
    for (n_in, n_out), scale in zip(zip(sizes[:-1], sizes[1:]), scales):
        weights.append((flat[start:start + n_in * n_out].reshape(n_out, n_in) * np.float32(scale)).astype(np.float32))
        start += n_in * n_out
    return sizes, weights, draw(amounts(total))


@given(case=global_case())
def test_global_unstructured_masks_match_torch(case):
    sizes, weights, amount = case
    layers = [Linear(n_in, n_out, bias=False) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    torch_layers = [torch.nn.Linear(n_in, n_out, bias=False) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    for layer, torch_layer, w in zip(layers, torch_layers, weights):
        layer.load_state_dict({"weight": w})
        torch_layer.weight.data = _t(w).clone()
    torch_prune.global_unstructured([(m, "weight") for m in torch_layers], pruning_method=torch_prune.L1Unstructured,
                                    amount=amount)
    masks = C.global_unstructured([(m, "weight") for m in layers], amount)
    assert len(masks) == len(layers), f"one mask per (module, name) pair: expected {len(layers)}, got {len(masks)}"
    for i, (mask, torch_layer, w) in enumerate(zip(masks, torch_layers, weights)):
        assert_mask(mask, torch_layer.weight_mask.numpy(), w, f"global_unstructured(amount={amount!r}) mask {i}")
        np.testing.assert_array_equal(layers[i].weight.data, w, err_msg="global_unstructured only computes masks;"
                                                                         " the weights are unchanged")


# -- masks kept during training ----------------------------------------------------------------------------


def _twin_models(seed: int):
    manual_seed(seed)
    model = Sequential(Linear(6, 8), ReLU(), Linear(8, 4))
    reference = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    for i in (0, 2):
        reference[i].weight.data = _t(model[i].weight.data).clone()
        reference[i].bias.data = _t(model[i].bias.data).clone()
    return model, reference


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam"])
@pytest.mark.parametrize("method", ["l1", "ln", "global"])
def test_masks_stay_applied_through_training_like_torch_prune(optimizer, method):
    model, reference = _twin_models(7)
    pruner = C.Pruner()
    if method == "l1":
        masks = [pruner.l1_unstructured(model[0], "weight", 0.6), pruner.l1_unstructured(model[2], "weight", 10)]
        torch_prune.l1_unstructured(reference[0], "weight", 0.6)
        torch_prune.l1_unstructured(reference[2], "weight", 10)
    elif method == "ln":
        masks = [pruner.ln_structured(model[0], "weight", 3, 2, 0), pruner.ln_structured(model[2], "weight", 0.5, 1, 1)]
        torch_prune.ln_structured(reference[0], "weight", 3, n=2, dim=0)
        torch_prune.ln_structured(reference[2], "weight", 0.5, n=1, dim=1)
    else:
        masks = pruner.global_unstructured([(model[0], "weight"), (model[2], "weight")], 0.8)
        torch_prune.global_unstructured([(reference[0], "weight"), (reference[2], "weight")],
                                        pruning_method=torch_prune.L1Unstructured, amount=0.8)
    for i, mask in zip((0, 2), masks):
        assert_mask(mask, reference[i].weight_mask.numpy(), reference[i].weight_orig.detach().numpy(),
                    f"{method} mask of layer {i}")
        assert_same(model[i].weight, reference[i].weight.detach(), f"layer {i}'s weight right after pruning ({method})")
    params = list(model.parameters())
    if optimizer == "sgd_momentum":
        opt, torch_opt = SGD(params, lr=0.1, momentum=0.9), torch.optim.SGD(reference.parameters(), lr=0.1,
                                                                            momentum=0.9)
    else:
        opt, torch_opt = Adam(params, lr=0.05), torch.optim.Adam(reference.parameters(), lr=0.05)
    rng = np.random.default_rng(1)
    loss_fn = CrossEntropyLoss()
    for step in range(6):
        x = rng.normal(size=(16, 6)).astype(np.float32)
        y = rng.integers(0, 4, size=16)
        loss = loss_fn(model(Tensor(x)), Tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        pruner.apply()
        torch_loss = F.cross_entropy(reference(_t(x)), torch.from_numpy(y))
        torch_opt.zero_grad()
        torch_loss.backward()
        torch_opt.step()
        for i, mask in zip((0, 2), masks):
            weight = model[i].weight.data
            revived = (weight != 0) & (np.asarray(mask) == 0)
            assert not revived.any(), (
                f"{optimizer} step {step}, layer {i}: {int(revived.sum())} pruned weights are nonzero after"
                " pruner.apply() (the mask must be re-applied after every optimizer step)")
            rtol, atol = for_dtype(np.float32, scale=10.0)
            effective = (reference[i].weight_orig * reference[i].weight_mask).detach()  # torch's forward hook
            assert_same(weight, effective,
                        f"{optimizer} step {step}, layer {i}: weights vs torch training the torch-pruned model",
                        rtol, atol)
    assert abs(pruner.sparsity() - sum(float((np.asarray(m) == 0).sum()) for m in masks)
               / sum(np.asarray(m).size for m in masks)) < 1e-12, "Pruner.sparsity(): zeros over the pruned tensors"


def test_pruning_twice_keeps_both_masks_and_remove_makes_it_permanent():
    manual_seed(3)
    layer = Linear(5, 4)
    pruner = C.Pruner()
    first = np.asarray(pruner.l1_unstructured(layer, "weight", 0.5))
    assert len(pruner) == 1 and int((first == 0).sum()) == 10, "half of 20 weights pruned, one mask registered"
    structured = np.asarray(C.ln_structured(layer.weight, 1, 1, 0))
    combined = np.asarray(pruner.ln_structured(layer, "weight", 1, 1, 0))
    np.testing.assert_array_equal(combined, first * structured, err_msg=(
        "pruning a parameter again multiplies the new mask into the old one (sparsity only grows)"))
    np.testing.assert_array_equal(pruner.mask(layer, "weight"), combined, err_msg="Pruner.mask() returns the mask")
    pruner.add_mask(layer, "bias", np.array([1, 0, 1, 1], dtype=np.float32))
    assert layer.bias.data[1] == 0 and len(pruner) == 2, "add_mask applies a hand-made mask at once (the bias here)"
    pruner.remove(layer, "bias")
    assert len(pruner) == 1, "remove(module, name) forgets only that mask"
    with pytest.raises(KeyError, match="bias"):
        pruner.mask(layer, "bias")
    with pytest.raises(KeyError, match="bias"):
        pruner.remove(layer, "bias")
    # an update without apply() (load_state_dict copies in place): the pruner puts the zeros back
    layer.load_state_dict({"weight": np.ones((4, 5), dtype=np.float32), "bias": layer.bias.data})
    pruner.apply()
    assert np.array_equal(layer.weight.data != 0, combined != 0), "apply() re-zeroes exactly the masked weights"
    pruner.remove()
    assert len(pruner) == 0 and pruner.sparsity() == 0.0, "remove() forgets every mask"
    assert (layer.weight.data == 0).sum() == (combined == 0).sum(), "remove() keeps the zeros (pruning made permanent)"
    layer.load_state_dict({"weight": np.full((4, 5), 2.0, dtype=np.float32), "bias": layer.bias.data})
    pruner.apply()
    assert (layer.weight.data == 2.0).all(), "after remove(), apply() no longer touches the parameter"


def test_apply_also_masks_gradients():
    manual_seed(4)
    layer = Linear(3, 2)
    pruner = C.Pruner()
    mask = np.asarray(pruner.l1_unstructured(layer, "weight", 3))
    layer(Tensor(np.ones((4, 3), dtype=np.float32))).sum().backward()
    pruner.apply()
    assert (layer.weight.grad.data[mask == 0] == 0).all() and (layer.weight.grad.data[mask == 1] != 0).all(), (
        "apply() multiplies an existing .grad by the mask too (pruned weights get no update from it)")


def test_sparsity_of_tensors_and_models():
    assert C.sparsity(np.array([0.0, 1.0, 0.0, 2.0])) == 0.5, "two zeros of four"
    assert C.sparsity(Tensor(np.zeros((2, 3), dtype=np.float32))) == 1.0, "all zeros"
    assert C.sparsity(np.zeros(0)) == 0.0, "an empty tensor has sparsity 0.0"
    manual_seed(5)
    shared = Linear(4, 4)
    model = Sequential(shared, ReLU(), shared, Linear(4, 2, bias=False))
    weight, last = shared.weight.data, model[3].weight.data
    weight[:2] = 0.0
    last[0, 0] = 0.0
    shared.load_state_dict({"weight": weight, "bias": shared.bias.data})
    model[3].load_state_dict({"weight": last})
    expected = (8 + 1) / (16 + 4 + 8)  # the shared layer's 20 parameters counted once
    assert abs(C.sparsity(model) - expected) < 1e-12, (
        f"sparsity(model): zeros over all distinct parameters (a shared layer once): expected {expected}, got"
        f" {C.sparsity(model)}")


# -- gradual schedule --------------------------------------------------------------------------------------


@given(initial=st.sampled_from([0.0, 0.05, 0.3]), final=st.sampled_from([0.5, 0.8, 0.9, 0.99, 1.0]),
       begin=st.integers(0, 50), n=st.integers(1, 30), frequency=st.integers(1, 20), data=st.data())
def test_gradual_sparsity_follows_zhu_and_gupta(initial, final, begin, n, frequency, data):
    values = []
    for step in range(max(0, begin - 5), begin + n * frequency + 10):
        k = min(max((step - begin) // frequency, 0), n)
        t = begin + k * frequency  # the last pruning step at or before `step`
        expected = final + (initial - final) * (1 - (t - begin) / (n * frequency)) ** 3
        got = C.gradual_sparsity(step, final, initial, begin, n, frequency)
        assert abs(got - expected) < 1e-12, (
            f"gradual_sparsity(step={step}, final={final}, initial={initial}, begin_step={begin}, n={n},"
            f" frequency={frequency}): expected s_t at t = {t}: {expected}, got {got}")
        values.append(got)
    assert abs(values[0] - initial) < 1e-12, "up to begin_step the schedule is at initial_sparsity"
    assert abs(values[-1] - final) < 1e-12, f"after begin_step + n * frequency the schedule stays at final={final}"
    assert all(b >= a for a, b in zip(values, values[1:])), "the schedule never decreases"


def test_gradual_sparsity_known_values():
    # s_f = 0.9, s_i = 0, n = 4: 0.9 * (1 - (1 - k/4)^3) = 0, 0.5203125, 0.7875, 0.8859375, 0.9
    got = [C.gradual_sparsity(step, 0.9, 0.0, 100, 4, 10) for step in (99, 100, 109, 110, 120, 130, 140, 1000)]
    np.testing.assert_allclose(got, [0.0, 0.0, 0.0, 0.5203125, 0.7875, 0.8859375, 0.9, 0.9], rtol=0, atol=1e-12,
                               err_msg="Zhu & Gupta cubic: most of the pruning early, little near the end")
    assert C.gradual_sparsity(5, 0.5) == C.gradual_sparsity(5, 0.5, 0.0, 0, 10, 1), "defaults: s_i 0, t0 0, n 10, dt 1"


# -- distillation --------------------------------------------------------------------------------------------


@st.composite
def logit_pairs(draw, teacher_extremes=False, offsets=(-1000.0, 1000.0)):
    """(student, teacher, T): (N, C) logits; the student's with some rows or columns moved by `offsets`. The
    teacher's only with teacher_extremes: where softmax(t / T) underflows to 0, torch's kl_div gradient to the
    TARGET is 0 * log(0) = NaN, so teacher gradients are compared on moderate teachers (|t / T| <= 16), and
    next to students at most 30 away: the teacher's gradient is a difference of terms of size |log q|, whose
    float32 rounding (|log q| * 6e-8) would exceed any fixed tolerance at |log q| = 4000."""
    dtype = draw(tst.float_dtypes)
    n, c = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    student = draw(tst.with_extreme_slices(tst.arrays((n, c), dtype=dtype, low=-8.0, high=8.0), offsets))
    teacher = tst.arrays((n, c), dtype=dtype, low=-8.0, high=8.0)
    teacher = draw(tst.with_extreme_slices(teacher) if teacher_extremes else teacher)
    return student, teacher, draw(st.sampled_from([0.5, 1.0, 2.0, 4.0, 20.0]))


def _torch_soft(s, t, temperature):
    return F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1), reduction="batchmean") * (
        temperature * temperature)


@given(case=logit_pairs(offsets=(-30.0, 30.0)))
def test_distillation_loss_value_and_gradients_match_torch_kl_div(case):
    student, teacher, temperature = case

    def fn(s, t):
        if isinstance(s, torch.Tensor):
            return _torch_soft(s, t, temperature)
        return C.distillation_loss(s, t, temperature)

    assert_parity(fn, student, teacher, grad=True, scale=max(1.0, temperature))


@given(case=logit_pairs(teacher_extremes=True))
def test_distillation_with_a_frozen_teacher_is_stable_at_extremes(case):
    student, teacher, temperature = case  # the usual setup: teacher logits computed without gradients

    def fn(s):
        if isinstance(s, torch.Tensor):
            return _torch_soft(s, torch.from_numpy(teacher), temperature)
        return C.distillation_loss(s, Tensor(teacher), temperature)

    assert_parity(fn, student, grad=True, scale=max(1.0, temperature))


@given(case=logit_pairs(offsets=(-30.0, 30.0)), alpha=st.sampled_from([0.0, 0.3, 0.5, 0.9]), data=st.data())
def test_distillation_loss_alpha_mix_with_cross_entropy(case, alpha, data):
    student, teacher, temperature = case
    labels = np.array(data.draw(st.lists(st.integers(0, student.shape[1] - 1), min_size=student.shape[0],
                                         max_size=student.shape[0])), dtype=np.int64)

    def fn(s, t, y):
        if isinstance(s, torch.Tensor):
            return alpha * _torch_soft(s, t, temperature) + (1 - alpha) * F.cross_entropy(s, y)
        return C.distillation_loss(s, t, temperature, labels=y, alpha=alpha)

    assert_parity(fn, student, teacher, labels, grad=True, scale=max(1.0, temperature))


def test_distillation_loss_is_zero_when_the_student_matches_and_accepts_arrays():
    logits = np.array([[1.0, 2.0, -1.0], [0.0, 0.5, 3.0]], dtype=np.float32)
    loss = C.distillation_loss(logits, logits + 7.0, 3.0)  # softmax ignores a constant shift
    assert abs(float(loss.data)) < 1e-6, f"identical distributions: KL = 0, got {float(loss.data)}"


# -- low-rank factorization --------------------------------------------------------------------------------


@st.composite
def low_rank_case(draw):
    n_in, n_out = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    return n_in, n_out, draw(st.integers(1, min(n_in, n_out))), draw(st.booleans()), draw(st.integers(0, 2**16))


@given(case=low_rank_case())
def test_low_rank_linear_is_the_eckart_young_truncation(case):
    n_in, n_out, rank, bias, seed = case
    manual_seed(seed)
    linear = Linear(n_in, n_out, bias=bias)
    factored = C.low_rank_linear(linear, rank)
    assert probes().class_names(factored) == ["Linear", "Linear"], (
        f"low_rank_linear returns Sequential(Linear, Linear), got {probes().class_names(factored)}")
    first, second = factored[0], factored[1]
    assert first.weight.shape == (rank, n_in) and first.bias is None, (
        f"first layer: Linear({n_in}, {rank}, bias=False), got weight {first.weight.shape}, bias {first.bias}")
    assert second.weight.shape == (n_out, rank), f"second layer weight: ({n_out}, {rank}), got {second.weight.shape}"
    assert first.weight.dtype == np.float32 and second.weight.dtype == np.float32, "factors keep the float32 dtype"
    w = linear.weight.data.astype(np.float64)
    product = second.weight.data.astype(np.float64) @ first.weight.data.astype(np.float64)
    singular = torch.linalg.svdvals(torch.from_numpy(w)).numpy()
    expected = math.sqrt(float((singular[rank:] ** 2).sum()))
    error = float(np.linalg.norm(w - product))
    slack = 1e-6 * (1 + float(np.linalg.norm(w))) * (1 + math.sqrt(n_in * n_out))  # float32 factors
    assert abs(error - expected) <= slack, (
        f"||W - B A||_F for rank {rank} of a ({n_out}, {n_in}) weight: {error:.8g}; the best rank-{rank} error"
        f" (Eckart-Young, sqrt of the sum of the squared singular values after the first {rank}) is {expected:.8g}")
    if bias:
        np.testing.assert_array_equal(second.bias.data, linear.bias.data, err_msg="the second layer keeps the bias")
    else:
        assert second.bias is None, "a Linear without bias gives a second layer without bias"
    x = np.random.default_rng(seed).normal(size=(3, n_in)).astype(np.float32)
    want = torch.from_numpy(x).double() @ torch.from_numpy(product).T
    if bias:
        want = want + _t(linear.bias.data).double()
    assert_same(factored(Tensor(x)).data.astype(np.float64), want, "factored forward vs x @ (B A).T + b", 1e-5, 1e-5)


def test_low_rank_full_rank_reconstructs_and_leaves_the_rng_alone():
    manual_seed(11)
    linear = Linear(5, 3)
    manual_seed(12)
    probe_before = Linear(2, 2).weight.data.copy()
    manual_seed(12)
    factored = C.low_rank_linear(linear, 3)
    probe_after = Linear(2, 2).weight.data
    np.testing.assert_allclose(factored[1].weight.data @ factored[0].weight.data, linear.weight.data, atol=1e-6,
                               err_msg="rank = min(in, out) reproduces W")
    np.testing.assert_array_equal(probe_after, probe_before, err_msg=(
        "low_rank_linear must not consume the global random stream (its factors replace any initialisation)"))
    assert not probes().same_object(factored[1].bias, linear.bias), (
        "the factored layer's bias is a copy: changing the original Linear afterwards must not change it")
    diagonal = Linear(2, 2)
    diagonal.load_state_dict({"weight": np.diag([4.0, 1.0]).astype(np.float32), "bias": np.zeros(2, np.float32)})
    pair = C.low_rank_linear(diagonal, 1)
    A, B = np.abs(pair[0].weight.data), np.abs(pair[1].weight.data)
    np.testing.assert_allclose([A.max(), B.max()], [2.0, 2.0], rtol=1e-6, err_msg=(
        "W = diag(4, 1), rank 1: the factors split the singular value evenly, A = sqrt(S) Vt and B = U sqrt(S),"
        " so both have largest entry sqrt(4) = 2 (balanced factors train and quantize better)"))


# -- errors ---------------------------------------------------------------------------------------------------


def test_errors_name_the_problem():
    w = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    with pytest.raises(ValueError, match="1.5"):
        C.l1_unstructured(w, 1.5)
    with pytest.raises(ValueError, match=r"-0\.1"):
        C.l1_unstructured(w, -0.1)
    with pytest.raises(ValueError, match="-2"):
        C.l1_unstructured(w, -2)
    with pytest.raises(ValueError, match="13.*12"):
        C.l1_unstructured(w, 13)
    with pytest.raises(TypeError, match="amount"):
        C.l1_unstructured(w, "half")
    with pytest.raises(TypeError, match="amount"):
        C.l1_unstructured(w, True)
    with pytest.raises(ValueError, match="4.*3|amount=4"):
        C.ln_structured(w, 4, 2, 0)
    with pytest.raises(ValueError, match="dim=2"):
        C.ln_structured(w, 1, 2, 2)
    with pytest.raises(ValueError, match="dim=-3"):
        C.ln_structured(w, 1, 2, -3)
    with pytest.raises(ValueError, match="dimensions"):
        C.ln_structured(w[0], 1, 2, 0)
    with pytest.raises(ValueError, match="n must"):
        C.ln_structured(w, 1, 0, 0)
    with pytest.raises(ValueError, match="n must"):
        C.ln_structured(w, 1, "nuc", 0)
    with pytest.raises(ValueError, match="empty"):
        C.l1_unstructured(np.zeros((0, 3), dtype=np.float32), 0)
    with pytest.raises(TypeError, match="bool"):
        C.l1_unstructured(np.array([True, False]), 1)
    manual_seed(0)
    layers = [Linear(3, 2), Linear(2, 2)]
    with pytest.raises(ValueError, match="amount=11.*10"):
        C.global_unstructured([(layer, "weight") for layer in layers], 11)
    with pytest.raises(ValueError, match="empty"):
        C.global_unstructured([], 0.5)
    with pytest.raises(ValueError, match="kernel"):
        C.global_unstructured([(layers[0], "weight"), (layers[1], "kernel")], 0.5)
    with pytest.raises(TypeError, match="Module"):
        C.global_unstructured([(np.zeros(3), "weight")], 0.5)
    pruner = C.Pruner()
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(2, 3\)|\(2, 3\).*\(2, 2\)"):
        pruner.add_mask(layers[0], "weight", np.ones((2, 2)))
    with pytest.raises(ValueError, match="0.*1"):
        pruner.add_mask(layers[0], "weight", np.full((2, 3), 0.5))
    with pytest.raises(KeyError, match="weight"):
        pruner.mask(layers[0], "weight")
    with pytest.raises(ValueError, match="final_sparsity=0.2"):
        C.gradual_sparsity(0, 0.2, 0.5)
    with pytest.raises(ValueError, match="final_sparsity.*1.5"):
        C.gradual_sparsity(0, 1.5)
    with pytest.raises(ValueError, match="n must.*0"):
        C.gradual_sparsity(0, 0.9, n=0)
    with pytest.raises(ValueError, match="frequency"):
        C.gradual_sparsity(0, 0.9, frequency=2.5)
    s = Tensor(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        C.distillation_loss(s, Tensor(np.zeros((2, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        C.distillation_loss(np.zeros(3, dtype=np.float32), np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="temperature.*0"):
        C.distillation_loss(s, s, 0.0)
    with pytest.raises(ValueError, match="alpha.*1.5"):
        C.distillation_loss(s, s, 2.0, labels=np.zeros(2, dtype=np.int64), alpha=1.5)
    with pytest.raises(ValueError, match="labels"):
        C.distillation_loss(s, s, 2.0, alpha=0.5)
    with pytest.raises(ValueError, match="rank=0"):
        C.low_rank_linear(layers[0], 0)
    with pytest.raises(ValueError, match=r"rank=3.*\[1, 2\]"):
        C.low_rank_linear(layers[0], 3)
    with pytest.raises(TypeError, match="Linear"):
        C.low_rank_linear(ReLU(), 1)
