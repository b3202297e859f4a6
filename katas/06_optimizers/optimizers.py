# KATA: replace every `raise NotImplementedError` below with your implementation.
# Generated from reference/06_optimizers/optimizers.py by `kata stubs`; your edits are never overwritten.
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
        raise NotImplementedError('Optimizer.__init__: your turn - see the TODOs above')

    def _params(self) -> list[Tensor]:
        """Every parameter, in group order (state_dict numbers them in this order)."""
        return [p for group in self.param_groups for p in group["params"]]

    def step(self) -> None:
        """Update every parameter that has a .grad (parameters with grad None are skipped)."""
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: .grad = None (default, torch's) or fill the existing grads with 0."""
        raise NotImplementedError('Optimizer.zero_grad: your turn - see the TODOs above')

    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {name: copy}}, "param_groups": [{hyperparameters..., "params": [indices]}]}.

        Parameters are referred to by their position (0, 1, ... over all groups) as in torch, so the
        dict can be saved to a file and loaded into an optimizer built over a fresh model.
        Everything is copied: later steps never change a saved state.
        """
        raise NotImplementedError('Optimizer.state_dict: your turn - see the TODOs above')

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
        raise NotImplementedError('Optimizer.load_state_dict: your turn - see the TODOs above')

    def state_nbytes(self) -> int:
        """Bytes held by the optimizer's state arrays (momentum buffers, Adam's moments...)."""
        raise NotImplementedError('Optimizer.state_nbytes: your turn - see the TODOs above')

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
        raise NotImplementedError('SGD.__init__: your turn - see the TODOs above')

    def step(self) -> None:
        # TODO: for each group and each parameter with a grad, apply the update above to p.data in
        #       place. The momentum buffer lives in self.state[p]["momentum_buffer"] (a copy of g on
        #       the first step). Never rebind p.data.
        raise NotImplementedError('SGD.step: your turn - see the TODOs above')


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
        raise NotImplementedError('Adam.__init__: your turn - see the TODOs above')

    def step(self) -> None:
        # TODO: 1. For each parameter with a grad: lazily create state {"step": 0, "exp_avg": zeros,
        #          "exp_avg_sq": zeros (+ "max_exp_avg_sq" with amsgrad)} in the parameter's dtype.
        # TODO: 2. Weight decay: decoupled (AdamW): p *= 1 - lr * weight_decay; else g = g + wd * p.
        # TODO: 3. Update m and v IN PLACE (m *= beta1; m += (1 - beta1) * g ...), then the parameter.
        #          Work in the parameter's dtype: Python floats never upcast float32 arrays. One
        #          scratch array (np.multiply(..., out=scratch)) is all the temporary memory needed.
        raise NotImplementedError('Adam.step: your turn - see the TODOs above')


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): p *= 1 - lr * weight_decay
    before the Adam update, instead of adding weight_decay * p to the gradient. Default 1e-2.
    """

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
