"""Run one module's checks, a threshold benchmark or a milestone in the sandbox, and
turn what happened into results the grader can trust.

Trust model: the grader decides from facts it observed itself - the child's exit status
(code or signal, timeout), the JUnit XML pytest wrote to a path in a temporary directory
the grader created, and the list of checks it collected on the *reference* beforehand.
A module passes only if every expected check is present in the JUnit file and passed,
and the exit code agrees. Nothing in the learner's folder is ever read as a result.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from grading import curriculum as _curriculum
from grading import sandbox

ROOT = _curriculum.PROJECT_ROOT
TIMEOUT_ENV = "KATA_TIMEOUT"  # override every manifest timeout (seconds): tests and quick runs
PYTEST_EXIT = {0: "all passed", 1: "some checks failed", 2: "interrupted", 3: "internal error",
               4: "usage error", 5: "no checks collected"}


def effective_timeout(manifest_timeout: float, override: float | None = None) -> float:
    if override:
        return float(override)
    env = os.environ.get(TIMEOUT_ENV)
    return float(env) if env else float(manifest_timeout)


def child_env(katas_dir: Path | None, impl: str, worker: dict | None = None, **extra: str) -> dict[str, str]:
    """The environment of every child: no stray TINYTORCH_* from the grader's shell.

    With `worker` (grading/integrity.py's Guard.worker_config) the child is a *trusted*
    process: it never loads learner files itself (KATA_TRUSTED) and reaches tinytorch only
    through the sandboxed worker that config describes (KATA_WORKER, grading/remote.py).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYTORCH_", "PYTEST_", "COV_", "KATA_"))}
    env["TINYTORCH_IMPL"] = impl
    for key in ("KATA_ISOLATION", "KATA_CALL_TIMEOUT"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    if worker is not None:
        env["KATA_WORKER"] = json.dumps(worker)
        env["KATA_TRUSTED"] = "1"
    elif katas_dir is not None:
        env["TINYTORCH_KATAS"] = str(katas_dir)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # never drop __pycache__ into the learner's folder
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONHASHSEED"] = "0"
    env["MPLBACKEND"] = "Agg"
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(key, "1")  # fair, reproducible timings; batch mode runs many of these at once
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


# -- checks --------------------------------------------------------------------


@dataclass
class CheckResult:
    id: str  # "test_tensor.py::test_division" (unique within the module)
    outcome: str  # passed | failed | error | skipped | missing
    message: str = ""  # one plain line
    detail: str = ""  # the traceback, truncated
    location: str = ""  # "katas/01_tensor/tensor.py:124" when the failure is in the kata
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "passed"


@dataclass
class ModuleRun:
    module: str
    impl: str
    status: str  # passed | failing | error (could not run at all)
    passed: int
    total: int
    checks: list[CheckResult] = field(default_factory=list)
    reason: str = ""  # why the module failed as a whole (timeout, crash, import error...)
    duration: float = 0.0
    exit_code: int | None = None
    output_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "passed"


def _nodeid_to_key(nodeid: str) -> str:
    """'checks/01_tensor/test_tensor.py::Cls::test_x[1]' -> 'test_tensor.py::Cls::test_x[1]'."""
    path, _, rest = nodeid.partition("::")
    return f"{Path(path).name}::{rest}"


def _junit_to_key(classname: str, name: str) -> str:
    """JUnit (classname 'checks.01_tensor.test_tensor.Cls', name) -> the same key as above."""
    parts = classname.split(".")
    # the file is the last part that starts with "test" (classes come after it)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].startswith("test"):
            return "::".join([parts[i] + ".py", *parts[i + 1:], name])
    return f"{classname}::{name}"


def pytest_base_args(checks_dir: Path, impl: str, junit: Path | None, select: str | None) -> list[str]:
    args = [sys.executable, "-m", "pytest", str(checks_dir), f"--impl={impl}",
            "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
            "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "grading._pytest_progress",
            "-q", "--tb=short", "--show-capture=no", "-o", "console_output_style=classic",
            "-W", "ignore::DeprecationWarning"]
    if junit is not None:
        args += [f"--junitxml={junit}", "-o", "junit_family=xunit2", "-o", "junit_logging=no"]
    if select:
        args += ["-k", select]
    return args


def _checks_fingerprint(module: _curriculum.Module) -> str:
    import hashlib

    digest = hashlib.sha256()
    for folder in (module.checks_dir(), module.reference_dir(), ROOT / "checks" / "harness"):
        for path in sorted(folder.rglob("*.py")):
            digest.update(path.as_posix().encode())
            digest.update(path.read_bytes())
    digest.update((ROOT / "conftest.py").read_bytes())
    return digest.hexdigest()[:16]


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:10]


@lru_cache(maxsize=None)
def expected_checks(module_key: str, select: str | None = None) -> tuple[str, ...]:
    """The checks a module must have, collected on the reference in a sandbox (cached on disk)."""
    module = _curriculum.load().module(module_key)
    if not module.has_reference():
        return _released_checks(module, select)
    fingerprint = _checks_fingerprint(module)
    cache = ROOT / ".kata" / "collected" / f"{module.key}-{fingerprint}-{_short_hash(select) if select else 'all'}.json"
    from grading import integrity

    if not integrity.namespaces_available():
        cache = None  # the learner's worker could write there: collect afresh, keep it in memory only
    if cache is not None and cache.is_file():
        try:
            return tuple(json.loads(cache.read_text()))
        except (OSError, ValueError):
            pass
    with tempfile.TemporaryDirectory(prefix="kata-collect-") as tmp:
        cmd = pytest_base_args(module.checks_dir(), "reference", None, select) + ["--collect-only"]
        outcome = sandbox.run(cmd, env=child_env(None, "reference"), cwd=tmp, timeout=120,
                              memory=sandbox.default_memory_limit(), output_cap=4 * 1024 * 1024)
    ids = tuple(line.strip() for line in outcome.output.splitlines() if "::" in line and not line.startswith(" "))
    if outcome.returncode != 0 or not ids:
        raise RuntimeError(f"could not collect the checks of {module.key} on the reference:\n{outcome.output[-3000:]}")
    keys = tuple(_nodeid_to_key(i) for i in ids)
    try:
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(keys))
    except OSError:
        pass
    return keys


