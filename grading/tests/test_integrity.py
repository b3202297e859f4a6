"""The static policy check and the threshold manifest schema (fast, no subprocesses)."""

from __future__ import annotations

import pytest

from grading import curriculum, integrity

GOOD = "import numpy as np\nimport math\nfrom tinytorch.tensor import Tensor\n\ndef f(x):\n    return np.add(x, 1)\n"


def findings(source):
    return integrity.static_check_source(source, "katas/01_tensor/tensor.py")


def test_clean_code_has_no_findings():
    assert findings(GOOD) == []


@pytest.mark.parametrize("source, fragment", [
    ("import torch", "imports torch"),
    ("from reference import x", "imports reference"),
    ("import grading.cli", "imports grading.cli"),
    ("import checks.harness", "imports checks.harness"),
    ("import pytest", "imports pytest"),
    ("import _pytest.runner", "imports _pytest.runner"),
    ("import subprocess", "imports subprocess"),
    ("import ctypes", "imports ctypes"),
    ("import os\nos.system('ls')", "calls os.system()"),
    ("import os as o\no._exit(0)", "calls o._exit()"),
    ("from os import system\nsystem('x')", "calls system()"),
    ("import sys\nsys.exit(1)", "calls sys.exit()"),
    ("open('/etc/passwd')", "opens a file outside"),
    ("open('../../grading/cli.py', 'w')", "opens a file outside"),
    ("__import__('torch')", "imports torch dynamically"),
    ("import importlib\nimportlib.import_module('subprocess')", "imports subprocess dynamically"),
    ("from . import tensor", "relative import"),
])
def test_rejections(source, fragment):
    rejected = [f for f in findings(source) if f.severity == "reject"]
    assert rejected and fragment in rejected[0].message, findings(source)


@pytest.mark.parametrize("source", ["eval('1')", "open(name)", "import sys\nsys.modules['x'] = 1",
                                    "import inspect", "import threading"])
def test_warnings_are_not_rejections(source):
    found = findings(source)
    assert found and all(f.severity == "warn" for f in found)


def test_every_reference_file_passes_the_static_check():
    cur = curriculum.load()
    for module in cur.modules:
        if module.is_available():
            report = integrity.static_check(curriculum.PROJECT_ROOT / "reference", module)
            assert not report.rejected, report.reason()


def test_thresholds_are_parsed_and_validated():
    m1 = curriculum.load().module(1)
    assert [t.name for t in m1.thresholds] == ["add_vs_numpy", "matmul_vs_numpy"]
    assert all(t.kind == "ratio" and t.max_ratio > 1 and t.benchmark.startswith("grading.") for t in m1.thresholds)
    base = (curriculum.MANIFEST.read_text())
    bad = base.replace('max_ratio = 2.0', 'max_ratio = -1', 1)
    with pytest.raises(curriculum.CurriculumError):
        curriculum.parse(bad)
    bad = base.replace('kind = "ratio"', 'kind = "seconds"', 1)
    with pytest.raises(curriculum.CurriculumError, match="kind"):
        curriculum.parse(bad)


def test_threshold_compare_is_a_median_of_paired_ratios():
    import time

    from grading import thresholds

    result = thresholds.compare(lambda: time.sleep(0.002), lambda: time.sleep(0.001), max_ratio=10, rounds=5)
    assert 1.3 < result["ratio"] < 4 and len(result["samples"]) == 5
    slow = thresholds.compare(lambda: time.sleep(0.2), lambda: None, max_ratio=2)
    assert "stopped after one sample" in slow["note"]
