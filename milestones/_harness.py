"""What every milestone script shares: its command line, its target, its verdict.

A milestone script trains a historical model with `tinytorch` only. This file
is the plumbing around it (no ML here):

    run = MilestoneRun.from_cli("perceptron")   # before importing tinytorch: honours --impl
    from tinytorch.tensor import Tensor
    ...
    run.log("epoch 1: loss 0.31")
    run.plot_path("decision_boundary.png")      # where to save figures
    raise SystemExit(run.finish(measured_accuracy, details={...}))

A NotImplementedError from an unfinished kata becomes one line and NO metric (value
None, never a pass, whichever way the manifest's `goal` compares) through
`run.not_implemented(err)`.

Flags every script accepts:
    --impl katas|reference|mix   which tinytorch to assemble (sets TINYTORCH_IMPL)
    --data-dir DIR               datasets (sets TINYTORCH_DATA); nothing is downloaded if present
    --out-dir DIR                plots and logs (default: results/milestones/<slug>)
    --result-json PATH           where the grader reads the measured metric
    --seed N                     the random seed (default 0)

The verdict compares the measured metric with the manifest's target in the
direction of its `goal` (Milestone.passes: "max" passes at value >= target, "min"
at value <= target); the grader reads the metric from --result-json, never from
the exit code alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path

from grading import curriculum


class MilestoneRun:
    def __init__(self, milestone: curriculum.Milestone, args: argparse.Namespace):
        self.milestone = milestone
        self.args = args
        self.seed: int = args.seed
        self.out_dir = Path(args.out_dir or curriculum.PROJECT_ROOT / "results" / "milestones" / milestone.slug)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        self.artifacts: list[str] = []

    @classmethod
    def from_cli(cls, slug: str, argv: list[str] | None = None, extra=None) -> "MilestoneRun":
        """Parse the shared flags (plus `extra(parser)` ones) and set up the environment."""
        milestone = curriculum.load().milestone(slug)
        parser = argparse.ArgumentParser(description=f"{milestone.year}: {milestone.title}")
        parser.add_argument("--impl", default=None, help="katas (default), reference, or e.g. 'katas,05=reference'")
        parser.add_argument("--data-dir", default=None, help="dataset directory (else $TINYTORCH_DATA or the cache)")
        parser.add_argument("--out-dir", default=None, help="where plots go")
        parser.add_argument("--result-json", default=None, help="write the measured result here")
        parser.add_argument("--seed", type=int, default=0)
        if extra is not None:
            extra(parser)
        args = parser.parse_args(argv)
        if args.impl:
            os.environ["TINYTORCH_IMPL"] = args.impl
        if args.data_dir:
            os.environ["TINYTORCH_DATA"] = str(Path(args.data_dir).resolve())
        from grading import remote

        # Under the grader this process is trusted: tinytorch is the learner's sandboxed worker,
        # and the data (test labels included) stay here.
        remote.activate_from_env()
        run = cls(milestone, args)
        run._install_unfinished_kata_hook()
        run.log(f"{milestone.year} - {milestone.title}")
        run.log(f"target: {milestone.target_text()}   (tinytorch: {os.environ.get('TINYTORCH_IMPL', 'katas')})")
        return run

    def log(self, message: str) -> None:
        print(message, flush=True)

    def plot_path(self, name: str) -> Path:
        path = self.out_dir / name
        self.artifacts.append(str(path))
        return path

    def _install_unfinished_kata_hook(self) -> None:
        """An uncaught NotImplementedError anywhere in the script ends with one line and no metric."""
        previous = sys.excepthook

        def hook(kind, err, tb):
            if issubclass(kind, NotImplementedError):
                self.not_implemented(err)
            else:
                previous(kind, err, tb)

        sys.excepthook = hook

    def not_implemented(self, err: BaseException) -> int:
        """One line naming the unfinished kata instead of a traceback storm; no metric (never a pass)."""
        where = ""
        for frame in reversed(traceback.extract_tb(err.__traceback__)):
            path = Path(frame.filename)
            if path.parent.name[:2].isdigit():
                where = f" in {path.parent.parent.name}/{path.parent.name}/{path.name} (module {path.parent.name})"
                break
        self.log(f"not implemented yet{where}: {err}. Finish that kata (`kata check`), then run this milestone again.")
        return self.finish(None, {"error": f"{type(err).__name__}: {err}"})

    def finish(self, value: float | None, details: dict | None = None, target: float | None = None) -> int:
        """Print the verdict, write the result file, return the exit code (0 = target met).

        value None means nothing was measured (an unfinished kata): it never passes.
        target: a script's own bound instead of the manifest's (e.g. a --quick CI recipe); the
        direction is always the manifest's goal. The grader ignores both: it compares the value
        with the manifest (grading/runner.py).
        """
        milestone = self.milestone if target is None else dataclasses.replace(self.milestone, target=float(target))
        passed = milestone.passes(value)
        elapsed = time.perf_counter() - self.started
        verdict = "PASSED" if passed else "MISSED"
        shown = "not measured" if value is None else f"{value:.4f}"
        whose = "" if target is None else ", this recipe's own bound"
        self.log(f"{verdict}: {milestone.metric} = {shown} (target: {milestone.target_text()}{whose})"
                 f" in {elapsed:.1f} s")
        result = {
            "milestone": milestone.slug,
            "metric": milestone.metric,
            "value": None if value is None else float(value),
            "target": milestone.target,
            "goal": milestone.goal,
            "passed": passed,
            "seconds": round(elapsed, 3),
            "artifacts": self.artifacts,
            "details": details or {},
        }
        if self.args.result_json:
            Path(self.args.result_json).write_text(json.dumps(result, indent=2))
        return 0 if passed else 1

    def data_missing(self, name: str, err: object) -> int:
        """No data, no verdict: say so plainly, write a result with no value, return exit code 2.

        The grader reports the milestone as "data missing" and leaves it out of the score (it is
        never passed); `python -m tinytorch.datasets NAME` or --data-dir brings the data.
        """
        self.log(f"data missing: {name} is not available here, so this milestone was not run. {err}")
        result = {"milestone": self.milestone.slug, "metric": self.milestone.metric, "value": None,
                  "target": self.milestone.target, "goal": self.milestone.goal, "passed": False,
                  "status": "data_missing", "seconds": round(time.perf_counter() - self.started, 3),
                  "artifacts": [], "details": {"data_missing": name, "message": str(err)}}
        if self.args.result_json:
            Path(self.args.result_json).write_text(json.dumps(result, indent=2))
        return 2



# -- reporting shared by the image classifiers (1986 MLP, 1998 LeNet-5 and CIFAR CNN) -------------


class EpochProgress:
    """One epoch's progress line: redrawn on a terminal, four plain lines in a log file.

        progress = EpochProgress(epoch, epochs, steps_per_epoch)
        progress.update(step, seen, mean_loss)     # after each step
        progress.done()                            # before the epoch's summary line
    """

    def __init__(self, epoch: int, epochs: int, steps: int, redraw_every: int = 20):
        self.epoch, self.epochs, self.steps, self.redraw_every = epoch, epochs, steps, redraw_every
        self.interactive = sys.stdout.isatty()
        self.quarters = {max(1, steps * k // 4) for k in (1, 2, 3)}
        self.started = time.perf_counter()

    def update(self, step: int, seen: int, mean_loss: float) -> None:
        show = step % self.redraw_every == 0 or step == self.steps if self.interactive else step in self.quarters
        if not show:
            return
        done = step / self.steps
        rate = seen / max(time.perf_counter() - self.started, 1e-9)
        line = (f"  epoch {self.epoch}/{self.epochs} [{'#' * int(24 * done):<24}] {100 * done:5.1f}%"
                f"  loss {mean_loss:.4f}  {rate:,.0f} images/s")
        print(f"\r{line}" if self.interactive else line, end="" if self.interactive else "\n", flush=True)

    def done(self) -> float:
        """Clears a redrawn bar; returns the epoch's seconds so far."""
        if self.interactive:
            print("\r" + " " * 90 + "\r", end="")
        return time.perf_counter() - self.started


