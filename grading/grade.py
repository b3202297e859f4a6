"""Grade one learner checkout: every available module, its thresholds, then the milestones.

    result = grade_submission(Path("katas"), GradeOptions())

Policy (documented in docs/GRADING.md):

* Modules are graded in curriculum order, each in its own sandboxed process. Module N is
  checked on the learner's kata for N; every *other* module comes from the learner's kata
  if it passed, else from the reference ("isolated" grading: a bug in module 01 costs the
  points of module 01 once, not again in every later module). `--impl reference` grades the
  reference (a sanity run: full marks); an explicit mix string is used as given.
* A kata byte-identical to its generated stub is "not started": it is not run (the
  meta-tests prove every check fails on pristine stubs) and scores 0, failing.
* A kata the static check rejects is not run and scores 0 with the reason.
* Points: a module's checks share (points - threshold points) in proportion to the checks
  passed; its thresholds are measured only once all its checks pass. A run that did not
  complete (timeout, crash, early exit, import error) earns 0 for the module.
* Milestones run on the learner's passing katas; a required module the learner has not
  passed locks the milestone, unless `fallback="reference"` lends the reference's one.
  A milestone earns its points only if its measured metric reaches the manifest target.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from grading import assembly, capstone, integrity, runner, sandbox, stubs
from grading import curriculum as _curriculum

ROOT = _curriculum.PROJECT_ROOT
SCHEMA = "tinytorch-katas/grade-result/1"


@dataclass
class GradeOptions:
    impl: str = "katas"  # katas | reference | "katas,05=reference,..."
    fallback: str | None = None  # None | "reference": lend reference modules to milestones
    milestones: bool = True
    milestone_slugs: list[str] | None = None  # None: every milestone (when `milestones`)
    modules: list[int] | None = None  # None: every available module
    timeout: float | None = None  # override every manifest timeout (tests, quick runs)
    memory: int | None = None  # bytes; None: KATA_MEMORY_LIMIT or 4 GiB
    select: str | None = None  # pytest -k expression (tests, debugging); the expected set shrinks too
    hypothesis_profile: str = "ci"
    data_dir: Path | None = None
    out_dir: Path | None = None  # milestone plots/logs; default: a folder under .kata/
    static_check: bool = True
    thresholds: bool = True
    run_pristine: bool = False
    seed: int = 0
    # Notice a kata modifying the course's files (checks, reference, grading). Off for live
    # course-author checkouts where people edit those files while grading runs.
    tamper_check: bool = field(default_factory=lambda: os.environ.get("KATA_TAMPER_CHECK", "1") != "0")
    hide: list[str] = field(default_factory=list)  # more folders the learner's worker must not see (batch)


def module_impl(module: _curriculum.Module, options: GradeOptions, passed: set[int]) -> str:
    """The TINYTORCH_IMPL under which `module`'s checks run (see the module docstring)."""
    if options.impl not in ("katas", "reference"):
        return assembly.parse_impl(options.impl).render()
    if options.impl == "reference":
        return "reference"
    cur = _curriculum.load()
    overrides = [f"{m.number:02d}=reference" for m in cur.modules
                 if m.number != module.number and m.number not in passed and m.has_reference()]
    return ",".join(["katas", *overrides])


def _points(module: _curriculum.Module, run: runner.ModuleRun | None) -> float:
    if run is None or run.total == 0:
        return 0.0
    share = module.points - module.threshold_points
    return round(share * run.passed / run.total, 2)