def _released_checks(module: _curriculum.Module, select: str | None) -> tuple[str, ...]:
    """In a student copy (grading/release.py): the course's list, collected on its reference at release."""
    from grading import integrity, release

    shipped = release.released_checks(module.key)
    if shipped is None:
        raise RuntimeError(f"{module.key}: its reference is not in this tree and {release.MANIFEST} "
                           "lists no checks for it")
    if not select:
        return shipped
    # Which of them `select` picks: collected with the learner's own katas behind the boundary.
    with integrity.Guard(ROOT / "katas", tamper_check=False) as guard, \
            tempfile.TemporaryDirectory(prefix="kata-collect-") as tmp:
        cmd = pytest_base_args(module.checks_dir(), "katas", None, select) + ["--collect-only"]
        outcome = sandbox.run(cmd, env=child_env(None, "katas", guard.worker_config("katas")), cwd=tmp,
                              timeout=120, memory=sandbox.default_memory_limit(), output_cap=4 * 1024 * 1024)
    chosen = {_nodeid_to_key(l.strip()) for l in outcome.output.splitlines() if "::" in l and not l.startswith(" ")}
    return tuple(k for k in shipped if k in chosen)


_FRAME = re.compile(r"^(?P<path>[^\s:][^:]*\.py):(?P<line>\d+): in (?P<func>\S+)", re.M)
_TRACEBACK_FRAME = re.compile(r'File "(?P<path>[^"]+\.py)", line (?P<line>\d+)')
_NOT_IMPLEMENTED = re.compile(r"NotImplementedError:\s*(?P<what>[\w.<>]+)?(?P<rest>.*)")


import threading

_LOCAL = threading.local()  # .cwd: the check process's working directory (tracebacks are relative to it)


def _kata_relative(path: str, katas_dir: Path | None) -> str | None:
    """'…/katas/01_tensor/tensor.py' -> 'katas/01_tensor/tensor.py' if the file is the learner's."""
    if katas_dir is None:
        return None
    p = Path(path)
    candidates = [p] if p.is_absolute() else [Path(os.path.normpath(base / p)) for base in (*getattr(_LOCAL, "cwd", ()), ROOT, katas_dir.parent)]
    for candidate in candidates:
        try:
            return "katas/" + candidate.resolve().relative_to(katas_dir.resolve()).as_posix()
        except (ValueError, OSError):
            continue
    return None


