"""Module 06 - Optimizers: turn gradients into better parameters.

After ``loss.backward()`` every parameter holds ``.grad``; an optimizer updates
the parameter values IN PLACE from those gradients (and from its own per-
parameter state, e.g. momentum). Names, arguments, formulas and error messages
follow ``torch.optim``, step for step:

    Optimizer(params, defaults)   param_groups, state, step(), zero_grad(set_to_none=True),
                                  state_dict() / load_state_dict(), state_nbytes()
    SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)
    Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)
    AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)

`params` is an iterable of Parameters (e.g. ``model.parameters()``) or of
dicts ``{"params": [...], "lr": ...}`` (parameter groups with their own
hyperparameters, as in torch). Learning-rate schedulers (module 07) change
``group["lr"]`` between steps.

Updates never build a graph: they work on the numpy arrays (``p.data``) with
in-place operations, so a parameter's array object never changes (a Module's
load_state_dict and a checkpoint keep pointing at it) and no memory is
allocated that is not needed.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Iterable

import numpy as np

from tinytorch.tensor import Tensor


class Optimizer:
    """Base class: holds parameter groups and per-parameter state; subclasses implement step().

    param_groups: list of dicts, each {"params": [Tensor, ...], <hyperparameter>: value, ...};
                  missing hyperparameters are filled from `defaults`.
    state:        {parameter: {name: np.ndarray or number}} - created lazily by step().
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        # TODO: 1. params = list(params); empty -> ValueError("optimizer got an empty parameter list").
        # TODO: 2. If the items are dicts they are groups, else one group {"params": params}.
        # TODO: 3. Each group: copy it, fill missing keys from defaults, check every param is a Tensor
        #          (TypeError naming the type, e.g. "... one of the params is ndarray") and that no
        #          parameter appears twice (torch's ValueError: "some parameters appear in more than
        #          one parameter group").
        # TODO: 4. self.defaults = defaults; self.param_groups = [...]; self.state = {}.
        # BEGIN SOLUTION
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        seen: set[int] = set()
        for group in groups:
            group = dict(group)
            members = group["params"]
            group["params"] = [members] if isinstance(members, Tensor) else list(members)
            for p in group["params"]:
                if not isinstance(p, Tensor):
                    raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
                if id(p) in seen:
                    raise ValueError("some parameters appear in more than one parameter group")
                seen.add(id(p))
            for key, value in self.defaults.items():
                group.setdefault(key, value)
            self.param_groups.append(group)
        # END SOLUTION

    def _params(self) -> list[Tensor]:
        """Every parameter, in group order (state_dict numbers them in this order)."""
        return [p for group in self.param_groups for p in group["params"]]

    def step(self) -> None:
        """Update every parameter that has a .grad (parameters with grad None are skipped)."""
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: .grad = None (default, torch's) or fill the existing grads with 0."""
        # BEGIN SOLUTION
        for p in self._params():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data[...] = 0
        # END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {name: copy}}, "param_groups": [{hyperparameters..., "params": [indices]}]}.

        Parameters are referred to by their position (0, 1, ... over all groups) as in torch, so the
        dict can be saved to a file and loaded into an optimizer built over a fresh model.
        Everything is copied: later steps never change a saved state.
        """
        # BEGIN SOLUTION
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {
            index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for p, s in self.state.items()
        }
        groups = [{**{k: copy.deepcopy(v) for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        return {"state": state, "param_groups": groups}
        # END SOLUTION

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by state_dict() (copied in).

        The number of groups and of parameters per group must match (ValueError otherwise), and so
        must every state array's shape (ValueError naming the parameter index).
        """
        # TODO: 1. Check the group count ("... parameter groups") and each group's size (torch's
        #          "... doesn't match the size of optimizer's group").
        # TODO: 2. Restore the state by parameter index; an array whose shape differs from its
        #          parameter's is a ValueError naming both: "state 'momentum_buffer' of parameter 1
        #          has shape (2,), the parameter has shape (4,)". Copy arrays in the parameter's dtype.
        # TODO: 3. Update each group's hyperparameters (everything but "params").
        # BEGIN SOLUTION
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups,"
                             f" the optimizer has {len(self.param_groups)}")
        for saved, group in zip(saved_groups, self.param_groups):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of"
                                 f" optimizer's group ({len(saved['params'])} vs {len(group['params'])} parameters)")
        params = self._params()
        state: dict[Tensor, dict[str, Any]] = {}
        for key, values in state_dict["state"].items():
            p = params[int(key)]
            restored = {}
            for name, value in values.items():
                if isinstance(value, np.ndarray) and value.ndim and value.shape != p.shape:
                    raise ValueError(f"state {name!r} of parameter {key} has shape {value.shape},"
                                     f" the parameter has shape {p.shape}")
                restored[name] = value.astype(p.dtype) if isinstance(value, np.ndarray) and value.ndim else value
            state[p] = restored
        self.state = state
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        # END SOLUTION

    def state_nbytes(self) -> int:
        """Bytes held by the optimizer's state arrays (momentum buffers, Adam's moments...)."""
        # BEGIN SOLUTION
        return sum(v.nbytes for s in self.state.values() for v in s.values() if isinstance(v, np.ndarray))
        # END SOLUTION

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (torch.optim.SGD's exact update):

        g = grad + weight_decay * p
        if momentum:  buf = g (first step)  else  buf = momentum * buf + (1 - dampening) * g
                      g = g + momentum * buf (nesterov)  else  g = buf
        p = p - lr * g
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        # TODO: validate like torch (ValueError): "Invalid learning rate: {lr}" (lr < 0),
        #       "Invalid momentum value: {momentum}", "Invalid weight_decay value: {weight_decay}",
        #       "Nesterov momentum requires a momentum and zero dampening"; then call the base class.
        # BEGIN SOLUTION
        _check(lr >= 0.0, f"Invalid learning rate: {lr}")
        _check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check(not nesterov or (momentum > 0 and dampening == 0),
               "Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))
        # END SOLUTION

    def step(self) -> None:
        # TODO: for each group and each parameter with a grad, apply the update above to p.data in
        #       place. The momentum buffer lives in self.state[p]["momentum_buffer"] (a copy of g on
        #       the first step). Never rebind p.data.
        # BEGIN SOLUTION
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                if weight_decay:
                    g = g + weight_decay * p.data
                if momentum:
                    state = self.state.setdefault(p, {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype, copy=True)
                    else:
                        buf *= momentum
                        buf += (1 - dampening) * g
                    g = g + momentum * buf if nesterov else buf
                p.data -= lr * g
        # END SOLUTION


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), torch.optim.Adam's exact update, with L2 weight decay added to g:

        g = grad + weight_decay * p                     (AdamW instead decays p directly)
        m = beta1 * m + (1 - beta1) * g                 exp_avg
        v = beta2 * v + (1 - beta2) * g * g             exp_avg_sq
        v_max = max(v_max, v)                           (amsgrad only; used instead of v below)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    with t the parameter's step count (state "step", starting at 1).
    """

    decoupled_weight_decay = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        # TODO: validate like torch: "Invalid learning rate: {lr}", "Invalid epsilon value: {eps}",
        #       "Invalid beta parameter at index 0: {betas[0]}" (and 1) for betas outside [0, 1),
        #       "Invalid weight_decay value: {weight_decay}"; then call the base class.
        # BEGIN SOLUTION
        _check(lr >= 0.0, f"Invalid learning rate: {lr}")
        _check(eps >= 0.0, f"Invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            _check(0.0 <= beta < 1.0, f"Invalid beta parameter at index {i}: {beta}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))
        # END SOLUTION

    def step(self) -> None:
        # TODO: 1. For each parameter with a grad: lazily create state {"step": 0, "exp_avg": zeros,
        #          "exp_avg_sq": zeros (+ "max_exp_avg_sq" with amsgrad)} in the parameter's dtype.
        # TODO: 2. Weight decay: decoupled (AdamW): p *= 1 - lr * weight_decay; else g = g + wd * p.
        # TODO: 3. Update m and v IN PLACE (m *= beta1; m += (1 - beta1) * g ...), then the parameter.
        #          Work in the parameter's dtype: Python floats never upcast float32 arrays. One
        #          scratch array (np.multiply(..., out=scratch)) is all the temporary memory needed.
        # BEGIN SOLUTION
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {"step": 0, "exp_avg": np.zeros(p.shape, p.dtype),
                                             "exp_avg_sq": np.zeros(p.shape, p.dtype)}
                    if amsgrad:
                        state["max_exp_avg_sq"] = np.zeros(p.shape, p.dtype)
                state["step"] += 1
                step = state["step"]
                if weight_decay:
                    if self.decoupled_weight_decay:
                        p.data *= 1 - lr * weight_decay
                    else:
                        g = g + weight_decay * p.data
                m, v = state["exp_avg"], state["exp_avg_sq"]
                scratch = np.multiply(g, 1 - beta1, out=np.empty_like(m))  # the one temporary array
                m *= beta1
                m += scratch
                np.multiply(g, g, out=scratch)
                scratch *= 1 - beta2
                v *= beta2
                v += scratch
                if amsgrad:
                    np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                    v = state["max_exp_avg_sq"]
                # torch's lr / (1 - beta1^t) * m / (sqrt(v) / c2 + eps), c2 = sqrt(1 - beta2^t), with top and
                # bottom multiplied by c2 (as in the Adam paper): every bias correction lands in one scalar,
                # and the per-element work is one pass shorter (12 instead of 13 over each array).
                c2 = math.sqrt(1 - beta2**step)
                denom = np.sqrt(v, out=scratch)
                denom += eps * c2
                np.divide(m, denom, out=denom)
                denom *= lr * c2 / (1 - beta1**step)
                p.data -= denom
        # END SOLUTION


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): p *= 1 - lr * weight_decay
    before the Adam update, instead of adding weight_decay * p to the gradient. Default 1e-2.
    """

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