def grade_module(module: _curriculum.Module, katas_dir: Path, options: GradeOptions, passed: set[int],
                 guard: integrity.Guard) -> dict:
    started = time.monotonic()
    entry: dict = {
        "number": module.number, "key": module.key, "title": module.title, "tier": module.tier,
        "available": True, "points_max": module.points, "points": 0.0,
        "kata_files": {}, "state": None, "static_check": {"rejections": [], "warnings": []},
        "checks_passed": 0, "checks_total": 0, "checks": [], "thresholds": [], "reason": "", "impl": None,
    }
    from_reference = options.impl == "reference"
    entry["kata_files"] = integrity.kata_hashes(katas_dir, module)
    state = "reference" if from_reference else stubs.kata_state(katas_dir, module)
    entry["state"] = state
    impl = module_impl(module, options, passed)
    entry["impl"] = impl
    problems = [] if from_reference else guard.file_problems(module)
    if problems:
        entry.update(status="rejected", reason="rejected: " + "; ".join(problems), points=0.0,
                     duration=round(time.monotonic() - started, 3))
        return entry
    if not from_reference:
        report = guard.static_check(module)
        entry["static_check"] = {"rejections": [str(f) for f in report.rejections],
                                 "warnings": [str(f) for f in report.warnings]}
        if options.static_check and report.rejected:
            entry.update(status="rejected", reason=f"rejected by the static check: {report.reason()}")
            entry["duration"] = round(time.monotonic() - started, 3)
            return entry
    try:
        expected = runner.expected_checks(module.key, options.select)
    except RuntimeError as err:
        entry.update(status="error", reason=str(err)[:1000], duration=round(time.monotonic() - started, 3))
        return entry
    if state == "missing":
        missing = [f"katas/{k}" for k, v in entry["kata_files"].items() if v is None]
        entry.update(status="failing", checks_total=len(expected),
                     reason=f"kata file missing: {', '.join(missing)} (run `kata stubs`)",
                     duration=round(time.monotonic() - started, 3))
        return entry
    if state == "pristine" and not options.run_pristine:
        entry.update(status="failing", checks_total=len(expected),
                     reason="not implemented: not started (the kata is still the generated stub)",
                     checks=[{"id": k, "outcome": "failed", "message": "not implemented yet (pristine stub)",
                              "location": "", "duration": 0.0} for k in expected],
                     duration=round(time.monotonic() - started, 3))
        return entry
    before = integrity.snapshot(katas_dir)
    run = runner.run_checks(module, katas_dir, impl, timeout=options.timeout, memory=options.memory,
                            select=options.select, hypothesis_profile=options.hypothesis_profile, guard=guard)
    after = integrity.snapshot(katas_dir)
    # Everything below that the learner's code could have written is scrubbed and length-limited.
    entry.update(status=run.status, checks_passed=run.passed, checks_total=run.total,
                 reason=integrity.scrub(run.reason, 1000), exit_code=run.exit_code,
                 output_tail=integrity.scrub(run.output_tail[-3000:], 3000),
                 checks=[{"id": c.id, "outcome": c.outcome, "message": integrity.scrub(c.message, 500),
                          "location": c.location, "duration": c.duration,
                          **({"detail": integrity.scrub(c.detail[-1500:], 1500)} if not c.ok else {})}
                         for c in run.checks])
    entry["points"] = _points(module, run)
    changes = integrity.changed(before, after)
    if changes:
        entry["learner_files_changed"] = changes
    tampered = guard.course_changes()
    if True:
        if tampered:
            entry.update(status="rejected", points=0.0,
                         reason="integrity violation: the course's files changed while this module's checks ran: "
                                + ", ".join(tampered[:5]))
            entry["project_tampered"] = tampered
            entry["duration"] = round(time.monotonic() - started, 3)
            return entry
    if run.ok and options.thresholds and module.thresholds:
        for threshold in module.thresholds:
            if capstone.is_capstone(threshold):  # module 20: the TinyMLPerf run (grading/capstone.py)
                result, entry["capstone"] = capstone.run_threshold(
                    module, threshold, katas_dir, impl, timeout=options.timeout, memory=options.memory, guard=guard,
                    data_dir=options.data_dir)
            else:
                result = runner.run_threshold(module, threshold, katas_dir, impl, timeout=options.timeout,
                                              memory=options.memory, guard=guard)
            entry["thresholds"].append(asdict(result))
            entry["points"] = round(entry["points"] + result.earned, 2)
    elif module.thresholds:
        entry["thresholds"] = [
            {"name": t.name, "max_ratio": t.max_ratio, "points": t.points, "measured": None, "passed": False,
             "earned": 0.0, "message": "not measured: the module's checks do not all pass" if options.thresholds
             else "not measured (thresholds disabled)", "samples": [], "duration": 0.0}
            for t in module.thresholds
        ]
    entry["duration"] = round(time.monotonic() - started, 3)
    return entry


