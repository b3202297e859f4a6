"""The capstone leaderboard (grading/leaderboard.py): order per division, ties, invalid and missing
results, the Pareto front (property-tested), escaping of learner names, deterministic output, and
batch grading writing it beside summary.csv (with a fake grader: no real grading runs here)."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, seed
from hypothesis import strategies as st

from _katas import options
from grading import batch, leaderboard
from grading.cli import main

BASE = {"accuracy": 0.9700, "latency_p50_ms": 0.5, "latency_p90_ms": 0.6, "throughput_per_s": 40000.0,
        "size_bytes": 940584, "train_s": 12.0}  # 784-256-128-10 float32: 235,146 parameters
THRESHOLDS = {"max_size_ratio": 0.5, "max_latency_ratio": 0.8, "accuracy_band": 0.01, "open_floor": 0.90}
MACHINE = {"cpus": 2, "numpy": "2.1.0", "blas_threads": 1}
XSS = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    monkeypatch.setenv("KATA_STATE_DIR", str(tmp_path / "state"))


def capstone(status: str, accuracy: float | None, size_ratio: float | None, latency_ratio: float | None,
             reason: str | None = None) -> dict:
    """A capstone result as the harness writes it (capstone spec), measured against BASE."""
    measured = accuracy is not None
    submission = {"accuracy": accuracy,
                  "latency_p50_ms": BASE["latency_p50_ms"] * latency_ratio if measured else None,
                  "latency_p90_ms": BASE["latency_p90_ms"] * latency_ratio if measured else None,
                  "throughput_per_s": BASE["throughput_per_s"] / latency_ratio if measured else None,
                  "size_bytes": round(BASE["size_bytes"] * size_ratio) if measured else None, "train_s": 20.0}
    return {"schema": leaderboard.SCHEMA, "status": status, "reason": reason,
            "points_earned": status == "closed" and (size_ratio <= 0.5 or latency_ratio <= 0.8),
            "submission": submission, "baseline": dict(BASE),
            "ratios": {"latency": latency_ratio, "size": size_ratio,
                       "throughput": 1 / latency_ratio if measured else None},
            "thresholds": dict(THRESHOLDS), "machine": dict(MACHINE)}


def module20(status: str, reason: str = "") -> dict:
    return {"number": 20, "key": "20_capstone", "title": "Capstone", "available": True, "status": status,
            "points": 0.0, "points_max": 20.0, "checks_passed": 3, "checks_total": 9, "reason": reason,
            "checks": [], "thresholds": []}


def grade_json(name: str, cap: dict | None, *, modules: list | None = None, key: bool = True) -> dict:
    """A learner's grade JSON as batch grading writes it (grading/batch.py)."""
    result = {"schema": "test", "submission": f"/subs/{name}/katas", "impl": "katas", "score": 1.0,
              "max_score": 20.0, "duration": 1.0, "integrity": {"kata_sha256": {}},
              "modules": modules if modules is not None else [module20("passed")], "milestones": [],
              "submission_name": name, "output_name": re.sub(r"[^A-Za-z0-9_.-]", "_", name)}
    if key:
        result["capstone"] = cap
    return result


def three_and_failures() -> list[dict]:
    """The issue's three synthetic submissions plus an invalid, a missing and a crashed one."""
    return [
        grade_json("slowpoke", capstone("closed", 0.9700, 1.0, 3.0)),  # the baseline model, slowed 3x
        grade_json("reference", capstone("closed", 0.9690, 0.25, 0.6)),  # quantized + pruned
        grade_json("baseline-copy", capstone("closed", 0.9700, 1.0, 1.0)),  # the baseline itself
        grade_json("torch-user", capstone("invalid", None, None, None,
                                          reason="train crashed: ModuleNotFoundError: No module named 'torch'")),
        grade_json("no-capstone", None, modules=[module20("failing", "3 checks fail")]),
        grade_json("not-selected", None, modules=[], key=False),
        {"submission": "/subs/crasher/katas", "error": "RuntimeError: grader bug", "score": 0, "max_score": 0,
         "submission_name": "crasher", "output_name": "crasher"},
    ]


def pairs(results: list[dict]) -> list[tuple[str, dict]]:
    return [(r["output_name"], r) for r in results]


def md_table(text: str, title: str) -> list[list[str]]:
    """The body rows of the Markdown table under `## title`, cells unescaped of `\\|` only."""
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    assert lines, f"no table under '## {title}' in:\n{section}"
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[1:]]


