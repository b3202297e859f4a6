"""`kata hint NN`: the next hint for the first failing check.

Convention (katas/NN_slug/README.md, written by the course)::

    ## Hints

    - `test_python_data_becomes_float32`: first hint for this check ...
      (continuation lines are indented)
    - `test_python_data_becomes_float32`: a second, more revealing hint ...
    - A bullet without a check name is a general hint for the module.

Bullets keyed by a check's function name (without parameters) are given one at a time,
in order: each `kata hint` shows the next one for the first failing check (progress is
kept in .kata/hints.json). When the README has none left for that check, the check's
docstring and then the general bullets are used.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from grading import curriculum as _curriculum
from grading import state

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
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                doc = ast.get_docstring(node)
                if doc:
                    return " ".join(doc.split())
    return None


def _progress_path() -> Path:
    return state.cache_dir() / "hints.json"


def next_hint(module: _curriculum.Module, check_id: str, katas_dir: Path, advance: bool = True) -> tuple[str, str, int, int]:
    """(hint text, source, index shown (1-based), hints available) for the failing check."""
    readme = katas_dir / module.key / "README.md"
    if not readme.is_file():
        readme = _curriculum.PROJECT_ROOT / "katas" / module.key / "README.md"
    keyed, general = parse_hints(readme.read_text(encoding="utf-8")) if readme.is_file() else ({}, [])
    candidates = [(h, "README") for h in keyed.get(function_name(check_id), [])]
    doc = check_docstring(module, check_id)
    if doc:
        candidates.append((doc, "the check's docstring"))
    candidates += [(h, "README (general)") for h in general]
    if not candidates:
        return ("No written hint for this check yet: read the TODO comments above the "
                "`raise NotImplementedError` it reaches, and the check's source in "
                f"checks/{module.key}/.", "fallback", 0, 0)
    try:
        progress = json.loads(_progress_path().read_text())
    except (OSError, ValueError):
        progress = {}
    key = f"{module.key}::{function_name(check_id)}"
    index = min(progress.get(key, 0), len(candidates) - 1)
    if advance:
        progress[key] = index + 1
        try:
            _progress_path().parent.mkdir(parents=True, exist_ok=True)
            _progress_path().write_text(json.dumps(progress, indent=2))
        except OSError:
            pass
    text, source = candidates[index]
    return text, source, index + 1, len(candidates)
