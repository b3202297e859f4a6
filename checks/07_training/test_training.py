"""Checks for module 07: Training.

Parity with PyTorch where it has the same thing: clip_grad_norm_ (Hypothesis-drawn
gradients, norms 1, 2, 3 and inf), StepLR / CosineAnnealingLR / LinearWarmup
against torch.optim.lr_scheduler (LinearLR and SequentialLR for the warmup), and
a whole Trainer.fit against a hand-written torch training loop from the same
weights. Then the properties a training loop must have: history bookkeeping,
evaluation that neither learns nor records a graph, early stopping, determinism
under a seed, and checkpoints from which resumed training equals uninterrupted
training BIT FOR BIT.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from checks.harness import strategies as tst
from checks.harness.learner_side import learner_side
from checks.harness.parity import assert_same
from tinytorch import layers as L
from tinytorch import training as T
from tinytorch.activations import ReLU, Tanh
from tinytorch.layers import Dropout, Linear, Parameter, Sequential
from tinytorch.losses import CrossEntropyLoss, MSELoss
from tinytorch.optimizers import SGD, Adam
from tinytorch.tensor import Tensor

warnings.filterwarnings("ignore", category=UserWarning, module="torch.optim.lr_scheduler")

# -- clip_grad_norm_ ---------------------------------------------------------------------------------


@given(
    grads=st.lists(tst.arrays(tst.shapes(min_dims=0, max_dims=3)), min_size=1, max_size=4),
    max_norm=st.floats(0.01, 50.0),
    norm_type=st.sampled_from([1.0, 2.0, 3.0, math.inf]),
    missing=st.booleans(),
)
def test_clip_grad_norm_matches_torch(grads, max_norm, norm_type, missing):
    ours, theirs = [], []
    for i, g in enumerate(grads):
        p, tp = Parameter(np.zeros(g.shape, dtype=np.float32)), torch.nn.Parameter(torch.zeros(g.shape))
        if not (missing and i == 0):
            p.grad, tp.grad = Tensor(g.copy()), torch.from_numpy(g.copy())
        ours.append(p)
        theirs.append(tp)
    total = T.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, Tensor)
    assert_same(total, expected, "total norm", scale=10.0)
    for i, (p, tp) in enumerate(zip(ours, theirs)):
        if tp.grad is None:
            assert p.grad is None
        else:
            assert_same(p.grad, tp.grad, f"clipped gradient {i}", scale=10.0)


def test_clip_grad_norm_details():
    p = Parameter(np.zeros(2, dtype=np.float32))
    assert T.clip_grad_norm_([p], 1.0).item() == 0.0, "no gradients: total 0"
    p.grad = Tensor(np.array([3.0, 4.0], dtype=np.float32))
    grad = p.grad
    assert T.clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0), "a single tensor is accepted"
    assert p.grad is grad and np.allclose(grad.numpy(), [0.6, 0.8], atol=1e-6), "scaled in place"
    assert T.clip_grad_norm_(p, 10.0).item() == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(grad.numpy(), [0.6, 0.8], atol=1e-6), "below max_norm: unchanged"
    p.grad = Tensor(np.array([np.inf, 1.0], dtype=np.float32))
    with pytest.raises(RuntimeError, match="non-finite"):
        T.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


# -- learning-rate schedules ---------------------------------------------------------------------------


def _pair(lrs=(0.1, 0.02)):
    ours = SGD([{"params": [Parameter(np.ones(2))], "lr": lr} for lr in lrs], lr=lrs[0], momentum=0.9)
    theirs = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.ones(2))], "lr": lr} for lr in lrs],
                             lr=lrs[0], momentum=0.9)
    return ours, theirs


def _compare_schedules(ours_sched, ours_opt, theirs_sched, theirs_opt, steps=40):
    for epoch in range(steps):
        got = [g["lr"] for g in ours_opt.param_groups]
        expected = [float(g["lr"]) for g in theirs_opt.param_groups]
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-12, err_msg=f"lr at epoch {epoch}")
        np.testing.assert_allclose(ours_sched.get_last_lr(), [float(v) for v in theirs_sched.get_last_lr()],
                                   rtol=1e-7, atol=1e-12)
        theirs_opt.step()
        ours_sched.step()
        theirs_sched.step()


@given(step_size=st.integers(1, 7), gamma=st.floats(0.1, 0.99))
def test_step_lr_matches_torch(step_size, gamma):
    ours, theirs = _pair()
    _compare_schedules(T.StepLR(ours, step_size, gamma), ours,
                       torch.optim.lr_scheduler.StepLR(theirs, step_size, gamma), theirs)


@given(t_max=st.integers(1, 15), eta_min=st.sampled_from([0.0, 1e-4, 0.005]))
def test_cosine_annealing_matches_torch_including_past_t_max(t_max, eta_min):
    ours, theirs = _pair()
    _compare_schedules(T.CosineAnnealingLR(ours, t_max, eta_min), ours,
                       torch.optim.lr_scheduler.CosineAnnealingLR(theirs, t_max, eta_min), theirs)


@given(warmup=st.integers(1, 8), start=st.floats(0.05, 1.0))
def test_linear_warmup_matches_torch_linear_lr(warmup, start):
    ours, theirs = _pair()
    _compare_schedules(T.LinearWarmup(ours, warmup, start_factor=start), ours,
                       torch.optim.lr_scheduler.LinearLR(theirs, start, 1.0, total_iters=warmup), theirs, steps=20)


@given(warmup=st.integers(1, 6), t_max=st.integers(1, 10), start=st.floats(0.05, 1.0))
def test_linear_warmup_then_cosine_matches_torch_sequential_lr(warmup, t_max, start):
    ours, theirs = _pair()
    inner = torch.optim.lr_scheduler.LinearLR(theirs, start, 1.0, total_iters=warmup)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, t_max, eta_min=1e-3)
    sequential = torch.optim.lr_scheduler.SequentialLR(theirs, [inner, cosine], milestones=[warmup])
    mine = T.LinearWarmup(T.CosineAnnealingLR(ours, t_max, eta_min=1e-3), warmup, start_factor=start)
    _compare_schedules(mine, ours, sequential, theirs, steps=25)
    assert mine.inner.last_epoch == 25 - warmup, "the wrapped schedule counts its own epochs"


def test_scheduler_state_dict_round_trip():
    opt, _ = _pair()
    sched = T.LinearWarmup(T.StepLR(opt, 3, 0.5), 2)
    for _ in range(6):
        sched.step()
    state = sched.state_dict()
    assert isinstance(state["inner"], dict) and "optimizer" not in state
    opt2, _ = _pair()
    resumed = T.LinearWarmup(T.StepLR(opt2, 3, 0.5), 2)
    resumed.load_state_dict(state)
    for _ in range(5):
        sched.step()
        resumed.step()
        assert resumed.get_last_lr() == sched.get_last_lr()
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    assert opt.param_groups[0]["initial_lr"] == 0.1


@pytest.mark.parametrize(
    "factory, fragment",
    [(lambda o: T.StepLR(o, 0), "step_size"), (lambda o: T.CosineAnnealingLR(o, 0), "T_max"),
     (lambda o: T.LinearWarmup(o, 0), "warmup_steps"), (lambda o: T.LinearWarmup(o, 3, start_factor=0.0), "start_factor")],
)
def test_scheduler_arguments_are_validated(factory, fragment):
    opt, _ = _pair()
    with pytest.raises(ValueError, match=fragment):
        factory(opt)
    with pytest.raises(NotImplementedError, match="lr_at"):
        T.LRScheduler(opt)


# -- early stopping, progress bar, accuracy ----------------------------------------------------------


def test_early_stopping_counts_epochs_without_improvement():
    stopper = T.EarlyStopping(patience=2, min_delta=0.1)
    decisions = [stopper.step(v) for v in [1.0, 0.8, 0.75, 0.72, 0.71]]
    assert decisions == [False, False, False, False, True], "0.75, 0.72, 0.71 are not better than 0.8 - 0.1"
    assert stopper.best == 0.8 and stopper.best_epoch == 1 and stopper.should_stop
    maximise = T.EarlyStopping(patience=0, monitor="val_acc", mode="max")
    assert [maximise.step(v) for v in [0.5, 0.6, 0.6]] == [False, False, True]
    resumed = T.EarlyStopping(patience=2, min_delta=0.1)
    resumed.load_state_dict(T.EarlyStopping(patience=2, min_delta=0.1).state_dict())
    assert resumed.step(1.0) is False


@pytest.mark.parametrize("kwargs, fragment", [({"mode": "best"}, "mode"), ({"patience": -1}, "patience"),
                                              ({"min_delta": -0.5}, "min_delta")])
def test_early_stopping_validates(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        T.EarlyStopping(**kwargs)


helpers = learner_side(__file__)  # streams, data sources and metrics that live beside the learner's code


def test_progress_bar_draws_with_the_standard_library():
    stream = helpers.text_stream()
    bar = T.ProgressBar(4, prefix="epoch 1", width=8, stream=stream, min_interval=0.0)
    bar.update(loss=0.5)
    assert stream.getvalue() == "\repoch 1 [==>.....] 1/4 loss=0.5000"
    bar.update(3, loss=0.25)
    bar.close()
    assert stream.getvalue().endswith("\repoch 1 [========] 4/4 loss=0.2500\n")
    unknown = T.ProgressBar(None, prefix="eval", stream=helpers.text_stream(), min_interval=0.0)
    unknown.update(2)
    assert unknown.render() == "eval 2"
    throttled = T.ProgressBar(100, stream=helpers.text_stream(), min_interval=3600.0)
    for _ in range(5):
        throttled.update()
    assert throttled.stream.getvalue().count("\r") == 1, "redraws are throttled"


def test_accuracy_metric():
    logits = Tensor(np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]]))
    assert T.accuracy(logits, np.array([0, 1, 1, 0])) == 0.75
    assert T.accuracy(Tensor(np.array([[0.3], [-2.0]])), Tensor(np.array([[1.0], [1.0]]))) == 0.5
    assert T.accuracy(np.array([0.7, 0.2]), np.array([1, 0]), threshold=0.5) == 1.0
    assert T.accuracy(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)) == 0.0


# -- the Trainer ---------------------------------------------------------------------------------------


def _blobs(n=192, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.normal(size=(n, 2)) * 0.5 + np.array([[0, 2], [2, -1], [-2, -1]])[y]).astype(np.float32)
    return x, y.astype(np.int64)


def _shuffled(x, y, batch=32):
    """fit()'s data as a function of the epoch (built beside the learner's code)."""
    return helpers.shuffled(x, y, batch)


def _trainer(seed=0, dropout=0.2, own_generator=False, **kwargs):
    L.manual_seed(seed)
    drop = Dropout(dropout, generator=np.random.default_rng(5) if own_generator else None)
    model = Sequential(Linear(2, 16), ReLU(), drop, Linear(16, 3))
    opt = Adam(model.parameters(), lr=0.02)
    sched = T.LinearWarmup(T.CosineAnnealingLR(opt, T_max=6), 2)
    return T.Trainer(model, opt, CrossEntropyLoss(), scheduler=sched, metrics={"acc": T.accuracy},
                     max_grad_norm=1.0, seed=seed, **kwargs)


def test_fit_learns_and_keeps_a_history():
    x, y = _blobs()
    trainer = _trainer()
    history = trainer.fit(_shuffled(x, y), epochs=6, val_data=[(x, y)])
    assert sorted(history) == ["lr", "train_acc", "train_loss", "val_acc", "val_loss"]
    assert all(len(v) == 6 for v in history.values()) and trainer.epoch == 6
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["val_acc"][-1] >= 0.9
    assert history["lr"][:3] == pytest.approx([0.002, 0.011, 0.02]), "the lr used in each epoch (warmup)"
    assert helpers.refit_returns_the_same_history(trainer, _shuffled(x, y), 6) and trainer.epoch == 6, \
        "epochs is the total to reach"


def test_trainer_fit_equals_a_torch_training_loop():
    x, y = _blobs(96, seed=3)
    batches = [(x[i:i + 16], y[i:i + 16].astype(np.float32).reshape(-1, 1) / 2) for i in range(0, 96, 16)]
    model = Sequential(Linear(2, 8), Tanh(), Linear(8, 1))
    reference = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    reference.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    opt = SGD(model.parameters(), lr=0.2, momentum=0.9)
    trainer = T.Trainer(model, opt, MSELoss(), scheduler=T.StepLR(opt, 2, 0.5), max_grad_norm=0.5)
    history = trainer.fit(batches, epochs=5)
    torch_opt = torch.optim.SGD(reference.parameters(), lr=0.2, momentum=0.9)
    torch_sched = torch.optim.lr_scheduler.StepLR(torch_opt, 2, 0.5)
    losses = []
    for _ in range(5):
        total = 0.0
        for xb, yb in batches:
            torch_opt.zero_grad()
            loss = torch.nn.functional.mse_loss(reference(torch.from_numpy(xb)), torch.from_numpy(yb))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
            torch_opt.step()
            total += loss.item() * len(xb)
        losses.append(total / 96)
        torch_sched.step()
    np.testing.assert_allclose(history["train_loss"], losses, rtol=1e-4)
    for (name, p), tp in zip(model.named_parameters(), reference.parameters()):
        assert_same(p, tp.detach(), f"{name} after 5 epochs", scale=10.0)


def test_evaluate_does_not_learn_nor_record_and_uses_eval_mode():
    x, y = _blobs(64)
    trainer = _trainer(dropout=0.5)
    before = trainer.model.state_dict()
    probe = helpers.Recorder()
    trainer.metrics["probe"] = probe
    first = trainer.evaluate([(x, y)])
    second = trainer.evaluate([(Tensor(x), Tensor(y))])
    assert first == second, "eval mode: Dropout is the identity, so evaluation is repeatable"
    assert all(np.array_equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert probe.outputs[0].grad_fn is None and not probe.outputs[0].requires_grad, "no graph under no_grad"
    assert set(first) == {"loss", "acc", "probe"}


def test_scheduler_interval_batch_and_gradient_clipping():
    x, y = _blobs(64)
    L.manual_seed(0)
    model = Sequential(Linear(2, 3))
    opt = SGD(model.parameters(), lr=1.0)
    trainer = T.Trainer(model, opt, CrossEntropyLoss(), scheduler=T.StepLR(opt, 1, 0.5), scheduler_interval="batch",
                        max_grad_norm=1e-3)
    before = [p.data.copy() for p in model.parameters()]
    trainer.fit([(x[:32], y[:32]), (x[32:], y[32:])], epochs=1)
    assert opt.param_groups[0]["lr"] == 0.25, "stepped after each of the 2 batches"
    moved = math.sqrt(sum(float(np.sum((p.data - b) ** 2)) for p, b in zip(model.parameters(), before)))
    assert moved <= 1e-3 * (1.0 + 0.5) + 1e-6, "each step moves the parameters by at most lr * max_grad_norm"
    with pytest.raises(ValueError, match="scheduler_interval"):
        T.Trainer(model, opt, CrossEntropyLoss(), scheduler_interval="step")


def test_early_stopping_stops_fit():
    x, y = _blobs(64)
    L.manual_seed(0)
    model = Sequential(Linear(2, 3))
    trainer = T.Trainer(model, SGD(model.parameters(), lr=0.0), CrossEntropyLoss(),
                        early_stopping=T.EarlyStopping(patience=2, monitor="train_loss"))
    trainer.fit([(x, y)], epochs=50)
    assert trainer.stopped_early and trainer.epoch == 4, "lr 0 never improves: stop after patience + 1 bad epochs"
    watcher = T.Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss(), early_stopping=T.EarlyStopping())
    with pytest.raises(KeyError, match="val_loss"):
        watcher.fit([(x, y)], epochs=1)
    with pytest.raises(ValueError, match="no batches"):
        watcher.fit([], epochs=5)


def test_progress_output():
    x, y = _blobs(64)
    stream = helpers.text_stream()
    trainer = _trainer(progress=True, stream=stream)
    trainer.fit([(x[:32], y[:32]), (x[32:], y[32:])], 1)
    text = stream.getvalue()
    assert "epoch 1 train [" in text and "2/2" in text and "epoch 1/1: lr=" in text and "train_loss=" in text
    trainer.fit(helpers.halves_without_len(x, y), 2)  # no len(): a count only
    assert "epoch 2 train 2 loss=" in stream.getvalue()


def test_training_is_deterministic_under_a_seed():
    x, y = _blobs()
    first = _trainer(seed=4).fit(_shuffled(x, y), epochs=3)
    second = _trainer(seed=4).fit(_shuffled(x, y), epochs=3)
    third = _trainer(seed=5).fit(_shuffled(x, y), epochs=3)
    assert first == second
    assert first != third


@pytest.mark.parametrize("own_generator", [False, True], ids=["default-generator", "layer-generator"])
@pytest.mark.parametrize("to_file", [False, True], ids=["buffer", "file"])
def test_resumed_training_equals_uninterrupted_training_bit_for_bit(own_generator, to_file, tmp_path):
    x, y = _blobs()
    data, val = _shuffled(x, y), [(x[:64], y[:64])]
    def stop():
        return {"early_stopping": T.EarlyStopping(patience=50)}

    full = _trainer(own_generator=own_generator, **stop())
    full.fit(data, epochs=7, val_data=val)
    first = _trainer(own_generator=own_generator, **stop())
    first.fit(data, epochs=3, val_data=val)
    target = tmp_path / "ckpt.npz" if to_file else helpers.byte_buffer()
    first.save_checkpoint(target)
    first.fit(data, epochs=5, val_data=val)  # the generators advance: the checkpoint must restore them
    if not to_file:
        target.seek(0)
    resumed = _trainer(seed=99, own_generator=own_generator, **stop())
    resumed.load_checkpoint(target)
    assert resumed.epoch == 3 and resumed.early_stopping.epochs_seen == 3
    resumed.fit(data, epochs=7, val_data=val)
    assert resumed.history == full.history
    for (name, a), b in zip(full.model.named_parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=f"{name} differs after resuming")
    assert resumed.optimizer.param_groups[0]["lr"] == full.optimizer.param_groups[0]["lr"]


def test_checkpoint_file_format(tmp_path):
    trainer = _trainer()
    x, y = _blobs(32)
    trainer.fit([(x, y)], epochs=1)
    path = tmp_path / "ckpt.npz"
    trainer.save_checkpoint(path)
    with np.load(path, allow_pickle=False) as data:
        names = set(data.files)
        assert {"model/0.weight", "model/3.bias", "optimizer/0/exp_avg", "optimizer/3/exp_avg_sq", "meta"} <= names
        np.testing.assert_array_equal(data["model/0.weight"], trainer.model[0].weight.numpy())
    model = Sequential(Linear(2, 16), ReLU(), Dropout(0.2), Linear(16, 3))
    T.save_checkpoint(path, model, epoch=2, note="model only")
    assert T.load_checkpoint(path, model) == {"epoch": 2, "note": "model only"}
    with pytest.raises(KeyError, match="optimizer"):
        T.load_checkpoint(path, model, Adam(model.parameters()))
    with pytest.raises(KeyError, match="scheduler"):
        T.load_checkpoint(path, model, scheduler=trainer.scheduler)
