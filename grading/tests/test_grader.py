"""The grading pipeline against good, pristine and hostile learner checkouts.

Each hostile kata must be reported as failing for *its* module with the right reason, the
other module's result must survive, the learner's files must be untouched, and the run must
end within its limits.
"""

from __future__ import annotations

import json
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from _katas import M1, M2, TIMEOUT, VARIANTS, make_checkout, options, pristine_01, snapshot
from grading import curriculum, grade, integrity, reports, runner, sandbox

SCHEMA = json.loads((curriculum.PROJECT_ROOT / "grading" / "schemas" / "gradescope_results.schema.json").read_text())


def _grade(tmp_path: Path, variant: str, *, with_02: bool = True, **overrides):
    source = VARIANTS[variant].replace("{tag}", tmp_path.name)
    katas = make_checkout(tmp_path, source, with_02=with_02)
    before = snapshot(katas)
    modules = [1, 2] if with_02 else [1]
    started = time.monotonic()
    result = grade.grade_submission(katas, options(modules=modules, **overrides))
    elapsed = time.monotonic() - started
    assert snapshot(katas) == before, "the grader (or the kata) modified the learner's folder"
    assert elapsed < TIMEOUT * len(modules) + 30, f"grading took {elapsed:.0f} s, more than its limits"
    by_key = {m["key"]: m for m in result["modules"]}
    if with_02:
        m2 = by_key[M2.key]
        assert m2["status"] == "passed", f"module 02 lost its result: {m2['reason']}"
        assert m2["points"] == M2.points
    return result, by_key[M1.key]


def test_reference_copy_passes_with_thresholds_and_hashes(tmp_path):
    result, m1 = _grade(tmp_path, "passing", with_02=False, thresholds=True)
    assert m1["status"] == "passed" and m1["reason"] == ""
    assert m1["checks_passed"] == m1["checks_total"] > 0
    assert [t["passed"] for t in m1["thresholds"]] == [True, True], m1["thresholds"]
    assert m1["points"] == M1.points
    kata = tmp_path / "katas" / M1.key / "tensor.py"
    assert result["integrity"]["kata_sha256"] == {f"{M1.key}/tensor.py": integrity.sha256_file(kata)}
    assert result["integrity"]["learner_files_unchanged"] is True
    assert result["score"] == result["max_score"] == M1.points


def test_pristine_stub_is_failing_not_implemented_not_a_crash(tmp_path):
    katas = make_checkout(tmp_path, pristine_01())
    result = grade.grade_submission(katas, options())
    m1 = result["modules"][0]
    assert m1["status"] == "failing" and m1["points"] == 0
    assert m1["reason"].startswith("not implemented")
    # Run for real: every check fails with "not implemented yet", none as a crash.
    result = grade.grade_submission(katas, options(run_pristine=True))
    m1 = result["modules"][0]
    assert m1["status"] == "failing" and m1["points"] == 0 and m1["reason"] == ""
    assert m1["checks_total"] > 0 and m1["checks_passed"] == 0
    for check in m1["checks"]:
        assert check["message"].startswith("not implemented yet: "), check
        assert "(katas/01_tensor/tensor.py)" in check["message"]


@pytest.mark.parametrize(
    "variant, expected",
    [
        ("hang", "timeout after"),
        ("hang_at_import", "timeout after"),
        ("segfault", "crashed with signal SIGSEGV"),
        ("exit_at_import", "exited early with code 0"),
        ("system_exit_at_import", "import error in katas/01_tensor/tensor.py, line"),
        ("syntax_error", "import error in katas/01_tensor/tensor.py, line"),
        ("raises_at_import", "RuntimeError: boom at import"),
    ],
)
def test_hostile_kata_fails_its_module_with_the_reason(tmp_path, variant, expected):
    limit = 12.0 if variant.startswith("hang") else TIMEOUT
    result, m1 = _grade(tmp_path, variant, timeout=limit)
    assert m1["status"] == "failing"
    assert expected in m1["reason"], m1["reason"]
    # A crash in one op fails the checks that reach it; the worker restarts for the others.
    assert m1["points"] == 0 or (variant == "segfault" and m1["points"] < M1.points)
    if variant == "syntax_error":
        assert "SyntaxError" in m1["reason"]
    if variant.startswith("hang"):
        assert m1["duration"] < limit + 15


