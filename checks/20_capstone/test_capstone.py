"""Checks for module 20: the capstone submission (train / load / predict).

These check the submission's CONTRACT, the part the measuring harness (grading/capstone.py) relies
on; accuracy, latency and size on the full MNIST task are measured by that harness, not here.

Data: the first 12,000 MNIST training images when the dataset is on this machine ($TINYTORCH_DATA or
the user cache; never downloaded here), else 12,000 synthetic seven-segment digits drawn with a
fixed seed (random slant, rotation, scale, stroke width, position, ink and speckle noise). train()
sees the first 10,000; the last 2,000 are held out (never the MNIST test set). Every
failure message says which data was used.

Checked: train returns a flat dict str -> numpy array (no float64, no object arrays, finite floats);
train is reproducible with its seed and leaves its inputs unchanged; the submission trained on the
10,000 images classifies the 2,000 held-out ones with accuracy >= ACCURACY_FLOOR; load leaves the state
unchanged and needs nothing but the state (a fresh copy of the module's globals, and under the
grader a fresh worker process that never ran train); load twice / predict twice give identical
logits; predict returns (B, 10) float32 finite logits for B = 1 ... 1000, leaves its input unchanged,
accepts a read-only strided view, and is batch-invariant (each row of a Hypothesis-drawn batch,
with repeats, equals that image predicted alone, within float32 tolerance).
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from checks.harness.learner_side import learner_side
from checks.harness.tolerances import for_dtype
from tinytorch import capstone

N_TRAIN, N_HELD_OUT = 10_000, 2_000
SEED = 0
# The reference submission reaches 0.932 (MNIST) and 0.979 (synthetic digits) on the held-out images
# after train() on the 10,000; a model that learned nothing scores ~0.10.
ACCURACY_FLOOR = 0.85
# Logits are sums of up to 784 float32 products through a few layers: a GEMM over a batch and a GEMV
# over one row round differently, by far less than this (tolerances.py's float32 pair, widened 10x).
RTOL, ATOL = for_dtype(np.float32, scale=10)


def _helpers():
    """The learner-side helpers, loaded afresh: after a worker restart the old proxy is gone."""
    return learner_side(__file__)


# -- data ---------------------------------------------------------------------------------------------

_SEGMENT_ENDS = {"a": ((9, 5), (19, 5)), "b": ((19, 5), (19, 14)), "c": ((19, 14), (19, 23)),
                 "d": ((9, 23), (19, 23)), "e": ((9, 14), (9, 23)), "f": ((9, 5), (9, 14)), "g": ((9, 14), (19, 14))}
_SEVEN_SEGMENT = ["abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg"]
_STROKE_WIDTHS = (1.2, 1.7, 2.3)


def _glyphs() -> np.ndarray:
    """(10, widths, 28, 28) float32: each digit's segments drawn with an anti-aliased stroke."""
    yy, xx = np.mgrid[0:28, 0:28]
    pixels = np.stack([xx, yy], -1).astype(np.float64)
    out = np.zeros((10, len(_STROKE_WIDTHS), 28, 28), dtype=np.float32)
    for digit, segments in enumerate(_SEVEN_SEGMENT):
        dist = np.full((28, 28), np.inf)
        for name in segments:
            a, b = (np.array(p, dtype=np.float64) for p in _SEGMENT_ENDS[name])
            t = np.clip((pixels - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
            dist = np.minimum(dist, np.linalg.norm(pixels - a - t[..., None] * (b - a), axis=-1))
        for k, width in enumerate(_STROKE_WIDTHS):
            out[digit, k] = np.clip(width - dist, 0, 1)
    return out


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n seven-segment digits (n, 1, 28, 28) float32 in [0, 1] and their labels (n,) int64: each glyph
    scaled (0.8-1.2 per axis), slanted, rotated (+-0.3 rad), moved (+-3 px), bilinearly resampled, with
    random ink and sparse noise. Deterministic in seed."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    glyphs = _glyphs()[labels, rng.integers(0, len(_STROKE_WIDTHS), n)]
    angle, shear = rng.uniform(-0.3, 0.3, n), rng.uniform(-0.3, 0.3, n)
    scale_x, scale_y = rng.uniform(0.8, 1.2, n), rng.uniform(0.8, 1.2, n)
    cos, sin = np.cos(angle), np.sin(angle)
    forward = np.empty((n, 2, 2))  # rotation @ shear @ scale, about the centre (14, 14)
    forward[:, 0, 0], forward[:, 0, 1] = cos * scale_x, (cos * shear - sin) * scale_y
    forward[:, 1, 0], forward[:, 1, 1] = sin * scale_x, (sin * shear + cos) * scale_y
    shift = rng.uniform(-3, 3, (n, 2))
    yy, xx = np.mgrid[0:28, 0:28]
    grid = np.stack([xx.ravel(), yy.ravel()], 0).astype(np.float64) - 14
    source = np.einsum("nij,njp->nip", np.linalg.inv(forward), grid[None] - shift[:, :, None]) + 14
    np.clip(source, -1, 28, out=source)  # outside the glyph: the zero border of the padded glyph
    x0, y0 = np.floor(source[:, 0]), np.floor(source[:, 1])
    fx, fy = (source[:, 0] - x0).astype(np.float32), (source[:, 1] - y0).astype(np.float32)
    padded = np.zeros((n, 30, 30), dtype=np.float32)
    padded[:, 1:29, 1:29] = glyphs
    flat = padded.reshape(-1)
    index = np.arange(n)[:, None] * 900 + (y0.astype(np.int64) + 1) * 30 + (x0.astype(np.int64) + 1)
    np.clip(index, 0, flat.size - 32, out=index)
    images = ((flat[index] * (1 - fx) + flat[index + 1] * fx) * (1 - fy)
              + (flat[index + 30] * (1 - fx) + flat[index + 31] * fx) * fy)
    images *= rng.uniform(0.7, 1.0, (n, 1)).astype(np.float32)
    images += rng.normal(0, 0.1, images.shape).astype(np.float32) * (rng.random(images.shape) < 0.05)
    return np.clip(images, 0, 1).reshape(n, 1, 28, 28).astype(np.float32), labels.astype(np.int64)


@functools.lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray, str]:
    """(images (12000, 1, 28, 28) float32 in [0, 1], labels (12000,) int64, which data this is)."""
    from tinytorch.datasets import DatasetError, load_mnist  # course code, loaded on the trusted side

    n = N_TRAIN + N_HELD_OUT
    try:
        mnist = load_mnist(download=False)
    except DatasetError:
        images, labels = synthetic_digits(n, seed=20)
        return images, labels, "synthetic seven-segment digits (MNIST not found on this machine)"
    images = (mnist.train_images[:n].astype(np.float32) / np.float32(255)).reshape(n, 1, 28, 28)
    return images, mnist.train_labels[:n].astype(np.int64), "MNIST training images"


def train_split() -> tuple[np.ndarray, np.ndarray]:
    images, labels, _ = digits()
    return images[:N_TRAIN].copy(), labels[:N_TRAIN].copy()


def held_out() -> tuple[np.ndarray, np.ndarray]:
    images, labels, _ = digits()
    return images[N_TRAIN:].copy(), labels[N_TRAIN:].copy()


def source() -> str:
    return digits()[2]


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    """What train() ships after training on the 10,000 training images with seed 0 (plain arrays here)."""
    images, labels = train_split()
    return capstone.train(images, labels, SEED)


def logits_of(model, images: np.ndarray) -> np.ndarray:
    return np.asarray(capstone.predict(model, images))


def _assert_logits(logits: np.ndarray, batch: int, what: str) -> None:
    assert isinstance(logits, np.ndarray), f"{what}: predict must return an array (or a Tensor), got {type(logits)}"
    assert logits.shape == (batch, 10), f"{what}: predict must return logits of shape ({batch}, 10), got {logits.shape}"
    assert logits.dtype == np.float32, f"{what}: logits must be float32, got {logits.dtype}"
    assert np.all(np.isfinite(logits)), f"{what}: {int(np.sum(~np.isfinite(logits)))} logits are NaN or infinite"


# -- train ----------------------------------------------------------------------------------------------


def test_train_returns_a_flat_dict_of_numpy_arrays(state):
    assert isinstance(state, dict), f"train must return a dict name -> numpy array, got {type(state).__name__}"
    assert state, "train returned an empty dict: everything the model needs must be in the state"
    for name, value in state.items():
        assert isinstance(name, str), f"state key {name!r}: keys must be strings, got {type(name).__name__}"
        assert isinstance(value, np.ndarray), (
            f"state[{name!r}] is a {type(value).__name__}: every value must be a numpy array (a flat dict: no"
            " nested dicts, lists or Tensors; use tensor.data)")
        assert value.dtype.kind in "biuf", (
            f"state[{name!r}] has dtype {value.dtype}: only bool, integer and float arrays can be shipped")
        if value.dtype.kind == "f":
            bad = int(np.sum(~np.isfinite(value)))
            assert bad == 0, f"state[{name!r}] holds {bad} NaN or infinite values (trained on {source()})"


def test_state_holds_no_float64_arrays(state):
    wide = {name: str(value.dtype) for name, value in state.items() if value.dtype == np.float64}
    assert not wide, (f"state arrays {wide} are float64: 8 bytes per number where float32 (or int8 + a scale)"
                      " does; the harness counts every byte of the state")


def test_train_is_reproducible_and_leaves_its_inputs_unchanged():
    images, labels = train_split()
    images, labels = images[:2000], labels[:2000]
    images_kept, labels_kept, first = _helpers().train_keeps_its_inputs(images, labels, 7)
    assert images_kept, "train modified the images it was given (work on a copy: x = (images - mean) / std)"
    assert labels_kept, "train modified the labels it was given"
    second = capstone.train(images, labels, 7)
    assert isinstance(first, dict) and isinstance(second, dict), "train must return a dict"
    assert sorted(first) == sorted(second), (
        f"train twice with seed 7 on the same 2,000 images returned different keys: {sorted(first)} vs"
        f" {sorted(second)}")
    for name in first:
        a, b = np.asarray(first[name]), np.asarray(second[name])
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), (
            f"train twice with seed 7 on the same 2,000 images ({source()}): state[{name!r}] differs"
            f" ({a.dtype}{a.shape} vs {b.dtype}{b.shape}); draw every random number from generators seeded"
            " by `seed` (manual_seed(seed), np.random.default_rng(seed))")


