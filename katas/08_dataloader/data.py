# KATA: replace every `raise NotImplementedError` below with your implementation.
# Generated from reference/08_dataloader/data.py by `kata stubs`; your edits are never overwritten.
"""Module 08 - DataLoader: feeding a model fast enough that it never waits.

A training loop wants an endless stream of *batches*: B samples stacked into one
array, in a fresh random order every epoch, with augmentation applied. This
module provides the three pieces PyTorch uses for that, with the same names:

* ``Dataset`` - anything with ``__len__`` and ``__getitem__(i)`` returning one sample.
* ``TensorDataset(*arrays)`` - in-memory arrays that share their first dimension.
  ``dataset[i]`` is one sample; ``dataset[index_array]`` is a whole batch, gathered
  with one vectorised fancy-index per array: the DataLoader's fast path.
* ``DataLoader(dataset, batch_size, shuffle, drop_last, collate_fn, generator)`` -
  iterates over batches of Tensors.
* Transforms (``Compose``, ``ToTensor``, ``Normalize``, ``RandomHorizontalFlip``,
  ``RandomCrop``): work on one image *or* a whole batch of images at once.

Shuffling is reproducible: epoch k visits the dataset in the order
``generator.permutation(len(dataset))`` drawn for the k-th time from a numpy
``Generator`` (``generator=`` an int seed or a ``np.random.Generator``), so two
loaders with the same seed produce the same epochs, and each epoch differs.

Image layouts: channels-first ``(C, H, W)`` for one image and ``(N, C, H, W)`` for a
batch (PyTorch's NCHW), unless a transform is told ``channels_last=True``
(``(H, W, C)`` / ``(N, H, W, C)``, NHWC: how image files and CIFAR-10 store pixels).
Any dimensions before the image's three are batch dimensions.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from tinytorch.tensor import Tensor

ArrayLike = Any  # np.ndarray or Tensor


def _as_rng(generator: np.random.Generator | int | None) -> np.random.Generator:
    """An int seed or None becomes a fresh np.random.Generator; a Generator is used as is."""
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is not None and (isinstance(generator, bool) or not isinstance(generator, (int, np.integer))):
        raise TypeError(f"generator must be None, an int seed or a np.random.Generator, got {type(generator).__name__}")
    return np.random.default_rng(generator)


def _unwrap(x: ArrayLike) -> tuple[np.ndarray, bool]:
    """(the numpy array behind x, whether x was a Tensor)."""
    if isinstance(x, Tensor):
        return x.data, True
    return np.asarray(x), False


def _rewrap(array: np.ndarray, was_tensor: bool) -> ArrayLike:
    return Tensor(array, dtype=array.dtype) if was_tensor else array


# ----------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------


class Dataset:
    """A collection of samples: subclasses implement __len__ and __getitem__(index).

    __getitem__(i) returns one sample: an array, a number, or a tuple/dict of them.
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index)")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__()")


