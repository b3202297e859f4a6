"""The checks plugin: `--impl katas|reference` and the Hypothesis profiles (loaded by conftest.py).

    pytest checks/01_tensor                  # your katas (default)
    pytest --impl reference                  # the reference solution (the repo's own test)
    HYPOTHESIS_PROFILE=ci pytest ...         # thorough (120 examples); the default "dev" is fast (25); both seeded

`--impl` accepts what TINYTORCH_IMPL accepts, e.g. "katas,05=reference".
"""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from hypothesis import HealthCheck, Phase, settings

from grading import assembly, curriculum, remote

# The explain phase costs seconds per failing check and learners see many
# failures at once; the shrunk falsifying example is what they need.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]

settings.register_profile(
    "dev",
    phases=PHASES,
    max_examples=25,
    deadline=None,
    derandomize=True,  # seeded: the same examples on every run, so a verdict never depends on luck
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    phases=PHASES,
    max_examples=120,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The grader's own test-suite and smoke runs: a handful of examples, no database.
settings.register_profile(
    "kata-smoke",
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    phases=PHASES,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        default=None,
        help="which tinytorch to check: katas (default), reference, or a mix like 'katas,05=reference'",
    )
    parser.addoption(
        "--isolate", action="store_true", default=False,
        help="run tinytorch in a sandboxed worker process, as the grader does (checks stay in this process)",
    )


def pytest_configure(config: pytest.Config) -> None:
    impl = config.getoption("--impl") or os.environ.get(assembly.IMPL_ENV) or lend_like_kata_check(config)
    try:
        spec = assembly.parse_impl(impl)
    except assembly.ImplSpecError as err:
        raise pytest.UsageError(str(err)) from None
    # Set before any check module imports tinytorch; xdist workers inherit it.
    os.environ[assembly.IMPL_ENV] = spec.render()
    if config.getoption("--isolate") and not os.environ.get(remote.WORKER_ENV):
        lent = [m.key for m in curriculum.load().modules if spec.for_module(m.number) == "reference"]
        # The worker can write only its scratch folder: pytest's tmp_path lives there too.
        scratch = tempfile.mkdtemp(prefix="kata-isolate-")
        if config.option.basetemp is None:
            config.option.basetemp = os.path.join(scratch, "pytest")
        os.environ[remote.WORKER_ENV] = json.dumps({"impl": spec.render(), "katas": str(assembly.katas_root()),
                                                    "lent": lent, "isolation": "auto", "scratch": scratch})
    # On the grader's trusted side, `tinytorch` is a proxy for the learner's sandboxed worker.
    remote.activate_from_env()


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"tinytorch implementation: {os.environ[assembly.IMPL_ENV]} (katas from {assembly.katas_root()})"]
    lent = getattr(config, "_kata_lent", None)
    if lent:
        lines.append(f"checked with {lent} lent from the reference (prerequisites not passed yet, as `kata check` "
                     "does; --impl katas checks only your katas)")
    return lines


# -- a bare `pytest checks/NN_slug` lends prerequisites like `kata check NN` ----------------


def _target_modules(config: pytest.Config) -> list:
    """The modules whose checks this run collects (from paths such as checks/05_autograd/...)."""
    cur = curriculum.load()
    found = []
    for arg in config.args or []:
        path = os.path.abspath(str(arg).split("::", 1)[0])
        for module in cur.modules:
            folder = str(module.checks_dir())
            if (path == folder or path.startswith(folder + os.sep)) and module not in found:
                found.append(module)
    return found


def lend_like_kata_check(config: pytest.Config) -> str:
    """The default implementation when neither --impl nor TINYTORCH_IMPL is given.

    Same rule as `kata check NN` (README, "A learner's loop"): your kata for the modules being
    checked, the reference for every prerequisite you have not passed (per `kata status`'s
    cached results), if that reference is in this repository. `--impl katas` checks only your katas.
    """
    try:
        from grading import state

        targets = _target_modules(config)
        if not targets:
            return "katas"
        numbers = {m.number for m in targets}
        passed = state.passed_modules(assembly.katas_root())
        cur = curriculum.load()
        lent = sorted({n for m in targets for n in cur.requirements(m)
                       if n not in passed and n not in numbers and cur.module(n).has_reference()})
    except Exception:  # never let a broken cache stop a check run
        return "katas"
    if not lent:
        return "katas"
    config._kata_lent = state.span([f"{n:02d}" for n in lent])
    return ",".join(["katas", *(f"{n:02d}=reference" for n in lent)])


# -- a TODO is not the error a check expects ---------------------------------------
#
# NotImplementedError is a RuntimeError, so on a pristine stub `pytest.raises(RuntimeError)`
# would catch the stub's "TODO" and either pass or report "Regex pattern did not match". The
# guard below lets a NotImplementedError through every pytest.raises that did not ask for it by
# name, so the check fails as "not implemented yet: Tensor.sum" like every other check does.


def _expects_by_name(expected) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    return any(t is NotImplementedError for t in types)


def _is_stub_gap(err: BaseException, expected) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if not all(isinstance(t, type) for t in types):
        return False  # RaisesGroup / RaisesExc matchers: left alone
    return isinstance(err, NotImplementedError) and not _expects_by_name(expected)


class _NotImplementedGuard:
    """Wraps the context manager pytest.raises returns; a NotImplementedError passes through it."""

    def __init__(self, inner, expected) -> None:
        self._inner, self._expected = inner, expected

    def __enter__(self):
        return self._inner.__enter__()

    def __exit__(self, exc_type, exc, tb):
        __tracebackhide__ = True
        if exc is not None and _is_stub_gap(exc, self._expected):
            return False  # propagate: the check fails with the kata's own "not implemented" message
        return self._inner.__exit__(exc_type, exc, tb)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _guarded_raises(original):
    def raises(expected_exception=None, *args, **kwargs):
        if args and callable(args[0]):  # pytest.raises(Exc, func, *args): the call form
            func, rest = args[0], args[1:]

            def call(*a, **k):
                try:
                    return func(*a, **k)
                except BaseException as err:
                    if _is_stub_gap(err, expected_exception):
                        raise _Passthrough(err) from err
                    raise

            try:
                return original(expected_exception, call, *rest, **kwargs)
            except _Passthrough as wrapped:
                raise wrapped.original from None
        inner = original(expected_exception, *args, **kwargs)
        return _NotImplementedGuard(inner, expected_exception)

    raises.__wrapped__ = original
    raises.__doc__ = original.__doc__
    return raises


class _Passthrough(BaseException):
    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def install_not_implemented_guard() -> None:
    if not getattr(pytest.raises, "__wrapped__", None):
        pytest.raises = _guarded_raises(pytest.raises)


def pytest_sessionstart(session: pytest.Session) -> None:
    install_not_implemented_guard()
