"""2017 - Attention sanity check: a tiny GPT learns to write digit sequences backwards.

Before the long Tiny Shakespeare run (milestones/m2017_transformer.py), a task that only attention
can solve and that trains in well under a minute: read 8 random digits, then write them in reverse
order. The i-th output digit is the (8 - i)-th input digit, so every output position must look back
at exactly one earlier position chosen by where it is - content-free, position-based attention -
which a model without working attention (scores, softmax, positional embeddings, the backward
pass through them) cannot learn; the causal mask is audited separately (below). Copying and
reversing short sequences are classic first tests of sequence models (e.g. the copy task of
Graves et al.'s Neural Turing Machine, 2014).

Each example is one token sequence over 11 tokens (digits 0-9 and a separator `|` = 10):

    input  3 1 4 1 5 9 2 6 |  6 2 9 5 1 4 1        (the model's tokens; block_size 16)
    target . . . . . . . . 6  2 9 5 1 4 1 3        (".": ignore_index -100, no loss there)

The model is module 13's GPT (2 layers, 2 heads, 64 wide), trained with module 04's cross_entropy
on the 8 output positions only (the 8 input digits are random: nothing to learn there) and module
06's AdamW, on fresh random sequences every step; the learning rate (a linear warmup, then a
cosine decay) is set on the optimizer from here, so module 07 is not needed.
Modules used: 01-06 (tensor, activations, layers, losses, autograd, optimizers), 11 (embeddings),
12 (attention), 13 (transformer).

Metric: exact match on 1,000 held-out sequences (none of them appears in training): the 8 digits
are decoded greedily and autoregressively - the framework is shown the 8 digits and the separator
only, and each next digit is the argmax of the last position's logits, computed HERE (the trusted
side), appended, and fed back. A sequence counts only if all 8 digits are right. The target is
0.99; guessing gets 1e-8, and the reference with its attention output zeroed gets 0.000 (each digit
~10% right: measured). Greedy decoding reads the last position only, where a missing causal mask
does not show (the reference without it still reverses perfectly, measured), so a causality audit
runs first, as in the 2017 transformer milestone: logits of a prefix must not change when later
tokens do; a failed audit means no metric.
Since the reversed sequence is computed from the inputs by a rule, a framework could in principle
answer without learning; the metric certifies an honest framework, and this is a 5-point sanity
check, not the 2017 milestone.

    python milestones/m2017_reverse.py                         # your katas
    python milestones/m2017_reverse.py --impl reference        # 600 steps: ~14 s of CPU, exact match 1.000
    python milestones/m2017_reverse.py --impl reference --steps 30 --test-size 100   # a smoke run

No data to download. Outputs (--out-dir): training_curve.png (training loss and the exact match
on a monitoring set of 200 sequences).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import MilestoneRun  # noqa: E402  (sibling plumbing: flags, target, verdict)

LENGTH = 8               # digits per sequence
SEP = 10                 # the separator token; the vocabulary is 0-9 and SEP
VOCAB = 11
MODEL = dict(n_layer=2, n_head=2, n_embd=64, block_size=2 * LENGTH)
MONITOR_SIZE = 200       # sequences decoded every --eval-interval steps (the curve, not the metric)


def _flags(parser):
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps (default 600)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    parser.add_argument("--test-size", type=int, default=1000, help="held-out sequences for the metric (default 1000)")
    parser.add_argument("--eval-interval", type=int, default=25, help="steps between monitoring decodes")


run = MilestoneRun.from_cli("reverse", extra=_flags)  # before importing tinytorch: honours --impl
args = run.args
for name in ("steps", "batch_size", "test_size", "eval_interval"):
    if getattr(args, name) <= 0:
        run.log(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
        raise SystemExit(2)

import numpy as np  # noqa: E402

import tinytorch.autograd as autograd  # noqa: E402  (importing it registers the backward engine)
from tinytorch.layers import manual_seed  # noqa: E402
from tinytorch.optimizers import AdamW  # noqa: E402
from tinytorch.transformer import GPT, GPTConfig  # noqa: E402

# Measured with the reference (one BLAS thread, a shared 2-core machine): exact match 1.000 on the 1,000
# test sequences for seeds 0-3, in ~14 s of CPU (600 steps, monitoring every 25; ~20 s wall); the
# monitoring set is at 1.000 from step 50-100 on, so the default leaves a wide margin for a noisier framework.

# -- data: made here, on the trusted side -----------------------------------------------------------
POWERS = 10 ** np.arange(LENGTH - 1, -1, -1, dtype=np.int64)


def as_numbers(digits: np.ndarray) -> np.ndarray:
    """Each row of 8 digits as one integer (to tell sequences apart)."""
    return digits @ POWERS


def draw(rng: np.random.Generator, n: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """n random digit sequences (n, LENGTH), none of whose numbers is in `exclude`."""
    digits = rng.integers(0, 10, (n, LENGTH), dtype=np.int64)
    if exclude is not None:
        clash = np.isin(as_numbers(digits), exclude)
        while clash.any():
            digits[clash] = rng.integers(0, 10, (int(clash.sum()), LENGTH), dtype=np.int64)
            clash = np.isin(as_numbers(digits), exclude)
    return digits


def training_batch(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs [digits, SEP, reversed[:-1]] and targets [-100 x LENGTH, reversed], both (n, 2 * LENGTH)."""
    n = len(digits)
    reverse = digits[:, ::-1]
    x = np.concatenate([digits, np.full((n, 1), SEP), reverse[:, :-1]], axis=1)
    y = np.concatenate([np.full((n, LENGTH), -100), reverse], axis=1)
    return x, y


