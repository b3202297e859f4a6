"""milestones/m2017_reverse.py end to end on the reference, in a few seconds.

The full recipe (600 steps, 1,000 test sequences) reaches exact match 1.000 in ~11 s of CPU; these
tests run a reduced one: they assert the pipeline (training, trusted-side greedy decoding, result
file, verdict) and that the metric is not trivially high for an untrained model, not the accuracy
of the full recipe.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from grading import curriculum

ROOT = curriculum.PROJECT_ROOT
SCRIPT = ROOT / "milestones" / "m2017_reverse.py"


def _run(out: Path, *extra: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, dict]:
    result_json = out / "result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYTORCH_", "KATA_"))}
    env["OPENBLAS_NUM_THREADS"] = env.get("OPENBLAS_NUM_THREADS", "1")
    cmd = [sys.executable, str(SCRIPT), "--impl", "reference", "--out-dir", str(out),
           "--result-json", str(result_json), *extra]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result_json.is_file(), \
        f"{SCRIPT.name} {' '.join(extra)} wrote no result file (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done, json.loads(result_json.read_text())


def test_the_manifest_entry_matches_the_script():
    milestone = curriculum.load().milestone("reverse")
    assert (milestone.year, milestone.script, milestone.metric, milestone.goal) == \
        (2017, "milestones/m2017_reverse.py", "exact_match", "max"), milestone
    assert milestone.target == 0.99 and milestone.data == () and milestone.is_available(), milestone
    assert set(milestone.requires) == {1, 2, 3, 4, 5, 6, 11, 12, 13}, milestone.requires


def test_reverse_milestone_runs_end_to_end_in_a_reduced_mode(tmp_path):
    out = tmp_path / "out"
    done, result = _run(out, "--steps", "40", "--test-size", "100", "--eval-interval", "20")
    where = f"{SCRIPT.name} --steps 40 --test-size 100\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode in (0, 1), f"exit code {done.returncode} (0 passed, 1 missed): {where}"
    assert result["milestone"] == "reverse" and result["metric"] == "exact_match", where
    value = result["value"]
    assert isinstance(value, float) and 0.0 <= value <= 1.0, f"exact match {value!r} is not a number in [0, 1]: {where}"
    assert result["passed"] == (value >= result["target"]) and done.returncode == (0 if result["passed"] else 1), where
    details = result["details"]
    assert details["steps"] == 40 and details["test_sequences"] == 100, details
    assert details["history"]["step"] == [20, 40] and len(details["history"]["monitor_exact_match"]) == 2, details
    per_position = details["per_position_accuracy"]
    assert len(per_position) == 8 and all(0.0 <= a <= 1.0 for a in per_position), per_position
    # A sequence is exactly right only if each of its 8 digits is: exact match <= every position's accuracy.
    assert value <= min(per_position) + 1e-9, f"exact match {value} exceeds a per-position accuracy {per_position}"
    assert math.isfinite(details["final_train_loss"]) and details["final_train_loss"] > 0, details
    for artifact in result["artifacts"]:
        assert Path(artifact).is_file() and Path(artifact).parent == out, artifact


def test_an_untrained_model_scores_near_zero_and_misses(tmp_path):
    """One step at a negligible learning rate: greedy decoding of 8 digits is all but never right."""
    done, result = _run(tmp_path / "out", "--steps", "1", "--lr", "1e-9", "--test-size", "200")
    where = f"{SCRIPT.name} --steps 1 --lr 1e-9\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 1 and result["passed"] is False, f"an untrained model passed: {where}"
    assert result["value"] <= 0.01, f"untrained exact match {result['value']} on 200 sequences (chance 1e-8): {where}"


def test_a_model_without_the_causal_mask_fails_the_audit_and_gets_no_metric(tmp_path):
    """The reference's attention with is_causal forced off still learns to reverse (greedy decoding reads
    only the last position), so only the causality audit can tell: it must stop the run without a value."""
    result_json = tmp_path / "result.json"
    patch = (
        "import runpy, sys\n"
        "import tinytorch.attention as A\n"
        "orig = A.MultiheadAttention.forward\n"
        "def forward(self, q, k, v, **kw):\n"
        "    kw['is_causal'] = False\n"
        "    return orig(self, q, k, v, **kw)\n"
        "A.MultiheadAttention.forward = forward\n"
        f"sys.argv = [{str(SCRIPT)!r}] + sys.argv[1:]\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYTORCH_", "KATA_"))}
    env.update(OPENBLAS_NUM_THREADS=env.get("OPENBLAS_NUM_THREADS", "1"), TINYTORCH_IMPL="reference")
    cmd = [sys.executable, "-c", patch, "--impl", "reference", "--steps", "40", "--test-size", "50",
           "--out-dir", str(tmp_path / "out"), "--result-json", str(result_json)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    where = f"{SCRIPT.name} without a causal mask\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert result_json.is_file(), f"no result file (exit {done.returncode}): {where}"
    result = json.loads(result_json.read_text())
    assert done.returncode == 1 and result["value"] is None and result["passed"] is False, where
    assert "causality audit failed" in result["details"]["error"] and "causal" in done.stdout, where


def test_the_year_2017_still_means_the_transformer():
    from grading import curriculum

    assert curriculum.load().milestone("2017").slug == "transformer"
    assert curriculum.load().milestone("1998").slug == "lenet"
