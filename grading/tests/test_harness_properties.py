"""The parity harness's properties catch their class of learner mistake, shown on planted ops.

Each case registers a small op with module 05's register_backward (on the reference, in a fresh
interpreter) and runs checks.harness.parity.assert_parity on it: a correct op passes, an op with
the planted mistake fails with a message that says what happened.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PLANT = textwrap.dedent("""
    import sys
    import numpy as np
    import torch
    import tinytorch.autograd
    from tinytorch.autograd import register_backward
    from tinytorch.tensor import Tensor
    from checks.harness.parity import assert_parity

    variant = sys.argv[1]

    def forward(x):
        data = x.data
        if variant == "forward_writes_input":
            return Tensor.from_op(np.maximum(data, 0, out=data), "planted_relu", (x,))
        return Tensor.from_op(np.maximum(data, 0), "planted_relu", (x,))

    @register_backward("planted_relu")
    def _rule(grad, out, inputs, saved):
        if variant == "rule_writes_grad":
            grad *= out.data > 0
            return (grad,)
        return (grad * (out.data > 0),)

    def fn(x):
        return torch.relu(x) if isinstance(x, torch.Tensor) else forward(x)

    x = np.array([[-1.5, 0.5, 2.0], [3.0, -0.25, 1.0]], dtype=np.float32)
    try:
        assert_parity(fn, x, grad=True)
    except AssertionError as error:
        print("FAILED:", " ".join(str(error).split()))
    else:
        print("PASSED")
""")


def run_planted(variant: str) -> str:
    env = {**os.environ, "TINYTORCH_IMPL": "reference", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PLANT, variant], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_correct_op_passes():
    assert run_planted("correct") == "PASSED"


@pytest.mark.parametrize("variant, message", [
    ("rule_writes_grad", "a backward rule wrote into the gradient it received"),
    ("forward_writes_input", "the forward pass modified the array passed in in place"),
])
def test_a_planted_mistake_fails_with_a_message_that_names_it(variant, message):
    output = run_planted(variant)
    assert output.startswith("FAILED:") and message in output, output
