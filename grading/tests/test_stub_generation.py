"""Stub generation: derived from the reference, never overwriting a learner's work."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from grading import curriculum, stubs

REFERENCE = textwrap.dedent(
    '''
    """A module."""
    import numpy as np

    LIMIT = 3


    def double(x: np.ndarray) -> np.ndarray:
        """x: any shape. Returns 2 * x."""
        # TODO: multiply by two
        # BEGIN SOLUTION
        return 2 * x
        # END SOLUTION


    class Box:
        def __init__(self, value: float):
            # BEGIN SOLUTION
            self.value = value
            # END SOLUTION

        def get(self) -> float:
            return self.value
    '''
)


def test_regions_become_not_implemented_and_the_rest_is_kept():
    stub = stubs.make_stub(REFERENCE, "reference/99_x/x.py")
    assert "return 2 * x" not in stub and "self.value = value" not in stub
    assert "raise NotImplementedError('double: your turn - see the TODOs above')" in stub
    assert "raise NotImplementedError('Box.__init__: your turn - see the TODOs above')" in stub
    assert "# TODO: multiply by two" in stub and '"""x: any shape. Returns 2 * x."""' in stub
    assert "def get(self) -> float:\n        return self.value" in stub
    assert stub.startswith("# KATA:")
    compile(stub, "stub", "exec")
    assert stubs.public_interface(stub) == stubs.public_interface(REFERENCE)


@pytest.mark.parametrize(
    "bad, message",
    [("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "inside a function"),
     ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "never closed"),
     ("def f():\n    return 1\n    # END SOLUTION\n", "without BEGIN"),
     ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", "inside another"),
     ("def f(:\n", "does not parse")],
)
def test_malformed_markers_are_named(bad, message):
    with pytest.raises(stubs.StubError, match=message):
        stubs.make_stub(bad, "ref.py")


def test_interface_drift_names_the_difference():
    changed = REFERENCE.replace("def double(x: np.ndarray)", "def double(x: np.ndarray, y=1)")
    changed = changed.replace("LIMIT = 3", "OTHER = 3")
    drift = stubs.interface_drift(REFERENCE, changed)
    assert any("double: signature" in d for d in drift)
    assert "missing LIMIT" in drift and "unexpected public name OTHER" in drift


@pytest.fixture
def project(tmp_path):
    """A throw-away project with module 01's reference and checks folder."""
    module = curriculum.load().module(1)
    (tmp_path / "reference" / module.key).mkdir(parents=True)
    shutil.copy(module.reference_dir() / "tensor.py", tmp_path / "reference" / module.key / "tensor.py")
    (tmp_path / "checks" / module.key).mkdir(parents=True)
    (tmp_path / "katas").mkdir()
    return tmp_path, [module]


def test_generate_then_check_is_in_sync(project):
    root, modules = project
    report = stubs.generate(root, modules)
    assert [p.name for p in report.written] == ["tensor.py"]
    assert stubs.check(root, modules, strict=True).in_sync
    assert stubs.generate(root, modules).unchanged  # idempotent


def test_learner_edits_are_never_overwritten_unless_forced(project):
    root, modules = project
    stubs.generate(root, modules)
    kata = root / "katas/01_tensor/tensor.py"
    kata.write_text(kata.read_text() + "\n# my work\n")
    # the reference changes: pristine stubs would be refreshed, but this one is the learner's
    ref = root / "reference/01_tensor/tensor.py"
    ref.write_text(ref.read_text().replace("Module 01 - Tensor", "Module 01 - The Tensor"))
    report = stubs.generate(root, modules)
    assert report.refused == [kata] and "# my work" in kata.read_text()
    check = stubs.check(root, modules)
    assert check.in_sync, "an edited kata with the right interface is the learner's business"
    assert not stubs.check(root, modules, strict=True).in_sync
    forced = stubs.generate(root, modules, force=True)
    assert forced.written == [kata] and "# my work" not in kata.read_text()


def test_check_detects_stale_missing_and_drifted_stubs(project):
    root, modules = project
    stubs.generate(root, modules)
    ref = root / "reference/01_tensor/tensor.py"
    ref.write_text(ref.read_text().replace("Module 01 - Tensor", "Module 01 - The Tensor"))
    assert any("stale stub" in d for d in stubs.check(root, modules).drift)
    kata = root / "katas/01_tensor/tensor.py"
    kata.write_text(kata.read_text().replace("def numel(self) -> int:", "def numel(self, extra) -> int:"))
    assert any("Tensor.numel: signature" in d for d in stubs.check(root, modules).drift)
    kata.unlink()
    assert any("missing" in d for d in stubs.check(root, modules).drift)


def test_the_repository_katas_are_in_sync():
    assert stubs.check(strict=True).drift == []
