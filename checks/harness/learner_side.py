"""Check helpers that must run next to the learner's code: custom Modules, Datasets, callbacks.

A check that needs to subclass a tinytorch class, or to hand a callable to tinytorch code,
puts that code in its module's `checks/NN_slug/learner_side.py` (importing only numpy,
the standard library and tinytorch: never torch, never the harness) and loads it with

    helpers = learner_side(__file__)
    model = helpers.TwoLayer(4, 3)

so the same check runs unchanged whether tinytorch lives in this process (`pytest`) or
in the grader's sandboxed worker (`kata grade`), where such code must run on the
learner's side of the trust boundary.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator


def probes() -> ModuleType:
    """Generic questions only the learner's side can answer (checks/harness/probes.py):
    identity (`is`) of learner objects and arrays, class names."""
    return _load(Path(__file__).resolve().parent / "probes.py", "checks_harness_probes")


def learner_numpy():
    """numpy where the learner's code runs: this process's under pytest, the worker's (a proxy) under
    the grader. For process state such as np.geterr() that a check must read on the learner's side."""
    from grading import remote

    worker = remote.active()
    if worker is None:
        import numpy

        return numpy
    return worker.request({"op": "import", "name": "numpy"})


@contextlib.contextmanager
def learner_errstate(**settings: str) -> Iterator[None]:
    """np.errstate(**settings) where the learner's code runs.

    numpy's floating-point error state belongs to the thread that computes: under the grader that is
    the learner's worker, so a plain `with np.errstate(all="raise")` in a check would silently test
    nothing there. This sets it on the learner's side (and restores it), in either mode.
    """
    numpy = learner_numpy()
    previous = dict(numpy.seterr(**settings))
    try:
        yield
    finally:
        numpy.seterr(**previous)


def upstream() -> ModuleType:
    """Backward with a read-only upstream gradient, next to the learner's rules
    (checks/harness/upstream.py)."""
    return _load(Path(__file__).resolve().parent / "upstream.py", "checks_harness_upstream")


def learner_side(check_file: str) -> ModuleType:
    """The `learner_side.py` beside `check_file`, imported once."""
    path = Path(check_file).resolve().parent / "learner_side.py"
    return _load(path, f"checks_learner_side_{path.parent.name}")


def _load(path: Path, name: str) -> ModuleType:
    from grading import remote

    worker = remote.active()
    if worker is not None:  # the grader's trusted side: load it in the learner's worker
        proxy = worker.request({"op": "import_file", "name": name, "path": str(path)})
        object.__setattr__(proxy, "_path", None)
        return proxy
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{path}: no learner-side helpers for this module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
