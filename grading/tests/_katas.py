"""Throw-away learner checkouts for the grader's tests: good, pristine and hostile katas.

Every checkout is built in a tmp dir from the reference (never from a learner's katas).
Hostile behaviour is injected into `Tensor.__add__` (reached by the selected checks) or at
import time. Tests use a subset of module 01's checks (SELECT) and small limits so the
whole suite stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

from grading import curriculum, integrity, stubs
from grading.grade import GradeOptions

ROOT = curriculum.PROJECT_ROOT
CUR = curriculum.load()
M1 = CUR.module(1)
M2 = CUR.module(2)
REFERENCE_01 = (M1.reference_dir() / "tensor.py").read_text()

# Checks of module 01 that reach __add__ and __neg__, plus a few of module 02.
SELECT = ("test_python_data_becomes_float32 or test_binary_ops_broadcast_like_torch or test_negation"
          " or test_fresh_tensor or test_gelu_rejects or test_numpy_arrays_are_accepted")
TIMEOUT = 25.0  # per module run in tests (torch import + collection take ~4 s)

ADD_DEF = '    def __add__(self, other: Any) -> "Tensor":\n'
NEG_BODY = '        return Tensor.from_op(np.negative(self.data), "neg", (self,))\n'
assert ADD_DEF in REFERENCE_01 and NEG_BODY in REFERENCE_01


def in_add(code: str) -> str:
    """The reference with `code` (8-space indented lines) run at the start of Tensor.__add__."""
    block = "".join(f"        {line}\n" for line in code.strip("\n").splitlines())
    return REFERENCE_01.replace(ADD_DEF, ADD_DEF + block, 1)


FUTURE = "from __future__ import annotations\n"
assert FUTURE in REFERENCE_01


def with_import(source: str, statement: str) -> str:
    return source.replace(FUTURE, FUTURE + statement + "\n", 1)


def at_import(code: str) -> str:
    return REFERENCE_01 + "\n" + code.strip("\n") + "\n"


def pristine_01() -> str:
    source = M1.reference_dir() / "tensor.py"
    return stubs.make_stub(source.read_text(), source.relative_to(ROOT).as_posix())


VARIANTS: dict[str, str] = {
    "passing": REFERENCE_01,
    "hang": in_add("while True:\n    pass"),
    "hang_at_import": at_import("while True:\n    pass"),
    "allocate": in_add("hog = []\nwhile True:\n    hog.append(bytearray(1 << 26))"),
    # faulthandler is standard library; the static check only flags it (its obvious spelling is rejected).
    "segfault": with_import(in_add('getattr(faulthandler, "_sig" + "segv")()'), "import faulthandler"),
    "exit_at_import": with_import(at_import('getattr(os, "_ex" + "it")(0)'), "import os"),
    "system_exit_at_import": at_import("raise SystemExit(3)"),
    "prints": in_add('print("x" * 2_000_000)'),
    "syntax_error": REFERENCE_01.replace(ADD_DEF, '    def __add__(self, other: Any) -> "Tensor"\n', 1),
    "raises_at_import": at_import('raise RuntimeError("boom at import")'),
    "partial": REFERENCE_01.replace(NEG_BODY, NEG_BODY.replace("np.negative(self.data)", "self.data * 1"), 1),
    "slow_add": with_import(in_add("if self.data.size > 10_000:\n    time.sleep(0.1)"), "import time"),
    # Rejected by the static check: never run.
    "imports_torch": with_import(REFERENCE_01, "import torch"),
    "ctypes_segfault": with_import(in_add("ctypes.string_at(0)"), "import ctypes"),
    "os_exit": with_import(at_import("os._exit(0)"), "import os"),
    "writes_outside": at_import('open("/tmp/kata-evil-{tag}.txt", "w").write("pwned")'),
}


def make_checkout(base: Path, tensor_source: str, *, with_02: bool = False, readme: str | None = None) -> Path:
    """A learner checkout under `base`; returns its katas/ folder."""
    katas = base / "katas"
    (katas / M1.key).mkdir(parents=True, exist_ok=True)
    (katas / M1.key / "tensor.py").write_text(tensor_source)
    if readme is not None:
        (katas / M1.key / "README.md").write_text(readme)
    if with_02:
        (katas / M2.key).mkdir(parents=True, exist_ok=True)
        for name in M2.files:
            (katas / M2.key / name).write_text((M2.reference_dir() / name).read_text())
    return katas


def options(**overrides) -> GradeOptions:
    base = dict(modules=[1], select=SELECT, timeout=TIMEOUT, milestones=False, thresholds=False,
                hypothesis_profile="kata-smoke", memory=3 * 1024**3, tamper_check=False)
    base.update(overrides)
    return GradeOptions(**base)


def snapshot(katas: Path) -> dict[str, str]:
    """Every file of the checkout, __pycache__ included (the grader must not create one)."""
    return {p.relative_to(katas).as_posix(): (integrity.sha256_file(p) if p.is_file() else "dir")
            for p in sorted(katas.rglob("*"))}


def env_without_kata_vars() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TINYTORCH_", "KATA_"))}
