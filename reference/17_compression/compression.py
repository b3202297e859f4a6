"""Module 17 - Compression: fewer weights, smaller students, lower rank.

Three ways to make a trained network cheaper, each checked against a precise statement:

* **Pruning** sets the least important weights to zero and keeps them there. A *mask* (1 = keep,
  0 = pruned) of the weight's shape and dtype says which; the names, arguments and rounding follow
  torch.nn.utils.prune:

      l1_unstructured(weight, amount) -> mask            the `amount` smallest |w| are pruned
      ln_structured(weight, amount, n, dim) -> mask      whole slices along `dim` with the smallest
                                                         L_n norm are pruned (rows, channels...)
      global_unstructured([(module, name), ...], amount) -> [mask, ...]
                                                         one magnitude ranking across all the tensors

  `amount` is an int (how many to prune, 0 <= amount <= size) or a float fraction in [0, 1]; a
  fraction becomes round(amount * size) with Python's round (half to even), exactly as torch.
  Ties: weights with equal importance are pruned in order of their flat (C-order) index, the
  lowest first (a stable sort); torch uses topk, whose order among ties is unspecified, so the
  checks only use distinct magnitudes.

* **Keeping masks applied**: an optimizer knows nothing about masks, and momentum or Adam would
  move a pruned weight away from 0 again. A `Pruner` remembers every (module, name, mask) and
  `pruner.apply()` - called after every `optimizer.step()` - multiplies each weight (and its
  gradient, if any) by its mask in place. Nothing of module 03 or 06 is patched.
  `pruner.remove()` forgets the masks (the zeros stay: pruning made permanent), `sparsity(x)`
  reports the fraction of zeros of a tensor or of every parameter of a model.

* **Gradual pruning** (Zhu & Gupta 2017): prune a little every `frequency` steps, following

      s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * frequency)) ** 3

  fast at first (many redundant weights), slowly near the end (let the network recover).

* **Knowledge distillation** (Hinton et al. 2015): a small *student* learns the teacher's softened
  output distribution:

      distillation_loss(s, t, T) = T^2 * KL(softmax(t / T) || softmax(s / T)), averaged over the batch

  equal to torch's F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T,
  built from module 02's softmax/log_softmax and Tensor arithmetic so that module 05 differentiates it.
  With alpha < 1 and labels: alpha * that + (1 - alpha) * cross_entropy(s, labels) (module 04).

* **Low-rank factorization**: W (out, in) ~ B @ A with B (out, r), A (r, in) from the SVD;
  low_rank_linear(linear, r) -> Sequential(Linear(in, r, bias=False), Linear(r, out)). By the
  Eckart-Young theorem it is the best rank-r approximation: ||W - B A||_F = sqrt(sum_{i>r} s_i^2).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

from tinytorch.activations import log_softmax, softmax
from tinytorch.layers import Linear, Module, Parameter, Sequential
from tinytorch.losses import cross_entropy
from tinytorch.tensor import Tensor

# ----------------------------------------------------------------------------
# Helpers (given)
# ----------------------------------------------------------------------------


def _values(weight: Any, what: str) -> np.ndarray:
    """The array behind a Tensor / Parameter / array / list; it must hold at least one element."""
    array = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{what}: expected a numeric tensor, got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{what}: the tensor is empty, there is nothing to prune")
    return array


def _ones_like(array: np.ndarray) -> np.ndarray:
    """A mask of 1s with the weight's shape, in the weight's float dtype (float32 for integer weights)."""
    return np.ones(array.shape, dtype=array.dtype if array.dtype.kind == "f" else np.float32)


def _check_amount(amount: Any, size: int, what: str) -> None:
    """torch.nn.utils.prune's validation: an int in [0, size] or a float in [0, 1] (bool is refused)."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"{what}: amount must be an int (a count) or a float (a fraction), got {amount!r}")
    if isinstance(amount, numbers.Integral):
        if amount < 0:
            raise ValueError(f"{what}: amount={amount} should either be a float in the range [0, 1] or a"
                             " non-negative integer")
        if amount > size:
            raise ValueError(f"{what}: amount={amount} should be smaller than the number of parameters to"
                             f" prune={size}")
    elif not 0.0 <= float(amount) <= 1.0:
        raise ValueError(f"{what}: amount={amount} should either be a float in the range [0, 1] or a"
                         " non-negative integer")