def _last_kata_location(text: str, katas_dir: Path | None) -> str:
    found = ""
    for match in list(_FRAME.finditer(text)) + list(_TRACEBACK_FRAME.finditer(text)):
        rel = _kata_relative(match["path"], katas_dir)
        if rel:
            found = f"{rel}:{match['line']}"
    return found


def _first_meaningful_line(message: str, text: str) -> str:
    for source in (message, *[l[1:].strip() for l in text.splitlines() if l.startswith("E ")]):
        for line in (source or "").splitlines():
            line = line.strip()
            if line and not line.startswith(("Falsifying example", "You can reproduce")):
                return line[:300]
    return "failed (no message)"


# pytest >= 9: "Expected regex: '...'" / "Actual message: '...'"; older: " Regex: ..." / " Input: ..."
_REGEX_MISMATCH = re.compile(r"Regex pattern did not match\.\s*(?:Expected regex|Regex):\s*(?P<pattern>.*?)\s*"
                             r"(?:Actual message|Input):\s*(?P<actual>.*)", re.S)
_DIFF_NOISE = re.compile(r"^(?:Use -v to get (?:more|the full) diff|Full diff:|Omitting \d+ identical items.*|[-+?] .*|"
                         r"[-+?]|At index \d+ diff:.*|Left contains .*|Right contains .*|Differing items:.*)$")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Group)\b")


def _wording_mismatch(message: str, text: str) -> str:
    """'expected the message to match 'dim 3', got: 'dimension 3 out of range'' for a pytest.raises(match=)."""
    for source in (message or "", "\n".join(l[1:].strip() for l in text.splitlines() if l.startswith("E "))):
        match = _REGEX_MISMATCH.search(source)
        if match:
            pattern = " ".join(match["pattern"].split())
            # pytest matches the message plus its notes: drop the learner-side traceback the proxy adds
            parts = re.split(r"(?:\\n|\n)learner-side traceback", match["actual"], maxsplit=1)
            actual = " ".join(parts[0].split())
            if len(parts) > 1 and actual.startswith("'") and not actual.endswith("'"):
                actual += "'"
            return (f"wrong error message: expected it to match {pattern[:150]}, "
                    f"got {actual[:200]}")
    return ""


def _assert_source(text: str) -> str:
    """The source line pytest printed just above the last 'E' block of a --tb=short traceback."""
    lines = text.splitlines()
    source = ""
    for i, line in enumerate(lines):
        if line.startswith("E ") and i > 0 and not lines[i - 1].startswith("E"):
            candidate = lines[i - 1].strip()
            if candidate and not candidate.startswith("^") and not _FRAME.match(lines[i - 1]):
                source = candidate
    return source


_NUMPY_HEADERS = ("Arrays are not equal", "Arrays are not almost equal", "Not equal to tolerance", "Items are not equal")


def _numpy_assert_summary(explanation: str) -> str:
    """One line from a numpy.testing failure, whose message starts on the line after 'AssertionError:':
    the err_msg the check wrote, what numpy compared, and the first mismatch."""
    lines = [line.strip() for line in explanation.splitlines() if line.strip()]
    if not lines or not lines[0].startswith(_NUMPY_HEADERS):
        return ""
    stops = ("Mismatched elements", "Mismatch at index", "Max absolute", "Max relative", "ACTUAL:", "DESIRED:",
             "x:", "y:", "(shapes", "(mismatch")
    note = []
    for line in lines[1:]:
        if line.startswith(stops):
            break
        note.append(line)
    facts = [line for line in lines if line.startswith(("Mismatched elements", "(shapes"))]
    first_mismatch = next((lines[i + 1] for i, line in enumerate(lines[:-1]) if line.startswith("Mismatch at index")), "")
    details = [*facts, *([f"first at {first_mismatch}"] if first_mismatch else [])]
    if note:
        details.insert(0, lines[0])
    summary = " ".join(note) or lines[0]
    return (f"{summary} ({'; '.join(details)})" if details else summary)[:400]


