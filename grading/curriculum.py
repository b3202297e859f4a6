"""The curriculum manifest (grading/curriculum.toml) as typed, validated data.

Everything that needs to know which modules and milestones exist reads them from
here: the `kata` CLI, the grader, the checks harness, the assembled `tinytorch`
package and the README table.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

MANIFEST = Path(__file__).with_name("curriculum.toml")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
STUBS_LOCK = ".stubs.lock.json"  # grading/stubs.py LOCK_NAME (stubs imports this module)


class CurriculumError(ValueError):
    """The manifest is malformed or a lookup names something it does not declare."""


@dataclass(frozen=True)
class Threshold:
    """A performance threshold of a module (see grading/thresholds.py).

    kind "ratio": time(learner's op) / time(baseline) on the same data, measured in one
    process, must be <= max_ratio; `benchmark` names the function ("grading.thresholds:fn").
    Its `points` are part of the module's points: a miss costs exactly them.
    """

    name: str
    kind: str
    benchmark: str
    max_ratio: float
    points: float
    description: str = ""


THRESHOLD_KINDS = ("ratio",)
# A milestone's goal: "max" (higher is better: passes when value >= target, the default) or "min"
# (lower is better, e.g. a loss: passes when value <= target). The comparison lives in
# Milestone.passes and its wording in Milestone.target_text; everything else asks them.
MILESTONE_GOALS = {"max": (">=", "≥"), "min": ("<=", "≤")}


@dataclass(frozen=True)
class Module:
    number: int
    slug: str
    title: str
    tier: str
    exports: tuple[str, ...]
    prerequisites: tuple[int, ...]
    points: float
    timeout: float
    thresholds: tuple[Threshold, ...] = ()

    @property
    def threshold_points(self) -> float:
        return sum(t.points for t in self.thresholds)

    @property
    def key(self) -> str:
        """Directory name shared by katas/, reference/ and checks/, e.g. '01_tensor'."""
        return f"{self.number:02d}_{self.slug}"

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f"{name}.py" for name in self.exports)

    def reference_dir(self, root: Path = PROJECT_ROOT) -> Path:
        return root / "reference" / self.key

    def katas_dir(self, root: Path = PROJECT_ROOT) -> Path:
        return root / "katas" / self.key

    def checks_dir(self, root: Path = PROJECT_ROOT) -> Path:
        return root / "checks" / self.key

    def has_reference(self, root: Path = PROJECT_ROOT) -> bool:
        """Its reference solution is in this tree (a course checkout, or a released solution)."""
        return all((self.reference_dir(root) / f).is_file() for f in self.files)

    def has_stubs(self, root: Path = PROJECT_ROOT) -> bool:
        """Its kata files exist in <root>/katas, or are recorded in the katas stub lock."""
        if all((self.katas_dir(root) / f).is_file() for f in self.files):
            return True
        try:
            lock = json.loads((root / "katas" / STUBS_LOCK).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(lock, dict) and all(f"{self.key}/{f}" in lock for f in self.files)

    def is_available(self, root: Path = PROJECT_ROOT) -> bool:
        """Built by the course: its checks exist, and its kata stubs (a student copy, see
        grading/release.py) or its reference (a course checkout before `kata stubs`) do."""
        return self.checks_dir(root).is_dir() and (self.has_stubs(root) or self.has_reference(root))


@dataclass(frozen=True)
class Milestone:
    slug: str
    year: int
    title: str
    script: str
    requires: tuple[int, ...]
    metric: str
    target: float
    points: float
    timeout: float
    data: tuple[str, ...] = ()
    goal: str = "max"

    def passes(self, value: float | None) -> bool:
        """Whether a measured value meets the target. No value (an unfinished kata) or a non-finite
        one never passes, whichever the goal."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        return value >= self.target if self.goal == "max" else value <= self.target

    def target_text(self, unicode: bool = False) -> str:
        """'test_accuracy >= 0.95' or 'val_loss <= 1.75' (≥/≤ with unicode=True, for tables)."""
        ascii_op, unicode_op = MILESTONE_GOALS[self.goal]
        return f"{self.metric} {unicode_op if unicode else ascii_op} {self.target:g}"

    def script_path(self, root: Path = PROJECT_ROOT) -> Path:
        return root / self.script

    def is_available(self, root: Path = PROJECT_ROOT) -> bool:
        return self.script_path(root).is_file()


@dataclass(frozen=True)
class Curriculum:
    modules: tuple[Module, ...]
    milestones: tuple[Milestone, ...]
    tiers: dict = field(default_factory=dict)

    def module(self, ref: int | str) -> Module:
        """Look a module up by number (5, '5', '05') or slug ('autograd') or key ('05_autograd')."""
        text = str(ref).strip()
        for module in self.modules:
            if text in (module.slug, module.key) or (text.isdigit() and int(text) == module.number):
                return module
        known = ", ".join(m.key for m in self.modules)
        raise CurriculumError(f"no module {ref!r} in the curriculum (known: {known})")

    def milestone(self, ref: str) -> Milestone:
        """By slug, or by year; a year several milestones share means the one with the most points
        (the first in the manifest on a tie): 1998 -> lenet, 2017 -> transformer."""
        text = str(ref).strip()
        for milestone in self.milestones:
            if text == milestone.slug:
                return milestone
        same_year = [m for m in self.milestones if text == str(m.year)]
        if same_year:
            return max(same_year, key=lambda m: m.points)  # max keeps the first of equals
        known = ", ".join(m.slug for m in self.milestones)
        raise CurriculumError(f"no milestone {ref!r} in the curriculum (known: {known})")

    def requirements(self, module: Module) -> tuple[int, ...]:
        """Every module `module` builds on: its prerequisites, theirs, and so on (sorted numbers).

        Lending uses this closure: module 09's checks build networks with module 02's ReLU through
        module 03, so lending only the listed prerequisites (01, 03, 05) would run a stubbed 02.
        """
        found: set[int] = set()
        todo = list(module.prerequisites)
        while todo:
            number = todo.pop()
            if number not in found:
                found.add(number)
                todo.extend(self.module(number).prerequisites)
        return tuple(sorted(found))

    def export_owner(self, export: str) -> Module | None:
        """The module whose file provides `tinytorch.<export>`."""
        for module in self.modules:
            if export in module.exports:
                return module
        return None

    @property
    def total_points(self) -> float:
        return sum(m.points for m in self.modules) + sum(m.points for m in self.milestones)


def _validate(curriculum: Curriculum) -> None:
    numbers = [m.number for m in curriculum.modules]
    if numbers != list(range(1, len(numbers) + 1)):
        raise CurriculumError(f"modules must be numbered 1..N in order, got {numbers}")
    seen: dict[str, str] = {}
    for module in curriculum.modules:
        if module.tier not in curriculum.tiers:
            raise CurriculumError(f"{module.key}: unknown tier {module.tier!r}")
        for prereq in module.prerequisites:
            if not 1 <= prereq < module.number:
                raise CurriculumError(f"{module.key}: prerequisite {prereq} must be an earlier module")
        for export in module.exports:
            if export in seen:
                raise CurriculumError(f"tinytorch.{export} is exported by both {seen[export]} and {module.key}")
            seen[export] = module.key
        names = [t.name for t in module.thresholds]
        if len(set(names)) != len(names):
            raise CurriculumError(f"{module.key}: duplicate threshold names {names}")
        for t in module.thresholds:
            if t.kind not in THRESHOLD_KINDS:
                raise CurriculumError(f"{module.key}: threshold {t.name}: kind must be one of {THRESHOLD_KINDS}")
            if not t.max_ratio > 0 or t.points < 0:
                raise CurriculumError(f"{module.key}: threshold {t.name}: max_ratio > 0 and points >= 0 required")
            if not t.benchmark.startswith("grading."):
                raise CurriculumError(f"{module.key}: threshold {t.name}: benchmark must live in grading/")
        if module.threshold_points >= module.points:
            raise CurriculumError(f"{module.key}: thresholds may take only part of the module's points")
    for milestone in curriculum.milestones:
        for req in milestone.requires:
            if not 1 <= req <= len(numbers):
                raise CurriculumError(f"milestone {milestone.slug}: requires unknown module {req}")
        if milestone.goal not in MILESTONE_GOALS:
            raise CurriculumError(f"milestone {milestone.slug}: goal must be one of {tuple(MILESTONE_GOALS)},"
                                  f" got {milestone.goal!r}")


def parse(text: str) -> Curriculum:
    raw = tomllib.loads(text)
    try:
        modules = tuple(
            Module(
                number=int(m["number"]),
                slug=m["slug"],
                title=m["title"],
                tier=m["tier"],
                exports=tuple(m["exports"]),
                prerequisites=tuple(m.get("prerequisites", ())),
                points=float(m["points"]),
                timeout=float(m.get("timeout", 300)),
                thresholds=tuple(
                    Threshold(
                        name=t["name"],
                        kind=t.get("kind", "ratio"),
                        benchmark=t["benchmark"],
                        max_ratio=float(t["max_ratio"]),
                        points=float(t.get("points", 0)),
                        description=t.get("description", ""),
                    )
                    for t in m.get("thresholds", ())
                ),
            )
            for m in raw["modules"]
        )
        milestones = tuple(
            Milestone(
                slug=m["slug"],
                year=int(m["year"]),
                title=m["title"],
                script=m["script"],
                requires=tuple(m["requires"]),
                metric=m["metric"],
                target=float(m["target"]),
                points=float(m["points"]),
                timeout=float(m.get("timeout", 600)),
                data=tuple(m.get("data", ())),
                goal=m.get("goal", "max"),
            )
            for m in raw.get("milestones", ())
        )
    except KeyError as missing:
        raise CurriculumError(f"curriculum manifest is missing the field {missing}") from None
    curriculum = Curriculum(modules=modules, milestones=milestones, tiers=dict(raw.get("tiers", {})))
    _validate(curriculum)
    return curriculum


@lru_cache(maxsize=None)
def load(path: str | os.PathLike = MANIFEST) -> Curriculum:
    return parse(Path(path).read_text(encoding="utf-8"))
