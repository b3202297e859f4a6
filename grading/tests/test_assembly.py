"""The assembled `tinytorch` package: which file backs each module, and how it fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from grading import assembly, curriculum

ROOT = curriculum.PROJECT_ROOT


def run_python(code: str, cwd, **env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in (assembly.IMPL_ENV, assembly.KATAS_ENV)}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120)


def test_parse_impl_defaults_and_mixes():
    assert assembly.parse_impl(None).render() == "katas"
    assert assembly.parse_impl("reference").for_module(3) == "reference"
    spec = assembly.parse_impl("katas,05=reference,tensor=reference")
    assert spec.for_module(5) == "reference" and spec.for_module(1) == "reference" and spec.for_module(2) == "katas"
    assert assembly.parse_impl(spec.render()) == spec


@pytest.mark.parametrize("bad, fragment", [("kata", "'kata'"), ("katas,05=mine", "05=mine"), ("katas,99=reference", "99")])
def test_parse_impl_names_the_bad_part(bad, fragment):
    with pytest.raises(assembly.ImplSpecError, match=fragment):
        assembly.parse_impl(bad)


def test_source_file_follows_the_spec(tmp_path, monkeypatch):
    monkeypatch.setenv(assembly.KATAS_ENV, str(tmp_path))
    assert assembly.source_file("tensor", assembly.parse_impl("katas")) == tmp_path / "01_tensor" / "tensor.py"
    assert assembly.source_file("tensor", assembly.parse_impl("reference")) == ROOT / "reference/01_tensor/tensor.py"
    assert assembly.source_file("no_such_module") is None


def test_import_tinytorch_anywhere_resolves_to_the_katas(tmp_path):
    result = run_python(
        """
        import tinytorch.tensor as t
        print(t.__file__)
        """,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(ROOT / "katas/01_tensor/tensor.py")


def test_reference_impl_and_tracebacks_point_at_the_kata(tmp_path):
    result = run_python("import tinytorch.tensor as t; print(t.Tensor([1.0]).shape)", cwd=tmp_path,
                        TINYTORCH_IMPL="reference")
    assert result.returncode == 0 and result.stdout.strip() == "(1,)", result.stderr
    stub = run_python("from tinytorch.tensor import Tensor; Tensor([1.0])", cwd=tmp_path)
    assert stub.returncode != 0
    assert "katas/01_tensor/tensor.py" in stub.stderr and "NotImplementedError" in stub.stderr


def test_missing_kata_file_is_a_clear_error(tmp_path):
    result = run_python("import tinytorch.tensor", cwd=tmp_path, TINYTORCH_KATAS=str(tmp_path / "empty"))
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "kata stubs" in result.stderr


def test_unknown_names_are_not_curriculum_modules(tmp_path):
    result = run_python("import tinytorch.nonexistent", cwd=tmp_path)
    assert "No module named 'tinytorch.nonexistent'" in result.stderr
