"""Checks for module 03: Layers.

Linear is compared with torch.nn.functional.linear using the *same* weights, on
Hypothesis-drawn sizes and batch shapes; parameter names, counts, state_dict keys
and reprs are compared with the equivalent torch.nn models. Random initialisation
and Dropout are checked statistically, with bounds derived from the sample size
(6 standard errors: a correct implementation fails about once in 10^9 runs), and
for determinism under a seed. Gradients are module 05's job: here we only check
that forward passes are recorded in the graph.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.learner_side import learner_side, probes
from checks.harness.parity import assert_same
from tinytorch import layers as L
from tinytorch.activations import ReLU
from tinytorch.layers import Dropout, Flatten, Linear, Module, Parameter, Sequential
from tinytorch.tensor import Tensor

Z = 6.0  # standard errors allowed in statistical checks
seeds = st.integers(0, 2**32 - 1)


def _torch_linear_like(layer: Linear) -> torch.nn.Linear:
    out = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(layer.weight.numpy()))
        if layer.bias is not None:
            out.bias.copy_(torch.from_numpy(layer.bias.numpy()))
    return out


# -- Parameter ---------------------------------------------------------------------------------------


def test_parameter_is_a_tensor_that_requires_grad():
    p = Parameter(np.ones((2, 3), dtype=np.float32))
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf
    assert p.dtype == np.float32 and p.shape == (2, 3)
    assert Parameter([1.0, 2.0]).dtype == np.float32, "Python data becomes float32, as for Tensor"
    assert Parameter(np.zeros(2), requires_grad=False).requires_grad is False
    assert Parameter(np.zeros(2)).dtype == np.float64, "a float64 array keeps its dtype"
    assert repr(p).startswith("Parameter containing:")
    with pytest.raises(TypeError, match="int64"):
        Parameter(np.array([1, 2]))


# -- Linear ------------------------------------------------------------------------------------------


@given(
    in_features=st.integers(1, 12),
    out_features=st.integers(1, 12),
    batch=st.lists(st.integers(1, 4), min_size=0, max_size=2),
    bias=st.booleans(),
    data=st.data(),
)
def test_linear_forward_matches_torch_functional_linear(in_features, out_features, batch, bias, data):
    layer = Linear(in_features, out_features, bias=bias, generator=np.random.default_rng(0))
    x = data.draw(tst.arrays(tuple(batch) + (in_features,), low=-3, high=3))
    torch_bias = None if not bias else torch.from_numpy(layer.bias.numpy())
    expected = F.linear(torch.from_numpy(x.copy()), torch.from_numpy(layer.weight.numpy()), torch_bias)
    assert_same(layer(Tensor(x)), expected, "Linear forward", scale=float(in_features))


def test_linear_layout_matches_torch():
    layer = Linear(5, 3)
    assert layer.weight.shape == (3, 5), "weight is (out_features, in_features), as in torch"
    assert layer.bias.shape == (3,)
    assert isinstance(layer.weight, Parameter) and isinstance(layer.bias, Parameter)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert Linear(5, 3, bias=False).bias is None
    assert [n for n, _ in Linear(5, 3).named_parameters()] == [n for n, _ in torch.nn.Linear(5, 3).named_parameters()]
    assert [n for n, _ in Linear(5, 3, bias=False).named_parameters()] == ["weight"]


def test_linear_forward_is_recorded_for_autograd():
    layer = Linear(3, 2)
    out = layer(Tensor(np.ones((4, 3), dtype=np.float32)))
    assert out.shape == (4, 2) and out.dtype == np.float32
    assert out.requires_grad and out.grad_fn is not None, "recorded (op 'linear'), so module 05 can differentiate it"
    same = probes().same_object  # identity is asked where the objects live
    assert any(same(t, layer.bias) for t in out.grad_fn.inputs), "the bias is an input of the recorded op"
    out_no_bias = Linear(3, 2, bias=False)(np.ones((4, 3), dtype=np.float32))
    assert out_no_bias.grad_fn.op == "linear", "numpy input is accepted; Linear records one 'linear' op"


def test_linear_shape_errors_name_the_shapes():
    layer = Linear(3, 2)
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        layer(Tensor(np.ones((4, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match="in_features"):
        layer(Tensor(1.0))


@pytest.mark.parametrize(
    "args, kwargs, fragment",
    [((0, 3), {}, "in_features"), ((3, -1), {}, "out_features"), ((2.5, 3), {}, "in_features"),
     ((True, 3), {}, "in_features"), ((3, 3), {"init": "orthogonal"}, "orthogonal")],
)
def test_linear_rejects_bad_arguments(args, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        Linear(*args, **kwargs)


def _bounds_check(values: np.ndarray, bound: float, what: str) -> None:
    """values should be U(-bound, bound): check the range, the mean and the variance statistically."""
    n = values.size
    values = values.astype(np.float64)
    assert np.abs(values).max() <= bound, f"{what}: values exceed the bound {bound:g}"
    variance = bound**2 / 3
    mean_se = math.sqrt(variance / n)
    assert abs(values.mean()) <= Z * mean_se, f"{what}: mean {values.mean():.3g} is not ~0 (se {mean_se:.3g})"
    # Var of the sample variance of U(-a, a) is (mu4 - sigma^4) / n with mu4 = a^4 / 5, sigma^4 = a^4 / 9.
    var_se = math.sqrt((bound**4 / 5 - bound**4 / 9) / n)
    assert abs(values.var() - variance) <= Z * var_se + 1e-12, (
        f"{what}: variance {values.var():.4g}, expected {variance:.4g} (se {var_se:.3g})"
    )


@pytest.mark.parametrize("init", ["kaiming", "xavier"])
@given(fan_in=st.integers(16, 400), fan_out=st.integers(16, 300), seed=seeds)
def test_initialisation_statistics(init, fan_in, fan_out, seed):
    layer = Linear(fan_in, fan_out, init=init, generator=np.random.default_rng(seed))
    gain_fan = fan_in if init == "kaiming" else fan_in + fan_out
    _bounds_check(layer.weight.numpy(), math.sqrt(6.0 / gain_fan), f"{init} weight")
    _bounds_check(layer.bias.numpy(), 1 / math.sqrt(fan_in), "bias")


def test_kaiming_bound_matches_torch_kaiming_uniform():
    layer = Linear(300, 200, generator=np.random.default_rng(1))
    reference = torch.nn.init.kaiming_uniform_(torch.empty(200, 300), nonlinearity="relu")
    xavier = torch.nn.init.xavier_uniform_(torch.empty(200, 300))
    ours_x = Linear(300, 200, init="xavier", generator=np.random.default_rng(1))
    for ours, theirs in ((layer.weight.numpy(), reference), (ours_x.weight.numpy(), xavier)):
        np.testing.assert_allclose(np.abs(ours).max(), theirs.abs().max().item(), rtol=0.01)
        np.testing.assert_allclose(ours.std(), theirs.std().item(), rtol=0.05)


def test_initialisation_is_deterministic_under_a_seed():
    generator = L.manual_seed(7)
    assert isinstance(generator, np.random.Generator) and L.default_generator() is generator
    first = Linear(6, 4).weight.numpy().copy()
    L.manual_seed(7)
    np.testing.assert_array_equal(Linear(6, 4).weight.numpy(), first)
    assert not np.array_equal(Linear(6, 4).weight.numpy(), first), "the generator advances"
    a = Linear(6, 4, generator=np.random.default_rng(3)).weight.numpy()
    L.manual_seed(123)
    b = Linear(6, 4, generator=np.random.default_rng(3)).weight.numpy()
    np.testing.assert_array_equal(a, b)
    L.manual_seed(8)
    assert not np.array_equal(Linear(6, 4).weight.numpy(), first), "another seed, other weights"


# -- Module: registration, names, modes ---------------------------------------------------------------


helpers = learner_side(__file__)
TwoLayer = helpers.TwoLayer  # a user-defined Module (checks/03_layers/learner_side.py)


class TorchTwoLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(3))
        self.encoder = torch.nn.Linear(4, 3)
        self.head = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))


def test_named_parameters_use_torch_names_in_registration_order():
    ours, theirs = TwoLayer(), TorchTwoLayer()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.note == "plain attribute" and ours.encoder is ours._modules["encoder"]
    assert [n for n, _ in ours.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in ours.named_parameters(prefix="model")][:2] == ["model.scale", "model.encoder.weight"]


def test_shared_modules_and_parameters_are_counted_once():
    model = TwoLayer(tied=True)
    names = [n for n, _ in model.named_parameters()]
    assert len(names) == len(set(names)) == 7 and not any(n.startswith("tied") for n in names)
    assert model.num_parameters() == TwoLayer().num_parameters()
    assert [n for n, _ in model.named_modules()].count("tied") == 0


def test_children_and_named_modules():
    model = TwoLayer()
    assert probes().class_names(model.children()) == ["Linear", "Sequential"]
    names = [n for n, _ in model.named_modules()]
    assert names == ["", "encoder", "head", "head.0", "head.2"]
    assert names == [n for n, m in TorchTwoLayer().named_modules() if not isinstance(m, torch.nn.ReLU)]
    assert len(list(model.modules())) == 5


def test_reassigning_and_deleting_attributes():
    model = TwoLayer()
    model.encoder = Linear(4, 3, bias=False)
    assert "encoder.bias" not in dict(model.named_parameters())
    model.scale = None
    assert "scale" not in dict(model.named_parameters()) and model.scale is None
    del model.head
    assert [n for n, _ in model.named_children()] == ["encoder"]
    with pytest.raises(AttributeError, match="missing"):
        model.missing  # noqa: B018
    model.extra = 3
    del model.extra
    assert not hasattr(model, "extra")


def test_assigning_before_super_init_is_a_clear_error():
    with pytest.raises(AttributeError, match=r"super\(\).__init__"):
        helpers.Forgetful()
    with pytest.raises(NotImplementedError, match="forward"):
        Module()(1)


def test_train_and_eval_recurse_and_return_self():
    model = TwoLayer()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.train(False)
    assert not model.head[0].training


def test_zero_grad_clears_or_zeroes():
    model = TwoLayer()
    model.scale = Parameter(np.ones(3))  # float64, beside the float32 Linear parameters
    for p in model.parameters():
        p.grad = Tensor(np.ones(p.shape, dtype=p.dtype))
    model.zero_grad(set_to_none=False)
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and not p.grad.numpy().any(), f"{name}.grad: zeros"
        assert p.grad.dtype == p.dtype, f"{name}.grad: zeros of the parameter's dtype {p.dtype}, got {p.grad.dtype}"
    del model.scale
    model.encoder.weight.grad = None
    model.zero_grad(set_to_none=False)
    assert model.encoder.weight.grad is None
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# -- state_dict --------------------------------------------------------------------------------------


def test_state_dict_round_trip_reproduces_outputs():
    L.manual_seed(0)
    source, target = TwoLayer(), TwoLayer()
    x = Tensor(np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32))
    state = source.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert not np.array_equal(source(x).numpy(), target(x).numpy())
    buffers = probes().DataBuffers(target.parameters())
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())
    assert buffers.all_kept(), "load in place (optimizers hold them)"


def test_state_dict_is_a_copy():
    model = Linear(3, 2)
    state = model.state_dict()
    model.weight.data += 1.0
    assert not np.array_equal(state["weight"], model.weight.numpy()), "later training must not change a saved state"


def test_loading_a_torch_state_dict_gives_torch_outputs():
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    ours = Sequential(Linear(4, 8), ReLU(), Linear(8, 3))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    assert_same(ours(Tensor(x)), theirs(torch.from_numpy(x)), "Sequential forward", scale=8.0)


def test_load_state_dict_errors_name_the_keys_and_load_nothing():
    model = Linear(3, 2)
    before = model.weight.numpy().copy()
    with pytest.raises(KeyError, match="bias"):
        model.load_state_dict({"weight": np.zeros((2, 3))})
    with pytest.raises(KeyError, match="extra"):
        model.load_state_dict({**model.state_dict(), "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"weight.*\(3, 2\).*\(2, 3\)"):
        model.load_state_dict({"weight": np.zeros((3, 2)), "bias": np.ones(2)})
    np.testing.assert_array_equal(model.weight.numpy(), before)
    assert model.bias.numpy().tolist() != [1.0, 1.0], "nothing is loaded when any shape is wrong"
    result = model.load_state_dict({"weight": np.zeros((2, 3)), "other": np.zeros(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["other"]
    assert not model.weight.numpy().any() and model.weight.dtype == np.float32, "converted to the parameter dtype"


# -- profiling helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes, bias",
    [((784, 256, 128, 10), True), ((2, 2, 1), True), ((10, 1), False), ((3, 64, 64, 64, 5), True)],
)
def test_parameter_count_and_memory_match_torch(sizes, bias):
    ours, theirs = [], []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        ours += [Linear(a, b, bias=bias)] + ([ReLU()] if i < len(sizes) - 2 else [])
        theirs += [torch.nn.Linear(a, b, bias=bias)] + ([torch.nn.ReLU()] if i < len(sizes) - 2 else [])
    model, reference = Sequential(*ours), torch.nn.Sequential(*theirs)
    count = sum(p.numel() for p in reference.parameters())
    assert model.num_parameters() == count
    assert model.num_parameters(trainable_only=True) == count
    assert model.parameter_nbytes() == 4 * count, "float32: 4 bytes per parameter"


def test_trainable_only_skips_frozen_parameters():
    model = Sequential(Linear(3, 4), Linear(4, 2))
    model[0].weight.requires_grad = False
    assert model.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2
    assert model.num_parameters(trainable_only=True) == 4 + 4 * 2 + 2


# -- repr ----------------------------------------------------------------------------------------------


def test_repr_matches_torch():
    ours = Sequential(Linear(784, 256), ReLU(), Linear(256, 10, bias=False), Flatten())
    theirs = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10, bias=False),
                                 torch.nn.Flatten())
    assert repr(ours) == repr(theirs)
    nested = Sequential(Sequential(Linear(2, 2)), Dropout(0.25))
    assert repr(nested) == "Sequential(\n  (0): Sequential(\n    (0): Linear(in_features=2, out_features=2, bias=True)\n  )\n  (1): Dropout(p=0.25)\n)"
    assert repr(Module()) == "Module()"


# -- Sequential ----------------------------------------------------------------------------------------


def test_sequential_chains_modules_and_plain_callables():
    model = Sequential(Linear(3, 4), ReLU(), helpers.double, Linear(4, 1))
    x = Tensor(np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32))
    expected = model[3](model[2](model[1](model[0](x))))
    np.testing.assert_array_equal(model(x).numpy(), expected.numpy())
    assert len(model) == 4 and list(model)[1] is model[1] and model[-1] is model[3]
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert [n for n, _ in model.named_children()] == ["0", "3"], "only Modules are children"
    head = model[2:]
    assert isinstance(head, Sequential) and len(head) == 2 and head[1] is model[3]
    assert model.append(Flatten(0)) is model and len(model) == 5


def test_sequential_errors():
    with pytest.raises(TypeError, match="1"):
        Sequential(Linear(2, 2), 3)
    with pytest.raises(TypeError, match="not callable"):
        Sequential().append("relu")
    with pytest.raises(IndexError, match="5"):
        Sequential(Linear(2, 2))[5]
    x = Tensor([1.0, 2.0])
    assert Sequential()(x) is x, "an empty Sequential is the identity"


# -- Dropout -------------------------------------------------------------------------------------------


@given(p=st.floats(0.05, 0.95), seed=seeds, value=st.floats(0.5, 4.0))
def test_dropout_zeroes_a_fraction_p_and_preserves_the_expected_value(p, seed, value):
    n = 20_000
    layer = Dropout(p, generator=np.random.default_rng(seed))
    out = layer(Tensor(np.full((100, n // 100), value, dtype=np.float32))).numpy()
    assert out.shape == (100, n // 100) and out.dtype == np.float32
    zeroed = int((out == 0).sum())
    assert abs(zeroed - n * p) <= Z * math.sqrt(n * p * (1 - p)), f"zeroed {zeroed} of {n} with p={p}"
    survivors = out[out != 0]
    np.testing.assert_allclose(survivors, np.float32(value) * np.float32(1 / (1 - p)), rtol=1e-6)
    mean_se = value * math.sqrt(p / (1 - p) / n)
    assert abs(out.mean(dtype=np.float64) - value) <= Z * mean_se + 1e-6, "inverted dropout keeps E[out] = x"


def test_dropout_in_eval_mode_and_p0_is_the_identity():
    x = Tensor(np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32))
    layer = Dropout(0.5)
    assert layer.eval()(x) is x
    assert Dropout(0.0)(x) is x
    assert Dropout(1.0)(x).numpy().tolist() == np.zeros((4, 5)).tolist()
    model = Sequential(Linear(5, 5), Dropout(0.9))
    model.eval()
    a, b = model(x).numpy(), model(x).numpy()
    np.testing.assert_array_equal(a, b)


def test_dropout_is_deterministic_under_a_seed_and_records_the_graph():
    x = Tensor(np.ones((8, 8)), requires_grad=True)
    L.manual_seed(5)
    first = Dropout(0.5)(x)
    L.manual_seed(5)
    second = Dropout(0.5)(x)
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    assert first.dtype == np.float64, "the mask follows the input's dtype"
    assert first.grad_fn is not None and first.grad_fn.op == "mul", "a Tensor op, so gradients flow"
    assert not np.array_equal(Dropout(0.5)(x).numpy(), first.numpy()), "the generator advances"
    a = Dropout(0.3, generator=np.random.default_rng(9))(x).numpy()
    b = Dropout(0.3, generator=np.random.default_rng(9))(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert repr(Dropout(0.3)) == "Dropout(p=0.3)"


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", True])
def test_dropout_validates_p(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        Dropout(p)


# -- Flatten -------------------------------------------------------------------------------------------


@given(array=tst.arrays(tst.shapes(min_dims=1, max_dims=4)), data=st.data())
def test_flatten_any_rank_and_negative_dims(array, data):
    start = data.draw(st.integers(-array.ndim, array.ndim - 1))
    end = data.draw(st.integers(-array.ndim, array.ndim - 1).filter(lambda e: e % array.ndim >= start % array.ndim))
    assert_same(Flatten(start, end)(Tensor(array)), torch.nn.Flatten(start, end)(torch.from_numpy(array.copy())),
                f"Flatten({start}, {end}) of shape {array.shape}")


@pytest.mark.parametrize("start, end", [(1, -1), (0, -1), (1, 2), (-2, -1), (2, 2), (0, 0)])
def test_flatten_matches_torch(start, end):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    assert_same(Flatten(start, end)(Tensor(x)), torch.nn.Flatten(start, end)(torch.from_numpy(x)), "Flatten")
    assert Flatten()(x).grad_fn is None and Flatten()(Tensor(x, requires_grad=True)).grad_fn.op == "reshape"


def test_flatten_errors():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(IndexError, match="5"):
        Flatten(5)(x)
    with pytest.raises(ValueError, match="start_dim"):
        Flatten(1, 0)(x)
