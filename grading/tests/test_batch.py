"""Batch grading (`kata grade --submissions DIR`): output names, skipped entries, odd folder
names, and a summary CSV that keeps every finished row when the batch dies half-way."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from _katas import SELECT, VARIANTS, make_checkout, options, pristine_01
from grading import batch
from grading.cli import main

NON_UTF8 = b"caf\xe9-latin1"  # a folder name written by a Latin-1 tool: not valid UTF-8


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    monkeypatch.setenv("KATA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "kata-smoke")
    monkeypatch.delenv("TINYTORCH_KATAS", raising=False)
    monkeypatch.delenv("TINYTORCH_IMPL", raising=False)


def raw_dir(base: Path, raw: bytes) -> Path:
    """The path of a folder whose name is the bytes `raw` (created with its parents)."""
    path = Path(os.fsdecode(os.path.join(os.fsencode(base), raw)))
    path.mkdir(parents=True, exist_ok=True)
    return path


def fake_result(katas: Path, score: float) -> dict:
    """A minimal grade result of the shape grading/grade.py returns (module 01 only)."""
    return {"schema": "test", "submission": str(katas), "impl": "katas", "score": score, "max_score": 10.0,
            "duration": 0.1, "integrity": {"kata_sha256": {}},
            "modules": [{"number": 1, "key": "01_tensor", "title": "Tensor", "tier": "Foundation", "available": True,
                         "status": "passed" if score == 10 else "failing", "points": score, "points_max": 10.0,
                         "checks": [], "thresholds": [], "duration": 1.0}],
            "milestones": []}


def grader_from_marker(katas: Path, opts) -> dict:
    """A fake grade: the score is the number written in the submission's katas/score.txt."""
    return fake_result(katas, float((katas / "score.txt").read_text()))


def submission(base: Path, raw: bytes, score: float) -> Path:
    katas = raw_dir(base, raw) / "katas"
    (katas / "01_tensor").mkdir(parents=True, exist_ok=True)
    (katas / "score.txt").write_text(str(score))
    return katas


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_output_names_are_unique_and_keep_safe_names():
    raws = [b"a b", b"a_b", b"a/b"[:1] + b"?b", b"Alice", b"alice", NON_UTF8, b"x" * 200, b"plain-name.1"]
    stems = batch.output_names(raws)
    assert len({s.lower() for s in stems.values()}) == len(raws), stems
    assert stems[b"a_b"] == "a_b" and stems[b"plain-name.1"] == "plain-name.1"  # lossless: unchanged
    assert stems[b"a b"].startswith("a_b-") and stems[b"a?b"].startswith("a_b-")  # lossy: hashed
    assert stems[b"a b"] != stems[b"a?b"]
    assert stems[b"Alice"] != stems[b"alice"]  # would collide on a case-insensitive file system
    assert stems[NON_UTF8].startswith("caf_xe9-latin1-") and len(stems[b"x" * 200]) < 100
    for stem in stems.values():
        assert all(ch.isalnum() or ch in "_.-" for ch in stem) and stem.isascii(), stem
    # A literal name equal to another's hashed stem still gets its own output name.
    assert len(set(batch.output_names([NON_UTF8, batch.display_name(NON_UTF8).encode()]).values())) == 2
    tricky = [b"a b", stems[b"a b"].encode()]
    assert len(set(batch.output_names(tricky).values())) == 2
    assert batch.output_names([b"a b"])[b"a b"] == batch.output_names([b"a b", b"other"])[b"a b"]  # stable


def test_every_entry_is_graded_or_skipped_with_its_reason(tmp_path):
    subs = tmp_path / "subs"
    for raw, score in ((b"a b", 10), (b"a_b", 3), (NON_UTF8, 7), (b"bare", 5)):
        submission(subs, raw, score)
    bare = subs / "bare"  # a bare katas folder: NN_slug folders directly inside
    (bare / "katas").rename(bare / "k")
    (bare / "k" / "01_tensor").rename(bare / "01_tensor")
    (bare / "k" / "score.txt").rename(bare / "score.txt")
    (bare / "k").rmdir()
    submission(subs, b".hidden", 10)
    raw_dir(subs, b"no-katas-here")
    (subs / "archive.zip").write_bytes(b"PK")
    (subs / "link").symlink_to(subs / "a_b")
    out = tmp_path / "grades"
    summary = batch.grade_many(subs, out, options(), jobs=2, grade_one=grader_from_marker)

    assert summary["count"] == 4 and not summary["errors"]
    skipped = dict(summary["skipped"])
    assert set(skipped) == {".hidden", "no-katas-here", "archive.zip", "link"}
    assert "hidden" in skipped[".hidden"] and "symlink" in skipped["link"]
    assert "file" in skipped["archive.zip"] and "no katas/" in skipped["no-katas-here"]
    # `a b` and `a_b` keep separate result files with their own scores.
    names = summary["names"]
    assert names["a_b"] == "a_b" and names["a b"] != "a_b"
    assert json.loads((out / "a_b.json").read_text())["score"] == 3
    assert json.loads((out / f"{names['a b']}.json").read_text())["score"] == 10
    odd = batch.display_name(NON_UTF8)
    assert odd == "caf\\xe9-latin1"
    result = json.loads((out / f"{names[odd]}.json").read_text())
    assert result["score"] == 7 and result["submission_name"] == odd
    assert (out / f"{names[odd]}.gradescope.json").is_file()

    table = rows(out / "summary.csv")
    assert table[0][:5] == ["submission", "score", "max_score", "error", "output"] and "01_tensor" in table[0]
    graded = {r[0]: r for r in table[1:5]}
    assert [r[0] for r in table[1:5]] == sorted(graded)  # name order once the batch finished
    assert graded["a b"][1] == "10.0" and graded["a_b"][1] == "3.0" and graded[odd][1] == "7.0"
    assert graded["bare"][4] == "bare" and graded[odd][4] == names[odd]
    listed = {r[0]: r[3] for r in table[5:9]}
    assert listed == {k: f"skipped: {v}" for k, v in skipped.items()}
    assert table[9][0] == "#pass_rate" and table[10][0] == "#median_seconds"
    assert table[9][5] == "0.25"  # one of four passed module 01


