"""Checks for module 14: Profiling.

FLOP counts are compared with PyTorch's own counter, torch.utils.flop_counter.FlopCounterMode,
run on the same computation in torch: `linear_flops` with F.linear (bias or not, 1-D to 3-D
inputs, empty batches), `conv2d_flops` with F.conv2d on Hypothesis-drawn shapes, strides,
paddings (ints, pairs, "same", "valid"), dilations and groups, `attention_flops` with
F.scaled_dot_product_attention (forced onto the math kernel: torch 2.13's counter books nothing
for the CPU flash kernel that `is_causal` and masks select), and `model_flops`/`backward_flops`
with torch twins of Linear stacks, a CNN, an embedding model, a MultiheadAttention layer and a
whole GPT (module 13's architecture: projections, attention, MLP, tied head), forward AND backward.
Parameter counts are compared with the twins' `numel()` sums. `activation_memory` is compared
with the bytes PyTorch's autograd really saves for backward (torch.autograd.graph.
saved_tensors_hooks, each storage once, parameters excluded) on drawn Linear/activation/Dropout
stacks. The Timer runs on a fake clock (a callback on the learner's side), so every sample,
percentile (numpy's linear interpolation), the number of clock reads and the untimed warm-up are
checked exactly. `profile` is checked for one row per leaf layer in call order, non-negative
times, parameters and FLOPs per row that sum to count_parameters and model_flops, shared layers,
and that the model is left exactly as it was (no instance `forward` left behind, Sequential items
unchanged, gradients untouched), even when the forward pass raises.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from checks.harness.learner_side import learner_side, probes
from tinytorch import profiling as P
from tinytorch.activations import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.layers import Dropout, Flatten, Linear, Sequential, manual_seed
from tinytorch.tensor import Tensor

helpers = learner_side(__file__)
# torch warns that padding="same" with an even kernel copies the input; the FLOP count is unaffected.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def torch_flops(fn, *args, **kwargs) -> int:
    """Total FLOPs FlopCounterMode books for fn(*args) (attention forced onto the counted math kernel)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def torch_forward_backward_flops(model, *inputs) -> tuple[int, int]:
    """(forward FLOPs, backward FLOPs) of model(*inputs) and backward() of the first output, as torch counts."""
    with sdpa_kernel(SDPBackend.MATH):
        with FlopCounterMode(display=False) as counter:
            out = model(*inputs)
        out = out[0] if isinstance(out, tuple) else out
        with FlopCounterMode(display=False) as backward:
            out.backward(torch.ones_like(out))
    return int(counter.get_total_flops()), int(backward.get_total_flops())


# -- PyTorch twins -----------------------------------------------------------------------------------

TORCH_ACTIVATIONS = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh,
                     "gelu": torch.nn.GELU, "leaky_relu": lambda: torch.nn.LeakyReLU(0.1),
                     "softmax": lambda: torch.nn.Softmax(-1)}
OUR_ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "gelu": GELU,
                   "leaky_relu": lambda: LeakyReLU(0.1), "softmax": lambda: Softmax(-1)}


class TorchMLP(torch.nn.Module):
    def __init__(self, C: int, bias: bool):
        super().__init__()
        self.c_fc = torch.nn.Linear(C, 4 * C, bias=bias)
        self.c_proj = torch.nn.Linear(4 * C, C, bias=bias)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class TorchBlock(torch.nn.Module):
    def __init__(self, C: int, H: int, bias: bool):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(C, bias=bias)
        self.attn = torch.nn.MultiheadAttention(C, H, bias=bias, batch_first=True)
        self.ln_2 = torch.nn.LayerNorm(C, bias=bias)
        self.mlp = TorchMLP(C, bias)

    def forward(self, x):
        T = x.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=causal, need_weights=False, is_causal=True)[0]
        return x + self.mlp(self.ln_2(x))


class TorchGPT(torch.nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd, bias=True):
        super().__init__()
        self.wte = torch.nn.Embedding(vocab_size, n_embd)
        self.wpe = torch.nn.Embedding(block_size, n_embd)
        self.h = torch.nn.Sequential(*(TorchBlock(n_embd, n_head, bias) for _ in range(n_layer)))
        self.ln_f = torch.nn.LayerNorm(n_embd, bias=bias)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        return self.ln_f(self.h(x)) @ self.wte.weight.T  # the tied head


