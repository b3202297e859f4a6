"""Module 19 - Benchmarking: a number without its uncertainty is not a measurement.

Module 14 timed one function (Timer, Stats). A benchmark answers a sharper question: under a
stated *scenario*, how fast is this model, how sure are we, and is variant B really faster than
variant A or is the difference noise? This module gives tinytorch:

    bootstrap_ci(samples, statistic="median", confidence=0.95, resamples=2000, generator=None)
                                   (low, high): Efron's percentile bootstrap interval
    single_stream(predict, queries, warmup=3, clock=time.perf_counter_ns)
                                   MLPerf's SingleStream: one query at a time -> LatencyResult (p50/p90/p99)
    offline(predict, batches, warmup=1, repeats=5, clock=time.perf_counter_ns)
                                   MLPerf's Offline: everything at once -> ThroughputResult (samples/s)
    compare(samples_a, samples_b, confidence=0.95, resamples=2000, generator=None, min_effect=0.05)
                                   ratio of medians b/a, its bootstrap interval and a verdict
    Report(title)                  named results -> a JSON-serialisable dict (schema below) / a .json file

Timing reuses module 14: every query is timed by tinytorch.profiling.Timer (the clock read exactly
twice around the call, a clock going backwards is a ValueError) and percentiles are
tinytorch.profiling.Stats.percentile (numpy's linear interpolation). The clock is injectable
everywhere: any function returning integer nanoseconds.

Randomness: `generator` is anything np.random.default_rng accepts (None, an int seed, a
np.random.Generator); the same seed gives the same interval, bit for bit.

Plotting is NOT in this module: learner code may import only numpy, the standard library and
tinytorch. Report.to_dict() / Report.save(path) write everything a plot needs; the lesson's
plotting script (matplotlib) reads that JSON.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from tinytorch.profiling import Stats, Timer

REPORT_SCHEMA = "tinytorch-katas/benchmark-report/1"
VERDICTS = ("faster", "slower", "no significant difference")
STATISTICS: dict[str, Callable[..., Any]] = {"median": np.median, "mean": np.mean}

# ----------------------------------------------------------------------------
# Helpers (given)
# ----------------------------------------------------------------------------


def _samples(samples: Any, what: str) -> np.ndarray:
    """samples as a non-empty 1-D float64 array of finite numbers >= 0, else a ValueError naming the problem."""
    array = np.asarray(samples.data if hasattr(samples, "data") and not isinstance(samples, np.ndarray)
                       else samples)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{what}: samples must be numbers, got dtype {array.dtype}")
    array = array.astype(np.float64).reshape(-1) if array.ndim <= 1 else None
    if array is None:
        raise ValueError(f"{what}: samples must be a 1-D sequence of numbers")
    if array.size == 0:
        raise ValueError(f"{what}: samples is empty; need at least one measurement")
    bad = np.flatnonzero(~np.isfinite(array) | (array < 0))
    if bad.size:
        raise ValueError(f"{what}: sample {int(bad[0])} is {array[bad[0]]!r}; timings must be finite and >= 0")
    return array


def _confidence(confidence: Any, what: str) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
        raise ValueError(f"{what}: confidence must be a number strictly between 0 and 1, got {confidence!r}")
    return float(confidence)


def _count(value: Any, name: str, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _statistic(statistic: Any, what: str) -> Callable[..., Any]:
    """'median', 'mean' or a callable f(array, axis=...) -> statistic along that axis."""
    if isinstance(statistic, str):
        if statistic not in STATISTICS:
            raise ValueError(f"{what}: unknown statistic {statistic!r}: expected one of {sorted(STATISTICS)}"
                             " or a callable")
        return STATISTICS[statistic]
    if not callable(statistic):
        raise TypeError(f"{what}: statistic must be 'median', 'mean' or a callable, got {type(statistic).__name__}")
    return statistic


def _batch_size(batch: Any) -> int:
    shape = getattr(batch, "shape", None)
    if shape is None:
        shape = np.shape(batch)
    if len(shape) == 0:
        raise ValueError("offline: a batch must have a leading batch dimension, got a 0-D value")
    return int(shape[0])


# ----------------------------------------------------------------------------
# The bootstrap
# ----------------------------------------------------------------------------


def bootstrap_ci(samples: Any, statistic: Any = "median", confidence: float = 0.95, resamples: int = 2000,
                 generator: Any = None) -> tuple[float, float]:
    """Efron's percentile bootstrap interval (low, high) for `statistic` of `samples`.

    Exactly, with x = the samples as float64, n = len(x), alpha = (1 - confidence) / 2:
        rng     = np.random.default_rng(generator)
        idx     = rng.integers(0, n, size=(resamples, n))    # resamples x n draws WITH replacement
        stats   = statistic(x[idx], axis=1)                   # the statistic of every resample
        low, high = np.percentile(stats, [100 * alpha, 100 * (1 - alpha)])
    statistic: "median" (np.median), "mean" (np.mean) or a callable taking (array, axis=1).
    Returns two Python floats. Bad samples (empty, not 1-D, negative, NaN/inf), a confidence outside
    (0, 1) or resamples < 1 are ValueErrors naming the problem.
    """
    # TODO: validate with _samples, _statistic, _confidence, _count; then the four lines above.
    # BEGIN SOLUTION
    x = _samples(samples, "bootstrap_ci")
    stat = _statistic(statistic, "bootstrap_ci")
    alpha = (1.0 - _confidence(confidence, "bootstrap_ci")) / 2.0
    resamples = _count(resamples, "resamples", "bootstrap_ci")
    rng = np.random.default_rng(generator)
    idx = rng.integers(0, x.size, size=(resamples, x.size))
    stats = np.asarray(stat(x[idx], axis=1), dtype=np.float64)
    low, high = np.percentile(stats, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)
    # END SOLUTION


# ----------------------------------------------------------------------------
# MLPerf-style scenarios
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyResult:
    """single_stream's result: one latency per timed query, in ns, in the order they ran."""

    latencies_ns: tuple[int, ...]
    warmup: int

    @property
    def stats(self) -> Stats:
        return Stats(tuple(self.latencies_ns))

    def percentile_ms(self, q: float) -> float:
        return self.stats.percentile(q) / 1e6

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p90_ms(self) -> float:
        return self.percentile_ms(90)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)

    def summary(self) -> dict[str, Any]:
        """Plain data: {"scenario": "single_stream", "queries", "warmup", "p50_ms", "p90_ms", "p99_ms",
        "mean_ms", "min_ms", "max_ms", "latencies_ns": [...]}."""
        stats = self.stats
        return {"scenario": "single_stream", "queries": len(self.latencies_ns), "warmup": self.warmup,
                "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms,
                "mean_ms": stats.mean_ns / 1e6, "min_ms": stats.min_ns / 1e6, "max_ms": stats.max_ns / 1e6,
                "latencies_ns": [int(t) for t in self.latencies_ns]}


