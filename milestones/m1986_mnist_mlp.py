"""1986 - Backpropagation: a multi-layer perceptron learns to read handwritten digits.

Rumelhart, Hinton and Williams ("Learning representations by back-propagating
errors", Nature 1986) showed that the chain rule, run backwards through a network
of differentiable units, trains hidden layers that no one designed. Here that idea
meets the dataset that became its benchmark: MNIST (LeCun et al., 1998), 60,000
training and 10,000 test images of 28x28 handwritten digits.

The model is 784-256-128-10 with ReLU, trained with cross-entropy and Adam on
*your* framework: tensor (01), activations (02), layers (03), losses (04),
autograd (05), optimizers (06), the learning-rate schedule (07) and the data pipeline (08). It is measured on the
full MNIST test set; the target is 95% accuracy (the reference reaches ~98%).

    python milestones/m1986_mnist_mlp.py                               # your katas
    python milestones/m1986_mnist_mlp.py --impl reference --data-dir ../shared/data

Data: --data-dir, else $TINYTORCH_DATA, else ~/.cache/tinytorch (downloaded once, md5-checked).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (EpochProgress, MilestoneRun, confusion_matrix,  # noqa: E402  (sibling plumbing:
                      save_classifier_figures)  # flags, target, verdict, progress and figures)


def _flags(parser):
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)


run = MilestoneRun.from_cli("mnist-mlp", extra=_flags)  # before importing tinytorch: honours --impl

import numpy as np  # noqa: E402

import tinytorch.autograd as autograd  # noqa: E402  (importing it registers the backward engine)
from tinytorch.activations import ReLU  # noqa: E402
from tinytorch.data import Compose, DataLoader, Normalize, TensorDataset, ToTensor  # noqa: E402
from tinytorch.datasets import load_mnist  # noqa: E402
from tinytorch.layers import Linear, Sequential, manual_seed  # noqa: E402
from tinytorch.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.optimizers import Adam  # noqa: E402
from tinytorch.training import CosineAnnealingLR  # noqa: E402

args = run.args

# -- data: uint8 digits -> normalised float32 vectors, once, vectorised over all 70,000 images --
mnist = load_mnist()
prepare = Compose([ToTensor("HW"), Normalize((0.1307,), (0.3081,))])  # MNIST's mean and std
x_train = prepare(mnist.train_images).reshape(len(mnist.train_images), 784)
x_test = prepare(mnist.test_images).reshape(len(mnist.test_images), 784)
y_train, y_test = mnist.train_labels, mnist.test_labels
train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True,
                          generator=run.seed)
# The test labels never enter the framework: it sees images only, and accuracy is computed here.
test_loader = DataLoader(TensorDataset(x_test), batch_size=1000)
run.log(f"MNIST: {len(y_train)} training, {len(y_test)} test images; {len(train_loader)} batches of "
        f"{args.batch_size} per epoch")

# -- the model ------------------------------------------------------------------------------
manual_seed(run.seed)
model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
loss_fn = CrossEntropyLoss()
optimizer = Adam(model.parameters(), lr=args.lr)
run.log(f"model: 784-256-128-10 MLP, {sum(p.numel() for p in model.parameters()):,} parameters;"
        f" Adam, lr {args.lr} with cosine decay over {args.epochs} epochs")


def predict(loader: DataLoader) -> np.ndarray:
    """Class predictions for every sample of `loader`, in order (no graph is recorded)."""
    with autograd.no_grad():
        return np.concatenate([model(x).numpy().argmax(axis=1) for (x,) in loader])


# -- training: a plain loop you can read top to bottom --------------------------------------
history = {"step_loss": [], "epoch_loss": [], "train_accuracy": [], "test_accuracy": []}
steps_per_epoch = len(train_loader)
total_steps = args.epochs * steps_per_epoch
# cosine learning-rate decay to 0 over the whole run (Loshchilov & Hutter, 2017), stepped per batch
scheduler = CosineAnnealingLR(optimizer, T_max=total_steps)
for epoch in range(1, args.epochs + 1):
    progress, total_loss, correct, seen = EpochProgress(epoch, args.epochs, steps_per_epoch), 0.0, 0, 0
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
    test_accuracy = float(np.mean(predict(test_loader) == y_test))
    history["epoch_loss"].append(total_loss / seen)
    history["train_accuracy"].append(correct / seen)
    history["test_accuracy"].append(test_accuracy)
    run.log(f"epoch {epoch}/{args.epochs}: train loss {total_loss / seen:.4f}, train accuracy {correct / seen:.4f},"
            f" test accuracy {test_accuracy:.4f} ({progress.done():.1f} s)")

# -- evaluation and figures ----------------------------------------------------------------
predictions = predict(test_loader)
test_accuracy = float(np.mean(predictions == y_test))
confusion, per_class = confusion_matrix(y_test, predictions)
run.log("per-class test accuracy: " + "  ".join(f"{d}:{a:.3f}" for d, a in enumerate(per_class)))
run.log(f"measured test accuracy {test_accuracy:.4f} vs target {run.milestone.target:g}")
save_classifier_figures(run, history, steps_per_epoch, confusion, title="MNIST MLP")
run.log(f"figures: {', '.join(run.artifacts)}")

details = {
    "epochs": args.epochs,
    "batch_size": args.batch_size,
    "lr": args.lr,
    "test_accuracy_per_epoch": history["test_accuracy"],
    "per_class_accuracy": [round(float(a), 4) for a in per_class],
}
raise SystemExit(run.finish(test_accuracy, details))
