"""The learner's cached results (<project>/.kata/results.json) and the board `kata status` shows.

Every `kata check` / `kata grade` stores, per module, its outcome together with the sha256 of
the kata files it ran on; a cached result whose kata changed since is shown as stale. The
cache is keyed by the katas directory, so pointing TINYTORCH_KATAS elsewhere never mixes
two learners' results. Batch grading never writes here.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grading import curriculum as _curriculum
from grading import integrity
from grading.stubs import kata_state

ROOT = _curriculum.PROJECT_ROOT


def cache_dir() -> Path:
    return Path(os.environ.get("KATA_STATE_DIR") or ROOT / ".kata")


def milestones_dir() -> Path:
    """Where `kata milestone` and `kata grade` both write milestone plots and logs (<slug>/ inside)."""
    return cache_dir() / "milestones"


def _path() -> Path:
    return cache_dir() / "results.json"


def load_all() -> dict:
    try:
        return json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}


def load(katas_dir: Path) -> dict:
    return load_all().get(str(Path(katas_dir).resolve()), {"modules": {}, "milestones": {}})


def _save(katas_dir: Path, data: dict) -> None:
    everything = load_all()
    everything[str(Path(katas_dir).resolve())] = data
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(everything, handle, indent=2, default=str)
    os.replace(tmp, path)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def span(numbers: list[str]) -> str:
    """['02', '03', '04', '07'] -> '02-04, 07' (how the board and `kata check` name lent modules)."""
    values = sorted({int(n) for n in numbers})
    parts: list[str] = []
    start = prev = None
    for n in [*values, None]:
        if start is not None and (n is None or n != prev + 1):
            parts.append(f"{start:02d}" if start == prev else f"{start:02d}-{prev:02d}")
            start = None
        if n is not None and start is None:
            start = n
        prev = n
    return ", ".join(parts)


def lent_prerequisites(module: _curriculum.Module, run_impl: str | None) -> list[str]:
    """The prerequisites of `module` that `run_impl` ("katas,02=reference,...") took from the reference."""
    from grading import assembly

    if not run_impl or run_impl == "katas":
        return []
    try:
        spec = assembly.parse_impl(run_impl)
    except assembly.ImplSpecError:
        return []
    return [f"{n:02d}" for n in _curriculum.load().requirements(module) if spec.for_module(n) == "reference"]


def checks_points(module: _curriculum.Module, passed: int, total: int) -> float:
    """The points a check run earns (thresholds are measured by `kata grade` only)."""
    if not total:
        return 0.0
    return round((module.points - module.threshold_points) * passed / total, 2)


def record_module(katas_dir: Path, entry: dict) -> None:
    """Store one module's outcome (a grade entry or a check run converted to one)."""
    data = load(katas_dir)
    module = _curriculum.load().module(entry["key"])
    lent = entry.get("lent")
    if lent is None:  # a grade entry: its impl names what was lent
        lent = lent_prerequisites(module, entry.get("impl"))
    points = entry.get("points")
    if points is None:
        points = checks_points(module, entry.get("checks_passed", 0), entry.get("checks_total", 0))
    if entry["status"] == "rejected":
        points = 0.0
    data.setdefault("modules", {})[entry["key"]] = {
        "status": entry["status"],
        "passed": entry.get("checks_passed", 0),
        "total": entry.get("checks_total", 0),
        "reason": entry.get("reason", ""),
        "failing": [c["id"] for c in entry.get("checks", []) if c.get("outcome") != "passed"][:200],
        "messages": {c["id"]: str(c.get("message", ""))[:300] for c in entry.get("checks", [])
                     if c.get("outcome") != "passed"}  if len(entry.get("checks", [])) <= 400 else {},
        "impl": entry.get("impl"),
        "lent": list(lent),
        "points": points,
        "hashes": entry.get("kata_files", {}),
        "at": _now(),
    }
    _save(katas_dir, data)


def record_milestone(katas_dir: Path, entry: dict) -> None:
    data = load(katas_dir)
    data.setdefault("milestones", {})[entry["slug"]] = {
        "status": entry["status"], "value": entry.get("value"), "message": entry.get("message", ""),
        "assembly": entry.get("assembly"), "at": _now(),
    }
    _save(katas_dir, data)


def record_grade(katas_dir: Path, result: dict) -> None:
    for entry in result["modules"]:
        if entry.get("available") and entry.get("status") != "error":
            record_module(katas_dir, entry)
    for entry in result.get("milestones", []):
        if entry.get("available") and entry["status"] not in ("locked",):
            record_milestone(katas_dir, entry)


@dataclass
class ModuleState:
    key: str
    status: str  # passed | failing | stale | not_started | in_progress | missing | not_available
    passed: int = 0
    total: int = 0
    detail: str = ""
    points: float | None = None  # earned by the cached result (checks share; `kata grade` adds thresholds)


def module_states(katas_dir: Path) -> dict[int, ModuleState]:
    """What `kata status` shows for every module, from the cache and the files on disk."""
    cur = _curriculum.load()
    cached = load(katas_dir).get("modules", {})
    states: dict[int, ModuleState] = {}
    for module in cur.modules:
        if not module.is_available():
            states[module.number] = ModuleState(module.key, "not_available")
            continue
        record = cached.get(module.key)
        hashes = integrity.kata_hashes(katas_dir, module)
        file_state = kata_state(katas_dir, module)
        if record and record.get("hashes") == hashes and record.get("impl", "katas") != "reference":
            status = "passed" if record["status"] == "passed" else "failing"
            states[module.number] = ModuleState(module.key, status, record.get("passed", 0), record.get("total", 0),
                                                record.get("reason", ""), record.get("points"))
        elif file_state == "missing":
            states[module.number] = ModuleState(module.key, "missing", detail="kata file missing (run `kata stubs`)")
        elif file_state == "pristine":
            states[module.number] = ModuleState(module.key, "not_started")
        elif record:
            states[module.number] = ModuleState(module.key, "stale", record.get("passed", 0), record.get("total", 0),
                                                "edited since the last check")
        else:
            states[module.number] = ModuleState(module.key, "in_progress", detail="edited, not checked yet")
    # One rule for prerequisites (README, "The learner's loop"): no module is ever locked. `kata check`,
    # `kata grade` and a bare `pytest checks/NN_slug` lend the reference for every prerequisite you have
    # not passed, so the board says what a result was checked with instead of "locked".
    for module in cur.modules:
        state = states[module.number]
        if state.status == "not_available":
            continue
        record = cached.get(module.key) or {}
        if state.status in ("passed", "failing") and record.get("lent"):
            note = f"checked with {span(record['lent'])} lent from the reference"
        else:
            waiting = [f"{n:02d}" for n in cur.requirements(module) if states[n].status != "passed"]
            if not waiting or state.status in ("passed", "failing"):
                continue
            note = f"will be checked with {span(waiting)} lent from the reference (not passed yet)"
        state.detail = (state.detail + "; " if state.detail else "") + note
    return states


def passed_modules(katas_dir: Path) -> set[int]:
    return {n for n, s in module_states(katas_dir).items() if s.status == "passed"}


def current_module(katas_dir: Path):
    """The first available module not passed yet (what `kata watch` follows), or None."""
    cur = _curriculum.load()
    states = module_states(katas_dir)
    for module in cur.modules:
        if states[module.number].status not in ("passed", "not_available"):
            return module
    return None
