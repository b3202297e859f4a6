"""Post-training INT8 quantization of the 1986 MNIST MLP: bytes saved, accuracy lost.

Trains the 1986 milestone's model (784-256-128-10 ReLU MLP, cross-entropy, Adam lr 1e-3 with
cosine decay, batch 128) with tinytorch, then quantizes every Linear with module 16's
`quantize_model` (int8 per-channel symmetric weights, uint8 affine activations calibrated on
`--calibration-batches` batches of TRAINING images, int32 accumulation and int32 bias) and
evaluates both models on the full 10,000-image MNIST test set.

    python milestones/benchmarks/quantize_mnist.py --data-dir ../shared/data
    python milestones/benchmarks/quantize_mnist.py --impl katas --epochs 2

How bytes are counted (`model_size_bytes`): every float32 parameter 4 bytes; a QuantizedLinear
1 byte per weight + per output channel a float32 scale, an int32 zero point and an int32 bias
(12 bytes) + its input's float32 scale and int32 zero point (8 bytes). Activations, code and
Python object overhead are not counted, on either side.

Prints both sizes and their ratio (goal >= 4x, which int8 + per-channel metadata can only
approach: 940,584 / 239,504 = 3.93x for this model), both accuracies and the drop in
percentage points (goal <= 0.5), for min-max and percentile calibration, and the batch-1000
inference time of each model. Exit code 0 when the min-max model's drop is within --max-drop.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="reference", help="tinytorch implementation (default: reference)")
    parser.add_argument("--data-dir", default=None, help="dataset directory (else $TINYTORCH_DATA or the cache)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibration-batches", type=int, default=8, help="training batches (of --batch-size) to"
                                                                           " calibrate activation ranges on")
    parser.add_argument("--percentile", type=float, default=99.99)
    parser.add_argument("--max-drop", type=float, default=0.5, help="accuracy drop allowed, percentage points")
    return parser.parse_args(argv)


args = parse_args()
os.environ["TINYTORCH_IMPL"] = args.impl  # before importing tinytorch
if args.data_dir:
    os.environ["TINYTORCH_DATA"] = str(Path(args.data_dir).resolve())

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _mnist  # noqa: E402  (the shared MNIST recipe: data, the 1986 MLP, training, evaluation)
from tinytorch.quantization import model_size_bytes, quantize_model  # noqa: E402

data = _mnist.load()
x_train, y_train = data.x_train, data.y_train
model = _mnist.mlp(args.seed)
seconds = _mnist.train(model, (x_train, y_train), args.epochs, args.lr, args.batch_size, args.seed)
print(f"trained 784-256-128-10 for {args.epochs} epochs in {seconds:.1f} s"
      f" (tinytorch: {args.impl})")


def evaluate(net) -> tuple[float, float]:
    """(test accuracy, seconds for one pass over the 10 batches of 1000)."""
    started = time.perf_counter()
    accuracy = _mnist.evaluate(net, data)
    return accuracy, time.perf_counter() - started


# calibration data: the first batches of a fixed shuffle of the TRAINING set, never test images
order = np.random.default_rng(args.seed + 1).permutation(len(x_train))
calibration = [x_train[order[i * args.batch_size:(i + 1) * args.batch_size]] for i in range(args.calibration_batches)]

model.eval()
float_accuracy, float_time = evaluate(model)
float_bytes = model_size_bytes(model)
rows = [("float32", float_bytes, float_accuracy, float_time)]
for method in ("minmax", "percentile"):
    quantized = quantize_model(model, calibration, calibration=method, percentile=args.percentile)
    accuracy, seconds = evaluate(quantized)
    rows.append((f"int8 ({method}{'' if method == 'minmax' else f' {args.percentile:g}%'})",
                 model_size_bytes(quantized), accuracy, seconds))
    if method == "minmax":
        layers = [m for m in quantized.modules() if type(m).__name__ == "QuantizedLinear"]
        for i, layer in enumerate(layers):
            print(f"  layer {i}: input scale {layer.input_scale:.5f}, zero point {layer.input_zero_point},"
                  f" weight scales {np.min(layer.weight.scale):.2e}..{np.max(layer.weight.scale):.2e}")

print(f"\n{'model':<26}{'bytes':>10}{'vs float':>10}{'test acc':>10}{'drop (pts)':>12}{'eval 10k':>10}")
for name, size, accuracy, seconds in rows:
    print(f"{name:<26}{size:>10,}{float_bytes / size:>9.2f}x{100 * accuracy:>9.2f}%"
          f"{100 * (float_accuracy - accuracy):>12.2f}{seconds:>9.2f}s")
drop = 100 * (float_accuracy - rows[1][2])
ratio = float_bytes / rows[1][1]
print(f"\nmin-max INT8: {ratio:.2f}x smaller (goal >= 4x: int8 weights alone are 4x, per-channel scales, zero points"
      f" and the int32 bias add the rest), accuracy drop {drop:.2f} points (goal <= {args.max_drop})")
sys.exit(0 if drop <= args.max_drop else 1)
