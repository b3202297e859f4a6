# KATA: replace every `raise NotImplementedError` below with your implementation.
# Generated from reference/20_capstone/capstone.py by `kata stubs`; your edits are never overwritten.
"""Module 20 - Capstone: a TinyMLPerf submission, measured on accuracy, latency and size.

You hand the harness three functions and nothing else is trusted: it measures.

    train(images, labels, seed) -> state     build, train and optimise a model on MNIST training
                                             data; return what you ship: a flat dict name -> array
    load(state) -> model                     rebuild the model from `state` alone, in a FRESH process
    predict(model, images) -> logits         (B, 1, 28, 28) float32 in [0, 1] -> (B, 10) float32

The harness trains a baseline in the same run (784-256-128-10 ReLU MLP, float32, Adam lr 1e-3,
batch 128, one epoch, seed 0) and reports your accuracy on the 10,000 test digits, your p50/p90
latency for one image, your throughput and your size (sum of the state's `nbytes`) as ratios to
the baseline's. CLOSED division: accuracy within 1 point of the baseline; the points go to a
closed submission with size_ratio <= 0.5 or latency_ratio <= 0.8.

A plan that places in the closed division (the course's reference submission follows it; the
functions below are its steps, and you may follow it or replace any of it). It uses modules 03-06
(layers, losses, autograd, Adam), 16 (int8 quantization) and 17 (structured pruning):

1. Train the baseline's architecture, 784-256-128-10, longer than the baseline does (DENSE_EPOCHS),
   on normalised pixels, with a cosine learning rate.
2. Structured pruning while fine-tuning (PRUNE_EPOCHS): Zhu & Gupta's gradual schedule removes
   whole hidden units (rows of fc1 and fc2 with the smallest L2 norm, and their biases) until
   KEEP = (96, 48) are left. Pruned units output exactly 0, so slicing them out afterwards
   changes nothing: a dense 784-96-48-10 network remains - smaller GEMMs, so faster (zeroing
   single weights would not be: BLAS multiplies zeros as fast as anything else).
3. Fold the input normalisation into fc1 (W' = W / std, b' = b - W' . mean), then quantize every
   weight matrix to int8, per output row, symmetric (float32 scales): 4x smaller again. Biases
   stay float32 (a few hundred numbers).
4. load() dequantizes ONCE into float32 weights; predict runs a fused inference forward (one
   GEMM + in-place bias + in-place ReLU per layer, no autograd graph). Integer matmuls
   (QuantizedLinear) are slower in numpy: int32 matmul does not reach BLAS.

The measured numbers are in the lesson (katas/20_capstone/README.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import tinytorch.autograd  # noqa: F401  (importing it registers the backward engine)
from tinytorch.activations import ReLU
from tinytorch.compression import Pruner, gradual_sparsity
from tinytorch.layers import Linear, Module, Sequential, manual_seed
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import Adam
from tinytorch.quantization import PerChannelMinMaxObserver, QTensor, quantize_per_channel
from tinytorch.tensor import Tensor

MEAN, STD = 0.1307, 0.3081  # MNIST's pixel mean and standard deviation (training set)
HIDDEN = (256, 128)  # the dense network trained first: the baseline's architecture
KEEP = (96, 48)  # hidden units left after structured pruning
DENSE_EPOCHS, PRUNE_EPOCHS = 3, 3
BATCH_SIZE, LR = 128, 1e-3
PRUNE_EVENTS = 10  # pruning steps of the gradual schedule, over the first half of fine-tuning
LAYERS = ("fc1", "fc2", "fc3")


# ----------------------------------------------------------------------------
# Weights as shipped: int8 rows + one float32 scale per row
# ----------------------------------------------------------------------------


def quantize_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, float32 scales): symmetric per-row (per output channel) int8 quantization of a
    2-D float weight with module 16's observer and quantize_per_channel; row o is q[o] * scale[o]."""
    # TODO: PerChannelMinMaxObserver(0, "qint8", symmetric=True) observes the weight; its qparams go
    #       to quantize_per_channel(weight, scales, zero_points, 0, "qint8"); return (values, scales as float32).
    raise NotImplementedError('quantize_rows: your turn - see the TODOs above')