def test_the_three_synthetic_submissions_in_the_expected_order(tmp_path):
    paths = leaderboard.write(pairs(three_and_failures()), tmp_path, skipped=[(".hidden", "hidden (the name starts with '.')")])
    assert sorted(p.name for p in paths.values()) == ["leaderboard.html", "leaderboard.md", "leaderboard.png"]
    text = paths["md"].read_text()
    closed = md_table(text, "Closed division")
    # The baseline reference row first, then ranked by the better ratio: reference (size 0.25) first;
    # baseline-copy and slowpoke both have best ratio 1.000 (slowpoke's size): the other ratio
    # (latency 1.0 against 3.0) puts the slowed model last.
    assert [r[0] for r in closed] == ["ref", "1", "2", "3"], closed
    assert closed[0][1] == "baseline (reference, median of 4 runs)"
    assert closed[0][2:8] == ["1.000", "1.000", "1.000", "97.00%", "0.500", "940,584"]
    assert [r[1] for r in closed[1:]] == ["reference", "baseline-copy", "slowpoke"]
    ref, copy, slow = closed[1:]
    assert ref[2:10] == ["0.250 (size)", "0.250", "0.600", "96.90%", "0.300", "235,146", "yes", "yes"], ref
    assert copy[2:9] == ["1.000 (size)", "1.000", "1.000", "97.00%", "0.500", "940,584", "no"], copy
    assert slow[2:9] == ["1.000 (size)", "1.000", "3.000", "97.00%", "1.500", "940,584", "no"], slow
    assert copy[9] == "yes" and slow[9] == ""  # slowpoke is dominated by baseline-copy (same size and accuracy)
    assert "(none)" in text.split("## Open division", 1)[1].split("## ", 1)[0]
    invalid = md_table(text, "Invalid submissions")
    assert invalid == [["torch-user", "train crashed: ModuleNotFoundError: No module named 'torch'", "torch-user"]]
    missing = {r[0]: r[1] for r in md_table(text, "No capstone result")}
    assert list(missing) == [".hidden", "crasher", "no-capstone", "not-selected"], missing
    assert missing[".hidden"] == "not graded: hidden (the name starts with '.')"
    assert missing["crasher"] == "grading crashed: RuntimeError: grader bug"
    assert missing["no-capstone"].startswith("module 20 not passed (failing: 3/9 checks") and "3 checks fail" in missing["no-capstone"]
    assert missing["not-selected"] == "module 20 (capstone) was not graded in this run"
    assert "3 closed, 0 open, 1 invalid, 4 without a capstone result." in text
    assert "size ratio \u2264 0.5 or latency ratio \u2264 0.8" in text and "blas\\_threads=1, cpus=2" in text
    page = paths["html"].read_text()
    assert page.index(">reference<") < page.index(">baseline-copy<") < page.index(">slowpoke<")
    assert ">torch-user<" in page and "grading crashed: RuntimeError: grader bug" in page
    assert "data:image/png;base64," in page
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ties_share_a_rank_and_are_listed_by_name(tmp_path):
    results = [grade_json("zed", capstone("closed", 0.9650, 0.40, 0.90)),
               grade_json("amy", capstone("closed", 0.9650, 0.90, 0.40)),  # same ratios, other axes: a tie
               grade_json("bob", capstone("closed", 0.9650, 0.4004, 1.0)),  # 0.400 as shown; other ratio worse
               grade_json("cat", capstone("closed", 0.9660, 0.40, 1.0)),  # as bob, more accurate: ahead of bob
               grade_json("dan", capstone("closed", 0.9700, 0.60, 0.95))]
    for shuffled in (results, results[::-1]):
        board = leaderboard.build(pairs(shuffled))
        assert [(r.rank, r.entry.name) for r in board.closed] == [(1, "amy"), (1, "zed"), (3, "cat"), (4, "bob"),
                                                                   (5, "dan")]
    text = leaderboard.write(pairs(results), tmp_path)["md"].read_text()
    assert [r[:3] for r in md_table(text, "Closed division")[1:3]] == [["1", "amy", "0.400 (latency)"],
                                                                       ["1", "zed", "0.400 (size)"]]


