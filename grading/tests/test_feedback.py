"""Failure messages (issue 13, section 2): what a learner reads in `kata check`'s table and under -v.

* a wording check (`pytest.raises(..., match=...)`) names the expected pattern and the actual
  message, for every failing check;
* a bare `AssertionError` or a compound assert cut at its first line gets a one-line summary;
* a NotImplementedError (a RuntimeError) inside `pytest.raises(RuntimeError)` is "not implemented
  yet", not a pass and not "Regex pattern did not match";
* tracebacks use repo-relative paths, as the table does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _katas import M1, REFERENCE_01, TIMEOUT, make_checkout
from grading import curriculum, runner
from grading.cli import console, show_run

ROOT = curriculum.PROJECT_ROOT

SAMPLE_CHECKS = '''
import pytest

def bad_item():
    raise ValueError("item() needs one element, got shape (2, 3)")

def todo():
    raise NotImplementedError("Tensor.sum: your turn - see the TODOs above")

def test_wording_one():
    with pytest.raises(ValueError, match=r"\\(2,\\)"):
        bad_item()

def test_wording_two():
    with pytest.raises(ValueError, match="dim 3"):
        raise ValueError("dimension 3 is out of range")

def test_compound_assert():
    shape, dtype = (1, 2), "float64"
    assert shape == (1, 2) and dtype == "float32"

def test_bare_assertion_error():
    raise AssertionError()

def test_todo_under_raises_runtime_error_with_match():
    with pytest.raises(RuntimeError, match="ambiguous"):
        todo()

def test_todo_under_raises_runtime_error():
    with pytest.raises(RuntimeError):
        todo()

def test_todo_under_raises_exception_call_form():
    pytest.raises(Exception, todo)

def test_expected_not_implemented_still_passes():
    with pytest.raises(NotImplementedError, match="sum"):
        todo()

def test_real_runtime_error_still_passes():
    with pytest.raises(RuntimeError, match="ambiguous"):
        raise RuntimeError("the truth value is ambiguous")

def test_did_not_raise_still_fails():
    with pytest.raises(ValueError):
        pass
'''


def _run_sample(tmp_path: Path) -> dict[str, runner.CheckResult]:
    """Run SAMPLE_CHECKS with the checks plugin as the grader does; parse its JUnit file."""
    (tmp_path / "test_sample.py").write_text(SAMPLE_CHECKS)
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYTORCH_", "KATA_", "PYTEST_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["TINYTORCH_IMPL"] = "reference"  # the plugin's configure step needs an implementation
    cmd = [sys.executable, "-m", "pytest", "test_sample.py", "-p", "checks.harness.plugin", "-p", "no:cacheprovider",
           "-p", "no:randomly", "-q", "--tb=short", f"--junitxml={junit}", "-o", "junit_family=xunit2",
           "--rootdir", str(tmp_path)]
    subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    results, errors = runner.parse_junit(junit, ROOT / "katas")
    assert not errors
    return {key.split("::")[-1]: result for key, result in results.items()}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, runner.CheckResult]:
    return _run_sample(tmp_path_factory.mktemp("feedback"))


def test_every_wording_failure_shows_the_pattern_and_the_actual_message(sample):
    one, two = sample["test_wording_one"], sample["test_wording_two"]
    assert not one.ok and not two.ok
    for result, pattern, actual in ((one, r"\(2,\)", "got shape (2, 3)"), (two, "dim 3", "dimension 3 is out of range")):
        assert "Regex pattern did not match" not in result.message
        assert pattern in result.message.replace("\\\\", "\\"), result.message
        assert actual in result.message, result.message
        assert result.message.startswith("wrong error message: expected it to match")


def test_compound_assert_gets_a_complete_one_line_summary(sample):
    message = sample["test_compound_assert"].message
    assert "\n" not in message
    assert "'float64' == 'float32'" in message and message.count("(") == message.count(")"), message
    assert "Use -v" not in message


def test_bare_assertion_error_names_the_statement(sample):
    message = sample["test_bare_assertion_error"].message
    assert message != "AssertionError"
    assert "raise AssertionError()" in message and "without a message" in message


@pytest.mark.parametrize("name", ["test_todo_under_raises_runtime_error_with_match",
                                  "test_todo_under_raises_runtime_error",
                                  "test_todo_under_raises_exception_call_form"])
def test_a_todo_is_not_the_error_a_check_expects(sample, name):
    result = sample[name]
    assert not result.ok, f"{name} passed on a NotImplementedError"
    assert result.message.startswith("not implemented yet: Tensor.sum"), result.message


def test_the_guard_leaves_other_raises_alone(sample):
    assert sample["test_expected_not_implemented_still_passes"].ok
    assert sample["test_real_runtime_error_still_passes"].ok
    assert not sample["test_did_not_raise_still_fails"].ok
    assert "DID NOT RAISE" in sample["test_did_not_raise_still_fails"].message


def test_explain_reports_a_caught_todo_as_not_implemented():
    """Without the plugin (e.g. an older checks tree), the explanation step still sees the TODO."""
    text = textwrap.dedent("""\
        checks/01_tensor/test_tensor.py:12: in test_x
            todo()
        E   NotImplementedError: Tensor.__bool__: your turn

        During handling of the above exception, another exception occurred:
        checks/01_tensor/test_tensor.py:11: in test_x
            with pytest.raises(RuntimeError, match="ambiguous"):
        E   AssertionError: Regex pattern did not match.
        E     Expected regex: 'ambiguous'
        E     Actual message: 'Tensor.__bool__: your turn'
        """)
    message = "AssertionError: Regex pattern did not match.\n  Expected regex: 'ambiguous'\n  Actual message: 'x'"
    plain, _ = runner.explain(message, text, None)
    assert plain.startswith("not implemented yet: Tensor.__bool__"), plain


def test_older_pytest_wording_format_is_understood():
    message = "AssertionError: Regex pattern did not match.\n Regex: 'dim 3'\n Input: 'dimension 3'"
    plain, _ = runner.explain(message, "", None)
    assert "'dim 3'" in plain and "'dimension 3'" in plain


def test_wording_failure_under_the_grader_shows_the_message_without_the_learner_traceback():
    """Under the trust boundary the proxy adds the learner-side traceback as a note, which pytest's
    match= sees too: the table shows the message the learner raised, not the traceback after it."""
    message = ("AssertionError: Regex pattern did not match.\n  Expected regex: 'groups=4'\n  Actual message:"
               " 'out_channels=6 is not divisible by 4\\nlearner-side traceback (most recent call last):\\n"
               "Traceback (most recent call last):\\n  File \"katas/09_convolutions/conv.py\", line 260, in conv2d'")
    plain, _ = runner.explain(message, "", None)
    assert plain.endswith("got 'out_channels=6 is not divisible by 4'"), plain


def test_numpy_testing_failures_show_the_checks_message_and_the_first_mismatch():
    """numpy.testing puts its message on the lines after 'AssertionError:': that is not a bare assert."""
    message = ("AssertionError: \nArrays are not equal\ncausal_mask(3, 5): row i may attend keys 0..i\n"
               "Mismatched elements: 1 / 4 (25%)\nMismatch at index:\n [1, 1]: 4 (ACTUAL), 5 (DESIRED)\n"
               "Max absolute difference among violations: 1\n ACTUAL: array([[1, 2],\n       [3, 4]])\n"
               " DESIRED: array([[1, 2],\n       [3, 5]])")
    plain, _ = runner.explain(message, "", None)
    assert plain == ("causal_mask(3, 5): row i may attend keys 0..i (Arrays are not equal; Mismatched elements:"
                     " 1 / 4 (25%); first at [1, 1]: 4 (ACTUAL), 5 (DESIRED))"), plain
    plain, _ = runner.explain("AssertionError: \nArrays are not equal\n(shapes (3,), (4,) mismatch)\n"
                              " ACTUAL: array([1, 2, 3])\n DESIRED: array([1, 2, 3, 4])", "", None)
    assert plain == "Arrays are not equal ((shapes (3,), (4,) mismatch))", plain


def test_tracebacks_use_repo_relative_paths(tmp_path):
    katas = tmp_path / "katas"
    (katas / "01_tensor").mkdir(parents=True)
    (katas / "01_tensor" / "tensor.py").write_text("x = 1\n")
    work = ROOT / ".kata" / "work"
    runner._LOCAL.cwd = (work,)
    try:
        rel_kata = os.path.relpath(katas / "01_tensor" / "tensor.py", work)
        rel_check = os.path.relpath(ROOT / "checks" / "01_tensor" / "test_tensor.py", work)
        text = (f"{rel_check}:12: in test_x\n    t.sum()\n{rel_kata}:3: in sum\n    raise X\n"
                f'  File "{ROOT / "checks" / "harness" / "parity.py"}", line 7, in assert_parity\n')
        out = runner.relative_paths(text, katas)
    finally:
        del runner._LOCAL.cwd
    assert "checks/01_tensor/test_tensor.py:12: in test_x" in out.splitlines()[0]
    assert out.splitlines()[0].startswith("checks/")
    assert "\nkatas/01_tensor/tensor.py:3: in sum" in out
    assert 'File "checks/harness/parity.py", line 7' in out
    assert ".." not in out


def test_check_run_details_are_repo_relative_and_table_shows_every_wording_failure(tmp_path):
    """End to end: a kata whose messages miss their required fragments, through run_checks and show_run."""
    source = REFERENCE_01.replace("item() needs a tensor with one element, got shape {_shape_str(self.shape)}",
                                  "item() needs a tensor with one element", 1)
    source = source.replace("the truth value of a tensor of shape {_shape_str(self.shape)} is ambiguous",
                            "the truth value of a tensor is not defined", 1)
    assert source != REFERENCE_01
    katas = make_checkout(tmp_path, source)
    (tmp_path / "work").mkdir()
    run = runner.run_checks(M1, katas, "katas", timeout=TIMEOUT * 3, select="test_item_repr_bool_and_len",
                            hypothesis_profile="kata-smoke", cwd=tmp_path / "work")
    failing = [c for c in run.checks if not c.ok]
    assert failing, run.reason
    assert all("Regex pattern did not match" not in c.message for c in failing)
    assert "wrong error message: expected it to match" in failing[0].message
    assert "item() needs a tensor with one element" in failing[0].message
    assert failing[0].detail and ".kata/work" not in failing[0].detail and "../" not in failing[0].detail
    assert "checks/01_tensor/test_tensor.py:" in failing[0].detail
    with console.capture() as captured:
        show_run(M1, run, verbose=True)
    out = captured.get()
    assert "wrong error message" in out and "(2,)" in out.replace("\\", "")
    assert re.search(r"checks/01_tensor/test_tensor\.py:\d+", out)
