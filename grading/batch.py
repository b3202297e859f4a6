"""Batch grading for course staff: `kata grade --submissions DIR --jobs N --out OUT`.

DIR holds one learner checkout per subdirectory, each with a katas/ folder (a bare katas
folder - NN_slug subfolders directly inside - is accepted too). Up to N submissions are
graded at once; each one's checks, thresholds and milestones run in their own sandboxed
child processes (grading/sandbox.py), so the workers here only orchestrate and wait.

Results, per submission, under a unique output name (`output_names`):
OUT/<name>.json (the same JSON as `kata grade --json`) and OUT/<name>.gradescope.json.
OUT/summary.csv gets one row the moment each submission finishes (flushed to disk, so a
crash of the batch never loses a finished result); when the batch ends it is rewritten in
name order with the pass rates and median seconds per module appended. Then the capstone
leaderboard (OUT/leaderboard.md, .html, .png: grading/leaderboard.py) is built from the
"capstone" key of the grade JSONs just written, every skipped entry listed in it too.

Nothing in DIR is skipped silently: hidden entries, plain files, symlinks, folders without
katas and unreadable folders are listed with their reason on the console and in the CSV.
Folder names may be any bytes (names that are not valid UTF-8 included): the CSV and the
console show them with undecodable bytes as \\xNN escapes.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

from grading import curriculum as _curriculum
from grading import grade as _grade
from grading import leaderboard, reports, runner

_MODULE_FOLDER = re.compile(r"^\d\d_")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
MAX_STEM = 80  # characters of the escaped name kept before the hash


@dataclass(frozen=True)
class Submission:
    name: str  # the folder name for people: undecodable bytes shown as \xNN
    raw: bytes  # the folder name's bytes on disk
    path: Path  # the folder itself
    katas: Path  # its katas folder (the folder itself for a bare katas folder)


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


def display_name(raw: bytes) -> str:
    """A folder name as text for people, CSV and JSON: invalid UTF-8 bytes become \\xNN."""
    return raw.decode("utf-8", errors="backslashreplace")


def _kind(path: Path) -> str | None:
    """Why an entry that is not a plain folder is skipped, or None for a folder."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as err:
        return f"cannot be inspected ({err.strerror or err})"
    if stat.S_ISLNK(mode):
        return "a symlink (not followed: a submission must be a real folder inside DIR)"
    if stat.S_ISREG(mode):
        hint = " (unpack archives into a folder first)" if path.suffix.lower() in (".zip", ".tar", ".gz", ".tgz") else ""
        return f"a file, not a folder{hint}"
    if not stat.S_ISDIR(mode):
        return "not a folder (device, pipe or socket)"
    return None


def scan(folder: Path) -> tuple[list[Submission], list[Skipped]]:
    """Every entry of `folder`: the submissions to grade, and the entries skipped with why."""
    found: list[Submission] = []
    skipped: list[Skipped] = []
    raw_root = os.fsencode(folder)
    for raw in sorted(os.listdir(raw_root)):
        name = display_name(raw)
        path = Path(os.fsdecode(os.path.join(raw_root, raw)))
        if raw.startswith(b"."):
            skipped.append(Skipped(name, "hidden (the name starts with '.'): rename it to grade it"))
            continue
        why = _kind(path)
        if why:
            skipped.append(Skipped(name, why))
            continue
        katas = path / "katas"
        try:
            if os.path.islink(katas):
                skipped.append(Skipped(name, "its katas/ is a symlink (not followed)"))
            elif katas.is_dir():
                found.append(Submission(name, raw, path, katas))
            elif any(_MODULE_FOLDER.match(p.name) and p.is_dir() and not p.is_symlink() for p in path.iterdir()):
                found.append(Submission(name, raw, path, path))  # a bare katas folder
            else:
                skipped.append(Skipped(name, "no katas/ folder and no NN_slug module folders inside"))
        except OSError as err:
            skipped.append(Skipped(name, f"cannot be read ({err.strerror or err})"))
    return found, skipped


def find_submissions(folder: Path) -> dict[str, Path]:
    """{display name: its katas folder} for every subdirectory that looks like a checkout."""
    return {s.name: s.katas for s in scan(folder)[0]}


def _hash(raw: bytes, length: int = 10) -> str:
    return hashlib.sha256(raw).hexdigest()[:length]