def test_open_division_is_ranked_by_pareto_layer_then_accuracy(tmp_path):
    results = [grade_json("reference", capstone("closed", 0.9690, 0.25, 0.6)),
               grade_json("wide", capstone("open", 0.9500, 0.10, 0.5, reason="accuracy 95.00% is outside the band")),
               grade_json("tiny", capstone("open", 0.9300, 0.05, 0.4, reason="outside the band")),
               grade_json("worse", capstone("open", 0.9400, 0.12, 0.6, reason="outside the band")),  # under wide
               grade_json("worst", capstone("open", 0.9200, 0.20, 0.9, reason="outside the band")),  # under worse
               grade_json("tied", capstone("open", 0.9400, 0.12, 0.6, reason="outside the band"))]  # = worse
    board = leaderboard.build(pairs(results))
    assert [(r.rank, r.entry.name, r.layer) for r in board.open] == [
        (1, "wide", 1), (2, "tiny", 1), (3, "tied", 2), (3, "worse", 2), (5, "worst", 3)]
    assert {e.name for e in board.front} == {"reference", "wide", "tiny"}
    assert [e.name for e in board.front] == ["tiny", "wide", "reference"]  # joined in latency order
    rows = md_table(leaderboard.write(pairs(results), tmp_path)["md"].read_text(), "Open division")
    assert rows[0][0] == "ref" and rows[1][:3] == ["1", "wide", "1"] and rows[1][8] == "yes"
    assert rows[1][9] == "accuracy 95.00% is outside the band" and rows[3][8] == ""


def test_malformed_and_unmeasured_results_are_listed_not_ranked(tmp_path):
    bad_ratio = capstone("closed", 0.97, 0.5, 0.5)
    bad_ratio["ratios"]["size"] = float("nan")
    results = [grade_json("nan-ratio", bad_ratio),
               grade_json("old-schema", {**capstone("closed", 0.97, 0.5, 0.5), "schema": "tinytorch-capstone/0"}),
               grade_json("string", "closed"),
               grade_json("passed-but-empty", None),
               grade_json("invalid-no-reason", capstone("invalid", None, None, None))]
    board = leaderboard.build(pairs(results))
    assert not board.closed and not board.open and not board.front
    why = {e.name: e.reason for e in board.none}
    assert why["nan-ratio"] == "the grader's capstone result is malformed: ratios.size is nan, not finite"
    assert "schema is 'tinytorch-capstone/0'" in why["old-schema"] and "str, not an object" in why["string"]
    assert why["passed-but-empty"] == "module 20 passed but the grader recorded no capstone result"
    assert [(e.name, e.reason) for e in board.invalid] == [
        ("invalid-no-reason", "rejected by the capstone harness (no reason given)")]
    assert board.baseline["runs"] == 1  # only well-formed results count: here the invalid one
    paths = leaderboard.write(pairs(results), tmp_path)  # no valid point: the plot still renders
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def unmeasured(reason: str) -> dict:
    """An invalid result rejected before anything ran: every figure null (the harness's shape)."""
    figures = dict.fromkeys(BASE)
    return {"schema": leaderboard.SCHEMA, "status": "invalid", "reason": reason, "points_earned": False,
            "submission": dict(figures), "baseline": dict(figures),
            "ratios": {"latency": None, "size": None, "throughput": None}, "thresholds": dict(THRESHOLDS),
            "machine": dict(MACHINE), "details": {}}


def test_invalid_results_keep_their_reason_whatever_was_measured():
    below = capstone("invalid", 0.55, 0.01, 0.2, reason="accuracy 0.5500 is below the open division's floor 0.9")
    results = [grade_json("static", unmeasured("rejected by the static check: imports torch")),
               grade_json("below-floor", below)]
    board = leaderboard.build(pairs(results))
    assert [(e.name, e.reason) for e in board.invalid] == [
        ("below-floor", "accuracy 0.5500 is below the open division's floor 0.9"),
        ("static", "rejected by the static check: imports torch")]
    assert board.invalid[0].accuracy == 0.55 and board.invalid[1].accuracy is None
    assert not board.closed and not board.open and not board.none and board.baseline["runs"] == 1


def _edit(path: str, value):
    cap = capstone("closed", 0.97, 0.5, 0.5)
    *parents, last = path.split(".")
    target = cap
    for key in parents:
        target = target[key]
    target[last] = value
    return cap