def _parameter(module: Any, name: str, what: str) -> Tensor:
    """module.<name> as a Tensor (a Parameter of a Linear, ...); anything else is an error naming it."""
    if not isinstance(module, Module):
        raise TypeError(f"{what}: expected (module, name) pairs with a tinytorch Module, got"
                        f" {type(module).__name__}")
    param = getattr(module, name, None)
    if not isinstance(param, Tensor):
        raise ValueError(f"{what}: {type(module).__name__} has no tensor parameter {name!r}")
    return param


# ----------------------------------------------------------------------------
# Masks
# ----------------------------------------------------------------------------


def amount_to_count(amount: Any, size: int, what: str = "prune") -> int:
    """How many of `size` elements (or slices) `amount` prunes: amount itself for an int, else
    round(amount * size) with Python's round (half to even: 0.5 * 5 = 2.5 -> 2), as torch's
    `_compute_nparams_toprune`. Invalid amounts are errors naming the value (_check_amount)."""
    _check_amount(amount, size, what)
    # TODO: an Integral amount is the count itself; a float is round(amount * size) (Python's round).
    # BEGIN SOLUTION
    if isinstance(amount, numbers.Integral):
        return int(amount)
    return int(round(float(amount) * size))
    # END SOLUTION


def l1_unstructured(weight: Any, amount: Any) -> np.ndarray:
    """The mask that prunes the `amount` entries of smallest |weight| (torch.nn.utils.prune.l1_unstructured).

    weight: Tensor or array, any shape with >= 1 element. Returns a mask of the same shape and float
    dtype: 0 where pruned, 1 elsewhere. Ties in |w|: the lowest flat index is pruned first.
    """
    values = _values(weight, "l1_unstructured")
    count = amount_to_count(amount, values.size, "l1_unstructured")
    # TODO: 1. mask = _ones_like(values).
    # TODO: 2. order = np.argsort(np.abs(values).ravel(), kind="stable"); the first `count` flat indices
    #          are pruned (set to 0 through mask.reshape(-1), a view).
    # BEGIN SOLUTION
    mask = _ones_like(values)
    order = np.argsort(np.abs(values).ravel(), kind="stable")
    mask.reshape(-1)[order[:count]] = 0
    return mask
    # END SOLUTION


def _norm_order(n: Any) -> float:
    """The p of an L_p norm: a positive number, inf/-inf, or "fro" (= 2). Given helper."""
    if n == "fro":
        return 2.0
    if isinstance(n, bool) or not isinstance(n, numbers.Real) or math.isnan(n) or (n <= 0 and n != -math.inf):
        raise ValueError(f"ln_structured: n must be a positive number, inf, -inf or 'fro', got {n!r}")
    return float(n)


