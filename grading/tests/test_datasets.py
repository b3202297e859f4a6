"""tinytorch.datasets: directory resolution, verification, downloading, parsing.

Nothing here touches the internet. Downloads are served by a local HTTP server
(http.server in a thread) or file:// URLs, with small fake files whose checksums
the tests pass in through the injectable `resources=` table. The real MNIST,
Fashion-MNIST and Tiny Shakespeare files are used from TINYTORCH_DATA or the
shared data directory (../shared/data) when present, and skipped otherwise;
CIFAR-10 is tested on small archives written here in its exact pickle layout,
and on the real archive wherever one exists.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import pickle
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from grading import curriculum
from tinytorch import datasets as ds

SHARED = Path(os.environ.get("TINYTORCH_DATA") or curriculum.PROJECT_ROOT.parent / "shared" / "data")
FAST = {"retries": 2, "backoff": 0, "timeout": 5}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _needs(*relative: str) -> Path:
    missing = [r for r in relative if not (SHARED / r).is_file()]
    if missing:
        pytest.skip(f"real dataset files not found under {SHARED} ({', '.join(missing)});"
                    " set TINYTORCH_DATA to a directory holding them")
    return SHARED


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No test may read the user's cache or a real TINYTORCH_DATA by accident."""
    monkeypatch.delenv(ds.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


# -- a local HTTP server with scripted responses ---------------------------------------


class Server:
    """Serves `routes[path]`: a list of bodies (bytes) or HTTP status codes, one per request (last repeats)."""

    def __init__(self):
        self.routes: dict[str, list] = {}
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                script = outer.routes.get(self.path, [404])
                reply = script.pop(0) if len(script) > 1 else script[0]
                if isinstance(reply, int):
                    self.send_error(reply)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


# -- fake files in the real formats --------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def fake_mnist(rng, n_train=7, n_test=3):
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    return arrays, {name: idx_bytes(a) for name, a in arrays.items()}


def table_for(folder: str, files: dict[str, bytes], urls) -> dict[str, ds.Resource]:
    return {name: ds.Resource(f"{folder}/{name}", _md5(body), tuple(u + name for u in urls))
            for name, body in files.items()}


def cifar_archive(rng, per_batch=4, n_test=3, extracted_to: Path | None = None) -> tuple[bytes, dict]:
    """A cifar-10-python.tar.gz in the real layout (Python-2-era pickled dicts, rows of 3072 bytes)."""
    members, truth = {}, {"train": [], "train_labels": [], "test": None, "test_labels": None}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)  # what the loader must return
        rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)          # R plane, G plane, B plane
        labels = rng.integers(0, 10, n).tolist()
        batch = {"batch_label": f"training batch of {name}", "labels": labels, "data": rows,
                 "filenames": [f"img_{i}.png" for i in range(n)]}
        members[name] = pickle.dumps(batch, protocol=2)
        if name == "test_batch":
            truth["test"], truth["test_labels"] = images, labels
        else:
            truth["train"].append(images)
            truth["train_labels"] += labels
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    members["batches.meta"] = pickle.dumps({"label_names": classes, "num_cases_per_batch": per_batch,
                                            "num_vis": 3072}, protocol=2)
    members["readme.html"] = b"<html></html>"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    if extracted_to is not None:
        extracted_to.mkdir(parents=True)
        for name, body in members.items():
            (extracted_to / name).write_bytes(body)
    truth["classes"] = classes
    return buffer.getvalue(), truth


def check_cifar(data: ds.ImageData, truth) -> None:
    np.testing.assert_array_equal(data.train_images, np.concatenate(truth["train"]))
    np.testing.assert_array_equal(data.train_labels, truth["train_labels"])
    np.testing.assert_array_equal(data.test_images, truth["test"])
    np.testing.assert_array_equal(data.test_labels, truth["test_labels"])
    assert data.train_images.dtype == np.uint8 and data.train_labels.dtype == np.int64
    assert data.classes == truth["classes"]