def confusion_matrix(labels, predictions, classes: int = 10):
    """(classes, classes) int64 counts: row = true class, column = predicted; and per-class accuracy."""
    import numpy as np

    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (np.asarray(labels), np.asarray(predictions)), 1)
    return confusion, confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)


def save_classifier_figures(run: MilestoneRun, history: dict, steps_per_epoch: int, confusion, *, title: str,
                            class_names=None, train_label: str = "train") -> None:
    """training_curve.png (loss per step and per epoch; train/test accuracy per epoch against the
    target) and confusion_matrix.png. Plotting is a bonus: without matplotlib, one line says so."""
    import numpy as np

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        run.log(f"(no figures: {err})")
        return
    epochs_axis = np.arange(1, len(history["epoch_loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    steps = np.arange(1, len(history["step_loss"]) + 1) / steps_per_epoch
    left.plot(steps, history["step_loss"], lw=0.5, alpha=0.5, label="training loss (per step)")
    left.plot(epochs_axis, history["epoch_loss"], "o-", label="training loss (epoch mean)")
    left.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title=f"{title}: training loss")
    left.legend()
    right.plot(epochs_axis, history["train_accuracy"], "o-", label=train_label)
    right.plot(epochs_axis, history["test_accuracy"], "s-", label="test")
    right.axhline(run.milestone.target, color="gray", ls="--", label=f"target {run.milestone.target:g}")
    right.set(xlabel="epoch", ylabel="accuracy", title=f"{title}: accuracy")
    right.legend()
    fig.tight_layout()
    fig.savefig(run.plot_path("training_curve.png"), dpi=120)
    plt.close(fig)

    classes = len(confusion)
    names = list(class_names) if class_names is not None else [str(c) for c in range(classes)]
    accuracy = confusion.trace() / max(confusion.sum(), 1)
    fig, ax = plt.subplots(figsize=(6.5, 6) if class_names is not None else (5.5, 5))
    image = ax.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                color="white" if count > confusion.max() / 2 else "black")
    ax.set_xticks(range(classes), names, rotation=45 if class_names is not None else 0)
    ax.set_yticks(range(classes), names)
    ax.set(xlabel="predicted", ylabel="true class", title=f"{title}: test confusion (accuracy {accuracy:.2%})")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(run.plot_path("confusion_matrix.png"), dpi=120)
    plt.close(fig)