def ln_structured(weight: Any, amount: Any, n: Any, dim: int) -> np.ndarray:
    """The mask that prunes the `amount` slices along `dim` with the smallest L_n norm
    (torch.nn.utils.prune.ln_structured).

    weight: >= 2-D (torch's rule: structured pruning needs a dimension to keep). dim in [-ndim, ndim).
    Each slice weight[..., i, ...] (index i along dim) gets norm_i = (sum |w|^n)^(1/n) over all the
    other axes (n = inf: max |w|, -inf: min |w|); `amount` counts slices (an int up to
    weight.shape[dim], or a fraction of them). Returns a mask of the weight's shape and float dtype
    with whole slices 0. Norms are computed in float64. Ties: the lowest index is pruned first.
    Errors: ValueError for a 1-D weight, a dim out of range (naming it), or a bad n.
    """
    values = _values(weight, "ln_structured")
    p = _norm_order(n)
    if values.ndim < 2:
        raise ValueError(f"ln_structured: structured pruning needs a weight with >= 2 dimensions, got shape"
                         f" {values.shape}")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -values.ndim <= dim < values.ndim:
        raise ValueError(f"ln_structured: dim={dim!r} is out of range for a weight with {values.ndim} dimensions"
                         f" (expected -{values.ndim} <= dim < {values.ndim})")
    axis = int(dim) % values.ndim
    count = amount_to_count(amount, values.shape[axis], "ln_structured")
    # TODO: 1. Reduce every axis except `axis`: flat = np.moveaxis(|values| as float64, axis, 0).reshape(k, -1),
    #          then norms = np.linalg.norm(flat, ord=p, axis=1) (handles inf and -inf too).
    # TODO: 2. pruned = the first `count` indices of np.argsort(norms, kind="stable").
    # TODO: 3. mask = _ones_like(values); zero mask's slices `pruned` along `axis` (np.moveaxis gives a view).
    # BEGIN SOLUTION
    flat = np.moveaxis(np.abs(values).astype(np.float64), axis, 0).reshape(values.shape[axis], -1)
    norms = np.linalg.norm(flat, ord=p, axis=1)
    pruned = np.argsort(norms, kind="stable")[:count]
    mask = _ones_like(values)
    np.moveaxis(mask, axis, 0)[pruned] = 0
    return mask
    # END SOLUTION


def global_unstructured(parameters: Iterable[tuple[Module, str]], amount: Any) -> list[np.ndarray]:
    """Masks for several tensors at once from ONE magnitude ranking over all of them
    (torch.nn.utils.prune.global_unstructured with L1Unstructured): a layer with small weights loses
    more of them than a layer with large ones.

    parameters: (module, name) pairs, e.g. [(model[0], "weight"), (model[2], "weight")]; amount counts
    (or is a fraction of) the total number of elements. Returns one mask per pair, in order. The
    weights are not modified (give the masks to a Pruner). Ties: lowest position in the
    concatenation (pairs in order, each flattened in C order) first.
    """
    pairs = list(parameters)
    if not pairs:
        raise ValueError("global_unstructured: parameters is empty; give (module, name) pairs to prune")
    tensors = [_values(_parameter(module, name, "global_unstructured"), "global_unstructured")
               for module, name in pairs]
    # TODO: 1. scores = np.concatenate of every |tensor| raveled (float64); mask = l1_unstructured(scores, amount).
    # TODO: 2. Split the long mask back into one mask per tensor (np.split at the cumulative sizes),
    #          reshaped to each tensor's shape, in each tensor's float dtype (as _ones_like(t) has).
    # BEGIN SOLUTION
    scores = np.concatenate([np.abs(t).astype(np.float64).ravel() for t in tensors])
    _check_amount(amount, scores.size, "global_unstructured")
    flat = l1_unstructured(scores, amount)
    pieces = np.split(flat, np.cumsum([t.size for t in tensors])[:-1])
    return [piece.reshape(t.shape).astype(_ones_like(t).dtype) for t, piece in zip(tensors, pieces)]
    # END SOLUTION


# ----------------------------------------------------------------------------
# Keeping masks applied
# ----------------------------------------------------------------------------


