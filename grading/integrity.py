"""Integrity: everything that keeps a submission from deciding its own grade, in one place.

The guarantee, for `kata grade` (grading/grade.py opens one `Guard` per submission and asks
it everything below; nothing else in the grader makes a trust decision):

1. Separate trust domains. Every verdict (each check's pass/fail, each threshold ratio,
   each milestone metric) is computed in a *trusted* process in which no learner code runs:
   there `tinytorch` is a proxy package (grading/remote.py) and the learner's code runs in
   a *worker* (grading/worker.py) reached over two pipes that carry plain data only
   (grading/wire.py). `worker_command` starts that worker in the strongest sandbox the
   machine offers:
     * "namespace" (bubblewrap present and working: Linux with user namespaces, or root):
       only the system folders, this Python with its packages and the course tree exist, all
       read-only; in the course tree reference/, .kata/, .git/, and any `hide` path are
       replaced by empty folders; PyTorch's package
       folders replaced by one whose import fails; a private /tmp; one writable scratch
       folder; no network; its own PID namespace, so every process it starts dies with it.
     * "process" (no bubblewrap, e.g. a learner's laptop or a locked-down container): the
       same split and plain-data wire, rlimits, and the trusted process as a subreaper that
       kills every escaped descendant; but the worker runs as the same user, so it could
       read or write what that user can. docs/GRADING.md says where each applies.
2. Files. Each kata file must be a regular file inside the submission (`file_problems`);
   the worker sees a private copy of the submission's regular files, never the original;
   the course tree (checks/, reference/, grading/, milestones/, every conftest.py) is hashed
   before and after each module (`course_changes`) and any change aborts the grading run.
   The expected-check lists are collected by the grader on the reference; they are cached
   on disk (.kata/collected) only where the worker cannot write there (namespace level).
3. Processes: see 1 (PID namespace, or subreaper + kill of every descendant).
4. Tripwires for course staff (`static_check`): imports and calls outside the kata policy
   (rejections), and flags for a kata whose code matches the reference's, for non-literal
   getattr/__import__/importlib access and for tinytorch names that are not curriculum
   modules (warnings, shown in the report).
5. Text the learner controls (exception messages, printed output) reaches feedback only
   length-limited and with any line of a course file removed (`scrub`).
"""

from __future__ import annotations

import ast
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

def _parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """ast.parse under the grader's one lock (see grading.stubs.parse_source: not thread-safe)."""
    from grading import stubs as _stubs

    return _stubs.parse_source(source, filename)


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
        regular = path.is_file() and not path.is_symlink() and not (katas_dir / module.key).is_symlink()
        out[f"{module.key}/{name}"] = sha256_file(path) if regular else None
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
        tree = _parse(source, filename)
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
    """Scan one module's kata files: policy rejections, then tripwire flags (missing files are skipped)."""
    from grading import curriculum as _curriculum
    from grading import stubs as _stubs

    cur = _curriculum.load()
    exports = {export for m in cur.modules for export in m.exports}
    report = StaticReport()
    for name in module.files:
        path = katas_dir / module.key / name
        if not path.is_file() or path.is_symlink():
            continue
        source = path.read_text(encoding="utf-8", errors="replace")
        rel = f"katas/{module.key}/{name}"
        report.findings += static_check_source(source, rel)
        report.findings += tripwires(source, rel, exports)
        reference = module.reference_dir() / name
        if reference.is_file():
            ref_source = reference.read_text(encoding="utf-8", errors="replace")
            given = _given_functions(ref_source, _stubs.make_stub(ref_source, f"reference/{module.key}/{name}"))
            copied = [f for f in reference_matches(source, ref_source) if f not in given]
            if copied:
                report.findings.append(Finding(rel, 0, "flag: code identical to the reference solution in "
                                               + ", ".join(copied[:8]) + ("..." if len(copied) > 8 else ""), "warn"))
    return report


# -- the worker's sandbox -----------------------------------------------------------------------------

import json as _json
import os as _os
import shutil as _shutil
import subprocess as _subprocess
import tempfile as _tempfile

_BLOCKED_PACKAGES = ("torch", "functorch", "torchgen")
_NAMESPACE_OK: bool | None = None


def namespaces_available() -> bool:
    """Whether bubblewrap can build a namespace sandbox here (cached per process)."""
    global _NAMESPACE_OK
    if _NAMESPACE_OK is None:
        bwrap = _shutil.which("bwrap")
        if bwrap is None or _os.environ.get("KATA_ISOLATION") == "process":
            _NAMESPACE_OK = False
        else:
            try:
                probe = _subprocess.run([bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
                                         "--proc", "/proc", "--dev", "/dev", "true"],
                                        capture_output=True, timeout=20)
                _NAMESPACE_OK = probe.returncode == 0
            except (OSError, _subprocess.SubprocessError):
                _NAMESPACE_OK = False
    return _NAMESPACE_OK