def _torch_stack(widths, biases, acts):
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(torch.nn.Linear(a, b, bias=biases[i]))
        if acts[i] is not None:
            layers.append(TORCH_ACTIVATIONS[acts[i]]())
    return torch.nn.Sequential(*layers)


def _our_stack(widths, biases, acts):
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(Linear(a, b, bias=biases[i]))
        if acts[i] is not None:
            layers.append(OUR_ACTIVATIONS[acts[i]]())
    return Sequential(*layers)


@st.composite
def linear_stacks(draw, max_layers=4):
    n = draw(st.integers(1, max_layers), label="layers")
    widths = draw(st.lists(st.integers(1, 12), min_size=n + 1, max_size=n + 1), label="widths")
    biases = draw(st.lists(st.booleans(), min_size=n, max_size=n), label="biases")
    acts = draw(st.lists(st.sampled_from([None, *TORCH_ACTIVATIONS]), min_size=n, max_size=n), label="activations")
    batch = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2), label="batch dims"))
    return widths, biases, acts, batch


# -- parameters --------------------------------------------------------------------------------------


@given(case=linear_stacks())
def test_count_parameters_matches_torch_twins(case):
    widths, biases, acts, _ = case
    ours, theirs = _our_stack(widths, biases, acts), _torch_stack(widths, biases, acts)
    expected = sum(p.numel() for p in theirs.parameters())
    assert P.count_parameters(ours) == expected, f"count_parameters of a {widths} stack with biases {biases}"
    first = next(iter(ours.parameters()))
    first.requires_grad = False
    frozen = first.numel()
    assert P.count_parameters(ours, trainable_only=True) == expected - frozen, (
        "count_parameters(trainable_only=True) skips a frozen (requires_grad=False) parameter")
    assert P.count_parameters(ours) == expected, "count_parameters() counts frozen parameters too"


def test_count_parameters_counts_a_tied_embedding_once():
    from tinytorch.transformer import GPT, GPTConfig

    config = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)
    theirs = TorchGPT(**config)
    assert P.count_parameters(GPT(GPTConfig(**config))) == sum(p.numel() for p in theirs.parameters()), (
        "GPT's parameters vs its torch twin (the tied head adds no parameter)")
    with pytest.raises(TypeError, match="Module"):
        P.count_parameters(ReLU())


# -- FLOP formulas -----------------------------------------------------------------------------------


@given(in_f=st.integers(1, 9), out_f=st.integers(1, 9), batch=st.lists(st.integers(0, 4), max_size=2),
       bias=st.booleans())
def test_linear_flops_match_flop_counter(in_f, out_f, batch, bias):
    x = torch.zeros(*batch, in_f)
    w, b = torch.zeros(out_f, in_f), (torch.zeros(out_f) if bias else None)
    expected = torch_flops(F.linear, x, w, b)
    got = P.linear_flops(in_f, out_f, math.prod(batch), bias=bias)
    assert got == expected, (f"linear_flops({in_f}, {out_f}, batch_elems={math.prod(batch)}, bias={bias}) = {got},"
                             f" FlopCounterMode books {expected} for F.linear on input {tuple(x.shape)}")


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3), label="groups")
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = draw(st.sampled_from([1, 2, (1, 2)]), label="dilation")
    d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    padding = draw(st.sampled_from([0, 1, 2, (0, 1), "same", "valid"]), label="padding")
    stride = 1 if padding == "same" else draw(st.sampled_from([1, 2, 3, (2, 1)]), label="stride")
    p = (0, 0) if isinstance(padding, str) else padding if isinstance(padding, tuple) else (padding, padding)
    need = [d[i] * (k[i] - 1) + 1 - 2 * p[i] for i in range(2)]  # the smallest input the kernel fits
    H = draw(st.integers(max(need[0], 1), max(need[0], 1) + 6), label="H")
    W = draw(st.integers(max(need[1], 1), max(need[1], 1) + 6), label="W")
    N = draw(st.integers(0, 3), label="N")
    return N, cin, cout, (H, W), k, stride, padding, dilation, groups


