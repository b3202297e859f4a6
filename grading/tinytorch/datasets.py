"""Dataset files for the milestones: find, verify, download (if needed) and parse.

This is provided framework code, not a kata. Every loader returns the data as
stored - uint8 images and int64 labels as numpy arrays, text as `str` - and the
transforms of module 08 (`tinytorch.data`) normalise later.

    from tinytorch.datasets import load_mnist
    mnist = load_mnist()                  # ImageData(train_images (60000, 28, 28) uint8, ...)

Where the files live (the first that applies):
    1. the `data_dir=` argument (milestone scripts: `--data-dir DIR`),
    2. the environment variable TINYTORCH_DATA,
    3. $XDG_CACHE_HOME/tinytorch, else ~/.cache/tinytorch.

Layout inside that directory:
    mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    fashion-mnist/  (the same four names)
    cifar-10/cifar-10-python.tar.gz      (or its extracted cifar-10-batches-py/ folder)
    tinyshakespeare/input.txt

A file that is present and whose md5 matches is used as is: nothing is downloaded.
A missing file is downloaded (urllib, each mirror in turn, a few attempts, into
`<name>.part`, renamed only once its md5 verifies); a cached file whose checksum does
not match (a truncated or corrupted download) is reported and fetched again, never
used. Without network access, the error names the expected path, TINYTORCH_DATA and
--data-dir. The URL/checksum table (`RESOURCES`) can be replaced per call
(`resources=`), which is how the tests serve small fake files from a local server.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

DATA_ENV = "TINYTORCH_DATA"


@dataclass(frozen=True)
class Resource:
    """One file of a dataset: its path inside the data directory, md5 and download URLs (tried in order)."""

    path: str
    md5: str
    urls: tuple[str, ...]


@dataclass
class ImageData:
    """An image classification dataset as stored: uint8 images, int64 labels in [0, len(classes))."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"ImageData(train_images {self.train_images.shape} {self.train_images.dtype}, "
                f"test_images {self.test_images.shape} {self.test_images.dtype}, {len(self.classes)} classes)")


class DatasetError(RuntimeError):
    """A dataset file is missing and could not be downloaded, or it is corrupt."""


_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _mirrored(folder: str, mirrors: Sequence[str], md5s: Sequence[str]) -> dict[str, Resource]:
    return {name: Resource(f"{folder}/{name}", md5, tuple(m + name for m in mirrors))
            for name, md5 in zip(_IDX_FILES, md5s)}


