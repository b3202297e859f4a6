"""The capstone harness (grading/capstone.py) on fixture submissions: it measures, and it cannot be fooled.

Fixtures live in grading/tests/capstone_fixtures/<name>/20_capstone/capstone.py (module 20 only; every
other module is lent from the reference). The ones that depend on this machine (the data path, a
checkpoint, a huge source) are written by the tests into tmp folders. Runs are shortened (the first
3,000 training and 1,000 test images, 30 latency queries); the grader uses the full data.

    pytest grading/tests/test_capstone_harness.py -p no:cacheprovider -q      # about 2 minutes on 2 cores
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from grading import capstone, curriculum

FIXTURES = Path(__file__).with_name("capstone_fixtures")
IMPL = "katas," + ",".join(f"{n:02d}=reference" for n in range(1, 20))
QUICK = dict(train_limit=3000, test_limit=1000, latency_queries=30, warmup=5, train_timeout=120.0)
# A quick run's baseline sees 3,000 images once (~0.85 accuracy), so the open floor is lowered for the
# division logic to be exercised; everything else is the manifest's.
THRESHOLDS = {**capstone.manifest_thresholds(), "open_floor": 0.5}
SCHEMA = json.loads((Path(capstone.__file__).parent / "schemas" / "capstone_result.schema.json").read_text())


def _data_dir() -> Path | None:
    for root in filter(None, [os.environ.get("TINYTORCH_DATA"), str(Path.home() / ".cache" / "tinytorch")]):
        if (Path(root) / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file():
            return Path(root)
    return None


DATA = _data_dir()
pytestmark = pytest.mark.skipif(DATA is None, reason="MNIST not found ($TINYTORCH_DATA or ~/.cache/tinytorch)")


def validate(result: dict) -> dict:
    import jsonschema

    jsonschema.validate(result, SCHEMA)
    return result


def measure(katas: Path, isolation: str | None = None, **options) -> dict:
    started = time.monotonic()
    result = capstone.run_katas(katas, impl=IMPL, data_dir=DATA, isolation=isolation, log=lambda *_: None,
                                thresholds=THRESHOLDS, **{**QUICK, **options})
    result["details"]["wall_s"] = time.monotonic() - started
    return validate(result)


def variant(tmp_path: Path, name: str, edit) -> Path:
    """A copy of the valid fixture with capstone.py edited (every other submission is one of these)."""
    source = (FIXTURES / "valid" / "20_capstone" / "capstone.py").read_text()
    folder = tmp_path / name / "20_capstone"
    folder.mkdir(parents=True)
    (folder / "capstone.py").write_text(edit(source))
    return tmp_path / name


def at_top_of(line: str, added: str):
    """An edit: `added` inserted right after the first `line` of the valid fixture."""
    def edit(source: str) -> str:
        assert line in source, line
        return source.replace(line, line + added, 1)
    return edit


TRAIN, LOAD, PREDICT = "def train(images, labels, seed):\n", "def load(state):\n", "def predict(model, images):\n"
SUBMISSIONS = {
    # imports torch: the static check rejects it before anything runs
    "torch_static": at_top_of("import numpy as np\n", "import torch\n"),
    # reaches torch through a computed import name (passes the static check, must fail in the sandbox)
    "torch_dynamic": at_top_of(TRAIN, "    import importlib\n    framework = importlib.import_module('to' + 'rch')\n"
                                      "    framework.manual_seed(seed)\n"),
    # loads torch's package from its file path next to numpy's (no import statement names it)
    "torch_path_hack": at_top_of(TRAIN, """    import importlib.util
    import os
    site = os.path.dirname(os.path.dirname(np.__file__))
    name = "".join(["to", "rch"])
    spec = importlib.util.spec_from_file_location(name, os.path.join(site, name, "__init__.py"),
                                                  submodule_search_locations=[os.path.join(site, name)])
    framework = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(framework)
    framework.manual_seed(seed)
