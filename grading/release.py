"""The repository a course hands out: `kata release --out DIR [--solutions 01-04]`.

A student copy holds what a learner needs and nothing a course keeps private:

    katas/       every module's lesson and kata stubs, generated afresh from the reference
                 (so an author's half-edited kata can never leak), and the stub lock
    checks/      the checks and their harness
    milestones/  the historical models
    grading/     the `kata` tool (without grading/tests, which need the reference)
    docs/, README.md, pyproject.toml, conftest.py, .gitignore, LICENSE*

Never released (PRIVATE): reference/ (except the modules named by --solutions), the
course's own tests (grading/tests), CI (.ci), caches and results, and every path matched by
a line of `.course-private` at the course checkout's root (one glob per line, relative to
the root, `#` comments; a folder pattern excludes everything in it), e.g.:

    checks/*/answers_*.py
    docs/INSTRUCTORS.md

Only the top-level entries above are copied at all (an allow-list), so a file a course adds
at the root stays private unless it is listed in INCLUDE. After writing, the copy is
verified: no released file may equal a reference file, nor contain a multi-line solution
region of one (the modules whose solutions are released excepted); otherwise the release
fails and says which file.

`grading/release.json` in the copy records what was released (course commit, date, released
solutions) and the checks each module must have, collected on the course's reference: in a
student copy, a module without its reference is checked against that list (see
`released_checks`).

Solutions as the term goes on: `kata release --out DIR --solutions 01-04` on an existing
copy refreshes the tool, checks and lessons, adds reference/01_tensor ... reference/04_losses,
and never touches a learner's edited kata. Prerequisites whose solution is released are then
lent to later modules like in the course checkout; the others cannot be lent, and
`kata check` says so (`lending`).
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from grading import curriculum as _curriculum
from grading import stubs as _stubs

ROOT = _curriculum.PROJECT_ROOT
MANIFEST = Path("grading") / "release.json"
SCHEMA = "tinytorch-katas/release/1"
PRIVATE_LIST = ".course-private"
INCLUDE = ("README.md", "pyproject.toml", "conftest.py", ".gitignore", "LICENSE", "LICENSE.md", "LICENSE.txt",
           "docs", "grading", "checks", "milestones", "katas")
PRIVATE = ("reference", "grading/tests", ".ci", PRIVATE_LIST, str(MANIFEST))  # besides the allow-list
JUNK = ("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", "*.egg-info", ".coverage*", ".DS_Store")


class ReleaseError(RuntimeError):
    """The copy cannot be written (or would leak a solution)."""


def parse_modules(spec: str | None) -> list[_curriculum.Module]:
    """'01-04', '1,2,5', '01-03,07' or 'all' -> modules, in curriculum order."""
    if not spec:
        return []
    cur = _curriculum.load()
    if spec.strip() == "all":
        return [m for m in cur.modules if m.has_reference()]
    numbers: set[int] = set()
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if re.fullmatch(r"\d+\s*-\s*\d+", part):
            low, high = (int(x) for x in part.split("-"))
            if low > high:
                raise ReleaseError(f"--solutions: {part!r} is an empty range")
            numbers.update(cur.module(n).number for n in range(low, high + 1))
        else:
            try:
                numbers.add(cur.module(part).number)
            except _curriculum.CurriculumError as err:
                raise ReleaseError(f"--solutions: {err}") from None
    return [m for m in cur.modules if m.number in numbers]


def private_patterns(root: Path = ROOT) -> list[str]:
    """The built-in private paths plus the course's `.course-private` lines."""
    patterns = list(PRIVATE)
    listed = root / PRIVATE_LIST
    if listed.is_file():
        for line in listed.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip().strip("/")
            if line:
                patterns.append(line)
    return patterns