def dequantize_rows(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The float32 weight that int8 `values` (out, in) with per-row `scales` (out,) stand for."""
    # TODO: QTensor(values, scales as float64, zero points (all 0, int64), "qint8", axis=0).dequantize().data
    raise NotImplementedError('dequantize_rows: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# The inference model
# ----------------------------------------------------------------------------


class InferenceMLP(Module):
    """A ReLU MLP for inference only: float32 weights stored transposed (in, out) and contiguous, so
    each layer is ONE GEMM `h @ W_t`, then the bias and the ReLU in place on its output. No autograd
    graph, no Linear/ReLU modules to call: for one image the framework's per-op overhead is most of
    the time (see the lesson's profile).

    layers: [(weight (out, in), bias (out,)), ...] float32; ReLU between layers, not after the last.
    forward(x): (B, ...) with prod(...) == in_features of the first layer -> float32 Tensor (B, out).
    """

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]]):
        super().__init__()
        # TODO: keep each weight TRANSPOSED and contiguous (np.ascontiguousarray(w.T), float32) and each
        #       bias (float32); remember in_features (the first weight's second dimension).
        raise NotImplementedError('InferenceMLP.__init__: your turn - see the TODOs above')

    def forward(self, x: Any) -> Tensor:
        # TODO: h = x as a float32 (B, in) array (a view: never write into it); for each layer
        #       h = h @ W_t; h += b (in place, h is new); ReLU in place with np.maximum(h, 0, out=h)
        #       except after the last layer. Return Tensor(h).
        raise NotImplementedError('InferenceMLP.forward: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Training: dense, then gradual structured pruning while fine-tuning
# ----------------------------------------------------------------------------


def _prune_units(pruner: Pruner, layer: Linear, keep: int, step: int, begin: int, frequency: int) -> None:
    """One event of the gradual schedule: prune rows of layer.weight (hidden units, smallest L2 norm)
    up to the schedule's target for `step`, and the same units' biases."""
    # TODO: target = gradual_sparsity(step, 1 - keep / out_features, 0.0, begin, n=PRUNE_EVENTS, frequency);
    #       mask = pruner.ln_structured(layer, "weight", round(target * out_features), 2, 0) (units = rows);
    #       pruner.add_mask(layer, "bias", mask[:, 0]) so that a pruned unit outputs exactly 0.
    raise NotImplementedError('_prune_units: your turn - see the TODOs above')


def train(images: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Build, train and optimise a model on MNIST training data.

    images: (N, 1, 28, 28) float32 in [0, 1]; labels: (N,) int64 in 0..9; seed: int (the only source
    of randomness: the same seed gives the same state). Neither input is modified.
    Returns the state to ship, a flat dict name -> numpy array: for each layer in LAYERS
    "<layer>.weight" int8 (out, in), "<layer>.scale" float32 (out,), "<layer>.bias" float32 (out,).
    """
    # TODO: 1. manual_seed(seed); x = (images as (N, 784) - MEAN) / STD in float32 (a new array).
    # TODO: 2. model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10));
    #          Adam(lr=LR), CrossEntropyLoss; shuffled mini-batches of BATCH_SIZE from the seeded generator;
    #          a cosine learning rate over all DENSE_EPOCHS + PRUNE_EPOCHS epochs (set group["lr"]).
    # TODO: 3. From the first fine-tuning step: every `frequency` steps, PRUNE_EVENTS + 1 times, prune
    #          hidden units of fc1 and fc2 towards KEEP (_prune_units); pruner.apply() after EVERY step.
    # TODO: 4. Keep the surviving units (the pruner's masks), fold MEAN/STD into fc1, quantize_rows each
    #          weight; return the flat dict.
    raise NotImplementedError('train: your turn - see the TODOs above')


def load(state: dict[str, np.ndarray]) -> Any:
    """Rebuild the model from `state` alone (no files, no globals from train: load runs in a fresh
    process). Returns what predict accepts. `state` is not modified."""
    # TODO: dequantize_rows each "<layer>.weight" with its "<layer>.scale"; InferenceMLP([(w, bias), ...]).
    raise NotImplementedError('load: your turn - see the TODOs above')


def predict(model: Any, images: np.ndarray) -> np.ndarray:
    """images: (B, 1, 28, 28) float32 in [0, 1] -> logits (B, 10) float32. `images` is not modified;
    each row's logits do not depend on the other rows of the batch."""
    # TODO: run the model on the images and return its output as a float32 array (Tensor.data).
    raise NotImplementedError('predict: your turn - see the TODOs above')