def _summarise_assert(first: str, message: str, text: str) -> str:
    """One complete line for a bare `AssertionError` or a pytest assert explanation cut at its first line."""
    bare = first.strip() in ("AssertionError", "AssertionError:", "assert False", "AssertionError: assert False")
    explanation = (message or "").removeprefix("AssertionError: ")
    if not bare and not (explanation.startswith("assert ") and "\n" in explanation.strip()):
        return ""
    if bare:
        numpy_summary = _numpy_assert_summary(explanation)
        if numpy_summary:
            return numpy_summary
        source = _assert_source(text)
        return (f"assertion failed without a message: {source[:250]}" if source
                else "assertion failed without a message (run with -v to see where)")
    kept: list[str] = []
    for raw in explanation.splitlines():
        line = re.sub(r"\s*Use -v to get (?:more|the full) diff\s*", " ", raw).strip()
        if not line or _DIFF_NOISE.match(line):
            continue
        if line.startswith("+  where") or line.startswith("+ where"):
            line = "(where " + line.split("where", 1)[1].strip() + ")"
        kept.append(line)
    summary = " ".join(kept)
    summary = re.sub(r"\s+", " ", summary).strip()
    summary += ")" * max(0, summary.count("(") - summary.count(")"))  # the diff lines held the closing ones
    return summary[:300] if summary else ""


_RELATIVE_FRAME = re.compile(r"^(?P<path>[^\s:][^:\n]*\.py)(?P<rest>:\d+: in )", re.M)
_QUOTED_FRAME = re.compile(r'(?P<head>File ")(?P<path>[^"]+\.py)(?P<tail>")')


def _repo_relative(path: str) -> str | None:
    """'../../katas/01_tensor/tensor.py' (relative to the run's cwd) -> 'katas/01_tensor/tensor.py'."""
    katas = getattr(_LOCAL, "katas", None)
    rel = _kata_relative(path, katas) if katas is not None else None
    if rel:
        return rel
    p = Path(path)
    candidates = [p] if p.is_absolute() else [Path(os.path.normpath(base / p)) for base in (*getattr(_LOCAL, "cwd", ()), ROOT)]
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
        except OSError:
            continue
        if resolved.is_file() or candidate.is_absolute():
            try:
                return resolved.relative_to(ROOT.resolve()).as_posix()
            except ValueError:
                continue
    return None


def relative_paths(text: str, katas_dir: Path | None) -> str:
    """Rewrite the traceback's file names to the paths the table uses (repo-relative, katas/...)."""
    if katas_dir is not None:
        _LOCAL.katas = katas_dir

    def frame(match: re.Match) -> str:
        rel = _repo_relative(match["path"])
        return (rel + match["rest"]) if rel else match.group(0)

    def quoted(match: re.Match) -> str:
        rel = _repo_relative(match["path"])
        return (match["head"] + rel + match["tail"]) if rel else match.group(0)

    return _QUOTED_FRAME.sub(quoted, _RELATIVE_FRAME.sub(frame, text))


def explain(message: str, text: str, katas_dir: Path | None) -> tuple[str, str]:
    """(plain one-line explanation, kata location) for one failing check."""
    location = _last_kata_location(text, katas_dir)
    first = _first_meaningful_line(message, text)
    not_impl = _NOT_IMPLEMENTED.search(first) or _NOT_IMPLEMENTED.search(message or "")
    wording = _wording_mismatch(message, text)
    if wording and not not_impl and "NotImplementedError" in text:
        # A pristine stub's NotImplementedError (a RuntimeError) caught by pytest.raises(RuntimeError, match=...).
        not_impl = _NOT_IMPLEMENTED.search(text[text.index("NotImplementedError"):])
    if not not_impl:
        first = wording or _summarise_assert(first, message, text) or first
    if not_impl:
        what = (not_impl["what"] or "").rstrip(":") or "a function"
        file = location.rsplit(":", 1)[0] if location else ""
        return f"not implemented yet: {what}" + (f" ({file})" if file else ""), location
    if first.startswith("MemoryError"):
        return "ran out of memory (MemoryError): the memory limit was reached" + (f" at {location}" if location else ""), location
    if location and not first.startswith(location):
        return f"{first}  [{location}]", location
    return first, location


