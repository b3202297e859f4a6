"""Derive the learner's kata files from the reference: the one source of truth.

In reference/NN_slug/*.py every solution sits inside a marked region within a
function body::

    def relu(x):
        \"\"\"...\"\"\"
        # TODO: hints the learner keeps
        # BEGIN SOLUTION
        ...
        # END SOLUTION

The stub keeps everything else (signatures, type hints, docstrings, TODOs,
helpers that are given) and replaces each region by ``raise NotImplementedError``.

`katas/.stubs.lock.json` records the hash of every stub as generated, so that
regeneration can tell a pristine stub (safe to refresh) from a learner's work
(never overwritten unless forced).
"""

from __future__ import annotations

import ast
import threading
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from grading import curriculum as _curriculum

_AST_LOCK = threading.Lock()


def parse_source(source: str, filename: str = "<unknown>") -> ast.Module:
    """ast.parse, one thread at a time. Batch grading handles submissions in threads, and CPython
    3.11's AST constructor keeps its recursion depth in shared state: concurrent parses (made likely
    by a tracer such as coverage) fail with "SystemError: AST constructor recursion depth mismatch".
    Every parse the grader does goes through here (grading/integrity.py too)."""
    with _AST_LOCK:
        return ast.parse(source, filename=filename)

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION[ \t]*$")
END = re.compile(r"^[ \t]*# END SOLUTION[ \t]*$")
LOCK_NAME = ".stubs.lock.json"
HEADER = (
    "# KATA: replace every `raise NotImplementedError` below with your implementation.\n"
    "# Generated from {source} by `kata stubs`; your edits are never overwritten.\n"
)


class StubError(ValueError):
    """A reference file's solution markers are malformed."""