# -- where the data lives ------------------------------------------------------------


def test_data_root_prefers_argument_then_env_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv(ds.DATA_ENV, str(tmp_path / "env"))
    assert ds.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert ds.data_root() == tmp_path / "env"
    monkeypatch.delenv(ds.DATA_ENV)
    assert ds.data_root() == tmp_path / "xdg" / "tinytorch"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ds.data_root() == tmp_path / "home" / ".cache" / "tinytorch"


def test_builtin_table_points_at_maintained_mirrors_with_the_known_md5s():
    mnist = ds.RESOURCES["mnist"]["train-images-idx3-ubyte.gz"]
    assert mnist.urls[0].startswith("https://ossci-datasets.s3.amazonaws.com/mnist/")
    assert any("yann.lecun.com" in u for u in mnist.urls), "the original host stays as a fallback"
    assert ds.RESOURCES["cifar10"]["cifar-10-python.tar.gz"].md5 == "c58f30108f718f92721af3b95e74349a"
    sums = SHARED / "MD5SUMS"
    if sums.is_file():
        known = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
        for table in ds.RESOURCES.values():
            for resource in table.values():
                if resource.path in known:
                    assert resource.md5 == known[resource.path], resource.path


# -- real data -----------------------------------------------------------------------


def _offline():
    return {"mnist": {}, "fashion-mnist": {}, "tinyshakespeare": {}}


@pytest.mark.parametrize("name, loader", [("mnist", ds.load_mnist), ("fashion-mnist", ds.load_fashion_mnist)])
def test_real_mnist_style_data_loads_without_network(name, loader, monkeypatch):
    root = _needs(*(f"{name}/{f}" for f in ds._IDX_FILES))
    monkeypatch.setattr(ds.urllib.request, "urlopen", _no_network)
    data = loader(root)
    assert data.train_images.shape == (60000, 28, 28) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10000, 28, 28) and data.test_labels.shape == (10000,)
    assert data.train_labels.dtype == np.int64 and set(np.unique(data.train_labels)) == set(range(10))
    assert np.bincount(data.test_labels).min() > 800, "all ten classes are well represented"
    assert data.train_images.max() == 255 and data.train_images.min() == 0
    assert data.train_images.nbytes <= 60000 * 784 * 1.01, "stored as uint8, not expanded"
    assert len(data.classes) == 10 and "(60000, 28, 28)" in repr(data)


def test_loading_mnist_peaks_below_twice_the_raw_size(monkeypatch):
    import tracemalloc

    root = _needs(*(f"mnist/{f}" for f in ds._IDX_FILES))
    monkeypatch.setattr(ds.urllib.request, "urlopen", _no_network)
    raw_bytes = (60000 + 10000) * (784 + 1)  # uncompressed images and labels, as stored
    tracemalloc.start()
    try:
        data = ds.load_mnist(root)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.train_images.shape == (60000, 28, 28)
    assert peak <= 2 * raw_bytes, f"peak {peak / 2**20:.1f} MiB for {raw_bytes / 2**20:.1f} MiB of data"


def test_real_data_is_found_through_the_environment(monkeypatch):
    root = _needs("mnist/t10k-labels-idx1-ubyte.gz", "tinyshakespeare/input.txt")
    monkeypatch.setenv(ds.DATA_ENV, str(root))
    monkeypatch.setattr(ds.urllib.request, "urlopen", _no_network)
    text = ds.load_tinyshakespeare()
    assert isinstance(text, str) and len(text) == 1115394 and text.startswith("First Citizen:")


def test_real_cifar10_wherever_it_exists(monkeypatch):
    root = _needs("cifar-10/cifar-10-python.tar.gz")
    monkeypatch.setattr(ds.urllib.request, "urlopen", _no_network)
    data = ds.load_cifar10(root)
    assert data.train_images.shape == (50000, 32, 32, 3) and data.test_images.shape == (10000, 32, 32, 3)
    assert data.classes[0] == "airplane" and np.bincount(data.train_labels).tolist() == [5000] * 10


