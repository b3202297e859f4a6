"""Hostile submissions: every way a determined student has beaten a grader, each with its outcome.

Each attack is a kata that does not do the work and tries to get points anyway (or to harm
other submissions or the course). The expected outcome, every time: 0 points for the
cheating module, a named flag or rejection reason where the attack is visible in the code,
other results unchanged, the course tree unchanged, and the grader back within its deadline.
Attacks that only the namespace sandbox can stop are skipped, with the reason, where
bubblewrap is unavailable (docs/GRADING.md says what holds where).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from _katas import M1, M2, TIMEOUT, make_checkout, options, pristine_01
from grading import curriculum, grade, integrity, stubs

ROOT = curriculum.PROJECT_ROOT
namespace_only = pytest.mark.skipif(not integrity.namespaces_available(),
                                    reason="needs the namespace sandbox (bubblewrap): see docs/GRADING.md")


def stub_of(module, name: str) -> str:
    source = module.reference_dir() / name
    return stubs.make_stub(source.read_text(), source.relative_to(ROOT).as_posix())


def checkout(tmp_path: Path, tensor: str, activations: str | None = None) -> Path:
    katas = make_checkout(tmp_path, tensor)
    if activations is not None:
        (katas / M2.key).mkdir(parents=True, exist_ok=True)
        (katas / M2.key / "activations.py").write_text(activations)
    return katas


def run(katas: Path, **overrides) -> tuple[dict, float]:
    before = integrity.course_snapshot()
    started = time.monotonic()
    result = grade.grade_submission(katas, options(tamper_check=True, **overrides))
    elapsed = time.monotonic() - started
    assert integrity.course_changes(before, integrity.course_snapshot()) == [], "the course tree changed"
    assert "aborted" not in result, result.get("aborted")
    return result, elapsed


def module(result: dict, key: str) -> dict:
    return next(m for m in result["modules"] if m["key"] == key)


def flags(entry: dict) -> str:
    found = entry.get("static_check", {})
    return " | ".join(found.get("rejections", []) + found.get("warnings", [])) + " | " + entry.get("reason", "")


STUB_01 = pristine_01()
STUB_02 = stub_of(M2, "activations.py")


def appended(stub: str, code: str) -> str:
    return stub + "\n\n# -- appended by the attack --\n" + code.strip("\n") + "\n"


# -- 1. full marks from stubs: patching pytest's reports, forging result files ---------------------

PATCH_REPORTS = '''
import sys as _s
_mods = getattr(_s, "mod" + "ules")
try:
    _r = __import__("_py" + "test.reports", fromlist=["TestReport"])
    _orig = _r.TestReport.__init__
    def _forged(self, *a, **k):
        _orig(self, *a, **k)
        self.outcome = "passed"
        self.longrepr = None
    _r.TestReport.__init__ = _forged
    _mods["_pytest.reports"] = _r
except Exception:
    pass
'''


def test_patching_pytest_reports_from_a_stub_earns_nothing(tmp_path):
    katas = checkout(tmp_path, appended(STUB_01, PATCH_REPORTS), activations=appended(STUB_02, "# comment"))
    result, _ = run(katas, modules=[1, 2])
    for key in (M1.key, M2.key):
        assert module(result, key)["points"] == 0, module(result, key)
    assert "computed attribute name" in flags(module(result, M1.key))
    assert result["score"] == 0


FORGE_FILES = '''
import os as _o
def _forge():
    junit = ('<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="1">'
             '<testcase classname="checks.01_tensor.test_tensor" name="test_forged" time="0"/>'
             '</testsuite></testsuites>')
    for pid in _o.listdir("/proc"):
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        except OSError:
            continue
        for i, arg in enumerate(args):
            text = arg.decode(errors="replace")
            try:
                if text.startswith("--junitxml="):
                    open(text.split("=", 1)[1], "w").write(junit)
                if text in ("--out", "--result-json") and i + 1 < len(args):
                    open(args[i + 1].decode(), "w").write('{"ratio": 0.5, "value": 1.0, "samples": [0.5]}')
            except OSError:
                pass
_forge()
getattr(_o, "_ex" + "it")(0)
'''


def test_forging_junit_threshold_and_milestone_results_earns_nothing(tmp_path):
    katas = checkout(tmp_path, appended(STUB_01, FORGE_FILES))
    result, _ = run(katas, modules=[1], thresholds=True, milestones=True, fallback="reference")
    m1 = module(result, M1.key)
    assert m1["points"] == 0 and m1["status"] != "passed", m1
    assert "computed attribute name" in flags(m1)
    perceptron = next(m for m in result["milestones"] if m["slug"] == "perceptron")
    # Module 01 failed, so the perceptron runs on the reference lent in its place (and says so):
    # the forged result file is never what the grader reads.
    assert perceptron["assembly"]["from_reference"] == [M1.key]


# -- 2. copying the reference ----------------------------------------------------------------------

READ_REFERENCE = '''
import importlib as _il
_assembly = _il.import_module("grading." + "assembly")
_path = _assembly.source_file("activations", _assembly.parse_impl("reference"))
exec(compile(open(_path).read(), str(_path), "exec"))
'''


@namespace_only
def test_executing_the_reference_found_through_the_grader_earns_nothing(tmp_path):
    katas = checkout(tmp_path, (M1.reference_dir() / "tensor.py").read_text(), appended(STUB_02, READ_REFERENCE))
    result, _ = run(katas, modules=[1, 2])
    m2 = module(result, M2.key)
    assert m2["points"] == 0, m2
    assert "computed module name" in flags(m2) and "exec()" in flags(m2)
    assert module(result, M1.key)["status"] == "passed"  # the other module keeps its result


LEAK_REFERENCE = '''
def _leak():
    here = __file__
    for up in range(8):
        here = here.rsplit("/", 1)[0]
        for candidate in (here + "/reference/05_autograd/autograd.py", here + "/main/reference/05_autograd/autograd.py"):
            try:
                return open(candidate).read()
            except OSError:
                pass
    return ""
raise RuntimeError("LEAK:" + _leak()[:20000])
'''


@namespace_only
def test_a_kata_cannot_print_the_reference_into_feedback(tmp_path):
    katas = checkout(tmp_path, appended(STUB_01, LEAK_REFERENCE))
    result, _ = run(katas, modules=[1])
    text = json.dumps(result)
    reference_lines = [line.strip() for line in (ROOT / "reference/05_autograd/autograd.py").read_text().splitlines()
                       if len(line.strip()) > 40 and not line.strip().startswith("#")]
    leaked = [line for line in reference_lines if line in text]
    assert not leaked, leaked[:3]
    assert module(result, M1.key)["points"] == 0


def test_scrub_removes_course_lines_and_limits_length():
    line = next(l.strip() for l in (ROOT / "reference/05_autograd/autograd.py").read_text().splitlines()
                if len(l.strip()) > 40 and not l.strip().startswith(("#", "def ", "class ", '"""')))
    cleaned = integrity.scrub(f"boom\n{line}\nend" + "x" * 10_000)
    assert line not in cleaned and "removed" in cleaned and len(cleaned) <= 4000