class TensorDataset(Dataset):
    """Samples are the rows of arrays (numpy arrays or Tensors) that share their first dimension.

    dataset[i]             -> a tuple with one row (np.ndarray or numpy scalar) of each array.
    dataset[index_array]   -> a tuple with one batch array per array: rows gathered in that
                              order with a single fancy-index each (no Python loop per sample).
    transform: optional callable applied to the rows of the first array (the inputs), one
               sample or a whole batch at a time; the transforms below accept both.
    Raises ValueError when no array is given, an array is 0-d, or first dimensions differ
    (the message lists every array's shape).
    """

    def __init__(self, *arrays: ArrayLike, transform: Callable[[Any], Any] | None = None):
        # TODO: Unwrap Tensors to their .data (np.asarray for anything else); keep them in self.arrays.
        # TODO: ValueError if there are no arrays, an array has no first dimension, or the
        #       first dimensions disagree: name every shape so the mistake is obvious.
        # TODO: Keep `transform` in self.transform.
        raise NotImplementedError('TensorDataset.__init__: your turn - see the TODOs above')

    def __len__(self) -> int:
        """The number of samples: the common first dimension."""
        raise NotImplementedError('TensorDataset.__len__: your turn - see the TODOs above')

    def __getitem__(self, index: int | np.ndarray) -> tuple[Any, ...]:
        """One sample (int index) or one batch (1-D integer index array), as a tuple of arrays."""
        # TODO: Index every array with `index` (numpy does ints and index arrays alike),
        #       apply self.transform to the first result if there is one, return a tuple.
        raise NotImplementedError('TensorDataset.__getitem__: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Collation and the loader
# ----------------------------------------------------------------------------


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, field by field, like torch's default_collate.

    Tensors and numpy arrays stack along a new first axis (dtype kept); numpy scalars
    keep their dtype; Python ints become int64, Python floats float32 (tinytorch's
    default, where PyTorch would pick float64) and bools bool. Tuples and lists of
    fields give a tuple of batches, dicts a dict. Returns Tensors.
    Raises TypeError for anything else (the message names the type) and ValueError for an
    empty list.
    """
    # TODO: Look at the first sample: tuple/list -> collate each field (zip(*samples)) into
    #       a tuple; dict -> collate each key; Tensor/ndarray/number -> np.stack into a Tensor.
    raise NotImplementedError('default_collate: your turn - see the TODOs above')


class DataLoader:
    """Iterate over a dataset in batches of Tensors.

    batch_size: samples per batch (a positive int). The last batch may be smaller,
                unless drop_last=True, which skips it.
    shuffle:    visit the samples in a new random order every epoch: epoch k uses the
                k-th `generator.permutation(len(dataset))`; otherwise in order 0..n-1.
    collate_fn: turns a list of samples into a batch (default: default_collate).
    generator:  an int seed or a np.random.Generator for the shuffle (None: unseeded).

    Fast path: when `dataset` is a TensorDataset and no collate_fn is given, each batch is
    `dataset[index_array]` - one fancy-index per array - wrapped as a tuple of Tensors.
    Otherwise each sample is fetched with dataset[int(i)] and collated.
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn: Callable[[list[Any]], Any] | None = None,
                 generator: np.random.Generator | int | None = None):
        # TODO: batch_size must be a positive int (bools are not ints here): ValueError naming it.
        # TODO: Store the arguments; turn `generator` into a np.random.Generator (see _as_rng).
        raise NotImplementedError('DataLoader.__init__: your turn - see the TODOs above')

    def __len__(self) -> int:
        """Batches per epoch: floor(n / batch_size) with drop_last, else ceil(n / batch_size)."""
        raise NotImplementedError('DataLoader.__len__: your turn - see the TODOs above')

    def indices(self) -> np.ndarray:
        """The sample order for the next epoch (draws a permutation when shuffling)."""
        raise NotImplementedError('DataLoader.indices: your turn - see the TODOs above')

    def __iter__(self) -> Iterator[Any]:
        """Yield len(self) batches: tuples of Tensors for tuple samples."""
        # TODO: order = self.indices(); walk it in slices of batch_size (len(self) of them).
        # TODO: Fast path (TensorDataset, no collate_fn): one dataset[index_array] call per
        #       batch; wrap each array as a Tensor. Else collate [dataset[int(i)] for i in slice].
        raise NotImplementedError('DataLoader.__iter__: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Transforms: one image or a batch of images
# ----------------------------------------------------------------------------


class Compose:
    """Apply transforms in order: Compose([ToTensor(), Normalize(...)])(x)."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]):
        self.transforms = list(transforms)

    def __call__(self, x: Any) -> Any:
        raise NotImplementedError('Compose.__call__: your turn - see the TODOs above')

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class ToTensor:
    """Images as stored (uint8, 0..255) -> float32 Tensor in [0, 1], channels first.

    input_layout: "HWC" (default; image files, CIFAR-10), "HW" (grayscale, e.g. MNIST:
                  a channel axis of size 1 is inserted) or "CHW" (already channels first).
    Leading dimensions are batch dimensions: (N, H, W, C) -> (N, C, H, W), (N, H, W) with
    "HW" -> (N, 1, H, W). uint8 is divided by 255; other dtypes are only cast to float32.
    Raises ValueError for an unknown layout or too few dimensions.
    """

    LAYOUTS = {"HWC": 3, "HW": 2, "CHW": 3}

    def __init__(self, input_layout: str = "HWC"):
        raise NotImplementedError('ToTensor.__init__: your turn - see the TODOs above')

    def __call__(self, image: ArrayLike) -> Tensor:
        # TODO: Check there are enough dimensions for the layout; scale uint8 by 1/255 into
        #       float32 (astype otherwise); move/insert the channel axis at position -3.
        raise NotImplementedError('ToTensor.__call__: your turn - see the TODOs above')


def _channels_first(array: np.ndarray, channels_last: bool, name: str) -> np.ndarray:
    """A (..., C, H, W) view of an image or batch given in either layout (checks ndim >= 3)."""
    if array.ndim < 3:
        layout = "(H, W, C)" if channels_last else "(C, H, W)"
        raise ValueError(f"{name}: expected an image {layout} or a batch of them, got shape {array.shape}")
    return np.moveaxis(array, -1, -3) if channels_last else array


def _restore(array: np.ndarray, channels_last: bool) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(array, -3, -1)) if channels_last else array


class Normalize:
    """(x - mean[c]) / std[c] for every channel c: zero mean, unit variance inputs.

    mean, std: one number per channel (or a single number for all channels); std > 0.
    channels_last: False for (C, H, W) / (N, C, H, W), True for (H, W, C) / (N, H, W, C).
    Float inputs keep their dtype (float32 stays float32); other dtypes become float32.
    Raises ValueError if std has a non-positive entry or the channel counts disagree.
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float], channels_last: bool = False):
        raise NotImplementedError('Normalize.__init__: your turn - see the TODOs above')

    def __call__(self, x: ArrayLike) -> ArrayLike:
        # TODO: View the input channels first; check len(mean) is 1 or the channel count;
        #       reshape mean and std to (C, 1, 1) so they broadcast; restore the layout.
        raise NotImplementedError('Normalize.__call__: your turn - see the TODOs above')