def _function_spans(tree: ast.AST) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function, innermost last."""
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                spans.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def make_stub(source: str, origin: str) -> str:
    """The kata text for reference `source` (`origin` names it in messages and the header)."""
    try:
        tree = parse_source(source, origin)
    except SyntaxError as err:
        raise StubError(f"{origin}: reference does not parse: {err}") from None
    spans = _function_spans(tree)
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    region_start: int | None = None
    for number, line in enumerate(lines, start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if region_start is not None:
                raise StubError(f"{origin}:{number}: BEGIN SOLUTION inside another region (line {region_start})")
            owners = [name for first, last, name in spans if first < number <= last]
            if not owners:
                raise StubError(f"{origin}:{number}: a solution region must sit inside a function body")
            region_start = number
            message = f"{owners[-1]}: your turn - see the TODOs above"
            out.append(f"{begin['indent']}raise NotImplementedError({message!r})\n")
        elif end:
            if region_start is None:
                raise StubError(f"{origin}:{number}: END SOLUTION without BEGIN SOLUTION")
            region_start = None
        elif region_start is None:
            out.append(line)
    if region_start is not None:
        raise StubError(f"{origin}:{region_start}: BEGIN SOLUTION is never closed")
    return HEADER.format(source=origin) + "".join(out)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- public interface comparison ------------------------------------------


def public_interface(source: str) -> dict[str, str]:
    """Map each public module-level name (and Class.method) to its signature text."""
    tree = parse_source(source)
    interface: dict[str, str] = {}

    def signature(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
        returns = f" -> {ast.unparse(fn.returns)}" if fn.returns else ""
        return f"({ast.unparse(fn.args)}){returns}"

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            interface[node.name] = "def " + signature(node)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            bases = ", ".join(ast.unparse(b) for b in node.bases)
            interface[node.name] = f"class ({bases})"
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    not item.name.startswith("_") or item.name.startswith("__")
                ):
                    interface[f"{node.name}.{item.name}"] = "def " + signature(item)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and not target.id.startswith("_"):
                    interface[target.id] = "value"
    return interface


def interface_drift(reference: str, kata: str) -> list[str]:
    """Human-readable differences between the public interfaces of two sources."""
    ref, got = public_interface(reference), public_interface(kata)
    problems = [f"missing {name}{' ' + ref[name] if ref[name] != 'value' else ''}" for name in ref if name not in got]
    problems += [f"unexpected public name {name}" for name in got if name not in ref]
    problems += [
        f"{name}: signature {got[name]} differs from the reference {ref[name]}"
        for name in ref
        if name in got and got[name] != ref[name]
    ]
    return problems


# -- generating and checking the katas tree ---------------------------------


@dataclass
class StubReport:
    written: list[Path]
    unchanged: list[Path]
    refused: list[Path]  # edited by the learner: left alone
    drift: list[str]  # `--check` findings; empty means in sync

    @property
    def in_sync(self) -> bool:
        return not self.drift


def _pairs(root: Path, modules):
    for module in modules:
        if not module.is_available(root) or not module.has_reference(root):
            continue  # a student copy holds no reference for modules whose solutions are not released
        for name in module.files:
            yield module, module.reference_dir(root) / name, module.katas_dir(root) / name


def _load_lock(katas: Path) -> dict[str, str]:
    """The lock in a katas folder; an unreadable one (a learner's damaged copy) counts as empty."""
    try:
        lock = json.loads((katas / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return lock if isinstance(lock, dict) else {}


def generate(root: Path = _curriculum.PROJECT_ROOT, modules=None, force: bool = False) -> StubReport:
    """Write stubs for every available module; refuse (and name) files a learner edited."""
    modules = modules or _curriculum.load().modules
    katas = root / "katas"
    lock = _load_lock(katas)
    report = StubReport([], [], [], [])
    for module, ref_path, kata_path in _pairs(root, modules):
        rel = kata_path.relative_to(katas).as_posix()
        stub = make_stub(ref_path.read_text(encoding="utf-8"), ref_path.relative_to(root).as_posix())
        if kata_path.exists():
            current = kata_path.read_text(encoding="utf-8")
            if current == stub:
                lock[rel] = _digest(stub)
                report.unchanged.append(kata_path)
                continue
            pristine = lock.get(rel) == _digest(current)
            if not pristine and not force:
                report.refused.append(kata_path)
                continue
        kata_path.parent.mkdir(parents=True, exist_ok=True)
        kata_path.write_text(stub, encoding="utf-8")
        lock[rel] = _digest(stub)
        report.written.append(kata_path)
    _write_lock(katas, {k: v for k, v in lock.items() if any(k == p.relative_to(katas).as_posix()
                                                              for p in report.written + report.unchanged)})
    return report


def _write_lock(katas: Path, updates: dict[str, str]) -> None:
    """Merge `updates` into the lock, re-reading it first so concurrent runs keep each other's entries."""
    lock = _load_lock(katas)
    lock.update(updates)
    (katas / LOCK_NAME).write_text(json.dumps(dict(sorted(lock.items())), indent=2) + "\n")


def kata_state(katas_dir: Path, module, root: Path = _curriculum.PROJECT_ROOT) -> str:
    """'missing' | 'pristine' (an untouched generated stub) | 'edited' for one module's kata files.

    Pristine means equal to the stub the reference generates now, or to the stub recorded for
    that file in a lock (the course's or the learner's), so an untouched stub from an older
    version of the course still counts as "not started".
    """
    locks = [_load_lock(katas_dir), _load_lock(root / "katas")]
    states = []
    for name in module.files:
        path = katas_dir / module.key / name
        if not path.is_file():
            return "missing"
        text = path.read_text(encoding="utf-8", errors="replace")
        reference = module.reference_dir(root) / name
        stub = make_stub(reference.read_text(encoding="utf-8"), reference.relative_to(root).as_posix()) \
            if reference.is_file() else None
        recorded = {lock.get(f"{module.key}/{name}") for lock in locks}
        states.append("pristine" if text == stub or _digest(text) in recorded else "edited")
    return "edited" if "edited" in states else "pristine"


def check(root: Path = _curriculum.PROJECT_ROOT, modules=None, strict: bool = False) -> StubReport:
    """Find drift between katas and reference without writing anything.

    Always: every kata file exists and has the reference's public names and signatures.
    Pristine stubs (hash in the lock) must equal what the reference generates now.
    With `strict` (the course's CI) every kata must be pristine.
    """
    modules = modules or _curriculum.load().modules
    katas = root / "katas"
    lock = _load_lock(katas)
    report = StubReport([], [], [], [])
    for module, ref_path, kata_path in _pairs(root, modules):
        rel = kata_path.relative_to(katas).as_posix()
        if not kata_path.is_file():
            report.drift.append(f"katas/{rel}: missing (run `kata stubs`)")
            continue
        reference = ref_path.read_text(encoding="utf-8")
        current = kata_path.read_text(encoding="utf-8")
        try:
            problems = interface_drift(reference, current)
        except SyntaxError as err:
            problems = [f"does not parse: {err}"]
        report.drift.extend(f"katas/{rel}: {p}" for p in problems)
        stub = make_stub(reference, ref_path.relative_to(root).as_posix())
        if current == stub:
            if lock.get(rel) != _digest(stub):
                report.drift.append(f"katas/{rel}: not recorded in katas/{LOCK_NAME} (run `kata stubs`)")
            report.unchanged.append(kata_path)
        elif lock.get(rel) == _digest(current):
            report.drift.append(f"katas/{rel}: stale stub - the reference changed (run `kata stubs`)")
        elif strict:
            report.drift.append(f"katas/{rel}: edited by hand - stubs must be generated from the reference")
        else:
            report.unchanged.append(kata_path)  # the learner's work: interface checked only
    return report


def main(argv: list[str] | None = None) -> int:
    """`python -m grading.stubs [--check] [--force] [NN ...]` (the same as `kata stubs`)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m grading.stubs")
    parser.add_argument("modules", nargs="*", help="module numbers or slugs (default: all available)")
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    parser.add_argument("--strict", action="store_true", help="with --check: every kata must be a pristine stub")
    parser.add_argument("--force", action="store_true", help="overwrite kata files even if edited")
    args = parser.parse_args(argv)
    cur = _curriculum.load()
    modules = [cur.module(m) for m in args.modules] or None
    if args.check:
        report = check(modules=modules, strict=args.strict)
        for line in report.drift:
            print(line)
        print("katas in sync with reference" if report.in_sync else f"{len(report.drift)} problem(s)")
        return 0 if report.in_sync else 1
    report = generate(modules=modules, force=args.force)
    for path in report.written:
        print(f"wrote {path}")
    for path in report.refused:
        print(f"refused {path}: edited since it was generated (use --force to overwrite)")
    return 1 if report.refused else 0


if __name__ == "__main__":
    raise SystemExit(main())
