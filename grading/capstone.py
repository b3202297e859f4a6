"""The capstone's trusted measuring harness (module 20): a TinyMLPerf run of one submission.

The learner's `katas/20_capstone/capstone.py` defines three functions (docs/GRADING.md, "Capstone"):

    train(images (N,1,28,28) float32 in [0,1], labels (N,) int64, seed) -> {name: np.ndarray}
    load(state) -> model
    predict(model, images (B,1,28,28) float32) -> logits (B, 10)

What runs where (every verdict on this, the trusted, side; learner code only in workers):

* `train` runs in one sandboxed worker with the learner's assembled framework. The state it
  returns crosses as plain numpy arrays (grading/wire.py); the worker is then ended.
* `load`/`predict` run in a FRESH worker that receives only that state: weights cannot hide in
  globals, files or the scratch folder of the training worker (each worker has its own).
* The baseline (784-256-128-10 ReLU MLP, float32, Adam lr 1e-3, batch 128, one epoch, seed 0;
  `baseline_train/load/predict` below) runs through the same interface on the course's
  REFERENCE framework in clean workers of its own, in the same run.
* Capstone workers see only the `.py` files of the kata tree (a private copy holding nothing
  else: no checkpoint shipped beside the code), and an audit hook installed before any learner
  code runs refuses to open anything outside the standard library, numpy, the course's
  grading/ package, the lent reference modules, the kata copy and the worker's own scratch
  folder (so neither the MNIST files nor another framework such as torch/jax/scipy/sklearn can
  be read or imported, whatever path trick is tried), and refuses to fork, spawn, load native
  libraries or reach the garbage collector's object lists. At the namespace level the
  filesystem hides all of that as well (grading/integrity.py).
* Test LABELS never leave this process; test images go to the predict workers. Accuracy,
  latency (timed here around each request), throughput and size (sum of `nbytes` of the
  shipped state, measured here) are computed here. While one side is timed, the other side's
  worker processes are stopped (SIGSTOP), so neither can slow the other down.
* Latency: single-stream, one image per query, p50/p90 over >= 200 queries after warm-up, the
  submission and the baseline interleaved in blocks of 10 queries (percentiles with numpy's
  linear interpolation: module 14/19's definition). Throughput: the accuracy pass itself, batches
  of 1000 interleaved, images / summed batch time (each image is seen once, so a cache keyed on
  inputs cannot help).
* A state probe: the submission's own `load`/`predict`, in another fresh worker, on the state
  with every weight-like array (floats of >= 2 elements, integer/bool arrays of >= 64) replaced
  by noise of the same dtype and shape. If its predictions still agree with the real ones on
  >= 50 % of 1,000 test images, the model did not come from the state it shipped (weights
  embedded elsewhere): invalid.

Divisions: "closed" when accuracy >= baseline - accuracy_band; "open" when accuracy >= open_floor
but outside the band; "invalid" otherwise or when anything above failed. A closed submission
earns the manifest threshold's points when size_ratio <= max_size_ratio OR latency_ratio <=
max_latency_ratio (grading/curriculum.toml, module 20).

    python -m grading.capstone --impl reference --json out.json --plot out.png
    python -m grading.capstone --katas path/to/katas [--data-dir D] [--json ...] [--plot ...]

Under the grader (grading/grade.py -> run_threshold below) this file runs as
`python -m grading.capstone --grader --out PATH` in a trusted process whose KATA_WORKER names
the learner's sandbox; the workers it starts run `python -m grading.capstone --worker R W`.
"""

from __future__ import annotations

import json
import os
import sys
import time

SCHEMA = "tinytorch-capstone/1"
EXPORT = "capstone"
BENCHMARK = "grading.capstone:threshold"
SOURCE_LIMIT = 64 * 1024
DEFAULT_THRESHOLDS = {"max_size_ratio": 0.5, "max_latency_ratio": 0.8, "accuracy_band": 0.01, "open_floor": 0.90}
FIGURES = ("accuracy", "latency_p50_ms", "latency_p90_ms", "throughput_per_s", "size_bytes", "train_s")
LATENCY_QUERIES = 200
WARMUP_QUERIES = 20
BLOCK = 10  # latency queries per side before switching
BATCH = 1000
PROBE_IMAGES = 1000
PROBE_MAX_AGREEMENT = 0.5
TRAIN_TIMEOUT = 600.0
CALL_TIMEOUT = 120.0
LATENCY_BUDGET = 60.0  # seconds of submission latency queries before the phase stops early
GUARD_ENV = "KATA_CAPSTONE_GUARD"
# Top-level packages a capstone worker may never import (on top of worker.py's torch block).
BLOCKED_FRAMEWORKS = (
    "torch", "functorch", "torchgen", "torchvision", "torchaudio", "jax", "jaxlib", "flax", "optax", "equinox",
    "tensorflow", "tensorboard", "keras", "tf_keras", "sklearn", "scipy", "onnx", "onnxruntime", "mxnet", "paddle",
    "cupy", "numba", "tinygrad", "theano", "pytensor", "chainer", "mlx", "xgboost", "lightgbm", "catboost",
    "transformers", "safetensors", "h5py", "pandas", "PIL", "cv2", "matplotlib",
)
# Audit events refused in a capstone worker (prefixes): escapes, native code, other processes.
DENIED_EVENTS = ("os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.kill",
                 "os.killpg", "subprocess.", "pty.", "ctypes.", "socket.", "gc.get_objects", "gc.get_referrers",
                 "gc.get_referents", "sys.remote_exec", "cpython.remote_debugger", "webbrowser.")


class HarnessError(RuntimeError):
    """The harness itself could not measure (missing data, the baseline failed): not the learner's fault."""


class Invalid(Exception):
    """The submission is invalid; the message is the reason shown to the learner."""


# =====================================================================================================
# Worker side: runs inside capstone workers (stdlib + numpy only at import time)
# =====================================================================================================


