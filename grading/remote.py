"""The trusted side of the trust boundary: tinytorch objects reached through transparent proxies.

When the grader runs checks, thresholds or milestones, `tinytorch` in the trusted process
is not the learner's code: it is a proxy package, and every object it hands out is a
`Proxy` for an object that lives in the learner's sandboxed worker (grading/worker.py).
Calls, attributes, operators, indexing, iteration and isinstance work as usual, so the
checks read the same either way:

    from tinytorch.tensor import Tensor      # a Proxy for the class in the worker
    y = Tensor(x) * 2                        # two requests; y is a Proxy
    y.data                                   # an ndarray copied across as plain data

Values that come back are plain data (grading/wire.py) and everything that decides a
verdict (comparisons with PyTorch, accuracy on test labels, timings) happens here.

`activate(config)` installs the proxy package; `WORKER_ENV` carries the config from the
grader to the trusted processes it starts.
"""

from __future__ import annotations

import builtins
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import select
import subprocess
import sys
import threading
import time
import types
import weakref
from pathlib import Path

from grading import wire

WORKER_ENV = "KATA_WORKER"  # JSON config set by the grader: the trusted process talks to a worker
CALL_TIMEOUT = float(os.environ.get("KATA_CALL_TIMEOUT", "120"))
LOCAL_SUBMODULES = {"datasets"}  # course code under tinytorch.* that runs on the trusted side
EXCEPTIONS = {name: obj for name, obj in vars(builtins).items()
              if isinstance(obj, type) and issubclass(obj, BaseException)}


class LearnerWorkerError(RuntimeError):
    """The learner's worker process ended (crash, os._exit, memory limit, timeout)."""


class LearnerError(Exception):
    """An exception of a class the learner defined (its builtin base is in .base)."""


def _remote_exception(info: dict) -> BaseException:
    base = EXCEPTIONS.get(str(info.get("type")), RuntimeError)
    if base in (SystemExit, KeyboardInterrupt, GeneratorExit, BaseException):
        base = RuntimeError  # the learner's code may not stop the trusted side
    name, message = str(info.get("name", base.__name__))[:200], str(info.get("message", ""))[:2000]
    text = message if name == base.__name__ else f"{name}: {message}"
    try:
        err = base(text) if base is not KeyError else KeyError(message)
    except Exception:
        err = RuntimeError(text)
    err.learner_traceback = str(info.get("traceback", ""))[-6000:]
    if err.learner_traceback and hasattr(err, "add_note"):
        err.add_note("learner-side traceback (most recent call last):\n" + err.learner_traceback)
    return err