class Pruner:
    """Remembers the masks of a model's pruned parameters and re-applies them on demand.

        pruner = Pruner()
        pruner.global_unstructured([(model[0], "weight"), (model[2], "weight")], amount=0.9)
        for x, y in loader:
            loss = loss_fn(model(x), y); optimizer.zero_grad(); loss.backward(); optimizer.step()
            pruner.apply()              # after EVERY step: pruned weights back to exactly 0

    A parameter pruned twice keeps both masks' zeros (the new mask is multiplied into the old one),
    so sparsity only grows, as with torch's PruningContainer. Every amount here counts the WHOLE
    tensor, zeros included (a target sparsity), not the weights still alive. Masks are applied
    in place (`param.data *= mask`): the optimizer's references to the parameters stay valid.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[Module, str, np.ndarray]] = {}

    def add_mask(self, module: Module, name: str, mask: Any) -> np.ndarray:
        """Register `mask` (0/1 values, the parameter's shape) for module.<name>, combine it with any
        mask registered before (elementwise product), apply it now and return the combined mask.
        Errors: ValueError if the shape differs or a value is not 0 or 1."""
        param = _parameter(module, name, "Pruner.add_mask")
        mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        if mask.shape != param.shape:
            raise ValueError(f"Pruner.add_mask: mask shape {mask.shape} does not match {name!r} of shape"
                             f" {param.shape}")
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError(f"Pruner.add_mask: a mask holds only 0 (pruned) and 1 (kept), got values"
                             f" {np.unique(mask)[:5].tolist()}")
        # TODO: 1. mask as the parameter's dtype; multiply into the mask already stored under
        #          (id(module), name), if any; store (module, name, mask) under that key.
        # TODO: 2. Apply it (self.apply() does every mask; applying twice changes nothing) and return it.
        # BEGIN SOLUTION
        mask = mask.astype(param.dtype)
        key = (id(module), name)
        if key in self._entries:
            mask = mask * self._entries[key][2]
        self._entries[key] = (module, name, mask)
        self.apply()
        return mask
        # END SOLUTION

    def l1_unstructured(self, module: Module, name: str, amount: Any) -> np.ndarray:
        """Prune module.<name> with l1_unstructured and keep the mask. Returns the (combined) mask."""
        return self.add_mask(module, name, l1_unstructured(_parameter(module, name, "Pruner"), amount))

    def ln_structured(self, module: Module, name: str, amount: Any, n: Any, dim: int) -> np.ndarray:
        """Prune module.<name> with ln_structured and keep the mask. Returns the (combined) mask."""
        return self.add_mask(module, name, ln_structured(_parameter(module, name, "Pruner"), amount, n, dim))

    def global_unstructured(self, parameters: Iterable[tuple[Module, str]], amount: Any) -> list[np.ndarray]:
        """Prune several parameters with one global ranking and keep the masks. Returns them."""
        pairs = list(parameters)
        masks = global_unstructured(pairs, amount)
        return [self.add_mask(module, name, mask) for (module, name), mask in zip(pairs, masks)]

    def apply(self) -> None:
        """Multiply every registered parameter, and its .grad if it has one, by its mask, IN PLACE."""
        # TODO: for every stored (module, name, mask): param = getattr(module, name);
        #       param.data *= mask; if param.grad is not None: param.grad.data *= mask.
        #       (A parameter replaced by a new Tensor since it was pruned is looked up again by name.)
        # BEGIN SOLUTION
        for module, name, mask in self._entries.values():
            param = getattr(module, name)
            param.data *= mask
            if param.grad is not None:
                param.grad.data *= mask
        # END SOLUTION

    def mask(self, module: Module, name: str) -> np.ndarray:
        """The mask registered for module.<name> (a copy); KeyError if it was never pruned."""
        key = (id(module), name)
        if key not in self._entries:
            raise KeyError(f"Pruner.mask: {type(module).__name__}.{name} has no mask (it was never pruned or was"
                           " removed)")
        return self._entries[key][2].copy()

    def remove(self, module: Module | None = None, name: str | None = None) -> None:
        """Make pruning permanent: apply the masks once more, then forget them (all, or only
        module.<name>'s). The zeros stay; later optimizer steps may move them again."""
        self.apply()
        if module is None:
            self._entries.clear()
            return
        key = (id(module), name if name is not None else "weight")
        if key not in self._entries:
            raise KeyError(f"Pruner.remove: {type(module).__name__}.{key[1]} has no mask to remove")
        del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def sparsity(self) -> float:
        """Fraction of exact zeros over every element of the parameters this Pruner manages."""
        if not self._entries:
            return 0.0
        params = [getattr(module, name).data for module, name, _ in self._entries.values()]
        return float(sum(int(np.count_nonzero(p == 0)) for p in params) / sum(p.size for p in params))


def sparsity(x: Any) -> float:
    """Fraction of entries that are exactly 0: of a Tensor / array, or over every parameter of a
    Module (each shared Parameter counted once; biases included). 0.0 for something empty."""
    # TODO: a Module: gather each distinct parameter's data (dedupe with id()); else _values-like
    #       np.asarray(x.data if Tensor else x). Return zeros / total as a float (0.0 if total is 0).
    # BEGIN SOLUTION
    if isinstance(x, Module):
        arrays, seen = [], set()
        for param in x.parameters():
            if id(param) not in seen:
                seen.add(id(param))
                arrays.append(param.data)
    else:
        arrays = [np.asarray(x.data if isinstance(x, Tensor) else x)]
    total = sum(a.size for a in arrays)
    zeros = sum(int(np.count_nonzero(a == 0)) for a in arrays)
    return float(zeros / total) if total else 0.0
    # END SOLUTION


# ----------------------------------------------------------------------------
# Gradual pruning schedule
# ----------------------------------------------------------------------------


def gradual_sparsity(step: int, final_sparsity: float, initial_sparsity: float = 0.0, begin_step: int = 0,
                     n: int = 10, frequency: int = 1) -> float:
    """Target sparsity at training step `step` (Zhu & Gupta 2017, "To prune, or not to prune").

    Pruning happens at steps t = begin_step + k * frequency, k = 0..n; between two of them the
    target stays that of the last one. With k = clamp(floor((step - begin_step) / frequency), 0, n):

        s = final + (initial - final) * (1 - k / n) ** 3

    so s = initial up to begin_step and s = final from begin_step + n * frequency on.
    Errors: ValueError unless 0 <= initial_sparsity <= final_sparsity <= 1, n and frequency >= 1
    integers, begin_step an integer (each message names the value).
    """
    for label, value in (("initial_sparsity", initial_sparsity), ("final_sparsity", final_sparsity)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
            raise ValueError(f"gradual_sparsity: {label} must be in [0, 1], got {value!r}")
    if initial_sparsity > final_sparsity:
        raise ValueError(f"gradual_sparsity: initial_sparsity={initial_sparsity} is larger than"
                         f" final_sparsity={final_sparsity}; sparsity only grows")
    for label, value, low in (("n", n, 1), ("frequency", frequency, 1), ("step", step, None),
                              ("begin_step", begin_step, None)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (low is not None and value < low):
            raise ValueError(f"gradual_sparsity: {label} must be an integer{'' if low is None else f' >= {low}'},"
                             f" got {value!r}")
    # TODO: k = clamp((step - begin_step) // frequency, 0, n); return the formula above as a float.
    # BEGIN SOLUTION
    k = min(max((int(step) - int(begin_step)) // int(frequency), 0), int(n))
    return float(final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - k / n) ** 3)
    # END SOLUTION


# ----------------------------------------------------------------------------
# Knowledge distillation
# ----------------------------------------------------------------------------


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0,
                      labels: Any = None, alpha: float = 1.0) -> Tensor:
    """Hinton et al. 2015: T^2 * KL(softmax(teacher / T) || softmax(student / T)), mean over the batch.

    student_logits, teacher_logits: (N, C) float Tensors of the same shape. The soft term equals
    F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T: the sum
    over the batch of sum_c p_c (log p_c - log q_c), divided by N, with p the teacher's and q the
    student's softened probabilities. Built from softmax / log_softmax (module 02) and Tensor
    arithmetic, so module 05 differentiates it (to the student, and to the teacher if it requires
    grad: compute the teacher's logits under no_grad to train only the student). The T^2 keeps the
    gradient's size independent of T (without it, the soft gradients shrink like 1 / T^2 for large T).
    With alpha < 1: alpha * soft + (1 - alpha) * cross_entropy(student_logits, labels) (labels needed).
    Errors: ValueError for shapes that differ or are not 2-D, temperature <= 0, alpha outside [0, 1],
    alpha < 1 without labels.
    """
    student = student_logits if isinstance(student_logits, Tensor) else Tensor(student_logits)
    teacher = teacher_logits if isinstance(teacher_logits, Tensor) else Tensor(teacher_logits)
    if student.shape != teacher.shape or student.ndim != 2:
        raise ValueError(f"distillation_loss: student and teacher logits must both be (N, C), got"
                         f" {student.shape} and {teacher.shape}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature > 0:
        raise ValueError(f"distillation_loss: temperature must be > 0, got {temperature!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation_loss: alpha must be in [0, 1], got {alpha!r}")
    if alpha < 1 and labels is None:
        raise ValueError(f"distillation_loss: alpha={alpha} mixes in the hard-label loss, so labels are needed")
    # TODO: 1. T = float(temperature); log_q = log_softmax(student / T, dim=1); p = softmax(teacher / T, dim=1);
    #          log_p = log_softmax(teacher / T, dim=1) (stable; never log of a probability that underflowed).
    # TODO: 2. soft = (p * (log_p - log_q)).sum() / N * (T * T): Tensor ops only, so gradients flow.
    # TODO: 3. alpha == 1: return soft; else alpha * soft + (1 - alpha) * cross_entropy(student, labels).
    # BEGIN SOLUTION
    t = float(temperature)
    log_q = log_softmax(student / t, dim=1)
    p = softmax(teacher / t, dim=1)
    log_p = log_softmax(teacher / t, dim=1)
    soft = (p * (log_p - log_q)).sum() * (t * t / student.shape[0])
    if alpha == 1:
        return soft
    return soft * float(alpha) + cross_entropy(student, labels) * (1.0 - float(alpha))
    # END SOLUTION


# ----------------------------------------------------------------------------
# Low-rank factorization
# ----------------------------------------------------------------------------


def low_rank_linear(linear: Linear, rank: int) -> Sequential:
    """The best rank-`rank` replacement of a Linear: Sequential(Linear(in, r, bias=False), Linear(r, out)).

    With W = U diag(S) V^T (np.linalg.svd, full_matrices=False, computed in float64), the first layer
    gets A = diag(sqrt(S_r)) V_r^T (r, in), the second B = U_r diag(sqrt(S_r)) (out, r) and the
    original bias; B @ A = U_r diag(S_r) V_r^T, the truncated SVD. Eckart-Young: no rank-r matrix is
    closer to W in the Frobenius norm, and the error is sqrt(S[r]^2 + S[r+1]^2 + ...).
    Parameters: r * (in + out) (+ out for the bias) instead of in * out - a saving when
    r < in * out / (in + out). Weights are stored in the Linear's dtype.
    Errors: TypeError if `linear` is not a Linear; ValueError unless 1 <= rank <= min(in, out).
    """
    if not isinstance(linear, Linear):
        raise TypeError(f"low_rank_linear: expected a Linear, got {type(linear).__name__}")
    weight = linear.weight.data
    out_features, in_features = weight.shape
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or not 1 <= rank <= min(weight.shape):
        raise ValueError(f"low_rank_linear: rank={rank!r} must be an integer in [1, {min(weight.shape)}]"
                         f" (min(in_features, out_features) for weight shape {weight.shape})")
    # TODO: 1. U, S, Vt = np.linalg.svd(weight as float64, full_matrices=False); keep the first `rank`.
    # TODO: 2. root = sqrt(S_r); A = root[:, None] * Vt_r; B = U_r * root[None, :] (both in weight.dtype).
    # TODO: 3. first = Linear(in, rank, bias=False), second = Linear(rank, out, bias=linear.bias is not None);
    #          set first.weight = Parameter(A), second.weight = Parameter(B), second.bias = a Parameter
    #          holding a copy of linear.bias; return Sequential(first, second).
    # BEGIN SOLUTION
    u, s, vt = np.linalg.svd(weight.astype(np.float64), full_matrices=False)
    r = int(rank)
    root = np.sqrt(s[:r])
    a = (root[:, None] * vt[:r]).astype(weight.dtype)
    b = (u[:, :r] * root[None, :]).astype(weight.dtype)
    scratch = np.random.default_rng(0)  # placeholder init, overwritten below; the global stream stays untouched
    first = Linear(in_features, r, bias=False, generator=scratch)
    second = Linear(r, out_features, bias=linear.bias is not None, generator=scratch)
    first.weight = Parameter(a)
    second.weight = Parameter(b)
    if linear.bias is not None:
        second.bias = Parameter(linear.bias.data.copy())
    return Sequential(first, second)
    # END SOLUTION