data_rng = np.random.default_rng([run.seed, 2017])
test_digits = draw(data_rng, args.test_size)
monitor_digits = draw(data_rng, MONITOR_SIZE, exclude=as_numbers(test_digits))
held_out = np.concatenate([as_numbers(test_digits), as_numbers(monitor_digits)])
run.log(f"task: reverse {LENGTH} random digits after a separator; {args.test_size:,} held-out test sequences and"
        f" {MONITOR_SIZE} monitoring sequences, never trained on")

# -- the model --------------------------------------------------------------------------------------
manual_seed(run.seed)
model = GPT(GPTConfig(vocab_size=VOCAB, dropout=0.0, **MODEL))
optimizer = AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
warmup = max(1, min(100, args.steps // 10))
run.log(f"model: GPT {MODEL}, {sum(p.numel() for p in model.parameters()):,} parameters; AdamW, peak lr {args.lr:g}"
        f" ({warmup} warmup steps, cosine decay to 10%), {args.steps} steps of {args.batch_size} fresh sequences")


def learning_rate(step: int) -> float:
    if step < warmup:
        return args.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, args.steps - warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def decode(digits: np.ndarray, batch: int = 500) -> np.ndarray:
    """Greedy autoregressive decoding: the framework sees the digits and SEP, then its own outputs.

    The argmax is taken here from the logits of the last position; returns (n, LENGTH) token ids.
    """
    model.eval()
    outputs = []
    with autograd.no_grad():
        for start in range(0, len(digits), batch):
            chunk = digits[start:start + batch]
            seq = np.concatenate([chunk, np.full((len(chunk), 1), SEP)], axis=1)
            for _ in range(LENGTH):
                logits, _ = model(seq)
                last = np.asarray(logits.numpy(), dtype=np.float64)
                if last.shape != (len(seq), seq.shape[1], VOCAB):
                    raise ValueError(f"GPT returned logits of shape {last.shape} for input {seq.shape};"
                                     f" expected {(len(seq), seq.shape[1], VOCAB)}")
                seq = np.concatenate([seq, last[:, -1, :].argmax(axis=1)[:, None]], axis=1)
            outputs.append(seq[:, LENGTH + 1:])
    model.train()
    return np.concatenate(outputs)


def exact_match(digits: np.ndarray) -> tuple[float, np.ndarray]:
    """(fraction of sequences decoded entirely right, per-position digit accuracy)."""
    correct = decode(digits) == digits[:, ::-1]
    return float(correct.all(axis=1).mean()), correct.mean(axis=0)


AUDIT_ATOL = 1e-3  # logits of an identical prefix may differ by float32 round-off only


def causality_audit(digits: np.ndarray) -> float:
    """The largest change of the logits at positions 0..c when only the tokens after c change.

    Greedy decoding reads the last position only, so a model without a causal mask could still
    pass the metric here, then fail the 2017 transformer milestone's causality audit after a long
    run. This catches it now: each decoded sequence gets a twin whose tokens after a random cut c
    (from the separator on) are random digits, the two are shuffled together (an unseeded
    generator: nothing to predict), and the logits of positions 0..c must agree.
    """
    rng = np.random.default_rng()  # fresh OS entropy on purpose
    full = np.concatenate([digits, np.full((len(digits), 1), SEP), decode(digits)[:, :-1]], axis=1)
    cuts = rng.integers(LENGTH, 2 * LENGTH - 1, len(full))
    twins = full.copy()
    after = np.arange(2 * LENGTH)[None, :] > cuts[:, None]
    twins[after] = rng.integers(0, 10, int(after.sum()))
    order = rng.permutation(2 * len(full))
    mixed = np.empty((2 * len(full), 2 * LENGTH), dtype=np.int64)
    mixed[order] = np.concatenate([full, twins])
    model.eval()
    with autograd.no_grad():
        logits = np.asarray(model(mixed)[0].numpy(), dtype=np.float64)[order]
    model.train()
    gaps = np.where(after[:, :, None], 0.0, np.abs(logits[:len(full)] - logits[len(full):])).max(axis=(1, 2))
    return float(gaps.max())


# -- training ---------------------------------------------------------------------------------------
train_rng = np.random.default_rng([run.seed, 1])
history = {"step": [], "monitor_exact_match": [], "step_loss": []}
started_wall, started_cpu = time.perf_counter(), time.process_time()
model.train()
for step in range(args.steps):
    x, y = training_batch(draw(train_rng, args.batch_size, exclude=held_out))
    optimizer.param_groups[0]["lr"] = learning_rate(step)
    _, loss = model(x, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    value = float(loss.item())
    if not math.isfinite(value):
        run.log(f"step {step + 1}: the training loss is {value}; stopping (no metric)")
        raise SystemExit(run.finish(None, {"error": f"non-finite training loss {value} at step {step + 1}"}))
    history["step_loss"].append(value)
    if (step + 1) % args.eval_interval == 0 or step + 1 == args.steps:
        monitor, _ = exact_match(monitor_digits)
        history["step"].append(step + 1)
        history["monitor_exact_match"].append(monitor)
        recent = float(np.mean(history["step_loss"][-args.eval_interval:]))
        run.log(f"step {step + 1:5d}: loss {recent:.4f} (mean of the last {min(step + 1, args.eval_interval)}),"
                f" monitoring exact match {monitor:.3f}  ({time.perf_counter() - started_wall:5.1f} s)")
train_wall, train_cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu

# -- the causal mask, then the metric --------------------------------------------------------------
worst_gap = causality_audit(monitor_digits)
if not worst_gap <= AUDIT_ATOL:
    problem = (f"causality audit failed: {MONITOR_SIZE} decoded sequences and copies with different tokens after a"
               f" random position c got logits differing by {worst_gap:.3g} (> {AUDIT_ATOL:g}) at positions 0..c,"
               f" which saw identical tokens: the model looks at later tokens (is the attention mask causal?)")
    run.log(problem)
    raise SystemExit(run.finish(None, {"error": problem}))
run.log(f"causality audit: {MONITOR_SIZE} twins with different later tokens, logits of identical prefixes agree to"
        f" {worst_gap:.1e}")

# -- the metric -------------------------------------------------------------------------------------
accuracy, per_position = exact_match(test_digits)
run.log("per-position digit accuracy (output 1 = the last input digit): "
        + "  ".join(f"{i + 1}:{a:.3f}" for i, a in enumerate(per_position)))
run.log(f"training took {train_wall:.1f} s wall, {train_cpu:.1f} s CPU of this process"
        f" (the learner's framework may run in a separate worker process)")
run.log(f"measured exact match {accuracy:.4f} on {args.test_size:,} held-out sequences"
        f" vs target {run.milestone.target:g}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(np.arange(1, len(history["step_loss"]) + 1), history["step_loss"], lw=0.6)
    left.set(xlabel="step", ylabel="cross-entropy on the output digits", yscale="log",
             title="training loss (fresh sequences every step)")
    right.plot(history["step"], history["monitor_exact_match"], "o-", label="monitoring set (200)")
    right.axhline(run.milestone.target, color="gray", ls="--", label=f"target {run.milestone.target:g}")
    right.set(xlabel="step", ylabel="exact match", ylim=(-0.02, 1.02),
              title=f"reversal, greedy decoding: test exact match {accuracy:.3f}")
    right.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(run.plot_path("training_curve.png"), dpi=120)
    plt.close(fig)
    run.log(f"figure: {', '.join(run.artifacts)}")
except ImportError as err:  # plotting is a bonus: never let it hide the result
    run.log(f"(no figures: {err})")

details = {
    "task": f"reverse {LENGTH} digits",
    **MODEL,
    "parameters": int(sum(p.numel() for p in model.parameters())),
    "steps": args.steps,
    "batch_size": args.batch_size,
    "lr": args.lr,
    "test_sequences": args.test_size,
    "per_position_accuracy": [round(float(a), 4) for a in per_position],
    "train_seconds": round(train_wall, 2),
    "train_cpu_seconds": round(train_cpu, 2),
    "causality_audit_max_gap": worst_gap,
    "final_train_loss": round(float(np.mean(history["step_loss"][-min(50, len(history["step_loss"])):])), 5),
    "history": {"step": history["step"], "monitor_exact_match": history["monitor_exact_match"]},
}
raise SystemExit(run.finish(accuracy, details))
