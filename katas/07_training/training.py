# KATA: replace every `raise NotImplementedError` below with your implementation.
# Generated from reference/07_training/training.py by `kata stubs`; your edits are never overwritten.
"""Module 07 - Training: the loop that turns modules 01-06 into a model that learns.

    clip_grad_norm_(parameters, max_norm, norm_type=2.0)   torch.nn.utils.clip_grad_norm_
    StepLR, CosineAnnealingLR                               torch.optim.lr_scheduler values
    LinearWarmup(scheduler_or_optimizer, warmup_steps, start_factor=0.1)
    EarlyStopping(patience, min_delta, monitor="val_loss", mode="min")
    ProgressBar(total, stream=..., width=30)                a text bar, standard library only
    accuracy(output, target)                                a metric
    save_checkpoint(path, ...) / load_checkpoint(path, ...) np.savez: model + optimizer + scheduler
                                                            + epoch + history + random state
    Trainer(model, optimizer, loss_fn, ...)                 fit / train_epoch / evaluate / checkpoints

Data is any iterable of (x, y) batches (a list, a generator factory, module 08's
DataLoader later): x and y may be Tensors or numpy arrays. Passing a callable
``data(epoch)`` instead gives a fresh iterable per epoch (e.g. a seeded shuffle),
which keeps a resumed run identical to an uninterrupted one.

Determinism: every random choice (initialisation, Dropout) comes from numpy
Generators (module 03's default one unless a layer has its own); checkpoints save
their states, so training resumed from a checkpoint equals uninterrupted
training bit for bit.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, Callable, Iterable, TextIO

import numpy as np

from tinytorch import layers as _layers
from tinytorch.autograd import no_grad
from tinytorch.layers import Module
from tinytorch.optimizers import Optimizer
from tinytorch.tensor import Tensor

# ----------------------------------------------------------------------------
# Gradient clipping
# ----------------------------------------------------------------------------


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their global norm is at most max_norm (in place).

    total = || (||g_1||, ..., ||g_k||) ||  over parameters whose .grad is not None (norm_type p,
    or float("inf") for the max |g|). Every grad is multiplied by min(1, max_norm / (total + 1e-6)),
    which keeps the update's DIRECTION and caps its size. Returns total (before clipping) as a
    0-d Tensor in the gradients' dtype (0.0 if there are no gradients). A non-finite total is a
    RuntimeError when error_if_nonfinite.
    """
    # TODO: 1. Collect the grads (a single Tensor counts as [tensor]); none -> Tensor(0.0).
    # TODO: 2. Per-gradient norms (np.abs(g).max() for inf, else sum(|g|^p)^(1/p), in float64),
    #          then the norm of the norms.
    # TODO: 3. Non-finite check; coef = min(1, max_norm / (total + 1e-6)); g.data *= coef in place.
    raise NotImplementedError('clip_grad_norm_: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Learning-rate schedules
# ----------------------------------------------------------------------------


class LRScheduler:
    """Base class (torch's protocol): set each param group's lr from the epoch counter.

    On construction every group gets "initial_lr" (its lr now, unless already set), base_lrs
    remembers them, last_epoch starts at -1 and step() is called once (epoch 0).
    step(): last_epoch += 1; group["lr"] = lr_at(last_epoch)[i]. Subclasses give lr_at in
    closed form. state_dict()/load_state_dict() save everything but the optimizer.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        raise NotImplementedError('LRScheduler.__init__: your turn - see the TODOs above')

    def lr_at(self, epoch: int) -> list[float]:
        """The learning rate of each group at `epoch` (epoch 0 = before the first step())."""
        raise NotImplementedError(f"{type(self).__name__} must define lr_at()")

    def step(self) -> None:
        raise NotImplementedError('LRScheduler.step: your turn - see the TODOs above')

    def get_last_lr(self) -> list[float]:
        """The learning rates the last step() set."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (nested schedulers as their own state_dict)."""
        raise NotImplementedError('LRScheduler.state_dict: your turn - see the TODOs above')

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        raise NotImplementedError('LRScheduler.load_state_dict: your turn - see the TODOs above')


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size): decay by gamma every step_size epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        raise NotImplementedError('StepLR.lr_at: your turn - see the TODOs above')


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    Falls from base_lr to eta_min over T_max epochs (SGDR without restarts; beyond T_max it
    rises again, as torch's does).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if not isinstance(T_max, int) or T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, got {T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        raise NotImplementedError('CosineAnnealingLR.lr_at: your turn - see the TODOs above')


class LinearWarmup(LRScheduler):
    """Linear warmup in front of another schedule (or of a constant lr when given an optimizer).

    For t < warmup_steps: lr = base_lr * (start_factor + (1 - start_factor) * t / warmup_steps),
    from start_factor * base_lr up towards base_lr (torch's LinearLR with end_factor=1).
    From t = warmup_steps on: the wrapped scheduler's lr at t - warmup_steps (it starts then).
    warmup_steps >= 1 and 0 < start_factor <= 1, else ValueError naming the value.
    """

    def __init__(self, scheduler: LRScheduler | Optimizer, warmup_steps: int, start_factor: float = 0.1):
        if not isinstance(warmup_steps, int) or warmup_steps < 1:
            raise ValueError(f"LinearWarmup: warmup_steps must be a positive integer, got {warmup_steps!r}")
        if not 0.0 < start_factor <= 1.0:
            raise ValueError(f"LinearWarmup: start_factor must be in (0, 1], got {start_factor}")
        self.inner = scheduler if isinstance(scheduler, LRScheduler) else None
        optimizer = scheduler.optimizer if isinstance(scheduler, LRScheduler) else scheduler
        self.warmup_steps, self.start_factor = warmup_steps, start_factor
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> list[float]:
        # TODO: during warmup scale the base lrs; afterwards ask the inner scheduler (and keep its
        #       last_epoch at epoch - warmup_steps so its own state stays meaningful).
        raise NotImplementedError('LinearWarmup.lr_at: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Early stopping, progress, metrics
# ----------------------------------------------------------------------------


class EarlyStopping:
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs.

    mode "min": improvement means value < best - min_delta; "max": value > best + min_delta.
    step(value) records one epoch and returns True when training should stop.
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, monitor: str = "val_loss", mode: str = "min"):
        raise NotImplementedError('EarlyStopping.__init__: your turn - see the TODOs above')

    def step(self, value: float) -> bool:
        raise NotImplementedError('EarlyStopping.step: your turn - see the TODOs above')

    def state_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class ProgressBar:
    """A one-line text progress bar (standard library only):  `epoch 2 [=======>......] 14/20 loss=0.3120`.

    total: the number of steps, or None when unknown (then only the count is shown).
    update(n=1, **values) advances and redraws (with "\\r"); close() ends the line.
    Redraws at most every `min_interval` seconds, except the last one.
    """

    def __init__(self, total: int | None = None, prefix: str = "", width: int = 30, stream: TextIO | None = None,
                 min_interval: float = 0.1):
        self.total, self.prefix, self.width = total, prefix, width
        self.stream = sys.stderr if stream is None else stream
        self.min_interval = min_interval
        self.count = 0
        self.values: dict[str, float] = {}
        self._last_draw = -math.inf

    def render(self) -> str:
        """The current line, without the leading "\\r"."""
        raise NotImplementedError('ProgressBar.render: your turn - see the TODOs above')

    def update(self, n: int = 1, **values: float) -> None:
        raise NotImplementedError('ProgressBar.update: your turn - see the TODOs above')

    def close(self) -> None:
        self.stream.write("\r" + self.render() + "\n")
        self.stream.flush()


def accuracy(output: Tensor, target: Any, threshold: float = 0.0) -> float:
    """Fraction of correct predictions.

    output (N, C) with C > 1: predicted class = argmax over dim 1, target (N,) class indices.
    output (N,) or (N, 1): binary, predicted 1 where output > threshold (0 for logits, 0.5 for
    probabilities); target of the same number of elements holding 0/1.
    """
    raise NotImplementedError('accuracy: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------

_ARRAY_PREFIX = {"model": "model/", "optimizer": "optimizer/"}


def _generator_states(model: Module | None) -> dict[str, Any]:
    """The bit-generator states of the default generator and of every layer's own generator."""
    states = {"<default>": _layers.default_generator().bit_generator.state}
    if model is not None:
        for name, module in model.named_modules():
            gen = module.__dict__.get("generator")
            if isinstance(gen, np.random.Generator):
                states[name] = gen.bit_generator.state
    return states


def save_checkpoint(path: Any, model: Module, optimizer: Optimizer | None = None, scheduler: Any = None,
                    epoch: int = 0, **extra: Any) -> None:
    """Write one .npz file: arrays stored as arrays (exact), everything else as one JSON string.

    Keys: "model/<param name>", "optimizer/<index>/<state name>" for state arrays, and "meta":
    JSON with epoch, the optimizer's param_groups and scalar state (e.g. Adam's step), the
    scheduler's state_dict, the random generators' states and any JSON-able `extra` (history...).
    `path` may be a file name or a binary file object. No pickle anywhere.
    """
    # TODO: 1. arrays = {"model/" + name: value for the model's state_dict}.
    # TODO: 2. For optimizer.state_dict(): arrays under "optimizer/<i>/<name>", other values in meta.
    # TODO: 3. meta = {"epoch", "param_groups", "scalar_state", "scheduler", "generators", "extra"};
    #          arrays["meta"] = np.array(json.dumps(meta)); np.savez(file, **arrays).
    raise NotImplementedError('save_checkpoint: your turn - see the TODOs above')


def load_checkpoint(path: Any, model: Module, optimizer: Optimizer | None = None, scheduler: Any = None,
                    restore_rng: bool = True) -> dict[str, Any]:
    """Restore what save_checkpoint wrote (model, optimizer, scheduler, random generators).

    Returns {"epoch": int, **extra}. Loading an optimizer or scheduler the file does not
    contain is a KeyError naming it.
    """
    raise NotImplementedError('load_checkpoint: your turn - see the TODOs above')


# ----------------------------------------------------------------------------
# The Trainer
# ----------------------------------------------------------------------------


def _as_tensor(value: Any) -> Any:
    """numpy arrays and lists become Tensors (arrays keep their dtype); anything else passes through."""
    return Tensor(value) if isinstance(value, (np.ndarray, list)) else value


def _batch_size(x: Any) -> int:
    shape = getattr(x, "shape", ())
    return int(shape[0]) if len(shape) else 1


class Trainer:
    """fit(train_data, epochs, val_data) trains `model` and keeps a history.

    model:        a Module; loss_fn: loss(output, target) -> scalar Tensor (module 04's losses).
    optimizer:    a module 06 Optimizer over the model's parameters.
    scheduler:    optional; stepped after every epoch (scheduler_interval="epoch") or batch ("batch").
    metrics:      {name: fn(output, target) -> float}, averaged over samples like the loss.
    max_grad_norm: clip the global gradient norm before each step (None: no clipping).
    early_stopping: an EarlyStopping watching e.g. "val_loss" (or "train_loss").
    progress:     draw a ProgressBar per epoch and a summary line on `stream` (default stderr).
    seed:         if given, module 03's manual_seed(seed) is called first (Dropout masks...).

    history: {"train_loss": [...], "train_<metric>": [...], "val_loss": [...], "val_<metric>": [...],
              "lr": [...]} - one entry per epoch. `epoch` counts completed epochs.
    """

    def __init__(self, model: Module, optimizer: Optimizer, loss_fn: Callable[[Any, Any], Tensor], *,
                 scheduler: Any = None, scheduler_interval: str = "epoch",
                 metrics: dict[str, Callable[[Any, Any], float]] | None = None, max_grad_norm: float | None = None,
                 early_stopping: EarlyStopping | None = None, progress: bool = False, stream: TextIO | None = None,
                 seed: int | None = None):
        raise NotImplementedError('Trainer.__init__: your turn - see the TODOs above')

    # -- one batch, one epoch ------------------------------------------------

    def train_step(self, x: Any, y: Any) -> tuple[float, Tensor]:
        """zero_grad, forward, loss, backward, (clip), step; returns (loss value, detached output)."""
        raise NotImplementedError('Trainer.train_step: your turn - see the TODOs above')

    def _run(self, data: Any, train: bool, prefix: str) -> dict[str, float]:
        """One pass over data; sample-weighted mean loss and metrics (given helper)."""
        self.model.train(train)
        batches = data(self.epoch) if callable(data) else data
        total = len(batches) if hasattr(batches, "__len__") else None
        bar = ProgressBar(total, prefix=prefix, stream=self.stream) if self.progress else None
        sums: dict[str, float] = {}
        count = 0
        for x, y in batches:
            if train:
                loss, output = self.train_step(x, y)
            else:
                with no_grad():
                    x, y = _as_tensor(x), _as_tensor(y)
                    output = self.model(x)
                    loss = float(self.loss_fn(output, y).item())
            n = _batch_size(x)
            count += n
            sums["loss"] = sums.get("loss", 0.0) + loss * n
            for name, fn in self.metrics.items():
                sums[name] = sums.get(name, 0.0) + float(fn(output, y)) * n
            if bar is not None:
                bar.update(loss=sums["loss"] / count)
        if bar is not None:
            bar.close()
        if count == 0:
            raise ValueError(f"{prefix}: the data produced no batches")
        return {name: value / count for name, value in sums.items()}

    def train_epoch(self, data: Any) -> dict[str, float]:
        """One training pass: {"loss": ..., <metric>: ...} averaged over samples."""
        return self._run(data, True, f"epoch {self.epoch + 1} train")

    def evaluate(self, data: Any) -> dict[str, float]:
        """One pass in eval mode without recording the graph (no_grad)."""
        return self._run(data, False, f"epoch {self.epoch + 1} eval")

    def fit(self, train_data: Any, epochs: int, val_data: Any = None) -> dict[str, list[float]]:
        """Train until `epochs` epochs are COMPLETED in total (a resumed trainer continues from its epoch).

        Per epoch: record lr, train, evaluate val_data (if any), append to history, step the
        scheduler (interval "epoch"), then ask early stopping (stops the loop when it says so).
        Returns the history.
        """
        # TODO: loop while self.epoch < epochs; history keys "train_loss", "train_<metric>",
        #       "val_loss", "val_<metric>", "lr"; self.epoch += 1 after each epoch.
        raise NotImplementedError('Trainer.fit: your turn - see the TODOs above')

    # -- checkpoints ---------------------------------------------------------

    def save_checkpoint(self, path: Any) -> None:
        """Everything needed to resume exactly: model, optimizer, scheduler, epoch, history,
        early stopping and the random generators."""
        raise NotImplementedError('Trainer.save_checkpoint: your turn - see the TODOs above')

    def load_checkpoint(self, path: Any) -> None:
        raise NotImplementedError('Trainer.load_checkpoint: your turn - see the TODOs above')
