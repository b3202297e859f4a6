"""Integrity of a graded submission: file hashes, snapshots and a static policy check.

* `sha256_file` / `kata_hashes`: every graded kata file is named in the report by its sha256.
* `snapshot` / `changed`: the grader proves it modified nothing (hash every file of the
  learner's katas folder before and after) and notices when something else did (a kata
  writing into its own folder, or into the course's checks/reference/grading code).
* `static_check`: an `ast` scan of kata code. A kata may import only numpy, the standard
  library and tinytorch. Findings are either *rejections* (the module scores 0 and is not
  run) or *warnings* (reported for course staff, no penalty).

Honest limits of the static check: it sees only what is literally written. A kata can
still reach anything through `getattr(os, "sys" + "tem")`, `eval` of a built string, or
code hidden in data; that is why the sandbox (grading/sandbox.py) isolates the process and
the grader never trusts anything the kata could write. The static check is a tripwire for
the obvious cases (a copied `import torch`, a pasted `os.system`), not a security boundary.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

ALLOWED_TOP_LEVEL = {"numpy", "tinytorch", "__future__"} | set(sys.stdlib_module_names)

# Standard-library modules a kata has no business importing: escapes from the process
# or the interpreter. Importing one rejects the kata.
FORBIDDEN_STDLIB = {
    "subprocess", "ctypes", "_ctypes", "_posixsubprocess", "socket", "signal", "pty", "shutil",
    "runpy", "http", "urllib", "ftplib", "smtplib", "webbrowser",
}
# Calls that end, escape or replace the process: rejected.
FORBIDDEN_CALLS = {
    "os.system", "os.popen", "os._exit", "os.kill", "os.killpg", "os.fork", "os.forkpty",
    "os.abort", "os.remove", "os.unlink", "os.rmdir", "os.removedirs", "os.rename",
    "os.replace", "os.chmod", "os.chdir", "sys.exit", "exit", "quit",
    "os.execv", "os.execve", "os.execl", "os.execle", "os.execlp", "os.execlpe", "os.execvp",
    "os.execvpe", "os.spawnl", "os.spawnle", "os.spawnlp", "os.spawnlpe", "os.spawnv",
    "os.spawnve", "os.spawnvp", "os.spawnvpe", "os.posix_spawn", "os.posix_spawnp",
    "faulthandler._sigsegv", "faulthandler._sigabrt", "faulthandler._fatal_error",
}
# Worth a human look, not a penalty on their own.
SUSPICIOUS_CALLS = {
    "eval", "exec", "compile", "__import__", "importlib.import_module", "globals",
    "sys._getframe", "inspect.currentframe", "inspect.stack", "setattr", "open", "os.open",
    "os.environ.get", "os.getenv", "breakpoint", "input",
}
SUSPICIOUS_IMPORTS = {"multiprocessing", "concurrent", "threading", "importlib", "inspect", "builtins", "faulthandler"}
SUSPICIOUS_NAMES = {"sys.modules", "sys.argv", "os.environ", "__builtins__", "builtins", "sys.meta_path", "sys.path"}


@dataclass
class Finding:
    file: str
    line: int
    message: str
    severity: str  # "reject" or "warn"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class StaticReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def rejections(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "reject"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warn"]

    @property
    def rejected(self) -> bool:
        return bool(self.rejections)

    def reason(self) -> str:
        return "; ".join(str(f) for f in self.rejections)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def kata_hashes(katas_dir: Path, module) -> dict[str, str | None]:
    """{"01_tensor/tensor.py": sha256 or None if missing} for one module's kata files."""
    out: dict[str, str | None] = {}
    for name in module.files:
        path = katas_dir / module.key / name
        out[f"{module.key}/{name}"] = sha256_file(path) if path.is_file() else None
    return out


def snapshot(folder: Path, pattern: str = "**/*") -> dict[str, str]:
    """{relative path: sha256} of every regular file under `folder` (symlinks not followed)."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.glob(pattern)):
        if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
            out[path.relative_to(folder).as_posix()] = sha256_file(path)
    return out


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human-readable differences between two snapshots."""
    out = [f"{p}: modified" for p in before if p in after and before[p] != after[p]]
    out += [f"{p}: deleted" for p in before if p not in after]
    out += [f"{p}: created" for p in after if p not in before]
    return out


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _is_outside_path(text: str) -> bool:
    return text.startswith(("/", "~", "\\")) or ".." in Path(text).parts or (len(text) > 1 and text[1] == ":")


def static_check_source(source: str, filename: str) -> list[Finding]:
    findings: list[Finding] = []

    def add(node, message, severity):
        findings.append(Finding(filename, getattr(node, "lineno", 0), message, severity))

    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError:
        return findings  # a syntax error is reported by the check run with file and line
    aliases: dict[str, str] = {}  # local name -> module it stands for (import os as o)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.append(alias.name)
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                add(node, "relative import (katas import tinytorch.<module>, never each other's files)", "reject")
                continue
            names.append(node.module or "")
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for name in names:
            top = name.split(".")[0]
            if top not in ALLOWED_TOP_LEVEL:
                add(node, f"imports {name}: katas may import only numpy, the standard library and tinytorch", "reject")
            elif top in FORBIDDEN_STDLIB:
                add(node, f"imports {name}: not allowed in a kata (process/interpreter escape)", "reject")
            elif top in SUSPICIOUS_IMPORTS:
                add(node, f"imports {name}: allowed, flagged for review", "warn")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is None:
                continue
            head, _, rest = name.partition(".")
            full = f"{aliases[head]}.{rest}" if head in aliases and rest else aliases.get(name, name)
            if full in FORBIDDEN_CALLS or name in FORBIDDEN_CALLS:
                add(node, f"calls {name}(): not allowed in a kata", "reject")
                continue
            first = node.args[0] if node.args else None
            literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
            if full in ("__import__", "importlib.import_module") and literal is not None:
                top = literal.split(".")[0]
                if top not in ALLOWED_TOP_LEVEL or top in FORBIDDEN_STDLIB:
                    add(node, f"imports {literal} dynamically: not allowed in a kata", "reject")
                    continue
            if full in ("open", "os.open", "io.open", "pathlib.Path", "Path") and literal is not None:
                if _is_outside_path(literal):
                    add(node, f"{name}({literal!r}): opens a file outside the kata's folder", "reject")
                    continue
            if full in SUSPICIOUS_CALLS or name in SUSPICIOUS_CALLS:
                add(node, f"calls {name}(): allowed, flagged for review", "warn")
        elif isinstance(node, ast.Attribute):
            name = _dotted(node)
            if name in SUSPICIOUS_NAMES:
                add(node, f"uses {name}: flagged for review", "warn")
    # One finding per (line, message) is enough.
    unique = {(f.line, f.message): f for f in findings}
    return sorted(unique.values(), key=lambda f: (f.severity != "reject", f.line))


def static_check(katas_dir: Path, module) -> StaticReport:
    """Scan one module's kata files (missing files are not this check's business)."""
    report = StaticReport()
    for name in module.files:
        path = katas_dir / module.key / name
        if path.is_file():
            source = path.read_text(encoding="utf-8", errors="replace")
            report.findings += static_check_source(source, f"katas/{module.key}/{name}")
    return report
