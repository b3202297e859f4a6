"""Meta-tests: the checks themselves are honest.

1. For every available module, every one of its checks fails on pristine stubs
   (generated afresh into a temporary directory, so a learner's edits never
   matter). A check that passes on a stub cannot catch anything and is a defect.
   The checks are the ones collected on the reference (runner.expected_checks, as
   the grader counts them); that they all PASS on the reference is the README's
   test command itself (`pytest --impl reference`), not repeated here.
2. Nothing in katas/NN_*, reference/NN_* or checks/NN_* imports a tinytorch
   module from a later module: a learner on module 05 never needs module 06.
3. Kata and reference code passes the grader's static check (imports only numpy, the
   standard library and tinytorch; no process escapes).
"""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

import pytest

from grading import curriculum, integrity, runner, stubs

ROOT = curriculum.PROJECT_ROOT
CURRICULUM = curriculum.load()
AVAILABLE = [m for m in CURRICULUM.modules if m.is_available()]


def _run_checks(module: curriculum.Module, impl: str, katas_dir: Path, junit: Path) -> dict[str, str]:
    """Run one module's checks in a fresh interpreter; return {test id: outcome}."""
    env = {**os.environ, "TINYTORCH_KATAS": str(katas_dir), "HYPOTHESIS_PROFILE": "dev"}
    env.pop("TINYTORCH_IMPL", None)
    cmd = runner.pytest_base_args(module.checks_dir(), impl, junit, select=None)
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=module.timeout * 2)
    results, collection_errors = runner.parse_junit(junit, katas_dir)
    assert not collection_errors, f"{module.key} ({impl}): checks failed to collect: {collection_errors}"
    return {key: result.outcome for key, result in results.items()}


@pytest.mark.slow
@pytest.mark.parametrize("module", AVAILABLE, ids=lambda m: m.key)
def test_every_check_fails_on_pristine_stubs(module, tmp_path):
    pristine = tmp_path / "katas"
    for name in module.files:
        target = pristine / module.key / name
        target.parent.mkdir(parents=True, exist_ok=True)
        source = module.reference_dir() / name
        target.write_text(stubs.make_stub(source.read_text(), source.relative_to(ROOT).as_posix()))
    # Every other module comes from the reference in both runs, so only this module's stubs are on trial.
    others = ",".join(f"{m.number:02d}=reference" for m in CURRICULUM.modules if m.number != module.number)
    expected = set(runner.expected_checks(module.key))
    on_stubs = _run_checks(module, f"katas,{others}", pristine, tmp_path / "stubs.xml")

    assert expected, f"{module.key}: no checks were collected"
    assert set(on_stubs) == expected, (f"{module.key}: different checks ran on stubs than were collected on the"
                                       f" reference: missing {sorted(expected - set(on_stubs))[:5]},"
                                       f" extra {sorted(set(on_stubs) - expected)[:5]}")
    vacuous = sorted(name for name, outcome in on_stubs.items() if outcome not in ("failed", "error"))
    assert not vacuous, f"{module.key}: checks that do not fail on pristine stubs (they cannot catch anything): {vacuous}"


def _imported_tinytorch_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tinytorch":
                found += [(node.lineno, f"tinytorch.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def _module_files(module: curriculum.Module) -> list[Path]:
    folders = [module.katas_dir(), module.reference_dir(), module.checks_dir()]
    return sorted(p for folder in folders if folder.is_dir() for p in folder.rglob("*.py"))


@pytest.mark.parametrize("module", AVAILABLE, ids=lambda m: m.key)
def test_no_module_imports_a_later_module(module):
    problems = []
    for path in _module_files(module):
        for line, name in _imported_tinytorch_modules(path):
            parts = name.split(".")
            if parts[0] != "tinytorch" or len(parts) < 2:
                continue
            owner = CURRICULUM.export_owner(parts[1])
            if owner is not None and owner.number > module.number:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {name} from module {owner.key}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module", AVAILABLE, ids=lambda m: m.key)
def test_reference_solutions_pass_the_graders_static_check(module):
    """The grader's import/escape policy (numpy, stdlib, tinytorch only) holds for the solutions,
    so a learner who writes the reference's code is never rejected."""
    findings = []
    for folder in (module.katas_dir(), module.reference_dir()):
        for path in sorted(folder.rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            findings += integrity.static_check_source(source, str(path.relative_to(ROOT)))
    rejections = [str(f) for f in findings if f.severity == "reject"]
    assert not rejections, "\n".join(rejections)
