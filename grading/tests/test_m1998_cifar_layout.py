"""milestones/m1998_cifar_cnn.py end to end on a few hundred images in CIFAR-10's real layout.

CIFAR-10 is 170 MB and not on every machine, so the pipeline (loader -> augmentation ->
VGG-style CNN with BatchNorm -> training -> test predictions -> accuracy and result file) is
exercised on small files written here in the exact python-pickle layout of
cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta; the writer of
grading/tests/test_datasets.py). The extracted folder is used as is (no checksum: the md5
belongs to the archive), which is how small synthetic files reach the real loader.
These tests assert the pipeline, not the accuracy (random pixels cannot be learned).
Without the files, the milestone must say "data missing" and never pass.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grading import curriculum, runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_datasets import cifar_archive  # noqa: E402  (CIFAR-10's exact pickle layout)

ROOT = curriculum.PROJECT_ROOT
SCRIPT = ROOT / "milestones" / "m1998_cifar_cnn.py"
QUICK = ["--epochs", "2", "--batch-size", "64", "--width", "4"]


def _run(data_dir: Path, out: Path, *extra: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, dict]:
    result_json = out / "result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYTORCH_", "KATA_"))}
    env["OPENBLAS_NUM_THREADS"] = env.get("OPENBLAS_NUM_THREADS", "1")
    cmd = [sys.executable, str(SCRIPT), "--impl", "reference", "--data-dir", str(data_dir), "--out-dir", str(out),
           "--result-json", str(result_json), *extra]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result_json.is_file(), \
        f"{SCRIPT.name} wrote no result file (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done, json.loads(result_json.read_text())


@pytest.fixture(scope="module")
def small_cifar(tmp_path_factory) -> Path:
    """300 training images (5 batches of 60) and 100 test images in cifar-10/cifar-10-batches-py/."""
    root = tmp_path_factory.mktemp("cifar-data")
    cifar_archive(np.random.default_rng(0), per_batch=60, n_test=100,
                  extracted_to=root / "cifar-10" / "cifar-10-batches-py")
    return root


def test_cifar_milestone_runs_end_to_end_on_files_in_the_real_layout(small_cifar, tmp_path):
    done, result = _run(small_cifar, tmp_path / "out", *QUICK)
    where = f"{SCRIPT.name} on 300 synthetic CIFAR-10 images\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode in (0, 1), f"exit code {done.returncode} (0 passed, 1 missed): {where}"
    assert result["milestone"] == "cifar-cnn" and result["metric"] == "test_accuracy", where
    value = result["value"]
    assert isinstance(value, float) and 0.0 <= value <= 1.0, f"accuracy {value!r} is not a number in [0, 1]: {where}"
    assert result["passed"] == (value >= result["target"]) and done.returncode == (0 if result["passed"] else 1)
    details = result["details"]
    assert details["train_images"] == 300 and details["test_images"] == 100, details
    assert details["epochs"] == 2 and len(details["test_accuracy_per_epoch"]) == 2, details
    assert math.isfinite(details["final_train_loss"]) and details["final_train_loss"] > 0, details
    per_epoch = details["epoch_seconds"]
    assert len(per_epoch) == 2 and all(s > 0 for s in per_epoch), per_epoch
    assert len(details["per_class_accuracy"]) == 10
    assert "3x32x32" in done.stdout and "random crop" in done.stdout, where
    for artifact in result["artifacts"]:
        assert Path(artifact).is_file() and Path(artifact).parent == tmp_path / "out", artifact
    if "no figures" not in done.stdout:  # plotting is optional (matplotlib)
        assert {Path(a).name for a in result["artifacts"]} == {"training_curve.png", "confusion_matrix.png"}, where


def test_train_limit_and_seed_are_honoured(small_cifar, tmp_path):
    first = _run(small_cifar, tmp_path / "a", *QUICK, "--train-limit", "128", "--seed", "3")[1]
    again = _run(small_cifar, tmp_path / "b", *QUICK, "--train-limit", "128", "--seed", "3")[1]
    assert first["details"]["train_images"] == 128
    assert first["value"] == again["value"], "the same seed gives the same run"
    assert first["details"]["final_train_loss"] == pytest.approx(again["details"]["final_train_loss"], rel=1e-5)


def test_without_cifar_the_milestone_says_data_missing_and_writes_no_value(tmp_path):
    done, result = _run(tmp_path / "empty", tmp_path / "out", timeout=120)
    assert done.returncode == 2, \
        f"exit code {done.returncode}, expected 2 (data missing):\n{done.stdout}\n{done.stderr}"
    assert "data missing: CIFAR-10" in done.stdout and "cifar-10" in done.stdout, done.stdout
    assert result["status"] == "data_missing" and result["value"] is None and result["passed"] is False, result
    assert "Traceback" not in done.stderr, done.stderr


def test_the_grader_never_passes_a_milestone_without_its_data(tmp_path):
    milestone = curriculum.load().milestone("cifar-cnn")
    assert milestone.data == ("cifar10",) and milestone.script_path() == SCRIPT
    outcome = runner.run_milestone(milestone, None, "reference", out_dir=tmp_path / "out",
                                   data_dir=tmp_path / "empty", timeout=120)
    assert outcome.status != "passed" and outcome.value is None, outcome
    assert "data missing" in outcome.message, outcome.message


def test_the_1998_milestones_in_the_manifest():
    cur = curriculum.load()
    lenet, cifar = cur.milestone("lenet"), cur.milestone("cifar-cnn")
    assert cur.milestone("1998") == lenet, "`kata milestone 1998` runs LeNet-5 (its data ships with the course)"
    assert lenet.data == ("mnist",) and lenet.target == 0.985 and lenet.metric == "test_accuracy"
    assert cifar.target == 0.75 and cifar.metric == "test_accuracy"
    assert 9 in lenet.requires and 9 in cifar.requires
    assert lenet.is_available() and cifar.is_available()