def test_unbounded_allocation_hits_the_memory_limit_only_in_its_checks(tmp_path):
    result, m1 = _grade(tmp_path, "allocate", memory=1024**3)
    # Either the checks that add fail with MemoryError and the others pass, or the check
    # process itself breaks down once memory is exhausted: both are this module's failure.
    assert m1["status"] == "failing"
    assert "memory" in m1["reason"].lower(), m1["reason"]
    assert m1["checks_passed"] < m1["checks_total"]


def test_printing_megabytes_does_not_flood_the_grader(tmp_path):
    result, m1 = _grade(tmp_path, "prints")
    assert m1["status"] == "passed", m1["reason"]
    assert len(m1.get("output_tail", "")) <= 10_000


def test_partially_correct_kata_gets_proportional_points(tmp_path):
    result, m1 = _grade(tmp_path, "partial")
    assert m1["status"] == "failing" and m1["reason"] == ""
    failing = [c for c in m1["checks"] if c["outcome"] != "passed"]
    assert failing and all("negation" in c["id"] for c in failing), failing
    assert m1["checks_passed"] == m1["checks_total"] - len(failing)
    share = M1.points - M1.threshold_points
    assert m1["points"] == round(share * m1["checks_passed"] / m1["checks_total"], 2)


@pytest.mark.parametrize(
    "variant, fragment",
    [
        ("imports_torch", "imports torch"),
        ("ctypes_segfault", "imports ctypes"),
        ("os_exit", "calls os._exit()"),
        ("writes_outside", "opens a file outside"),
    ],
)
def test_static_check_rejects_and_never_runs(tmp_path, variant, fragment):
    result, m1 = _grade(tmp_path, variant)
    assert m1["status"] == "rejected" and m1["points"] == 0
    assert fragment in m1["reason"], m1["reason"]
    assert not Path(f"/tmp/kata-evil-{tmp_path.name}.txt").exists()


def test_slow_op_misses_its_threshold_and_says_by_how_much(tmp_path):
    katas = make_checkout(tmp_path, VARIANTS["slow_add"])
    result = grade.grade_submission(katas, options(thresholds=True))
    m1 = result["modules"][0]
    assert m1["status"] == "passed"
    by_name = {t["name"]: t for t in m1["thresholds"]}
    assert by_name["add_vs_numpy"]["passed"] is False
    assert "over the bound" in by_name["add_vs_numpy"]["message"]
    assert by_name["matmul_vs_numpy"]["passed"] is True
    assert m1["points"] == M1.points - by_name["add_vs_numpy"]["points"]


# -- outputs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_result(tmp_path_factory):
    """A result with a passing module 01, a failing module 02 and milestones (locked / n/a)."""
    base = tmp_path_factory.mktemp("mixed")
    katas = make_checkout(base, VARIANTS["passing"], with_02=True)
    (katas / M2.key / "activations.py").write_text("raise ImportError('not today')\n")
    return grade.grade_submission(katas, options(modules=[1, 2], milestones=True))


def test_points_add_up(mixed_result):
    r = mixed_result
    modules_points = sum(m["points"] for m in r["modules"])
    milestone_points = sum(s["points"] for s in r["milestones"])
    assert r["score"] == pytest.approx(modules_points + milestone_points)
    counted = [m for m in r["modules"] if m["available"]] + [s for s in r["milestones"] if s["available"]]
    assert r["max_score"] == sum(x["points_max"] for x in counted)
    cur = curriculum.load()
    assert r["curriculum_max_score"] == sum(m.points for m in cur.modules) + sum(s.points for s in cur.milestones)
    for m in cur.modules:  # threshold points are part of the module's points
        assert m.threshold_points < m.points
    gs = reports.gradescope(r)
    assert sum(t["score"] for t in gs["tests"]) == pytest.approx(gs["score"])
    assert sum(t["max_score"] for t in gs["tests"]) == pytest.approx(gs["max_score"])