def _install_guard(spec: dict) -> None:
    """An audit hook (cannot be removed from Python) that confines what the worker can open and do."""
    realpath, sep = os.path.realpath, os.sep
    allow = tuple(sorted({realpath(p).rstrip(sep) for p in spec.get("allow", ()) if p}))
    deny = tuple(sorted({realpath(p).rstrip(sep) for p in spec.get("deny", ()) if p}))
    base = tuple(sorted({realpath(p).rstrip(sep) for p in spec.get("base", ()) if p}))
    blocked = frozenset(spec.get("blocked", ()))
    denied_events = tuple(spec.get("events", ()))

    def under(path: str, roots: tuple) -> bool:
        return any(path == root or path.startswith(root + sep) for root in roots)

    def readable(target) -> bool:
        if isinstance(target, int):
            return True  # an already open descriptor
        try:
            path = realpath(os.fsdecode(target))
        except (TypeError, ValueError):
            return False
        if under(path, allow):
            return True
        if under(path, deny):
            return False
        return under(path, base)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            if args and args[0] is not None and not readable(args[0]):
                raise PermissionError(f"the capstone sandbox does not expose {args[0]!s:.200}: a submission"
                                      " uses only its own .py files, numpy, the standard library and tinytorch")
        elif event == "import":
            if args and str(args[0]).partition(".")[0] in blocked:
                raise ImportError(f"{args[0]} is not available to a capstone submission: build it with tinytorch")
        elif event.startswith(denied_events):
            raise PermissionError(f"{event} is not allowed in a capstone submission's worker")

    sys.addaudithook(hook)


def _worker_main(read_fd: int, write_fd: int) -> None:
    """A capstone worker: grading.worker's request loop, behind the audit hook."""
    from grading import worker  # numpy, the wire and worker's own torch block load before the hook

    spec = json.loads(os.environ.get(GUARD_ENV) or "{}")
    worker._pin_tinytorch()  # the course's tinytorch package (reads grading/ files: allowed)
    sys.meta_path.insert(0, worker._BlockTorch())
    _install_guard(spec)
    worker.serve(read_fd, write_fd)


def serve_predict(predict, model, images):
    """predict(model, images) as one plain array, inside the worker (so a lazily computed tinytorch
    Tensor is computed within the timed request)."""
    import numpy as np

    out = predict(model, images)
    if not isinstance(out, np.ndarray):
        out = getattr(out, "data", out)
    out = np.asarray(out)
    if out.dtype == object:
        raise TypeError("predict() must return logits as numbers (an ndarray or a tinytorch Tensor)")
    return out


# -- the baseline (runs on the REFERENCE framework in clean workers) ----------------------------------


