"""`kata hint NN`: a hint for what fails now (`--all`: every hint for every failing check).

Convention (katas/NN_slug/README.md, written by the course)::

    ## Hints

    - `test_python_data_becomes_float32`: first hint for this check ...
      (continuation lines are indented)
    - `test_python_data_becomes_float32`: a second, more revealing hint ...
    - A bullet without a check name is a general hint for the module.

Bullets keyed by a check's function name (without parameters) are that check's hints, in
order, followed by the check's docstring and the general bullets. The hint is chosen from
which checks fail, never from a counter: `kata hint` shows the first hint for the first
failing check, `kata hint --all` every hint for every failing check. Without any written
hint, the fallback depends on whether the kata still reaches a `raise NotImplementedError`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from grading import curriculum as _curriculum
from grading import stubs as _stubs

_BULLET = re.compile(r"^[-*]\s+(?:`(?P<key>test_\w+)`\s*:\s*)?(?P<text>.*)$")


def parse_hints(readme_text: str) -> tuple[dict[str, list[str]], list[str]]:
    """({check function name: [hints in order]}, [general hints]) from a '## Hints' section."""
    keyed: dict[str, list[str]] = {}
    general: list[str] = []
    section = re.search(r"^##\s+Hints\s*$(?P<body>.*?)(?=^##\s|\Z)", readme_text, re.M | re.S)
    if not section:
        return keyed, general
    current: list[str] | None = None
    bullets: list[tuple[str | None, list[str]]] = []
    for line in section["body"].splitlines():
        match = _BULLET.match(line)
        if match:
            current = [match["text"].strip()]
            bullets.append((match["key"], current))
        elif current is not None and line.startswith((" ", "\t")) and line.strip():
            current.append(line.strip())
        elif not line.strip():
            current = None
    for key, lines in bullets:
        text = " ".join(lines)
        if key:
            keyed.setdefault(key, []).append(text)
        else:
            general.append(text)
    return keyed, general


def function_name(check_id: str) -> str:
    """'test_tensor.py::test_division[a-b]' -> 'test_division'."""
    return check_id.split("::")[-1].split("[")[0]


def check_docstring(module: _curriculum.Module, check_id: str) -> str | None:
    name = function_name(check_id)
    for path in sorted(module.checks_dir().glob("test_*.py")):
        try:
            tree = _stubs.parse_source(path.read_text(encoding="utf-8"), str(path))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                doc = ast.get_docstring(node)
                if doc:
                    return " ".join(doc.split())
    return None


def candidates(module: _curriculum.Module, check_id: str, katas_dir: Path) -> list[tuple[str, str]]:
    """Every hint for this check, in the README's order: [(text, source)]."""
    readme = katas_dir / module.key / "README.md"
    if not readme.is_file():
        readme = _curriculum.PROJECT_ROOT / "katas" / module.key / "README.md"
    keyed, general = parse_hints(readme.read_text(encoding="utf-8")) if readme.is_file() else ({}, [])
    found = [(h, "README") for h in keyed.get(function_name(check_id), [])]
    doc = check_docstring(module, check_id)
    if doc:
        found.append((doc, "the check's docstring"))
    found += [(h, "README (general)") for h in general]
    return found


def still_todo(module: _curriculum.Module, katas_dir: Path) -> bool:
    """Does the kata still `raise NotImplementedError` somewhere (a TODO left)?"""
    for rel in module.files:
        try:
            text = (katas_dir / module.key / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if re.search(r"^\s*raise\s+NotImplementedError\b", text, re.M):
            return True
    return False


def fallback(module: _curriculum.Module, check_id: str, katas_dir: Path, message: str | None = None) -> str:
    """What to do when the course wrote no hint: depends on whether this check still reaches a TODO."""
    name = function_name(check_id)
    todo = message.startswith("not implemented") if message else still_todo(module, katas_dir)
    if todo:
        return ("No written hint for this check yet: read the TODO comments above the "
                f"`raise NotImplementedError` it reaches, and the check's source in checks/{module.key}/.")
    return (f"No written hint for this check yet. Your code runs here (no TODO left on this path), so the "
            f"check fails on what it computes: `kata check {module.number:02d} -k {name} -v` shows the "
            f"comparison and the traceback; the check's source is in checks/{module.key}/.")


@dataclass
class Hint:
    check: str  # the failing check's function name
    text: str
    source: str  # README | the check's docstring | README (general) | fallback
    index: int  # 1-based position among this check's hints (0: fallback)
    count: int  # hints written for this check


def choose(module: _curriculum.Module, failing: list[str], katas_dir: Path, *, show_all: bool = False,
           messages: dict[str, str] | None = None) -> list[Hint]:
    """The hints for what fails now - no state kept between runs.

    Default: the first hint for the first failing check (checks in the course's order).
    `show_all`: every hint for every failing check function, in order.
    """
    messages = messages or {}
    out: list[Hint] = []
    seen: set[str] = set()
    for check_id in failing:
        name = function_name(check_id)
        if name in seen:
            continue
        seen.add(name)
        found = candidates(module, check_id, katas_dir)
        if not found:
            out.append(Hint(name, fallback(module, check_id, katas_dir, messages.get(check_id)), "fallback", 0, 0))
        else:
            chosen = found if show_all else found[:1]
            out += [Hint(name, text, source, i + 1, len(found)) for i, (text, source) in enumerate(chosen)]
        if not show_all:
            break
    return out
