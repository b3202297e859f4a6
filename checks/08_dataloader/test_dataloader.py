"""Checks for module 08: DataLoader.

Properties first (Hypothesis draws dataset sizes, batch sizes, drop_last and seeds):
every sample exactly once per epoch, batch shapes, len(), a stable order under a seed
and a different one across seeds and epochs. Then parity with
torch.utils.data.DataLoader fed the *same* index order (a sampler holding our
permutation), so batch contents, shapes and dtypes must agree exactly. Transforms are
compared with the equivalent PyTorch tensor computations, one image and whole batches.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.utils import data as tdata

from checks.harness.learner_side import learner_side
from checks.harness.parity import assert_same
from tinytorch.data import (
    Compose,
    DataLoader,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    TensorDataset,
    ToTensor,
    default_collate,
)
from tinytorch.tensor import Tensor

sizes = st.integers(0, 60)
batch_sizes = st.integers(1, 16)
seeds = st.integers(0, 2**32 - 1)


def _dataset(n: int, features: int = 3) -> TensorDataset:
    x = np.arange(n * features, dtype=np.float32).reshape(n, features)
    return TensorDataset(x, np.arange(n, dtype=np.int64))


def _epoch_ids(loader: DataLoader) -> list[int]:
    return [int(i) for _, ids in loader for i in ids.numpy()]


helpers = learner_side(__file__)
ListDataset = helpers.ListDataset  # a user-defined Dataset (checks/08_dataloader/learner_side.py)


class TorchListDataset(tdata.Dataset):
    """The same plain dataset for PyTorch's DataLoader."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return self.samples[index]


# -- TensorDataset ------------------------------------------------------------------


def test_tensor_dataset_indexes_rows_of_every_array():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = Tensor(np.array([3, 1, 4, 1]))
    ds = TensorDataset(x, y)
    assert len(ds) == 4
    sample = ds[2]
    assert isinstance(sample, tuple) and len(sample) == 2
    np.testing.assert_array_equal(sample[0], x[2])
    assert int(sample[1]) == 4
    batch = ds[np.array([3, 0])]
    np.testing.assert_array_equal(batch[0], x[[3, 0]])
    np.testing.assert_array_equal(batch[1], [1, 3])


@pytest.mark.parametrize(
    "arrays, fragment",
    [((), "at least one"), ((np.zeros(3), np.zeros(4)), r"\(3,\).*\(4,\)"), ((np.zeros((2, 2)), np.float32(1.0)), r"\(\)"),
     ((np.zeros(3), np.zeros((3, 2)), np.zeros(4)), r"\(4,\)"), ((np.zeros(3), np.zeros(3), np.int64(2)), r"\(\)")],
    ids=["none", "different-lengths", "scalar", "third-length-differs", "third-is-scalar"],
)
def test_tensor_dataset_rejects_bad_arrays_clearly(arrays, fragment):
    with pytest.raises(ValueError, match=fragment):
        TensorDataset(*arrays)


def test_tensor_dataset_applies_its_transform_to_the_inputs_only():
    x = np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2)
    ds = TensorDataset(x, np.array([0, 1]), transform=helpers.times_ten)
    np.testing.assert_array_equal(ds[1][0], x[1] * 10)
    np.testing.assert_array_equal(ds[np.array([1, 0])][0], x[[1, 0]] * 10)
    assert int(ds[1][1]) == 1


# -- DataLoader properties ------------------------------------------------------------


@given(n=sizes, batch_size=batch_sizes, drop_last=st.booleans(), shuffle=st.booleans(), seed=seeds)
def test_len_and_batch_shapes(n, batch_size, drop_last, shuffle, seed):
    loader = DataLoader(_dataset(n), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=seed)
    expected_len = n // batch_size if drop_last else math.ceil(n / batch_size)
    assert len(loader) == expected_len
    batches = list(loader)
    assert len(batches) == expected_len, "iterating must yield exactly len(loader) batches"
    for position, (x, y) in enumerate(batches):
        assert isinstance(x, Tensor) and isinstance(y, Tensor)
        last = position == len(batches) - 1
        expected = batch_size if not last or drop_last or n % batch_size == 0 else n % batch_size
        assert x.shape == (expected, 3) and y.shape == (expected,)
        assert x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(x.numpy()[:, 0], 3 * y.numpy(), err_msg="inputs and labels must stay paired")