def milestone_assembly(milestone: _curriculum.Milestone, modules: dict[int, dict], options: GradeOptions) -> dict:
    """Which module comes from where for this milestone, and whether it is locked."""
    cur = _curriculum.load()
    if options.impl == "reference":
        return {"impl": "reference", "from_learner": [], "from_reference": [cur.module(n).key for n in milestone.requires],
                "locked_by": []}
    learner, lent, locked = [], [], []
    for number in milestone.requires:
        module = cur.module(number)
        entry = modules.get(number)
        if not module.is_available():
            locked.append(f"{module.key} (not yet available)")
        elif entry is not None and entry.get("status") == "passed":
            learner.append(module.key)
        elif options.fallback == "reference" and module.has_reference():
            lent.append(module.key)
        elif options.fallback == "reference":
            locked.append(f"{module.key} (solution not released)")
        else:
            status = entry.get("status") if entry else "not graded"
            locked.append(f"{module.key} ({status})")
    overrides = [f"{cur.module(k.split('_')[0]).number:02d}=reference" for k in lent]
    return {"impl": ",".join(["katas", *overrides]), "from_learner": learner, "from_reference": lent,
            "locked_by": locked}


def grade_milestone(milestone: _curriculum.Milestone, katas_dir: Path, modules: dict[int, dict],
                    options: GradeOptions, guard: integrity.Guard) -> dict:
    entry: dict = {"slug": milestone.slug, "year": milestone.year, "title": milestone.title,
                   "metric": milestone.metric, "target": milestone.target, "goal": milestone.goal,
                   "points_max": milestone.points,
                   "points": 0.0, "value": None, "available": milestone.is_available(), "requires":
                   [f"{n:02d}" for n in milestone.requires]}
    if not milestone.is_available():
        entry.update(status="not_available", message="not yet available")
        return entry
    plan = milestone_assembly(milestone, modules, options)
    entry["assembly"] = plan
    if plan["locked_by"]:
        entry.update(status="locked", message="locked: needs " + ", ".join(x.split(" ")[0] for x in plan["locked_by"]))
        return entry
    out_dir = (options.out_dir or ROOT / ".kata" / "milestones") / milestone.slug
    result = runner.run_milestone(milestone, katas_dir, plan["impl"], out_dir=out_dir, data_dir=options.data_dir,
                                  timeout=options.timeout, memory=options.memory, seed=options.seed, guard=guard)
    entry.update(status=result.status, value=result.value, message=integrity.scrub(result.message, 500),
                 duration=result.duration, artifacts=result.artifacts,
                 output_tail=integrity.scrub(result.output_tail[-3000:], 3000))
    if result.status == "data missing":  # the course did not provide its dataset: shown, not scored (0/0)
        entry["available"] = False
    if result.status == "passed":
        entry["points"] = milestone.points
    return entry


def grade_submission(katas_dir: Path, options: GradeOptions | None = None,
                     on_event: Callable[[str, dict], None] | None = None) -> dict:
    """Grade the learner's katas in `katas_dir`; returns the full machine-readable result."""
    options = options or GradeOptions()
    katas_dir = Path(katas_dir).resolve()
    cur = _curriculum.load()
    started = time.monotonic()
    emit = on_event or (lambda kind, data: None)
    tamper_check = options.tamper_check and options.impl != "reference"
    with integrity.Guard(katas_dir, data_dir=options.data_dir, hide=tuple(options.hide),
                         tamper_check=tamper_check) as guard:
        result = _grade_guarded(katas_dir, options, guard, emit)
    result["integrity"]["learner_files_unchanged"] = not guard.learner_changes()
    result["integrity"]["learner_file_changes"] = guard.learner_changes()
    result["integrity"]["isolation"] = guard.level
    tampered = [e for e in result["modules"] if e.get("project_tampered")]
    if tampered:
        result["aborted"] = ("grading aborted: the course's files changed while module "
                             f"{tampered[0]['key']} ran: " + ", ".join(tampered[0]["project_tampered"][:5]))
    result["duration"] = round(time.monotonic() - started, 3)
    return result