@given(case=conv_cases(), bias=st.booleans())
def test_conv2d_flops_match_flop_counter(case, bias):
    N, cin, cout, (H, W), k, stride, padding, dilation, groups = case
    x, w = torch.zeros(N, cin, H, W), torch.zeros(cout, cin // groups, *k)
    b = torch.zeros(cout) if bias else None
    settings = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    expected = torch_flops(F.conv2d, x, w, b, **settings)
    got = P.conv2d_flops(N, cin, cout, (H, W), k, bias=bias, **settings)
    assert got == expected, (f"conv2d_flops on x {tuple(x.shape)}, weight {tuple(w.shape)}, {settings} = {got};"
                             f" FlopCounterMode books {expected}")
    out = F.conv2d(x, w, b, **settings)
    assert P.conv2d_output_hw((H, W), k, stride, padding, dilation) == tuple(out.shape[2:]), (
        f"conv2d_output_hw({(H, W)}, {k}, {stride}, {padding}, {dilation}) vs torch's output {tuple(out.shape)}")


def test_conv2d_flop_errors_name_the_problem():
    with pytest.raises(ValueError, match="groups"):
        P.conv2d_flops(1, 4, 6, (5, 5), 3, groups=4)
    with pytest.raises(ValueError, match="groups"):
        P.conv2d_flops(1, 4, 3, (5, 5), 3, groups=2)
    with pytest.raises(ValueError, match="stride"):
        P.conv2d_output_hw((5, 5), 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding"):
        P.conv2d_output_hw((5, 5), 3, padding="full")
    with pytest.raises(ValueError, match="fit"):
        P.conv2d_output_hw((2, 5), 3)
    with pytest.raises(ValueError, match="kernel_size"):
        P.conv2d_flops(1, 1, 1, (5, 5), (3, 0))
    with pytest.raises(ValueError, match="in_channels"):
        P.conv2d_flops(1, 0, 1, (5, 5), 3)
    with pytest.raises(ValueError, match="batch"):
        P.conv2d_flops(-1, 1, 1, (5, 5), 3)
    with pytest.raises(ValueError, match="out_features"):
        P.linear_flops(3, 0, 2)
    with pytest.raises(ValueError, match="batch_elems"):
        P.linear_flops(3, 2, 2.5)
    with pytest.raises(ValueError, match="in_features"):
        P.linear_flops(True, 2)


@given(B=st.integers(0, 3), H=st.integers(1, 3), L=st.integers(1, 6), S=st.integers(1, 6), E=st.integers(1, 6),
       Ev=st.one_of(st.none(), st.integers(1, 6)))
def test_attention_flops_match_flop_counter(B, H, L, S, E, Ev):
    q, k, v = torch.zeros(B, H, L, E), torch.zeros(B, H, S, E), torch.zeros(B, H, S, E if Ev is None else Ev)
    expected = torch_flops(F.scaled_dot_product_attention, q, k, v)
    got = P.attention_flops(B, H, L, S, E, Ev)
    assert got == expected, (f"attention_flops(B={B}, heads={H}, L={L}, S={S}, head_dim={E}, value_dim={Ev}) = {got};"
                             f" FlopCounterMode books {expected} for scaled_dot_product_attention")
    causal = torch_flops(lambda: (q @ k.transpose(-2, -1)).tril().softmax(-1) @ v)
    assert got == causal, f"a mask does not change the count: q @ k^T and weights @ v book {causal}"
    with pytest.raises(ValueError, match="head_dim"):
        P.attention_flops(B, H, L, S, 0)


# -- model_flops and backward_flops ------------------------------------------------------------------


@given(case=linear_stacks(), input_grad=st.booleans())
def test_linear_stack_flops_match_torch_forward_and_backward(case, input_grad):
    widths, biases, acts, batch = case
    ours, theirs = _our_stack(widths, biases, acts), _torch_stack(widths, biases, acts)
    shape = batch + (widths[0],)
    forward, backward = torch_forward_backward_flops(theirs, torch.zeros(shape, requires_grad=input_grad))
    got = P.model_flops(ours, shape)
    assert got == forward, f"model_flops of a {widths} stack (biases {biases}) on {shape}: {got} vs torch's {forward}"
    got_backward = P.backward_flops(ours, shape, input_requires_grad=input_grad)
    assert got_backward == backward, (
        f"backward_flops(input_requires_grad={input_grad}) of a {widths} stack on {shape}: {got_backward} vs the"
        f" {backward} FlopCounterMode books for backward()")
    if input_grad:
        assert got_backward == 2 * got, "with the input requiring grad, backward is exactly 2 x forward"


@pytest.mark.parametrize("groups", [1, 2])
def test_cnn_and_embedding_model_flops_match_torch(groups):
    from tinytorch.conv import AvgPool2d, Conv2d, MaxPool2d
    from tinytorch.embeddings import Embedding

    manual_seed(0)
    ours = Sequential(Conv2d(3, 8, 3, padding=1), ReLU(), MaxPool2d(2), Conv2d(8, 8, 3, stride=2, groups=groups),
                      AvgPool2d(2, stride=1), Flatten(), Linear(8 * 2 * 2, 10))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                 torch.nn.Conv2d(8, 8, 3, stride=2, groups=groups), torch.nn.AvgPool2d(2, stride=1),
                                 torch.nn.Flatten(), torch.nn.Linear(8 * 2 * 2, 10))
    for input_grad in (True, False):
        forward, backward = torch_forward_backward_flops(theirs, torch.zeros(2, 3, 16, 16, requires_grad=input_grad))
        assert P.model_flops(ours, (2, 3, 16, 16)) == forward, "model_flops of a small CNN vs FlopCounterMode"
        if groups == 1:  # torch 2.13's counter books a grouped conv's weight gradient as if ungrouped (groups x)
            assert P.backward_flops(ours, (2, 3, 16, 16), input_requires_grad=input_grad) == backward, (
                f"backward_flops of a small CNN (input_requires_grad={input_grad}) vs FlopCounterMode")
    assert P.count_parameters(ours) == sum(p.numel() for p in theirs.parameters()), "CNN parameter count"
    emb = Sequential(Embedding(20, 6), Linear(6, 5))
    theirs = torch.nn.Sequential(torch.nn.Embedding(20, 6), torch.nn.Linear(6, 5))
    forward, backward = torch_forward_backward_flops(theirs, torch.zeros(3, 4, dtype=torch.long))
    assert P.model_flops(emb, (3, 4)) == forward, "model_flops of Embedding -> Linear on (3, 4) token ids"
    assert P.backward_flops(emb, (3, 4), input_requires_grad=False) == backward, (
        "backward_flops of Embedding -> Linear: the Linear's input comes from the table, so it needs dX")


@given(E_per_head=st.integers(1, 4), H=st.integers(1, 3), B=st.integers(1, 3), T=st.integers(1, 6),
       bias=st.booleans(), input_grad=st.booleans())
def test_multihead_attention_flops_match_torch(E_per_head, H, B, T, bias, input_grad):
    from tinytorch.attention import MultiheadAttention

    E = E_per_head * H
    theirs = torch.nn.MultiheadAttention(E, H, bias=bias, batch_first=True)
    x = torch.zeros(B, T, E, requires_grad=input_grad)
    forward, backward = torch_forward_backward_flops(lambda a: theirs(a, a, a, need_weights=False), x)
    ours = MultiheadAttention(E, H, bias=bias)
    assert P.model_flops(ours, (B, T, E)) == forward, (
        f"model_flops of MultiheadAttention({E}, {H}) self-attention on {(B, T, E)} vs FlopCounterMode")
    assert P.backward_flops(ours, (B, T, E), input_requires_grad=input_grad) == backward, (
        f"backward_flops of MultiheadAttention({E}, {H}), input_requires_grad={input_grad}, vs FlopCounterMode")
    L, S = T, T + 2
    expected = torch_flops(lambda q, k: theirs(q, k, k, need_weights=False), torch.zeros(B, L, E), torch.zeros(B, S, E))
    assert P.layer_flops(ours, (B, L, E), (B, S, E)) + P.linear_flops(E, E, B * L) == expected, (
        "layer_flops(MultiheadAttention, query (B, L, E), key (B, S, E)) + its out_proj vs cross-attention in torch")
    unbatched = torch_flops(lambda q: theirs(q, q, q, need_weights=False), torch.zeros(T, E))
    assert P.layer_flops(ours, (T, E), (T, E)) + P.linear_flops(E, E, T) == unbatched, "unbatched (L, E) inputs"
    seq_first = MultiheadAttention(E, H, bias=bias, batch_first=False)
    assert P.layer_flops(seq_first, (L, B, E), (S, B, E)) == P.layer_flops(ours, (B, L, E), (B, S, E)), (
        "batch_first=False reads (L, B, E)")


@given(n_layer=st.integers(1, 2), n_head=st.integers(1, 3), head_dim=st.integers(1, 4), vocab=st.integers(2, 20),
       B=st.integers(1, 3), T=st.integers(1, 8), bias=st.booleans())
def test_gpt_flops_match_torch_twin_forward_and_backward(n_layer, n_head, head_dim, vocab, B, T, bias):
    from tinytorch.transformer import GPT, GPTConfig

    config = dict(vocab_size=vocab, block_size=8, n_layer=n_layer, n_head=n_head, n_embd=n_head * head_dim, bias=bias)
    ours, theirs = GPT(GPTConfig(**config)), TorchGPT(**config)
    forward, backward = torch_forward_backward_flops(theirs, torch.zeros(B, T, dtype=torch.long))
    got = P.model_flops(ours, (B, T))
    assert got == forward, f"model_flops of GPT {config} on ({B}, {T}) token ids: {got} vs the twin's {forward}"
    assert P.backward_flops(ours, (B, T), input_requires_grad=False) == backward, (
        f"backward_flops of GPT {config}: FlopCounterMode books {backward} for backward()")
    assert P.count_parameters(ours) == sum(p.numel() for p in theirs.parameters()), f"GPT {config} parameters"


def test_model_flops_errors_name_the_problem():
    with pytest.raises(TypeError, match="Mystery"):
        P.model_flops(helpers.Mystery(), (2, 4))
    with pytest.raises(ValueError, match="input_shape"):
        P.model_flops(Sequential(Linear(3, 2)), [])
    with pytest.raises(ValueError, match="input_shape"):
        P.model_flops(Sequential(Linear(3, 2)), (2, -3))
    with pytest.raises(ValueError, match=r"in_features=3.*\(2, 4\)"):
        P.model_flops(Sequential(ReLU(), Linear(3, 2)), (2, 4))
    from tinytorch.conv import Conv2d
    from tinytorch.transformer import GPT, GPTConfig

    with pytest.raises(ValueError, match=r"in_channels=3.*\(1, 2, 5, 5\)"):
        P.model_flops(Conv2d(3, 4, 3), (1, 2, 5, 5))
    with pytest.raises(ValueError, match="GPT"):
        P.model_flops(GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4)), (2, 3, 4))
    assert P.model_flops(Dropout(0.1), (3, 4)) == 0 and P.model_flops(Flatten(), (2, 3, 4)) == 0