def _torch_blocker() -> Path:
    """A package folder whose import fails with a plain reason; mounted over torch's in the sandbox."""
    folder = Path(_tempfile.gettempdir()) / f"kata-torch-blocker-{_os.getuid()}"
    init = folder / "__init__.py"
    text = 'raise ImportError("PyTorch is not available to learner code: tinytorch is built on numpy")\n'
    if not init.is_file() or init.read_text() != text:
        folder.mkdir(mode=0o755, exist_ok=True)
        init.write_text(text)
    return folder


def _package_dirs(names) -> list[Path]:
    import importlib.util as _util

    found = []
    for name in names:
        try:
            spec = _util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            found += [Path(p) for p in spec.submodule_search_locations]
    return found


_SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")


def _visible_folders(root: Path) -> list[str]:
    """What the namespace sandbox shows, read-only: the system, this Python and its packages, the
    course tree. Nothing else (other checkouts, home folders, data, other submissions) exists there."""
    wanted = [f for f in _SYSTEM_FOLDERS if _os.path.lexists(f)]
    prefixes = {_os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    packages = [p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p)]
    for entry in (*prefixes, *packages, str(root)):  # never the working folder or other sys.path entries
        if _os.path.isdir(entry) and _os.path.realpath(entry) != "/":
            wanted.append(_os.path.realpath(entry))
    kept: list[str] = []
    for folder in sorted(set(wanted), key=len):  # parents first; nested entries are already visible
        if not any(folder == k or folder.startswith(k.rstrip("/") + "/") for k in kept if not _os.path.islink(k)):
            kept.append(folder)
    return kept


def worker_command(config: dict) -> tuple[list[str], dict[str, str], str]:
    """(argv, env, cwd) that start the learner's worker with the strongest isolation available.

    config: katas (the private copy, or None), impl (TINYTORCH_IMPL), lent (module keys
    whose reference is visible), scratch (the one writable folder), hide (extra paths),
    memory (bytes for RLIMIT_AS), isolation ("auto" | "process").
    """
    from grading import curriculum as _curriculum

    root = _curriculum.PROJECT_ROOT
    scratch = Path(config.get("scratch") or _tempfile.mkdtemp(prefix="kata-scratch-"))
    env = {
        "PATH": _os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(scratch), "LANG": "C.UTF-8",
        "TINYTORCH_IMPL": config.get("impl") or "katas", "PYTHONPATH": str(root),
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg",
        "KATA_WORKER_SIDE": "1",
    }
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = _os.environ.get(key, "1")
    if config.get("katas"):
        env["TINYTORCH_KATAS"] = str(config["katas"])
    python = [sys.executable, "-m", "grading.worker", "{READ_FD}", "{WRITE_FD}"]
    if config.get("isolation", "auto") == "process" or not namespaces_available():
        return python, env, str(scratch)
    # A private /tmp first, so that what is bound next stays visible even if it lives under /tmp.
    bwrap = [_shutil.which("bwrap"), "--die-with-parent", "--unshare-all", "--new-session", "--tmpfs", "/tmp"]
    for folder in _visible_folders(root):
        if _os.path.islink(folder):
            bwrap += ["--symlink", _os.readlink(folder), folder]
        else:
            bwrap += ["--ro-bind", folder, folder]
    bwrap += ["--proc", "/proc", "--dev", "/dev"]
    hidden = [root / "reference", root / ".kata", root / ".git", *[Path(p) for p in config.get("hide", [])]]
    for path in hidden:
        if path.is_dir():
            bwrap += ["--tmpfs", str(path)]
        elif path.exists():
            bwrap += ["--ro-bind", "/dev/null", str(path)]
    for key in config.get("lent", []):
        folder = root / "reference" / key
        if folder.is_dir():
            bwrap += ["--ro-bind", str(folder), str(folder)]
    blocker = _torch_blocker()
    for folder in _package_dirs(_BLOCKED_PACKAGES):
        bwrap += ["--ro-bind", str(blocker), str(folder)]
    if config.get("katas"):
        bwrap += ["--ro-bind", str(config["katas"]), str(config["katas"])]
    bwrap += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch)]
    return bwrap + ["--"] + python, env, str(scratch)


# -- files --------------------------------------------------------------------------------------------