class Connection:
    """One worker process and the request/reply channel to it."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: str | None = None):
        self.command, self.env, self.cwd = command, env, cwd
        self.proxies: weakref.WeakValueDictionary[int, Proxy] = weakref.WeakValueDictionary()
        self.released: list[list[int]] = []
        self.generation = 0
        self.process: subprocess.Popen | None = None
        self.output = bytearray()
        self.output_lock = threading.Lock()
        self.last_worker_seconds = 0.0
        self.last_reply_was_method = False
        self.config: dict = {}

    # -- process ------------------------------------------------------------------------------------
    def start(self) -> None:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        command = [part.replace("{READ_FD}", str(to_worker_r)).replace("{WRITE_FD}", str(from_worker_w))
                   for part in self.command]
        from grading import sandbox

        memory = getattr(self, "config", {}).get("memory")
        self.process = subprocess.Popen(command, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        pass_fds=(to_worker_r, from_worker_w), start_new_session=True,
                                        preexec_fn=sandbox.limits(memory) if memory else None)
        os.close(to_worker_r)
        os.close(from_worker_w)
        self.write_fd, self.read_fd = to_worker_w, from_worker_r
        self.buffer = bytearray()
        self.methods: set[tuple[int, str]] = set()  # (class reference, name) known to be methods
        self.generation += 1
        self.proxies = weakref.WeakValueDictionary()
        self.released = []
        threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True).start()

    def _drain(self, stream) -> None:
        cap = 256 * 1024
        try:
            for chunk in iter(lambda: stream.read1(65536), b""):
                with self.output_lock:
                    if len(self.output) < cap:
                        self.output += chunk[: cap - len(self.output)]
        except (OSError, ValueError):
            pass

    def take_output(self) -> str:
        with self.output_lock:
            text, self.output = bytes(self.output).decode("utf-8", "replace"), bytearray()
        return text

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        if self.process is None:
            return
        for fd in (self.write_fd, self.read_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        from grading import sandbox

        sandbox.end_process_tree(self.process)
        self.process = None

    # -- requests -----------------------------------------------------------------------------------
    def _read(self, count: int, deadline: float) -> bytes:
        while len(self.buffer) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the learner's code did not answer within {CALL_TIMEOUT:g} s")
            if not select.select([self.read_fd], [], [], min(left, 0.5))[0]:
                if self.process is not None and self.process.poll() is not None:
                    raise EOFError  # ended, though a stray descendant may still hold the pipe open
                continue
            chunk = os.read(self.read_fd, max(count - len(self.buffer), 1 << 16))
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def request(self, message: dict, timeout: float | None = None):
        __tracebackhide__ = True
        if not self.alive():
            self.start()
        if self.released:
            message = {**message, "release": self.released}
            self.released = []
        self._send(message)
        reply = self._receive(CALL_TIMEOUT if timeout is None else timeout)
        printed = self.take_output()
        if printed:
            sys.stdout.write(printed)
        if not isinstance(reply, dict) or not ({"ok", "err"} & reply.keys()):
            self._lost("sent a malformed reply")
        if "err" in reply:
            info = reply["err"] if isinstance(reply["err"], dict) else {}
            raise _remote_exception(info)
        seconds = reply.get("s")
        self.last_worker_seconds = float(seconds) if isinstance(seconds, (int, float)) else 0.0
        self.last_reply_was_method = isinstance(reply.get("method"), str)
        if self.last_reply_was_method:
            return reply["method"]
        return self._wrap(reply["ok"])

    def _send(self, message: dict) -> None:
        data = wire.dumps(message, self._ref_of)
        try:
            view = memoryview(data)
            while view:
                written = os.write(self.write_fd, view)
                view = view[written:]
            return
        except OSError:
            pass
        self._lost("stopped reading requests")

    def _receive(self, timeout: float):
        deadline = time.monotonic() + timeout
        problem = None
        try:
            (size,) = wire.struct.unpack(">Q", self._read(8, deadline))
            if size > wire.MAX_FRAME:
                problem = "sent an oversized reply"
            else:
                return wire.loads(self._read(size, deadline))
        except EOFError:
            problem = "ended"
        except TimeoutError as err:
            self.close()
            raise TimeoutError(str(err)) from None
        except wire.WireError as err:
            problem = f"sent data that is not plain data ({err})"
        self._lost(problem)

    def _lost(self, what: str):
        code = self.process.poll() if self.process is not None else None
        if code is None and self.process is not None:
            try:
                code = self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                code = None
        printed = self.take_output().strip().splitlines()[-3:]
        self.close()
        if code is not None and code > 128 and self.command[0].endswith("bwrap"):
            code = -(code - 128)  # bubblewrap reports its child's fatal signal as 128 + signal
        if code is not None and code < 0:
            import signal as _signal

            try:
                name = _signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            how = f": crashed with signal {name}"
            if name in ("SIGSEGV", "SIGBUS", "SIGABRT"):
                how += " (a crash in native code)"
            elif name == "SIGKILL":
                how += " (killed, often by the memory limit or the out-of-memory killer)"
        elif code is not None:
            how = f": exited early with code {code}"
        else:
            how = ""
        tail = ("; last output: " + " | ".join(printed))[:600] if printed else ""
        raise LearnerWorkerError(f"the learner's worker process {what}{how}{tail}")

    def _ref_of(self, obj):
        if isinstance(obj, Proxy):
            if obj._conn is not self or obj._generation != self.generation:
                obj = obj._revive()
            return wire.Ref(obj._ref)
        return None

    def _wrap(self, value, path: tuple | None = None):
        if isinstance(value, wire.Ref):
            proxy = self.proxies.get(value.id)
            if proxy is None:
                proxy = _KIND_PROXIES.get(value.kind, Proxy)._new(self, value.id, path, value.type_id)
                self.proxies[value.id] = proxy
            object.__setattr__(proxy, "_count", proxy._count + 1)
            return proxy
        if type(value) is list:
            return [self._wrap(v) for v in value]
        if type(value) is tuple:
            return tuple(self._wrap(v) for v in value)
        if type(value) is dict:
            return {k: self._wrap(v) for k, v in value.items()}
        return value

    def released_proxy(self, generation: int, ref: int, count: int) -> None:
        if generation == self.generation and self.alive():
            self.released.append([ref, count])

    # -- conveniences -------------------------------------------------------------------------------
    def import_module(self, name: str):
        proxy = self.request({"op": "import", "name": name})
        object.__setattr__(proxy, "_path", (name,))
        return proxy

    def keep(self, value):
        """Store plain data in the worker; returns a Proxy to pass it by reference."""
        return self.request({"op": "keep", "value": value})


_ALL_PROXIES_SLOTS = ("_conn", "_ref", "_path", "_generation", "_count", "_type", "__weakref__")


class Proxy:
    # A learner-side object seen from the trusted side. Every use is a request to the worker.
    # (No class docstring: `proxy.__doc__` is the learner object's.)

    __slots__ = _ALL_PROXIES_SLOTS
    __doc__ = property(lambda self: self.__getattr__("__doc__"))
    __array_ufunc__ = None  # numpy defers `array * proxy` to the proxy's reflected operator

    @classmethod
    def _new(cls, conn: Connection, ref: int, path: tuple | None, type_id: int = 0):
        proxy = object.__new__(cls)
        for name, value in (("_conn", conn), ("_ref", ref), ("_path", path), ("_generation", conn.generation),
                            ("_count", 0), ("_type", type_id)):
            object.__setattr__(proxy, name, value)
        return proxy

    def __del__(self):
        try:
            self._conn.released_proxy(self._generation, self._ref, self._count)
        except Exception:
            pass

    def _revive(self) -> "Proxy":
        """After the worker was restarted, find this object again by its import path."""
        if not self._path:
            raise LearnerWorkerError("this object was lost when the learner's worker process ended")
        fresh = self._conn.import_module(self._path[0])
        for name in self._path[1:]:
            fresh = getattr(fresh, name)
        return fresh

    def _req(self, message: dict):
        __tracebackhide__ = True
        conn = object.__getattribute__(self, "_conn")
        target = self if self._generation == conn.generation and conn.alive() else self._revive()
        return conn.request({**message, "obj": wire.Ref(target._ref)} if "obj" in message else message)

    def __getattr__(self, name: str):
        __tracebackhide__ = True
        if name.startswith("__") and name.endswith("__") and name not in _DESCRIPTIVE_DUNDERS:
            raise AttributeError(name)
        conn = self._conn
        if (self._type, name) in conn.methods and self._generation == conn.generation:
            return _BoundMethod(self, name)
        value = self._req({"op": "getattr", "obj": None, "name": name})
        if isinstance(value, str) and conn.last_reply_was_method:
            conn.methods.add((self._type, name))
            return _BoundMethod(self, name)
        if isinstance(value, Proxy) and self._path and value._path is None:
            object.__setattr__(value, "_path", self._path + (name,))
        return value

    def __setattr__(self, name: str, value) -> None:
        __tracebackhide__ = True
        self._req({"op": "setattr", "obj": None, "name": name, "args": [value]})

    def __delattr__(self, name: str) -> None:
        self._req({"op": "delattr", "obj": None, "name": name})

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True
        return self._req({"op": "call", "obj": None, "args": list(args), "kwargs": kwargs})

    def __dir__(self):
        return self._builtin("dir")

    def _builtin(self, name: str, *extra):
        __tracebackhide__ = True
        return self._conn.request({"op": "builtin", "name": name, "args": [self, *extra]})

    def _operator(self, name: str, *args):
        __tracebackhide__ = True
        return self._conn.request({"op": "operator", "name": name, "args": list(args)})

    def __repr__(self):
        try:
            text = self._builtin("repr")
        except Exception as err:  # a repr must not raise inside an assertion message
            text = f"<learner object; repr failed: {type(err).__name__}>"
        return str(text)[:1000]

    def __str__(self):
        return str(self._builtin("str"))[:4000]

    def __format__(self, spec):
        return str(self._builtin("format", spec))[:4000]

    def __bool__(self):
        return bool(self._operator("truth", self))

    def __len__(self):
        return int(self._builtin("len"))

    def __iter__(self):
        iterator = self._builtin("iter")
        while True:
            try:
                yield self._conn.request({"op": "builtin", "name": "next", "args": [iterator]})
            except StopIteration:
                return

    def __next__(self):
        return self._conn.request({"op": "builtin", "name": "next", "args": [self]})

    def __contains__(self, item):
        return bool(self._operator("contains", self, item))

    def __getitem__(self, key):
        __tracebackhide__ = True
        return self._operator("getitem", self, key)

    def __setitem__(self, key, value):
        self._operator("setitem", self, key, value)

    def __delitem__(self, key):
        self._operator("delitem", self, key)

    def __float__(self):
        return float(self._builtin("float"))

    def __int__(self):
        return int(self._builtin("int"))

    def __index__(self):
        return int(self._operator("index", self))

    def __complex__(self):
        return complex(self._builtin("complex"))

    def __array__(self, dtype=None, copy=None):
        import numpy as np

        array = self._req({"op": "fetch", "obj": None})
        return array if dtype is None else np.asarray(array, dtype=dtype)

    def __enter__(self):
        return self._req({"op": "method", "obj": None, "name": "__enter__"})

    def __exit__(self, *exc_info):
        return self._req({"op": "method", "obj": None, "name": "__exit__", "args": [None, None, None]})

    def __instancecheck__(self, instance) -> bool:
        return isinstance(instance, Proxy) and bool(
            self._conn.request({"op": "builtin", "name": "isinstance", "args": [instance, self]}))

    def __subclasscheck__(self, subclass) -> bool:
        return isinstance(subclass, Proxy) and bool(
            self._conn.request({"op": "builtin", "name": "issubclass", "args": [subclass, self]}))

    __hash__ = object.__hash__  # identity: one Proxy per live learner object


# Dunder attributes that describe an object (a function's name, a class's docstring) and may be
# asked of the learner's side; every other dunder is Python's machinery and stays here.
_DESCRIPTIVE_DUNDERS = frozenset({"__name__", "__qualname__", "__doc__", "__module__", "__wrapped__"})


class ListProxy(Proxy):
    """A learner-side list holding learner objects: by reference, and `isinstance(x, list)` holds."""

    __slots__ = ()
    __class__ = property(lambda self: list)


class DictProxy(Proxy):
    """A learner-side dict holding learner objects: by reference, and `isinstance(x, dict)` holds."""

    __slots__ = ()
    __class__ = property(lambda self: dict)

    def keys(self):
        return list(self)

    def items(self):
        return [(key, self[key]) for key in self]

    def values(self):
        return [self[key] for key in self]


class GeneratorProxy(Proxy):
    """The learner's numpy random generator (its state matters): by reference, `isinstance` holds."""

    __slots__ = ()
    __class__ = property(lambda self: _numpy_generator())