def test_milestones_are_locked_or_not_available_never_faked(mixed_result):
    for s in mixed_result["milestones"]:
        milestone = curriculum.load().milestone(s["slug"])
        if not milestone.is_available():
            assert s["status"] == "not_available" and s["points"] == 0
        elif 2 in milestone.requires:
            assert s["status"] == "locked" and s["points"] == 0  # module 02 fails
            assert "02_activations" in s["message"]
        else:  # only needs module 01, which passes: it really ran, on the learner's module
            assert s["status"] in ("passed", "missed", "error")
            assert s["assembly"]["from_learner"] == ["01_tensor"] and s["assembly"]["from_reference"] == []
            assert (s["points"] > 0) == (s["status"] == "passed")


def test_gradescope_results_validate_against_the_schema(mixed_result, tmp_path):
    gs = reports.gradescope(mixed_result)
    jsonschema.validate(gs, SCHEMA)
    path = tmp_path / "results.json"
    reports.write_json(gs, path)
    jsonschema.validate(json.loads(path.read_text()), SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**gs, "tests": [{**gs["tests"][0], "status": "ok"}]}, SCHEMA)


def test_junit_and_reports_render(mixed_result, tmp_path):
    root = ET.fromstring(reports.junit_xml(mixed_result).split("\n", 1)[1])
    assert root.tag == "testsuites"
    names = [s.get("name") for s in root.iter("testsuite")]
    assert M1.key in names and "milestones" in names
    failures = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert any(c.get("classname") == M2.key for c in failures)
    html = reports.write_report(mixed_result, tmp_path / "html").read_text()
    assert "data:image/png;base64," in html and M1.key in html
    md = reports.write_report(mixed_result, tmp_path / "md", "md")
    assert (tmp_path / "md" / "points.png").stat().st_size > 1000 and "| 01_tensor |" in md.read_text()


def test_a_broken_module_import_is_its_own_failure(mixed_result):
    m2 = next(m for m in mixed_result["modules"] if m["key"] == M2.key)
    assert m2["status"] == "failing" and "ImportError: not today" in m2["reason"]
    m1 = next(m for m in mixed_result["modules"] if m["key"] == M1.key)
    assert m1["status"] == "passed"


# -- assembly for milestones ---------------------------------------------------------------


def test_milestone_assembly_locks_or_lends_the_reference():
    cur = curriculum.load()
    ms = cur.milestone("mnist-mlp")
    modules = {n: {"status": "passed"} for n in ms.requires}
    modules[5] = {"status": "failing"}
    locked = grade.milestone_assembly(ms, modules, grade.GradeOptions())
    available = all(cur.module(n).is_available() for n in ms.requires)
    assert any("05_autograd" in x for x in locked["locked_by"])
    lent = grade.milestone_assembly(ms, modules, grade.GradeOptions(fallback="reference"))
    if available:
        assert lent["locked_by"] == [] and lent["from_reference"] == ["05_autograd"]
        assert "05=reference" in lent["impl"] and "01_tensor" in lent["from_learner"]


def test_isolated_module_impl_uses_reference_for_modules_not_passed():
    m5 = curriculum.load().module(5)
    impl = grade.module_impl(m5, grade.GradeOptions(), passed={1, 2})
    assert impl.startswith("katas,") and "03=reference" in impl and "01=reference" not in impl
    assert "05=" not in impl
    assert grade.module_impl(m5, grade.GradeOptions(impl="reference"), set()) == "reference"


# -- milestone runner: verdict from the metric in the grader's file, never the exit code ----------


def _fake_milestone(tmp_path: Path, body: str):
    script = tmp_path / "fake_milestone.py"
    script.write_text("import argparse, json, sys\np = argparse.ArgumentParser()\n"
                      "for f in ('--impl', '--out-dir', '--result-json', '--seed', '--data-dir'): p.add_argument(f)\n"
                      "a = p.parse_args()\n" + body)
    return curriculum.Milestone(slug="fake", year=1900, title="fake", script=str(script), requires=(1,),
                                metric="acc", target=0.9, points=5, timeout=20)


