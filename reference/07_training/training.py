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
    # BEGIN SOLUTION
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        norms = np.array([np.abs(g.data).max(initial=0.0) for g in grads], dtype=np.float64)
        total = float(norms.max())
    else:
        norms = np.array([np.sum(np.abs(g.data.astype(np.float64)) ** norm_type) ** (1.0 / norm_type)
                          for g in grads])
        total = float(np.sum(norms**norm_type) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is"
                           " non-finite, so it cannot be clipped.")
    coef = min(1.0, max_norm / (total + 1e-6))
    for g in grads:
        g.data *= coef
    return Tensor(np.asarray(total, dtype=grads[0].dtype))
    # END SOLUTION


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
        # BEGIN SOLUTION
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()
        # END SOLUTION

    def lr_at(self, epoch: int) -> list[float]:
        """The learning rate of each group at `epoch` (epoch 0 = before the first step())."""
        raise NotImplementedError(f"{type(self).__name__} must define lr_at()")

    def step(self) -> None:
        # BEGIN SOLUTION
        self.last_epoch += 1
        lrs = self.lr_at(self.last_epoch)
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)
        # END SOLUTION

    def get_last_lr(self) -> list[float]:
        """The learning rates the last step() set."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (nested schedulers as their own state_dict)."""
        # BEGIN SOLUTION
        return {key: (value.state_dict() if isinstance(value, LRScheduler) else value)
                for key, value in self.__dict__.items() if key != "optimizer"}
        # END SOLUTION

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # BEGIN SOLUTION
        for key, value in state_dict.items():
            current = self.__dict__.get(key)
            if isinstance(current, LRScheduler):
                current.load_state_dict(value)
            else:
                self.__dict__[key] = value
        # END SOLUTION


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size): decay by gamma every step_size epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int) -> list[float]:
        # BEGIN SOLUTION
        return [base * self.gamma ** (epoch // self.step_size) for base in self.base_lrs]
        # END SOLUTION


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
        # BEGIN SOLUTION
        factor = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * factor for base in self.base_lrs]
        # END SOLUTION


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
        # BEGIN SOLUTION
        if epoch < self.warmup_steps:
            factor = self.start_factor + (1.0 - self.start_factor) * epoch / self.warmup_steps
            return [base * factor for base in self.base_lrs]
        if self.inner is None:
            return list(self.base_lrs)
        self.inner.last_epoch = epoch - self.warmup_steps
        return self.inner.lr_at(epoch - self.warmup_steps)
        # END SOLUTION


# ----------------------------------------------------------------------------
# Early stopping, progress, metrics
# ----------------------------------------------------------------------------


class EarlyStopping:
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs.

    mode "min": improvement means value < best - min_delta; "max": value > best + min_delta.
    step(value) records one epoch and returns True when training should stop.
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, monitor: str = "val_loss", mode: str = "min"):
        # BEGIN SOLUTION
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        if not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative integer, got {patience!r}")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta}")
        self.patience, self.min_delta, self.monitor, self.mode = patience, min_delta, monitor, mode
        self.best: float | None = None
        self.best_epoch = -1
        self.bad_epochs = 0
        self.epochs_seen = 0
        self.should_stop = False
        # END SOLUTION

    def step(self, value: float) -> bool:
        # BEGIN SOLUTION
        value = float(value)
        improved = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        )
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, self.epochs_seen, 0
        else:
            self.bad_epochs += 1
        self.epochs_seen += 1
        self.should_stop = self.bad_epochs > self.patience
        return self.should_stop
        # END SOLUTION

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
        # BEGIN SOLUTION
        values = " ".join(f"{k}={v:.4f}" for k, v in self.values.items())
        if self.total:
            done = min(self.count, self.total)
            filled = int(self.width * done / self.total)
            arrow = ">" if filled < self.width else ""
            bar = "=" * filled + arrow + "." * (self.width - filled - len(arrow))
            line = f"{self.prefix} [{bar}] {done}/{self.total}"
        else:
            line = f"{self.prefix} {self.count}"
        return (line + " " + values).strip()
        # END SOLUTION

    def update(self, n: int = 1, **values: float) -> None:
        # BEGIN SOLUTION
        self.count += n
        self.values.update(values)
        now = time.perf_counter()
        if now - self._last_draw >= self.min_interval or self.count == self.total:
            self.stream.write("\r" + self.render())
            self.stream.flush()
            self._last_draw = now
        # END SOLUTION

    def close(self) -> None:
        self.stream.write("\r" + self.render() + "\n")
        self.stream.flush()


def accuracy(output: Tensor, target: Any, threshold: float = 0.0) -> float:
    """Fraction of correct predictions.

    output (N, C) with C > 1: predicted class = argmax over dim 1, target (N,) class indices.
    output (N,) or (N, 1): binary, predicted 1 where output > threshold (0 for logits, 0.5 for
    probabilities); target of the same number of elements holding 0/1.
    """
    # BEGIN SOLUTION
    out = np.asarray(getattr(output, "data", output))
    tgt = np.asarray(getattr(target, "data", target))
    if out.ndim >= 2 and out.shape[1] > 1:
        predicted = out.argmax(axis=1)
    else:
        predicted = (out.reshape(tgt.shape) > threshold).astype(tgt.dtype)
    return float(np.mean(predicted == tgt)) if tgt.size else 0.0
    # END SOLUTION


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
    # BEGIN SOLUTION
    arrays: dict[str, np.ndarray] = {f"model/{k}": v for k, v in model.state_dict().items()}
    meta: dict[str, Any] = {"epoch": int(epoch), "extra": extra, "generators": _generator_states(model)}
    if optimizer is not None:
        opt_state = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, values in opt_state["state"].items():
            for name, value in values.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optimizer/{index}/{name}"] = value
                else:
                    scalars.setdefault(str(index), {})[name] = value
        meta["param_groups"] = opt_state["param_groups"]
        meta["scalar_state"] = scalars
    if scheduler is not None:
        meta["scheduler"] = scheduler.state_dict()
    arrays["meta"] = np.array(json.dumps(meta))
    if hasattr(path, "write"):
        np.savez(path, **arrays)
    else:
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
    # END SOLUTION


