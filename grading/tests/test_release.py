"""The student copy (`kata release`): what it holds, that it leaks no solution, that the tool
works inside it, that the course can grade it, and releasing solutions as the term goes on."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from _katas import M1, SELECT, env_without_kata_vars
from grading import curriculum, release, runner, stubs
from grading.cli import main

ROOT = curriculum.PROJECT_ROOT
CUR = curriculum.load()
M2, M3 = CUR.module(2), CUR.module(3)
FAST = ["--hypothesis-profile", "kata-smoke", "--timeout", "25", "--memory-limit", "3G", "--no-tamper-check"]


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "student"
    result = CliRunner().invoke(main, ["release", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def in_copy(copy: Path, *args: str, state: Path) -> subprocess.CompletedProcess:
    """`kata ARGS` run by the copy's own tool: its grading/ and its tinytorch, cwd the copy."""
    shim = copy.parent / "shim"  # what `pip install -e .` in the copy would map `tinytorch` to
    shim.mkdir(exist_ok=True)
    if not (shim / "tinytorch").exists():
        (shim / "tinytorch").symlink_to(copy / "grading" / "tinytorch")
    env = env_without_kata_vars()
    env.update(PYTHONPATH=os.pathsep.join([str(copy), str(shim)]), KATA_STATE_DIR=str(state),
               HYPOTHESIS_PROFILE="kata-smoke", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "grading.cli", *args], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=300)


def squash(text: str) -> str:
    return " ".join(text.split())


def test_the_copy_has_the_course_but_no_reference(copy):
    assert not (copy / "reference").exists()
    assert not (copy / "grading" / "tests").exists() and not (copy / ".ci").exists()
    for rel in ("README.md", "pyproject.toml", "conftest.py", ".gitignore", "docs/GRADING.md", "grading/cli.py",
                "grading/curriculum.toml", "checks/harness/parity.py", "milestones/m1957_perceptron.py",
                f"checks/{M1.key}/test_tensor.py", f"katas/{M1.key}/README.md", "katas/.stubs.lock.json"):
        assert (copy / rel).is_file(), rel
    assert not any(p.name == "__pycache__" for p in copy.rglob("*"))
    secrets = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in (ROOT / "reference").rglob("*.py")}
    for path in (p for p in copy.rglob("*") if p.is_file()):
        assert hashlib.sha256(path.read_bytes()).hexdigest() not in secrets, f"{path} is a reference file"
    assert release.leaks(copy) == []
    manifest = json.loads((copy / "grading" / "release.json").read_text())
    available = [m for m in CUR.modules if m.is_available()]
    assert manifest["solutions"] == [] and manifest["modules"] == [m.key for m in available]
    for module in available:
        # Stubs generated afresh from the reference, recorded in the copy's lock; lessons copied.
        assert module.is_available(copy) and not module.has_reference(copy)
        for name in module.files:
            source = module.reference_dir() / name
            stub = stubs.make_stub(source.read_text(), source.relative_to(ROOT).as_posix())
            assert (copy / "katas" / module.key / name).read_text() == stub
        assert stubs.kata_state(copy / "katas", module, root=copy) == "pristine"
        assert release.released_checks(module.key, root=copy) == runner.expected_checks(module.key)


def test_status_in_the_copy_shows_modules_available(copy, tmp_path):
    done = in_copy(copy, "status", state=tmp_path)
    assert done.returncode == 0, done.stderr
    text = squash(done.stdout)
    assert re.search(r"\bTensor\W+not started", text) and "needs 01" in text, text
    unbuilt = [m for m in curriculum.load().modules if not m.is_available(copy)]
    assert ("not yet available" in text) == bool(unbuilt), text  # modules the course has not built stay so


def test_prerequisites_without_released_solutions_are_not_lent(copy, tmp_path):
    done = in_copy(copy, "check", "03", "-k", "no_check_matches_this", state=tmp_path)
    text = squash(done.stdout)
    assert "prerequisites 01, 02 not passed and their solutions are not released" in text, text
    assert "lent from the reference" not in text
    assert release.lending(M3, set(), root=copy) == ([], ["01", "02"])
    assert release.without_unreleased("katas,01=reference,02=reference", root=copy) == "katas"


