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


def record_module(katas_dir: Path, entry: dict) -> None:
    """Store one module's outcome (a grade entry or a check run converted to one)."""
    data = load(katas_dir)
    data.setdefault("modules", {})[entry["key"]] = {
        "status": entry["status"],
        "passed": entry.get("checks_passed", 0),
        "total": entry.get("checks_total", 0),
        "reason": entry.get("reason", ""),
        "failing": [c["id"] for c in entry.get("checks", []) if c.get("outcome") != "passed"][:200],
        "impl": entry.get("impl"),
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
    status: str  # passed | failing | stale | not_started | in_progress | missing | locked | not_available
    passed: int = 0
    total: int = 0
    detail: str = ""


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
                                                record.get("reason", ""))
        elif file_state == "missing":
            states[module.number] = ModuleState(module.key, "missing", detail="kata file missing (run `kata stubs`)")
        elif file_state == "pristine":
            states[module.number] = ModuleState(module.key, "not_started")
        elif record:
            states[module.number] = ModuleState(module.key, "stale", record.get("passed", 0), record.get("total", 0),
                                                "edited since the last check")
        else:
            states[module.number] = ModuleState(module.key, "in_progress", detail="edited, not checked yet")
    for module in cur.modules:
        state = states[module.number]
        if state.status in ("passed", "not_available"):
            continue
        blockers = [f"{n:02d}" for n in module.prerequisites if states[n].status != "passed"]
        if blockers and state.status in ("not_started", "missing"):
            states[module.number] = ModuleState(module.key, "locked", detail="needs " + ", ".join(blockers))
        elif blockers:
            state.detail = (state.detail + "; " if state.detail else "") + "prerequisites not passed: " + ", ".join(blockers)
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