"""),
    # another numerical framework (scipy) through a computed import name
    "scipy_dynamic": at_top_of(TRAIN, "    import importlib\n    importlib.import_module('sci' + 'py.special')\n"),
    "crash_train": at_top_of(TRAIN, "    raise RuntimeError('deliberate failure in train')\n"),
    "hang_train": at_top_of(TRAIN, "    while True:\n        pass\n"),
    # load() reads a checkpoint shipped beside the code instead of the state
    "checkpoint": at_top_of(LOAD, "    from pathlib import Path\n"
                                  "    state = dict(np.load(Path(__file__).with_name('model.npz')))\n"),
    # the valid model with Python loops in predict(): per weight row on every call (single-image
    # latency) and per image (batch throughput)
    "slowed": at_top_of(PREDICT, """    for _ in range(3):
        for row in model[0][0]:
            float(row.sum())
    return np.concatenate([_forward(model, image[None]) for image in images])


def _forward(model, images):
"""),
}


def submission(tmp_path: Path, name: str) -> Path:
    return variant(tmp_path, name, SUBMISSIONS[name])


@pytest.fixture(scope="module")
def valid() -> dict:
    return measure(FIXTURES / "valid")


# -- what it measures -----------------------------------------------------------------------------------


def test_valid_submission_is_closed_and_earns_the_points(valid):
    """The baseline's own MLP shipped as int8 + scales: same accuracy (closed), a quarter of the bytes."""
    assert valid["status"] == "closed", valid["reason"]
    assert valid["reason"] is None and valid["points_earned"] is True
    # size is the shipped state's nbytes, measured on the trusted side: 234,752 int8 weights, 394 float32
    # biases and 3 float32 scales, against 235,146 float32 numbers for the baseline
    assert valid["submission"]["size_bytes"] == 234_752 + 4 * 394 + 4 * 3
    assert valid["baseline"]["size_bytes"] == 4 * 235_146
    assert valid["ratios"]["size"] == pytest.approx(valid["submission"]["size_bytes"] / (4 * 235_146), rel=1e-6)
    sub, base = valid["submission"], valid["baseline"]
    assert abs(sub["accuracy"] - base["accuracy"]) <= 0.01, (sub["accuracy"], base["accuracy"])
    assert 0.6 < base["accuracy"] < 1.0, base["accuracy"]
    for side in (sub, base):
        assert 0 < side["latency_p50_ms"] <= side["latency_p90_ms"], side
        assert side["throughput_per_s"] > 0 and side["train_s"] > 0, side
    assert valid["details"]["latency_queries"] == QUICK["latency_queries"]
    assert len(valid["details"]["latency_ms"]["submission"]) == len(valid["details"]["latency_ms"]["baseline"]) == 30
    assert valid["machine"]["cpus"] >= 1 and valid["machine"]["blas_threads"] >= 1


def test_the_state_probe_sees_a_model_that_depends_on_its_state(valid):
    probe = valid["details"]["probe"]
    assert probe["replaced"] >= 3 and probe["agreement"] is not None, probe
    assert probe["agreement"] < capstone.PROBE_MAX_AGREEMENT, probe


def test_a_slowed_model_is_measured_slower(valid, tmp_path):
    """The same model with Python loops in predict(): latency (p50 and ratio) higher, throughput lower."""
    slowed = measure(submission(tmp_path, "slowed"))
    assert slowed["status"] == "closed", slowed["reason"]
    assert abs(slowed["submission"]["accuracy"] - valid["submission"]["accuracy"]) <= 0.002
    assert slowed["submission"]["latency_p50_ms"] > 2 * valid["submission"]["latency_p50_ms"], (slowed, valid)
    assert slowed["ratios"]["latency"] > 2 * valid["ratios"]["latency"], (slowed["ratios"], valid["ratios"])
    assert slowed["ratios"]["throughput"] < 0.5 * valid["ratios"]["throughput"], (slowed["ratios"], valid["ratios"])


