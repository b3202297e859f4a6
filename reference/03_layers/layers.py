"""Module 03 - Layers: parameters, modules and the building blocks of a network.

A network is a tree of *modules*. Each module owns some *parameters* (the
tensors training changes) and some child modules, and maps inputs to outputs
in `forward`. This module gives tinytorch the torch.nn skeleton:

    Parameter                  a Tensor that requires grad by default
    Module                     parameters(), named_parameters(), children(), named_modules(),
                               register_buffer()/buffers()/named_buffers() (running statistics ...),
                               train()/eval(), state_dict()/load_state_dict(), zero_grad(),
                               register_forward_pre_hook()/register_forward_hook() (module 14's
                               profiler times layers with them), num_parameters(), parameter_nbytes(),
                               a torch-like repr
    linear(x, weight, bias=None)   y = x @ W.T + b as ONE recorded op, "linear" (torch.nn.functional.linear)
    Linear(in, out, bias, init, generator)   the module around it, W of shape (out, in) as in torch
    Sequential(*layers)        a chain of Modules or plain callables (module 02's ReLU() ...)
    Dropout(p, generator)      inverted dropout: zero with probability p, scale the rest by 1/(1-p)
    Flatten(start_dim, end_dim)

Randomness is explicit and reproducible: `manual_seed(seed)` resets the
module-level numpy Generator that Linear's initialisation and Dropout use by
default; any of them also accepts its own `generator=np.random.Generator`.

Forward passes are built from Tensor ops (module 01) and activations (module 02),
with one exception, for speed: `linear` computes x @ W.T + b in numpy and records it
as a single op, "linear", through the documented hook Tensor.from_op. Module 05
gives that op its backward rule, which writes the weight's gradient directly in the
weight's (out, in) layout: composed from `@`, `.T` and `+`, the gradient would
arrive as a transposed view that has to be copied into C order, and the graph would
hold three nodes per layer instead of one.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from tinytorch.tensor import FLOAT_DTYPES, Tensor

INITS = ("kaiming", "xavier")

# ----------------------------------------------------------------------------
# Random numbers: one seeded default generator, explicit generators everywhere
# ----------------------------------------------------------------------------

_default_generator: np.random.Generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator to np.random.default_rng(seed) and return it (like torch.manual_seed)."""
    # TODO: replace the module-level _default_generator (use `global`) and return it.
    # BEGIN SOLUTION
    global _default_generator
    _default_generator = np.random.default_rng(seed)
    return _default_generator
    # END SOLUTION


def default_generator() -> np.random.Generator:
    """The generator used when a layer is given no `generator=` (checkpoints save its state)."""
    return _default_generator


def _generator(generator: np.random.Generator | None) -> np.random.Generator:
    """The explicit generator if given, else the current default one (given helper)."""
    return _default_generator if generator is None else generator


# ----------------------------------------------------------------------------
# Parameter
# ----------------------------------------------------------------------------


class Parameter(Tensor):
    """A Tensor that is a learnable weight of a Module: requires_grad=True unless told otherwise.

    data: anything Tensor accepts; it must be floating point (float32 default, float64 kept).
    Assigning a Parameter as a Module attribute registers it (see Module.__setattr__).
    """

    def __init__(self, data: Any, requires_grad: bool = True):
        # TODO: build the Tensor (super().__init__) keeping the data's dtype; integer or bool data
        #       is a TypeError naming the dtype, e.g. "... got dtype int64" (a parameter must be trainable).
        # BEGIN SOLUTION
        super().__init__(data, requires_grad=False)
        if self.data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"a Parameter must be floating point, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        # END SOLUTION

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


# ----------------------------------------------------------------------------
# Module
# ----------------------------------------------------------------------------


class RemovableHandle:
    """What register_forward_(pre_)hook returns: handle.remove() unregisters the hook (as in torch).

    Also a context manager: `with module.register_forward_hook(h): ...` removes it on exit.
    """

    _next_id = 0

    def __init__(self, hooks: "OrderedDict[int, tuple[Callable, bool]]"):
        self.hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        """Unregister the hook; removing twice is harmless."""
        self.hooks.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _array_of(value: Any) -> Any:
    """The numpy array behind a Tensor (its .data); anything else as it is (a numpy array's own
    .data is a memoryview, so never use getattr(value, "data", value) on arrays)."""
    return value.data if isinstance(value, Tensor) else value


