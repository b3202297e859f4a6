"""Checks for module 19: Benchmarking.

Statistics are compared with plain numpy transcriptions of the documented formulas on the same
samples and the same seed, bit for bit: the percentile bootstrap (np.random.default_rng(seed),
rng.integers draws, np.percentile of the resampled statistic) and the bootstrap of a ratio of
medians. Coverage properties: the interval of an odd-sized sample's median contains it; more
samples give a narrower interval. The scenarios run on a fake clock (a learner-side callback), so
every latency, percentile (numpy's linear interpolation), throughput, the number of clock reads
and the untimed warm-up are exact. compare() is checked on Hypothesis-drawn lognormal timing
samples with a few outliers: a variant slowed by a factor >= 1.5 is "slower" (and the swap
"faster"), two identical sample sets (the same, or a permutation) are never flagged, nor are two
large independent draws from one distribution. One real-time check: a predict that sleeps 3x
longer is found slower through single_stream + compare with the real clock.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from checks.harness.learner_side import learner_side
from tinytorch import benchmarking as B
from tinytorch.tensor import Tensor

helpers = learner_side(__file__)

CONFIDENCES = st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99])
SEEDS = st.integers(0, 2**32 - 1)


def _lognormal(seed: int, n: int, sigma: float, median_ns: float, outliers: int = 0) -> np.ndarray:
    """n timings around median_ns (lognormal with shape sigma), `outliers` of them 5-20x slower."""
    rng = np.random.default_rng(seed)
    x = rng.lognormal(np.log(median_ns), sigma, n)
    x[rng.choice(n, outliers, replace=False)] *= rng.uniform(5, 20, outliers)
    return x


@st.composite
def timings(draw, n=(5, 60), sigma=(0.01, 0.5), outlier_share=0.05):
    n = draw(st.integers(*n))
    return _lognormal(draw(SEEDS), n, draw(st.floats(*sigma)), draw(st.floats(1e3, 1e8)),
                      draw(st.integers(0, int(n * outlier_share))))


def _numpy_bootstrap(x, stat, confidence, resamples, seed):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(resamples, len(x)))
    alpha = (1 - confidence) / 2
    return tuple(np.percentile(stat(x[idx], axis=1), [100 * alpha, 100 * (1 - alpha)]))


def _numpy_ratio_bootstrap(a, b, confidence, resamples, seed):
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), size=(resamples, len(a)))
    ib = rng.integers(0, len(b), size=(resamples, len(b)))
    alpha = (1 - confidence) / 2
    ratios = np.median(b[ib], axis=1) / np.median(a[ia], axis=1)
    return tuple(np.percentile(ratios, [100 * alpha, 100 * (1 - alpha)]))


# ----------------------------------------------------------------------------
# bootstrap_ci
# ----------------------------------------------------------------------------


@given(timings(n=(1, 60)), st.sampled_from(["median", "mean"]), CONFIDENCES, st.integers(1, 400), SEEDS,
       st.sampled_from(["seed", "generator", "list", "Tensor"]))
def test_bootstrap_ci_matches_a_numpy_transcription(x, statistic, confidence, resamples, seed, form):
    expected = _numpy_bootstrap(x, {"median": np.median, "mean": np.mean}[statistic], confidence, resamples, seed)
    generator = np.random.default_rng(seed) if form == "generator" else seed
    samples = x.tolist() if form == "list" else Tensor(x) if form == "Tensor" else x
    got = B.bootstrap_ci(samples, statistic=statistic, confidence=confidence, resamples=resamples,
                         generator=generator)
    assert isinstance(got, tuple) and len(got) == 2, f"bootstrap_ci returns (low, high), got {got!r}"
    np.testing.assert_array_equal(np.array(got), np.array(expected), err_msg=(
        f"bootstrap_ci({statistic}, confidence={confidence}, resamples={resamples}, seed={seed}, samples as"
        f" {form}, n={len(x)}) against np.percentile of the statistic of rng.integers(0, n, (resamples, n)) draws"))
    assert got[0] <= got[1], f"low {got[0]} > high {got[1]}"


@given(timings(n=(3, 40)), SEEDS)
def test_bootstrap_ci_takes_a_learner_defined_statistic(x, seed):
    expected = _numpy_bootstrap(x, lambda v, axis: np.percentile(v, 90, axis=axis), 0.9, 300, seed)
    got = B.bootstrap_ci(x, statistic=helpers.p90, confidence=0.9, resamples=300, generator=seed)
    np.testing.assert_array_equal(
        np.array(got), np.array(expected),
        err_msg="bootstrap_ci with a callable statistic(x[idx], axis=1) (the 90th percentile)")


@given(SEEDS, st.integers(5, 40).map(lambda k: 2 * k + 1), st.floats(0.05, 0.5))
def test_bootstrap_ci_contains_the_median_and_narrows_with_more_samples(seed, n, sigma):
    large = _lognormal(seed, 16 * n + 1, sigma, 1e6)
    chunks = [large[i * n:(i + 1) * n] for i in range(16)]  # 16 disjoint samples of n (odd)
    widths = []
    for sample in chunks + [large]:
        low, high = B.bootstrap_ci(sample, generator=seed)
        median = float(np.median(sample))
        assert low <= median <= high, (
            f"the 95% bootstrap interval ({low}, {high}) of the median of {len(sample)} samples (odd) must contain"
            f" the sample median {median}: at least half of every resample's draws fall on each side of it")
        widths.append(high - low)
    typical_small = float(np.median(widths[:-1]))
    assert widths[-1] < typical_small, (
        f"the interval of the median must narrow with 16x more samples: median width {typical_small} over 16"
        f" samples of {n}, width {widths[-1]} for all {len(large)} of them together")


def test_bootstrap_ci_is_deterministic_under_a_seed_and_varies_without_one():
    x = _lognormal(3, 41, 0.3, 1e5)
    first, again = B.bootstrap_ci(x, generator=7), B.bootstrap_ci(x, generator=7)
    assert first == again, f"the same seed must give the same interval: {first} then {again}"
    other = B.bootstrap_ci(x, generator=8)
    assert first != other, f"seeds 7 and 8 gave the same interval {first}: the seed is not used"
    low, high = B.bootstrap_ci(x, confidence=0.5, generator=7)
    assert first[0] <= low <= high <= first[1], (
        f"a 50% interval ({low}, {high}) must lie inside the 95% one {first} from the same resamples")


def test_bootstrap_ci_errors_name_the_problem():
    good = [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="empty"):
        B.bootstrap_ci([])
    with pytest.raises(ValueError, match="1-D"):
        B.bootstrap_ci(np.ones((2, 2)))
    with pytest.raises(ValueError, match="numbers"):
        B.bootstrap_ci(["a", "b"])
    for bad in (np.nan, np.inf, -1.0):
        with pytest.raises(ValueError, match="sample 2"):
            B.bootstrap_ci(good[:2] + [bad] + good)
    for confidence in (0.0, 1.0, 1.5, True):
        with pytest.raises(ValueError, match="confidence"):
            B.bootstrap_ci(good, confidence=confidence)
    for resamples in (0, 2.5, True):
        with pytest.raises(ValueError, match="resamples"):
            B.bootstrap_ci(good, resamples=resamples)
    with pytest.raises(ValueError, match="statistic"):
        B.bootstrap_ci(good, statistic="mode")
    with pytest.raises(TypeError, match="statistic"):
        B.bootstrap_ci(good, statistic=3)


# ----------------------------------------------------------------------------
# Scenarios
# ----------------------------------------------------------------------------


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=30), st.integers(0, 5))
def test_single_stream_on_a_fake_clock_gives_exact_latencies_and_percentiles(durations, warmup):
    predict = helpers.Predict()
    clock = helpers.FakeClock(durations, predict)
    queries = list(range(100, 100 + len(durations)))
    result = B.single_stream(predict, queries, warmup=warmup, clock=clock)
    assert list(result.latencies_ns) == durations, (
        f"single_stream latencies {list(result.latencies_ns)} != the fake clock's durations {durations}")
    expected_seen = [queries[i % len(queries)] for i in range(warmup)] + queries
    assert list(predict.seen) == expected_seen, (
        f"predict was called with {list(predict.seen)}, expected warm-up on queries[i % n] then every query once,"
        f" in order: {expected_seen}")
    reads = [warmup + i // 2 + i % 2 for i in range(2 * len(durations))]
    assert list(clock.calls_seen) == reads, (
        f"the clock is read twice per query (before and after it) and never during warm-up: calls completed at"
        f" each read {list(clock.calls_seen)}, expected {reads}")
    for q, value in ((50, result.p50_ms), (90, result.p90_ms), (99, result.p99_ms)):
        expected = np.percentile(np.array(durations, dtype=np.float64), q) / 1e6
        assert value == pytest.approx(expected, rel=1e-12, abs=1e-12), f"p{q}_ms {value} != np.percentile {expected}"
    summary = result.summary()
    assert summary["scenario"] == "single_stream" and summary["queries"] == len(durations)
    assert summary["warmup"] == warmup and summary["latencies_ns"] == durations
    assert summary["p90_ms"] == pytest.approx(result.p90_ms) and summary["min_ms"] == min(durations) / 1e6
    assert summary["max_ms"] == max(durations) / 1e6
    assert summary["mean_ms"] == pytest.approx(np.mean(durations) / 1e6, rel=1e-12, abs=1e-12)


@given(st.lists(st.integers(1, 10), min_size=1, max_size=5), st.integers(0, 3), st.integers(1, 6),
       st.lists(st.integers(1, 10**9), min_size=6, max_size=6))
def test_offline_on_a_fake_clock_gives_exact_throughput(batch_sizes, warmup, repeats, durations):
    durations = durations[:repeats]
    predict = helpers.Predict()
    clock = helpers.FakeClock(durations, predict)
    batches = [np.zeros((k, 3), dtype=np.float32) for k in batch_sizes]
    result = B.offline(predict, batches, warmup=warmup, repeats=repeats, clock=clock)
    n = sum(batch_sizes)
    assert result.samples == n, f"samples {result.samples} != the batches' total leading size {n}"
    assert list(result.elapsed_ns) == durations, f"elapsed_ns {list(result.elapsed_ns)} != the clock's {durations}"
    assert list(predict.seen) == batch_sizes * (warmup + repeats), (
        f"predict saw batches of sizes {list(predict.seen)}: expected every batch in order,"
        f" {warmup} untimed + {repeats} timed passes")
    per_pass = len(batch_sizes)
    reads = [per_pass * (warmup + i // 2 + i % 2) for i in range(2 * repeats)]
    assert list(clock.calls_seen) == reads, (
        f"the clock is read once before and once after each whole timed pass: calls completed at each read"
        f" {list(clock.calls_seen)}, expected {reads}")
    expected = [n / (d * 1e-9) for d in durations]
    np.testing.assert_allclose(result.throughputs, expected, rtol=1e-12,
                               err_msg="throughputs = samples / seconds per pass")
    median = np.median(np.array(durations, dtype=np.float64))
    assert result.throughput == pytest.approx(n / (median * 1e-9), rel=1e-12), (
        f"throughput {result.throughput} != samples / median seconds {n / (median * 1e-9)}")
    summary = result.summary()
    assert summary["scenario"] == "offline" and summary["samples"] == n and summary["repeats"] == repeats
    assert summary["warmup"] == warmup and summary["elapsed_ns"] == durations
    np.testing.assert_allclose(summary["throughputs"], expected, rtol=1e-12)


def test_offline_with_zero_time_and_list_batches():
    predict = helpers.Predict()
    result = B.offline(predict, [[1, 2], [3, 4], [5, 6]], warmup=0, repeats=1,
                       clock=helpers.FakeClock([0], predict))
    assert result.samples == 6, f"three lists of 2 (leading dimension 2 each) are 6 samples, got {result.samples}"
    assert result.throughput == np.inf and result.throughputs == (np.inf,), "a pass of 0 ns has infinite throughput"
    summary = result.summary()
    assert summary["throughput"] is None and summary["throughputs"] == [None], (
        f"JSON has no inf: an infinite throughput is written as None, got {summary['throughput']!r}")
    json.dumps(summary)


def test_scenario_errors_name_the_problem():
    predict = helpers.Predict()
    with pytest.raises(TypeError, match="predict"):
        B.single_stream(5, [1])
    with pytest.raises(ValueError, match="empty"):
        B.single_stream(predict, [])
    with pytest.raises(ValueError, match="warmup"):
        B.single_stream(predict, [1, 2], warmup=-1)
    with pytest.raises(ValueError, match="backwards"):
        B.single_stream(predict, [1, 2], warmup=0, clock=helpers.BackwardsClock())
    with pytest.raises(TypeError, match="predict"):
        B.offline("model", [np.zeros((2, 2))])
    with pytest.raises(ValueError, match="empty"):
        B.offline(predict, [])
    with pytest.raises(ValueError, match="0-D"):
        B.offline(predict, [np.zeros((2, 2)), np.float32(3.0)])
    with pytest.raises(ValueError, match="warmup"):
        B.offline(predict, [np.zeros((2, 2))], warmup=-2)
    with pytest.raises(ValueError, match="repeats"):
        B.offline(predict, [np.zeros((2, 2))], repeats=0)


def test_single_stream_measures_real_time():
    slow = helpers.Predict(seconds=0.002)
    result = B.single_stream(slow, list(range(5)), warmup=1)
    assert min(result.latencies_ns) >= 2_000_000, (
        f"a predict that sleeps 2 ms took {min(result.latencies_ns)} ns by single_stream's default clock:"
        " use time.perf_counter_ns")


# ----------------------------------------------------------------------------
# compare
# ----------------------------------------------------------------------------


@given(timings(), timings(), CONFIDENCES, st.integers(1, 300), SEEDS, st.floats(0.0, 0.2))
def test_compare_matches_a_numpy_transcription(a, b, confidence, resamples, seed, min_effect):
    low, high = _numpy_ratio_bootstrap(a, b, confidence, resamples, seed)
    got = B.compare(a, b, confidence=confidence, resamples=resamples, generator=seed, min_effect=min_effect)
    where = (f"compare(n_a={len(a)}, n_b={len(b)}, confidence={confidence}, resamples={resamples}, seed={seed},"
             f" min_effect={min_effect})")
    np.testing.assert_array_equal([got.low, got.high], [low, high], err_msg=(
        f"{where}: (low, high) against np.percentile of median(b[ib]) / median(a[ia]), a's draws first"))
    assert got.ratio == np.median(b) / np.median(a), f"{where}: ratio {got.ratio} != median(b) / median(a)"
    expected = ("slower" if low > 1 + min_effect else "faster" if high < 1 / (1 + min_effect)
                else "no significant difference")
    assert got.verdict == expected, (
        f"{where}: verdict {got.verdict!r} for interval ({low}, {high}), expected {expected!r}")
    assert (got.confidence, got.min_effect) == (confidence, min_effect)
    assert got.summary() == {"ratio": got.ratio, "low": got.low, "high": got.high, "confidence": confidence,
                             "min_effect": min_effect, "verdict": got.verdict}


@given(SEEDS, SEEDS, st.integers(50, 200), st.floats(0.02, 0.2), st.floats(1e3, 1e8), st.floats(1.5, 10.0))
def test_compare_detects_a_deliberately_slowed_variant(seed_a, seed_b, n, sigma, median_ns, factor):
    a = _lognormal(seed_a, n, sigma, median_ns, outliers=n // 25)
    b = _lognormal(seed_b, n, sigma, median_ns * factor, outliers=n // 25)
    slowed = B.compare(a, b, generator=seed_a)
    assert slowed.verdict == "slower", (
        f"b is a {factor:.2f}x slowed variant ({n} lognormal samples each, sigma {sigma:.3f}): expected 'slower',"
        f" got {slowed.verdict!r} with ratio {slowed.ratio:.3f}, interval ({slowed.low:.3f}, {slowed.high:.3f})")
    sped_up = B.compare(b, a, generator=seed_b)
    assert sped_up.verdict == "faster", (
        f"a is {factor:.2f}x faster than b: compare(b, a) must say 'faster', got {sped_up.verdict!r}"
        f" ({sped_up.low:.3f}, {sped_up.high:.3f})")


@given(timings(n=(2, 100), sigma=(0.01, 1.0), outlier_share=0.1), SEEDS, st.randoms(use_true_random=False))
def test_compare_does_not_flag_identical_samples(a, seed, random):
    shuffled = a.copy()
    random.shuffle(shuffled)
    for b, what in ((a.copy(), "the same samples"), (shuffled, "a permutation of the samples")):
        result = B.compare(a, b, generator=seed)
        assert result.verdict == "no significant difference", (
            f"compare of {len(a)} samples with {what}: got {result.verdict!r}, ratio {result.ratio},"
            f" interval ({result.low}, {result.high})")
        assert result.ratio == 1.0, f"the ratio of medians of {what} is 1, got {result.ratio}"


@given(SEEDS, SEEDS, st.integers(200, 400), st.floats(0.01, 0.1), st.floats(1e3, 1e8))
def test_compare_does_not_flag_two_draws_of_one_distribution(seed_a, seed_b, n, sigma, median_ns):
    a = _lognormal(seed_a, n, sigma, median_ns, outliers=n // 50)
    b = _lognormal(seed_b + 1 if seed_b == seed_a else seed_b, n, sigma, median_ns, outliers=n // 50)
    result = B.compare(a, b, generator=seed_a)
    assert result.verdict == "no significant difference", (
        f"two independent draws of {n} from one lognormal (sigma {sigma:.3f}): got {result.verdict!r},"
        f" ratio {result.ratio:.4f}, interval ({result.low:.4f}, {result.high:.4f})")


def test_compare_min_effect_separates_significant_from_relevant():
    a = _lognormal(1, 200, 0.005, 1e6)
    b = _lognormal(2, 200, 0.005, 1.03e6)
    strict = B.compare(a, b, generator=0, min_effect=0.0)
    assert strict.verdict == "slower" and strict.low > 1.0, (
        f"a 3% slowdown with 0.5% noise is significant: min_effect=0 must say 'slower', got {strict}")
    relevant = B.compare(a, b, generator=0)
    assert relevant.verdict == "no significant difference", (
        f"a 3% slowdown is below the default min_effect of 5%: expected 'no significant difference', got {relevant}")
    assert B.compare(b, a, generator=0, min_effect=0.0).verdict == "faster"


def test_compare_errors_name_the_problem():
    good = [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="samples_a"):
        B.compare([], good)
    with pytest.raises(ValueError, match="samples_b"):
        B.compare(good, good + [np.nan])
    with pytest.raises(ValueError, match="0"):
        B.compare([1.0, 0.0, 2.0], good)
    with pytest.raises(ValueError, match="confidence"):
        B.compare(good, good, confidence=0.0)
    with pytest.raises(ValueError, match="resamples"):
        B.compare(good, good, resamples=0)
    for bad in (-0.1, np.inf, True, "5%"):
        with pytest.raises(ValueError, match="min_effect"):
            B.compare(good, good, min_effect=bad)


def test_the_harness_finds_a_really_slower_predict_with_the_real_clock():
    fast, slow = helpers.Predict(seconds=0.001), helpers.Predict(seconds=0.003)
    queries = list(range(25))
    a = B.single_stream(fast, queries, warmup=2)
    b = B.single_stream(slow, queries, warmup=2)
    result = B.compare(a.latencies_ns, b.latencies_ns, generator=0)
    assert result.verdict == "slower", (
        f"a predict sleeping 3 ms against one sleeping 1 ms (25 queries each, real clock): expected 'slower',"
        f" got {result.verdict!r}, p50 {a.p50_ms:.3f} ms vs {b.p50_ms:.3f} ms")


# ----------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------


def test_report_is_json_with_the_documented_schema(tmp_path):
    predict = helpers.Predict()
    latency = B.single_stream(predict, [1, 2, 3], warmup=0, clock=helpers.FakeClock([10, 30, 20], predict))
    throughput = B.offline(predict, [np.zeros((4, 2))], warmup=0, repeats=2,
                           clock=helpers.FakeClock([100, 300], predict))
    comparison = B.compare([1.0, 1.1, 0.9], [2.0, 2.2, 1.8], generator=0)
    report = B.Report("MLP float vs int8")
    assert report.add("float single-stream", latency) is report, "Report.add returns the report (chainable)"
    report.add("float offline", throughput).add("int8 vs float", comparison)
    doc = report.to_dict()
    assert doc["schema"] == "tinytorch-katas/benchmark-report/1" and doc["title"] == "MLP float vs int8"
    assert {"python", "numpy", "platform", "machine", "cpu_count"} <= set(doc["environment"])
    assert [(r["name"], r["kind"]) for r in doc["results"]] == [
        ("float single-stream", "latency"), ("float offline", "throughput"), ("int8 vs float", "comparison")]
    assert doc["results"][0] == {"name": "float single-stream", "kind": "latency", **latency.summary()}
    assert doc["results"][1] == {"name": "float offline", "kind": "throughput", **throughput.summary()}
    assert doc["results"][2] == {"name": "int8 vs float", "kind": "comparison", **comparison.summary()}
    assert json.loads(json.dumps(doc)) == doc, "to_dict() must survive a JSON round trip unchanged"
    path = tmp_path / "report.json"
    text = report.save(str(path))
    on_disk = json.loads(path.read_text())
    assert on_disk == json.loads(text) and on_disk["results"] == doc["results"], (
        f"Report.save({path}) must write to_dict() as JSON and return that text")


def test_report_errors_name_the_problem():
    report = B.Report("r")
    comparison = B.compare([1.0, 2.0], [1.0, 2.0], generator=0)
    report.add("x", comparison)
    with pytest.raises(ValueError, match="'x'"):
        report.add("x", comparison)
    with pytest.raises(TypeError, match="dict"):
        report.add("y", {"ratio": 1.0})