def test_training_reaches_the_accuracy_floor_on_held_out_images(state):
    images, labels = held_out()
    model = capstone.load(state)
    logits = logits_of(model, images)
    _assert_logits(logits, len(images), f"predict on the {len(images)} held-out images")
    accuracy = float(np.mean(logits.argmax(axis=1) == labels))
    assert accuracy >= ACCURACY_FLOOR, (
        f"after train() on {N_TRAIN:,} {source()}, accuracy on {N_HELD_OUT:,} held-out ones is {accuracy:.4f} <"
        f" {ACCURACY_FLOOR} (the reference reaches 0.93 on MNIST, 0.98 on the synthetic digits)")


# -- load -----------------------------------------------------------------------------------------------


def test_load_leaves_the_state_unchanged(state):
    changed = _helpers().load_keeps_the_state(state)
    assert not changed, (f"load changed the state arrays {changed}: the harness may load the same state again;"
                         " dequantize into new arrays")


def test_load_needs_nothing_but_the_state(state):
    """The harness calls load in a fresh worker process that receives only the state."""
    images = held_out()[0][:50]
    expected = logits_of(capstone.load(copy.deepcopy(state)), images)
    fresh_module = np.asarray(_helpers().predict_with_a_fresh_module(copy.deepcopy(state), images))
    _assert_logits(fresh_module, len(images), "load + predict of a fresh copy of the module")
    np.testing.assert_allclose(fresh_module, expected, rtol=RTOL, atol=ATOL, err_msg=(
        "a fresh copy of the module (globals that train() set are gone) loaded the state into a model whose"
        " logits differ: load must rebuild everything from the state alone"))
    from grading import remote

    worker = remote.active()
    if worker is not None:  # under the grader: end the learner's worker; the next call starts a fresh one
        worker.close()
        fresh_process = logits_of(capstone.load(copy.deepcopy(state)), images)
        np.testing.assert_allclose(fresh_process, expected, rtol=RTOL, atol=ATOL, err_msg=(
            "in a fresh worker process that never ran train(), load(state) gave a model whose logits differ"))


