"""A milestone's `goal`: "max" (higher is better, the default) or "min" (lower is better, a loss).

One comparison (curriculum.Milestone.passes) decides in the harness (milestones/_harness.py), the
grader (grading/runner.py) and the README table (grading/docs.py); an unfinished kata, which
measures nothing, never passes in either direction.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pytest

from grading import curriculum, docs, runner

MILESTONES_DIR = curriculum.PROJECT_ROOT / "milestones"

MANIFEST_TAIL = """
[[milestones]]
slug = "loss"
year = 2000
title = "a loss"
script = "milestones/none.py"
requires = [1]
metric = "val_loss"
{goal}
target = 1.75
points = 1
"""


def _manifest(goal_line: str) -> str:
    """The real manifest's modules and tiers plus one milestone with the given goal line."""
    text = curriculum.MANIFEST.read_text(encoding="utf-8")
    head = text[: text.index("[[milestones]]")]
    return head + MANIFEST_TAIL.format(goal=goal_line)


def _milestone(goal: str, target: float, script: Path | str = "none.py") -> curriculum.Milestone:
    return curriculum.Milestone(slug="fake", year=1900, title="fake", script=str(script), requires=(1,),
                                metric="m", target=target, points=5, timeout=60, goal=goal)


# -- the manifest ------------------------------------------------------------------------------


@pytest.mark.parametrize("goal_line, goal", [("", "max"), ('goal = "max"', "max"), ('goal = "min"', "min")])
def test_curriculum_parses_goal_with_max_as_default(goal_line, goal):
    parsed = curriculum.parse(_manifest(goal_line)).milestone("loss")
    assert parsed.goal == goal, f"goal line {goal_line!r} parsed as {parsed.goal!r}, expected {goal!r}"


def test_an_unknown_goal_is_rejected_by_name():
    expected = r"milestone loss: goal must be one of \('max', 'min'\), got 'lowest'"
    with pytest.raises(curriculum.CurriculumError, match=expected):
        curriculum.parse(_manifest('goal = "lowest"'))


def test_the_transformer_milestone_minimises_its_validation_loss():
    ms = curriculum.load().milestone("transformer")
    assert (ms.metric, ms.goal) == ("val_loss", "min"), f"transformer milestone: {ms.metric}, goal {ms.goal}"
    others = [m.slug for m in curriculum.load().milestones if m.slug != "transformer" and m.goal != "max"]
    assert others == [], f"accuracy-style milestones must keep goal 'max': {others}"


# -- the comparison ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "goal, value, passed",
    [
        ("max", 0.96, True), ("max", 0.95, True), ("max", 0.9499, False), ("max", 0.0, False),
        ("min", 1.70, True), ("min", 1.75, True), ("min", 1.7501, False), ("min", 4.17, False),
        ("min", 0.0, True),  # a measured loss of 0 is a (suspicious but real) pass; only "not measured" never is
    ],
)
def test_passes_compares_in_the_goal_direction(goal, value, passed):
    target = 0.95 if goal == "max" else 1.75
    assert _milestone(goal, target).passes(value) is passed, f"goal {goal}: {value} vs target {target}"


@pytest.mark.parametrize("goal", ["max", "min"])
@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, True, "1.0"])
def test_nothing_measured_or_not_finite_never_passes(goal, value):
    assert _milestone(goal, 1.0).passes(value) is False, f"goal {goal}: {value!r} must never pass"


def test_target_text_says_the_direction():
    assert _milestone("max", 0.95).target_text() == "m >= 0.95"
    assert _milestone("min", 1.75).target_text() == "m <= 1.75"
    assert _milestone("min", 1.75).target_text(unicode=True) == "m ≤ 1.75"


def test_readme_table_shows_the_direction():
    table = docs.render()
    for ms in curriculum.load().milestones:
        assert f"| {ms.target_text(unicode=True)} |" in table, f"README row of {ms.slug} lacks {ms.target_text(True)!r}"


# -- the harness: finish() and the unfinished-kata path --------------------------------------


def _harness():
    sys.path.insert(0, str(MILESTONES_DIR))
    try:
        import _harness
    finally:
        sys.path.remove(str(MILESTONES_DIR))
    return _harness


def _run(tmp_path: Path, goal: str, target: float):
    args = argparse.Namespace(seed=0, out_dir=str(tmp_path / "out"), result_json=str(tmp_path / "result.json"))
    return _harness().MilestoneRun(_milestone(goal, target), args)


@pytest.mark.parametrize("goal, target, value, code", [("min", 1.75, 1.6, 0), ("min", 1.75, 1.9, 1),
                                                        ("max", 0.95, 0.97, 0), ("max", 0.95, 0.5, 1)])