def load_checkpoint(path: Any, model: Module, optimizer: Optimizer | None = None, scheduler: Any = None,
                    restore_rng: bool = True) -> dict[str, Any]:
    """Restore what save_checkpoint wrote (model, optimizer, scheduler, random generators).

    Returns {"epoch": int, **extra}. Loading an optimizer or scheduler the file does not
    contain is a KeyError naming it.
    """
    # BEGIN SOLUTION
    with np.load(path, allow_pickle=False) as data:
        files = {name: data[name] for name in data.files}
    meta = json.loads(str(files.pop("meta")))
    model.load_state_dict({k[len("model/"):]: v for k, v in files.items() if k.startswith("model/")})
    if optimizer is not None:
        if "param_groups" not in meta:
            raise KeyError("the checkpoint holds no optimizer state")
        state: dict[int, dict[str, Any]] = {}
        for key, value in files.items():
            if key.startswith("optimizer/"):
                _, index, name = key.split("/", 2)
                state.setdefault(int(index), {})[name] = value
        for index, values in meta["scalar_state"].items():
            state.setdefault(int(index), {}).update(values)
        groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    if scheduler is not None:
        if "scheduler" not in meta:
            raise KeyError("the checkpoint holds no scheduler state")
        scheduler.load_state_dict(meta["scheduler"])
    if restore_rng:
        for name, bit_state in meta["generators"].items():
            if name == "<default>":
                _layers.default_generator().bit_generator.state = bit_state
            else:
                module = dict(model.named_modules()).get(name)
                if module is not None and isinstance(module.__dict__.get("generator"), np.random.Generator):
                    module.generator.bit_generator.state = bit_state
    return {"epoch": meta["epoch"], **meta["extra"]}
    # END SOLUTION


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
        # BEGIN SOLUTION
        if scheduler_interval not in ("epoch", "batch"):
            raise ValueError(f"Trainer: scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
        if seed is not None:
            _layers.manual_seed(seed)
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.scheduler_interval = scheduler, scheduler_interval
        self.metrics = dict(metrics or {})
        self.max_grad_norm = max_grad_norm
        self.early_stopping = early_stopping
        self.progress, self.stream = progress, stream
        self.history: dict[str, list[float]] = {}
        self.epoch = 0
        self.stopped_early = False
        # END SOLUTION

    # -- one batch, one epoch ------------------------------------------------

    def train_step(self, x: Any, y: Any) -> tuple[float, Tensor]:
        """zero_grad, forward, loss, backward, (clip), step; returns (loss value, detached output)."""
        # BEGIN SOLUTION
        x, y = _as_tensor(x), _as_tensor(y)
        self.optimizer.zero_grad()
        output = self.model(x)
        loss = self.loss_fn(output, y)
        loss.backward()
        if self.max_grad_norm is not None:
            clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "batch":
            self.scheduler.step()
        return float(loss.item()), output.detach()
        # END SOLUTION

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
        # BEGIN SOLUTION
        self.stopped_early = False
        while self.epoch < epochs:
            logs = {"lr": float(self.optimizer.param_groups[0]["lr"])}
            logs.update({f"train_{k}": v for k, v in self.train_epoch(train_data).items()})
            if val_data is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(val_data).items()})
            for key, value in logs.items():
                self.history.setdefault(key, []).append(value)
            self.epoch += 1
            if self.scheduler is not None and self.scheduler_interval == "epoch":
                self.scheduler.step()
            if self.progress:
                summary = " ".join(f"{k}={v:.4f}" for k, v in logs.items())
                (self.stream or sys.stderr).write(f"epoch {self.epoch}/{epochs}: {summary}\n")
            if self.early_stopping is not None:
                monitor = self.early_stopping.monitor
                if monitor not in logs:
                    raise KeyError(f"EarlyStopping monitors {monitor!r}, but the epoch logs hold {sorted(logs)}")
                if self.early_stopping.step(logs[monitor]):
                    self.stopped_early = True
                    break
        return self.history
        # END SOLUTION

    # -- checkpoints ---------------------------------------------------------

    def save_checkpoint(self, path: Any) -> None:
        """Everything needed to resume exactly: model, optimizer, scheduler, epoch, history,
        early stopping and the random generators."""
        # BEGIN SOLUTION
        save_checkpoint(path, self.model, self.optimizer, self.scheduler, self.epoch, history=self.history,
                        early_stopping=None if self.early_stopping is None else self.early_stopping.state_dict())
        # END SOLUTION

    def load_checkpoint(self, path: Any) -> None:
        # BEGIN SOLUTION
        extra = load_checkpoint(path, self.model, self.optimizer, self.scheduler)
        self.epoch = extra["epoch"]
        self.history = {k: list(v) for k, v in extra["history"].items()}
        if self.early_stopping is not None and extra.get("early_stopping") is not None:
            self.early_stopping.load_state_dict(extra["early_stopping"])
        # END SOLUTION