def test_load_twice_and_predict_twice_give_identical_logits(state):
    images = held_out()[0][:100]
    first_model, second_model = capstone.load(state), capstone.load(state)
    a = logits_of(first_model, images)
    b = logits_of(second_model, images)
    c = logits_of(first_model, images)
    _assert_logits(a, len(images), "predict on 100 held-out images")
    assert np.array_equal(a, b), (
        f"load(state) twice gave models whose logits differ by up to {float(np.max(np.abs(a - b))):.3g}: load must"
        " be deterministic (no random initialisation left in the model)")
    assert np.array_equal(a, c), (
        f"predict twice on the same images gave logits that differ by up to {float(np.max(np.abs(a - c))):.3g}:"
        " predict must not change the model (dropout left in training mode? a running statistic?)")


# -- predict ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 3, 64, 1000])
def test_predict_returns_float32_logits_of_shape_b_by_10(state, batch):
    model = capstone.load(state)
    images = held_out()[0][:batch]
    _assert_logits(logits_of(model, images), batch, f"predict on {batch} held-out images")
    for name, value in (("all-black", 0.0), ("all-white", 1.0)):
        extreme = np.full((batch, 1, 28, 28), value, dtype=np.float32)
        _assert_logits(logits_of(model, extreme), batch, f"predict on {batch} {name} images")


