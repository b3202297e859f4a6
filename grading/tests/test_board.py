"""The board, hints and the learner's loop (issue 13, section 3).

* one rule for prerequisites: never "locked"; `kata check`, `kata grade`, a bare `pytest checks/NN`
  and the board all lend the reference for unpassed prerequisites and say so;
* `kata hint` chooses from what fails (no counter), `--all`, and an honest fallback;
* `kata watch` follows the module whose file changed;
* milestone plots in one folder; the board's points total; reports show 0/0 for what is not built.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from _katas import M1, M2, REFERENCE_01, make_checkout, pristine_01
from grading import cli, curriculum, grade, hints, reports, state
from grading.cli import main

ROOT = curriculum.PROJECT_ROOT
CUR = curriculum.load()
AVAILABLE = [m for m in CUR.modules if m.is_available()]


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    monkeypatch.setenv("KATA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "kata-smoke")
    monkeypatch.delenv("TINYTORCH_KATAS", raising=False)
    monkeypatch.delenv("TINYTORCH_IMPL", raising=False)


def kata(*args):
    return CliRunner(env={"COLUMNS": "300"}).invoke(main, [str(a) for a in args], catch_exceptions=False)


def squash(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace() and ch not in "│┃")


def _entry(module, status="failing", passed=3, total=4, lent=None, impl="katas", katas=None):
    from grading import integrity

    return {"key": module.key, "status": status, "checks_passed": passed, "checks_total": total, "reason": "",
            "impl": impl, "kata_files": integrity.kata_hashes(katas, module) if katas else {},
            "checks": [], **({"lent": lent} if lent is not None else {})}


# -- one rule for prerequisites ----------------------------------------------------------


def test_span_names_runs_of_modules():
    assert state.span(["02", "03", "04"]) == "02-04"
    assert state.span(["01", "03", "04", "07"]) == "01, 03-04, 07"
    assert state.span(["05"]) == "05"
    assert state.span([]) == ""


def test_check_grade_and_bare_pytest_lend_the_same_prerequisites(tmp_path):
    """For every module, with nothing passed: the three entry points lend exactly its prerequisites,
    theirs included (module 09 lists 01, 03, 05; its checks also run 02 through 03)."""
    from checks.harness import plugin

    assert CUR.requirements(CUR.module(9)) == (1, 2, 3, 4, 5)
    for module in AVAILABLE:
        expected = [f"{n:02d}" for n in CUR.requirements(module) if CUR.module(n).has_reference()]
        graded = state.lent_prerequisites(module, grade.module_impl(module, grade.GradeOptions(), set()))
        config = types.SimpleNamespace(args=[str(module.checks_dir())])
        bare = state.lent_prerequisites(module, plugin.lend_like_kata_check(config))
        assert graded == expected and bare == expected, module.key
        if expected:
            assert config._kata_lent == state.span(expected)


def test_bare_pytest_lends_unpassed_prerequisites_and_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYTORCH_", "PYTEST_"))}
    env["KATA_STATE_DIR"] = str(tmp_path / "state")
    module = next(m for m in AVAILABLE if len(m.prerequisites) >= 2)
    out = subprocess.run([sys.executable, "-m", "pytest", str(module.checks_dir().relative_to(ROOT)), "--co", "-p",
                          "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300).stdout
    lent = [f"{n:02d}" for n in module.prerequisites]
    assert "tinytorch implementation: katas," + ",".join(f"{n}=reference" for n in lent) in out
    assert f"checked with {state.span(lent)} lent from the reference" in out
    explicit = subprocess.run([sys.executable, "-m", "pytest", str(module.checks_dir().relative_to(ROOT)), "--co",
                               "-p", "no:cacheprovider", "--impl", "katas"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300).stdout
    assert "tinytorch implementation: katas (katas from" in explicit and "lent from" not in explicit


def test_the_board_never_says_locked_and_names_what_was_lent(tmp_path):
    katas = make_checkout(tmp_path, pristine_01(), with_02=True)
    board = state.module_states(katas)
    assert all(s.status != "locked" for s in board.values())
    assert board[2].status in ("in_progress", "not_started")
    assert board[2].detail.endswith("will be checked with 01 lent from the reference (not passed yet)")
    # a check run of 02 while 01 is a stub: recorded with what it was checked with
    state.record_module(katas, _entry(M2, "passed", 4, 4, lent=["01"], katas=katas))
    board = state.module_states(katas)
    assert board[2].status == "passed"
    assert board[2].detail == "checked with 01 lent from the reference"
    # a `kata grade` entry names the lending in its impl string: the board reads it from there
    state.record_module(katas, _entry(M2, "failing", 2, 4, impl="katas,01=reference,03=reference", katas=katas))
    assert state.module_states(katas)[2].detail == "checked with 01 lent from the reference"
    out = kata("status", "--katas", katas).output
    assert "checked with 01 lent from the reference" in out
    module_rows = out.split("Milestones")[0]
    assert "locked" not in module_rows


def test_kata_check_lends_records_and_the_board_agrees(tmp_path):
    katas = make_checkout(tmp_path, pristine_01(), with_02=True)
    with cli.console.capture() as captured:
        run, entry = cli.run_module_checks(M2, katas, "katas", select="test_gelu_rejects", timeout=60)
    assert "Checked with 01 lent from the reference" in captured.get()
    assert run.ok, run.reason
    assert entry["lent"] == ["01"]
    state.record_module(katas, entry)
    board = state.module_states(katas)
    assert board[2].status == "passed" and board[2].detail == "checked with 01 lent from the reference"


# -- points on the board, 0/0 in reports ---------------------------------------------------


def test_board_shows_points_and_a_total(tmp_path):
    katas = make_checkout(tmp_path, REFERENCE_01)
    state.record_module(katas, _entry(M1, "failing", 3, 4, katas=katas))
    expected = state.checks_points(M1, 3, 4)
    assert state.module_states(katas)[1].points == expected
    out = kata("status", "--katas", katas).output
    assert f"{expected:g}/{M1.points:g}" in out
    available = sum(m.points for m in AVAILABLE) + sum(s.points for s in CUR.milestones if s.is_available())
    assert f"Points: {expected:g}/{available:g} available now" in out
    unavailable = [m for m in CUR.modules if not m.is_available()]
    if unavailable:
        row = next(line for line in out.splitlines() if unavailable[0].title in line)
        assert "0/0" in row


def test_rejected_results_earn_no_points_on_the_board(tmp_path):
    katas = make_checkout(tmp_path, REFERENCE_01)
    state.record_module(katas, _entry(M1, "rejected", 4, 4, katas=katas))
    assert state.module_states(katas)[1].points == 0.0


def _result_with_unavailable_items() -> dict:
    # A course in progress: its last module and milestone not built yet (whatever the tree has today).
    unavailable, ms = CUR.modules[-1], CUR.milestones[-1]
    return {
        "score": 5.0, "max_score": 10.0, "duration": 1.0, "submission": "x", "impl": "katas", "graded_at": "now",
        "fallback": None, "schema": grade.SCHEMA,
        "integrity": {"kata_sha256": {}, "learner_files_unchanged": True},
        "modules": [{"key": M1.key, "title": M1.title, "status": "failing", "available": True, "checks_passed": 1,
                     "checks_total": 2, "points": 5.0, "points_max": 10.0, "reason": "", "checks": []},
                    {"key": unavailable.key, "title": unavailable.title, "status": "not_available",
                     "available": False, "points": 0.0, "points_max": unavailable.points, "reason": "not yet available",
                     "checks": []}],
        "milestones": [{"slug": ms.slug, "year": ms.year, "title": ms.title, "status": "not_available",
                        "available": False, "points": 0.0, "points_max": ms.points, "message": "not yet available"}],
    }


def test_reports_show_not_yet_available_items_as_zero_of_zero():
    result = _result_with_unavailable_items()
    unavailable, ms = result["modules"][1], result["milestones"][0]
    md = reports.markdown_report(result)
    row = next(line for line in md.splitlines() if line.startswith(f"| {unavailable['key']} "))
    assert "| 0/0 |" in row and f"0/{unavailable['points_max']:g}" not in row
    ms_row = next(line for line in md.splitlines() if line.startswith(f"| {ms['year']} {ms['slug']} "))
    assert "| 0/0 |" in ms_row
    page = reports.html_report(result)
    assert page.count("<td>0/0</td>") >= 2
    assert reports.module_line(unavailable).startswith("not yet available: 0/0")
    table = cli._grade_table(result)
    with cli.console.capture() as captured:
        cli.console.print(table)
    line = next(l for l in captured.get().splitlines() if unavailable["key"] in l)
    assert "0/0" in line


# -- milestone plots: one folder ------------------------------------------------------


def test_kata_milestone_and_kata_grade_write_plots_to_the_same_folder(tmp_path, monkeypatch):
    katas = make_checkout(tmp_path, REFERENCE_01)
    seen = {}

    def fake_run_milestone(ms, katas_dir, impl, *, out_dir, **kwargs):
        seen["milestone"] = Path(out_dir)
        from grading.runner import MilestoneRunResult

        return MilestoneRunResult(ms.slug, "missed", ms.metric, ms.target, 0.0, "fake")

    def fake_grade(katas_dir, options, on_event=None):
        seen["grade"] = Path(options.out_dir)
        return _result_with_unavailable_items() | {"submission": str(katas_dir)}

    monkeypatch.setattr(cli.runner, "run_milestone", fake_run_milestone)
    monkeypatch.setattr(cli._grade, "grade_submission", fake_grade)
    milestone = next(s for s in CUR.milestones if s.is_available())
    kata("milestone", milestone.slug, "--impl", "reference", "--katas", katas)
    kata("grade", "--katas", katas, "--no-milestones")
    assert seen["milestone"] == state.milestones_dir() / milestone.slug
    assert seen["grade"] == state.milestones_dir()
    assert state.milestones_dir() == state.cache_dir() / "milestones"


# -- hints -------------------------------------------------------------------------------

README = """# Module 01