def test_divisions_from_the_measured_figures():
    base = {"accuracy": 0.97, "latency_p50_ms": 1.0, "latency_p90_ms": 1.2, "throughput_per_s": 1000.0,
            "size_bytes": 1000, "train_s": 1.0}

    def result(accuracy, size, latency):
        out = capstone.measure_nothing("", capstone.DEFAULT_THRESHOLDS)
        out["submission"] = {**base, "accuracy": accuracy}
        out["baseline"] = dict(base)
        out["ratios"] = {"latency": latency, "size": size, "throughput": 1 / latency}
        return validate(capstone.classify(out))

    assert result(0.965, 0.49, 1.0)["points_earned"] is True           # within 1 point, half the size
    assert result(0.96, 1.0, 0.8)["points_earned"] is True             # exactly the band, latency ratio 0.8
    closed = result(0.97, 0.51, 0.81)
    assert closed["status"] == "closed" and closed["points_earned"] is False
    assert capstone.score(closed) == pytest.approx(min(0.51 / 0.5, 0.81 / 0.8))
    opened = result(0.955, 0.1, 0.1)
    assert opened["status"] == "open" and not opened["points_earned"] and "open division" in opened["reason"]
    assert capstone.score(opened) is None
    low = result(0.89, 0.1, 0.1)
    assert low["status"] == "invalid" and "below the open division's floor 0.9" in low["reason"]


def test_plot_and_cli_summary(valid, tmp_path):
    path = capstone.plot(valid, tmp_path / "capstone.png")
    assert Path(path).stat().st_size > 10_000
    text = capstone.summary(valid)
    assert "CLOSED" in text and "size 0.25" in text and "points earned: yes" in text


# -- what it rejects --------------------------------------------------------------------------------------


def assert_invalid(result: dict, *needles: str) -> None:
    assert result["status"] == "invalid" and result["points_earned"] is False, result
    assert any(n in result["reason"] for n in needles), result["reason"]


def test_import_torch_is_rejected_by_the_static_check(tmp_path):
    result = measure(submission(tmp_path, "torch_static"))
    assert_invalid(result, "imports torch: katas may import only numpy")
    assert result["submission"]["accuracy"] is None


@pytest.mark.parametrize("isolation", ["auto", "process"])
@pytest.mark.parametrize("name, needles", [
    ("torch_dynamic", ("ImportError", "PermissionError")),         # importlib.import_module("to" + "rch")
    ("torch_path_hack", ("PermissionError", "ImportError")),       # spec_from_file_location(site/torch/__init__.py)
    ("scipy_dynamic", ("PermissionError", "ImportError")),         # another framework, not torch
])
def test_other_frameworks_are_unimportable_in_the_workers(name, needles, isolation, tmp_path):
    """Passing the static check is not enough: the capstone workers cannot load another framework at all."""
    result = measure(submission(tmp_path, name), isolation=isolation)
    assert_invalid(result, *needles)
    assert "train() raised" in result["reason"] and result["submission"]["size_bytes"] is None


@pytest.mark.parametrize("isolation", ["auto", "process"])
def test_the_test_labels_are_not_reachable(tmp_path, isolation):
    """predict() returns one-hot vectors of the real test labels if it can read them: it cannot."""
    labels = str(DATA / "mnist" / "t10k-labels-idx1-ubyte.gz")
    katas = variant(tmp_path, "labels", lambda s: s.replace("def predict(model, images):\n", f'''def predict(model, images):
    import gzip
    with gzip.open({labels!r}) as handle:
        truth = np.frombuffer(handle.read()[8:], dtype=np.uint8)
    return np.eye(10, dtype=np.float32)[truth[:len(images)]]


def _honest(model, images):
'''))
    result = measure(katas, isolation=isolation)
    assert_invalid(result, "No such file", "does not expose")
    assert "predict()" in result["reason"]
    assert result["submission"]["accuracy"] is None