def file_problems(katas_dir: Path, module) -> list[str]:
    """Why a module's kata files cannot be graded as they are (empty: fine, or simply missing)."""
    problems = []
    root = katas_dir.resolve()
    for name in module.files:
        path = katas_dir / module.key / name
        rel = f"katas/{module.key}/{name}"
        if path.is_symlink():
            problems.append(f"{rel} is a symbolic link: a kata must be a regular file you wrote")
        elif path.exists() and not path.is_file():
            problems.append(f"{rel} is not a regular file (a folder, device or pipe)")
        elif path.exists():
            try:
                path.resolve().relative_to(root)
            except ValueError:
                problems.append(f"{rel} lies outside the submission")
    folder = katas_dir / module.key
    if folder.is_symlink():
        problems.append(f"katas/{module.key} is a symbolic link: the module folder must be a real folder")
    return problems


def private_copy(katas_dir: Path, destination: Path) -> None:
    """Copy the submission's regular files (no links, devices or special files) into `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    source = katas_dir.resolve()
    for folder, dirs, files in _os.walk(source, followlinks=False):
        rel = Path(folder).relative_to(source)
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink() and d != "__pycache__"]
        (destination / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            if path.stat().st_size > 16 * 1024 * 1024:
                continue  # no kata is 16 MiB; big blobs are not code
            _shutil.copyfile(path, destination / rel / name, follow_symlinks=False)


COURSE_TREE = ("checks", "reference", "grading", "milestones")


def course_snapshot(root: Path | None = None) -> dict[str, str]:
    """Hashes of every course file a verdict depends on, and of every conftest.py under the root."""
    from grading import curriculum as _curriculum

    root = root or _curriculum.PROJECT_ROOT
    out: dict[str, str] = {}
    for top in COURSE_TREE:
        for rel, digest in snapshot(root / top).items():
            if "/__pycache__/" in f"/{rel}" or rel.endswith(".pyc"):
                continue
            out[f"{top}/{rel}"] = digest
    for extra in ("conftest.py", "pyproject.toml"):
        if (root / extra).is_file():
            out[extra] = sha256_file(root / extra)
    for found in root.rglob("conftest.py"):
        if ".git" in found.parts or not found.is_file():
            continue
        out.setdefault(found.relative_to(root).as_posix(), sha256_file(found))
    return out


def course_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return changed(before, after)


# -- tripwires ----------------------------------------------------------------------------------------


def _normalized_functions(source: str) -> dict[str, str]:
    """{qualified function name: AST dump without docstrings} for functions of >= 3 statements."""
    try:
        tree = _parse(source)
    except SyntaxError:
        return {}
    out: dict[str, str] = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = list(child.body)
                if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                    body = body[1:]
                if len(body) >= 3 or sum(1 for _ in ast.walk(ast.Module(body=body, type_ignores=[]))) > 40:
                    out[prefix + child.name] = ast.dump(ast.Module(body=body, type_ignores=[]), annotate_fields=False)
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return out


def reference_matches(kata_source: str, reference_source: str) -> list[str]:
    """Functions whose normalized code equals the reference's (given helpers excluded by the caller)."""
    ours, theirs = _normalized_functions(kata_source), _normalized_functions(reference_source)
    return sorted(name for name, dump in ours.items() if theirs.get(name) == dump)


def _given_functions(reference_source: str, stub_source: str) -> set[str]:
    """Functions the stub already contains in full (given helpers): equal in stub and reference."""
    ref, stub = _normalized_functions(reference_source), _normalized_functions(stub_source)
    return {name for name, dump in ref.items() if stub.get(name) == dump}