@pytest.mark.parametrize("path, value, message", [
    ("status", "gold", "status is 'gold', not closed/open/invalid"),
    ("reason", 3, "reason is int, not a string"),
    ("submission", [0.9], "submission is list, not an object"),
    ("ratios", "fast", "ratios is str, not an object"),
    ("submission.accuracy", True, "submission.accuracy is True, not a number"),
    ("submission.accuracy", 97.0, "submission.accuracy is 97.0, not in [0, 1]"),
    ("submission.accuracy", None, "submission.accuracy is None, not a number"),
    ("submission.size_bytes", 10.5, "submission.size_bytes is 10.5, not a whole number of bytes"),
    ("submission.latency_p50_ms", -1.0, "submission.latency_p50_ms is -1.0, not > 0"),
    ("ratios.latency", float("inf"), "ratios.latency is inf, not finite"),
])
def test_a_malformed_capstone_result_is_named_precisely(path, value, message):
    entry = leaderboard.entry_from_result(grade_json("x", _edit(path, value)))
    assert (entry.status, entry.reason) == ("none", f"the grader's capstone result is malformed: {message}")


def test_why_there_is_no_capstone_result():
    unavailable = dict(module20("not_available"), available=False)
    threshold = dict(module20("passed"), thresholds=[{"name": "capstone", "message": "not measured (thresholds disabled)"}])
    cases = {"unavailable": ([unavailable], "module 20 (capstone) is not yet available in the course"),
             "no-thresholds": ([threshold], "module 20 passed but the grader recorded no capstone result"
                                            " (not measured (thresholds disabled))")}
    for name, (modules, why) in cases.items():
        assert leaderboard.entry_from_result(grade_json(name, None, modules=modules)).reason == why
    aborted = dict(grade_json("aborted", None), aborted="grading aborted: the course's files changed")
    assert leaderboard.entry_from_result(aborted).reason == "grading aborted: the course's files changed"


