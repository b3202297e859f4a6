"""The `kata` command line on throw-away learner checkouts (never the project's katas/)."""

from __future__ import annotations

import csv
import json
import shutil

import jsonschema
import pytest
from click.testing import CliRunner

from _katas import M1, SELECT, VARIANTS, make_checkout, pristine_01, snapshot
from grading import curriculum
from grading.cli import main

ROOT = curriculum.PROJECT_ROOT
SCHEMA = json.loads((ROOT / "grading" / "schemas" / "gradescope_results.schema.json").read_text())
FAST = ["--hypothesis-profile", "kata-smoke", "--timeout", "25", "--memory-limit", "3G", "--no-tamper-check"]
README = """# Module 01

## Hints

- `test_python_data_becomes_float32`: start with np.asarray(data).
- `test_python_data_becomes_float32`: then pick float32 for Python data.
- A general hint.

## Something else
"""


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    monkeypatch.setenv("KATA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "kata-smoke")
    monkeypatch.delenv("TINYTORCH_KATAS", raising=False)
    monkeypatch.delenv("TINYTORCH_IMPL", raising=False)


def squash(text: str) -> str:
    """Output without whitespace and table borders (rich wraps cells at any width)."""
    return "".join(ch for ch in text if not ch.isspace() and ch not in "│┃")


def kata(*args: str):
    return CliRunner(env={"COLUMNS": "300"}).invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def course_in_progress(monkeypatch):
    """The last module and the last milestone not built yet, as in a course still being written
    (the full course has every item available, so this is how the "not yet available" path is tried)."""
    cur = curriculum.load()
    last_module, last_milestone = cur.modules[-1].number, cur.milestones[-1].slug
    module_available, milestone_available = curriculum.Module.is_available, curriculum.Milestone.is_available
    monkeypatch.setattr(curriculum.Module, "is_available",
                        lambda self, root=curriculum.PROJECT_ROOT: self.number != last_module and module_available(self, root))
    monkeypatch.setattr(curriculum.Milestone, "is_available",
                        lambda self, root=curriculum.PROJECT_ROOT: self.slug != last_milestone and milestone_available(self, root))
    return cur.modules[-1], cur.milestones[-1]


def test_help_lists_every_command():
    out = kata("--help").output
    for command in ("status", "check", "grade", "milestone", "stubs", "hint", "watch"):
        assert command in out


@pytest.mark.parametrize("ref", ["1", "01", "tensor", "01_tensor"])
def test_check_accepts_every_module_spelling_and_passes_the_reference_copy(tmp_path, ref):
    from grading.cli import _module

    assert _module(ref).key == "01_tensor"
    if ref != "01":  # one real run is enough
        return
    katas = make_checkout(tmp_path, VARIANTS["passing"])
    before = snapshot(katas)
    result = kata("check", ref, "--katas", katas, "-k", SELECT, "--timeout", "25")
    assert result.exit_code == 0, result.output
    # -k ran a subset: the panel says so instead of "module passed", and nothing is recorded
    out = squash(result.output)
    assert "selectedby-k" in out and squash("run without -k to check the module") in out, result.output
    assert "module passed" not in result.output
    assert snapshot(katas) == before


def test_check_explains_not_implemented_and_status_shows_it(tmp_path, course_in_progress):
    katas = make_checkout(tmp_path, pristine_01())
    result = kata("check", "01", "--katas", katas, "--timeout", "40", "-k", SELECT)
    assert result.exit_code == 1
    assert squash("not implemented yet: Tensor.__init__ (katas/01_tensor/tensor.py)") in squash(result.output)
    status = kata("status", "--katas", katas).output
    assert "not started" in status and "not yet available" in status and "Milestones" in status


def test_check_shows_syntax_errors_with_file_and_line(tmp_path):
    katas = make_checkout(tmp_path, VARIANTS["syntax_error"])
    result = kata("check", "01", "--katas", katas, "-k", SELECT, "--timeout", "25")
    assert result.exit_code == 1
    assert squash("import error in katas/01_tensor/tensor.py, line") in squash(result.output)
    assert "SyntaxError" in result.output


def test_check_unknown_or_unavailable_module(tmp_path, course_in_progress):
    assert kata("check", "99").exit_code == 2  # click usage error
    unavailable, _ = course_in_progress
    result = kata("check", str(unavailable.number), "--katas", tmp_path)
    assert result.exit_code == 2 and "not yet available" in result.output


def test_status_not_started_locked_and_not_available(tmp_path, course_in_progress):
    katas = make_checkout(tmp_path, pristine_01())
    out = kata("status", "--katas", katas).output
    assert "not started" in out
    assert "not yet available" in out
    if curriculum.load().module(2).is_available():
        assert "locked" in out  # module 02 needs 01


def test_status_marks_a_cached_result_stale_after_an_edit(tmp_path):
    katas = make_checkout(tmp_path, VARIANTS["partial"])
    kata("check", "01", "--katas", katas, "--timeout", "40")
    assert "failing" in kata("status", "--katas", katas).output
    path = katas / M1.key / "tensor.py"
    path.write_text(path.read_text() + "\n# edited\n")
    assert "stale" in kata("status", "--katas", katas).output


def test_hint_follows_the_readme_convention(tmp_path):
    katas = make_checkout(tmp_path, pristine_01(), readme=README)
    first = kata("hint", "01", "--katas", katas)
    assert "np.asarray(data)" in first.output and "hint 1/" in first.output
    assert kata("hint", "01", "--katas", katas).output == first.output  # chosen from what fails, no counter
    every = kata("hint", "01", "--katas", katas, "--all")
    assert "float32 for Python data" in every.output and "hint 2/" in every.output


def test_hints_parser():
    from grading import hints

    keyed, general = hints.parse_hints(README)
    assert keyed == {"test_python_data_becomes_float32": ["start with np.asarray(data).",
                                                          "then pick float32 for Python data."]}
    assert general == ["A general hint."]
    assert hints.function_name("test_tensor.py::test_x[1-2]") == "test_x"


def test_watch_once_runs_the_current_module(tmp_path):
    katas = make_checkout(tmp_path, VARIANTS["passing"])
    result = kata("watch", "01", "--katas", katas, "--once")
    assert "01_tensor" in result.output and result.exit_code == 0


def test_grade_writes_json_gradescope_junit_and_report(tmp_path):
    katas = make_checkout(tmp_path, VARIANTS["partial"])
    before = snapshot(katas)
    out = tmp_path / "out"
    result = kata("grade", "--katas", katas, "--modules", "1", "-k", SELECT, *FAST, "--no-thresholds",
                  "--json", out / "r.json", "--gradescope", out / "results.json", "--junit", out / "j.xml",
                  "--report", out / "report", "--no-milestones")
    assert result.exit_code == 0, result.output
    data = json.loads((out / "r.json").read_text())
    assert data["modules"][0]["status"] == "failing" and 0 < data["score"] < data["max_score"]
    jsonschema.validate(json.loads((out / "results.json").read_text()), SCHEMA)
    import xml.etree.ElementTree as ET

    assert ET.parse(out / "j.xml").getroot().tag == "testsuites"
    assert "data:image/png;base64" in (out / "report" / "report.html").read_text()
    assert snapshot(katas) == before


def test_grade_reference_gives_full_marks_on_everything_available(tmp_path):
    """Every available module's checks, through the CLI and the sandbox. The performance thresholds
    (timed, minutes in all) are left to .ci/run's grader smoke run, which asserts full marks with them."""
    result = kata("grade", "--impl", "reference", "--no-milestones", "--no-thresholds", "--hypothesis-profile",
                  "kata-smoke", "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    available = [m for m in data["modules"] if m["available"]]
    assert available and all(m["status"] == "passed" for m in available), [
        (m["key"], m["reason"]) for m in available if m["status"] != "passed"]
    unmeasured = sum(t.points for m in curriculum.load().modules if m.is_available() for t in m.thresholds)
    assert unmeasured > 0 and data["max_score"] == sum(m["points_max"] for m in available)
    assert data["score"] == data["max_score"] - unmeasured, "everything but the unmeasured thresholds"
    for m in data["modules"]:
        if not m["available"]:
            assert m["status"] == "not_available" and m["points"] == 0


def test_batch_grading_writes_one_json_per_submission_and_a_summary(tmp_path):
    subs = tmp_path / "subs"
    make_checkout(subs / "alice", VARIANTS["passing"])
    make_checkout(subs / "bob", VARIANTS["segfault"])
    make_checkout(subs / "carol", pristine_01())
    out = tmp_path / "grades"
    # Two submissions graded at once inside a busy test run: give each module run room (a crash is still fast).
    result = kata("grade", "--submissions", subs, "--jobs", "2", "--out", out, "--modules", "1", "-k", SELECT,
                  *FAST, "--timeout", "120", "--no-thresholds", "--no-milestones")
    assert result.exit_code == 0, result.output
    scores = {name: json.loads((out / f"{name}.json").read_text()) for name in ("alice", "bob", "carol")}
    assert scores["alice"]["score"] == 8.0, [  # thresholds skipped: 10 - 2 threshold points
        (m["key"], m.get("status"), m.get("reason")) for m in scores["alice"]["modules"] if m.get("available")]
    assert "crashed with signal SIGSEGV" in scores["bob"]["modules"][0]["reason"]
    assert scores["carol"]["score"] == 0
    for name in scores:
        jsonschema.validate(json.loads((out / f"{name}.gradescope.json").read_text()), SCHEMA)
    rows = list(csv.reader((out / "summary.csv").open()))
    assert rows[0][:3] == ["submission", "score", "max_score"] and "01_tensor" in rows[0]
    assert [r[0] for r in rows[1:4]] == ["alice", "bob", "carol"]
    assert rows[4][0] == "#pass_rate" and rows[5][0] == "#median_seconds"


def test_stubs_refuses_to_overwrite_learner_work(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(M1.reference_dir(), root / "reference" / M1.key)
    (root / "checks" / M1.key).mkdir(parents=True)
    assert kata("stubs", "01", "--root", root).exit_code == 0
    kata_file = root / "katas" / M1.key / "tensor.py"
    assert kata_file.read_text() == pristine_01()
    kata_file.write_text(kata_file.read_text() + "\n# my work\n")
    refused = kata("stubs", "01", "--root", root)
    assert refused.exit_code == 1 and "refused" in refused.output and "tensor.py" in refused.output
    assert kata_file.read_text().endswith("# my work\n")
    assert kata("stubs", "01", "--check", "--root", root).exit_code == 0
    assert kata("stubs", "01", "--check", "--strict", "--root", root).exit_code == 1
    assert kata("stubs", "01", "--force", "--root", root).exit_code == 0
    assert kata_file.read_text() == pristine_01()


def test_milestone_command_unknown_unavailable_and_locked(tmp_path, course_in_progress):
    assert kata("milestone", "nope").exit_code == 2
    cur = curriculum.load()
    _, unavailable = course_in_progress
    result = kata("milestone", unavailable.slug)
    assert result.exit_code == 2 and "not yet available" in result.output
    available = next((m for m in cur.milestones if m.is_available()), None)
    if available is not None:
        katas = make_checkout(tmp_path, pristine_01())
        result = kata("milestone", str(available.year), "--katas", katas)
        assert result.exit_code == 1 and "locked" in result.output


def test_grade_milestone_selection_takes_slugs_or_years_and_names_unknown_ones():
    import click

    from grading import cli as cli_module

    assert cli_module._milestone_slugs(None) is None
    assert cli_module._milestone_slugs("lenet, 1986") == ["lenet", "mnist-mlp"]
    with pytest.raises(click.BadParameter, match="no milestone 'alexnet'"):
        cli_module._milestone_slugs("1957,alexnet")
