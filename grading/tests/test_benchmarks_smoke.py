"""The benchmark scripts of milestones/benchmarks run end to end, at their smallest settings.

.ci/run runs the five benchmarks at full size and accepts exit 0 (every ratio within target) or 3
(a ratio above it); anything else is a crash. Before these tests nothing ran the scripts before CI,
and a crash there (cnn_step.py's CIFAR worker, whose shared initial state lacked BatchNorm's
buffers) was found late. Here each script runs once with one round of one timed step on a tiny
batch, on the reference: the timings mean nothing, but every code path .ci/run takes (both
workers of every model, the thread read-back, the pairing, the verdict) runs, plus the paths the
README quotes that CI does not take (cnn_step.py --profile, kv_cache.py --sweep).

Each test asserts that the script exits 0 or 3, that its last line is the verdict
"<title>: <label> <value>, ... (target <= t)" listing every measurement, that the exit code agrees
with that line, and that the workers ran with the one thread they were pinned to.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grading import curriculum
from grading.tinytorch import datasets

ROOT = curriculum.PROJECT_ROOT
BENCHMARKS = ROOT / "milestones" / "benchmarks"
TARGET_MISSED = 3  # milestones/benchmarks/_paired.py: a ratio missed its target (a crash is anything else)
VERDICT = re.compile(r"^(?P<title>[^:]+): (?P<items>.+) \(target (?P<op><=|>=) (?P<target>[0-9.e+-]+)x?\)$")
TINY_STEP = ["--impl", "reference", "--threads", "1", "--rounds", "1", "--warmup", "1", "--repeat", "1"]


def _mnist_dir() -> Path:
    """MNIST offline ($TINYTORCH_DATA or ../shared/data, as .ci/run); never downloaded by a test."""
    candidates = [datasets.data_root()] if os.environ.get(datasets.DATA_ENV) else []
    candidates.append(ROOT.parent / "shared" / "data")
    for folder in candidates:
        if all((folder / "mnist" / name).is_file() for name in datasets._IDX_FILES):
            return folder
    pytest.skip(f"mnist_time_to_target.py needs MNIST offline (looked in {', '.join(map(str, candidates))})")


def _run(script: str, *args: str, timeout: float = 180) -> tuple[int, list[str], str]:
    """Run a benchmark with a clean tinytorch environment; (exit code, stdout lines, where-text for messages)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYTORCH_", "KATA_"))}
    cmd = [sys.executable, str(BENCHMARKS / script), *args]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    where = (f"`{script} {' '.join(args)}` exited {done.returncode}\n--- stdout (end) ---\n{done.stdout[-3000:]}"
             f"\n--- stderr (end) ---\n{done.stderr[-3000:]}")
    assert done.returncode in (0, TARGET_MISSED), \
        f"{script} crashed: exit {done.returncode}, expected 0 (within target) or {TARGET_MISSED} (above)\n{where}"
    return done.returncode, [line for line in done.stdout.splitlines() if line.strip()], where


def _check_verdict(code: int, lines: list[str], where: str, title: str, labels: list[str]) -> None:
    """The last line is the verdict for exactly `labels`, with finite values, and the exit code follows it."""
    match = VERDICT.match(lines[-1]) if lines else None
    assert match, f"the last line is not the verdict '<title>: <label> <value>, ... (target <= t)'\n{where}"
    assert match["title"] == title, f"verdict title {match['title']!r}, expected {title!r}\n{where}"
    items = [item.rsplit(" ", 1) for item in match["items"].split(", ")]
    assert [label for label, _ in items] == labels, f"verdict labels {[l for l, _ in items]}, expected {labels}\n{where}"
    values = [float(value.rstrip("x")) for _, value in items]
    assert all(v > 0 and v != float("inf") for v in values), f"verdict values {values} are not positive and finite\n{where}"
    target = float(match["target"])
    within = all(v >= target if match["op"] == ">=" else v <= target for v in values)
    assert code == (0 if within else TARGET_MISSED), \
        f"exit {code} disagrees with the verdict (values {values} {match['op']} {target} is {within})\n{where}"


def _check_pinned(lines: list[str], where: str, expected_blocks: int) -> None:
    """Every 'N thread(s): ... read-back' block reports the one thread the workers were pinned to."""
    readbacks = [line for line in lines if "torch.get_num_threads() =" in line]
    assert len(readbacks) == expected_blocks, f"{len(readbacks)} thread read-back lines, expected {expected_blocks}\n{where}"
    for line in readbacks:
        assert line.endswith("torch.get_num_threads() = 1") or "torch.get_num_threads() = 1;" in line, \
            f"PyTorch's worker did not run with 1 thread: {line!r}\n{where}"
        blas = re.search(r"OpenBLAS threads = (\w+)", line)
        assert blas and blas[1] in ("1", "None"), f"numpy's OpenBLAS did not run with 1 thread: {line!r}\n{where}"


def test_mlp_step_runs():
    code, lines, where = _run("mlp_step.py", *TINY_STEP, "--batch", "8")
    _check_verdict(code, lines, where, "ratio tinytorch / pytorch", ["1 thread(s)"])
    _check_pinned(lines, where, 1)
    assert any(line.startswith("  CPU-time ratio") for line in lines), f"no CPU-time ratio at 1 thread\n{where}"


def test_cnn_step_runs_both_models_and_the_profiler():
    """Both models (the CIFAR CNN's BatchNorm buffers must load into both frameworks), and --profile."""
    code, lines, where = _run("cnn_step.py", *TINY_STEP, "--batch", "2", "--profile")
    _check_verdict(code, lines, where, "ratio tinytorch / pytorch", ["lenet 1 thread(s)", "cifar 1 thread(s)"])
    _check_pinned(lines, where, 2)
    profiles = [line for line in lines if line.startswith("  where tinytorch's step goes")]
    assert len(profiles) == 2, f"{len(profiles)} profiles printed, expected one per model\n{where}"


def test_gpt_step_runs():
    code, lines, where = _run("gpt_step.py", *TINY_STEP, "--batch", "2", "--block", "16", "--gen-tokens", "2")
    _check_verdict(code, lines, where, "ratio tinytorch / pytorch", ["1 thread(s)"])
    _check_pinned(lines, where, 1)
    assert sum("generation" in line for line in lines) == 2, f"no generation speed for both frameworks\n{where}"


def test_kv_cache_runs_with_its_sweep():
    code, lines, where = _run("kv_cache.py", "--impl", "reference", "--tokens", "8", "--block", "16", "--rounds", "1",
                              "--warmup-tokens", "1", "--sweep")
    _check_verdict(code, lines, where, "speed-up GPT.generate / generate_cached", ["8 tokens"])
    assert any("tokens identical: True" in line for line in lines), \
        f"greedy decoding with and without the cache gave different tokens\n{where}"


def test_mnist_time_to_target_runs():
    """A 50% target evaluated every 10 steps: reached within the first epoch by both frameworks."""
    data = _mnist_dir()
    code, lines, where = _run("mnist_time_to_target.py", "--impl", "reference", "--threads", "1", "--repeats", "1",
                              "--target", "0.5", "--eval-every", "10", "--max-epochs", "1", "--data-dir", str(data))
    _check_verdict(code, lines, where, "time-to-target ratio tinytorch / pytorch", ["1 thread(s)"])
    runs = [line for line in lines if re.match(r"  1 thread\(s\) \[1/1\] seed 0 (pytorch|tinytorch)", line)]
    assert len(runs) == 2 and all("OpenBLAS threads 1" in line or "OpenBLAS threads None" in line for line in runs), \
        f"expected one run per framework with 1 OpenBLAS thread\n{where}"