@given(n=sizes, batch_size=batch_sizes, seed=seeds)
def test_every_sample_exactly_once_per_epoch(n, batch_size, seed):
    loader = DataLoader(_dataset(n), batch_size=batch_size, shuffle=True, generator=seed)
    for _epoch in range(2):
        assert sorted(_epoch_ids(loader)) == list(range(n))


@given(n=sizes, batch_size=batch_sizes, seed=seeds)
def test_drop_last_drops_only_the_incomplete_tail(n, batch_size, seed):
    loader = DataLoader(_dataset(n), batch_size=batch_size, shuffle=True, drop_last=True, generator=seed)
    ids = _epoch_ids(loader)
    assert len(ids) == (n // batch_size) * batch_size
    assert len(set(ids)) == len(ids)


@given(n=st.integers(0, 40), batch_size=batch_sizes)
def test_without_shuffle_the_order_is_the_dataset_order(n, batch_size):
    assert _epoch_ids(DataLoader(_dataset(n), batch_size=batch_size)) == list(range(n))


@given(n=st.integers(10, 60), batch_size=batch_sizes, seed=seeds)
def test_shuffle_is_stable_under_a_seed_and_differs_across_seeds_and_epochs(n, batch_size, seed):
    def epochs(s):
        loader = DataLoader(_dataset(n), batch_size=batch_size, shuffle=True, generator=s)
        return _epoch_ids(loader), _epoch_ids(loader)

    first, second = epochs(seed)
    assert epochs(seed) == (first, second), "the same seed must give the same sequence of epochs"
    # With n >= 10 two independent permutations coincide with probability <= 1/10! (< 3e-7).
    assert first != second, "each epoch must draw a new order"
    assert epochs(seed + 1)[0] != first, "different seeds must give different orders"
    assert first != list(range(n)), "shuffle=True must shuffle"


def test_epoch_order_is_the_documented_permutation_and_a_generator_is_accepted():
    rng = np.random.default_rng(7)
    loader = DataLoader(_dataset(20), batch_size=6, shuffle=True, generator=np.random.default_rng(7))
    for _ in range(3):
        assert _epoch_ids(loader) == rng.permutation(20).tolist()


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None])
def test_batch_size_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(4), batch_size=bad)


def test_generator_must_be_a_seed_or_a_generator():
    with pytest.raises(TypeError, match="generator"):
        DataLoader(_dataset(4), shuffle=True, generator="42")


def test_unseeded_shuffle_still_visits_everything():
    loader = DataLoader(_dataset(25), batch_size=4, shuffle=True)
    assert sorted(_epoch_ids(loader)) == list(range(25))


def test_tensor_dataset_takes_the_vectorised_fast_path():
    x = np.random.default_rng(0).random((1000, 5)).astype(np.float32)
    dataset = helpers.Counting(x, np.arange(1000))
    loader = DataLoader(dataset, batch_size=64, shuffle=True, generator=3)
    batches = list(loader)
    calls = dataset.calls
    assert len(calls) == len(batches) == 16, (
        f"expected one dataset[index_array] call per batch (16), got {len(calls)} calls:"
        " gather a TensorDataset batch with one fancy-index per array, not one sample at a time"
    )
    assert all(isinstance(c, np.ndarray) and c.ndim == 1 for c in calls)
    order = np.concatenate(calls)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), x[order])


def test_fast_path_output_is_a_tuple_of_tensors_even_for_one_array():
    (batch,) = list(DataLoader(TensorDataset(np.arange(3, dtype=np.int64)), batch_size=3))
    assert isinstance(batch, tuple) and len(batch) == 1 and isinstance(batch[0], Tensor)
    assert batch[0].numpy().tolist() == [0, 1, 2]