def _numpy_generator():
    import numpy as np

    return np.random.Generator


_KIND_PROXIES = {"list": ListProxy, "dict": DictProxy, "generator": GeneratorProxy}


class _BoundMethod:
    """`proxy.name` for a method: calling it is one request (the worker looks the method up again)."""

    __slots__ = ("proxy", "name")

    def __init__(self, proxy: Proxy, name: str):
        self.proxy, self.name = proxy, name

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True
        return self.proxy._req({"op": "method", "obj": None, "name": self.name, "args": list(args), "kwargs": kwargs})

    def __repr__(self):
        return f"<learner method {self.name}>"


def _binary(name: str, reflected: bool = False):
    if reflected:
        def method(self, other):
            __tracebackhide__ = True
            return self._operator(name, other, self)
    else:
        def method(self, other):
            __tracebackhide__ = True
            return self._operator(name, self, other)
    return method


for _name, _op in [("add", "add"), ("sub", "sub"), ("mul", "mul"), ("truediv", "truediv"),
                   ("floordiv", "floordiv"), ("mod", "mod"), ("pow", "pow"), ("matmul", "matmul"),
                   ("and", "and_"), ("or", "or_"), ("xor", "xor"), ("lshift", "lshift"), ("rshift", "rshift")]:
    setattr(Proxy, f"__{_name}__", _binary(_op))
    setattr(Proxy, f"__r{_name}__", _binary(_op, reflected=True))
    setattr(Proxy, f"__i{_name}__", _binary("i" + _op.rstrip("_")))
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(Proxy, f"__{_name}__", _binary(_name))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(Proxy, f"__{_name}__", lambda self, _n=_name: self._operator(_n, self))
Proxy.__hash__ = object.__hash__