def _collection_error(text: str, katas_dir: Path | None) -> str:
    """'SyntaxError: invalid syntax (katas/01_tensor/tensor.py, line 12)' from a collection traceback."""
    lines = [l[1:].strip() if l.startswith("E ") else l.strip() for l in text.splitlines()]
    lines = [l for l in lines if l]
    location = ""
    for match in _TRACEBACK_FRAME.finditer(text):
        rel = _kata_relative(match["path"], katas_dir)
        if rel:
            location = f"{rel}, line {match['line']}"
    for match in _FRAME.finditer(text):
        rel = _kata_relative(match["path"], katas_dir)
        if rel:
            location = f"{rel}, line {match['line']}"
    error = next((l for l in reversed(lines) if re.match(r"^[A-Za-z_.]*(Error|Exception|Exit|Interrupt)\b", l)), "")
    error = error or next((l for l in reversed(lines) if ":" in l), "import failed")
    where = f" in {location}" if location else ""
    return f"import error{where}: {error}"[:500]


def _output_diagnosis(output: str, katas_dir: Path | None) -> str:
    """'SystemExit: 3 (katas/01_tensor/tensor.py, line 542)' from a crash's output, if it names one."""
    text = "\n".join(l.removeprefix("INTERNALERROR>").rstrip() for l in output.splitlines())
    location = ""
    for match in _TRACEBACK_FRAME.finditer(text):
        rel = _kata_relative(match["path"], katas_dir)
        if rel:
            location = f"{rel}, line {match['line']}"
    errors = [l.strip() for l in text.splitlines()
              if re.match(r"^\s*[A-Za-z_.]*(Error|Exception|Exit)\b(:|$)", l.strip())]
    if "MemoryError" in text:
        return "MemoryError: the memory limit was reached" + (f" ({location})" if location else "")
    if not errors and not location:
        return ""
    return (errors[-1] if errors else "error") + (f" ({location})" if location else "")


def parse_junit(path: Path, katas_dir: Path | None) -> tuple[dict[str, CheckResult], list[str]]:
    """{key: CheckResult} and the collection errors found in a pytest JUnit file."""
    results: dict[str, CheckResult] = {}
    collection_errors: list[str] = []
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        duration = float(case.get("time") or 0)
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        bad = failure if failure is not None else error
        if bad is not None and (not classname or bad.get("message", "").startswith("collection failure")):
            collection_errors.append(_collection_error(bad.text or bad.get("message", ""), katas_dir))
            continue
        key = _junit_to_key(classname, name)
        if bad is not None:
            message, text = bad.get("message", ""), bad.text or ""
            plain, location = explain(message, text, katas_dir)
            results[key] = CheckResult(key, "failed" if failure is not None else "error", plain,
                                       relative_paths(text, katas_dir)[-4000:], location, duration)
        elif skipped is not None:
            results[key] = CheckResult(key, "skipped", skipped.get("message", "skipped")[:300], "", "", duration)
        else:
            results[key] = CheckResult(key, "passed", "", "", "", duration)
    return results, collection_errors


def _last_started(progress: Path) -> str | None:
    try:
        lines = progress.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    finished = {l.split("\t", 1)[1] for l in lines if not l.startswith("start\t") and "\t" in l}
    started = [l.split("\t", 1)[1] for l in lines if l.startswith("start\t")]
    running = [s for s in started if s not in finished]
    return _nodeid_to_key(running[-1]) if running else None