def _matches(rel: str, patterns: list[str]) -> bool:
    """Whether posix path `rel` or one of its parent folders matches a pattern."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(p, pattern) for p in prefixes for pattern in patterns)


def _is_junk(rel: str) -> bool:
    return any(fnmatch.fnmatchcase(part, pattern) for part in rel.split("/") for pattern in JUNK)


def released_files(root: Path = ROOT) -> list[str]:
    """Every file (posix path relative to root) a student copy gets, katas/ excepted."""
    patterns = private_patterns(root)
    out: list[str] = []
    for top in INCLUDE:
        if top == "katas" or not (root / top).exists():
            continue
        paths = [root / top] if (root / top).is_file() else sorted(p for p in (root / top).rglob("*") if p.is_file())
        for path in paths:
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() or _is_junk(rel) or _matches(rel, patterns):
                continue
            out.append(rel)
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _course_commit(root: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


# -- the leak check -------------------------------------------------------------------


def _solution_regions(text: str) -> list[str]:
    """Each multi-line solution region (code lines stripped, comments and blanks dropped)."""
    regions, current = [], None
    for line in text.splitlines():
        if _stubs.BEGIN.match(line):
            current = []
        elif _stubs.END.match(line):
            if current is not None and len(current) >= 3:
                regions.append("\n".join(current))
            current = None
        elif current is not None:
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                current.append(stripped)
    return regions


def _normalized(text: str) -> str:
    return "\n".join(s for s in (line.strip() for line in text.splitlines()) if s and not s.startswith("#"))


def leaks(copy: Path, root: Path = ROOT, released: tuple[str, ...] = ()) -> list[str]:
    """Files of `copy` that equal a reference file or contain one of its solution regions.

    `released`: keys of modules whose solutions are handed out on purpose (not counted).
    """
    secret_hashes: dict[str, str] = {}
    regions: dict[str, str] = {}
    for module in _curriculum.load().modules:
        folder = module.reference_dir(root)
        if module.key in released or not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not _is_junk(p.name)):
            rel = path.relative_to(root).as_posix()
            data = path.read_bytes()
            if len(data.strip()) >= 64:  # an empty __init__.py is no secret (and equals many files)
                secret_hashes[hashlib.sha256(data).hexdigest()] = rel
            try:
                for region in _solution_regions(path.read_text(encoding="utf-8")):
                    regions.setdefault(region, rel)
            except UnicodeDecodeError:
                pass
    found: list[str] = []
    for path in sorted(p for p in copy.rglob("*") if p.is_file()):
        rel = path.relative_to(copy).as_posix()
        if rel.startswith(".git/") or any(rel.startswith(f"reference/{k}/") for k in released):
            continue
        data = path.read_bytes()
        same = secret_hashes.get(hashlib.sha256(data).hexdigest())
        if same:
            found.append(f"{rel} is a copy of {same}")
            continue
        try:
            text = _normalized(data.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        inside = next((source for region, source in regions.items() if region in text), None)
        if inside:
            found.append(f"{rel} contains a solution region of {inside}")
    return found


# -- writing the copy -------------------------------------------------------------------


@dataclass
class ReleaseReport:
    out: Path
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # a learner's edited katas, left alone (update)
    solutions: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)  # available modules in the copy
    update: bool = False


def _copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _write_katas(root: Path, out: Path, report: ReleaseReport, patterns: list[str]) -> None:
    cur = _curriculum.load()
    old_lock = _stubs._load_lock(out / "katas")  # the copy's lock (update): pristine stubs may be refreshed
    lock: dict[str, str] = {}
    course_lock = _stubs._load_lock(root / "katas")
    for module in cur.modules:
        folder = module.katas_dir(root)
        if not folder.is_dir() and not module.has_reference(root):
            continue
        generated = set()
        if module.has_reference(root):
            for name in module.files:
                source = module.reference_dir(root) / name
                stub = _stubs.make_stub(source.read_text(encoding="utf-8"), source.relative_to(root).as_posix())
                rel = f"{module.key}/{name}"
                generated.add(name)
                lock[rel] = _digest(stub)
                target = out / "katas" / rel
                if target.is_file() and target.read_text(encoding="utf-8", errors="replace") != stub \
                        and old_lock.get(rel) != _digest(target.read_text(encoding="utf-8", errors="replace")):
                    report.kept.append(f"katas/{rel}")
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(stub, encoding="utf-8")
                report.written.append(f"katas/{rel}")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else ():
            rel = path.relative_to(root / "katas").as_posix()
            if path.name in generated and path.parent == folder or _is_junk(rel) or path.is_symlink() \
                    or _matches(f"katas/{rel}", patterns):
                continue
            target = out / "katas" / rel
            if path.suffix == ".py" and target.is_file() and target.read_bytes() != path.read_bytes() \
                    and old_lock.get(rel) != hashlib.sha256(target.read_bytes()).hexdigest():
                report.kept.append(f"katas/{rel}")
                continue
            _copy_file(path, target)
            report.written.append(f"katas/{rel}")
            if rel in course_lock:
                lock[rel] = course_lock[rel]
    (out / "katas").mkdir(parents=True, exist_ok=True)
    (out / "katas" / _stubs.LOCK_NAME).write_text(json.dumps(dict(sorted(lock.items())), indent=2) + "\n")
    report.written.append(f"katas/{_stubs.LOCK_NAME}")


def released_checks(module_key: str, root: Path = ROOT) -> tuple[str, ...] | None:
    """In a student copy: the checks `module_key` must have, as collected on the course's
    reference when the copy was released (None outside a student copy or for an unknown module)."""
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    checks = data.get("expected_checks", {}).get(module_key) if isinstance(data, dict) else None
    return tuple(checks) if isinstance(checks, list) else None


def is_student_copy(root: Path = ROOT) -> bool:
    return (root / MANIFEST).is_file()


def release(out: Path, solutions: str | None = None, root: Path = ROOT, *, collect=None) -> ReleaseReport:
    """Write (or update) the student copy in `out`; see the module docstring.

    `collect(module_key)` gives a module's expected checks (default: grading.runner's, on the
    course's reference in a sandbox).
    """
    out = Path(out).resolve()
    root = Path(root).resolve()
    inside = [root / top for top in (*INCLUDE, "reference")]
    if out == root or any(folder == out or folder in out.parents for folder in inside):
        raise ReleaseError(f"{out}: write the student copy outside the course's katas/, checks/, grading/, ...")
    update = out.is_dir() and any(out.iterdir())
    if update and not is_student_copy(out):
        raise ReleaseError(f"{out} is not empty and is not a student copy (no {MANIFEST}): choose an empty folder")
    chosen = parse_modules(solutions)
    missing = [m.key for m in chosen if not m.has_reference(root)]
    if missing:
        raise ReleaseError(f"--solutions: no reference in this checkout for {', '.join(missing)}")
    report = ReleaseReport(out, update=update)
    previous = {}
    if update:
        try:
            previous = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
    patterns = private_patterns(root)
    for rel in released_files(root):
        _copy_file(root / rel, out / rel)
        report.written.append(rel)
    _write_katas(root, out, report, patterns)
    released = sorted(set(previous.get("solutions", [])) | {m.key for m in chosen})
    cur = _curriculum.load()
    for key in released:
        module = cur.module(key)
        source = module.reference_dir(root)
        for path in sorted(p for p in source.rglob("*") if p.is_file() and not _is_junk(p.name)):
            rel = path.relative_to(root).as_posix()
            _copy_file(path, out / rel)
            report.written.append(rel)
    report.solutions = released
    available = [m for m in cur.modules if m.is_available(out)]
    report.modules = [m.key for m in available]
    if collect is None:
        from grading import runner

        collect = runner.expected_checks
    expected = {}
    for module in available:
        try:
            expected[module.key] = list(collect(module.key))
        except RuntimeError as err:
            raise ReleaseError(f"could not collect the checks of {module.key} on the reference: {err}") from None
    manifest = {"schema": SCHEMA, "released_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "course_commit": _course_commit(root), "solutions": released, "modules": report.modules,
                "expected_checks": expected}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    found = leaks(out, root, tuple(released))
    if found:
        raise ReleaseError("the student copy would leak course solutions (fix it, or list the file in "
                           f"{PRIVATE_LIST}):\n  " + "\n  ".join(found[:20]))
    return report


# -- lending in a student copy -----------------------------------------------------------


def lending(module: _curriculum.Module, passed: set[int], root: Path = ROOT) -> tuple[list[str], list[str]]:
    """(prerequisites lent from the reference, prerequisites that cannot be: solution not released)."""
    cur = _curriculum.load()
    waiting = [cur.module(n) for n in cur.requirements(module) if n not in passed]
    return ([f"{m.number:02d}" for m in waiting if m.has_reference(root)],
            [f"{m.number:02d}" for m in waiting if not m.has_reference(root)])


def without_unreleased(impl: str, root: Path = ROOT) -> str:
    """`impl` ("katas,02=reference,...") minus reference overrides of modules whose reference
    is not in this tree: those modules then come from the learner's own katas."""
    from grading import assembly

    spec = assembly.parse_impl(impl)
    cur = _curriculum.load()
    kept = {n: v for n, v in spec.overrides.items() if v != "reference" or cur.module(n).has_reference(root)}
    if spec.default == "reference":
        return impl
    return assembly.ImplSpec(spec.default, kept).render()


def unreleased_message(numbers: list[str]) -> str:
    """What `kata check` says about prerequisites it cannot lend (see `lending`)."""
    if len(numbers) == 1:
        return (f"prerequisite {numbers[0]} not passed and its solution is not released: your own kata "
                f"{numbers[0]} is used for this run (pass it first: `kata check {numbers[0]}`)")
    return (f"prerequisites {', '.join(numbers)} not passed and their solutions are not released: your own "
            f"katas are used for this run (pass them first: `kata check {numbers[0]}`)")