@pytest.mark.parametrize("isolation", ["auto", "process"])
def test_a_checkpoint_shipped_beside_the_code_cannot_be_loaded(tmp_path, isolation):
    katas = submission(tmp_path, "checkpoint")
    np.savez(katas / "20_capstone" / "model.npz", **{"0.weight": np.zeros((256, 784), np.int8)})
    result = measure(katas, isolation=isolation)
    assert_invalid(result, "load() raised FileNotFoundError")
    assert "model.npz" in result["reason"]


def test_only_py_files_reach_the_workers(tmp_path):
    source = submission(tmp_path, "checkpoint")
    np.savez(source / "20_capstone" / "model.npz", w=np.zeros(3))
    (source / "20_capstone" / "helper.py").write_text("X = 1\n")
    (source / "20_capstone" / "link.py").symlink_to(source / "20_capstone" / "helper.py")
    capstone.py_only_copy(source, tmp_path / "copy")
    found = sorted(p.relative_to(tmp_path / "copy").as_posix() for p in (tmp_path / "copy").rglob("*") if p.is_file())
    assert found == ["20_capstone/capstone.py", "20_capstone/helper.py"]


@pytest.mark.parametrize("isolation", ["auto", "process"])
def test_state_smuggled_through_files_does_not_reach_the_predict_worker(tmp_path, isolation):
    """train() saves its weights to its HOME/TMPDIR and to /tmp and ships a dummy state; the fresh
    predict worker has its own scratch folder and cannot open /tmp."""
    katas = variant(tmp_path, "smuggle", lambda s: s.replace("    return state\n", '''    import os
    import tempfile
    for folder in (tempfile.gettempdir(), os.path.expanduser("~"), "/tmp"):
        try:
            np.savez(os.path.join(folder, "capstone_smuggled.npz"), **state)
        except OSError:
            pass
    return {"dummy": np.zeros(1, np.float32)}
''').replace("def load(state):\n", '''def load(state):
    import os
    import tempfile
    for folder in (tempfile.gettempdir(), os.path.expanduser("~"), "/tmp"):
        try:
            state = dict(np.load(os.path.join(folder, "capstone_smuggled.npz")))
            break
        except OSError:
            continue
'''))
    try:
        result = measure(katas, isolation=isolation, probe=False)
    finally:
        Path("/tmp/capstone_smuggled.npz").unlink(missing_ok=True)
    assert_invalid(result, "load() raised KeyError")
    assert result["submission"]["size_bytes"] == 4


def test_weights_hidden_outside_the_state_are_detected(tmp_path):
    """A small classifier embedded in the source (a linear model on 7x7 pooled pixels, trained here) and a
    state it never really uses: the probe replaces the state by noise and the predictions do not move."""
    train_x, train_y, _, _ = capstone.load_data(DATA, 6000, 1)
    pooled = train_x.reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(-1, 49)
    design = np.hstack([pooled, np.ones((len(pooled), 1), np.float32)])
    weights = np.linalg.lstsq(design, np.eye(10)[train_y], rcond=None)[0].round(4)
    katas = variant(tmp_path, "hidden", lambda s: s.split("def train(")[0] + f'''
HIDDEN = np.array({weights.tolist()!r}, dtype=np.float32)


def train(images, labels, seed):
    return {{"offset": np.zeros(10, dtype=np.float32)}}


def load(state):
    return state["offset"]


def predict(model, images):
    pooled = images.reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(-1, 49)
    return (pooled @ HIDDEN[:49] + HIDDEN[49] + model * 1e-6).astype(np.float32)
''')
    result = measure(katas)
    assert_invalid(result, "loaded a model it did not produce")
    assert result["details"]["probe"]["agreement"] >= 0.99
    assert result["submission"]["accuracy"] > 0.5  # it did classify: only the probe catches it


def test_source_over_64_kib_is_rejected(tmp_path):
    katas = variant(tmp_path, "big", lambda s: s + "\nWEIGHTS = " + repr(list(range(15_000))) + "\n")
    result = measure(katas)
    assert_invalid(result, "source too large")
    assert "65,536-byte limit" in result["reason"]