def single_stream(predict: Callable[[Any], Any], queries: Sequence[Any], warmup: int = 3,
                  clock: Callable[[], int] = time.perf_counter_ns) -> LatencyResult:
    """MLPerf's SingleStream scenario: issue one query, wait for its answer, then the next.

    First `warmup` untimed calls predict(queries[i % len(queries)]) for i = 0..warmup-1; then each
    query in order is timed alone by module 14's Timer(warmup=0, repeats=1, clock), so the clock is
    read exactly twice per query and never during warm-up. Returns a LatencyResult (p50/p90/p99;
    MLPerf's metric is the 90th percentile). No queries, warmup < 0 or a non-callable predict are errors
    (ValueError / TypeError) naming the problem.
    """
    # TODO: validate; warm-up loop; one Timer(0, 1, clock).measure(predict, query) per query.
    # BEGIN SOLUTION
    if not callable(predict):
        raise TypeError(f"single_stream: predict must be callable, got {type(predict).__name__}")
    queries = list(queries)
    if not queries:
        raise ValueError("single_stream: queries is empty; need at least one query to time")
    warmup = _count(warmup, "warmup", "single_stream", minimum=0)
    for i in range(warmup):
        predict(queries[i % len(queries)])
    timer = Timer(warmup=0, repeats=1, clock=clock)
    latencies = tuple(timer.measure(predict, query).samples_ns[0] for query in queries)
    return LatencyResult(latencies, warmup)
    # END SOLUTION


