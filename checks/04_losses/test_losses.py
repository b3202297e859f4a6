"""Checks for module 04: Losses.

Forward values are compared with torch.nn.functional (and the torch.nn loss
classes) through one lambda that runs on both frameworks, on Hypothesis-drawn
shapes, dtypes and memory layouts, for every reduction. Stability is checked
at extreme logits and probabilities, and errors must name what is wrong.
Gradients are module 05's job; here we check that each loss records its op.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.learner_side import learner_errstate
from checks.harness.parity import assert_parity, assert_same
from tinytorch import losses as L
from tinytorch.tensor import Tensor

REDUCTIONS = ["mean", "sum", "none"]


def both(name: str, **kwargs):
    """A lambda that calls `name` from tinytorch.losses or torch.nn.functional, whichever fits the input."""

    def run(x, t):
        namespace = F if isinstance(x, torch.Tensor) else L
        return getattr(namespace, name)(x, t, **kwargs)

    return run


# -- forward parity ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(pair=tst.same_shape_pair())
def test_mse_loss_matches_torch(reduction, pair):
    assert_parity(both("mse_loss", reduction=reduction), *pair, scale=10.0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(pair=tst.same_shape_pair(target_low=0.0, target_high=1.0))
def test_bce_with_logits_matches_torch(reduction, pair):
    assert_parity(both("binary_cross_entropy_with_logits", reduction=reduction), *pair, scale=10.0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(pair=tst.same_shape_pair(low=0.0, high=1.0, target_low=0.0, target_high=1.0))
def test_bce_matches_torch_including_probabilities_0_and_1(reduction, pair):
    assert_parity(both("binary_cross_entropy", reduction=reduction), *pair, scale=10.0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(case=tst.classification_case(), smoothing=st.sampled_from([0.0, 0.1, 0.5]))
def test_cross_entropy_matches_torch(reduction, case, smoothing):
    assert_parity(both("cross_entropy", reduction=reduction, label_smoothing=smoothing), *case, scale=10.0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(case=tst.classification_case(extreme_slices=True), smoothing=st.sampled_from([0.0, 0.1]))
def test_cross_entropy_is_stable_when_some_samples_sit_far_from_the_rest(reduction, case, smoothing):
    # log-sum-exp must subtract each sample's own max: a batch-wide max sends far-away rows to log(0)
    assert_parity(both("cross_entropy", reduction=reduction, label_smoothing=smoothing), *case, scale=10.0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(pair=tst.same_shape_pair(target_low=0.0, target_high=1.0, extreme_slices=True))
def test_bce_with_logits_is_stable_when_some_slices_are_extreme(reduction, pair):
    assert_parity(both("binary_cross_entropy_with_logits", reduction=reduction), *pair, scale=10.0)


def test_cross_entropy_custom_ignore_index_and_all_ignored():
    logits = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]], dtype=np.float32)
    assert_parity(both("cross_entropy", ignore_index=2), logits, np.array([2, 0]))
    assert_parity(both("cross_entropy", ignore_index=0), logits, np.array([1, 2]))
    out = L.cross_entropy(Tensor(logits), np.array([-100, -100]))
    assert np.isnan(out.item()), "mean over zero counted targets is nan, as in PyTorch"


def test_cross_entropy_accepts_array_and_list_targets():
    logits = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]], dtype=np.float32)
    expected = F.cross_entropy(torch.from_numpy(logits), torch.tensor([1, 2]))
    assert_same(L.cross_entropy(Tensor(logits), [1, 2]), expected)
    assert_same(L.cross_entropy(Tensor(logits), np.array([1, 2], dtype=np.int32)), expected)
    assert_same(L.cross_entropy(logits, Tensor(np.array([1, 2]))), expected)


# -- classes -------------------------------------------------------------------------------------------------

CLASSES = {
    "MSELoss": (lambda r: L.MSELoss(reduction=r), lambda r: torch.nn.MSELoss(reduction=r), "real"),
    "BCELoss": (lambda r: L.BCELoss(reduction=r), lambda r: torch.nn.BCELoss(reduction=r), "probability"),
    "BCEWithLogitsLoss": (lambda r: L.BCEWithLogitsLoss(reduction=r),
                          lambda r: torch.nn.BCEWithLogitsLoss(reduction=r), "probability"),
    "CrossEntropyLoss": (lambda r: L.CrossEntropyLoss(reduction=r, label_smoothing=0.1),
                         lambda r: torch.nn.CrossEntropyLoss(reduction=r, label_smoothing=0.1), "class"),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", CLASSES)
def test_loss_classes_match_torch_modules(name, reduction):
    ours_factory, theirs_factory, target_kind = CLASSES[name]
    ours, theirs = ours_factory(reduction), theirs_factory(reduction)
    rng = np.random.default_rng(3)
    x = rng.uniform(0.05, 0.95, size=(4, 3)).astype(np.float32)
    if target_kind == "class":
        t = np.array([0, 2, 1, 2])
    else:
        t = rng.uniform(0, 1, size=(4, 3)).astype(np.float32)
    expected = theirs(torch.from_numpy(x), torch.from_numpy(t))
    assert_same(ours(Tensor(x), Tensor(t)), expected)
    assert_same(ours.forward(Tensor(x), Tensor(t)), expected)
    assert ours.reduction == reduction and repr(ours) == repr(theirs)


def test_cross_entropy_class_keeps_its_settings():
    loss = L.CrossEntropyLoss(ignore_index=1, label_smoothing=0.2)
    x = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]], dtype=np.float32)
    t = np.array([1, 0])
    assert (loss.ignore_index, loss.label_smoothing) == (1, 0.2)
    assert_same(loss(Tensor(x), t), F.cross_entropy(torch.from_numpy(x), torch.from_numpy(t), ignore_index=1,
                                                    label_smoothing=0.2))


# -- stability ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_stable(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [50.0, 100.0, -100.0]], dtype=dtype)
    labels = np.array([1, 0, 2])
    with learner_errstate(over="raise", invalid="raise", divide="raise"):
        ce = L.cross_entropy(Tensor(logits), labels, reduction="none")
        bce = L.binary_cross_entropy_with_logits(Tensor(logits), Tensor(np.ones_like(logits)), reduction="none")
    assert np.isfinite(ce.numpy()).all() and np.isfinite(bce.numpy()).all()
    assert_same(ce, F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), reduction="none"))
    assert_same(bce, F.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.ones(3, 3, dtype=bce_dtype(dtype)),
                                                        reduction="none"))


def bce_dtype(dtype):
    return torch.float32 if np.dtype(dtype) == np.float32 else torch.float64


def test_bce_clamps_log_at_minus_100():
    p = Tensor(np.array([0.0, 1.0, 0.0, 1.0], dtype=np.float32))
    t = Tensor(np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32))
    with learner_errstate(over="raise", invalid="raise", divide="raise"):
        out = L.binary_cross_entropy(p, t, reduction="none")
    np.testing.assert_array_equal(out.numpy(), [100.0, 100.0, 0.0, 0.0])


@given(pair=tst.same_shape_pair(low=-30.0, high=30.0, target_low=0.0, target_high=1.0))
def test_bce_with_logits_equals_bce_of_sigmoid_where_sigmoid_is_precise(pair):
    x, t = (a.astype(np.float64) for a in pair)
    p = 1 / (1 + np.exp(-np.clip(x, -15, 15)))
    with_logits = L.binary_cross_entropy_with_logits(Tensor(np.clip(x, -15, 15)), Tensor(t), reduction="none")
    plain = L.binary_cross_entropy(Tensor(p), Tensor(t), reduction="none")
    np.testing.assert_allclose(with_logits.numpy(), plain.numpy(), rtol=1e-9, atol=1e-12)


# -- errors that name the problem ---------------------------------------------------------------------------------

FUNCTIONS = ["mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"]


@pytest.mark.parametrize("name", FUNCTIONS + ["cross_entropy"])
def test_bad_reduction_is_a_value_error_naming_it(name):
    x = Tensor(np.full((2, 3), 0.5, dtype=np.float32))
    t = np.array([0, 1]) if name == "cross_entropy" else Tensor(np.full((2, 3), 0.5, dtype=np.float32))
    assert getattr(L, name)(x, t, reduction="sum").shape == ()
    with pytest.raises(ValueError, match="'avg'"):
        getattr(L, name)(x, t, reduction="avg")


@pytest.mark.parametrize("cls", ["MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss"])
def test_loss_classes_validate_reduction(cls):
    x = Tensor(np.full((2, 3), 0.5, dtype=np.float32))
    t = np.array([0, 1]) if cls == "CrossEntropyLoss" else Tensor(np.full((2, 3), 0.5, dtype=np.float32))
    assert getattr(L, cls)(reduction="none")(x, t).shape in {(2,), (2, 3)}
    with pytest.raises(ValueError, match="'elementwise'"):
        getattr(L, cls)(reduction="elementwise")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_shape_mismatch_names_both_shapes(name):
    x = Tensor(np.full((2, 3), 0.5, dtype=np.float32))
    assert getattr(L, name)(x, Tensor(np.full((2, 3), 0.5, dtype=np.float32))).shape == ()
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)|\(2, 3\).*\(3, 2\)"):
        getattr(L, name)(x, Tensor(np.full((3, 2), 0.5, dtype=np.float32)))


def test_bce_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        L.binary_cross_entropy(Tensor([0.5, 1.5]), Tensor([0.0, 1.0]))


@pytest.mark.parametrize(
    "shape, target, error, pattern",
    [((2, 3), np.array([0, 3]), IndexError, r"\b3\b.*3 classes"),
     ((2, 3), np.array([-1, 0]), IndexError, r"-1"),
     ((4, 3), np.array([0, 1, 2, -2]), IndexError, r"-2"),  # the bad value last: every entry is checked
     ((2, 3, 2), np.array([[0, 1], [2, 7]]), IndexError, r"\b7\b.*3 classes"),
     ((3,), np.array(5), IndexError, r"\b5\b"),
     ((2, 3), np.array([0, 1, 2]), ValueError, r"\(3,\).*\(2, 3\)"),
     ((2, 3, 4), np.array([[0, 1, 2, 0]]), ValueError, r"\(1, 4\).*\(2, 3, 4\).*\(2, 4\)"),
     ((2, 3), np.array([0.0, 1.0]), TypeError, r"float64"),
     ((), np.array(0), ValueError, r"class dimension")],
)
def test_cross_entropy_errors_name_the_values_and_shapes(shape, target, error, pattern):
    logits = Tensor(np.zeros(shape, dtype=np.float32))
    with pytest.raises(error, match=pattern):
        L.cross_entropy(logits, Tensor(target))


def test_cross_entropy_rejects_bad_label_smoothing():
    logits = Tensor(np.zeros((2, 3), dtype=np.float32))
    np.testing.assert_allclose(L.cross_entropy(logits, np.array([0, 1]), label_smoothing=1.0).item(), np.log(3),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="1.5"):
        L.cross_entropy(logits, np.array([0, 1]), label_smoothing=1.5)


# -- the graph record (what module 05 builds on) -----------------------------------------------------------------------

RECORDS = [
    ("mse_loss", lambda x, t: L.mse_loss(x, t, reduction="sum"), {"reduction": "sum"}),
    ("binary_cross_entropy", lambda x, t: L.binary_cross_entropy(x, t), {"reduction": "mean"}),
    ("binary_cross_entropy_with_logits", lambda x, t: L.binary_cross_entropy_with_logits(x, t, reduction="none"),
     {"reduction": "none"}),
]


@pytest.mark.parametrize("op, fn, saved", RECORDS, ids=[r[0] for r in RECORDS])
def test_each_loss_records_its_own_op(op, fn, saved):
    x = Tensor(np.full((2, 3), 0.25, dtype=np.float32), requires_grad=True)
    t = Tensor(np.full((2, 3), 0.5, dtype=np.float32))
    out = fn(x, t)
    assert out.grad_fn is not None and out.grad_fn.op == op
    assert out.grad_fn.saved == saved
    assert out.grad_fn.inputs[0] is x and out.grad_fn.inputs[1] is t
    assert out.dtype == np.float32


def test_cross_entropy_records_its_own_op():
    x = Tensor(np.zeros((2, 3), dtype=np.float64), requires_grad=True)
    out = L.cross_entropy(x, np.array([0, 2]), label_smoothing=0.1)
    assert out.grad_fn.op == "cross_entropy" and out.grad_fn.inputs[0] is x
    assert out.grad_fn.inputs[1].numpy().tolist() == [0, 2]
    assert out.grad_fn.saved == {"ignore_index": -100, "reduction": "mean", "label_smoothing": 0.1}
    assert out.dtype == np.float64 and out.requires_grad