def test_a_kata_that_is_a_symlink_to_the_reference_is_rejected(tmp_path):
    katas = checkout(tmp_path, STUB_01)
    target = katas / M2.key
    target.mkdir(parents=True)
    (target / "activations.py").symlink_to(M2.reference_dir() / "activations.py")
    result, _ = run(katas, modules=[2])
    m2 = module(result, M2.key)
    assert m2["status"] == "rejected" and m2["points"] == 0
    assert "symbolic link" in m2["reason"]


def test_a_kata_that_is_a_symlink_to_a_system_file_leaks_nothing(tmp_path):
    katas = tmp_path / "katas"
    (katas / M1.key).mkdir(parents=True)
    (katas / M1.key / "tensor.py").symlink_to("/etc/passwd")
    result, _ = run(katas, modules=[1])
    m1 = module(result, M1.key)
    assert m1["status"] == "rejected" and "symbolic link" in m1["reason"]
    first_line = Path("/etc/passwd").read_text().splitlines()[0]
    assert first_line not in json.dumps(result)
    assert result["integrity"]["kata_sha256"][f"{M1.key}/tensor.py"] is None


def test_a_copied_reference_function_is_flagged_for_staff(tmp_path):
    katas = checkout(tmp_path, (M1.reference_dir() / "tensor.py").read_text())
    result, _ = run(katas, modules=[1])
    assert "identical to the reference solution" in flags(module(result, M1.key))


# -- 3. delegating to PyTorch ----------------------------------------------------------------------

TORCH_RELU = '''
def _torch():
    import sys as _s
    found = getattr(_s, "mod" + "ules").get("torch")
    return found if found is not None else __import__("to" + "rch")
def relu(x):
    torch = _torch()
    from tinytorch.tensor import Tensor
    return Tensor(torch.relu(torch.from_numpy(x.data)).numpy())
'''


def test_delegating_to_pytorch_earns_nothing(tmp_path):
    katas = checkout(tmp_path, (M1.reference_dir() / "tensor.py").read_text(), appended(STUB_02, TORCH_RELU))
    result, _ = run(katas, modules=[1, 2])
    m2 = module(result, M2.key)
    assert m2["points"] == 0 and m2["checks_passed"] == 0, m2
    assert "computed" in flags(m2)
    failing = [c["message"] + c.get("detail", "") for c in m2["checks"] if c["outcome"] != "passed"]
    assert any("not available to learner code" in text for text in failing), failing[:2]


# -- 4. poisoning what verdicts are read from, and the course tree ---------------------------------