def run_checks(
    module: _curriculum.Module,
    katas_dir: Path,
    impl: str = "katas",
    *,
    timeout: float | None = None,
    memory: int | None = None,
    select: str | None = None,
    workers: int | str | None = None,
    hypothesis_profile: str = "ci",
    cwd: Path | None = None,
    guard=None,
) -> ModuleRun:
    """Run `module`'s checks (trusted pytest) against the kata in `katas_dir` (sandboxed worker).

    `guard` is the submission's integrity.Guard; without one, a private one is opened for
    this run (`kata check`), so the learner's code runs behind the same boundary either way.
    """
    if guard is None:
        from grading import integrity

        with integrity.Guard(katas_dir, tamper_check=False) as own:
            return run_checks(module, katas_dir, impl, timeout=timeout, memory=memory, select=select,
                              workers=workers, hypothesis_profile=hypothesis_profile, cwd=cwd, guard=own)
    limit = effective_timeout(module.timeout, timeout)
    memory = sandbox.default_memory_limit() if memory is None else memory
    try:
        expected = expected_checks(module.key, select)
    except RuntimeError as err:
        return ModuleRun(module.key, impl, "error", 0, 0, reason=str(err)[:2000])
    with tempfile.TemporaryDirectory(prefix=f"kata-{module.key}-") as tmp:
        tmpdir = Path(tmp)
        junit = tmpdir / f"junit-{os.urandom(8).hex()}.xml"
        progress = tmpdir / "progress.tsv"
        cmd = pytest_base_args(module.checks_dir(), impl, junit, select)
        if workers and str(workers) not in ("0", "1"):
            cmd += ["-n", str(workers)]
        else:
            cmd += ["-p", "no:xdist"]
        worker = guard.worker_config(impl, memory)
        cmd += [f"--basetemp={Path(worker['scratch']) / 'pytest'}"]  # tmp_path: visible to the worker
        env = child_env(katas_dir, impl, worker, HYPOTHESIS_PROFILE=hypothesis_profile, KATA_PROGRESS=str(progress))
        work = cwd or tmpdir
        outcome = sandbox.run(cmd, env=env, cwd=work, timeout=limit, memory=sandbox.trusted_memory(memory))
        results: dict[str, CheckResult] = {}
        collection_errors: list[str] = []
        junit_problem = ""
        if junit.is_file():
            try:
                _LOCAL.cwd = (Path(work),)
                results, collection_errors = parse_junit(junit, katas_dir)
            except (ET.ParseError, OSError) as err:
                junit_problem = f"the check results file is unreadable ({err})"
        else:
            junit_problem = "no check results were written"
        running = _last_started(progress)
    _LOCAL.katas = katas_dir
    return _verdict(module, impl, expected, results, collection_errors, outcome, junit_problem, running)


def _verdict(module, impl, expected, results, collection_errors, outcome: sandbox.Outcome, junit_problem: str,
             running: str | None) -> ModuleRun:
    checks: list[CheckResult] = []
    for key in expected:
        if key in results:
            checks.append(results[key])
        else:
            checks.append(CheckResult(key, "missing", "did not run (see the module's reason)"))
    passed = sum(1 for c in checks if c.ok)
    total = len(expected)
    during = f" while running {running}" if running else ""
    reason = ""
    crashed = outcome.describe()
    code = outcome.returncode
    if crashed:
        reason = crashed + during
    elif collection_errors:
        reason = collection_errors[0]
    elif junit_problem:
        reason = f"exited early with code {code} before the checks finished{during}: {junit_problem}"
    elif code not in (0, 1):
        reason = f"exited early with code {code} ({PYTEST_EXIT.get(code, 'not a pytest exit code')}){during}"
    elif code == 0 and passed < total:
        reason = f"inconsistent results: exit code 0 but only {passed}/{total} checks recorded as passed"
    elif code == 1 and passed == total:
        reason = "inconsistent results: every expected check passed but pytest reported a failure"
    elif len(results) > len(expected) or set(results) - set(expected):
        reason = "inconsistent results: the run recorded checks that are not in the course's list"
    inconsistent = reason.startswith("inconsistent results")
    if not reason:
        # The trusted run completed, but the learner's worker may have died under some checks.
        died = next((c for c in checks if "worker process" in c.message or "MemoryError" in c.message), None)
        if died is not None:
            reason = died.message.split("LearnerWorkerError: ", 1)[-1] + f" (first in {died.id})"
    if reason and not collection_errors:
        diagnosis = _output_diagnosis(outcome.output, getattr(_LOCAL, "katas", None))
        if diagnosis:
            reason += f" - {diagnosis}"
    if crashed or junit_problem:
        # The run did not complete: whatever it recorded is not a complete, trustworthy record.
        for c in checks:
            if c.outcome == "missing":
                c.message = "did not run: " + reason
    if any("MemoryError" in c.detail or "MemoryError" in c.message for c in checks) and not reason:
        reason = f"memory limit ({sandbox.format_bytes(outcome.memory_limit)}) reached in some checks"
    if outcome.output_truncated:
        reason = (reason + "; " if reason else "") + f"printed {outcome.output_bytes} bytes of output (truncated)"
    ok = not crashed and not collection_errors and not junit_problem and code == 0 and passed == total and total > 0
    if ok and outcome.output_truncated:
        reason = f"passed (note: printed {outcome.output_bytes} bytes of output, truncated)"
    status = "passed" if ok else "failing"
    if crashed or junit_problem or collection_errors or inconsistent:
        passed = 0  # an incomplete or inconsistent run earns nothing (its record is not evidence)
    return ModuleRun(module.key, impl, status, passed, total, checks, reason, round(outcome.duration, 3), code,
                     outcome.output[-6000:])


