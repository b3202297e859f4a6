"""Batch grading for course staff: `kata grade --submissions DIR --jobs N --out OUT`.

DIR holds one learner checkout per subdirectory, each with a katas/ folder (a bare katas
folder - NN_slug subfolders directly inside - is accepted too). Up to N submissions are
graded at once; each one's checks, thresholds and milestones run in their own sandboxed
child processes (grading/sandbox.py), so the workers here only orchestrate and wait.
Results: OUT/<name>.json per submission (the same JSON as `kata grade --json`),
OUT/<name>.gradescope.json, and OUT/summary.csv (scores per module, milestone pass rates,
median seconds per module). A submission the grader could not grade at all gets a JSON with
an "error" field and a row in the CSV; it never stops the batch.
"""

from __future__ import annotations

import re
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from grading import curriculum as _curriculum
from grading import grade as _grade
from grading import reports, runner


def find_submissions(folder: Path) -> dict[str, Path]:
    """{submission name: its katas folder} for every subdirectory that looks like a checkout."""
    out: dict[str, Path] = {}
    for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (child / "katas").is_dir():
            out[child.name] = child / "katas"
        elif any(re.match(r"^\d\d_", p.name) for p in child.iterdir() if p.is_dir()):
            out[child.name] = child
    return out


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def grade_many(submissions: Path, out_dir: Path, options: _grade.GradeOptions, jobs: int = 2, console=None) -> dict:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    found = find_submissions(submissions)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Collect the expected checks once, before the workers start (they share the cache).
    cur = _curriculum.load()
    for module in cur.modules:
        if module.is_available() and (not options.modules or module.number in options.modules):
            try:
                runner.expected_checks(module.key, options.select)
            except RuntimeError:
                pass  # reported per submission as an error for that module
    results: dict[str, dict] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def work(name: str, katas: Path) -> dict:
        opts = replace(options, out_dir=(options.out_dir or out_dir / "milestones") / _safe_name(name))
        try:
            result = _grade.grade_submission(katas, opts)
        except Exception as err:  # never lose the batch to one submission
            result = {"submission": str(katas), "error": f"{type(err).__name__}: {err}",
                      "traceback": traceback.format_exc()[-4000:], "score": 0, "max_score": 0}
        reports.write_json(result, out_dir / f"{_safe_name(name)}.json")
        if "modules" in result:
            reports.write_json(reports.gradescope(result), out_dir / f"{_safe_name(name)}.gradescope.json")
        return result

    progress = Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}"), console=console, disable=console is None)
    with progress:
        task = progress.add_task("", total=len(found))
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(work, name, katas): name for name, katas in found.items()}
            for future in as_completed(futures):
                name = futures[future]
                result = future.result()
                with lock:
                    results[name] = result
                    if "error" in result:
                        errors.append(name)
                progress.update(task, advance=1, description=f"{name}: {result.get('score', 0):g}/"
                                                             f"{result.get('max_score', 0):g}")
    csv_path = out_dir / "summary.csv"
    reports.class_summary_csv(results, csv_path)
    return {"count": len(results), "csv": csv_path, "errors": errors, "results": results}