class RandomHorizontalFlip:
    """Mirror each image left-right with probability p, independently per image in a batch.

    Works on (C, H, W) or (N, C, H, W) (channels_last: (H, W, C) / (N, H, W, C)).
    generator: an int seed or np.random.Generator; one uniform draw per image decides.
    """

    def __init__(self, p: float = 0.5, channels_last: bool = False,
                 generator: np.random.Generator | int | None = None):
        raise NotImplementedError('RandomHorizontalFlip.__init__: your turn - see the TODOs above')

    def __call__(self, x: ArrayLike) -> ArrayLike:
        # TODO: One draw per image (shape: the batch dimensions, () for one image);
        #       np.where(flip[..., None, None, None], view[..., ::-1], view). No Python loop.
        raise NotImplementedError('RandomHorizontalFlip.__call__: your turn - see the TODOs above')


class RandomCrop:
    """Zero-pad every side by `padding`, then cut a random size x size window per image.

    size: int (square) or (height, width); must fit inside the padded image (ValueError).
    Works on one image or a batch (layouts as in RandomHorizontalFlip); every image in a
    batch gets its own offset, uniform over all valid positions.
    """

    def __init__(self, size: int | tuple[int, int], padding: int = 0, channels_last: bool = False,
                 generator: np.random.Generator | int | None = None):
        raise NotImplementedError('RandomCrop.__init__: your turn - see the TODOs above')

    def __call__(self, x: ArrayLike) -> ArrayLike:
        # TODO: Reshape to (N, C, H, W) (N = product of batch dims), np.pad H and W,
        #       draw a top and left offset per image, gather all windows at once
        #       (np.lib.stride_tricks.sliding_window_view + fancy indexing), reshape back.
        raise NotImplementedError('RandomCrop.__call__: your turn - see the TODOs above')