## Hints

- `test_python_data_becomes_float32`: start with np.asarray(data).
- `test_python_data_becomes_float32`: then pick float32 for Python data.
- `test_negation`: negate the data.
- A general hint.
"""


def test_hints_are_chosen_from_what_fails_not_from_a_counter(tmp_path):
    katas = make_checkout(tmp_path, pristine_01(), readme=README)
    failing = ["test_tensor.py::test_python_data_becomes_float32", "test_tensor.py::test_negation[a]"]
    first = hints.choose(M1, failing, katas)
    again = hints.choose(M1, failing, katas)
    assert first == again and len(first) == 1
    assert first[0].text == "start with np.asarray(data)." and (first[0].index, first[0].count) == (1, 3 + bool(
        hints.check_docstring(M1, failing[0])))
    # fixing the first check moves the hint on, because what fails changed
    assert hints.choose(M1, failing[1:], katas)[0].text == "negate the data."
    everything = hints.choose(M1, failing, katas, show_all=True)
    texts = [h.text for h in everything]
    assert texts[:2] == ["start with np.asarray(data).", "then pick float32 for Python data."]
    assert "negate the data." in texts and {h.check for h in everything} == {"test_python_data_becomes_float32",
                                                                              "test_negation"}
    assert not (state.cache_dir() / "hints.json").exists()


def test_kata_hint_cli_is_stable_and_has_all(tmp_path):
    katas = make_checkout(tmp_path, pristine_01(), readme=README)
    one = kata("hint", "01", "--katas", katas).output
    two = kata("hint", "01", "--katas", katas).output
    assert one == two
    every = kata("hint", "01", "--katas", katas, "--all").output
    assert "then pick float32 for Python data." in every and "negate the data." in every
    assert "kata hint 01 --all" in one


def test_fallback_hint_for_an_implemented_kata_does_not_mention_a_todo(tmp_path):
    katas = make_checkout(tmp_path, REFERENCE_01, readme="# no hints\n")
    check = "test_tensor.py::test_no_hint_written_for_this[x]"
    assert not hints.still_todo(M1, katas)
    implemented = hints.choose(M1, [check], katas)[0]
    assert implemented.source == "fallback"
    assert "NotImplementedError" not in implemented.text and "TODO" not in implemented.text.replace("no TODO", "")
    assert f"kata check 01 -k test_no_hint_written_for_this -v" in implemented.text
    # a failure message that says "not implemented" (this check still reaches a TODO) gets the TODO advice
    todo = hints.choose(M1, [check], katas, messages={check: "not implemented yet: Tensor.sum"})[0]
    assert "raise NotImplementedError" in todo.text
    stub = make_checkout(tmp_path / "stub", pristine_01(), readme="# no hints\n")
    assert hints.still_todo(M1, stub)
    assert "raise NotImplementedError" in hints.choose(M1, [check], stub)[0].text


# -- watch -------------------------------------------------------------------------------


def test_watch_follows_the_module_whose_file_changed(tmp_path):
    katas = make_checkout(tmp_path, REFERENCE_01, with_02=True)
    before = cli._all_mtimes(katas)
    assert cli.changed_module(before, cli._all_mtimes(katas)) is None
    path = katas / M2.key / M2.files[0]
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cli.changed_module(before, cli._all_mtimes(katas)).key == M2.key
    # a new file in a module folder counts too; the newest change wins
    before = cli._all_mtimes(katas)
    newer = katas / M1.key / "helpers.py"
    newer.write_text("x = 1\n")
    os.utime(newer, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5 * 10**9))
    assert cli.changed_module(before, cli._all_mtimes(katas)).key == M1.key


def test_watch_loop_runs_the_changed_module_not_the_first_unpassed(tmp_path, monkeypatch):
    katas = make_checkout(tmp_path, pristine_01(), with_02=True)  # 01 unpassed: the old loop re-ran 01
    ran = []

    def fake_checks(module, katas_dir, impl, **kwargs):
        ran.append(module.key)
        if len(ran) == 2:
            raise KeyboardInterrupt
        from grading.runner import ModuleRun

        return ModuleRun(module.key, impl, "failing", 0, 1), {}

    def fake_sleep(seconds):
        path = katas / M2.key / M2.files[0]
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    monkeypatch.setattr(cli, "run_module_checks", fake_checks)
    monkeypatch.setattr(cli, "show_run", lambda *a, **k: None)
    monkeypatch.setattr(cli.time, "sleep", fake_sleep)
    out = kata("watch", "--katas", katas, "--interval", "0").output
    assert ran == [M1.key, M2.key], ran
    assert "stopped watching" in out