RESOURCES: dict[str, dict[str, Resource]] = {
    "mnist": _mirrored("mnist", _MNIST_MIRRORS, (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
    "fashion-mnist": _mirrored("fashion-mnist", _FASHION_MIRRORS, (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")),
    "cifar10": {"cifar-10-python.tar.gz": Resource(
        "cifar-10/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
        ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",))},
    "tinyshakespeare": {"input.txt": Resource(
        "tinyshakespeare/input.txt", "6fb458f1232090904fb40fe944165e91",
        ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",))},
}

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]

# ----------------------------------------------------------------------------
# Where the data lives
# ----------------------------------------------------------------------------


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: `data_dir`, else $TINYTORCH_DATA, else the user cache (XDG_CACHE_HOME)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "tinytorch"


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _where_hint(path: Path) -> str:
    return (f"Put the file at {path}, or point the environment variable {DATA_ENV} (milestones: --data-dir DIR;"
            f" code: data_dir=...) at a directory that holds it.")


# ----------------------------------------------------------------------------
# Downloading
# ----------------------------------------------------------------------------


class _Progress:
    """A one-line text progress bar on stderr (redrawn at most every 0.2 s)."""

    def __init__(self, label: str, total: int | None, stream=None):
        self.label, self.total, self.done = label, total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.last = 0.0

    def update(self, count: int, final: bool = False) -> None:
        self.done += count
        now = time.monotonic()
        if not final and now - self.last < 0.2:
            return
        self.last = now
        mb = self.done / 1e6
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            bar = "#" * int(30 * fraction)
            text = f"\r  {self.label} [{bar:<30}] {100 * fraction:5.1f}% {mb:.1f}/{self.total / 1e6:.1f} MB"
        else:
            text = f"\r  {self.label} {mb:.1f} MB"
        self.stream.write(text + ("\n" if final else ""))
        self.stream.flush()


def _fetch_once(url: str, part: Path, label: str, progress: bool, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
        length = response.headers.get("Content-Length")
        bar = _Progress(label, int(length) if length and length.isdigit() else None) if progress else None
        while block := response.read(1 << 16):
            out.write(block)
            if bar:
                bar.update(len(block))
        if bar:
            bar.update(0, final=True)


def download(resource: Resource, root: Path, retries: int = 3, progress: bool = True, timeout: float = 60.0,
             backoff: float = 1.0, log: Callable[[str], None] | None = None) -> Path:
    """Fetch `resource` into root/resource.path via a .part file; verify its md5; return the path.

    Tries every URL in turn, `retries` rounds, sleeping `backoff * round` seconds in between.
    A download whose checksum does not match is discarded (and reported) and tried again.
    Raises DatasetError listing each failure and where to put the file by hand.
    """
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    dest = root / resource.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures: list[str] = []
    for attempt in range(1, retries + 1):
        for url in resource.urls:
            log(f"downloading {url} -> {dest} (attempt {attempt}/{retries})")
            try:
                _fetch_once(url, part, resource.path, progress, timeout)
            except (urllib.error.URLError, OSError, ValueError) as err:
                reason = err if isinstance(err, urllib.error.HTTPError) else getattr(err, "reason", None) or err
                failures.append(f"{url}: {reason}")
                part.unlink(missing_ok=True)
                continue
            got = md5sum(part)
            if got == resource.md5:
                os.replace(part, dest)
                return dest
            failures.append(f"{url}: checksum mismatch (md5 {got}, expected {resource.md5}): corrupted or truncated")
            log(f"  {failures[-1]}; discarding it")
            part.unlink(missing_ok=True)
        if attempt < retries and backoff:
            time.sleep(backoff * attempt)
    raise DatasetError(
        f"could not download {resource.path} (expected at {dest}):\n  " + "\n  ".join(failures)
        + f"\n{_where_hint(dest)}"
    )


def fetch(name: str, data_dir: str | os.PathLike | None = None, download_missing: bool = True,
          resources: Mapping[str, Mapping[str, Resource]] | None = None, **download_options) -> dict[str, Path]:
    """Make sure every file of dataset `name` is present and verified; return {file key: path}.

    A present file with the right md5 is used without any network access. A present file
    with a wrong md5 is reported and re-downloaded (or, with download_missing=False, an error).
    """
    table = (resources or RESOURCES)[name]
    root = data_root(data_dir)
    paths: dict[str, Path] = {}
    for key, resource in table.items():
        path = root / resource.path
        if path.is_file():
            got = md5sum(path)
            if got == resource.md5:
                paths[key] = path
                continue
            problem = (f"{path}: checksum mismatch (md5 {got}, expected {resource.md5}):"
                       " the file is truncated or corrupted")
            if not download_missing:
                raise DatasetError(f"{problem}. Delete it or download it again. {_where_hint(path)}")
            print(f"{problem}; fetching it again", file=sys.stderr, flush=True)
        elif not download_missing:
            raise DatasetError(f"{name}: {path} does not exist and downloading is disabled. {_where_hint(path)}")
        paths[key] = download(resource, root, **download_options)
    return paths


# ----------------------------------------------------------------------------
# Parsers
# ----------------------------------------------------------------------------


def _read_exactly(stream: io.BufferedIOBase, count: int, what: str) -> np.ndarray:
    """Read `count` bytes from `stream` straight into a new uint8 array (no intermediate copy)."""
    out = np.empty(count, dtype=np.uint8)
    view, filled = memoryview(out), 0
    while filled < count:
        n = stream.readinto(view[filled:])
        if not n:
            raise DatasetError(f"{what}: truncated ({filled} of {count} bytes)")
        filled += n
    return out


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse a (gzipped) IDX file of unsigned bytes: MNIST's format. Returns uint8, shape from the header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            header = f.read(4)
            if len(header) != 4 or header[0] != 0 or header[1] != 0 or header[2] != 0x08:
                raise DatasetError(f"{path}: not an IDX file of unsigned bytes (header {header!r})")
            ndim = header[3]
            dims = tuple(int(d) for d in np.frombuffer(f.read(4 * ndim), dtype=">u4"))
            if len(dims) != ndim:
                raise DatasetError(f"{path}: truncated IDX header")
            data = _read_exactly(f, int(np.prod(dims)), str(path))
            if f.read(1):
                raise DatasetError(f"{path}: more data than its header {dims} announces")
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DatasetError(f"{path}: unreadable ({err})") from None
    return data.reshape(dims)


def _load_idx_dataset(name: str, classes: list[str], data_dir, download_missing, resources, download_options):
    paths = fetch(name, data_dir, download_missing, resources, **download_options)
    arrays = [read_idx(paths[key]) for key in _IDX_FILES]
    train_images, train_labels, test_images, test_labels = arrays
    for images, labels in ((train_images, train_labels), (test_images, test_labels)):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(f"{name}: images {images.shape} and labels {labels.shape} do not match")
    return ImageData(train_images, train_labels.astype(np.int64), test_images, test_labels.astype(np.int64), classes)


def load_mnist(data_dir: str | os.PathLike | None = None, download: bool = True,
               resources: Mapping[str, Mapping[str, Resource]] | None = None, **download_options) -> ImageData:
    """MNIST digits: uint8 images (60000, 28, 28) / (10000, 28, 28) in 0..255, int64 labels 0..9."""
    return _load_idx_dataset("mnist", MNIST_CLASSES, data_dir, download, resources, download_options)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, download: bool = True,
                       resources: Mapping[str, Mapping[str, Resource]] | None = None,
                       **download_options) -> ImageData:
    """Fashion-MNIST: the same layout as MNIST, ten clothing classes (FASHION_CLASSES)."""
    return _load_idx_dataset("fashion-mnist", FASHION_CLASSES, data_dir, download, resources, download_options)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickle CIFAR-10 batches, allowing only the numpy array reconstruction they need."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("copy_reg", "_reconstructor"),
               ("copyreg", "_reconstructor"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR-10 batch refers to {module}.{name}, which is not allowed")
        return super().find_class(module, name)


CIFAR_MEMBERS = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")


def _cifar_batch(raw: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="latin1").load()
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as err:
        raise DatasetError(f"{what}: not a CIFAR-10 batch ({err})") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DatasetError(f"{what}: expected data (N, 3072) and N labels, got {data.shape} and {labels.shape}")
    return data, labels


def _to_hwc(data: np.ndarray) -> np.ndarray:
    """Rows of 3072 bytes (R plane, G plane, B plane; each 32x32 row-major) -> (N, 32, 32, 3)."""
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _cifar_members(root: Path, data_dir, download_missing, resources, download_options):
    """Yield (member name, bytes, where) for the seven CIFAR-10 files, one at a time."""
    table = (resources or RESOURCES)["cifar10"]
    extracted = root / Path(table["cifar-10-python.tar.gz"].path).parent / "cifar-10-batches-py"
    if all((extracted / m).is_file() for m in CIFAR_MEMBERS):
        for m in CIFAR_MEMBERS:
            yield m, (extracted / m).read_bytes(), f"{extracted / m}"
        return
    archive = fetch("cifar10", data_dir, download_missing, resources, **download_options)["cifar-10-python.tar.gz"]
    seen = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in CIFAR_MEMBERS and name not in seen:
                    seen.add(name)
                    yield name, tar.extractfile(member).read(), f"{archive}: {member.name}"
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DatasetError(f"{archive}: unreadable archive ({err})") from None
    missing = [m for m in CIFAR_MEMBERS if m not in seen]
    if missing:
        raise DatasetError(f"{archive}: missing {', '.join(missing)} (not the CIFAR-10 python archive?)")


def load_cifar10(data_dir: str | os.PathLike | None = None, download: bool = True,
                 resources: Mapping[str, Mapping[str, Resource]] | None = None, **download_options) -> ImageData:
    """CIFAR-10: uint8 images (50000, 32, 32, 3) / (10000, 32, 32, 3) channels last (HWC), int64 labels.

    Read straight from cifar-10/cifar-10-python.tar.gz (verified by md5), or from an
    extracted cifar-10/cifar-10-batches-py/ folder when one holds all seven files (used as is).
    Each batch is converted as soon as it is read, so peak memory stays near 2x the images.
    """
    root = data_root(data_dir)
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    classes: list[str] = []
    for name, raw, where in _cifar_members(root, data_dir, download, resources, download_options):
        if name == "batches.meta":
            try:
                meta = _CifarUnpickler(io.BytesIO(raw), encoding="latin1").load()
                classes = [str(c) for c in meta["label_names"]]
            except (pickle.UnpicklingError, KeyError, TypeError, EOFError) as err:
                raise DatasetError(f"{where}: not CIFAR-10 metadata ({err})") from None
        else:
            data, labels = _cifar_batch(raw, where)
            batches[name] = _to_hwc(data), labels
        del raw
    train = [batches.pop(f"data_batch_{i}") for i in range(1, 6)]
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    del train
    test_images, test_labels = batches.pop("test_batch")
    return ImageData(train_images, train_labels, test_images, test_labels, classes)


def load_tinyshakespeare(data_dir: str | os.PathLike | None = None, download: bool = True,
                         resources: Mapping[str, Mapping[str, Resource]] | None = None, **download_options) -> str:
    """Tiny Shakespeare (Karpathy's char-rnn corpus): the whole text (1,115,394 characters) as a str."""
    path = fetch("tinyshakespeare", data_dir, download, resources, **download_options)["input.txt"]
    return path.read_text(encoding="utf-8")


LOADERS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10,
           "tinyshakespeare": load_tinyshakespeare}


def main(argv: list[str] | None = None) -> int:
    """`python -m tinytorch.datasets [NAME ...] [--data-dir DIR]`: fetch and verify datasets ahead of time."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tinytorch.datasets")
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(LOADERS)} (default: all)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in LOADERS]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}: choose from {', '.join(LOADERS)}")
    for name in args.names or list(LOADERS):
        try:
            fetch(name, args.data_dir)
        except DatasetError as err:
            print(f"{name}: {err}", file=sys.stderr)
            return 1
        print(f"{name}: ok in {data_root(args.data_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