def tripwires(source: str, filename: str, curriculum_exports: set[str]) -> list[Finding]:
    """Flags for course staff: indirect attribute/import access and non-curriculum tinytorch names."""
    findings: list[Finding] = []
    try:
        tree = _parse(source, filename)
    except SyntaxError:
        return findings
    allowed = curriculum_exports | {"datasets"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            first = node.args[0] if node.args else None
            second = node.args[1] if len(node.args) > 1 else None
            if name in ("getattr", "setattr", "delattr", "hasattr") and second is not None \
                    and not isinstance(second, ast.Constant):
                findings.append(Finding(filename, node.lineno, f"flag: {name}() with a computed attribute name",
                                        "warn"))
            if name and (name == "__import__" or name.endswith((".import_module", ".__import__"))) \
                    and first is not None and not isinstance(first, ast.Constant):
                findings.append(Finding(filename, node.lineno, f"flag: {name}() with a computed module name",
                                        "warn"))
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tinytorch":
                names += [f"tinytorch.{alias.name}" for alias in node.names]
            else:
                names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted and dotted.startswith("tinytorch."):
                names.append(dotted)
        for full in names:
            parts = full.split(".")
            if parts[0] == "tinytorch" and len(parts) > 1 and parts[1] not in allowed:
                findings.append(Finding(filename, getattr(node, "lineno", 0),
                                        f"flag: uses {'.'.join(parts[:2])}, which is not a curriculum module", "warn"))
    return findings


# -- text the learner controls ------------------------------------------------------------------------

_COURSE_LINES: set[str] | None = None


def _course_lines() -> set[str]:
    global _COURSE_LINES
    if _COURSE_LINES is None:
        from grading import curriculum as _curriculum

        lines: set[str] = set()
        for path in (_curriculum.PROJECT_ROOT / "reference").rglob("*.py"):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                line = line.strip()
                if len(line) >= 24 and not line.startswith(("#", '"""', "def ", "class ", "import ", "from ")):
                    lines.add(line)
        _COURSE_LINES = lines
    return _COURSE_LINES


def scrub(text: str, limit: int = 4000) -> str:
    """Learner-controlled text for feedback: length-limited, with lines of reference files removed."""
    if not text:
        return text
    course = _course_lines()
    out = []
    for line in text[:limit * 4].splitlines():
        stripped = line.strip()
        stripped = (stripped[2:] if stripped.startswith("E ") else stripped).strip().strip("'\"")
        if len(stripped) >= 24 and stripped in course:
            out.append("[a line of a course file was removed here]")
        else:
            out.append(line)
    text = "\n".join(out)
    return text if len(text) <= limit else text[: limit - 20] + " [... truncated]"


# -- one submission, start to finish ------------------------------------------------------------------


class Guard:
    """The guarantee above for one submission: open it, ask it, close it.

        with Guard(katas_dir, data_dir=...) as guard:
            guard.file_problems(module)          # reject links, folders, files outside
            guard.static_check(module)           # policy rejections and tripwire flags
            config = guard.worker_config(impl)   # where and how the learner's worker runs
            ...                                  # run the trusted process (grading/runner.py)
            guard.course_changes()               # non-empty: abort the grading run
    """

    def __init__(self, katas_dir: Path, *, data_dir: Path | None = None, hide: tuple = (),
                 tamper_check: bool = True, isolation: str | None = None):
        self.katas_dir = Path(katas_dir)
        self.data_dir = data_dir
        self.hide = [str(h) for h in hide]
        self.tamper_check = tamper_check
        self.isolation = isolation or _os.environ.get("KATA_ISOLATION", "auto")
        self.workdir: Path | None = None

    def __enter__(self) -> "Guard":
        self.learner_before = snapshot(self.katas_dir)
        self.workdir = Path(_tempfile.mkdtemp(prefix="kata-grade-"))
        self.copy = self.workdir / "katas"
        private_copy(self.katas_dir, self.copy)
        self.course_before = course_snapshot() if self.tamper_check else None
        return self

    def __exit__(self, *exc) -> None:
        self.learner_after = snapshot(self.katas_dir)
        if self.workdir is not None:
            _shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def level(self) -> str:
        """"namespace" or "process": what `worker_command` will enforce on this machine."""
        return "process" if self.isolation == "process" or not namespaces_available() else "namespace"

    def file_problems(self, module) -> list[str]:
        return file_problems(self.katas_dir, module)

    def static_check(self, module) -> StaticReport:
        return static_check(self.katas_dir, module)

    def worker_config(self, impl: str, memory: int | None = None) -> dict:
        """The learner's worker for one trusted process: this submission's private copy, `impl`'s lending."""
        from grading import assembly as _assembly
        from grading import curriculum as _curriculum

        spec = _assembly.parse_impl(impl)
        lent = [m.key for m in _curriculum.load().modules if spec.for_module(m.number) == "reference"]
        scratch = Path(_tempfile.mkdtemp(prefix="scratch-", dir=self.workdir))
        hide = [str(self.katas_dir.resolve()), *self.hide]
        if self.data_dir is not None:
            hide.append(str(Path(self.data_dir).resolve()))
        if _os.environ.get("TINYTORCH_DATA"):
            hide.append(str(Path(_os.environ["TINYTORCH_DATA"]).resolve()))
        return {"katas": str(self.copy), "impl": spec.render(), "lent": lent, "scratch": str(scratch),
                "hide": hide, "isolation": self.isolation, "memory": memory}

    def course_changes(self) -> list[str]:
        if self.course_before is None:
            return []
        return course_changes(self.course_before, course_snapshot())

    def learner_changes(self) -> list[str]:
        return changed(self.learner_before, getattr(self, "learner_after", None) or snapshot(self.katas_dir))