def _grade_guarded(katas_dir: Path, options: GradeOptions, guard: integrity.Guard, emit) -> dict:
    cur = _curriculum.load()
    modules: dict[int, dict] = {}
    passed: set[int] = set()
    wanted = set(options.modules) if options.modules else None
    for module in cur.modules:
        if wanted is not None and module.number not in wanted:
            continue
        if not module.is_available():
            modules[module.number] = {"number": module.number, "key": module.key, "title": module.title,
                                      "tier": module.tier, "available": False, "status": "not_available",
                                      "points_max": module.points, "points": 0.0, "reason": "not yet available",
                                      "checks": [], "thresholds": [], "kata_files": {}}
            continue
        emit("module_start", {"key": module.key})
        try:
            entry = grade_module(module, katas_dir, options, passed, guard)
        except Exception as err:  # a grader bug must not lose the other modules' results
            entry = {"number": module.number, "key": module.key, "title": module.title, "tier": module.tier,
                     "available": True, "status": "error", "points_max": module.points, "points": 0.0,
                     "reason": f"grader error: {type(err).__name__}: {err}", "checks": [], "thresholds": [],
                     "kata_files": integrity.kata_hashes(katas_dir, module)}
        modules[module.number] = entry
        if entry.get("status") == "passed":
            passed.add(module.number)
        emit("module_done", entry)
        if entry.get("project_tampered"):
            break
    milestones = []
    if options.milestones and not any(e.get("project_tampered") for e in modules.values()):
        for milestone in cur.milestones:
            if options.milestone_slugs is not None and milestone.slug not in options.milestone_slugs:
                continue
            emit("milestone_start", {"slug": milestone.slug})
            try:
                entry = grade_milestone(milestone, katas_dir, modules, options, guard)
            except Exception as err:
                entry = {"slug": milestone.slug, "year": milestone.year, "title": milestone.title,
                         "status": "error", "points_max": milestone.points, "points": 0.0,
                         "available": milestone.is_available(), "message": f"grader error: {err}"}
            milestones.append(entry)
            emit("milestone_done", entry)
    available_modules = [e for e in modules.values() if e.get("available")]
    available_milestones = [e for e in milestones if e.get("available")]
    score = round(sum(e["points"] for e in available_modules) + sum(e["points"] for e in available_milestones), 2)
    max_score = sum(e["points_max"] for e in available_modules) + sum(e["points_max"] for e in available_milestones)
    return {
        "schema": SCHEMA,
        "graded_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "submission": str(katas_dir),
        "impl": options.impl,
        "fallback": options.fallback,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
        "environment": {"python": platform.python_version(), "platform": platform.platform(),
                        "memory_limit": sandbox.format_bytes(options.memory or sandbox.default_memory_limit()),
                        "hypothesis_profile": options.hypothesis_profile},
        "score": score,
        "max_score": max_score,
        "curriculum_max_score": cur.total_points,
        "modules": [modules[n] for n in sorted(modules)],
        "milestones": milestones,
        # module 20's measured run (schema grading/schemas/capstone_result.schema.json); null when not measured
        "capstone": next((entry.pop("capstone") for entry in modules.values() if "capstone" in entry), None),
        "integrity": {
            "kata_sha256": {k: v for e in modules.values() for k, v in e.get("kata_files", {}).items()},
            "static_check_warnings": {e["key"]: e["static_check"]["warnings"] for e in modules.values()
                                      if e.get("static_check", {}).get("warnings")},
        },
    }


def default_katas_dir() -> Path:
    return Path(os.environ.get(assembly.KATAS_ENV) or ROOT / "katas").resolve()