POISON = '''
def _poison():
    import glob
    here = __file__
    for up in range(8):
        here = here.rsplit("/", 1)[0]
        for path in glob.glob(here + "/.kata/collected/*.json"):
            try:
                open(path, "w").write('["test_activations.py::test_relu"]')
            except OSError:
                pass
        for folder in glob.glob(here + "/checks/06_optimizers"):
            try:
                open(folder + "/conftest.py", "w").write("raise SystemExit(0)\\n")
            except OSError:
                pass
_poison()
'''


@namespace_only
def test_poisoning_the_check_lists_or_dropping_a_conftest_changes_nothing(tmp_path):
    collected = integrity.snapshot(ROOT / ".kata" / "collected")
    katas = checkout(tmp_path, (M1.reference_dir() / "tensor.py").read_text() + POISON)
    result, _ = run(katas, modules=[1])  # run() asserts the course tree is unchanged
    assert integrity.snapshot(ROOT / ".kata" / "collected") == collected
    assert not (ROOT / "checks" / "06_optimizers" / "conftest.py").exists()


@namespace_only
def test_one_submission_cannot_touch_another(tmp_path):
    victim = checkout(tmp_path / "victim", (M1.reference_dir() / "tensor.py").read_text())
    victim_file = victim / M1.key / "tensor.py"
    attack = f'''
for _target in ({str(victim_file)!r},):
    try:
        open(_target, "w").write("raise SystemExit(0)\\n")
    except OSError:
        pass
'''
    attacker = checkout(tmp_path / "attacker", appended(STUB_01, attack))
    before = victim_file.read_bytes()
    run(attacker, modules=[1], hide=[str(tmp_path)])
    assert victim_file.read_bytes() == before
    result, _ = run(victim, modules=[1])
    assert module(result, M1.key)["status"] == "passed"


# -- 5. processes and the network ------------------------------------------------------------------


def test_escaped_descendants_are_gone_and_cannot_hold_the_grader(tmp_path):
    marker = f"kata-hostile-{uuid.uuid4().hex}"
    escape = f'''
import os as _o, time as _t
if getattr(_o, "fo" + "rk")() == 0:
    _o.setsid()
    if getattr(_o, "fo" + "rk")() == 0:
        import sys as _s
        getattr(_o, "exe" + "cv")(_s.executable, [_s.executable, "-c", "import time; time.sleep(120)", {marker!r}])
    getattr(_o, "_ex" + "it")(0)
'''
    katas = checkout(tmp_path, (M1.reference_dir() / "tensor.py").read_text() + escape)
    result, elapsed = run(katas, modules=[1], timeout=20)
    assert elapsed < 20 + 30, f"the grader was held {elapsed:.0f} s"
    time.sleep(0.5)
    survivors = []
    for pid in os.listdir("/proc"):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                survivors.append(pid)
        except OSError:
            pass
    assert survivors == [], f"processes outlived the grading run: {survivors}"


@namespace_only
def test_the_worker_has_no_network(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.1)
    port = server.getsockname()[1]
    call_home = f'''
import socket as _so
try:
    _so.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"hello")
except OSError:
    pass
'''
    katas = checkout(tmp_path, appended(STUB_01, call_home))
    run(katas, modules=[1])
    with pytest.raises(socket.timeout):
        server.accept()
    server.close()


def test_tinytorch_exposes_no_grader_internals():
    import tinytorch

    submodules = {e for m in curriculum.load().modules for e in m.exports} | {"datasets"}
    assert [name for name in vars(tinytorch) if not name.startswith("__") and name not in submodules] == []


def test_the_static_tripwires_name_what_they_saw():
    exports = {e for m in curriculum.load().modules for e in m.exports}
    found = integrity.tripwires("import tinytorch\nx = tinytorch.assembly\ngetattr(a, b)\n__import__(n)\n"
                                "from tinytorch import remote\n", "k.py", exports)
    messages = " | ".join(f.message for f in found)
    assert "tinytorch.assembly, which is not a curriculum module" in messages
    assert "tinytorch.remote" in messages
    assert "getattr() with a computed attribute name" in messages
    assert "__import__() with a computed module name" in messages
    assert integrity.tripwires("from tinytorch.tensor import Tensor\ngetattr(x, 'data')\n", "k.py", exports) == []


@namespace_only
def test_other_checkouts_on_the_machine_are_invisible(tmp_path):
    """Only the system, Python and the grader's own course tree exist in the sandbox."""
    other = ROOT.parent / f".kata-hostile-{uuid.uuid4().hex}"
    secret = other / "reference" / "02_activations" / "activations.py"
    secret.parent.mkdir(parents=True)
    secret.write_text("SECRET = 1\n")
    try:
        peek = f'''
try:
    open("/" + {str(secret)[1:]!r}).read()  # a computed path: the static check cannot see it
    raise SystemExit(0)
except OSError:
    pass
'''
        katas = checkout(tmp_path, (M1.reference_dir() / "tensor.py").read_text() + peek)
        result, _ = run(katas, modules=[1])
        assert module(result, M1.key)["status"] == "passed", module(result, M1.key)["reason"]
    finally:
        import shutil

        shutil.rmtree(other, ignore_errors=True)
