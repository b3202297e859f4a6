"""Checks for module 03: buffers (register_buffer, named_buffers, buffers in state_dict) and forward hooks.

Buffers are compared with torch.nn.Module's: the same model built on both sides (a learner-side
Module, checks/03_layers/learner_side.py, and its torch twin here) must give the same state_dict
keys in the same order (per module: parameters, then persistent buffers, then the children), the
same named_buffers(), and load each other's state. Forward hooks are compared with torch's by
registering the same hooks on both sides and comparing what they logged, in order.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from checks.harness.learner_side import learner_side, probes
from checks.harness.parity import assert_same
from tinytorch.layers import Linear, Parameter, Sequential
from tinytorch.tensor import Tensor

helpers = learner_side(__file__)


class TorchNormalizer(torch.nn.Module):
    def __init__(self, n: int = 3):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("cache", torch.zeros(n), persistent=False)
        self.register_buffer("count", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("empty", None)
        self.scale = torch.nn.Parameter(torch.ones(n))
        self.fc = torch.nn.Linear(n, 2)

    def forward(self, x):
        return self.fc((x - self.mean) * self.scale)


class TorchNetWithBuffers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self.norm = TorchNormalizer(3)
        self.head = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), TorchNormalizer(3))
        self.bias = torch.nn.Parameter(torch.zeros(2))

    def forward(self, x):
        return self.head(self.norm(x)) + self.bias


def _x(seed: int, rows: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).normal(1.0, 2.0, size=(rows, 3)).astype(np.float32)


# -- buffers -----------------------------------------------------------------------------------------


def test_state_dict_keys_order_dtypes_and_named_buffers_match_torch():
    ours, theirs = helpers.NetWithBuffers(), TorchNetWithBuffers()
    state, expected = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(expected), (
        f"state_dict keys: {list(state)}\n torch's: {list(expected)} (per module: parameters, then persistent"
        " buffers, then the children; non-persistent and None buffers left out)")
    for key, value in expected.items():
        got = state[key]
        assert isinstance(got, np.ndarray), f"state_dict[{key!r}] must be a numpy array, got {type(got).__name__}"
        assert got.shape == tuple(value.shape) and got.dtype == value.numpy().dtype, (
            f"state_dict[{key!r}]: shape {got.shape} dtype {got.dtype}, torch's {tuple(value.shape)} {value.dtype}")
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()], (
        "named_buffers(): every registered non-None buffer (non-persistent too), own first, in registration order")
    assert [n for n, _ in ours.named_buffers(recurse=False)] == ["steps"], "named_buffers(recurse=False)"
    assert [n for n, _ in ours.norm.named_buffers(prefix="norm")] == ["norm.mean", "norm.cache", "norm.count"]
    assert [np.asarray(b).shape for b in ours.buffers()] == [tuple(b.shape) for b in theirs.buffers()], "buffers()"
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()], (
        "buffers are not parameters: the optimizer must not see them")


def test_buffers_are_attributes_and_assignment_replaces_them():
    model = helpers.Normalizer(3)
    assert model.mean.dtype == np.float32 and model.mean.shape == (3,), "module.mean reads the buffer"
    assert model.count == 0 and np.asarray(model.count).dtype == np.int64 and model.empty is None
    model.mean = np.full(3, 2.0, dtype=np.float32)
    np.testing.assert_array_equal(model.state_dict()["mean"], np.full(3, 2.0), err_msg="assigning a registered"
                                  " buffer's name replaces the buffer (state_dict sees the new value)")
    assert "mean" in dict(model.named_buffers()) and "mean" not in dict(model.named_parameters())
    model.empty = np.ones(2, dtype=np.float32)
    assert list(model.state_dict()) == ["scale", "mean", "count", "empty", "fc.weight", "fc.bias"], (
        "a None buffer given a value joins state_dict, in its registration place")
    model(Tensor(_x(0)))
    assert model.count == 1, "a buffer updated in place (count += 1) keeps counting"
    model.cache = None
    assert "cache" not in dict(model.named_buffers()), "a buffer set to None is skipped by named_buffers"
    del model.mean
    assert "mean" not in model.state_dict() and "mean" not in dict(model.named_buffers()), "del removes a buffer"
    model.count = Parameter(np.zeros(1, dtype=np.float32))
    assert "count" in dict(model.named_parameters()) and "count" not in dict(model.named_buffers()), (
        "assigning a Parameter to a buffer's name makes it a parameter (as torch)")


def test_state_dict_round_trip_restores_buffers_in_place():
    source, target = helpers.NetWithBuffers(), helpers.NetWithBuffers()
    for seed in range(3):
        source(Tensor(_x(seed)))
    state = source.state_dict()
    assert int(state["norm.count"]) == 3 and int(state["head.2.count"]) == 3, "the training steps were counted"
    assert np.abs(state["norm.mean"]).sum() > 0, "the running mean moved"
    source(Tensor(_x(9)))
    assert int(state["norm.count"]) == 3, "state_dict() is a copy: a later step must not change the saved buffers"
    kept = probes().DataBuffers([target.norm.scale])
    cache_before = np.asarray(target.norm.cache).copy()
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == [], f"load_state_dict: {result}"
    for key, value in state.items():
        np.testing.assert_array_equal(target.state_dict()[key], value, err_msg=f"{key} after load_state_dict")
    assert np.asarray(target.norm.count).dtype == np.int64, "a loaded buffer keeps its dtype"
    np.testing.assert_array_equal(np.asarray(target.norm.cache), cache_before,
                                  err_msg="a non-persistent buffer is neither saved nor loaded")
    assert kept.all_kept(), "parameters are loaded in place"
    loaded = helpers.NetWithBuffers()
    loaded.load_state_dict(state)
    target.eval()
    loaded.eval()
    x = Tensor(_x(11))
    np.testing.assert_array_equal(target(x).numpy(), loaded(x).numpy(),
                                  err_msg="eval outputs of two models loaded from one state_dict")
    fresh = helpers.NetWithBuffers().eval()
    fresh.load_state_dict({k: v for k, v in state.items() if "mean" not in k}, strict=False)
    assert not np.allclose(fresh(x).numpy(), target(x).numpy()), "the loaded buffers change the outputs"


def test_buffers_load_in_place_and_a_torch_model_loads_our_state():
    ours, theirs = helpers.NetWithBuffers(), TorchNetWithBuffers()
    for seed in range(2):
        ours(Tensor(_x(seed)))
    ours.eval()
    result = theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys, f"torch loading our state_dict: {result}"
    x = _x(5)
    assert_same(ours(Tensor(x)), theirs(torch.from_numpy(x)), "outputs of ours and of torch loaded from our"
                " state_dict (buffers included)")
    model = helpers.Normalizer(3)
    model.register_buffer("t", Tensor(np.zeros(2, dtype=np.float64)))
    assert isinstance(model.state_dict()["t"], np.ndarray), "a Tensor buffer is saved as a numpy copy"
    same = probes().DataBuffers([model.t])
    model.load_state_dict({**model.state_dict(), "t": np.array([1.0, 2.0])})
    np.testing.assert_array_equal(model.t.numpy(), [1.0, 2.0], err_msg="Tensor buffer loaded")
    assert same.all_kept(), "a Tensor buffer is loaded in place (its .data array is kept)"


def test_register_buffer_errors_name_the_problem():
    model = helpers.Normalizer(3)
    with pytest.raises(AttributeError, match=r"before Module.__init__\(\)"):
        helpers.EarlyBuffer()
    with pytest.raises(TypeError, match="buffer name should be a string"):
        model.register_buffer(3, np.zeros(2))
    with pytest.raises(KeyError, match="empty string"):
        model.register_buffer("", np.zeros(2))
    with pytest.raises(KeyError, match=r'contain "\."'):
        model.register_buffer("a.b", np.zeros(2))
    for taken in ("fc", "scale", "training"):
        with pytest.raises(KeyError, match=f"attribute '{taken}' already exists"):
            model.register_buffer(taken, np.zeros(2))
    with pytest.raises(TypeError, match="cannot assign.*'int'"):
        model.register_buffer("x", 3)
    with pytest.raises(TypeError, match="cannot assign.*'list'"):
        model.count = [1, 2]
    model.register_buffer("mean", np.ones(3, dtype=np.float32))  # re-registering a buffer's name is allowed
    np.testing.assert_array_equal(model.mean, np.ones(3))
    model.register_buffer("mean", np.ones(3, dtype=np.float32), persistent=False)
    assert "mean" not in model.state_dict() and "mean" in dict(model.named_buffers()), "now non-persistent"
    model.register_buffer("mean", np.ones(3, dtype=np.float32), persistent=True)
    assert "mean" in model.state_dict(), "persistent again"


def test_load_state_dict_checks_buffer_keys_and_shapes_and_loads_nothing_on_error():
    model = helpers.NetWithBuffers()
    state = model.state_dict()
    good = {k: np.ones_like(v) for k, v in state.items()}
    with pytest.raises(ValueError, match=r"head\.2\.mean.*\(4,\).*\(3,\)"):  # a buffer late in the order
        model.load_state_dict({**good, "head.2.mean": np.zeros(4, dtype=np.float32)})
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key], err_msg=f"{key}: nothing is loaded when a shape is wrong")
    missing = {k: v for k, v in good.items() if k != "head.2.count"}
    with pytest.raises(KeyError, match=r"head\.2\.count"):
        model.load_state_dict(missing)
    with pytest.raises(KeyError, match=r"head\.2\.cache"):  # non-persistent: not expected
        model.load_state_dict({**good, "head.2.cache": np.zeros(3, dtype=np.float32)})
    result = model.load_state_dict({**missing, "norm.cache": np.zeros(3)}, strict=False)
    assert result.missing_keys == ["head.2.count"] and result.unexpected_keys == ["norm.cache"], f"{result}"
    assert int(model.norm.count) == 1 and int(model.head[2].count) == 0, "strict=False loads the keys it has"


# -- forward hooks -----------------------------------------------------------------------------------


def _register(model, log, torch_side: bool):
    """The same hooks on a 2-layer Sequential: pre/post on the container and on each layer."""
    handles = []
    for tag, mod in (("seq", model), ("0", model[0]), ("1", model[1])):
        if torch_side:
            handles.append(mod.register_forward_pre_hook(
                lambda m, a, tag=tag: log.append(f"pre {tag} {type(m).__name__} {len(a)}")))
            handles.append(mod.register_forward_hook(
                lambda m, a, o, tag=tag: log.append(f"post {tag} {type(m).__name__} {list(o.shape)}")))
        else:
            handles.append(mod.register_forward_pre_hook(log.pre(tag)))
            handles.append(mod.register_forward_hook(log.post(tag)))
    return handles


def test_hooks_run_in_torchs_order():
    ours = Sequential(Linear(3, 4), Linear(4, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    log, expected = helpers.HookLog(), []
    _register(ours, log, torch_side=False)
    _register(theirs, expected, torch_side=True)
    second = helpers.HookLog()
    ours[0].register_forward_pre_hook(second.pre("later"))
    ours(Tensor(_x(1)))
    theirs(torch.from_numpy(_x(1)))
    assert list(log.log) == expected, f"hook calls: {list(log.log)}\n torch's: {expected}"
    assert list(second.log) == ["pre later Linear 1"], "a second pre-hook on one module runs too, after the first"


def test_hooks_replace_args_and_output_as_in_torch():
    model = Linear(3, 2)
    x = _x(2)
    plain = model(Tensor(x)).numpy()
    log = helpers.HookLog()
    handle = model.register_forward_pre_hook(log.pre("double", helpers.double_args))
    np.testing.assert_allclose(model(Tensor(x)).numpy(), model.forward(Tensor(2.0 * x)).numpy(), rtol=1e-6,
                               err_msg="a pre-hook returning a tuple replaces the args")
    handle.remove()
    handle.remove()  # harmless
    with model.register_forward_pre_hook(log.pre("neg", helpers.negate_bare)):
        np.testing.assert_allclose(model(Tensor(x)).numpy(), model.forward(Tensor(-x)).numpy(), rtol=1e-6,
                                   err_msg="a pre-hook returning a non-tuple value replaces args with (value,)")
    np.testing.assert_array_equal(model(Tensor(x)).numpy(), plain, err_msg="removed hooks no longer run"
                                  " (remove() and leaving the handle's with-block)")
    post = model.register_forward_hook(log.post("plus1", helpers.add_one))
    model.register_forward_hook(log.post("sees"))
    np.testing.assert_allclose(model(Tensor(x)).numpy(), plain + 1.0, rtol=1e-6,
                               err_msg="a forward hook's non-None result replaces the output")
    post.remove()
    np.testing.assert_array_equal(model(Tensor(x)).numpy(), plain, err_msg="after remove()")
    assert list(log.log) == ["pre double Linear 1", "pre neg Linear 1", "post plus1 Linear [5, 2]",
                             "post sees Linear [5, 2]", "post sees Linear [5, 2]"], f"hook log: {list(log.log)}"


def test_hooks_with_kwargs_and_hooks_that_remove_themselves():
    scaler = helpers.Scaler()
    log = helpers.HookLog()
    x = Tensor(np.ones(2, dtype=np.float32))
    pre = scaler.register_forward_pre_hook(log.pre_kwargs("k", new_scale=3.0), with_kwargs=True)
    post = scaler.register_forward_hook(log.post_kwargs("k"), with_kwargs=True)
    np.testing.assert_array_equal(scaler(x, scale=2.0).numpy(), [30.0, 30.0], err_msg=(
        "with_kwargs: the pre-hook's (args, kwargs) replaces both (scale 2 -> 3), the hook's output replaces it (x10)"))
    assert list(log.log) == ["pre k [('scale', 2.0)]", "post k [('scale', 3.0)]"], f"{list(log.log)}"
    pre.remove()
    post.remove()
    with scaler.register_forward_pre_hook(log.bad_pre_kwargs(), with_kwargs=True):
        with pytest.raises(RuntimeError, match=r"\(args, kwargs\)"):
            scaler(x)
    once = helpers.HookLog()
    once.once(scaler, "a")
    scaler(x)
    scaler(x)
    assert list(once.log) == ["once a"], "a hook that removes itself while running runs once"
    with pytest.raises(TypeError, match="hook must be callable"):
        scaler.register_forward_hook(3)
    with pytest.raises(TypeError, match="hook must be callable"):
        scaler.register_forward_pre_hook("not a function")