def test_train_crashing_is_invalid_with_its_error(tmp_path):
    result = measure(submission(tmp_path, "crash_train"))
    assert_invalid(result, "train() raised RuntimeError: deliberate failure in train")
    assert 'katas/20_capstone/capstone.py", line' in result["reason"]


def test_train_hanging_times_out_within_its_limit(tmp_path):
    result = measure(submission(tmp_path, "hang_train"), train_timeout=3.0)
    assert_invalid(result, "train() timed out: it did not answer within 3 s")
    assert result["details"]["wall_s"] < 30, result["details"]


@pytest.mark.parametrize("name, edit, needle", [
    ("no_predict", lambda s: s.replace("def predict(", "def forecast("), "has no function predict()"),
    ("list_state", lambda s: s.replace("    return state\n", "    return list(state.values())\n"),
     "train() must return a dict of numpy arrays"),
    ("tensor_state", lambda s: s.replace("    return state\n", "    return {k: Tensor(v.astype(np.float32)) for k, v in state.items()}\n"),
     "train() must return a dict of numpy arrays"),
    ("wrong_shape", lambda s: s.replace("    return h.astype(np.float32)\n", "    return h[:, :5].astype(np.float32)\n"),
     "predict() must return logits of shape (1, 10)"),
    ("modifies_input", lambda s: s.replace("    h = images.reshape(len(images), 784)\n",
                                           "    images += 0.5\n    h = images.reshape(len(images), 784)\n"),
     "modified the images"),
])
def test_interface_violations_are_invalid(tmp_path, name, edit, needle):
    result = measure(variant(tmp_path, name, edit), probe=False)
    assert_invalid(result, needle)


def test_modifying_input_is_seen_with_a_copying_predict_accepted(tmp_path):
    """Control for the check above: a predict() that copies before scaling is fine."""
    katas = variant(tmp_path, "copies", lambda s: s.replace("    h = images.reshape(len(images), 784)\n",
                                                           "    h = (images * 1.0).reshape(len(images), 784)\n"))
    result = measure(katas, probe=False)
    assert result["status"] == "closed", result["reason"]


# -- the grader's path ------------------------------------------------------------------------------------


def test_grader_path_returns_the_threshold_and_the_record(tmp_path):
    """runner-style trusted subprocess (KATA_WORKER = the submission's sandbox), as grade.py calls it."""
    from grading import integrity

    module = curriculum.load().module(20)
    (threshold,) = [t for t in module.thresholds if capstone.is_capstone(t)]
    assert threshold.points > 0 and threshold.max_ratio == 1.0
    katas = variant(tmp_path, "valid", lambda source: source)
    with integrity.Guard(katas, data_dir=DATA, tamper_check=False) as guard:
        result, record = capstone.run_threshold(module, threshold, katas, IMPL, guard=guard, data_dir=DATA,
                                                quick={"train_limit": 3000, "test_limit": 1000, "queries": 20})
    validate(record)
    assert record["submission"]["size_bytes"] == 234_752 + 4 * 394 + 4 * 3
    # the manifest's floor (0.90) applies here: a 3,000-image run lands below it or in a division
    if record["status"] == "closed":
        assert result.passed and result.earned == threshold.points and result.measured <= 1.0, result
    else:
        assert not result.passed and result.earned == 0 and record["reason"] in result.message, (result, record)


def test_manifest_states_both_ratios():
    assert capstone.manifest_thresholds() == {"max_size_ratio": 0.5, "max_latency_ratio": 0.8,
                                              "accuracy_band": 0.01, "open_floor": 0.90}