# -- parity with torch.utils.data ----------------------------------------------------


def _torch_loader(dataset, order, batch_size, drop_last, collate_fn=None):
    kwargs = {} if collate_fn is None else {"collate_fn": collate_fn}
    return tdata.DataLoader(dataset, batch_size=batch_size, sampler=[int(i) for i in order], drop_last=drop_last,
                            **kwargs)


def _assert_batches_equal(ours, theirs):
    ours, theirs = list(ours), list(theirs)
    assert len(ours) == len(theirs), f"{len(ours)} batches, PyTorch gives {len(theirs)}"
    for b, (got, expected) in enumerate(zip(ours, theirs)):
        if isinstance(expected, dict):
            assert isinstance(got, dict) and set(got) == set(expected)
            for key in expected:
                assert_same(got[key], expected[key], f"batch {b}, field {key!r}")
            continue
        assert isinstance(got, tuple) and len(got) == len(expected), f"batch {b}: {len(expected)} fields expected"
        for field, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, f"batch {b}, field {field}")


@given(n=sizes, batch_size=batch_sizes, drop_last=st.booleans(), seed=seeds,
       dtype=st.sampled_from([np.float32, np.float64, np.uint8]))
def test_tensor_dataset_batches_match_torch_given_the_same_order(n, batch_size, drop_last, seed, dtype):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 2, 3)) * 200).astype(dtype)
    y = rng.integers(0, 10, size=n)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, drop_last=drop_last,
                        generator=seed)
    order = np.random.default_rng(seed).permutation(n)  # the documented order of epoch 1
    expected = _torch_loader(tdata.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), order, batch_size,
                             drop_last)
    _assert_batches_equal(loader, expected)


