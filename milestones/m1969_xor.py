"""1969 - XOR and the multi-layer perceptron, on your framework (modules 01-06).

Minsky and Papert's "Perceptrons" (1969) proved what every single-layer
perceptron computes is a linear threshold function, so it cannot represent XOR:
no line puts (0,0), (1,1) on one side and (0,1), (1,0) on the other - at best
3 of the 4 points are right (75%). The book is often blamed for the first "AI
winter". The fix was known in principle - add a hidden layer - but nobody knew
how to train one until backpropagation (Rumelhart, Hinton & Williams, 1986).

This script measures both halves of the story with YOUR modules:
1. a single Linear(2, 1) trained on XOR never exceeds 75% accuracy;
2. Linear(2, 8) -> Tanh -> Linear(8, 1), trained with your loss, autograd and
   Adam, reaches 100% (the milestone's metric: mlp_train_accuracy).

    python milestones/m1969_xor.py --impl reference
"""

from __future__ import annotations

from pathlib import Path

from _harness import MilestoneRun  # sibling plumbing: flags, target, verdict

run = MilestoneRun.from_cli("xor")

import numpy as np  # noqa: E402

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def train(model, steps: int, lr: float, label: str) -> tuple[float, float, list[float]]:
    """Full-batch Adam on BCE-with-logits; returns (final accuracy, best accuracy, losses)."""
    import tinytorch.autograd  # noqa: F401  (registers the backward engine)
    from tinytorch.losses import BCEWithLogitsLoss
    from tinytorch.optimizers import Adam
    from tinytorch.tensor import Tensor

    x, y = Tensor(X), Tensor(Y)
    loss_fn = BCEWithLogitsLoss()
    optimizer = Adam(model.parameters(), lr=lr)
    best, losses = 0.0, []
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        logits = model(x)
        loss = loss_fn(logits, y)
        loss.backward()
        optimizer.step()
        acc = float(np.mean((logits.numpy() > 0) == (Y > 0.5)))
        best = max(best, acc)
        losses.append(float(loss.item()))
        if step % (steps // 5) == 0:
            run.log(f"  {label} step {step:4d}: loss {losses[-1]:.4f}, accuracy {acc:.2f}")
    final = float(np.mean((model(x).numpy() > 0) == (Y > 0.5)))
    return final, best, losses


def plot(perceptron, mlp, accuracies: tuple[float, float], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - plotting is optional
        run.log("matplotlib is not installed: no plot")
        return
    from tinytorch.tensor import Tensor

    grid = np.linspace(-0.5, 1.5, 201, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    points = Tensor(np.stack([gx.ravel(), gy.ravel()], axis=1))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
    titles = (f"single layer: accuracy {accuracies[0]:.2f}", f"2-layer MLP: accuracy {accuracies[1]:.2f}")
    for ax, model, title in ((axes[0], perceptron, titles[0]), (axes[1], mlp, titles[1])):
        z = model(points).numpy().reshape(gx.shape)
        ax.contourf(gx, gy, z > 0, levels=[-0.5, 0.5, 1.5], colors=["#f4cccc", "#cfe2f3"])
        ax.contour(gx, gy, z, levels=[0.0], colors="k")
        ax.scatter(*X[Y[:, 0] > 0.5].T, marker="o", s=80, c="tab:blue", label="XOR = 1")
        ax.scatter(*X[Y[:, 0] < 0.5].T, marker="x", s=80, c="tab:red", label="XOR = 0")
        ax.set_title(title)
    axes[0].legend(loc="upper center")
    fig.suptitle("1969: XOR")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    run.log(f"plot saved to {path}")


def main() -> int:
    try:
        from tinytorch.activations import Tanh
        from tinytorch.layers import Linear, Sequential, manual_seed

        manual_seed(run.seed)
        run.log("1. a single-layer perceptron: Linear(2, 1)")
        perceptron = Linear(2, 1)
        p_final, p_best, _ = train(perceptron, steps=500, lr=0.05, label="perceptron")
        run.log(f"   single layer: best accuracy over 500 steps {p_best:.2f}, final {p_final:.2f}"
                " (a line separates at most 3 of the 4 XOR points)")
        run.log("2. a multi-layer perceptron: Linear(2, 8) -> Tanh -> Linear(8, 1)")
        mlp = Sequential(Linear(2, 8), Tanh(), Linear(8, 1))
        m_final, m_best, losses = train(mlp, steps=500, lr=0.05, label="mlp")
        run.log(f"   MLP: final accuracy {m_final:.2f}, loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    except (NotImplementedError, ModuleNotFoundError) as err:
        return run.not_implemented(err)
    if p_best > 0.75:
        run.log("the single-layer model exceeded 75% on XOR, which is impossible: check Linear and the loss")
        return run.finish(0.0, {"perceptron_best_accuracy": p_best, "error": "single layer above 75%"})
    plot(perceptron, mlp, (p_final, m_final), run.plot_path("xor_decision_regions.png"))
    return run.finish(m_final, {"perceptron_best_accuracy": p_best, "perceptron_final_accuracy": p_final,
                                "mlp_final_loss": losses[-1], "mlp_parameters": mlp.num_parameters()})


if __name__ == "__main__":
    raise SystemExit(main())