@dataclass(frozen=True)
class ThroughputResult:
    """offline's result: the wall time of each full pass over the batches, and how many samples a pass has."""

    elapsed_ns: tuple[int, ...]
    samples: int
    warmup: int

    @property
    def throughputs(self) -> tuple[float, ...]:
        """Samples per second of each pass: samples / (elapsed_ns * 1e-9) (inf for a pass of 0 ns)."""
        # BEGIN SOLUTION
        return tuple(self.samples / (t * 1e-9) if t > 0 else math.inf for t in self.elapsed_ns)
        # END SOLUTION

    @property
    def throughput(self) -> float:
        """The median pass's samples per second: samples / (median elapsed seconds)."""
        # BEGIN SOLUTION
        median = Stats(tuple(self.elapsed_ns)).median_ns
        return self.samples / (median * 1e-9) if median > 0 else math.inf
        # END SOLUTION

    def summary(self) -> dict[str, Any]:
        """Plain data: {"scenario": "offline", "samples", "repeats", "warmup", "throughput", "throughputs",
        "elapsed_ns"}; an infinite throughput is written as None (JSON has no inf)."""
        def finite(v: float) -> float | None:
            return v if math.isfinite(v) else None
        return {"scenario": "offline", "samples": self.samples, "repeats": len(self.elapsed_ns),
                "warmup": self.warmup, "throughput": finite(self.throughput),
                "throughputs": [finite(v) for v in self.throughputs],
                "elapsed_ns": [int(t) for t in self.elapsed_ns]}


def offline(predict: Callable[[Any], Any], batches: Sequence[Any], warmup: int = 1, repeats: int = 5,
            clock: Callable[[], int] = time.perf_counter_ns) -> ThroughputResult:
    """MLPerf's Offline scenario: all the data is there at once; what counts is samples per second.

    `warmup` untimed passes, then `repeats` timed passes; a pass calls predict(batch) for every batch
    in order, and is timed as a whole by Timer(warmup=0, repeats=1, clock) (two clock reads per pass).
    samples = the sum of the batches' leading dimension (batch.shape[0]). No batches, a 0-D batch,
    warmup < 0, repeats < 1 or a non-callable predict are errors naming the problem.
    """
    # TODO: validate; count the samples; warm-up passes; Timer(0, 1, clock).measure(one_pass) per repeat.
    # BEGIN SOLUTION
    if not callable(predict):
        raise TypeError(f"offline: predict must be callable, got {type(predict).__name__}")
    batches = list(batches)
    if not batches:
        raise ValueError("offline: batches is empty; need at least one batch")
    samples = sum(_batch_size(b) for b in batches)
    warmup = _count(warmup, "warmup", "offline", minimum=0)
    repeats = _count(repeats, "repeats", "offline")

    def one_pass() -> None:
        for batch in batches:
            predict(batch)

    for _ in range(warmup):
        one_pass()
    timer = Timer(warmup=0, repeats=1, clock=clock)
    return ThroughputResult(tuple(timer.measure(one_pass).samples_ns[0] for _ in range(repeats)), samples, warmup)
    # END SOLUTION


# ----------------------------------------------------------------------------
# Comparing two variants
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """compare's result. ratio = median(b) / median(a): > 1 means b takes longer (b is slower)."""

    ratio: float
    low: float
    high: float
    confidence: float
    min_effect: float
    verdict: str

    def summary(self) -> dict[str, Any]:
        """Plain data: {"ratio", "low", "high", "confidence", "min_effect", "verdict"}."""
        return {"ratio": self.ratio, "low": self.low, "high": self.high, "confidence": self.confidence,
                "min_effect": self.min_effect, "verdict": self.verdict}


