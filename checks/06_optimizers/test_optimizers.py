"""Checks for module 06: Optimizers.

Every optimizer runs side by side with torch.optim on the same initial parameters
and the same gradient sequences (seeded by Hypothesis), assigned to `.grad`
directly: no autograd is needed here. Parameters are compared after EVERY one of
50 steps, for each option combination, in float32 and float64; the optimizer
state (momentum buffers, Adam's moments, step counts) is compared at the end.
Then: state_dict round trips resume identically (bit for bit), parameter groups,
zero_grad, error messages (the same text as torch) and the state's memory.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.harness.learner_side import probes
from checks.harness.parity import assert_same
from tinytorch import optimizers as O
from tinytorch.layers import Linear, Parameter, Sequential
from tinytorch.tensor import Tensor

STEPS = 50
SHAPES = [(3, 4), (4,), (2, 3, 2), ()]

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1, "nesterov": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99)}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.02, "amsgrad": True, "weight_decay": 0.05, "eps": 1e-6, "betas": (0.5, 0.9)}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.0, "amsgrad": True}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True, "betas": (0.7, 0.95)}),
]
CONFIG_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}" for name, kw in CONFIGS]


def _problem(seed: int, dtype, steps: int = STEPS, shapes=SHAPES):
    """Initial values and a gradient sequence; some parameters skip some steps (grad None)."""
    rng = np.random.default_rng(seed)
    init = [np.asarray(rng.normal(size=s), dtype=dtype) for s in shapes]
    grads = []
    for _ in range(steps):
        scale = rng.uniform(0.1, 3.0)
        grads.append([None if i == 1 and rng.random() < 0.2 else np.asarray(scale * rng.normal(size=s), dtype=dtype)
                      for i, s in enumerate(shapes)])
    return init, grads


def _assign(params, torch_params, grads):
    for p, tp, g in zip(params, torch_params, grads):
        p.grad = None if g is None else Tensor(g.copy())
        tp.grad = None if g is None else torch.from_numpy(g.copy())


def _pair(name, kwargs, init):
    params = [Parameter(a.copy()) for a in init]
    torch_params = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    return params, getattr(O, name)(params, **kwargs), torch_params, getattr(torch.optim, name)(torch_params, **kwargs)


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=CONFIG_IDS)
@settings(max_examples=12)  # each example is 50 steps x 4 parameters on both sides; 15 configurations
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]))
def test_trajectory_matches_torch_for_50_steps(name, kwargs, seed, dtype):
    init, grads = _problem(seed, dtype)
    params, opt, torch_params, torch_opt = _pair(name, kwargs, init)
    buffers = probes().DataBuffers(params)
    for step, step_grads in enumerate(grads, start=1):
        _assign(params, torch_params, step_grads)
        opt.step()
        torch_opt.step()
        for i, (p, tp) in enumerate(zip(params, torch_params)):
            assert_same(p.data, tp.detach(), f"{name}{kwargs} parameter {i} after step {step}")
    assert buffers.all_kept(), "update p.data in place, never rebind it"
    assert all(p.dtype == np.dtype(dtype) for p in params), "the parameters keep their dtype"
    theirs = torch_opt.state_dict()["state"]
    ours = opt.state_dict()["state"]
    assert sorted(ours) == sorted(theirs), "state exists for exactly the parameters that were updated"
    for index, torch_state in theirs.items():
        assert set(ours[index]) == set(torch_state), f"state names for parameter {index}"
        for key, value in torch_state.items():
            if key == "step":
                assert ours[index][key] == int(value.item())
            else:
                assert_same(ours[index][key], value, f"state {key!r} of parameter {index}")


@pytest.mark.parametrize("name, kwargs", [CONFIGS[1], CONFIGS[5], CONFIGS[9], CONFIGS[14]], ids=lambda v: str(v))
def test_state_dict_round_trip_resumes_identically(name, kwargs):
    init, grads = _problem(11, np.float32)
    params, opt, _, _ = _pair(name, kwargs, init)
    for step_grads in grads[:20]:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else Tensor(g.copy())
        opt.step()
    saved_params = [p.data.copy() for p in params]
    saved = opt.state_dict()
    for step_grads in grads[20:]:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else Tensor(g.copy())
        opt.step()
    resumed = [Parameter(a.copy()) for a in saved_params]
    fresh = getattr(O, name)(resumed, lr=123.0)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"], "hyperparameters are restored"
    for step_grads in grads[20:]:
        for p, g in zip(resumed, step_grads):
            p.grad = None if g is None else Tensor(g.copy())
        fresh.step()
    for a, b in zip(params, resumed):
        np.testing.assert_array_equal(a.data, b.data, err_msg="resumed training must equal uninterrupted training")


def test_state_dict_is_a_copy_and_uses_parameter_indices():
    params = [Parameter(np.ones(3, dtype=np.float32)), Parameter(np.ones(2, dtype=np.float32))]
    opt = O.Adam(params, lr=0.1)
    params[1].grad = Tensor(np.ones(2, dtype=np.float32))
    opt.step()
    state = opt.state_dict()
    assert list(state["state"]) == [1] and state["param_groups"][0]["params"] == [0, 1]
    assert state["param_groups"][0]["lr"] == 0.1 and state["param_groups"][0]["betas"] == (0.9, 0.999)
    before = state["state"][1]["exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(state["state"][1]["exp_avg"], before)
    state["param_groups"][0]["lr"] = 5.0
    assert opt.param_groups[0]["lr"] == 0.1


def test_load_state_dict_rejects_mismatches():
    params = [Parameter(np.ones(3, dtype=np.float32))]
    opt = O.SGD(params, lr=0.1, momentum=0.9)
    params[0].grad = Tensor(np.ones(3, dtype=np.float32))
    opt.step()
    state = opt.state_dict()
    with pytest.raises(ValueError, match="size"):
        O.SGD([Parameter(np.ones(3)), Parameter(np.ones(1))], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="groups"):
        O.SGD([{"params": [Parameter(np.ones(3))]}, {"params": [Parameter(np.ones(3))]}], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        O.SGD([Parameter(np.ones(4))], lr=0.1).load_state_dict(state)


def test_load_state_dict_checks_every_parameter_not_only_the_first():
    params = [Parameter(np.ones(3, dtype=np.float32)), Parameter(np.ones(2, dtype=np.float32))]
    opt = O.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
    opt.step()
    with pytest.raises(ValueError, match=r"parameter 1.*\(2,\).*\(4,\)"):
        O.SGD([Parameter(np.ones(3)), Parameter(np.ones(4))], lr=0.1, momentum=0.9).load_state_dict(opt.state_dict())


def test_parameter_groups_have_their_own_hyperparameters():
    init, grads = _problem(3, np.float32, steps=10, shapes=[(3,), (2, 2)])
    params = [Parameter(a.copy()) for a in init]
    torch_params = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    opt = O.SGD([{"params": [params[0]]}, {"params": params[1], "lr": 0.5}], lr=0.01, momentum=0.9)
    torch_opt = torch.optim.SGD([{"params": [torch_params[0]]}, {"params": torch_params[1], "lr": 0.5}],
                                lr=0.01, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["momentum"] == 0.9, "missing settings come from the defaults"
    for step_grads in grads:
        _assign(params, torch_params, step_grads)
        opt.step()
        torch_opt.step()
    for p, tp in zip(params, torch_params):
        assert_same(p.data, tp.detach(), "parameter groups")


def test_model_parameters_are_accepted_and_frozen_grads_skipped():
    model = Sequential(Linear(3, 4), Linear(4, 2))
    opt = O.Adam(model.parameters(), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 4
    before = [p.data.copy() for p in model.parameters()]
    model[1].weight.grad = Tensor(np.ones((2, 4), dtype=np.float32))
    opt.step()
    changed = [not np.array_equal(b, p.data) for b, p in zip(before, model.parameters())]
    assert changed == [False, False, True, False], "parameters without .grad are not touched"
    assert len(opt.state) == 1


def test_zero_grad():
    params = [Parameter(np.ones(3, dtype=np.float32)), Parameter(np.ones(2, dtype=np.float32))]
    opt = O.SGD(params, lr=0.1)
    params[0].grad = Tensor(np.ones(3, dtype=np.float32))
    grad = params[0].grad
    opt.zero_grad(set_to_none=False)
    assert params[0].grad is grad and not grad.numpy().any(), "zeroed in place"
    assert params[1].grad is None
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def _torch_message(factory):
    with pytest.raises(ValueError) as info:
        factory()
    return str(info.value)


@pytest.mark.parametrize(
    "name, kwargs",
    [("SGD", {"lr": -0.1}), ("SGD", {"lr": 0.1, "momentum": -0.5}), ("SGD", {"lr": 0.1, "weight_decay": -1.0}),
     ("SGD", {"lr": 0.1, "nesterov": True}), ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}),
     ("Adam", {"lr": -1.0}), ("Adam", {"eps": -1e-8}), ("Adam", {"betas": (1.0, 0.999)}),
     ("Adam", {"betas": (0.9, -0.1)}), ("Adam", {"weight_decay": -0.1}), ("AdamW", {"betas": (0.9, 1.5)}),
     ("AdamW", {"lr": -3.0})],
)
def test_invalid_hyperparameters_raise_torchs_value_errors(name, kwargs):
    expected = _torch_message(lambda: getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))], **kwargs))
    with pytest.raises(ValueError) as info:
        getattr(O, name)([Parameter(np.ones(2))], **kwargs)
    assert str(info.value) == expected


def test_bad_parameter_lists():
    with pytest.raises(ValueError, match="empty"):
        O.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="ndarray"):
        O.Adam([np.ones(2)])
    with pytest.raises(TypeError, match="ndarray"):  # the bad one last: every entry is checked
        O.Adam([Parameter(np.ones(2)), Parameter(np.ones(3)), np.ones(2)])
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="more than one"):
        O.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(NotImplementedError, match="step"):
        O.Optimizer([p], {}).step()


@pytest.mark.parametrize(
    "name, kwargs, buffers",
    [("SGD", {"lr": 0.1}, 0), ("SGD", {"lr": 0.1, "momentum": 0.9}, 1), ("Adam", {}, 2),
     ("AdamW", {}, 2), ("Adam", {"amsgrad": True}, 3)],
)
def test_state_memory_counts_the_extra_buffers(name, kwargs, buffers):
    model = Sequential(Linear(64, 32), Linear(32, 10))
    opt = getattr(O, name)(model.parameters(), **kwargs)
    assert opt.state_nbytes() == 0, "state is created lazily, on the first step"
    for p in model.parameters():
        p.grad = Tensor(np.ones(p.shape, dtype=p.dtype))
    opt.step()
    assert opt.state_nbytes() == buffers * model.parameter_nbytes()


def test_repr_lists_the_hyperparameters():
    text = repr(O.Adam([Parameter(np.ones(2))], lr=0.01))
    assert text.startswith("Adam (") and "lr: 0.01" in text and "betas: (0.9, 0.999)" in text
