"""The checks plugin: `--impl katas|reference` and the Hypothesis profiles (loaded by conftest.py).

    pytest checks/01_tensor                  # your katas (default)
    pytest --impl reference                  # the reference solution (the repo's own test)
    HYPOTHESIS_PROFILE=ci pytest ...         # thorough, derandomized

`--impl` accepts what TINYTORCH_IMPL accepts, e.g. "katas,05=reference".
"""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from hypothesis import HealthCheck, Phase, settings

from grading import assembly, curriculum, remote

# The explain phase costs seconds per failing check and learners see many
# failures at once; the shrunk falsifying example is what they need.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]

settings.register_profile(
    "dev",
    phases=PHASES,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    phases=PHASES,
    max_examples=120,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The grader's own test-suite and smoke runs: a handful of examples, no database.
settings.register_profile(
    "kata-smoke",
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    phases=PHASES,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        default=None,
        help="which tinytorch to check: katas (default), reference, or a mix like 'katas,05=reference'",
    )
    parser.addoption(
        "--isolate", action="store_true", default=False,
        help="run tinytorch in a sandboxed worker process, as the grader does (checks stay in this process)",
    )


def pytest_configure(config: pytest.Config) -> None:
    impl = config.getoption("--impl") or os.environ.get(assembly.IMPL_ENV) or "katas"
    try:
        spec = assembly.parse_impl(impl)
    except assembly.ImplSpecError as err:
        raise pytest.UsageError(str(err)) from None
    # Set before any check module imports tinytorch; xdist workers inherit it.
    os.environ[assembly.IMPL_ENV] = spec.render()
    if config.getoption("--isolate") and not os.environ.get(remote.WORKER_ENV):
        lent = [m.key for m in curriculum.load().modules if spec.for_module(m.number) == "reference"]
        # The worker can write only its scratch folder: pytest's tmp_path lives there too.
        scratch = tempfile.mkdtemp(prefix="kata-isolate-")
        if config.option.basetemp is None:
            config.option.basetemp = os.path.join(scratch, "pytest")
        os.environ[remote.WORKER_ENV] = json.dumps({"impl": spec.render(), "katas": str(assembly.katas_root()),
                                                    "lent": lent, "isolation": "auto", "scratch": scratch})
    # On the grader's trusted side, `tinytorch` is a proxy for the learner's sandboxed worker.
    remote.activate_from_env()


def pytest_report_header(config: pytest.Config) -> str:
    return f"tinytorch implementation: {os.environ[assembly.IMPL_ENV]} (katas from {assembly.katas_root()})"