@pytest.mark.parametrize(
    "body, status",
    [
        ("json.dump({'metric': 'acc', 'value': 0.95}, open(a.result_json, 'w'))", "passed"),
        ("json.dump({'metric': 'acc', 'value': 0.5, 'passed': True}, open(a.result_json, 'w'))", "missed"),
        ("sys.exit(0)", "error"),
        ("json.dump({'metric': 'loss', 'value': 0.99}, open(a.result_json, 'w'))", "error"),
        ("json.dump({'metric': 'acc', 'value': float('nan')}, open(a.result_json, 'w'))", "error"),
        ("import time\ntime.sleep(60)", "error"),
    ],
)
def test_milestone_passes_only_on_its_metric(tmp_path, body, status):
    ms = _fake_milestone(tmp_path, body)
    result = runner.run_milestone(ms, None, "reference", out_dir=tmp_path / "out", timeout=5)
    assert result.status == status, result.message
    if "sleep" in body:
        assert "timeout after 5 s" in result.message


# -- sandbox -------------------------------------------------------------------------------


def test_sandbox_kills_the_whole_process_group_on_timeout(tmp_path):
    marker = tmp_path / "grandchild-alive"
    grandchild = f"import time; time.sleep(3); open({str(marker)!r}, 'w')"
    code = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {grandchild!r}])\ntime.sleep(60)\n"
    started = time.monotonic()
    outcome = sandbox.run([sys.executable, "-c", code], env={}, cwd=tmp_path, timeout=1)
    assert outcome.timed_out and time.monotonic() - started < 10
    assert "timeout after 1 s" in outcome.describe()
    time.sleep(3.5)
    assert not marker.exists(), "a grandchild survived the timeout"


def test_sandbox_caps_output(tmp_path):
    code = "import sys\nfor _ in range(100): sys.stdout.write('y' * 1_000_000)\n"
    outcome = sandbox.run([sys.executable, "-c", code], env={}, cwd=tmp_path, timeout=30, output_cap=1000)
    assert outcome.returncode == 0 and outcome.output_bytes == 100_000_000
    assert outcome.output_truncated and len(outcome.output) < 3000


def test_sandbox_memory_limit_and_signals(tmp_path):
    code = "x = bytearray(3 * 1024**3)"
    outcome = sandbox.run([sys.executable, "-c", code], env={}, cwd=tmp_path, timeout=30, memory=1024**3)
    assert outcome.returncode == 1 and "MemoryError" in outcome.output
    code = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    outcome = sandbox.run([sys.executable, "-c", code], env={}, cwd=tmp_path, timeout=30)
    assert outcome.signal_name == "SIGSEGV" and "crashed with signal SIGSEGV" in outcome.describe()
    outcome = sandbox.run(["/nonexistent/binary"], env={}, cwd=tmp_path, timeout=5)
    assert outcome.describe().startswith("could not start")


# -- the verdict logic: the JUnit file is cross-checked ------------------------------------------


def test_verdict_distrusts_short_or_inconsistent_results():
    expected = ("t.py::a", "t.py::b")
    ok = runner.CheckResult("t.py::a", "passed")
    outcome = sandbox.Outcome(returncode=0, duration=1.0)
    run = runner._verdict(M1, "katas", expected, {"t.py::a": ok}, [], outcome, "", None)
    assert run.status == "failing" and run.passed == 0 and "inconsistent" in run.reason  # earns nothing
    extra = {**{"t.py::a": ok, "t.py::b": ok}, "t.py::forged": ok}
    run = runner._verdict(M1, "katas", expected, extra, [], outcome, "", None)
    assert run.passed == 0 and "not in the course's list" in run.reason
    run = runner._verdict(M1, "katas", expected, {}, [], outcome, "no check results were written", "t.py::b")
    assert run.status == "failing" and "exited early with code 0" in run.reason and "t.py::b" in run.reason
    both = {"t.py::a": ok, "t.py::b": runner.CheckResult("t.py::b", "passed")}
    run = runner._verdict(M1, "katas", expected, both, [], sandbox.Outcome(returncode=-11, duration=1), "", None)
    assert run.status == "failing" and run.passed == 0 and "SIGSEGV" in run.reason
    assert runner._verdict(M1, "katas", expected, both, [], outcome, "", None).ok
