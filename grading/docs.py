"""The README's curriculum tables, rendered from the manifest (never written by hand).

    python -m grading.docs          # rewrite the tables in README.md
    python -m grading.docs --check  # exit 1 if README.md is out of date (CI and a test run this)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from grading import curriculum

README = curriculum.PROJECT_ROOT / "README.md"
BEGIN, END = "<!-- curriculum-table:begin -->", "<!-- curriculum-table:end -->"


def render(cur: curriculum.Curriculum | None = None, root: Path = curriculum.PROJECT_ROOT) -> str:
    cur = cur or curriculum.load()
    lines = [
        "| # | module | tier | you write | points | status |",
        "|---|---|---|---|---|---|",
    ]
    for m in cur.modules:
        files = ", ".join(f"`katas/{m.key}/{f}`" for f in m.files)
        status = "available" if m.is_available(root) else "not yet available"
        lines.append(f"| {m.number:02d} | {m.title} | {cur.tiers[m.tier]} | {files} | {m.points:g} | {status} |")
    lines += [
        "",
        "| year | milestone | `kata milestone` | needs modules | target | points | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in cur.milestones:
        needs = ", ".join(f"{n:02d}" for n in s.requires)
        status = "available" if s.is_available(root) else "not yet available"
        lines.append(
            f"| {s.year} | {s.title} | `{s.slug}` | {needs} | {s.target_text(unicode=True)} | {s.points:g} | {status} |"
        )
    return "\n".join(lines)


def updated(text: str, table: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block")
    return pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.docs")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = updated(text, render())
    if args.check:
        if new != text:
            print("README.md curriculum tables are out of date: run `python -m grading.docs`", file=sys.stderr)
            return 1
        print("README.md tables match the curriculum")
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