def test_predict_leaves_its_input_unchanged_and_takes_read_only_views(state):
    images = held_out()[0][:16]
    unchanged, first, second = _helpers().predict_keeps_its_input(state, images)
    assert unchanged, "predict modified the images it was given (normalise into a new array, never in place)"
    first, second = np.asarray(first), np.asarray(second)
    _assert_logits(second, len(images), "predict on a read-only, non-contiguous view of 16 images")
    np.testing.assert_allclose(second, first, rtol=RTOL, atol=ATOL, err_msg=(
        "predict on a read-only strided view of 16 images differs from predict on a contiguous copy of them"))


@given(data=st.data())
def test_predict_is_batch_invariant(state, data):
    """Row i of predict(batch) is predict(batch[i:i+1]): nothing is shared across the rows of a batch
    (no batch statistics, no per-batch input scaling). Batches are drawn with repeated images."""
    images = held_out()[0]
    rows = data.draw(st.lists(st.integers(0, len(images) - 1), min_size=2, max_size=48), label="rows")
    batch = images[rows]
    model = capstone.load(state)
    together = logits_of(model, batch)
    _assert_logits(together, len(rows), f"predict on a batch of {len(rows)}")
    alone = np.concatenate([logits_of(model, batch[i:i + 1]) for i in range(len(rows))])
    np.testing.assert_allclose(together, alone, rtol=RTOL, atol=ATOL, err_msg=(
        f"logits of a batch of {len(rows)} held-out images (rows {rows}) differ from the same images predicted"
        " one at a time"))