# -- activation memory -------------------------------------------------------------------------------


def torch_saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct non-parameter storages torch's autograd saves for backward during model(x)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(saved.values())


@given(case=linear_stacks(), lead=st.lists(st.sampled_from(["relu", "tanh", "dropout"]), max_size=2),
       p=st.sampled_from([0.0, 0.25, 0.5]), training=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_activation_memory_matches_what_torch_saves(case, lead, p, training, dtype):
    widths, biases, acts, batch = case
    ours, theirs = _our_stack(widths, biases, acts), _torch_stack(widths, biases, acts)
    for name in lead:  # layers BEFORE the first Linear: nothing requires grad there yet
        ours = Sequential(*([Dropout(p)] if name == "dropout" else [OUR_ACTIVATIONS[name]()]), *ours)
        theirs = torch.nn.Sequential(torch.nn.Dropout(p) if name == "dropout" else TORCH_ACTIVATIONS[name](),
                                     *theirs)
    ours, theirs = Sequential(*ours, Dropout(p)), torch.nn.Sequential(*theirs, torch.nn.Dropout(p))
    ours.train(training)
    theirs.train(training).to(torch.float64 if dtype == np.float64 else torch.float32)
    shape = batch + (widths[0],)
    expected = torch_saved_bytes(theirs, torch.zeros(shape, dtype=torch.float64 if dtype == np.float64 else torch.float32))
    got = P.activation_memory(ours, shape, dtype)
    assert got == expected, (f"activation_memory of {ours!r} on {shape} ({np.dtype(dtype).name},"
                             f" training={training}) = {got}; torch's autograd saves {expected} bytes")


def test_activation_memory_of_the_mnist_mlp_and_errors():
    ours = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    assert P.activation_memory(ours, (64, 784)) == 64 * (784 + 256 + 128) * 4, (
        "the MNIST MLP saves x, relu(h1) and relu(h2): 64 x (784 + 256 + 128) float32")
    from tinytorch.conv import Conv2d, MaxPool2d

    cnn = Sequential(Conv2d(1, 2, 3), ReLU(), Flatten(), Linear(2 * 4 * 4, 3))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32, 3))
    assert P.activation_memory(cnn, (2, 1, 6, 6)) == torch_saved_bytes(theirs, torch.zeros(2, 1, 6, 6)), (
        "Conv2d saves its input; Flatten is a view of the ReLU output the Linear saves")
    with pytest.raises(TypeError, match="MaxPool2d"):
        P.activation_memory(Sequential(Conv2d(1, 2, 3), MaxPool2d(2)), (1, 1, 6, 6))
    with pytest.raises(ValueError, match="input_shape"):
        P.activation_memory(ours, (64, "784"))