def _no_network(*args, **kwargs):
    raise AssertionError("a verified file is present: nothing may be downloaded")


# -- parsing small files in the real formats -------------------------------------------


def test_mnist_loader_on_fake_idx_files(tmp_path):
    arrays, files = fake_mnist(np.random.default_rng(0))
    for name, body in files.items():
        (tmp_path / "mnist").mkdir(exist_ok=True)
        (tmp_path / "mnist" / name).write_bytes(body)
    table = {"mnist": table_for("mnist", files, ["http://unused.invalid/"])}
    data = ds.load_mnist(tmp_path, resources=table, **FAST)
    np.testing.assert_array_equal(data.train_images, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(data.test_labels, arrays["t10k-labels-idx1-ubyte.gz"])
    assert data.test_labels.dtype == np.int64


@pytest.mark.parametrize("body, fragment", [
    (gzip.compress(b"\x00\x00\x0d\x01" + struct.pack(">I", 2) + b"ab"), "not an IDX"),
    (gzip.compress(b"\x00\x00\x08\x02" + struct.pack(">I", 2)), "truncated IDX header"),
    (gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"abc"), "truncated"),
    (gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"abc"), "more data"),
    (b"not gzip at all", "unreadable"),
], ids=["not-idx", "short-header", "truncated", "more-data", "not-gzip"])  # gzip bytes hold a timestamp
def test_read_idx_rejects_malformed_files(tmp_path, body, fragment):
    path = tmp_path / "x.gz"
    path.write_bytes(body)
    with pytest.raises(ds.DatasetError, match=fragment):
        ds.read_idx(path)


def test_read_idx_plain_and_mismatched_image_label_counts(tmp_path):
    plain = tmp_path / "labels-idx1-ubyte"
    plain.write_bytes(gzip.decompress(idx_bytes(np.arange(4))))
    assert ds.read_idx(plain).tolist() == [0, 1, 2, 3]
    _, files = fake_mnist(np.random.default_rng(1))
    files["train-labels-idx1-ubyte.gz"] = idx_bytes(np.zeros(2))
    (tmp_path / "mnist").mkdir()
    for name, body in files.items():
        (tmp_path / "mnist" / name).write_bytes(body)
    with pytest.raises(ds.DatasetError, match="do not match"):
        ds.load_mnist(tmp_path, resources={"mnist": table_for("mnist", files, [])})


def test_cifar10_from_a_tarball_in_the_real_layout(tmp_path):
    archive, truth = cifar_archive(np.random.default_rng(2))
    (tmp_path / "cifar-10").mkdir()
    (tmp_path / "cifar-10" / "cifar-10-python.tar.gz").write_bytes(archive)
    table = {"cifar10": {"cifar-10-python.tar.gz": ds.Resource("cifar-10/cifar-10-python.tar.gz", _md5(archive),
                                                               ("http://unused.invalid/x",))}}
    data = ds.load_cifar10(tmp_path, resources=table, **FAST)
    check_cifar(data, truth)
    assert data.train_images.shape == (20, 32, 32, 3) and data.train_images.flags.c_contiguous


def test_cifar10_from_an_extracted_folder_needs_no_archive(tmp_path):
    _, truth = cifar_archive(np.random.default_rng(3), extracted_to=tmp_path / "cifar-10" / "cifar-10-batches-py")
    check_cifar(ds.load_cifar10(tmp_path, download=False), truth)


def _cifar_table(body: bytes) -> dict:
    return {"cifar10": {"cifar-10-python.tar.gz": ds.Resource("cifar-10/cifar-10-python.tar.gz", _md5(body), ())}}