def test_a_submission_that_breaks_the_grader_gets_an_error_row(tmp_path):
    subs = tmp_path / "subs"
    for raw, score in ((b"ann", 10), (b"ben", 4), (b"cat", 6)):
        submission(subs, raw, score)

    def grade_one(katas, opts):
        if katas.parent.name == "ben":
            raise RuntimeError("grader bug on ben")
        return grader_from_marker(katas, opts)

    summary = batch.grade_many(subs, tmp_path / "grades", options(), jobs=2, grade_one=grade_one)
    assert summary["errors"] == ["ben"] and summary["count"] == 3
    assert summary["results"]["ben"]["submission_name"] == "ben"
    table = {r[0]: r for r in rows(tmp_path / "grades" / "summary.csv")[1:4]}
    assert table["ben"][3] == "RuntimeError: grader bug on ben" and table["cat"][1] == "6.0"


def test_a_crash_mid_batch_keeps_the_rows_already_finished(tmp_path):
    subs = tmp_path / "subs"
    for raw, score in ((b"ann", 10), (b"ben", 4), (b"cat", 6), (b"dan", 8)):
        submission(subs, raw, score)
    (subs / ".git").mkdir()
    graded = []

    def grade_one(katas, opts):
        if katas.parent.name == "cat":
            raise KeyboardInterrupt  # the batch itself dies (Ctrl-C, a kill, a grader crash)
        graded.append(katas.parent.name)
        return grader_from_marker(katas, opts)

    out = tmp_path / "grades"
    with pytest.raises(KeyboardInterrupt):
        batch.grade_many(subs, out, options(), jobs=1, grade_one=grade_one)
    table = rows(out / "summary.csv")
    assert table[0][0] == "submission"
    assert [r[0] for r in table[1:]] == [".git", "ann", "ben"]  # skipped first, then as they finished
    assert table[2][1] == "10.0" and table[3][1] == "4.0"
    assert graded == ["ann", "ben"]  # nothing after the crash was started
    assert json.loads((out / "ben.json").read_text())["score"] == 4


def test_batch_cli_grades_odd_folder_names_and_lists_skips(tmp_path):
    """End to end through `kata grade --submissions`: real grading of module 01 (a few checks)."""
    subs = tmp_path / "subs"
    make_checkout(raw_dir(subs, b"a b"), VARIANTS["passing"])
    make_checkout(raw_dir(subs, b"a_b"), pristine_01())
    make_checkout(raw_dir(subs, NON_UTF8), VARIANTS["passing"])
    (subs / ".hidden").mkdir()
    (subs / "notes.txt").write_text("not a submission")
    out = tmp_path / "grades"
    result = CliRunner().invoke(main, [
        "grade", "--submissions", str(subs), "--jobs", "2", "--out", str(out), "--modules", "01", "-k", SELECT,
        "--hypothesis-profile", "kata-smoke", "--timeout", "120", "--memory-limit", "3G", "--no-tamper-check",
        "--no-thresholds", "--no-milestones"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "skipped .hidden: hidden" in text and "skipped notes.txt: a file" in text
    assert "graded 3 submission(s)" in text
    table = {r[0]: r for r in rows(out / "summary.csv")[1:]}
    odd = batch.display_name(NON_UTF8)
    assert table["a b"][1] == "8.0" and table[odd][1] == "8.0", (table["a b"], table[odd])  # 10 - 2 thresholds skipped
    assert table["a_b"][1] == "0.0" and table["a_b"][4] == "a_b"
    assert table[".hidden"][3].startswith("skipped: hidden") and table["notes.txt"][3].startswith("skipped: a file")
    assert json.loads((out / "a_b.json").read_text())["score"] == 0
    assert json.loads((out / f"{table['a b'][4]}.json").read_text())["score"] == 8.0


def test_batch_cli_names_submissions_it_could_not_grade(tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    submission(subs, NON_UTF8, 5)
    submission(subs, b"fine", 10)

    def grade_submission(katas, opts, on_event=None):
        if katas.parent.name != "fine":
            raise RuntimeError("boom")
        return grader_from_marker(katas, opts)

    monkeypatch.setattr("grading.grade.grade_submission", grade_submission)
    result = CliRunner().invoke(main, ["grade", "--submissions", str(subs), "--out", str(tmp_path / "grades"),
                                       "--modules", "01", "--no-milestones"])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "could not grade caf\\xe9-latin1: RuntimeError: boom" in text and "graded 2 submission(s)" in text