# -- the proxy package --------------------------------------------------------------------------------


class RemoteModule(types.ModuleType):
    """`tinytorch` or `tinytorch.<name>` in the trusted process: attributes come from the worker."""

    def __getattr__(self, name: str):
        __tracebackhide__ = True
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        target = self.__dict__.get("_kata_proxy")
        if target is None:
            raise AttributeError(name)
        value = getattr(target, name)
        self.__dict__[name] = value  # module attributes are looked up once
        return value


class _RemoteFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, conn: Connection):
        self.conn = conn

    def find_spec(self, fullname, path=None, target=None):
        top, _, rest = fullname.partition(".")
        if top != "tinytorch":
            return None
        if rest in LOCAL_SUBMODULES:
            location = Path(__file__).resolve().parent / "tinytorch" / f"{rest}.py"
            return importlib.util.spec_from_file_location(fullname, location)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=not rest)

    def create_module(self, spec):
        module = RemoteModule(spec.name)
        module.__dict__["_kata_proxy"] = self.conn.import_module(spec.name)
        if "." not in spec.name:
            module.__path__ = []
        return module

    def exec_module(self, module):
        return None


_ACTIVE: Connection | None = None


def active() -> Connection | None:
    """The connection to the learner's worker when this process is on the trusted side."""
    return _ACTIVE