def test_a_module_filled_in_the_copy_passes_kata_check_there(copy, tmp_path):
    filled = copy.parent / "filled"
    shutil.copytree(copy, filled, symlinks=True)
    shutil.copy(M1.reference_dir() / "tensor.py", filled / "katas" / M1.key / "tensor.py")
    done = in_copy(filled, "check", "01", "-k", SELECT, state=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    flat = "".join(ch for ch in done.stdout if not ch.isspace() and ch not in "│╭╮╰╯─")
    assert "checksselectedby-k" in flat and "passed(onlytheseran" in flat, done.stdout  # -k: a subset ran


def test_a_milestone_runs_in_the_copy(copy, tmp_path):
    filled = copy.parent / "milestone"
    shutil.copytree(copy, filled, symlinks=True)
    shutil.copy(M1.reference_dir() / "tensor.py", filled / "katas" / M1.key / "tensor.py")
    done = in_copy(filled, "milestone", "perceptron", "--impl", "katas,01=katas", "--out-dir", str(tmp_path / "out"),
                   state=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED: train_accuracy" in done.stdout


def test_the_course_grades_the_copy_katas(copy, tmp_path, monkeypatch):
    monkeypatch.setenv("KATA_STATE_DIR", str(tmp_path / "state"))
    filled = tmp_path / "student"
    shutil.copytree(copy / "katas", filled / "katas")
    shutil.copy(M1.reference_dir() / "tensor.py", filled / "katas" / M1.key / "tensor.py")
    out = tmp_path / "result.json"
    result = CliRunner().invoke(main, ["grade", "--katas", str(filled / "katas"), "--modules", "01", "-k", SELECT,
                                       *FAST, "--no-thresholds", "--no-milestones", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["modules"][0]["status"] == "passed" and data["score"] == 8.0  # 10 - 2 threshold points


def test_solutions_released_later_are_added_and_lent(copy, tmp_path):
    later = tmp_path / "later"
    shutil.copytree(copy, later, symlinks=True)
    work = later / "katas" / M2.key / "activations.py"
    work.write_text(work.read_text() + "\n# my work in progress\n")
    result = CliRunner().invoke(main, ["release", "--out", str(later), "--solutions", "01-02"])
    assert result.exit_code == 0, result.output
    text = squash(result.output)
    assert "updated the student copy" in text and "released solutions: 01_tensor, 02_activations" in text
    assert f"kept katas/{M2.key}/activations.py" in text
    assert work.read_text().endswith("# my work in progress\n")  # a learner's work is never overwritten
    for module in (M1, M2):
        assert module.has_reference(later)
        for name in module.files:
            assert (later / "reference" / module.key / name).read_bytes() == (module.reference_dir() / name).read_bytes()
    assert not M3.has_reference(later)
    assert json.loads((later / "grading" / "release.json").read_text())["solutions"] == ["01_tensor", "02_activations"]
    assert release.leaks(later, released=("01_tensor", "02_activations")) == []
    assert release.leaks(later)  # the released solutions are exactly what the check would otherwise flag
    assert release.lending(M3, set(), root=later) == (["01", "02"], [])
    done = in_copy(later, "check", "03", "-k", "no_check_matches_this", state=tmp_path / "state")
    text = squash(done.stdout)
    assert "Checked with 01-02 lent from the reference" in text and "not released" not in text
    # Updating again keeps the solutions released before.
    assert CliRunner().invoke(main, ["release", "--out", str(later)]).exit_code == 0
    assert json.loads((later / "grading" / "release.json").read_text())["solutions"] == ["01_tensor", "02_activations"]


def test_release_refuses_unsafe_targets_and_names_leaks(copy, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("mine")
    refused = CliRunner().invoke(main, ["release", "--out", str(tmp_path / "busy")])
    assert refused.exit_code == 1 and "not a student copy" in squash(refused.output)
    inside = CliRunner().invoke(main, ["release", "--out", str(ROOT / "katas" / "student")])
    assert inside.exit_code == 1 and not (ROOT / "katas" / "student").exists()
    bad = CliRunner().invoke(main, ["release", "--out", str(tmp_path / "x"), "--solutions", "42"])
    assert bad.exit_code == 1 and "no module" in bad.output
    leaky = tmp_path / "leaky"
    shutil.copytree(copy, leaky, symlinks=True)
    shutil.copy(M2.reference_dir() / "activations.py", leaky / "docs" / "notes.py")
    source = (M1.reference_dir() / "tensor.py").read_text()
    (leaky / "docs" / "pasted.md").write_text("An answer:\n" + "\n".join(
        "    " + line for line in source[source.index("# BEGIN SOLUTION"):].splitlines()[:40]))
    found = release.leaks(leaky)
    assert any(f.startswith("docs/notes.py is a copy of reference/02_activations/") for f in found), found
    assert any(f.startswith("docs/pasted.md contains a solution region of reference/01_tensor/") for f in found), found


def test_course_private_list_and_solution_specs(tmp_path):
    (tmp_path / ".course-private").write_text("# course only\ndocs/INSTRUCTORS.md\nchecks/*/answers_*.py\n\n")
    for rel in ("docs/INSTRUCTORS.md", "docs/GRADING.md", "checks/01_tensor/answers_key.py",
                "checks/01_tensor/test_tensor.py", "grading/tests/test_x.py", "grading/cli.py",
                "grading/__pycache__/cli.cpython-311.pyc", "reference/01_tensor/tensor.py", "secret.txt", "README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert sorted(release.released_files(tmp_path)) == ["README.md", "checks/01_tensor/test_tensor.py",
                                                         "docs/GRADING.md", "grading/cli.py"]
    assert [m.key for m in release.parse_modules("01-03,05")] == ["01_tensor", "02_activations", "03_layers",
                                                                 "05_autograd"]
    assert [m.number for m in release.parse_modules("2, tensor")] == [1, 2]
    with pytest.raises(release.ReleaseError, match="empty range"):
        release.parse_modules("04-02")