# -- Timer -------------------------------------------------------------------------------------------


@given(durations=st.lists(st.integers(0, 10**9), min_size=1, max_size=40), warmup=st.integers(0, 3),
       qs=st.lists(st.floats(0, 100), max_size=5))
def test_timer_on_a_fake_clock_gives_exact_samples_and_percentiles(durations, warmup, qs):
    work = helpers.Workload()
    clock = helpers.FakeClock(durations, work)
    stats = P.Timer(warmup=warmup, repeats=len(durations), clock=clock).measure(work)
    assert list(stats.samples_ns) == durations, "samples_ns: each timed call's after - before, in order"
    assert work.calls == warmup + len(durations), f"{warmup} warm-up calls + {len(durations)} timed calls"
    expected_seen = [warmup + i // 2 + i % 2 for i in range(2 * len(durations))]
    assert list(clock.calls_seen) == expected_seen, (
        "the clock is read exactly twice per timed call (before and after it) and never during warm-up:"
        f" calls completed at each read {list(clock.calls_seen)}, expected {expected_seen}")
    a = np.array(durations, dtype=np.float64)
    for q in [*qs, 0, 50, 90, 99, 100]:
        assert stats.percentile(q) == pytest.approx(np.percentile(a, q), rel=1e-12, abs=1e-6), (
            f"percentile({q}) of {durations} vs np.percentile (linear interpolation)")
    for name, q in (("p50_ns", 50), ("median_ns", 50), ("p90_ns", 90), ("p99_ns", 99)):
        assert getattr(stats, name) == pytest.approx(np.percentile(a, q), rel=1e-12, abs=1e-6), name
    assert (stats.min_ns, stats.max_ns) == (min(durations), max(durations))
    assert stats.mean_ns == pytest.approx(a.mean(), rel=1e-12)
    assert stats.median_ms == pytest.approx(np.median(a) / 1e6, rel=1e-12, abs=1e-12)
    again = P.measure(helpers.Workload(), warmup=0, repeats=len(durations),
                      clock=helpers.FakeClock(durations, helpers.Workload()))
    assert list(again.samples_ns) == durations, "measure(fn, warmup, repeats, clock) is Timer(...).measure(fn)"


def test_timer_measures_real_time_with_perf_counter_ns():
    stats = P.measure(helpers.Workload(0.002), warmup=1, repeats=3)
    assert len(stats.samples_ns) == 3 and all(isinstance(s, int) for s in stats.samples_ns), (
        "3 integer samples (perf_counter_ns gives integer nanoseconds)")
    assert all(2_000_000 <= s < 2_000_000_000 for s in stats.samples_ns), (
        f"a call that sleeps 2 ms takes at least 2e6 ns: samples {stats.samples_ns}")
    assert "median" in repr(stats)


def test_timer_errors_name_the_problem():
    with pytest.raises(ValueError, match="repeats"):
        P.Timer(repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        P.Timer(warmup=-1)
    with pytest.raises(TypeError, match="clock"):
        P.Timer(clock=5)
    with pytest.raises(ValueError, match="backwards"):
        P.Timer(warmup=0, repeats=2, clock=helpers.BackwardsClock()).measure(helpers.Workload())
    stats = P.Timer(warmup=0, repeats=2, clock=helpers.FakeClock([5, 9], helpers.Workload())).measure(helpers.Workload())
    for q in (-1, 100.5):
        with pytest.raises(ValueError, match="percentile"):
            stats.percentile(q)


# -- profile -----------------------------------------------------------------------------------------


def _check_rows(prof, names, kinds=None):
    rows = list(prof.rows)
    got = [r.name for r in rows]
    assert got == names, f"profile rows: one per leaf layer in call order; got {got}, expected {names}"
    if kinds is not None:
        assert [r.kind for r in rows] == kinds, f"row kinds {[r.kind for r in rows]} vs {kinds}"
    for r in rows:
        for what in ("forward_ms", "backward_ms", "gflops_per_s"):
            value = getattr(r, what)
            assert math.isfinite(value) and value >= 0, f"row {r.name}: {what} = {value} (must be finite, >= 0)"
    return rows


def test_profile_of_the_mnist_mlp():
    manual_seed(0)
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    theirs = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                 torch.nn.ReLU(), torch.nn.Linear(128, 10))
    x = np.random.default_rng(0).normal(size=(32, 784)).astype(np.float32)
    before = model(Tensor(x)).numpy().copy()
    items = helpers.sequential_items(model)
    prof = P.profile(model, Tensor(x), warmup=1, repeats=3)
    rows = _check_rows(prof, ["0", "1", "2", "3", "4"], ["Linear", "ReLU", "Linear", "ReLU", "Linear"])
    assert [r.params for r in rows] == [sum(p.numel() for p in m.parameters()) for m in theirs], (
        "params per row vs the torch twin's layers")
    expected = [torch_flops(m, torch.zeros(32, m.in_features)) if isinstance(m, torch.nn.Linear) else 0 for m in theirs]
    assert [r.flops for r in rows] == expected, f"FLOPs per row vs FlopCounterMode per layer: {expected}"
    assert prof.total_flops == sum(expected) == P.model_flops(model, (32, 784)), "the rows sum to model_flops"
    for r in rows[::2]:
        assert r.forward_ms > 0 and r.backward_ms > 0, f"a Linear takes time forward and backward: row {r.name}"
        assert r.gflops_per_s == pytest.approx(r.flops / (r.forward_ms * 1e6)), "GFLOP/s = flops / forward time"
    assert prof.total_forward_ms >= 0 and prof.other_forward_ms >= 0
    text = prof.render()
    assert all(name in text for name in ("Linear", "ReLU", "GFLOP/s")) and str(prof) == text, (
        "render() is a text table naming the layers")
    assert len(text.splitlines()) >= len(rows) + 2, "one line per row plus a header"
    assert helpers.forward_overrides(model) == [], "profile sets no instance `forward` (it uses module 03's hooks)"
    assert helpers.hooks_left(model) == [], "profile removed every forward hook it registered"
    assert helpers.same_items(helpers.sequential_items(model), items), "the Sequential holds its original items again"
    assert all(p.grad is None for p in model.parameters()), "profile leaves the parameters' .grad as it found them"
    np.testing.assert_array_equal(model(Tensor(x)).numpy(), before, err_msg="the model computes the same after profile")


def test_profile_of_a_gpt_sums_to_model_flops_and_count_parameters():
    from tinytorch.transformer import GPT, GPTConfig

    manual_seed(0)
    config = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8)
    model = GPT(config)
    idx = np.random.default_rng(0).integers(0, 13, (2, 8))
    prof = P.profile(model, idx, warmup=0, repeats=2)
    names = ["(self)", "wte", "wpe", "drop"]
    for i in range(2):
        names += [f"h.{i}.ln_1", f"h.{i}.attn (self)", f"h.{i}.attn.out_proj", f"h.{i}.drop", f"h.{i}.ln_2",
                  f"h.{i}.mlp.c_fc", f"h.{i}.mlp.c_proj", f"h.{i}.mlp.dropout"]
    rows = _check_rows(prof, names + ["ln_f"])
    assert sum(r.flops for r in rows) == P.model_flops(model, (2, 8)) == torch_flops(
        TorchGPT(13, 8, 2, 2, 8), torch.zeros(2, 8, dtype=torch.long)), "GPT rows' FLOPs sum to model_flops (= torch)"
    assert rows[0].flops == 2 * 2 * 8 * 8 * 13, "the (self) row of GPT is the tied head: 2 * B*T * C * vocab"
    assert sum(r.params for r in rows) == P.count_parameters(model), "the rows' params sum to count_parameters"
    assert helpers.forward_overrides(model) == [], "profile sets no instance `forward` (it uses module 03's hooks)"
    assert helpers.hooks_left(model) == [], "profile removed every forward hook it registered"