def test_learner_names_are_escaped_in_html_and_markdown(tmp_path):
    names = [XSS, "pipe|name", "line\nbreak", "$\\frac{1}{0}$ *bold* [x](http://e)", "rtl\u202eevil", "a&amp;b"]
    results = [grade_json(n, capstone("closed", 0.97, 0.3 + 0.1 * i, 0.9)) for i, n in enumerate(names)]
    results.append(grade_json("bad-reason", capstone("invalid", None, None, None, reason="crashed: <img src=x onerror=alert(1)>")))
    paths = leaderboard.write(pairs(results), tmp_path)
    page = paths["html"].read_text()
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "a&amp;amp;b" in page and "rtl\\u202eevil" in page and "line\\x0abreak" in page
    text = paths["md"].read_text()
    assert "<script" not in text.lower() and "<img" not in text.lower().replace("![", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    closed = md_table(text, "Closed division")
    assert len(closed) == 1 + len(names) and all(len(r) == len(leaderboard.CLOSED_HEAD) for r in closed)
    assert "pipe\\|name" in [r[1] for r in closed] and "line\\\\x0abreak" in [r[1] for r in closed]
    assert "\\$\\\\frac{1}{0}\\$ \\*bold\\* \\[x\\](http://e)" in [r[1] for r in closed]
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"  # '$...$' did not go to mathtext


def test_the_output_is_deterministic(tmp_path):
    results = three_and_failures() + [grade_json("wide", capstone("open", 0.95, 0.1, 0.5, reason="outside"))]
    first = leaderboard.write(pairs(results), tmp_path / "a", [("x.zip", "a file")])
    shuffled = results[:]
    random.Random(3).shuffle(shuffled)
    second = leaderboard.write(pairs(shuffled), tmp_path / "b", [("x.zip", "a file")])
    for fmt in ("md", "html", "png"):
        assert first[fmt].read_bytes() == second[fmt].read_bytes(), f"leaderboard.{fmt} differs with the input order"


# -- Pareto front: properties ---------------------------------------------------------------

# Small integer grids make equal coordinates and duplicate points common.
POINTS = st.lists(st.tuples(st.integers(0, 4), st.integers(1, 4), st.integers(1, 4)), max_size=14)


def beats(a, b) -> bool:
    """The test's own dominance: a differs from b and is no worse on any axis (accuracy up, rest down)."""
    return tuple(a) != tuple(b) and a[0] >= b[0] and a[1] <= b[1] and a[2] <= b[2]


@seed(20)
@given(POINTS)
def test_pareto_front_members_are_undominated_and_cover_the_rest(points):
    front = set(leaderboard.pareto_front(points))
    for i in front:
        assert not any(beats(q, points[i]) for q in points), f"front member {points[i]} is dominated"
    for i in set(range(len(points))) - front:
        assert any(beats(points[j], points[i]) for j in front), \
            f"{points[i]} is off the front but no front member dominates it (front {[points[j] for j in front]})"
    layers = leaderboard.pareto_layers(points)
    assert {i for i, layer in enumerate(layers) if layer == 1} == front
    for i, layer in enumerate(layers):
        assert not any(beats(points[j], points[i]) for j, other in enumerate(layers) if other >= layer)
        if layer > 1:
            assert any(beats(points[j], points[i]) for j, other in enumerate(layers) if other == layer - 1)


@seed(21)
@given(st.lists(st.integers(0, 3), max_size=12))
def test_competition_ranks_share_equal_keys(values):
    keys = sorted((v,) for v in values)
    ranks = leaderboard.competition_ranks(keys)
    for i, (key, rank) in enumerate(zip(keys, ranks)):
        assert rank == 1 + sum(k < key for k in keys), (keys, ranks)


def test_dominance_needs_one_strict_improvement():
    assert leaderboard.dominates((0.9, 1.0, 10), (0.9, 1.0, 11))
    assert not leaderboard.dominates((0.9, 1.0, 10), (0.9, 1.0, 10))
    assert not leaderboard.dominates((0.95, 2.0, 10), (0.9, 1.0, 10))


# -- through batch grading ----------------------------------------------------------------


def raw_dir(base: Path, raw: bytes) -> Path:
    path = Path(os.fsdecode(os.path.join(os.fsencode(base), raw)))
    path.mkdir(parents=True, exist_ok=True)
    return path


def learner(subs: Path, raw: bytes, cap: dict | None | str) -> None:
    """A checkout whose fake grade carries `cap` (katas/capstone.json); "crash" breaks the grader."""
    katas = raw_dir(subs, raw) / "katas"
    (katas / "20_capstone").mkdir(parents=True, exist_ok=True)
    (katas / "capstone.json").write_text(json.dumps(cap))


def fake_grade(katas: Path, opts, on_event=None) -> dict:
    cap = json.loads((katas / "capstone.json").read_text())
    if cap == "crash":
        raise RuntimeError("grader bug")
    modules = [module20("passed" if cap else "failing")]
    return {"schema": "test", "submission": str(katas), "impl": "katas", "score": 20.0 if cap else 0.0,
            "max_score": 20.0, "duration": 0.1, "integrity": {"kata_sha256": {}}, "modules": modules,
            "milestones": [], "capstone": cap}


def make_class(subs: Path) -> None:
    learner(subs, b"slowpoke", capstone("closed", 0.9700, 1.0, 3.0))
    learner(subs, b"reference", capstone("closed", 0.9690, 0.25, 0.6))
    learner(subs, b"baseline copy", capstone("closed", 0.9700, 1.0, 1.0))
    learner(subs, b"torch-user", capstone("invalid", None, None, None, reason="imports torch"))
    learner(subs, b"no-capstone", None)
    learner(subs, b"crasher", "crash")
    learner(subs, b"<b onmouseover=alert(1)>x<b>", capstone("open", 0.95, 0.1, 0.5, reason="outside the band"))
    learner(subs, b"caf\xe9", capstone("closed", 0.9650, 0.5, 0.7))
    (subs / ".hidden").mkdir()


def test_batch_grading_writes_the_leaderboard_beside_the_summary(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "grades"
    make_class(subs)
    summary = batch.grade_many(subs, out, options(), jobs=2, grade_one=fake_grade)
    assert summary["leaderboard_error"] is None and summary["errors"] == ["crasher"]
    assert summary["leaderboard"] == {fmt: out / name for fmt, name in leaderboard.FILES.items()}
    assert (out / "summary.csv").is_file()
    text = (out / "leaderboard.md").read_text()
    closed = md_table(text, "Closed division")
    assert [(r[0], r[1]) for r in closed] == [("ref", "baseline (reference, median of 6 runs)"), ("1", "reference"),
                                              ("2", "caf\\\\xe9"), ("3", "baseline copy"), ("4", "slowpoke")]
    assert closed[3][10] == leaderboard.md_escape(summary["names"]["baseline copy"])  # the output stem links the row to its JSON
    opened = md_table(text, "Open division")
    assert opened[1][:3] == ["1", "&lt;b onmouseover=alert(1)&gt;x&lt;b&gt;", "1"]
    assert md_table(text, "Invalid submissions") == [["torch-user", "imports torch", "torch-user"]]
    missing = {r[0]: r[1] for r in md_table(text, "No capstone result")}
    assert missing == {".hidden": "not graded: hidden (the name starts with '.'): rename it to grade it",
                       "crasher": "grading crashed: RuntimeError: grader bug",
                       "no-capstone": "module 20 not passed (failing: 3/9 checks, 0/20 points)"}
    page = (out / "leaderboard.html").read_text()
    assert "<b onmouseover" not in page and "&lt;b onmouseover=alert(1)&gt;x&lt;b&gt;" in page
    # Rebuilding from the folder alone gives the same board (minus the skipped entry, which has no JSON).
    again = leaderboard.write_from_folder(out)
    rebuilt = again["md"].read_text()
    assert md_table(rebuilt, "Closed division") == closed and ".hidden" not in rebuilt


def test_kata_grade_submissions_writes_the_leaderboard(tmp_path, monkeypatch):
    subs, out = tmp_path / "subs", tmp_path / "grades"
    learner(subs, b"reference", capstone("closed", 0.9690, 0.25, 0.6))
    learner(subs, b"slowpoke", capstone("closed", 0.9700, 1.0, 3.0))
    monkeypatch.setattr("grading.grade.grade_submission", fake_grade)
    result = CliRunner().invoke(main, ["grade", "--submissions", str(subs), "--out", str(out), "--modules", "20",
                                       "--no-milestones"])
    assert result.exit_code == 0, result.output
    assert "capstone leaderboard" in result.output and "leaderboard.html" in result.output
    rows = md_table((out / "leaderboard.md").read_text(), "Closed division")
    assert [r[1] for r in rows[1:]] == ["reference", "slowpoke"]
    assert leaderboard.main([str(out)]) == 0


def test_a_broken_leaderboard_does_not_lose_the_batch(tmp_path, monkeypatch):
    subs, out = tmp_path / "subs", tmp_path / "grades"
    learner(subs, b"reference", capstone("closed", 0.9690, 0.25, 0.6))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(leaderboard, "write_for_batch", broken)
    summary = batch.grade_many(subs, out, options(), jobs=1, grade_one=fake_grade)
    assert summary["leaderboard"] is None and summary["leaderboard_error"] == "OSError: disk full"
    assert json.loads((out / "reference.json").read_text())["capstone"]["status"] == "closed"


def test_rebuilding_from_a_folder_names_unreadable_grade_jsons(tmp_path, capsys):
    (tmp_path / "good.json").write_text(json.dumps(grade_json("good", capstone("closed", 0.97, 0.4, 0.9))))
    (tmp_path / "good.gradescope.json").write_text("{}")  # not a grade JSON: ignored
    (tmp_path / "torn.json").write_text('{"submission_name": "to')
    (tmp_path / "list.json").write_text("[]")
    assert leaderboard.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / name) for name in leaderboard.FILES.values()]
    text = (tmp_path / "leaderboard.md").read_text()
    assert [r[1] for r in md_table(text, "Closed division")] == ["baseline (reference, 1 run)", "good"]
    missing = {r[0]: r[1] for r in md_table(text, "No capstone result")}
    assert missing["list"] == "its grade JSON list.json is list, not an object"
    assert missing["torn"].startswith("its grade JSON torn.json is unreadable (JSONDecodeError: ")
    assert leaderboard.main([str(tmp_path / "absent")]) == 2 and "usage" in capsys.readouterr().err


def test_differing_thresholds_and_machines_are_shown():
    other = capstone("closed", 0.97, 0.4, 0.9)
    other["thresholds"]["accuracy_band"] = "one point"
    other["machine"] = {"cpus": 8, "numpy": "2.1.0", "blas_threads": 1}
    text = leaderboard.markdown(leaderboard.build(pairs([grade_json("a", capstone("closed", 0.97, 0.4, 0.9)),
                                                         grade_json("b", other)])))
    assert "thresholds DIFFER between runs: " in text and '"accuracy\\_band": "one point"' in text
    assert "2 different machines: blas\\_threads=1, cpus=2, numpy=2.1.0 \\| blas\\_threads=1, cpus=8" in text
