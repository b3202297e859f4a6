"""1998 - LeNet-5: a convolutional network reads handwritten digits.

LeCun, Bottou, Bengio and Haffner ("Gradient-based learning applied to document
recognition", Proc. IEEE 1998) trained a network whose first layers are not
fully connected: small 5x5 filters slide over the image (the same weights at
every position), pooling shrinks the feature maps, and only the last layers are
an MLP. The network has 61,706 weights - a quarter of the 1986 MLP's - and makes
fewer mistakes, because it knows that a stroke is a stroke wherever it appears.

LeNet-5 here (ReLU and max-pooling where the paper had scaled tanh and
subsampling; the 32x32 input of the paper becomes padding=2 on MNIST's 28x28):

    conv 1->6 5x5 pad 2 -> ReLU -> max-pool 2   (6x28x28 -> 6x14x14)
    conv 6->16 5x5      -> ReLU -> max-pool 2   (16x10x10 -> 16x5x5)
    flatten 400 -> 120 -> ReLU -> 84 -> ReLU -> 10

trained with cross-entropy and Adam with a cosine learning-rate decay on *your*
framework: modules 01-08 and the convolutions of module 09. It is measured on the
full 10,000-image MNIST test set; the target is 98.5% (the reference reaches ~99.2%
in 6 epochs, about 80 s of CPU time).

    python milestones/m1998_cnn.py                               # your katas
    python milestones/m1998_cnn.py --impl reference --data-dir ../shared/data

Data: --data-dir, else $TINYTORCH_DATA, else ~/.cache/tinytorch (downloaded once, md5-checked).
The same architecture on CIFAR-10, with batch normalisation and augmentation, is
milestones/m1998_cifar_cnn.py.
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
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)


run = MilestoneRun.from_cli("lenet", extra=_flags)  # before importing tinytorch: honours --impl

import numpy as np  # noqa: E402

import tinytorch.autograd as autograd  # noqa: E402  (importing it registers the backward engine)
from tinytorch.activations import ReLU  # noqa: E402
from tinytorch.conv import Conv2d, MaxPool2d  # noqa: E402
from tinytorch.data import Compose, DataLoader, Normalize, TensorDataset, ToTensor  # noqa: E402
from tinytorch.datasets import DatasetError, load_mnist  # noqa: E402
from tinytorch.layers import Flatten, Linear, Sequential, manual_seed  # noqa: E402
from tinytorch.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.optimizers import Adam  # noqa: E402
from tinytorch.training import CosineAnnealingLR  # noqa: E402

args = run.args


# -- data: uint8 digits -> normalised float32 images (N, 1, 28, 28), once, vectorised ---------
try:
    mnist = load_mnist()
except DatasetError as err:
    raise SystemExit(run.data_missing("MNIST", err))
prepare = Compose([ToTensor("HW"), Normalize((0.1307,), (0.3081,))])  # MNIST's mean and std
x_train, x_test = prepare(mnist.train_images), prepare(mnist.test_images)
y_train, y_test = mnist.train_labels, mnist.test_labels
train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True,
                          generator=run.seed)
# The test labels never enter the framework: it sees images only, and accuracy is computed here.
test_loader = DataLoader(TensorDataset(x_test), batch_size=1000)
run.log(f"MNIST: {len(y_train)} training, {len(y_test)} test images of 1x28x28; {len(train_loader)} batches of "
        f"{args.batch_size} per epoch")

# -- the model: LeNet-5 ------------------------------------------------------------------------
manual_seed(run.seed)
model = Sequential(
    Conv2d(1, 6, 5, padding=2), ReLU(), MaxPool2d(2),    # C1, S2: 6 feature maps of 14x14
    Conv2d(6, 16, 5), ReLU(), MaxPool2d(2),              # C3, S4: 16 feature maps of 5x5
    Flatten(),
    Linear(16 * 5 * 5, 120), ReLU(),                     # C5 (a 5x5 convolution on a 5x5 map = a Linear layer)
    Linear(120, 84), ReLU(),                             # F6
    Linear(84, 10),                                      # the output layer (the paper used RBF units)
)
loss_fn = CrossEntropyLoss()
optimizer = Adam(model.parameters(), lr=args.lr)
total_steps = args.epochs * len(train_loader)
scheduler = CosineAnnealingLR(optimizer, T_max=total_steps)  # cosine decay to 0, stepped per batch
run.log(f"model: LeNet-5, {sum(p.numel() for p in model.parameters()):,} parameters;"
        f" Adam, lr {args.lr} with cosine decay over {args.epochs} epochs ({total_steps} steps)")


def predict(loader: DataLoader) -> np.ndarray:
    """Class predictions for every sample of `loader`, in order (no graph is recorded)."""
    with autograd.no_grad():
        return np.concatenate([model(x).numpy().argmax(axis=1) for (x,) in loader])


# -- training: a plain loop you can read top to bottom ----------------------------------------
history = {"step_loss": [], "epoch_loss": [], "train_accuracy": [], "test_accuracy": [], "epoch_seconds": []}
steps_per_epoch = len(train_loader)
training_started = time.perf_counter()
for epoch in range(1, args.epochs + 1):
    progress, total_loss, correct, seen = EpochProgress(epoch, args.epochs, steps_per_epoch), 0.0, 0, 0
    model.train()
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
    model.eval()
    test_accuracy = float(np.mean(predict(test_loader) == y_test))
    history["epoch_loss"].append(total_loss / seen)
    history["train_accuracy"].append(correct / seen)
    history["test_accuracy"].append(test_accuracy)
    history["epoch_seconds"].append(round(train_seconds, 2))
    run.log(f"epoch {epoch}/{args.epochs}: train loss {total_loss / seen:.4f}, train accuracy {correct / seen:.4f},"
            f" test accuracy {test_accuracy:.4f} (training {train_seconds:.1f} s,"
            f" {seen / train_seconds:,.0f} images/s; evaluation {progress.done() - train_seconds:.1f} s)")
training_seconds = time.perf_counter() - training_started

# -- evaluation and figures -------------------------------------------------------------------
model.eval()
predictions = predict(test_loader)
test_accuracy = float(np.mean(predictions == y_test))
confusion, per_class = confusion_matrix(y_test, predictions)
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
run.log("per-class test accuracy: " + "  ".join(f"{d}:{a:.3f}" for d, a in enumerate(per_class)))
run.log(f"training took {training_seconds:.1f} s for {args.epochs} epochs (with a test pass after each) on {cores} CPU"
        f" core(s); {len(y_test) - int(confusion.trace())} of {len(y_test)} test digits misread")
run.log(f"measured test accuracy {test_accuracy:.4f} vs target {run.milestone.target:g}")
save_classifier_figures(run, history, steps_per_epoch, confusion, title="LeNet-5 on MNIST")
try:
    import matplotlib.pyplot as plt

    filters = model[0].weight.numpy()[:, 0]  # the six learned 5x5 filters of the first layer
    fig, axes = plt.subplots(1, len(filters), figsize=(1.6 * len(filters), 1.9))
    for k, (ax, kernel) in enumerate(zip(axes, filters)):
        bound = float(np.abs(kernel).max()) or 1.0
        ax.imshow(kernel, cmap="RdBu_r", vmin=-bound, vmax=bound)
        ax.set(xticks=[], yticks=[], title=f"filter {k}")
    fig.suptitle("first-layer filters (red +, blue -)", fontsize=9)
    fig.tight_layout()
    fig.savefig(run.plot_path("conv1_filters.png"), dpi=120)
    plt.close(fig)
except ImportError:  # plotting is a bonus (save_classifier_figures already said so)
    pass
run.log(f"figures: {', '.join(run.artifacts)}")

details = {
    "model": "LeNet-5 (ReLU, max-pool)",
    "parameters": int(sum(p.numel() for p in model.parameters())),
    "epochs": args.epochs,
    "batch_size": args.batch_size,
    "lr": args.lr,
    "training_seconds": round(training_seconds, 2),
    "epoch_seconds": history["epoch_seconds"],
    "cpu_cores": cores,
    "test_accuracy_per_epoch": history["test_accuracy"],
    "train_accuracy_per_epoch": [round(a, 4) for a in history["train_accuracy"]],
    "per_class_accuracy": [round(float(a), 4) for a in per_class],
    "test_errors": int(len(y_test) - confusion.trace()),
}
raise SystemExit(run.finish(test_accuracy, details))