def _write_cifar(tmp_path, body: bytes) -> dict:
    (tmp_path / "cifar-10").mkdir(exist_ok=True)
    (tmp_path / "cifar-10" / "cifar-10-python.tar.gz").write_bytes(body)
    return _cifar_table(body)


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def test_cifar10_rejects_bad_archives_and_unsafe_pickles(tmp_path):
    table = _write_cifar(tmp_path, b"not a tarball")
    with pytest.raises(ds.DatasetError, match="unreadable archive"):
        ds.load_cifar10(tmp_path, resources=table, download=False)
    good = {"data": np.zeros((1, 3072), np.uint8), "labels": [0]}
    table = _write_cifar(tmp_path, _tar({"data_batch_1": pickle.dumps(good, protocol=2)}))
    with pytest.raises(ds.DatasetError, match="missing data_batch_2"):
        ds.load_cifar10(tmp_path, resources=table, download=False)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    members = {m: pickle.dumps(good, protocol=2) for m in ds.CIFAR_MEMBERS}
    members["data_batch_3"] = pickle.dumps({"data": Evil(), "labels": [0]}, protocol=2)
    table = _write_cifar(tmp_path, _tar(members))
    with pytest.raises(ds.DatasetError, match="not allowed"):
        ds.load_cifar10(tmp_path, resources=table, download=False)
    members["data_batch_3"] = pickle.dumps({"data": np.zeros((1, 100), np.uint8), "labels": [0]}, protocol=2)
    table = _write_cifar(tmp_path, _tar(members))
    with pytest.raises(ds.DatasetError, match="3072"):
        ds.load_cifar10(tmp_path, resources=table, download=False)
    members["data_batch_3"] = members["data_batch_1"]
    members["batches.meta"] = pickle.dumps({"no": "names"}, protocol=2)
    table = _write_cifar(tmp_path, _tar(members))
    with pytest.raises(ds.DatasetError, match="metadata"):
        ds.load_cifar10(tmp_path, resources=table, download=False)


# -- downloading -----------------------------------------------------------------------


def test_missing_files_are_downloaded_verified_and_then_reused(tmp_path, server, capsys):
    arrays, files = fake_mnist(np.random.default_rng(4))
    for name, body in files.items():
        server.routes[f"/mirror/{name}"] = [body]
    table = {"mnist": table_for("mnist", files, [server.url + "/mirror/"])}
    data = ds.load_mnist(tmp_path, resources=table, **FAST)
    np.testing.assert_array_equal(data.train_images, arrays["train-images-idx3-ubyte.gz"])
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(files), "no .part files left behind"
    err = capsys.readouterr().err
    assert "downloading" in err and "100.0%" in err, "a progress bar is shown on stderr"
    hits = len(server.hits)
    ds.load_mnist(tmp_path, resources=table, **FAST)
    assert len(server.hits) == hits, "present, verified files are never downloaded again"


def test_dead_mirror_falls_back_to_the_next_one(tmp_path, server):
    text = b"To be, or not to be\n"
    server.routes["/good/input.txt"] = [text]
    table = {"tinyshakespeare": {"input.txt": ds.Resource(
        "tinyshakespeare/input.txt", _md5(text), (server.url + "/dead/input.txt", server.url + "/good/input.txt"))}}
    assert ds.load_tinyshakespeare(tmp_path, resources=table, progress=False, **FAST) == text.decode()
    assert server.hits == ["/dead/input.txt", "/good/input.txt"]


def test_corrupted_download_is_discarded_and_fetched_again(tmp_path, server, capsys):
    good = b"the real contents " * 100
    server.routes["/input.txt"] = [good[:-7] + b"garbage", good]
    table = {"tinyshakespeare": {"input.txt": ds.Resource("tinyshakespeare/input.txt", _md5(good),
                                                          (server.url + "/input.txt",))}}
    assert ds.load_tinyshakespeare(tmp_path, resources=table, **FAST) == good.decode()
    assert server.hits == ["/input.txt", "/input.txt"]
    assert "checksum mismatch" in capsys.readouterr().err