def output_names(raws: list[bytes]) -> dict[bytes, str]:
    """A unique, filesystem-safe output stem for every raw folder name.

    The stem is the name with every character outside [A-Za-z0-9_.-] replaced by "_". When
    that is lossy (the name had other characters, or was longer than MAX_STEM) or when two
    lossless stems are equal ignoring case (case-insensitive file systems), a short hash of
    the raw name's bytes is appended: `a b` -> `a_b-<hash>`, while `a_b` stays `a_b`. Stems
    are unique ignoring case; a stem depends only on its own name unless names collide.
    """
    escaped = {}
    for raw in raws:
        text = display_name(raw)
        safe = _UNSAFE.sub("_", text)[:MAX_STEM]
        escaped[raw] = (safe, safe == text and raw == text.encode())
    folded: dict[str, int] = {}  # lossless stems equal ignoring case ('Alice', 'alice')
    for safe, lossless in escaped.values():
        if lossless:
            folded[safe.lower()] = folded.get(safe.lower(), 0) + 1
    stems = {raw: safe if lossless and folded[safe.lower()] == 1 else f"{safe}-{_hash(raw)}"
             for raw, (safe, lossless) in escaped.items()}
    # A literal folder name can equal another's hashed stem; lengthen the hash until unique.
    length = 10
    while len({s.lower() for s in stems.values()}) < len(stems):
        length += 6
        counts: dict[str, int] = {}
        for s in stems.values():
            counts[s.lower()] = counts.get(s.lower(), 0) + 1
        stems = {raw: (f"{escaped[raw][0]}-{_hash(raw, length)}" if counts[s.lower()] > 1 else s)
                 for raw, s in stems.items()}
    return stems


def summary_columns(options: _grade.GradeOptions) -> tuple[list[str], list[str]]:
    """The module keys and milestone slugs the CSV has columns for (known before grading)."""
    cur = _curriculum.load()
    modules = [m.key for m in cur.modules if m.is_available() and (not options.modules or m.number in options.modules)]
    milestones = [s.slug for s in cur.milestones if s.is_available()] if options.milestones else []
    return modules, milestones


def grade_many(submissions: Path, out_dir: Path, options: _grade.GradeOptions, jobs: int = 2, console=None,
               grade_one=None) -> dict:
    """Grade every submission in `submissions`; returns counts, the CSV path, errors and skips.

    `results` and `errors` are keyed by output name (unique); each result's "submission_name"
    is its folder name for people, `names` maps folder names to output names.

    `grade_one(katas, options)` defaults to grading.grade.grade_submission (tests replace it).
    """
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    grade_one = grade_one or _grade.grade_submission
    found, skipped = scan(submissions)
    stems = output_names([s.raw for s in found])
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "summary.csv"
    modules, milestones = summary_columns(options)
    summary = reports.ClassSummary(csv_path, modules, milestones)
    for entry in skipped:
        summary.skip(entry.name, entry.reason)
    if console is not None:
        for entry in skipped:
            console.print(f"[yellow]skipped[/] {escape(entry.name)}: {escape(entry.reason)}")
    # Collect the expected checks once, before the workers start (they share the cache).
    cur = _curriculum.load()
    for module in cur.modules:
        if module.key in modules:
            try:
                runner.expected_checks(module.key, options.select)
            except RuntimeError:
                pass  # reported per submission as an error for that module
    results: dict[str, dict] = {}
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    hide = [*options.hide, str(Path(submissions).resolve()), str(Path(out_dir).resolve())]

    def work(sub: Submission) -> dict:
        stem = stems[sub.raw]
        opts = replace(options, out_dir=(options.out_dir or out_dir / "milestones") / stem, hide=hide)
        if stop.is_set():
            return {}  # the batch is going down: start nothing new
        try:
            result = grade_one(sub.katas, opts)
        except Exception as err:  # never lose the batch to one submission
            result = {"submission": str(sub.katas), "error": f"{type(err).__name__}: {err}",
                      "traceback": traceback.format_exc()[-4000:], "score": 0, "max_score": 0}
        except BaseException:  # Ctrl-C, SystemExit: stop the batch, keep what is finished
            stop.set()
            raise
        result["submission_name"] = sub.name
        result["output_name"] = stem
        reports.write_json(result, out_dir / f"{stem}.json")
        if "modules" in result:
            reports.write_json(reports.gradescope(result), out_dir / f"{stem}.gradescope.json")
        with lock:
            summary.add(sub.name, stem, result)  # on disk before the next submission finishes
            results[stem] = result  # keyed by output name: two raw names can display alike
            if "error" in result:
                errors.append(stem)
        return result

    progress = Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}"), console=console, disable=console is None)
    with progress:
        task = progress.add_task("", total=len(found))
        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        try:
            futures = {pool.submit(work, sub): sub for sub in found}
            for future in as_completed(futures):
                sub = futures[future]
                result = future.result()
                progress.update(task, advance=1, description=escape(
                    f"{sub.name}: {result.get('score', 0):g}/{result.get('max_score', 0):g}"))
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)  # the running ones finish and keep their rows
            raise
        pool.shutdown(wait=True)
    summary.finish()
    board, board_error = None, None
    try:  # the capstone leaderboard, from the grade JSONs just written (grading/leaderboard.py)
        board = leaderboard.write_for_batch(out_dir, results, [(s.name, s.reason) for s in skipped])
    except Exception as err:  # every result is already on disk: report it, never lose the batch
        board_error = f"{type(err).__name__}: {err}"
    if console is not None:
        console.print(f"capstone leaderboard {escape(str(board['html']))}" if board else
                      f"[red]could not write the capstone leaderboard[/]: {escape(board_error)}")
    return {"count": len(results), "csv": csv_path, "errors": errors, "results": results,
            "skipped": [(s.name, s.reason) for s in skipped], "names": {s.name: stems[s.raw] for s in found},
            "leaderboard": board, "leaderboard_error": board_error}