# -- thresholds ----------------------------------------------------------------


@dataclass
class ThresholdResult:
    name: str
    max_ratio: float
    points: float
    measured: float | None
    passed: bool
    earned: float
    message: str
    samples: list[float] = field(default_factory=list)
    duration: float = 0.0


def run_trusted_json(args: list[str], katas_dir: Path, impl: str, guard, memory: int, timeout: float,
                     env: dict[str, str] | None = None) -> tuple[object, sandbox.Outcome]:
    """Run `python -m <args> --out FILE` as a trusted process whose KATA_WORKER is this submission's
    sandboxed worker (the learner's code runs only there); return (FILE's JSON, the outcome).

    The JSON is None unless the process exited 0 and wrote valid JSON. FILE has a random name in
    a fresh directory that only the trusted process knows: learner code never writes what a
    verdict reads.
    """
    with tempfile.TemporaryDirectory(prefix="kata-trusted-") as tmp:
        out = Path(tmp) / f"result-{os.urandom(8).hex()}.json"
        outcome = sandbox.run([sys.executable, "-m", *args, "--out", str(out)],
                              env=child_env(katas_dir, impl, guard.worker_config(impl, memory), **(env or {})),
                              cwd=tmp, timeout=timeout, memory=sandbox.trusted_memory(memory))
        result = None
        if out.is_file() and outcome.returncode == 0:
            try:
                result = json.loads(out.read_text())
            except ValueError:
                result = None
    return result, outcome


def not_measured(outcome: sandbox.Outcome, nothing: str, width: int) -> str:
    """'not measured: <why>' for a trusted run that produced no result, with its last output line."""
    why = outcome.describe() or (f"exited with code {outcome.returncode}" if outcome.returncode else nothing)
    tail = [line for line in outcome.output.strip().splitlines() if line.strip()][-1:]
    return f"not measured: {why}" + (f" ({tail[0][:width]})" if tail else "")


def run_threshold(module: _curriculum.Module, threshold: _curriculum.Threshold, katas_dir: Path, impl: str, *,
                  timeout: float | None = None, memory: int | None = None, guard=None) -> ThresholdResult:
    if guard is None:
        from grading import integrity

        with integrity.Guard(katas_dir, tamper_check=False) as own:
            return run_threshold(module, threshold, katas_dir, impl, timeout=timeout, memory=memory, guard=own)
    limit = min(effective_timeout(module.timeout, timeout), 300.0)
    memory = sandbox.default_memory_limit() if memory is None else memory
    data = {"TINYTORCH_DATA": os.environ["TINYTORCH_DATA"]} if os.environ.get("TINYTORCH_DATA") else {}
    data, outcome = run_trusted_json(["grading.thresholds", module.key, threshold.name], katas_dir, impl, guard,
                                     memory, limit, data)
    base = dict(name=threshold.name, max_ratio=threshold.max_ratio, points=threshold.points,
                duration=round(outcome.duration, 3))
    ratio = data.get("ratio") if isinstance(data, dict) else None
    if not isinstance(ratio, (int, float)) or not math.isfinite(ratio) or ratio <= 0:
        return ThresholdResult(measured=None, passed=False, earned=0.0,
                               message=not_measured(outcome, "no measurement", 200), **base)
    passed = ratio <= threshold.max_ratio
    if passed:
        message = f"ratio {ratio:.2f} <= {threshold.max_ratio:g}"
    else:
        message = f"ratio {ratio:.2f} > {threshold.max_ratio:g}: {ratio / threshold.max_ratio:.1f}x over the bound"
        note = data.get("note") if isinstance(data.get("note"), str) else threshold.description
        if note:
            message += f" ({note[:300]})"
    return ThresholdResult(measured=round(ratio, 4), passed=passed, earned=threshold.points if passed else 0.0,
                           message=message, samples=list(data.get("samples", [])), **base)


# -- milestones ----------------------------------------------------------------


@dataclass
class MilestoneRunResult:
    slug: str
    status: str  # passed | missed | error
    metric: str
    target: float
    value: float | None
    message: str
    duration: float = 0.0
    artifacts: list[str] = field(default_factory=list)
    output_tail: str = ""