def compare(samples_a: Any, samples_b: Any, confidence: float = 0.95, resamples: int = 2000,
            generator: Any = None, min_effect: float = 0.05) -> Comparison:
    """Is variant b slower or faster than variant a? Samples are times (any unit, both the same).

    ratio = median(b) / median(a). Its interval is a percentile bootstrap resampling each side on its own:
        rng = np.random.default_rng(generator)
        ia = rng.integers(0, len(a), size=(resamples, len(a)))      # first a's draws...
        ib = rng.integers(0, len(b), size=(resamples, len(b)))      # ...then b's, from the same rng
        ratios = np.median(b[ib], axis=1) / np.median(a[ia], axis=1)
        low, high = np.percentile(ratios, [100 * alpha, 100 * (1 - alpha)]),  alpha = (1 - confidence) / 2
    verdict: "slower" if low > 1 + min_effect (b is slower by more than min_effect, and we are sure);
             "faster" if high < 1 / (1 + min_effect);
             "no significant difference" otherwise (the interval reaches into the band of irrelevance).
    min_effect >= 0 is the smallest relative change worth reporting (5 % by default): noise on a shared
    machine moves medians by a few per cent, so min_effect=0 flags differences nobody can reproduce.
    A time of 0 in samples_a is a ValueError (a resample's median could be 0: no ratio); so are bad samples,
    confidence, resamples and min_effect.
    """
    # TODO: validate; the ratio of medians; the bootstrap above; the verdict.
    # BEGIN SOLUTION
    a = _samples(samples_a, "compare (samples_a)")
    b = _samples(samples_b, "compare (samples_b)")
    alpha = (1.0 - _confidence(confidence, "compare")) / 2.0
    resamples = _count(resamples, "resamples", "compare")
    if isinstance(min_effect, bool) or not isinstance(min_effect, (int, float)) or not 0.0 <= min_effect < math.inf:
        raise ValueError(f"compare: min_effect must be a finite number >= 0, got {min_effect!r}")
    if np.min(a) == 0:
        raise ValueError("compare: samples_a contains a time of 0, so a ratio of medians is undefined")
    rng = np.random.default_rng(generator)
    ia = rng.integers(0, a.size, size=(resamples, a.size))
    ib = rng.integers(0, b.size, size=(resamples, b.size))
    ratios = np.median(b[ib], axis=1) / np.median(a[ia], axis=1)
    low, high = (float(v) for v in np.percentile(ratios, [100.0 * alpha, 100.0 * (1.0 - alpha)]))
    if low > 1.0 + min_effect:
        verdict = "slower"
    elif high < 1.0 / (1.0 + min_effect):
        verdict = "faster"
    else:
        verdict = "no significant difference"
    return Comparison(float(np.median(b) / np.median(a)), low, high, float(confidence), float(min_effect), verdict)
    # END SOLUTION


# ----------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    """Where the numbers were measured (given): Python, numpy, OS, machine, logical CPUs."""
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"python": platform.python_version(), "numpy": np.__version__, "platform": sys.platform,
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "load_average_1min": load}


class Report:
    """Named benchmark results -> one JSON document.

    Schema "tinytorch-katas/benchmark-report/1" (to_dict()):
        {"schema": REPORT_SCHEMA, "title": str, "environment": environment(),
         "results": [{"name": str, "kind": "latency" | "throughput" | "comparison", **result.summary()}, ...]}
    in the order added; names are unique (a repeated name is a ValueError). Everything is numbers,
    strings, None, lists and dicts: json.dumps(report.to_dict()) always works.
    """

    def __init__(self, title: str):
        self.title = str(title)
        self.results: list[tuple[str, str, Any]] = []

    def add(self, name: str, result: Any) -> Report:
        """Add a LatencyResult, ThroughputResult or Comparison under `name`; returns self (chainable).
        Anything else is a TypeError naming its type."""
        # TODO: pick the kind from the result's class; reject repeated names.
        # BEGIN SOLUTION
        kinds = {LatencyResult: "latency", ThroughputResult: "throughput", Comparison: "comparison"}
        kind = kinds.get(type(result))
        if kind is None:
            raise TypeError(f"Report.add: expected a LatencyResult, ThroughputResult or Comparison,"
                            f" got {type(result).__name__}")
        if any(existing == name for existing, _, _ in self.results):
            raise ValueError(f"Report.add: a result named {name!r} is already in the report")
        self.results.append((str(name), kind, result))
        return self
        # END SOLUTION

    def to_dict(self) -> dict[str, Any]:
        """The document described in the class docstring."""
        # BEGIN SOLUTION
        return {"schema": REPORT_SCHEMA, "title": self.title, "environment": environment(),
                "results": [{"name": name, "kind": kind, **result.summary()} for name, kind, result in self.results]}
        # END SOLUTION

    def save(self, path: Any) -> str:
        """Write to_dict() as indented JSON to `path`; returns the JSON text."""
        text = json.dumps(self.to_dict(), indent=2)
        Path(path).write_text(text + "\n", encoding="utf-8")
        return text