def test_profile_counts_a_shared_layer_once_with_both_calls():
    manual_seed(0)
    model = helpers.TwoTowers()
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    prof = P.profile(model, Tensor(x), backward=False, warmup=0, repeats=2)
    rows = _check_rows(prof, ["stem", "body.0", "body.1", "body.2", "shared", "head"])
    shared = rows[4]
    assert shared.flops == 2 * P.linear_flops(8, 8, 5), "the shared Linear is called twice: its row counts both calls"
    assert shared.params == 64 and all(r.backward_ms == 0 for r in rows), "backward=False times no backward"
    assert prof.total_flops == sum(r.flops for r in rows)


def test_profile_gives_a_run_of_plain_items_one_row_timed_between_the_hooks():
    manual_seed(0)
    model = Sequential(Tanh(), Linear(4, 6), ReLU(), Sigmoid(), Linear(6, 2), ReLU())
    x = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    before = model(Tensor(x)).numpy()
    clock = helpers.TickingClock(1000)  # a fake clock: every reading 1000 ns after the one before
    prof = P.profile(model, Tensor(x), backward=True, warmup=0, repeats=1, clock=clock)
    rows = _check_rows(prof, ["0", "1", "2-3", "4", "5"], ["Tanh", "Linear", "ReLU+Sigmoid", "Linear", "ReLU"])
    assert [r.flops for r in rows] == [0, P.linear_flops(4, 6, 5), 0, P.linear_flops(6, 2, 5), 0], (
        "FLOPs per row (a run of plain items: the sum of its items')")
    assert all(r.forward_ms > 0 for r in rows), (
        f"every row, plain items included, gets the time between the hooks around it: {[r.forward_ms for r in rows]}")
    assert rows[2].backward_ms > 0, "the ReLU+Sigmoid run is replayed on the first Linear's output"
    assert helpers.hooks_left(model) == [] and helpers.forward_overrides(model) == []
    np.testing.assert_array_equal(model(Tensor(x)).numpy(), before, err_msg="the model computes the same after profile")


def test_profile_restores_the_model_when_forward_raises():
    model = helpers.Exploding(after=1)
    items = helpers.sequential_items(model.seq)
    with pytest.raises(ValueError, match="boom"):
        P.profile(model, Tensor(np.ones((2, 3), dtype=np.float32)), warmup=1, repeats=2)
    assert helpers.forward_overrides(model) == [], "after an exception no instance `forward` is left behind"
    assert helpers.hooks_left(model) == [], "after an exception every forward hook profile registered is removed"
    assert helpers.same_items(helpers.sequential_items(model.seq), items), "the Sequential's items are restored"
    with pytest.raises(TypeError, match="Module"):
        P.profile(ReLU(), Tensor(np.ones(2, dtype=np.float32)))