def test_harness_finish_honours_the_goal(tmp_path, capsys, goal, target, value, code):
    assert _run(tmp_path, goal, target).finish(value, {"note": 1}) == code
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["value"], result["goal"], result["passed"]) == (value, goal, code == 0), result
    assert ("PASSED" if code == 0 else "MISSED") in capsys.readouterr().out


def test_harness_script_bound_keeps_the_goal(tmp_path):
    run = _run(tmp_path, "min", 1.75)
    assert run.finish(2.0, target=2.2) == 0, "2.0 <= the recipe's bound 2.2 must pass"
    assert json.loads((tmp_path / "result.json").read_text())["target"] == 2.2
    assert run.finish(2.0) == 1, "2.0 > the manifest's 1.75 must miss"


@pytest.mark.parametrize("goal", ["max", "min"])
def test_harness_unfinished_kata_writes_no_value_and_never_passes(tmp_path, capsys, goal):
    code = _run(tmp_path, goal, 1.0).not_implemented(NotImplementedError("GPT.forward"))
    result = json.loads((tmp_path / "result.json").read_text())
    assert code == 1 and result["value"] is None and result["passed"] is False, result
    assert result["details"]["error"] == "NotImplementedError: GPT.forward"
    out = capsys.readouterr().out
    assert "not implemented yet" in out and "MISSED" in out and "not measured" in out, out


# -- the grader's verdict ----------------------------------------------------------------------


def _script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake_milestone.py"
    script.write_text("import argparse, json, sys\np = argparse.ArgumentParser()\n"
                      "for f in ('--impl', '--out-dir', '--result-json', '--seed', '--data-dir'): p.add_argument(f)\n"
                      "a = p.parse_args()\n" + body)
    return script


def _write(result: dict) -> str:
    return f"json.dump({result!r}, open(a.result_json, 'w'))\n"


@pytest.mark.parametrize(
    "goal, target, result, status",
    [
        ("min", 1.75, {"metric": "m", "value": 1.6}, "passed"),
        # the script's own "passed" is ignored; the manifest's goal decides, not the script's "goal"
        ("min", 1.75, {"metric": "m", "value": 1.9, "passed": True, "goal": "min"}, "missed"),
        ("min", 1.75, {"metric": "m", "value": 1.6, "goal": "max"}, "passed"),
        ("max", 0.95, {"metric": "m", "value": 1.6, "goal": "min"}, "passed"),
        ("max", 0.95, {"metric": "m", "value": 0.5, "goal": "min"}, "missed"),
        ("max", 0.95, {"metric": "m", "value": 0.0}, "missed"),
    ],
)
def test_runner_verdict_follows_the_manifest_goal(tmp_path, goal, target, result, status):
    ms = _milestone(goal, target, _script(tmp_path, _write(result)))
    outcome = runner.run_milestone(ms, None, "reference", out_dir=tmp_path / "out", timeout=30)
    assert outcome.status == status, f"goal {goal}, target {target}, result {result}: {outcome.message}"
    assert ("<=" if goal == "min" else ">=") in outcome.message, outcome.message


@pytest.mark.parametrize("goal", ["max", "min"])
def test_runner_unfinished_kata_is_missed_whatever_the_goal(tmp_path, goal):
    """End to end: a script whose framework raises NotImplementedError, through the real harness hook."""
    body = (f"sys.path.insert(0, {str(MILESTONES_DIR)!r})\n"
            "from _harness import MilestoneRun\nfrom grading import curriculum\n"
            f"ms = curriculum.Milestone(slug='fake', year=1900, title='fake', script='x', requires=(1,), metric='m',"
            f" target=1.0, points=5, timeout=60, goal={goal!r})\n"
            "run = MilestoneRun(ms, argparse.Namespace(seed=0, out_dir=a.out_dir, result_json=a.result_json))\n"
            "run._install_unfinished_kata_hook()\n"
            "raise NotImplementedError('Tensor.sum')\n")
    ms = _milestone(goal, 1.0, _script(tmp_path, body))
    outcome = runner.run_milestone(ms, None, "reference", out_dir=tmp_path / "out", timeout=60)
    assert (outcome.status, outcome.value) == ("missed", None), outcome.message
    assert "not measured: NotImplementedError: Tensor.sum" in outcome.message, outcome.message


@pytest.mark.parametrize("goal", ["max", "min"])
def test_runner_a_missing_value_without_a_reason_is_an_error(tmp_path, goal):
    ms = _milestone(goal, 1.0, _script(tmp_path, _write({"metric": "m", "value": None})))
    outcome = runner.run_milestone(ms, None, "reference", out_dir=tmp_path / "out", timeout=30)
    assert outcome.status == "error" and "no finite 'value'" in outcome.message, outcome.message