def _is_buffer_value(value: Any) -> bool:
    """A buffer holds a numpy array, a Tensor, or None (registered but empty)."""
    return value is None or isinstance(value, (np.ndarray, Tensor))


class IncompatibleKeys(NamedTuple):
    """What load_state_dict(strict=False) could not match (torch returns the same pair)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()`` first, then assign Parameters and child Modules as
    attributes (``self.fc = Linear(2, 3)``): assignment registers them, in order, under that
    name. Parameter names are dotted paths ("fc.weight", "0.bias"), exactly as in torch, so a
    state_dict's keys line up with the equivalent torch model's.

    Buffers are the state that is not learned but belongs in a checkpoint (BatchNorm's running
    statistics): ``self.register_buffer("running_mean", np.zeros(C, np.float32))``. They are read
    and re-assigned as attributes, saved by state_dict() (unless persistent=False) and restored by
    load_state_dict(), but the optimizer never sees them (they are not parameters).

    Forward hooks are the documented way for later code (module 14's profiler) to observe or change
    a module's calls without touching its forward: module(*args) runs each pre-hook(module, args),
    then forward(*args), then each hook(module, args, output).
    """

    def __init__(self) -> None:
        # TODO: create the registries with object.__setattr__ (our __setattr__ relies on them):
        #       _parameters, _modules and _buffers (ordered dicts: name -> value), _non_persistent_buffers
        #       (a set of buffer names), _forward_pre_hooks and _forward_hooks (ordered dicts:
        #       handle id -> (hook, with_kwargs)) and training = True.
        # BEGIN SOLUTION
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)
        # END SOLUTION

    def __setattr__(self, name: str, value: Any) -> None:
        """Register Parameters in _parameters and Modules in _modules; assigning to a registered buffer's
        name replaces that buffer's value; other values are plain attributes."""
        # TODO: 1. If the registries do not exist yet, raise AttributeError telling the author to call
        #          super().__init__() before assigning attributes (only for Parameters/Modules).
        # TODO: 2. A name already in _buffers, assigned something that is not a Parameter/Module:
        #          a numpy array, Tensor or None replaces _buffers[name]; anything else is a TypeError
        #          like "cannot assign 'list' object to buffer 'count'" (the type's name in quotes).
        # TODO: 3. A Parameter goes into _parameters[name], a Module into _modules[name]; remove the name
        #          from the other registries (_buffers and _non_persistent_buffers too) so re-assigning a
        #          name with another kind works.
        # TODO: 4. Anything else: object.__setattr__ (and forget any Parameter/Module of that name).
        # BEGIN SOLUTION
        registries = self.__dict__.get("_parameters"), self.__dict__.get("_modules")
        if isinstance(value, (Parameter, Module)) and None in registries:
            raise AttributeError(
                f"cannot assign {type(value).__name__} {name!r} before Module.__init__() is called:"
                f" call super().__init__() first in {type(self).__name__}.__init__"
            )
        params, modules = registries
        buffers = self.__dict__.get("_buffers", {})
        if name in buffers and not isinstance(value, (Parameter, Module)):
            if not _is_buffer_value(value):
                raise TypeError(f"cannot assign {type(value).__name__!r} object to buffer {name!r}"
                                " (a numpy array, Tensor or None required)")
            buffers[name] = value
            return
        if params is not None:
            params.pop(name, None)
            modules.pop(name, None)
            buffers.pop(name, None)
            self.__dict__["_non_persistent_buffers"].discard(name)
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            modules[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)
        # END SOLUTION

    def __getattr__(self, name: str) -> Any:
        """Look registered Parameters, Modules and buffers up by name (called only when normal lookup fails)."""
        registries = self.__dict__
        for registry in ("_parameters", "_modules", "_buffers"):
            if name in registries.get(registry, ()):
                return registries[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in ("_parameters", "_modules", "_buffers"):
            if name in self.__dict__.get(registry, ()):
                del self.__dict__[registry][name]
                self.__dict__.get("_non_persistent_buffers", set()).discard(name)
                return
        object.__delattr__(self, name)

    # -- forward -------------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the hooks around forward, as torch does:

        1. each pre-hook, in registration order: result = hook(self, args), or hook(self, args, kwargs)
           if registered with_kwargs=True; a non-None result replaces args (a non-tuple result r
           becomes (r,)); a with_kwargs hook's non-None result must be the pair (args, kwargs);
        2. output = self.forward(*args, **kwargs);
        3. each forward hook, in registration order: result = hook(self, args, output), or
           hook(self, args, kwargs, output) if with_kwargs; a non-None result replaces output.
        Returns output.
        """
        # TODO: loop over list(self._forward_pre_hooks.values()) and list(self._forward_hooks.values())
        #       (copies: a hook may remove itself); each value is a pair (hook, with_kwargs). A with_kwargs
        #       pre-hook returning something other than None or a 2-tuple is a RuntimeError whose message
        #       contains "(args, kwargs)".
        # BEGIN SOLUTION
        if not self._forward_pre_hooks and not self._forward_hooks:  # the common case: no list copies
            return self.forward(*args, **kwargs)
        for hook, with_kwargs in list(self._forward_pre_hooks.values()):
            if with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError("a forward pre-hook registered with_kwargs=True must return None"
                                           f" or a pair (args, kwargs), got {type(result).__name__}")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook, with_kwargs in list(self._forward_hooks.values()):
            result = hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
            if result is not None:
                output = result
        return output
        # END SOLUTION

    def register_forward_pre_hook(self, hook: Callable[..., Any], *, with_kwargs: bool = False) -> RemovableHandle:
        """Call hook(module, args) - or hook(module, args, kwargs) with_kwargs - before every forward;
        returns a handle whose remove() unregisters it. A hook that is not callable is a TypeError."""
        # TODO: return self._add_hook(self._forward_pre_hooks, hook, with_kwargs) (_add_hook is given below:
        #       it checks callable(hook), makes the RemovableHandle and stores (hook, with_kwargs) under its id).
        # BEGIN SOLUTION
        return self._add_hook(self._forward_pre_hooks, hook, with_kwargs)
        # END SOLUTION

    def register_forward_hook(self, hook: Callable[..., Any], *, with_kwargs: bool = False) -> RemovableHandle:
        """Call hook(module, args, output) - or hook(module, args, kwargs, output) with_kwargs - after
        every forward; returns a handle whose remove() unregisters it. A hook that is not callable is a
        TypeError."""
        # TODO: return self._add_hook(self._forward_hooks, hook, with_kwargs).
        # BEGIN SOLUTION
        return self._add_hook(self._forward_hooks, hook, with_kwargs)
        # END SOLUTION

    @staticmethod
    def _add_hook(hooks: "OrderedDict[int, tuple[Callable, bool]]", hook: Callable, with_kwargs: bool) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        handle = RemovableHandle(hooks)
        hooks[handle.id] = (hook, bool(with_kwargs))
        return handle

    # -- buffers -------------------------------------------------------------

    def register_buffer(self, name: str, tensor: np.ndarray | Tensor | None, persistent: bool = True) -> None:
        """Register state that is not a parameter (torch.nn.Module.register_buffer).

        tensor: a numpy array, a Tensor, or None (a buffer slot with no value yet: skipped by
        state_dict and named_buffers). Readable as `self.<name>`; assigning `self.<name> = array`
        replaces it. persistent=False keeps it out of state_dict().
        Errors (torch's): called before Module.__init__ is an AttributeError; a name that is not a
        str is a TypeError; an empty name, a name containing ".", or the name of an existing
        attribute that is not a buffer is a KeyError; a value that is not an array/Tensor/None is a
        TypeError.
        """
        # TODO: 1. "_buffers" not in self.__dict__: AttributeError containing "before Module.__init__()".
        # TODO: 2. Validate, in this order: name not a str -> TypeError "buffer name should be a string";
        #          "" -> KeyError 'buffer name can\'t be empty string ""'; "." in name -> KeyError
        #          'buffer name can\'t contain "."'; hasattr(self, name) and name not in _buffers ->
        #          KeyError "attribute '<name>' already exists"; a value that is not a numpy array, Tensor
        #          or None -> TypeError like "cannot assign 'int' object to buffer 'x'" (type name in quotes).
        # TODO: 3. _buffers[name] = tensor; add name to _non_persistent_buffers when not persistent,
        #          else discard it.
        # BEGIN SOLUTION
        if "_buffers" not in self.__dict__:
            raise AttributeError(f"cannot register buffer {name!r} before Module.__init__() is called:"
                                 f" call super().__init__() first in {type(self).__name__}.__init__")
        if not isinstance(name, str):
            raise TypeError(f"buffer name should be a string, got {type(name).__name__}")
        if name == "":
            raise KeyError('buffer name can\'t be empty string ""')
        if "." in name:
            raise KeyError(f'buffer name can\'t contain ".", got {name!r}')
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute {name!r} already exists")
        if not _is_buffer_value(tensor):
            raise TypeError(f"cannot assign {type(tensor).__name__!r} object to buffer {name!r}"
                            " (a numpy array, Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)
        # END SOLUTION

    # -- the module tree -----------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """(name, module) for each direct child Module, in registration order."""
        # BEGIN SOLUTION
        for name, child in self._modules.items():
            if isinstance(child, Module):
                yield name, child
        # END SOLUTION

    def children(self) -> Iterator["Module"]:
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module ("" or `prefix`) and every descendant, depth first.

        A module reachable twice (shared) is listed once, as in torch.
        """
        # TODO: depth-first, self first; keep a set of ids already yielded.
        # BEGIN SOLUTION
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module.named_children()]
            stack.extend(reversed(children))
        # END SOLUTION

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) in registration order: own parameters first, then each child's.

        A Parameter shared by two modules is listed once (the first name wins), as in torch.
        """
        # TODO: walk named_modules (or only self when not recurse), yield "<module path>.<param name>"
        #       for each registered Parameter, skipping ids already yielded.
        # BEGIN SOLUTION
        seen: set[int] = set()
        owners = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for module_name, module in owners:
            for name, param in module._parameters.items():
                if id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param
        # END SOLUTION

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every Parameter (for the optimizer), in the order of named_parameters()."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Any]]:
        """(dotted name, buffer) as named_parameters does for parameters: own buffers first, then each
        child's, in registration order; None buffers skipped; one buffer object listed once.
        Non-persistent buffers are listed too (only state_dict leaves them out)."""
        # TODO: as named_parameters, over each module's _buffers, skipping None values.
        # BEGIN SOLUTION
        seen: set[int] = set()
        owners = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for module_name, module in owners:
            for name, buf in module._buffers.items():
                if buf is None or id(buf) in seen:
                    continue
                seen.add(id(buf))
                yield (f"{module_name}.{name}" if module_name else name), buf
        # END SOLUTION

    def buffers(self, recurse: bool = True) -> Iterator[Any]:
        """Every buffer, in the order of named_buffers()."""
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def _named_state(self) -> Iterator[tuple[str, Any]]:
        """(dotted name, Parameter or persistent buffer) in torch's state_dict order: for each module of
        named_modules(), its own parameters, then its persistent (non-None) buffers; each object once."""
        # TODO: walk named_modules(); per module yield its _parameters, then its _buffers that are not None
        #       and not in _non_persistent_buffers; skip ids already yielded (shared parameters/buffers).
        # BEGIN SOLUTION
        seen: set[int] = set()
        for module_name, module in self.named_modules():
            own = list(module._parameters.items()) + [
                (name, buf) for name, buf in module._buffers.items()
                if buf is not None and name not in module._non_persistent_buffers]
            for name, value in own:
                if id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value
        # END SOLUTION

    # -- modes and gradients -------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        """Set `training` on this module and every descendant (Dropout reads it). Returns self."""
        # BEGIN SOLUTION
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self
        # END SOLUTION

    def eval(self) -> "Module":
        """train(False): evaluation mode (Dropout becomes the identity)."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's accumulated gradient: None (default) or zeros."""
        # BEGIN SOLUTION
        for param in self.parameters():
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad = Tensor(np.zeros(param.shape, dtype=param.dtype))
        # END SOLUTION

    # -- saving and loading --------------------------------------------------

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """{dotted name: a numpy COPY of its values} for every parameter and persistent buffer, in torch's
        order (see _named_state: per module, parameters then buffers, then the children).

        Copies, so that training after saving never changes the saved state. A buffer's copy keeps its
        dtype and shape (num_batches_tracked stays a 0-d int64 array).
        """
        # TODO: np.array(_array_of(value), copy=True) for each item of _named_state()
        #       (_array_of, given: a Tensor's .data, a numpy array itself).
        # BEGIN SOLUTION
        return OrderedDict((name, np.array(_array_of(value), copy=True))
                           for name, value in self._named_state())
        # END SOLUTION

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values into the existing parameters and persistent buffers (in place: optimizers keep
        their references).

        strict=True: missing or unexpected keys are a KeyError listing them all (nothing is loaded).
        A shape mismatch is always a ValueError naming the key and both shapes (nothing is loaded).
        Values are converted to each parameter's (buffer's) dtype. Returns IncompatibleKeys(missing, unexpected).
        """
        # TODO: 1. Compare the keys with _named_state() (parameters and persistent buffers):
        #          missing = expected - given, unexpected = given - expected (keep the order of each side).
        # TODO: 2. strict and (missing or unexpected): KeyError naming both lists.
        # TODO: 3. Check every shape BEFORE copying anything, then copy in place with
        #          _array_of(target)[...] = value (_array_of, given: a Parameter's/Tensor's .data, a
        #          numpy buffer itself).
        # BEGIN SOLUTION
        params = OrderedDict(self._named_state())
        missing = [name for name in params if name not in state_dict]
        unexpected = [name for name in state_dict if name not in params]
        if strict and (missing or unexpected):
            raise KeyError(
                f"error loading state_dict into {type(self).__name__}: missing keys {missing},"
                f" unexpected keys {unexpected}"
            )
        values = {}
        for name, param in params.items():
            if name not in state_dict:
                continue
            value = np.asarray(_array_of(state_dict[name]))
            shape = tuple(_array_of(param).shape)
            if value.shape != shape:
                raise ValueError(
                    f"size mismatch for {name}: the checkpoint has shape {value.shape},"
                    f" the model has shape {shape}"
                )
            values[name] = value
        for name, value in values.items():
            _array_of(params[name])[...] = value
        return IncompatibleKeys(missing, unexpected)
        # END SOLUTION

    # -- profiling -----------------------------------------------------------

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many scalars the model learns: sum of numel() (shared parameters counted once)."""
        # BEGIN SOLUTION
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
        # END SOLUTION

    def parameter_nbytes(self) -> int:
        """Bytes held by the parameter values (not their gradients nor optimizer state)."""
        # BEGIN SOLUTION
        return sum(p.nbytes for p in self.parameters())
        # END SOLUTION

    # -- printing ------------------------------------------------------------

    def extra_repr(self) -> str:
        """The settings shown between the parentheses, e.g. "in_features=2, out_features=3, bias=True"."""
        return ""

    def __repr__(self) -> str:
        """torch's format: `Name(extra)` for a leaf, else one indented `(name): child` line per child."""
        # TODO: children are everything in _modules (plain callables of a Sequential included);
        #       indent a child's own multi-line repr by two more spaces.
        # BEGIN SOLUTION
        lines = []
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}({extra}" if extra else f"{type(self).__name__}("
        return head + "\n" + "\n".join(lines) + "\n)"
        # END SOLUTION


# ----------------------------------------------------------------------------
# The linear op (functional form, as torch.nn.functional.linear)
# ----------------------------------------------------------------------------


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ weight.T + bias, recorded as ONE op "linear" for module 05 to differentiate.

    x: (..., in) - any number of leading dimensions, also none (a 1-D x gives (out,));
    weight: (out, in), torch's layout; bias: (out,) or None. Returns (..., out).
    The dtype follows numpy's promotion of x and weight (float32 with float32).
    Recorded with Tensor.from_op(y, "linear", (x, weight, bias)), or (x, weight) without a bias;
    nothing is saved besides the inputs.

    Why one op instead of `x @ weight.T + bias`: the composed version records three nodes
    (permute, matmul, add) and its weight gradient comes back as the transpose of an (in, out)
    array, which the engine then copies into the weight's C order. For the (256, 784) layer of
    the 784-256-128-10 MLP that transposing copy takes 0.19 ms of a ~2 ms training step (a plain
    copy: 0.02 ms). Here the GEMM runs on a 2-D view, numpy hands the transposed weight to BLAS
    as a flag (no copy), and the bias is added in place. See the lesson for the measured effect.
    A wrong shape is a ValueError naming the shapes.
    """
    # TODO: 1. Wrap non-Tensors with Tensor(...). Check: weight is 2-D; x has >= 1 dim and
    #          x.shape[-1] == weight.shape[1]; bias (if given) has shape (weight.shape[0],).
    #          Each a ValueError naming the shapes.
    # TODO: 2. Flatten x to 2-D: rows = x.data.reshape(math.prod(x.shape[:-1]), in_features)
    #          (math.prod, not -1: -1 cannot be resolved when x has no elements).
    # TODO: 3. y = rows @ weight.data.T (np.matmul: the .T is a view that BLAS reads transposed);
    #          add the bias IN PLACE (np.add(y, bias.data, out=y): y is ours, no temporary; only a
    #          float64 bias on a float32 y needs a new array), then reshape y to x.shape[:-1] + (out_features,).
    # TODO: 4. Return Tensor.from_op(y, "linear", (x, weight, bias)) - or (x, weight) when bias is None.
    # BEGIN SOLUTION
    x = x if isinstance(x, Tensor) else Tensor(x)
    weight = weight if isinstance(weight, Tensor) else Tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    out_features, in_features = weight.shape
    if x.ndim == 0 or x.shape[-1] != in_features:
        raise ValueError(f"linear: input shape {x.shape} does not end in in_features={in_features}"
                         f" (weight shape {weight.shape})")
    inputs: tuple[Tensor, ...] = (x, weight)
    if bias is not None:
        bias = bias if isinstance(bias, Tensor) else Tensor(bias)
        if bias.shape != (out_features,):
            raise ValueError(f"linear: bias shape {bias.shape} must be (out_features,) = ({out_features},)"
                             f" for weight shape {weight.shape}")
        inputs = (x, weight, bias)
    rows = x.data.reshape(math.prod(x.shape[:-1]), in_features)
    y = np.matmul(rows, weight.data.T)
    if bias is not None:  # in place (y is ours), unless the bias has the wider dtype
        y = np.add(y, bias.data, out=y if np.result_type(y, bias.data) == y.dtype else None)
    return Tensor.from_op(y.reshape(x.shape[:-1] + (out_features,)), "linear", inputs)
    # END SOLUTION


# ----------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------


class Linear(Module):
    """y = x @ W.T + b for x of shape (..., in_features); y has shape (..., out_features), via `linear`.

    weight: Parameter (out_features, in_features) - torch's layout, so weights copy across.
    bias:   Parameter (out_features,) or None when bias=False.
    init:   "kaiming" - He uniform for ReLU nets: U(-a, a), a = sqrt(6 / fan_in), so Var = 2 / fan_in
                        (torch.nn.init.kaiming_uniform_(w, nonlinearity="relu"));
            "xavier"  - Glorot uniform: a = sqrt(6 / (fan_in + fan_out)), Var = 2 / (fan_in + fan_out)
                        (torch.nn.init.xavier_uniform_).
            The bias starts at U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch's default.
    generator: the np.random.Generator to draw from (default: the module's seeded one).
    Parameters are float32.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "kaiming",
                 generator: np.random.Generator | None = None):
        super().__init__()
        # TODO: 1. Validate: positive integer sizes and init in INITS (ValueError naming the bad value).
        # TODO: 2. bound = sqrt(6 / fan_in) or sqrt(6 / (fan_in + fan_out)); draw the weight with
        #          rng.uniform(-bound, bound, (out, in)) as float32; the bias from U(+-1/sqrt(fan_in)).
        # TODO: 3. Store in_features, out_features, and the Parameters (self.bias = None without bias).
        # BEGIN SOLUTION
        for name, size in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size <= 0:
                raise ValueError(f"Linear: {name} must be a positive integer, got {size!r}")
        if init not in INITS:
            raise ValueError(f"Linear: init must be one of {INITS}, got {init!r}")
        rng = _generator(generator)
        fan_in, fan_out = int(in_features), int(out_features)
        bound = math.sqrt(6.0 / fan_in) if init == "kaiming" else math.sqrt(6.0 / (fan_in + fan_out))
        self.in_features, self.out_features, self.init = fan_in, fan_out, init
        self.weight = Parameter(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        if bias:
            bias_bound = 1.0 / math.sqrt(fan_in)
            self.bias = Parameter(rng.uniform(-bias_bound, bias_bound, fan_out).astype(np.float32))
        else:
            self.bias = None
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., in_features) -> (..., out_features). A wrong last dimension is a ValueError naming both."""
        # TODO: wrap a non-Tensor x; check x.shape[-1] (the message names x.shape and in_features);
        #       then return linear(x, self.weight, self.bias): one recorded op.
        # BEGIN SOLUTION
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: input shape {x.shape} does not end in in_features={self.in_features}"
                f" (weight shape {self.weight.shape})"
            )
        return linear(x, self.weight, self.bias)
        # END SOLUTION

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """Apply layers in order: Sequential(Linear(2, 8), ReLU(), Linear(8, 1)).

    Accepts Modules and any other callable (module 02's activation objects, a lambda);
    items are registered under "0", "1", ... so parameter names match torch's ("0.weight").
    Supports len(), iteration, integer indexing (negative too) and slicing (a new Sequential).
    """

    def __init__(self, *layers: Callable):
        super().__init__()
        # TODO: append each layer (see append below).
        # BEGIN SOLUTION
        for layer in layers:
            self.append(layer)
        # END SOLUTION

    @staticmethod
    def _not_callable(position: int, layer: Any) -> None:
        raise TypeError(f"Sequential: item {position} ({type(layer).__name__}) is not callable")

    def append(self, layer: Callable) -> "Sequential":
        """Add a layer at the end; returns self."""
        # TODO: the layer must be callable (else TypeError naming its position and type, see
        #       _not_callable); store it in self._modules[str(position)] - plain callables too,
        #       so that repr and indexing see them; only Modules count as children.
        # BEGIN SOLUTION
        if not callable(layer):
            self._not_callable(len(self), layer)
        self._modules[str(len(self._modules))] = layer
        return self
        # END SOLUTION

    def forward(self, x: Any) -> Any:
        # BEGIN SOLUTION
        for layer in self._modules.values():
            x = layer(x)
        return x
        # END SOLUTION

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Callable]:
        return iter(list(self._modules.values()))

    def __getitem__(self, index: int | slice) -> Any:
        # TODO: a slice gives Sequential(*selected items); an int (negative allowed) gives one item;
        #       out of range is an IndexError naming the index and the length.
        # BEGIN SOLUTION
        items = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*items[index])
        if not -len(items) <= index < len(items):
            raise IndexError(f"Sequential: index {index} is out of range for {len(items)} layers")
        return items[index]
        # END SOLUTION


class Dropout(Module):
    """Inverted dropout. In training: zero each element with probability p and scale the survivors
    by 1 / (1 - p), so E[output] = input and evaluation needs no rescaling. In eval mode, or with
    p = 0, the identity (the same tensor). p = 1 zeroes everything.

    p must be in [0, 1] (ValueError otherwise, torch's wording). The mask comes from `generator`
    (default: the module's seeded generator), drawn in x's dtype.
    """

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None):
        super().__init__()
        # TODO: p must be a number in [0, 1] (not a bool or str): else torch's ValueError
        #       "dropout probability has to be between 0 and 1, but got {p}". Keep p and generator.
        # BEGIN SOLUTION
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = float(p)
        self.generator = generator
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        # TODO: identity when not self.training or p == 0. Else keep = rng.random(x.shape, dtype) >= p;
        #       multiply x by the constant Tensor keep / (1 - p) (zeros when p == 1): a Tensor op.
        # BEGIN SOLUTION
        x = x if isinstance(x, Tensor) else Tensor(x)
        if not self.training or self.p == 0.0:
            return x
        dtype = x.dtype if x.dtype in FLOAT_DTYPES else np.dtype(np.float32)
        if self.p == 1.0:
            return x * Tensor(np.zeros(x.shape, dtype=dtype))
        keep = _generator(self.generator).random(x.shape, dtype=dtype) >= self.p
        scale = np.asarray(1.0 / (1.0 - self.p), dtype=dtype)
        return x * Tensor(keep * scale)
        # END SOLUTION

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Flatten(Module):
    """Merge dimensions start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default.

    Negative dims count from the end; a dim out of range is an IndexError; start after end is a
    ValueError. Implemented with Tensor.reshape, so gradients flow.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        x = x if isinstance(x, Tensor) else Tensor(x)
        ndim = max(x.ndim, 1)
        for d in (self.start_dim, self.end_dim):
            if not -ndim <= d < ndim:
                raise IndexError(f"Flatten: dim {d} is out of range for a tensor with {x.ndim} dimensions")
        start, end = self.start_dim % ndim, self.end_dim % ndim
        if start > end:
            raise ValueError(f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim}")
        shape = x.shape if x.ndim else (1,)
        merged = int(np.prod(shape[start:end + 1]))
        return x.reshape(shape[:start] + (merged,) + shape[end + 1:])
        # END SOLUTION

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