def run_milestone(milestone: _curriculum.Milestone, katas_dir: Path | None, impl: str, *,
                  out_dir: Path, data_dir: Path | None = None, timeout: float | None = None,
                  memory: int | None = None, seed: int = 0, on_output=None, guard=None) -> MilestoneRunResult:
    """Run a milestone script (trusted) on the learner's framework (sandboxed worker).

    It passes only on the metric in the result file the grader chose, compared with the target
    in the manifest's direction (`milestone.passes`: goal "max" or "min"); the script keeps the
    test labels on the trusted side and computes the metric from the worker's predictions. A
    result with no value and an "error" detail (an unfinished kata) is "missed", never passed.
    """
    if guard is None and katas_dir is not None:
        from grading import integrity

        with integrity.Guard(katas_dir, data_dir=data_dir, tamper_check=False) as own:
            return run_milestone(milestone, katas_dir, impl, out_dir=out_dir, data_dir=data_dir, timeout=timeout,
                                 memory=memory, seed=seed, on_output=on_output, guard=own)
    limit = effective_timeout(milestone.timeout, timeout)
    memory = sandbox.default_memory_limit() if memory is None else memory
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"kata-milestone-{milestone.slug}-") as tmp:
        result_json = Path(tmp) / f"result-{os.urandom(8).hex()}.json"
        cmd = [sys.executable, str(milestone.script_path()), "--impl", impl, "--out-dir", str(out_dir),
               "--result-json", str(result_json), "--seed", str(seed)]
        extra = {}
        if data_dir is not None:
            cmd += ["--data-dir", str(data_dir)]
            extra["TINYTORCH_DATA"] = str(data_dir)
        elif os.environ.get("TINYTORCH_DATA"):
            extra["TINYTORCH_DATA"] = os.environ["TINYTORCH_DATA"]
        started = time.monotonic()
        worker = guard.worker_config(impl, memory) if guard is not None else None
        outcome = sandbox.run(cmd, env=child_env(katas_dir, impl, worker, **extra), cwd=tmp, timeout=limit,
                              memory=sandbox.trusted_memory(memory) if worker else memory, on_output=on_output)
        data = None
        if result_json.is_file():
            try:
                data = json.loads(result_json.read_text())
            except ValueError:
                data = None
    duration = round(time.monotonic() - started, 3)
    base = dict(slug=milestone.slug, metric=milestone.metric, target=milestone.target, duration=duration,
                output_tail=outcome.output[-4000:])
    crashed = outcome.describe()
    value = data.get("value") if isinstance(data, dict) else None
    details = data.get("details") if isinstance(data, dict) else None
    if not crashed and isinstance(data, dict) and data.get("status") == "data_missing" and value is None:
        # The script (course code, trusted side) could not find its dataset: no verdict either way.
        why = details.get("message", "") if isinstance(details, dict) else ""
        return MilestoneRunResult(status="data missing", value=None, message=f"data missing: {why}"[:500], **base)
    unfinished = details.get("error") if isinstance(details, dict) else None
    if (not crashed and value is None and isinstance(unfinished, str)
            and data.get("metric") in (None, milestone.metric)):
        # The harness's not_implemented path: nothing was measured, so it misses whatever the goal.
        return MilestoneRunResult(status="missed", value=None,
                                  message=f"{milestone.metric} not measured: {unfinished[:300]}"
                                          f" (target: {milestone.target_text()})", **base)
    if crashed or not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        why = crashed or (f"no result written (exit code {outcome.returncode})" if data is None
                          else "the result file has no finite 'value'")
        last = [l for l in outcome.output.strip().splitlines() if l.strip()][-1:]
        return MilestoneRunResult(status="error", value=None, message=why + (f": {last[0][:300]}" if last else ""),
                                  **base)
    if data.get("metric") not in (None, milestone.metric):
        return MilestoneRunResult(status="error", value=None,
                                  message=f"the script measured {data.get('metric')!r}, not {milestone.metric!r}", **base)
    passed = milestone.passes(value)  # the manifest's goal decides the direction, never the script
    artifacts = [str(a) for a in data.get("artifacts", []) if isinstance(a, str) and Path(a).is_file()]
    message = f"{milestone.metric} = {value:.4f} (target: {milestone.target_text()})"
    return MilestoneRunResult(status="passed" if passed else "missed", value=float(value), message=message,
                              artifacts=artifacts, **base)
