"""1957 - Rosenblatt's Perceptron, on your Tensor (module 01 only).

Frank Rosenblatt's Mark I Perceptron learned a linear threshold unit

    predict(x) = +1 if w . x + b > 0 else -1

with a rule that is NOT gradient descent: go through the examples and, only when
one is misclassified, move the boundary towards it,

    w <- w + lr * y * x,    b <- b + lr * y.

Novikoff (1962) proved that on linearly separable data with margin gamma and
|x| <= R the rule makes at most (R / gamma)^2 mistakes, whatever the order: it
always reaches 100% training accuracy. This script generates seeded separable 2-D
data, runs the rule with Tensor ops, prints the boundary and plots it.

    python milestones/m1957_perceptron.py --impl reference
"""

from __future__ import annotations

from pathlib import Path

from _harness import MilestoneRun  # sibling plumbing: flags, target, verdict

run = MilestoneRun.from_cli("perceptron")

import numpy as np  # noqa: E402


def make_data(seed: int, n: int = 100, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n points in [-1, 1]^2 labelled +-1 by a random line, none closer to it than `margin`."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])
    offset = rng.uniform(-0.3, 0.3)
    points = []
    while len(points) < n:
        p = rng.uniform(-1, 1, size=2)
        if abs(p @ normal + offset) >= margin:
            points.append(p)
    x = np.array(points, dtype=np.float32)
    y = np.where(x @ normal + offset > 0, 1.0, -1.0).astype(np.float32)
    return x, y, np.append(normal, offset)


def train(x, y, lr: float = 1.0, max_epochs: int = 100):
    """Rosenblatt's rule with Tensor ops; returns (w, b, mistakes per epoch)."""
    from tinytorch.tensor import Tensor

    X, Y = Tensor(x), Tensor(y)
    w, b = Tensor(np.zeros(2, dtype=np.float32)), Tensor(np.zeros((), dtype=np.float32))
    history = []
    for epoch in range(max_epochs):
        mistakes = 0
        for i in range(len(x)):
            xi, yi = X[i], Y[i]
            if ((xi * w).sum() + b).item() * yi.item() <= 0:  # wrong side (or on the line)
                w = w + xi * (lr * yi.item())
                b = b + lr * yi.item()
                mistakes += 1
        history.append(mistakes)
        run.log(f"epoch {epoch + 1:3d}: {mistakes} mistakes")
        if mistakes == 0:
            break
    return w, b, history


def accuracy(x, y, w, b) -> float:
    from tinytorch.tensor import Tensor

    scores = Tensor(x) @ w + b
    predicted = (scores > 0).numpy()
    return float(np.mean(predicted == (y > 0)))


def plot(x, y, w, b, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - plotting is optional
        run.log("matplotlib is not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(*x[y > 0].T, marker="o", label="+1")
    ax.scatter(*x[y < 0].T, marker="x", label="-1")
    xs = np.linspace(-1, 1, 2)
    if abs(w[1]) > 1e-12:
        ax.plot(xs, -(w[0] * xs + b) / w[1], "k-", label="learned boundary")
    else:
        ax.axvline(-b / w[0], color="k", label="learned boundary")
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_title("1957: Rosenblatt's perceptron")
    ax.legend(loc="lower right")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    run.log(f"plot saved to {path}")


def main() -> int:
    x, y, true_line = make_data(run.seed)
    run.log(f"data: {len(x)} separable points (seed {run.seed}), true boundary"
            f" {true_line[0]:.3f} x1 + {true_line[1]:.3f} x2 + {true_line[2]:.3f} = 0")
    try:
        w, b, history = train(x, y)
        acc = accuracy(x, y, w, b)
    except (NotImplementedError, ModuleNotFoundError) as err:
        return run.not_implemented(err)
    w_np, b_np = w.numpy().astype(float), float(b.item())
    run.log(f"decision boundary: {w_np[0]:.4f} * x1 + {w_np[1]:.4f} * x2 + {b_np:.4f} = 0")
    run.log(f"converged after {len(history)} epochs, {sum(history)} updates; training accuracy {acc:.4f}")
    plot(x, y, w_np, b_np, run.plot_path("perceptron_boundary.png"))
    return run.finish(acc, {"weights": w_np.tolist(), "bias": b_np, "epochs": len(history),
                            "updates": int(sum(history))})


if __name__ == "__main__":
    raise SystemExit(main())