def activate(config: dict) -> Connection:
    """Make `tinytorch` in this process a proxy package for a sandboxed worker."""
    global _ACTIVE
    from grading import integrity

    for name in [n for n in sys.modules if n == "tinytorch" or n.startswith("tinytorch.")]:
        if not name.endswith(tuple(LOCAL_SUBMODULES)):
            raise RuntimeError(f"{name} was imported before the trust boundary was set up")
    command, env, cwd = integrity.worker_command(config)
    from grading import sandbox

    sandbox.become_subreaper()
    conn = Connection(command, env, cwd)
    conn.config = config
    sys.meta_path.insert(0, _RemoteFinder(conn))
    _ACTIVE = conn
    import atexit

    atexit.register(conn.close)
    return conn


def activate_from_env() -> Connection | None:
    text = os.environ.get(WORKER_ENV)
    if not text:
        return None
    return activate(json.loads(text))


def clean_worker(reference: bool = False) -> Connection:
    """A second worker in the same sandbox that never loads the learner's code: a fair baseline.

    Thresholds time the learner's op and the baseline the same way (one request each), and
    the learner's code cannot reach the baseline's process to slow it down.
    reference: make the course's reference modules importable there (a baseline that is the
    reference's own op, e.g. conv2d); otherwise only numpy and the standard library are.
    """
    if _ACTIVE is None:
        raise RuntimeError("no learner worker is active")
    from grading import curriculum, integrity

    lent = [module.key for module in curriculum.load().modules] if reference else []
    config = {**_ACTIVE.config, "katas": None, "impl": "reference", "lent": lent}
    conn = Connection(*integrity.worker_command(config))
    import atexit

    atexit.register(conn.close)
    return conn
