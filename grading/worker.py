"""The learner's side of the trust boundary: a process that runs tinytorch and nothing decides here.

The trusted side (a check, a threshold, a milestone) starts this worker inside the
sandbox (grading/integrity.py) and sends it requests over two pipes: import a module,
get or set an attribute, call something, apply an operator. Objects stay here and cross
as numbered references; results that are plain data (numbers, strings, arrays) cross as
values (grading/wire.py). Whatever the learner's code does in this process, the trusted
side only ever receives data, and it computes every verdict itself.

    python -m grading.worker READ_FD WRITE_FD
"""

from __future__ import annotations

import builtins
import importlib
import importlib.abc
import importlib.util
import operator
import os
import sys
import time
import traceback

import numpy as np

from grading import wire

BLOCKED_IMPORTS = ("torch", "functorch", "torchgen", "torchvision", "torchaudio")

OPERATORS = {name: getattr(operator, name) for name in (
    "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and_", "or_", "xor", "lshift", "rshift",
    "iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "imatmul", "iand", "ior", "ixor",
    "lt", "le", "eq", "ne", "gt", "ge", "neg", "pos", "abs", "invert", "getitem", "setitem", "delitem",
    "contains", "truth", "index")}
BUILTINS = {name: getattr(builtins, name) for name in (
    "len", "iter", "next", "repr", "str", "bool", "float", "int", "complex", "isinstance", "issubclass",
    "callable", "hash", "format", "dir", "list", "tuple")}
MESSAGE_LIMIT = 2000


class _BlockTorch(importlib.abc.MetaPathFinder):
    """Learner code computes with numpy: PyTorch is the answer key, not a tool, on this side."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in BLOCKED_IMPORTS:
            raise ImportError(f"{fullname} is not available to learner code (use numpy)", name=fullname)
        return None


class Objects:
    """Objects the trusted side holds references to, each counted per time it was sent."""

    def __init__(self):
        self.by_ref: dict[int, object] = {}
        self.ref_by_id: dict[int, int] = {}
        self.sent: dict[int, int] = {}
        self.next_ref = 1

    def ref_of(self, obj) -> wire.Ref:
        ref = self.ref_by_id.get(id(obj))
        if ref is None or self.by_ref.get(ref) is not obj:
            ref = self.next_ref
            self.next_ref += 1
            self.by_ref[ref], self.ref_by_id[id(obj)] = obj, ref
        self.sent[ref] = self.sent.get(ref, 0) + 1
        kind = {list: "list", dict: "dict", np.random.Generator: "generator"}.get(type(obj), "")
        return wire.Ref(ref, self.type_ref(type(obj)), kind)

    def type_ref(self, kind: type) -> int:
        """Classes are held for the worker's lifetime, so their numbers never change."""
        ref = self.ref_by_id.get(id(kind))
        if ref is None or self.by_ref.get(ref) is not kind:
            ref = self.next_ref
            self.next_ref += 1
            self.by_ref[ref], self.ref_by_id[id(kind)] = kind, ref
        return ref

    def get(self, ref: wire.Ref):
        try:
            return self.by_ref[ref.id]
        except KeyError:
            raise LookupError(f"object #{ref.id} is no longer held by the worker") from None

    def release(self, pairs) -> None:
        for ref, count in pairs:
            left = self.sent.get(ref, 0) - count
            if left > 0:
                self.sent[ref] = left
                continue
            self.sent.pop(ref, None)
            obj = self.by_ref.pop(ref, None)
            if obj is not None and self.ref_by_id.get(id(obj)) == ref:
                del self.ref_by_id[id(obj)]


def _resolve(value, objects: Objects):
    if isinstance(value, wire.Ref):
        return objects.get(value)
    if type(value) is list:
        return [_resolve(v, objects) for v in value]
    if type(value) is tuple:
        return tuple(_resolve(v, objects) for v in value)
    if type(value) is dict:
        return {k: _resolve(v, objects) for k, v in value.items()}
    if type(value) is slice:
        return slice(_resolve(value.start, objects), _resolve(value.stop, objects), _resolve(value.step, objects))
    return value


def _relative_traceback(err: BaseException) -> str:
    """The traceback's learner and course frames, with paths as the learner knows them."""
    katas = os.environ.get("TINYTORCH_KATAS", "")
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    text = "".join(line for line in lines if "grading/worker.py" not in line and "grading/wire.py" not in line)
    if katas:
        text = text.replace(katas.rstrip("/") + "/", "katas/")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return text.replace(root + "/", "")[-6000:]


def _exception(err: BaseException) -> dict:
    kind = type(err)
    base = next(k for k in kind.__mro__ if k.__module__ == "builtins")
    try:
        message = str(err)
    except Exception:  # a learner exception whose __str__ fails
        message = "<unprintable message>"
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return {"type": base.__name__, "name": name[:200], "message": message[:MESSAGE_LIMIT],
            "traceback": _relative_traceback(err)}