def baseline_train(images, labels, seed: int) -> dict:
    """784-256-128-10 ReLU MLP, float32, Adam lr 1e-3, batch 128, one epoch, shuffled with `seed`."""
    import numpy as np

    import tinytorch.autograd  # noqa: F401  (registers the backward engine)
    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential, manual_seed
    from tinytorch.losses import cross_entropy
    from tinytorch.optimizers import Adam
    from tinytorch.tensor import Tensor

    manual_seed(seed)
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    optimizer = Adam(model.parameters(), lr=1e-3)
    x = np.ascontiguousarray(images, dtype=np.float32).reshape(len(images), 784)
    y = np.asarray(labels, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    for start in range(0, len(x), 128):
        index = order[start:start + 128]
        loss = cross_entropy(model(Tensor(x[index])), Tensor(y[index]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {name: np.array(value, dtype=np.float32) for name, value in model.state_dict().items()}


def baseline_load(state: dict):
    from tinytorch.activations import ReLU
    from tinytorch.layers import Linear, Sequential

    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    model.load_state_dict(state)
    model.eval()
    return model


def baseline_predict(model, images):
    import numpy as np

    from tinytorch.autograd import no_grad
    from tinytorch.tensor import Tensor

    with no_grad():
        return model(Tensor(np.asarray(images, dtype=np.float32).reshape(len(images), 784))).numpy()


# =====================================================================================================
# Trusted side
# =====================================================================================================


def manifest_thresholds() -> dict:
    """Module 20's capstone threshold from grading/curriculum.toml (with its extra keys)."""
    import tomllib

    from grading import curriculum

    raw = tomllib.loads(curriculum.MANIFEST.read_text(encoding="utf-8")) if hasattr(curriculum, "MANIFEST") else {}
    for module in raw.get("modules", ()):
        for threshold in module.get("thresholds", ()):
            if threshold.get("benchmark") == BENCHMARK:
                return {key: float(threshold.get(key, value)) for key, value in DEFAULT_THRESHOLDS.items()}
    return dict(DEFAULT_THRESHOLDS)


def is_capstone(threshold) -> bool:
    return getattr(threshold, "benchmark", None) == BENCHMARK


def load_data(data_dir=None, train_limit: int | None = None, test_limit: int | None = None):
    """MNIST as the interface gives it: float32 (N,1,28,28) in [0,1], int64 labels (grading/tinytorch/datasets.py)."""
    import importlib.util

    import numpy as np

    from grading import curriculum

    path = curriculum.PROJECT_ROOT / "grading" / "tinytorch" / "datasets.py"
    spec = importlib.util.spec_from_file_location("_kata_capstone_datasets", path)
    datasets = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = datasets  # dataclasses look their module up there
    spec.loader.exec_module(datasets)
    try:
        mnist = datasets.load_mnist(data_dir)
    except datasets.DatasetError as err:
        raise HarnessError(f"MNIST is not available: {err}") from None

    def images(raw, limit):
        raw = raw[:limit] if limit else raw
        return (raw.astype(np.float32) / np.float32(255.0)).reshape(len(raw), 1, 28, 28)

    train_y = mnist.train_labels[:train_limit] if train_limit else mnist.train_labels
    test_y = mnist.test_labels[:test_limit] if test_limit else mnist.test_labels
    return (images(mnist.train_images, train_limit), np.asarray(train_y, dtype=np.int64),
            images(mnist.test_images, test_limit), np.asarray(test_y, dtype=np.int64))


def py_only_copy(source, destination) -> None:
    """Every regular `.py` file of the kata tree (no links, no data, no checkpoints)."""
    from pathlib import Path

    source, destination = Path(source), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    for folder, dirs, files in os.walk(source, followlinks=False):
        rel = Path(folder).relative_to(source)
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink() and d != "__pycache__"]
        for name in files:
            path = Path(folder) / name
            if name.endswith(".py") and path.is_file() and not path.is_symlink():
                (destination / rel).mkdir(parents=True, exist_ok=True)
                (destination / rel / name).write_bytes(path.read_bytes())


def source_problem(folder) -> str | None:
    """Why the submission's sources are not acceptable (over the 64 KiB cap), else None."""
    from pathlib import Path

    folder = Path(folder)
    files = [p for p in folder.rglob("*.py") if p.is_file() and not p.is_symlink()] if folder.is_dir() else []
    total = sum(p.stat().st_size for p in files)
    if total > SOURCE_LIMIT:
        return (f"source too large: the .py files of {folder.name}/ total {total:,} bytes, over the"
                f" {SOURCE_LIMIT:,}-byte limit (weights embedded in the source would be a model the"
                " submission did not produce: train() must build them)")
    return None


def _guard_spec(config: dict, scratch: str, data_dirs: list[str]) -> dict:
    import importlib.util
    import sysconfig
    from pathlib import Path

    from grading import curriculum

    root = curriculum.PROJECT_ROOT
    allow = [str(root / "grading"), scratch, "/dev/null", "/dev/urandom", "/proc/self", "/proc/cpuinfo",
             "/sys/devices/system/cpu", "/etc/localtime", "/usr/share/zoneinfo", "/etc/os-release",
             "/usr/lib/os-release"]
    if config.get("katas"):
        allow.append(str(config["katas"]))
    allow += [str(root / "reference" / key) for key in config.get("lent", [])]
    spec = importlib.util.find_spec("numpy")
    for location in (spec.submodule_search_locations or []) if spec else []:
        site = Path(location).resolve().parent
        allow += [str(p) for p in site.iterdir() if p.name.lower().startswith("numpy")]
    site_dirs = [p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p)]
    deny = site_dirs + [str(root)] + data_dirs
    paths = sysconfig.get_paths()
    base = {paths.get("stdlib"), paths.get("platstdlib"), sys.prefix, sys.base_prefix, sys.exec_prefix}
    base |= {p for p in sys.path if p and p.endswith((".zip", "lib-dynload"))}
    return {"allow": allow, "deny": deny, "base": sorted(b for b in base if b), "blocked": list(BLOCKED_FRAMEWORKS),
            "events": list(DENIED_EVENTS)}


class Contestant:
    """One side of the run: where its code comes from and which functions it calls."""

    def __init__(self, name: str, config: dict, module: str, functions: tuple[str, str, str], workroot: str,
                 data_dirs: list[str]):
        self.name, self.config, self.module, self.functions = name, config, module, functions
        self.workroot, self.data_dirs = workroot, data_dirs
        self.connections: list = []

    def worker(self):
        """A fresh worker (own scratch folder) behind the capstone audit hook."""
        import tempfile

        from grading import integrity, remote

        scratch = tempfile.mkdtemp(prefix=f"{self.name}-", dir=self.workroot)
        os.chmod(scratch, 0o755)
        config = {**self.config, "scratch": scratch}
        argv, env, cwd = integrity.worker_command(config)
        where = len(argv) - 1 - argv[::-1].index("grading.worker")
        argv = argv[:where] + ["grading.capstone", "--worker"] + argv[where + 1:]
        if "--" in argv and argv[0].endswith("bwrap"):  # namespace level: hide other frameworks' folders too
            blocker = integrity._torch_blocker()
            mounts = []
            for folder in integrity._package_dirs(BLOCKED_FRAMEWORKS):
                mounts += ["--ro-bind", str(blocker), str(folder)]
            cut = argv.index("--")
            argv = argv[:cut] + mounts + argv[cut:]
        env = {**env, "TMPDIR": scratch, GUARD_ENV: json.dumps(_guard_spec(config, scratch, self.data_dirs))}
        conn = remote.Connection(argv, env, cwd)
        conn.config = config
        self.connections.append(conn)
        return conn

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.connections = []


def _descendants(pid: int) -> list[int]:
    from grading import sandbox

    found, frontier = [], [pid]
    while frontier:
        children = [c for p in frontier for c in sandbox._children(p)]
        found += children
        frontier = children
    return found


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


class _Pause:
    """Stop (SIGSTOP) every process of one worker while the other side is being timed."""

    def __init__(self, conn):
        self.conn = conn
        self.stopped: list[int] = []

    def stop(self) -> None:
        import signal

        process = self.conn.process
        if process is None or self.stopped:
            return
        for pid in [process.pid, *_descendants(process.pid)]:
            try:
                os.kill(pid, signal.SIGSTOP)
                self.stopped.append(pid)
            except OSError:
                pass
        for _ in range(50):  # SIGSTOP is asynchronous: wait (up to ~50 ms) until every process is stopped
            if all(_state(pid) in ("T", "t", "Z", "X", None) for pid in self.stopped):
                break
            time.sleep(0.001)

    def resume(self) -> None:
        import signal

        for pid in self.stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        self.stopped = []


def _describe(err: BaseException, stage: str, timeout: float | None = None) -> str:
    from grading import integrity, remote

    if isinstance(err, TimeoutError) and getattr(err, "learner_traceback", None) is None:
        limit = f" within {timeout:g} s" if timeout else ""
        return f"{stage} timed out: it did not answer{limit} (its worker was killed)"
    if isinstance(err, remote.LearnerWorkerError):
        return f"{stage} crashed: {err}"
    text = f"{stage} raised {type(err).__name__}: {err}"
    trace = getattr(err, "learner_traceback", "")
    frames = [line.strip() for line in trace.splitlines() if line.strip().startswith("File ")]
    where = [f for f in frames if "katas/" in f][-1:] or frames[-1:]
    if where:
        text += f" ({where[0]})"
    return integrity.scrub(text, 600)


def _call(conn, fn, args: list, timeout: float, stage: str, keep: bool = False):
    try:
        return conn.request({"op": "call", "obj": fn, "args": args, **({"keep_result": True} if keep else {})},
                            timeout=timeout)
    except Invalid:
        raise
    except Exception as err:
        raise Invalid(_describe(err, stage, timeout)) from None


def _functions(conn, contestant: Contestant, timeout: float):
    from grading import remote

    try:
        module = conn.import_module(contestant.module)
    except Exception as err:
        raise Invalid(_describe(err, f"importing tinytorch.{EXPORT}")) from None
    found = []
    for name in contestant.functions:
        try:
            fn = getattr(module, name)
        except AttributeError:
            raise Invalid(f"interface: tinytorch.{EXPORT} has no function {name}() (it must define train, load"
                          " and predict)") from None
        except Exception as err:
            raise Invalid(_describe(err, f"looking up {name}")) from None
        if not isinstance(fn, remote.Proxy) or not conn.request({"op": "builtin", "name": "callable", "args": [fn]},
                                                                 timeout=timeout):
            raise Invalid(f"interface: tinytorch.{EXPORT}.{name} is not a function")
        found.append(fn)
    return found


def _validate_state(state) -> dict:
    import numpy as np

    if not isinstance(state, dict) or type(state) is not dict:
        kind = "dict holding objects that are not numpy arrays" if isinstance(state, dict) else type(state).__name__
        raise Invalid(f"interface: train() must return a dict of numpy arrays (name -> np.ndarray), got a {kind}")
    if not state:
        raise Invalid("interface: train() returned an empty state: everything the model needs must be in it")
    for key, value in state.items():
        if not isinstance(key, str):
            raise Invalid(f"interface: the state's keys must be strings, got {key!r}")
        if type(value) is not np.ndarray:
            raise Invalid(f"interface: state[{key!r}] must be a numpy array, got {type(value).__name__}")
    return state


def _train(contestant: Contestant, images, labels, seed: int, timeout: float):
    conn = contestant.worker()
    try:
        train, _, _ = _functions(conn, contestant, CALL_TIMEOUT)
        started = time.perf_counter()
        state = _call(conn, train, [images, labels, int(seed)], timeout, "train()")
        seconds = time.perf_counter() - started
        return _validate_state(state), seconds
    finally:
        conn.close()


def _scramble(state: dict, seed: int) -> tuple[dict, int]:
    """Every weight-like array replaced by noise of its dtype and shape; how many were replaced."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out, replaced = {}, 0
    for key, value in state.items():
        kind = value.dtype.kind
        if kind == "f" and value.size >= 2:
            finite = value[np.isfinite(value)].astype(np.float64)
            spread = max(float(finite.std()) if finite.size else 0.0, float(np.abs(finite).max()) * 0.5
                         if finite.size else 0.0, 1e-3)
            out[key] = (rng.standard_normal(value.shape) * spread).astype(value.dtype)
            replaced += 1
        elif kind in "iu" and value.size >= 64:
            low, high = int(value.min()), int(value.max())
            if low == high:
                info = np.iinfo(value.dtype)
                low, high = max(info.min, low - 8), min(info.max, high + 8)
            out[key] = rng.integers(low, high, size=value.shape, endpoint=True).astype(value.dtype)
            replaced += 1
        elif kind == "b" and value.size >= 64:
            out[key] = rng.random(value.shape) < max(0.05, float(value.mean()))
            replaced += 1
        else:
            out[key] = value
    return out, replaced


def _check_logits(out, count: int, who: str):
    import numpy as np

    if type(out) is not np.ndarray or out.dtype.kind not in "fiu" or out.shape != (count, 10):
        shape = getattr(out, "shape", None)
        raise Invalid(f"interface: predict() must return logits of shape ({count}, 10), got "
                      f"{type(out).__name__} {shape} {getattr(out, 'dtype', '')}".rstrip()
                      + ("" if who == "submission" else f" (the {who})"))
    return out


def measure(submission: Contestant, baseline: Contestant, data, *, seed: int = 0, thresholds: dict | None = None,
            latency_queries: int = LATENCY_QUERIES, warmup: int = WARMUP_QUERIES, train_timeout: float = TRAIN_TIMEOUT,
            call_timeout: float = CALL_TIMEOUT, probe: bool = True, log=print) -> dict:
    """The whole run; returns the result dict (schema grading/schemas/capstone_result.schema.json)."""
    import numpy as np

    train_x, train_y, test_x, test_y = data
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    result = {
        "schema": SCHEMA, "status": "invalid", "reason": None, "points_earned": False,
        "submission": {key: None for key in FIGURES}, "baseline": {key: None for key in FIGURES},
        "ratios": {"latency": None, "size": None, "throughput": None},
        "thresholds": limits, "machine": machine(), "details": {},
    }
    details = result["details"]
    details.update(train_images=len(train_x), test_images=len(test_x), seed=seed)
    figures = {"submission": result["submission"], "baseline": result["baseline"]}
    try:
        log("capstone: training the submission ...")
        state, seconds = _train(submission, train_x, train_y, seed, train_timeout)
        figures["submission"]["train_s"] = round(seconds, 3)
        figures["submission"]["size_bytes"] = int(sum(a.nbytes for a in state.values()))
        details["state_arrays"] = {k: [str(v.dtype), list(v.shape)] for k, v in list(state.items())[:64]}
        log(f"capstone: submission trained in {seconds:.1f} s, state {figures['submission']['size_bytes']:,} bytes")
    except Invalid as why:
        result["reason"] = str(why)
        return result
    try:
        log("capstone: training the baseline (784-256-128-10 MLP, 1 epoch Adam, reference framework) ...")
        base_state, seconds = _train(baseline, train_x, train_y, 0, max(train_timeout, 600.0))
    except Invalid as why:
        raise HarnessError(f"the baseline failed: {why}") from None
    figures["baseline"]["train_s"] = round(seconds, 3)
    figures["baseline"]["size_bytes"] = int(sum(a.nbytes for a in base_state.values()))
    log(f"capstone: baseline trained in {seconds:.1f} s")

    sides = {}
    try:
        for name, contestant, shipped in (("submission", submission, state), ("baseline", baseline, base_state)):
            conn = contestant.worker()
            stage_who = "" if name == "submission" else " (baseline)"
            try:
                load, _, predict = (lambda f: (f[1], None, f[2]))(_functions(conn, contestant, call_timeout))
                helper = conn.import_module("grading.capstone").serve_predict
                model = _call(conn, load, [shipped], call_timeout, "load()" + stage_who, keep=True)
            except Invalid as why:
                if name == "baseline":
                    raise HarnessError(f"the baseline failed: {why}") from None
                raise
            sides[name] = {"conn": conn, "model": model, "predict": predict, "helper": helper, "pause": _Pause(conn),
                           "latency": [], "batch_s": [], "logits": []}
        for side in sides.values():
            side["pause"].stop()

        def activate(name: str) -> None:
            """Only `name`'s worker runs from here on (the other is stopped); a ping makes sure it is awake."""
            for other, side in sides.items():
                if other != name:
                    side["pause"].stop()
            sides[name]["pause"].resume()
            try:
                sides[name]["conn"].request({"op": "ping"}, timeout=call_timeout)
            except Exception as err:
                if name == "baseline":
                    raise HarnessError(f"the baseline's worker failed: {_describe(err, 'a ping')}") from None
                raise Invalid(_describe(err, "the worker (between calls)")) from None

        def timed(name: str, images_ref, count: int, stage: str, timeout: float):
            side = sides[name]
            message = {"op": "call", "obj": side["helper"], "args": [side["predict"], side["model"], images_ref]}
            try:
                started = time.perf_counter()
                out = side["conn"].request(message, timeout=timeout)
                elapsed = time.perf_counter() - started
            except Exception as err:
                if name == "baseline":
                    raise HarnessError(f"the baseline failed: {_describe(err, stage, timeout)}") from None
                raise Invalid(_describe(err, stage, timeout)) from None
            return _check_logits(out, count, name), elapsed

        def keep(name: str, array):
            activate(name)
            return sides[name]["conn"].keep(array)

        # -- warm-up (training images, never the test set) and single-stream latency ------------------
        log(f"capstone: latency, {latency_queries} single-image queries per side, interleaved ...")
        rng = np.random.default_rng(seed + 1)
        warm = train_x[rng.choice(len(train_x), size=min(warmup, len(train_x)), replace=False)]
        queries = test_x[:min(latency_queries, len(test_x))]
        refs = {name: ([keep(name, warm[i:i + 1]) for i in range(len(warm))],
                       [keep(name, queries[i:i + 1]) for i in range(len(queries))]) for name in sides}
        for name in sides:
            activate(name)
            for ref in refs[name][0]:
                timed(name, ref, 1, "predict() (warm-up)", call_timeout)
        spent, count = 0.0, 0
        for block in range(0, len(queries), BLOCK):
            order = ("submission", "baseline") if (block // BLOCK) % 2 == 0 else ("baseline", "submission")
            for name in order:
                activate(name)
                for ref in refs[name][1][block:block + BLOCK]:
                    _, elapsed = timed(name, ref, 1, "predict() (one image)", call_timeout)
                    sides[name]["latency"].append(elapsed)
                    if name == "submission":
                        spent += elapsed
            count = len(sides["submission"]["latency"])
            if spent > LATENCY_BUDGET and count < len(queries):
                details["latency_note"] = f"stopped after {count} queries: {spent:.0f} s spent on the submission"
                break
        details["latency_queries"] = count
        del refs

        # -- accuracy and offline throughput: one pass, batches of 1000 interleaved -------------------
        log("capstone: accuracy and throughput over the test set, batches of 1000, interleaved ...")
        for index, start in enumerate(range(0, len(test_x), BATCH)):
            batch = test_x[start:start + BATCH]
            order = ("submission", "baseline") if index % 2 == 0 else ("baseline", "submission")
            for name in order:
                ref = keep(name, batch)
                activate(name)
                logits, elapsed = timed(name, ref, len(batch), "predict() (batch of 1000)", max(call_timeout, 120.0))
                sides[name]["batch_s"].append(elapsed)
                sides[name]["logits"].append(logits)
                if name == "submission":
                    after = np.asarray(ref)
                    if not np.array_equal(after, batch):
                        raise Invalid("interface: predict() modified the images it was given (it must not)")
                del ref
        for name, side in sides.items():
            logits = np.concatenate(side["logits"]).astype(np.float64)
            predictions = logits.argmax(axis=1)
            figures[name]["accuracy"] = round(float((predictions == test_y).mean()), 6)
            latency = np.asarray(side["latency"])
            figures[name]["latency_p50_ms"] = round(float(np.percentile(latency, 50)) * 1e3, 6)
            figures[name]["latency_p90_ms"] = round(float(np.percentile(latency, 90)) * 1e3, 6)
            figures[name]["throughput_per_s"] = round(len(test_x) / float(sum(side["batch_s"])), 3)
            side["predictions"] = predictions
    except Invalid as why:
        result["reason"] = str(why)
        return result
    finally:
        for side in sides.values():
            side["pause"].resume()
        submission.close()
        baseline.close()

    sub, base = figures["submission"], figures["baseline"]
    result["ratios"] = {"latency": sub["latency_p50_ms"] / base["latency_p50_ms"],
                        "size": sub["size_bytes"] / base["size_bytes"],
                        "throughput": sub["throughput_per_s"] / base["throughput_per_s"]}
    details["latency_ms"] = {name: [round(t * 1e3, 4) for t in side["latency"]] for name, side in sides.items()}

    # -- the state probe ------------------------------------------------------------------------------
    if probe:
        try:
            details["probe"] = _probe(submission, state, test_x[:PROBE_IMAGES], sides["submission"]["predictions"]
                                      [:PROBE_IMAGES], seed, call_timeout)
        finally:
            submission.close()
        if details["probe"].get("agreement") is not None and details["probe"]["agreement"] >= PROBE_MAX_AGREEMENT:
            result["reason"] = (f"loaded a model it did not produce: with every weight-like array of the shipped state"
                                f" replaced by noise, predict() still agrees with itself on"
                                f" {details['probe']['agreement']:.0%} of {details['probe']['images']} test images"
                                " (the weights it uses are not in the state train() returned)")
            return result
    classify(result)
    return result


def _probe(contestant: Contestant, state: dict, images, predictions, seed: int, timeout: float) -> dict:
    import numpy as np

    scrambled, replaced = _scramble(state, seed + 7)
    if not replaced:
        return {"replaced": 0, "agreement": None, "note": "no weight-like array in the state to replace"}
    conn = contestant.worker()
    try:
        load, _, predict = (lambda f: (f[1], None, f[2]))(_functions(conn, contestant, timeout))
        helper = conn.import_module("grading.capstone").serve_predict
        model = conn.request({"op": "call", "obj": load, "args": [scrambled], "keep_result": True}, timeout=timeout)
        out = np.asarray(conn.request({"op": "call", "obj": helper, "args": [predict, model, images]},
                                      timeout=timeout))
        agreement = float((out.reshape(len(images), -1).argmax(axis=1) == predictions).mean())
    except Exception as err:  # a load() that validates its state may refuse noise: no evidence either way
        return {"replaced": replaced, "agreement": None, "note": _describe(err, "load()/predict() on noise")[:300]}
    finally:
        conn.close()
    return {"replaced": replaced, "agreement": round(agreement, 4), "images": len(images)}


def classify(result: dict) -> dict:
    """Division, reason and points from the measured figures and the thresholds."""
    limits, sub, base, ratios = result["thresholds"], result["submission"], result["baseline"], result["ratios"]
    accuracy, reference = sub["accuracy"], base["accuracy"]
    if accuracy < limits["open_floor"]:
        result.update(status="invalid", points_earned=False,
                      reason=f"accuracy {accuracy:.4f} is below the open division's floor {limits['open_floor']:g}")
    elif accuracy >= reference - limits["accuracy_band"] - 1e-12:
        beats = ratios["size"] <= limits["max_size_ratio"] or ratios["latency"] <= limits["max_latency_ratio"]
        result.update(status="closed", reason=None, points_earned=bool(beats))
    else:
        result.update(status="open", points_earned=False,
                      reason=f"accuracy {accuracy:.4f} is more than {limits['accuracy_band']:g} below the baseline's"
                             f" {reference:.4f}: open division (ranked on the Pareto front, no threshold points)")
    return result


def score(result: dict) -> float | None:
    """The threshold's measured value: min(size_ratio / max_size_ratio, latency_ratio / max_latency_ratio);
    <= 1 beats the baseline by the manifest's ratio on at least one axis. None unless closed."""
    if result.get("status") != "closed":
        return None
    limits, ratios = result["thresholds"], result["ratios"]
    return min(ratios["size"] / limits["max_size_ratio"], ratios["latency"] / limits["max_latency_ratio"])


def machine() -> dict:
    import numpy as np

    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "1"
    try:
        blas = int(threads)
    except ValueError:
        blas = 1
    return {"cpus": os.cpu_count() or 1, "numpy": np.__version__, "blas_threads": blas}


def summary(result: dict) -> str:
    """The measured figures as a few printable lines."""
    lines = [f"capstone: {result['status'].upper()}" + (f" ({result['reason']})" if result.get("reason") else "")]
    header = f"{'':12s}{'accuracy':>10s}{'p50 ms':>10s}{'p90 ms':>10s}{'img/s':>11s}{'bytes':>12s}{'train s':>9s}"
    lines.append(header)
    for name in ("submission", "baseline"):
        f = result[name]

        def cell(key, fmt, width):
            value = f.get(key)
            return f"{'-':>{width}s}" if value is None else f"{value:>{width}{fmt}}"

        lines.append(f"{name:12s}{cell('accuracy', '.4f', 10)}{cell('latency_p50_ms', '.3f', 10)}"
                     f"{cell('latency_p90_ms', '.3f', 10)}{cell('throughput_per_s', ',.0f', 11)}"
                     f"{cell('size_bytes', ',d', 12)}{cell('train_s', '.1f', 9)}")
    r = result["ratios"]
    if r.get("latency") is not None:
        limits = result["thresholds"]
        lines.append(f"ratios (submission / baseline): latency {r['latency']:.3f} (points at <= "
                     f"{limits['max_latency_ratio']:g}), size {r['size']:.3f} (points at <= {limits['max_size_ratio']:g}),"
                     f" throughput {r['throughput']:.3f}")
    lines.append(f"points earned: {'yes' if result['points_earned'] else 'no'}")
    return "\n".join(lines)


def plot(result: dict, path) -> str:
    """Accuracy against p50 latency, marker area by model size: the submission against the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    base = result["baseline"]
    sizes = [f["size_bytes"] for f in (result["submission"], base) if f.get("size_bytes")]
    biggest = max(sizes) if sizes else 1
    for name, colour in (("baseline", "#888888"), ("submission", "#d62728")):
        f = result[name]
        if f.get("accuracy") is None or f.get("latency_p50_ms") is None:
            continue
        area = 60 + 1500 * (f["size_bytes"] or 0) / biggest
        ax.scatter([f["latency_p50_ms"]], [f["accuracy"]], s=area, c=colour, alpha=0.6, edgecolors="black",
                   label=f"{name}: {f['accuracy']:.2%}, {f['latency_p50_ms']:.3f} ms, {f['size_bytes'] / 1024:,.0f} KiB")
    if base.get("accuracy") is not None:
        band = result["thresholds"]["accuracy_band"]
        ax.axhspan(base["accuracy"] - band, 1.0, color="#2ca02c", alpha=0.08, label="closed division band")
        ax.axhline(result["thresholds"]["open_floor"], color="#ff7f0e", lw=1, ls="--", label="open division floor")
    accs = [result[n]["accuracy"] for n in ("submission", "baseline") if result[n].get("accuracy") is not None]
    if accs:
        low = min(accs + [result["thresholds"]["open_floor"]])
        ax.set_ylim(max(0.0, low - 0.01), min(1.0, max(accs) + 0.01))
    latencies = [result[n]["latency_p50_ms"] for n in ("submission", "baseline") if result[n].get("latency_p50_ms")]
    if latencies:
        ax.set_xlim(0, max(latencies) * 1.35)
    ax.set_xlabel("single-stream latency p50 (ms, lower is better)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Capstone: {result['status']} division" + (" (points earned)" if result["points_earned"] else ""))
    ax.legend(fontsize=7, loc="lower left", markerscale=0.3)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


# -- entry points -------------------------------------------------------------------------------------


def _contestants(config: dict, workroot: str, data_dirs: list[str]) -> tuple[Contestant, Contestant]:
    """The submission (config's framework, only .py files visible) and the baseline (reference, clean)."""
    from grading import curriculum

    config = dict(config)
    if config.get("katas"):
        copy = os.path.join(workroot, "katas")
        py_only_copy(config["katas"], copy)
        config["katas"] = copy
    hide = [*config.get("hide", []), *data_dirs]
    submission = Contestant("submission", {**config, "hide": hide}, f"tinytorch.{EXPORT}", ("train", "load", "predict"),
                            workroot, data_dirs)
    everything = [module.key for module in curriculum.load().modules]
    baseline = Contestant("baseline", {**config, "katas": None, "impl": "reference", "lent": everything, "hide": hide},
                          "grading.capstone", ("baseline_train", "baseline_load", "baseline_predict"), workroot,
                          data_dirs)
    return submission, baseline


def _data_dirs(data_dir) -> list[str]:
    from pathlib import Path

    found = [str(Path(data_dir).resolve())] if data_dir else []
    if os.environ.get("TINYTORCH_DATA"):
        found.append(str(Path(os.environ["TINYTORCH_DATA"]).resolve()))
    return found


def run(config: dict, *, source_dir=None, data_dir=None, train_limit: int | None = None,
        test_limit: int | None = None, log=print, **options) -> dict:
    """Measure the framework `config` describes (integrity.Guard.worker_config / a reference config)."""
    import shutil
    import tempfile

    problem = source_problem(source_dir) if source_dir is not None else None
    if problem:
        result = measure_nothing(problem, options.get("thresholds"))
        return result
    data = load_data(data_dir, train_limit, test_limit)
    workroot = tempfile.mkdtemp(prefix="kata-capstone-")
    os.chmod(workroot, 0o755)
    try:
        submission, baseline = _contestants(config, workroot, _data_dirs(data_dir))
        try:
            return measure(submission, baseline, data, log=log, **options)
        finally:
            submission.close()
            baseline.close()
    finally:
        shutil.rmtree(workroot, ignore_errors=True)


def measure_nothing(reason: str, thresholds: dict | None = None) -> dict:
    """An invalid result before anything ran (static rejection, source too large)."""
    return {"schema": SCHEMA, "status": "invalid", "reason": reason, "points_earned": False,
            "submission": {key: None for key in FIGURES}, "baseline": {key: None for key in FIGURES},
            "ratios": {"latency": None, "size": None, "throughput": None},
            "thresholds": {**DEFAULT_THRESHOLDS, **(thresholds or {})}, "machine": machine(), "details": {}}


def reference_config(isolation: str | None = None, memory: int | None = None) -> dict:
    from grading import curriculum, sandbox

    return {"katas": None, "impl": "reference", "lent": [m.key for m in curriculum.load().modules], "hide": [],
            "isolation": isolation or os.environ.get("KATA_ISOLATION", "auto"),
            "memory": memory or sandbox.default_memory_limit()}


def run_katas(katas_dir, *, impl: str = "katas", data_dir=None, isolation: str | None = None, memory=None,
              static_check: bool = True, **options) -> dict:
    """Measure a learner's katas folder (module 20 from it, the rest per `impl`) under its own Guard."""
    from pathlib import Path

    from grading import curriculum, integrity, sandbox

    module = curriculum.load().module(EXPORT)
    with integrity.Guard(Path(katas_dir), data_dir=data_dir, tamper_check=False, isolation=isolation) as guard:
        problems = guard.file_problems(module)
        if problems:
            return measure_nothing("rejected: " + "; ".join(problems), options.get("thresholds"))
        if not (Path(katas_dir) / module.key / f"{EXPORT}.py").is_file():
            return measure_nothing(f"interface: katas/{module.key}/{EXPORT}.py is missing", options.get("thresholds"))
        if static_check:
            report = guard.static_check(module)
            if report.rejected:
                return measure_nothing(f"rejected by the static check: {report.reason()}", options.get("thresholds"))
        config = guard.worker_config(impl, memory or sandbox.default_memory_limit())
        return run(config, source_dir=guard.copy / module.key, data_dir=data_dir, **options)


def threshold(max_ratio: float) -> dict:
    """grading.thresholds' entry point (`python -m grading.thresholds 20_capstone NAME`): the score as
    the ratio, the full result under "capstone"."""
    from grading import curriculum, remote

    conn = remote.active()
    module = curriculum.load().module(EXPORT)
    if conn is None:
        raise HarnessError("the capstone threshold runs under the grader (use python -m grading.capstone locally)")
    source = os.path.join(conn.config["katas"], module.key) if conn.config.get("katas") else \
        str(module.reference_dir())
    result = run(conn.config, source_dir=source, data_dir=os.environ.get("TINYTORCH_DATA"),
                 thresholds=manifest_thresholds())
    value = score(result)
    out = {"ratio": value if value is not None else float("nan"), "capstone": result, "samples": []}
    if value is None:
        out["note"] = f"{result['status']}: {result['reason']}"
    return out


def run_threshold(module, threshold_spec, katas_dir, impl: str, *, timeout: float | None = None,
                  memory: int | None = None, guard=None, data_dir=None, quick: dict | None = None):
    """The grader's call for module 20's capstone threshold: (ThresholdResult, capstone result dict or None).

    Runs `python -m grading.capstone --grader` as a trusted process (like grading/thresholds.py's runs)
    whose KATA_WORKER is this submission's sandbox; reads the full result from a file only it writes.
    quick: {"train_limit", "test_limit", "queries", "train_timeout"} for tests; the grader never passes it.
    """
    import math

    from grading import runner, sandbox

    limit = runner.effective_timeout(module.timeout, timeout)
    memory = sandbox.default_memory_limit() if memory is None else memory
    base = dict(name=threshold_spec.name, max_ratio=threshold_spec.max_ratio, points=threshold_spec.points)
    args = ["grading.capstone", "--grader"]
    for key, value in (quick or {}).items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    data = data_dir if data_dir is not None else os.environ.get("TINYTORCH_DATA")
    record, outcome = runner.run_trusted_json(args, katas_dir, impl, guard, memory, limit,
                                              {"TINYTORCH_DATA": str(data)} if data else {})
    duration = round(outcome.duration, 3)
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        return runner.ThresholdResult(measured=None, passed=False, earned=0.0, duration=duration,
                                      message=runner.not_measured(outcome, "no result", 300), **base), None
    value = score(record)
    limits = record["thresholds"]
    if value is None or not math.isfinite(value):
        status = "open division" if record["status"] == "open" else record["status"]
        message = f"{status}: {record.get('reason') or 'not measured'}"[:600]
        return runner.ThresholdResult(measured=None, passed=False, earned=0.0, message=message, duration=duration,
                                      **base), record
    ratios = record["ratios"]
    passed = bool(record["points_earned"])
    figures = (f"size ratio {ratios['size']:.3f} (<= {limits['max_size_ratio']:g}?), latency ratio"
               f" {ratios['latency']:.3f} (<= {limits['max_latency_ratio']:g}?), accuracy"
               f" {record['submission']['accuracy']:.4f} vs baseline {record['baseline']['accuracy']:.4f}")
    message = ("closed division, beats the baseline: " if passed else
               "closed division, but beats the baseline on neither size nor latency: ") + figures
    return runner.ThresholdResult(measured=round(value, 4), passed=passed, earned=threshold_spec.points if passed
                                  else 0.0, message=message, duration=duration, **base), record


def _grader_main(out: str, **options) -> int:
    """Inside the grader's trusted process: KATA_WORKER describes the learner's sandbox."""
    from grading import curriculum

    config = json.loads(os.environ["KATA_WORKER"])
    module = curriculum.load().module(EXPORT)
    source = os.path.join(config["katas"], module.key) if config.get("katas") else str(module.reference_dir())
    try:
        result = run(config, source_dir=source, data_dir=os.environ.get("TINYTORCH_DATA"),
                     thresholds=manifest_thresholds(), **options)
    except HarnessError as err:
        print(f"capstone: not measured: {err}", flush=True)
        return 2
    with open(out, "w") as handle:
        json.dump(result, handle)
    print(summary(result), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        _worker_main(int(argv[1]), int(argv[2]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m grading.capstone",
                                     description="Measure a capstone submission against the baseline (TinyMLPerf).")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--katas", help="a learner's katas folder (module 20 from it)")
    which.add_argument("--grader", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", default=None,
                        help="'reference' (the course's reference submission), or with --katas a mix such as"
                             " 'katas,05=reference' (default: katas)")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (else $TINYTORCH_DATA or the cache)")
    parser.add_argument("--json", default=None, help="write the result (tinytorch-capstone/1) here")
    parser.add_argument("--plot", default=None, help="write the accuracy/latency/size plot (PNG) here")
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, default=None, help="train on the first N images (quick runs)")
    parser.add_argument("--test-limit", type=int, default=None, help="test on the first N images (quick runs)")
    parser.add_argument("--queries", type=int, default=LATENCY_QUERIES, help="latency queries per side")
    parser.add_argument("--train-timeout", type=float, default=TRAIN_TIMEOUT, help="seconds train() may take")
    args = parser.parse_args(argv)
    options = dict(seed=args.seed, train_limit=args.train_limit, test_limit=args.test_limit,
                   latency_queries=args.queries, train_timeout=args.train_timeout)
    if args.grader:
        return _grader_main(args.out, **options)
    options["thresholds"] = manifest_thresholds()
    try:
        if args.katas:
            result = run_katas(args.katas, impl=args.impl or "katas", data_dir=args.data_dir, **options)
        elif args.impl == "reference":
            from grading import curriculum

            module = curriculum.load().module(EXPORT)
            result = run(reference_config(), source_dir=module.reference_dir(), data_dir=args.data_dir, **options)
        else:
            parser.error("give --katas DIR or --impl reference")
            return 2
    except HarnessError as err:
        print(f"capstone: not measured: {err}", file=sys.stderr)
        return 2
    print(summary(result))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
        print(f"result: {args.json}")
    if args.plot:
        print(f"plot: {plot(result, args.plot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