def test_truncated_cached_file_is_detected_reported_and_refetched(tmp_path, server, capsys):
    archive, truth = cifar_archive(np.random.default_rng(5))
    server.routes["/cifar-10-python.tar.gz"] = [archive]
    (tmp_path / "cifar-10").mkdir()
    cached = tmp_path / "cifar-10" / "cifar-10-python.tar.gz"
    cached.write_bytes(archive[: len(archive) // 2])  # an interrupted earlier download
    table = {"cifar10": {"cifar-10-python.tar.gz": ds.Resource(
        "cifar-10/cifar-10-python.tar.gz", _md5(archive), (server.url + "/cifar-10-python.tar.gz",))}}
    with pytest.raises(ds.DatasetError, match="truncated or corrupted"):
        ds.load_cifar10(tmp_path, resources=table, download=False)
    check_cifar(ds.load_cifar10(tmp_path, resources=table, **FAST), truth)
    assert "truncated or corrupted" in capsys.readouterr().err
    assert cached.read_bytes() == archive


def test_file_urls_work_too(tmp_path):
    text = b"hello from a file URL\n"
    source = tmp_path / "upstream.txt"
    source.write_bytes(text)
    table = {"tinyshakespeare": {"input.txt": ds.Resource("tinyshakespeare/input.txt", _md5(text),
                                                          (source.as_uri(),))}}
    assert ds.load_tinyshakespeare(tmp_path / "data", resources=table, **FAST) == text.decode()


def test_offline_without_the_file_names_the_path_env_var_and_flag(tmp_path, server):
    table = {"tinyshakespeare": {"input.txt": ds.Resource(
        "tinyshakespeare/input.txt", "0" * 32, ("http://127.0.0.1:9/input.txt", server.url + "/missing.txt"))}}
    with pytest.raises(ds.DatasetError) as info:
        ds.load_tinyshakespeare(tmp_path, resources=table, **FAST)
    message = str(info.value)
    expected = str(tmp_path / "tinyshakespeare" / "input.txt")
    assert expected in message and ds.DATA_ENV in message and "--data-dir" in message
    assert "127.0.0.1:9" in message and "404" in message, "each failed attempt is reported"
    assert not (tmp_path / "tinyshakespeare" / "input.txt.part").exists()
    with pytest.raises(ds.DatasetError, match="does not exist") as info:
        ds.load_mnist(tmp_path, download=False)
    assert ds.DATA_ENV in str(info.value) and "--data-dir" in str(info.value)


def test_a_mirror_that_always_serves_bad_data_ends_in_a_clear_error(tmp_path, server):
    server.routes["/input.txt"] = [b"wrong"]
    table = {"tinyshakespeare": {"input.txt": ds.Resource("tinyshakespeare/input.txt", _md5(b"right"),
                                                          (server.url + "/input.txt",))}}
    with pytest.raises(ds.DatasetError, match="checksum mismatch"):
        ds.load_tinyshakespeare(tmp_path, resources=table, retries=2, backoff=0.01, progress=False)
    assert len(server.hits) == 2 and not (tmp_path / "tinyshakespeare" / "input.txt").exists()


def test_progress_bar_without_a_known_length():
    out = io.StringIO()
    bar = ds._Progress("file", None, stream=out)
    bar.update(2_500_000)
    bar.update(0, final=True)
    assert "2.5 MB" in out.getvalue() and out.getvalue().endswith("\n")


def test_command_line_fetches_and_reports(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ds, "RESOURCES", {**ds.RESOURCES, "tinyshakespeare": {}})
    assert ds.main(["tinyshakespeare", "--data-dir", str(tmp_path)]) == 0
    assert "ok" in capsys.readouterr().out
    monkeypatch.setattr(ds.urllib.request, "urlopen", _refuse)
    monkeypatch.setattr(ds.time, "sleep", lambda seconds: None)
    assert ds.main(["mnist", "--data-dir", str(tmp_path)]) == 1
    with pytest.raises(SystemExit):
        ds.main(["imagenet"])


def _refuse(*args, **kwargs):
    raise ds.urllib.error.URLError("no network in tests")
