"""1998, continued - a VGG-style CNN with batch normalisation learns CIFAR-10.

LeNet-5 (milestones/m1998_cnn.py) reads digits: one colour, centred, on a clean
background. CIFAR-10 (Krizhevsky, 2009) has 60,000 32x32 colour photos of ten
classes - airplanes, cats, ships, trucks - at any position and scale. The same
ideas carry over, with three additions that came later:

* stacks of small 3x3 convolutions, doubling the channels after each pooling
  (VGG: Simonyan & Zisserman, 2014),
* batch normalisation after every convolution (Ioffe & Szegedy, 2015), which lets
  a deeper network train quickly with a large learning rate,
* data augmentation from module 08: each training image is randomly shifted (a
  random 32x32 crop of the image zero-padded by 4 pixels) and mirrored left-right,
  so the network never sees exactly the same picture twice.

The model (--width W, default 16):

    [conv 3x3 -> BatchNorm -> ReLU] x 2 -> max-pool 2    W channels,  32x32 -> 16x16
    [conv 3x3 -> BatchNorm -> ReLU] x 2 -> max-pool 2    2W channels, 16x16 -> 8x8
    [conv 3x3 -> BatchNorm -> ReLU] x 2 -> max-pool 2    4W channels,  8x8  -> 4x4
    flatten 64W -> 10

trained with cross-entropy and AdamW (linear warm-up, then cosine decay) on your
framework: modules 01-08 and module 09's Conv2d, MaxPool2d and BatchNorm2d. It is
measured on the 10,000 CIFAR-10 test images; the target is 75% accuracy.

    python milestones/m1998_cifar_cnn.py --impl reference --data-dir ../shared/data
    python milestones/m1998_cifar_cnn.py --download        # fetch CIFAR-10 (170 MB) first if missing

Data: cifar-10/cifar-10-python.tar.gz (md5-checked) or its extracted
cifar-10/cifar-10-batches-py/ folder under --data-dir, else $TINYTORCH_DATA, else
~/.cache/tinytorch. Nothing is downloaded unless --download is given: without the
files the milestone says "data missing" and writes no value - it is never passed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (EpochProgress, MilestoneRun, confusion_matrix,  # noqa: E402  (sibling plumbing:
                      save_classifier_figures)  # flags, target, verdict, progress and figures)


def _flags(parser):
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=5e-2, help="AdamW's decoupled weight decay")
    parser.add_argument("--width", type=int, default=16, help="channels of the first stage (then 2x, 4x)")
    parser.add_argument("--train-limit", type=int, default=None,
                        help="train on the first N training images only (a quick look; not for the verdict)")
    parser.add_argument("--download", action="store_true", help="download CIFAR-10 if it is not present")


run = MilestoneRun.from_cli("cifar-cnn", extra=_flags)  # before importing tinytorch: honours --impl

import numpy as np  # noqa: E402

import tinytorch.autograd as autograd  # noqa: E402  (importing it registers the backward engine)
from tinytorch.activations import ReLU  # noqa: E402
from tinytorch.conv import BatchNorm2d, Conv2d, MaxPool2d  # noqa: E402
from tinytorch.data import (Compose, DataLoader, Normalize, RandomCrop, RandomHorizontalFlip,  # noqa: E402
                            TensorDataset, ToTensor)
from tinytorch.datasets import DatasetError, load_cifar10  # noqa: E402
from tinytorch.layers import Flatten, Linear, Sequential, manual_seed  # noqa: E402
from tinytorch.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.optimizers import AdamW  # noqa: E402
from tinytorch.training import CosineAnnealingLR, LinearWarmup  # noqa: E402

args = run.args
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # CIFAR-10's per-channel statistics


# -- data: uint8 photos (N, 32, 32, 3) stay uint8; each batch is converted and augmented -------
try:
    cifar = load_cifar10(download=args.download)
except DatasetError as err:
    raise SystemExit(run.data_missing("CIFAR-10", f"{err} (python -m tinytorch.datasets cifar10, or --download,"
                                              " fetches it: 170 MB)"))
train_images, y_train = cifar.train_images, cifar.train_labels
if args.train_limit:
    train_images, y_train = train_images[:args.train_limit], y_train[:args.train_limit]
y_test = cifar.test_labels
augment = Compose([
    ToTensor("HWC"), Normalize(MEAN, STD),                 # (B, 32, 32, 3) uint8 -> (B, 3, 32, 32) float32
    RandomCrop(32, padding=4, generator=run.seed),         # shift by up to 4 pixels (padding = the mean colour)
    RandomHorizontalFlip(generator=run.seed + 1),          # mirror half of the batch
])
train_loader = DataLoader(TensorDataset(train_images, y_train, transform=augment), batch_size=args.batch_size,
                          shuffle=True, generator=run.seed)
# The test labels never enter the framework: it sees images only, and accuracy is computed here.
x_test = Compose([ToTensor("HWC"), Normalize(MEAN, STD)])(cifar.test_images)
test_loader = DataLoader(TensorDataset(x_test), batch_size=500)
classes = cifar.classes or [str(c) for c in range(10)]
run.log(f"CIFAR-10: {len(y_train)} training, {len(y_test)} test images of 3x32x32; {len(train_loader)} batches"
        f" of {args.batch_size} per epoch; augmentation: random crop (padding 4) + horizontal flip")


# -- the model -------------------------------------------------------------------------------
def conv_bn_relu(c_in: int, c_out: int) -> list:
    return [Conv2d(c_in, c_out, 3, padding=1, bias=False), BatchNorm2d(c_out), ReLU()]  # BN has the bias


manual_seed(run.seed)
w = args.width
model = Sequential(
    *conv_bn_relu(3, w), *conv_bn_relu(w, w), MaxPool2d(2),                  # 32x32 -> 16x16
    *conv_bn_relu(w, 2 * w), *conv_bn_relu(2 * w, 2 * w), MaxPool2d(2),      # 16x16 -> 8x8
    *conv_bn_relu(2 * w, 4 * w), *conv_bn_relu(4 * w, 4 * w), MaxPool2d(2),  # 8x8 -> 4x4
    Flatten(), Linear(4 * w * 4 * 4, 10),
)
loss_fn = CrossEntropyLoss()
optimizer = AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
steps_per_epoch = len(train_loader)
total_steps = args.epochs * steps_per_epoch
warmup = max(1, min(steps_per_epoch, total_steps // 10))
scheduler = LinearWarmup(CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup)), warmup_steps=warmup)
parameters = int(sum(p.numel() for p in model.parameters()))
run.log(f"model: VGG-style CNN, widths {w}-{2 * w}-{4 * w}, 6 conv + BatchNorm layers, {parameters:,} parameters;"
        f" AdamW, lr {args.lr} (weight decay {args.weight_decay}), {warmup} warm-up steps then cosine decay over"
        f" {args.epochs} epochs ({total_steps} steps)")


def predict(loader: DataLoader) -> np.ndarray:
    """Class predictions for every sample of `loader`, in order (eval mode, no graph recorded)."""
    model.eval()
    with autograd.no_grad():
        predictions = np.concatenate([model(x).numpy().argmax(axis=1) for (x,) in loader])
    model.train()
    return predictions


# -- training ----------------------------------------------------------------------------------
history = {"step_loss": [], "epoch_loss": [], "train_accuracy": [], "test_accuracy": [], "epoch_seconds": []}
training_started = time.perf_counter()
model.train()
for epoch in range(1, args.epochs + 1):
    progress = EpochProgress(epoch, args.epochs, steps_per_epoch, redraw_every=10)
    total_loss, correct, seen = 0.0, 0, 0
    for step, (x, y) in enumerate(train_loader, start=1):
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()

        value = float(loss.item())
        history["step_loss"].append(value)
        total_loss += value * len(y)
        correct += int((logits.numpy().argmax(axis=1) == y.numpy()).sum())
        seen += len(y)
        progress.update(step, seen, total_loss / seen)
    train_seconds = progress.done()
    test_accuracy = float(np.mean(predict(test_loader) == y_test))
    history["epoch_loss"].append(total_loss / seen)
    history["train_accuracy"].append(correct / seen)
    history["test_accuracy"].append(test_accuracy)
    history["epoch_seconds"].append(round(train_seconds, 2))
    run.log(f"epoch {epoch}/{args.epochs}: train loss {total_loss / seen:.4f}, train accuracy {correct / seen:.4f},"
            f" test accuracy {test_accuracy:.4f} (training {train_seconds:.1f} s,"
            f" {seen / train_seconds:,.0f} images/s)")
training_seconds = time.perf_counter() - training_started

# -- evaluation and figures ----------------------------------------------------------------------
predictions = predict(test_loader)
test_accuracy = float(np.mean(predictions == y_test))
confusion, per_class = confusion_matrix(y_test, predictions)
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
run.log("per-class test accuracy: " + "  ".join(f"{c}:{a:.3f}" for c, a in zip(classes, per_class)))
run.log(f"training took {training_seconds:.1f} s for {args.epochs} epoch(s) on {cores} CPU core(s)")
run.log(f"measured test accuracy {test_accuracy:.4f} vs target {run.milestone.target:g}")
save_classifier_figures(run, history, steps_per_epoch, confusion, title="CIFAR-10 CNN", class_names=classes,
                        train_label="train (augmented)")
run.log(f"figures: {', '.join(run.artifacts)}")

details = {
    "model": f"VGG-style CNN {w}-{2 * w}-{4 * w} with BatchNorm",
    "parameters": parameters,
    "epochs": args.epochs,
    "batch_size": args.batch_size,
    "lr": args.lr,
    "weight_decay": args.weight_decay,
    "train_images": int(len(y_train)),
    "test_images": int(len(y_test)),
    "training_seconds": round(training_seconds, 2),
    "epoch_seconds": history["epoch_seconds"],
    "cpu_cores": cores,
    "final_train_loss": history["epoch_loss"][-1] if history["epoch_loss"] else None,
    "test_accuracy_per_epoch": history["test_accuracy"],
    "per_class_accuracy": [round(float(a), 4) for a in per_class],
}
raise SystemExit(run.finish(test_accuracy, details))