@pytest.mark.parametrize("isolation", ["auto", "process"])
def test_the_side_not_being_timed_is_stopped(tmp_path, isolation):
    """While one side is timed, every process of the other side's worker is stopped (SIGSTOP): a submission
    spinning background threads cannot slow the baseline down (measured: without the pause, two busy
    threads in the submission's predict worker halved the baseline's measured throughput)."""
    config = capstone.reference_config(isolation=isolation)
    submission, _ = capstone._contestants(config, str(tmp_path), [])
    conn = submission.worker()
    try:
        assert conn.request({"op": "ping"}) == "pong"
        pause = capstone._Pause(conn)
        pause.stop()
        assert pause.stopped and conn.process.pid in pause.stopped
        assert all(capstone._state(pid) in ("T", "t") for pid in pause.stopped), \
            [(pid, capstone._state(pid)) for pid in pause.stopped]
        pause.resume()
        assert conn.request({"op": "ping"}, timeout=10) == "pong"
    finally:
        submission.close()


# -- the class leaderboard from real batch grading -------------------------------------------------------


def float32_baseline(source: str) -> str:
    """The valid fixture shipping float32 weights: the baseline itself, as a learner could hand it in."""
    quantized = '''        if name.endswith("weight"):
            scale = np.float32(np.abs(value).max() / 127.0)
            state[name] = np.round(value / scale).astype(np.int8)
            state[name + ".scale"] = np.array([scale], dtype=np.float32)
        else:
            state[name] = value'''
    dequantize = 'state[f"{i}.weight"].astype(np.float32).T * state[f"{i}.weight.scale"][0]'
    assert quantized in source and dequantize in source
    return source.replace(quantized, "        state[name] = value").replace(dequantize, 'state[f"{i}.weight"].T')


def test_batch_grading_ranks_the_reference_the_baseline_and_a_slowed_baseline(tmp_path):
    """Issue 12's end to end: three submissions graded for real by `kata grade --submissions` (module 20:
    its checks, then the capstone run) give a leaderboard in the expected order: the reference's pruned,
    int8 model first (size ratio ~0.09), the float32 baseline next (ratios ~1), the slowed copy of the
    baseline last (same size, the other ratio - latency - is many times the baseline's)."""
    from grading import batch, grade, leaderboard

    valid_source = (FIXTURES / "valid" / "20_capstone" / "capstone.py").read_text()
    slowed = SUBMISSIONS["slowed"]
    sources = {"reference": (curriculum.PROJECT_ROOT / "reference" / "20_capstone" / "capstone.py").read_text(),
               "baseline": float32_baseline(valid_source), "slowed": slowed(float32_baseline(valid_source))}
    for name, text in sources.items():
        folder = tmp_path / "subs" / name / "katas" / "20_capstone"
        folder.mkdir(parents=True)
        (folder / "capstone.py").write_text(text)
    options = grade.GradeOptions(modules=[20], milestones=False, hypothesis_profile="kata-smoke", data_dir=DATA)
    summary = batch.grade_many(tmp_path / "subs", tmp_path / "out", options, jobs=1)
    assert not summary["errors"] and summary["leaderboard_error"] is None, summary
    results = [(stem, json.loads((tmp_path / "out" / f"{stem}.json").read_text())) for stem in summary["results"]]
    for stem, result in results:
        capstone_result = result["capstone"]
        assert capstone_result and capstone_result["status"] == "closed", (stem, capstone_result)
    board = leaderboard.build(results)
    assert [row.entry.name for row in board.closed] == ["reference", "baseline", "slowed"], [
        (row.entry.name, row.entry.size_ratio, row.entry.latency_ratio) for row in board.closed]
    by_name = {row.entry.name: row.entry for row in board.closed}
    assert by_name["reference"].points_earned and not by_name["baseline"].points_earned
    assert by_name["baseline"].size_ratio == 1.0 and by_name["slowed"].size_ratio == 1.0
    assert by_name["slowed"].latency_ratio > 2 * by_name["baseline"].latency_ratio
    assert (tmp_path / "out" / "leaderboard.html").is_file() and (tmp_path / "out" / "leaderboard.md").is_file()