def handle(request: dict, objects: Objects):
    op = request["op"]
    if request.get("release"):
        objects.release(request["release"])
    if op == "ping":
        return "pong"
    if op == "import":
        return importlib.import_module(request["name"])
    if op == "import_file":
        name, path = request["name"], request["path"]
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    if op == "release":
        objects.release(request["pairs"])
        return None
    if op == "keep":
        return _Kept(_resolve(request["value"], objects))
    args = _resolve(request.get("args", []), objects)
    kwargs = _resolve(request.get("kwargs", {}), objects)
    if op == "getattr":
        obj = objects.get(request["obj"])
        value = getattr(obj, request["name"])
        if getattr(value, "__self__", None) is obj and getattr(value, "__func__", None) is not None:
            return _Method(request["name"])  # the trusted side calls it through "method"
        return value
    if op == "setattr":
        return setattr(objects.get(request["obj"]), request["name"], args[0])
    if op == "delattr":
        return delattr(objects.get(request["obj"]), request["name"])
    if op == "call":
        return objects.get(request["obj"])(*args, **kwargs)
    if op == "method":
        return getattr(objects.get(request["obj"]), request["name"])(*args, **kwargs)
    if op == "operator":
        return OPERATORS[request["name"]](*args)
    if op == "builtin":
        return BUILTINS[request["name"]](*args)
    if op == "fetch":
        return np.asarray(objects.get(request["obj"]))
    if op == "repeat":
        fn, number = objects.get(request["obj"]), int(request["number"])
        for _ in range(number - 1):
            fn(*args, **kwargs)
        return fn(*args, **kwargs)
    raise ValueError(f"unknown request {op!r}")


_PLAIN = (type(None), bool, int, float, complex, str, bytes, slice, np.dtype)


def _plain(value, depth: int = 0) -> bool:
    """Data that is the same whichever side holds it: numbers, strings, arrays, and containers of those."""
    if depth > 32:
        return False
    if isinstance(value, _PLAIN) and type(value) in (*_PLAIN, type(value)) and type(value).__module__ in (
            "builtins", "numpy", "numpy.dtypes"):
        return True
    if type(value) is np.ndarray or (isinstance(value, np.generic) and type(value).__module__ == "numpy"):
        return value.dtype != object
    if type(value) in (list, tuple):
        return all(_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _export(value, objects: "Objects"):
    """What a reply carries: plain data by value; a list or dict holding learner objects by reference
    (the trusted side may mutate it: `optimizer.param_groups[0]["lr"] = 0.1` must reach the worker);
    a tuple by value, each element exported the same way."""
    if type(value) is tuple:
        return tuple(_export(v, objects) for v in value)
    if type(value) in (list, dict) and not _plain(value):
        return objects.ref_of(value)
    if type(value) is np.random.Generator:
        return objects.ref_of(value)  # learner state: the trusted side must draw from this one, not a copy
    return value


class _Method:
    """A bound method of the object asked about: sent as its name, called later through "method"."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Kept:
    """A value the trusted side asked to keep here, so later calls pass it by reference."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def serve(read_fd: int, write_fd: int) -> None:
    objects = Objects()
    inbound, outbound = os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb")
    while True:
        try:
            request = wire.receive(inbound)
        except EOFError:
            return
        started = time.perf_counter()
        try:
            result = handle(request, objects)
            if request.get("keep_result"):
                result = _Kept(result)
            if isinstance(result, _Kept):
                reply = {"ok": objects.ref_of(result.value)}
            elif isinstance(result, _Method):
                reply = {"ok": None, "method": result.name}
            else:
                reply = {"ok": _export(result, objects)}
            reply["s"] = time.perf_counter() - started
            payload = wire.dumps(reply, objects.ref_of)
        except BaseException as err:  # everything the learner's code raises, SystemExit included
            if isinstance(err, MemoryError):
                traceback.clear_frames(err.__traceback__)  # let go of what filled the memory
            try:
                payload = wire.dumps({"err": _exception(err)})
            except Exception:  # pragma: no cover - an exception that cannot be described
                payload = wire.dumps({"err": {"type": "RuntimeError", "name": "RuntimeError",
                                              "message": "an error that could not be described", "traceback": ""}})
        outbound.write(payload)
        outbound.flush()
        if b"MemoryError" in payload[:4096]:
            os._exit(3)  # after a MemoryError nothing here can be trusted to work: start afresh


def _pin_tinytorch() -> None:
    """`tinytorch` is the package beside this file: the grader's own tree, whatever else is installed."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tinytorch")
    spec = importlib.util.spec_from_file_location("tinytorch", os.path.join(folder, "__init__.py"),
                                                  submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules["tinytorch"] = module
    spec.loader.exec_module(module)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    _pin_tinytorch()
    sys.meta_path.insert(0, _BlockTorch())
    for name in list(sys.modules):
        if name.partition(".")[0] in BLOCKED_IMPORTS:
            del sys.modules[name]
    # Learner code must not find the trusted side's pipes by accident: they are fds >= 3 only.
    serve(int(argv[0]), int(argv[1]))


if __name__ == "__main__":
    main()