@given(n=st.integers(1, 30), batch_size=batch_sizes, drop_last=st.booleans(), seed=seeds)
def test_custom_dataset_collation_matches_torch(n, batch_size, drop_last, seed):
    rng = np.random.default_rng(seed)
    samples = [(rng.random((2, 2)).astype(np.float32), int(rng.integers(0, 5)), np.float64(rng.random()))
               for _ in range(n)]
    ours = ListDataset(samples)
    loader = DataLoader(ours, batch_size=batch_size, shuffle=True, drop_last=drop_last, generator=seed)
    order = np.random.default_rng(seed).permutation(n)
    _assert_batches_equal(loader, _torch_loader(TorchListDataset(samples), order, batch_size, drop_last))
    expected_calls = (n // batch_size) * batch_size if drop_last else n
    assert ours.calls == expected_calls, "a plain Dataset is read one sample at a time, each sample once"


def test_dict_samples_collate_like_torch():
    samples = [{"image": np.full((2,), i, dtype=np.float32), "label": i} for i in range(5)]
    loader = DataLoader(ListDataset(samples), batch_size=2)
    _assert_batches_equal(loader, _torch_loader(TorchListDataset(samples), range(5), 2, False))


def test_default_collate_dtypes_and_errors():
    floats = default_collate([1.5, 2.5])
    assert floats.dtype == np.float32, "Python floats follow tinytorch's float32 default"
    assert default_collate([True, False]).dtype == np.bool_
    assert default_collate([Tensor([1.0, 2.0]), Tensor([3.0, 4.0])]).shape == (2, 2)
    with pytest.raises(TypeError, match="str"):
        default_collate(["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        default_collate([])


def test_custom_collate_fn_receives_lists_of_samples():
    collate = helpers.LengthCollate()
    loader = DataLoader(_dataset(7), batch_size=3, collate_fn=collate)
    assert list(loader) == [3, 3, 1] and collate.seen == [3, 3, 1]


# -- transforms ---------------------------------------------------------------------

images_u8 = st.integers(0, 2**32 - 1).map(
    lambda s: np.random.default_rng(s).integers(0, 256, size=(3, 5, 6, 3), dtype=np.uint8))


@given(images_u8, st.booleans())
def test_to_tensor_scales_uint8_and_moves_channels_first_like_torch(batch, single):
    x = batch[0] if single else batch
    got = ToTensor()(x)
    t = torch.from_numpy(x)
    expected = (t.permute(2, 0, 1) if single else t.permute(0, 3, 1, 2)).float().div(255)
    assert isinstance(got, Tensor)
    assert_same(got, expected, "ToTensor (HWC)")
    assert got.numpy().min() >= 0.0 and got.numpy().max() <= 1.0


def test_to_tensor_grayscale_chw_and_float_inputs():
    gray = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    assert_same(ToTensor("HW")(gray), torch.from_numpy(gray).float().div(255).unsqueeze(1), "ToTensor (HW batch)")
    assert ToTensor("HW")(gray[0]).shape == (1, 4, 4)
    chw = np.ones((3, 2, 2), dtype=np.float64) * 0.5
    out = ToTensor("CHW")(Tensor(chw))
    assert out.dtype == np.float32 and out.shape == (3, 2, 2) and np.all(out.numpy() == 0.5), "floats are not rescaled"
    with pytest.raises(ValueError, match="layout"):
        ToTensor("NCHW")
    with pytest.raises(ValueError, match="dimensions"):
        ToTensor("HWC")(np.zeros((4, 4), dtype=np.uint8))


@given(st.integers(0, 2**32 - 1), st.booleans(), st.booleans())
def test_normalize_per_channel_matches_torch(seed, single, channels_last):
    rng = np.random.default_rng(seed)
    x = rng.random((4, 3, 5, 6)).astype(np.float32)
    mean, std = rng.random(3).tolist(), (rng.random(3) + 0.1).tolist()
    t = torch.from_numpy(x)
    expected = (t - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    if single:
        x, expected = x[0], expected[0]
    if channels_last:
        x = np.moveaxis(x, -3, -1).copy()
        expected = torch.movedim(expected, -3, -1)
    got = Normalize(mean, std, channels_last=channels_last)(Tensor(x))
    assert isinstance(got, Tensor)
    assert_same(got, expected, "Normalize")


def test_normalize_dtypes_broadcast_and_errors():
    x = np.arange(2 * 2 * 2 * 2, dtype=np.uint8).reshape(2, 2, 2, 2)
    out = Normalize(1.0, 2.0)(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32, "arrays stay arrays; integers become float32"
    np.testing.assert_allclose(out, (x - 1.0) / 2.0)
    assert Normalize([0.5], [0.5])(np.ones((3, 2, 2))).dtype == np.float64, "float64 stays float64"
    with pytest.raises(ValueError, match="positive"):
        Normalize([0.0, 0.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="channel"):
        Normalize([0.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="channels"):
        Normalize([0.0, 0.0], [1.0, 1.0])(np.zeros((3, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        Normalize(0.0, 1.0)(np.zeros((2, 2), dtype=np.float32))


def _per_image(x: np.ndarray) -> np.ndarray:
    return x.reshape((-1,) + x.shape[-3:])


@given(st.integers(0, 2**32 - 1), st.floats(0.0, 1.0), st.booleans())
def test_horizontal_flip_either_keeps_or_mirrors_each_image(seed, p, channels_last):
    x = np.random.default_rng(seed).random((40, 2, 3, 4)).astype(np.float32)
    flip = RandomHorizontalFlip(p, channels_last=channels_last, generator=seed)
    source = np.moveaxis(x, 1, -1).copy() if channels_last else x
    got = flip(source)
    if channels_last:
        got = np.moveaxis(got, -1, 1)
    mirrored = torch.flip(torch.from_numpy(x), dims=[-1]).numpy()
    same = np.all(got == x, axis=(1, 2, 3))
    flipped = np.all(got == mirrored, axis=(1, 2, 3))
    assert np.all(same | flipped), "every image is either unchanged or mirrored left-right, as a whole"
    if p == 0.0:
        assert same.all()
    if p == 1.0:
        assert flipped.all()


def test_horizontal_flip_decides_per_image_reproducibly_and_handles_single_images():
    x = np.random.default_rng(0).random((400, 1, 2, 3)).astype(np.float32)
    a = RandomHorizontalFlip(0.3, generator=5)(Tensor(x))
    b = RandomHorizontalFlip(0.3, generator=5)(Tensor(x))
    assert isinstance(a, Tensor) and np.array_equal(a.numpy(), b.numpy()), "same seed, same flips"
    rate = np.mean(np.any(a.numpy() != x, axis=(1, 2, 3)))
    assert 0.2 < rate < 0.4, f"p=0.3 should flip about 30% of the images independently, flipped {rate:.0%}"
    one = RandomHorizontalFlip(1.0)(x[0])
    np.testing.assert_array_equal(one, x[0][..., ::-1])
    with pytest.raises(ValueError, match="p"):
        RandomHorizontalFlip(1.5)


@given(st.integers(0, 2**32 - 1), st.integers(0, 3), st.integers(1, 5), st.booleans())
def test_random_crop_takes_a_window_of_the_zero_padded_image(seed, padding, size, channels_last):
    x = np.random.default_rng(seed).random((6, 2, 5, 5)).astype(np.float32)
    crop = RandomCrop(size, padding=padding, channels_last=channels_last, generator=seed)
    got = crop(np.moveaxis(x, 1, -1).copy() if channels_last else x)
    if channels_last:
        got = np.moveaxis(got, -1, 1)
    assert got.shape == (6, 2, size, size)
    padded = F.pad(torch.from_numpy(x), (padding,) * 4).numpy()
    span = 5 + 2 * padding - size + 1
    for i in range(6):
        windows = [padded[i, :, r:r + size, c:c + size] for r in range(span) for c in range(span)]
        assert any(np.array_equal(got[i], w) for w in windows), f"image {i} is not a window of its padded self"


def test_random_crop_covers_every_offset_and_handles_single_images_and_rectangles():
    x = np.arange(3 * 3, dtype=np.float32).reshape(1, 3, 3)
    batch = np.broadcast_to(x, (300, 1, 3, 3))
    crops = RandomCrop(3, padding=1, generator=0)(Tensor(np.ascontiguousarray(batch)))
    assert isinstance(crops, Tensor) and crops.shape == (300, 1, 3, 3)
    distinct = {c.tobytes() for c in crops.numpy()}
    assert len(distinct) == 9, f"with padding 1 there are 9 offsets, each should occur; saw {len(distinct)}"
    np.testing.assert_array_equal(RandomCrop(3)(x), x, err_msg="a full-size crop without padding is the identity")
    rect = RandomCrop((2, 3), padding=0, generator=1)(np.zeros((2, 4, 5, 5)))
    assert rect.shape == (2, 4, 2, 3)
    with pytest.raises(ValueError, match="fit"):
        RandomCrop(8, padding=1)(x)
    with pytest.raises(ValueError, match="positive"):
        RandomCrop(0)


def test_compose_and_a_batch_pipeline_through_the_loader():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=10)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    pipeline = Compose([ToTensor(), Normalize(mean, std)])
    assert "Normalize" in repr(pipeline)
    loader = DataLoader(TensorDataset(images, labels, transform=pipeline), batch_size=4, shuffle=True, generator=2)
    order = np.random.default_rng(2).permutation(10)
    t = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    t = (t - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    expected = _torch_loader(tdata.TensorDataset(t, torch.from_numpy(labels)), order, 4, False)
    _assert_batches_equal(loader, expected)
    augment = Compose([RandomCrop(8, padding=2, generator=1), RandomHorizontalFlip(generator=1)])
    out = augment(pipeline(images))
    assert out.shape == (10, 3, 8, 8) and out.dtype == np.float32


def test_a_dataset_subclass_must_implement_len_and_getitem():
    with pytest.raises(NotImplementedError, match="must implement __len__"):
        len(DataLoader(helpers.Incomplete(), batch_size=2))
    with pytest.raises(NotImplementedError, match="must implement __getitem__"):
        next(iter(DataLoader(ListDataset([1, 2]), batch_size=2, collate_fn=helpers.collate_incomplete)))
