from __future__ import annotations

import gzip
import hashlib
import socket
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from fnn import data
from fnn.data import DatasetSpec, FileSpec
from tests.support.files import IDX_NAMES, arrays, write_layout

NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

pytestmark = pytest.mark.usefixtures("isolated_env")


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def idx(a: np.ndarray[Any, Any]) -> bytes:
    dims = b"".join(d.to_bytes(4, "big") for d in a.shape)
    return bytes([0, 0, 0x08, a.ndim]) + dims + a.astype(np.uint8).tobytes()


@attrs.frozen
class Fake:
    """Four small IDX files (6 train, 4 test images), their bytes and a spec for them."""

    arrays: dict[str, np.ndarray[Any, Any]]
    raw: dict[str, bytes]
    gz: dict[str, bytes]
    spec: DatasetSpec

    def put(self, directory: Path, compress: bool = True, names: tuple[str, ...] = NAMES) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for n in names:
            if compress:
                (directory / f"{n}.gz").write_bytes(self.gz[n])
            else:
                (directory / n).write_bytes(self.raw[n])
        return directory


def fake(seed: int = 0, *, max_label: int = 9, image_shape: tuple[int, ...] = (28, 28)) -> Fake:
    rng = np.random.default_rng(seed)
    arrays = {
        NAMES[0]: rng.integers(0, 256, (6, *image_shape)).astype(np.uint8),
        NAMES[1]: np.array([0, 1, 2, 3, 4, max_label], np.uint8),
        NAMES[2]: rng.integers(0, 256, (4, *image_shape)).astype(np.uint8),
        NAMES[3]: rng.integers(0, 10, 4).astype(np.uint8),
    }
    raw = {n: idx(a) for n, a in arrays.items()}
    gz = {n: gzip.compress(b, mtime=0) for n, b in raw.items()}
    tr_x, tr_y, te_x, te_y = (FileSpec(n, sha256(raw[n]), sha256(gz[n])) for n in NAMES)
    spec = DatasetSpec("fake-mnist", tr_x, tr_y, te_x, te_y, num_train=6, num_test=4)
    return Fake(arrays, raw, gz, spec)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def assert_matches(ds: data.Dataset, f: Fake) -> None:
    np.testing.assert_array_equal(ds.x_train, f.arrays[NAMES[0]])
    np.testing.assert_array_equal(ds.y_train, f.arrays[NAMES[1]])
    np.testing.assert_array_equal(ds.x_test, f.arrays[NAMES[2]])
    np.testing.assert_array_equal(ds.y_test, f.arrays[NAMES[3]])
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.y_test.dtype == np.int64
    assert dict(ds.sha256) == {n: sha256(f.raw[n]) for n in NAMES}
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        assert not a.flags.writeable
    assert ds.name == f.spec.name


def test_download_verifies_caches_and_does_not_download_twice(tmp_path: Path, serve: Any) -> None:
    f = fake()
    server = serve({f"{n}.gz": f.gz[n] for n in NAMES}, "good")
    cache = tmp_path / "cache"
    ds = data.load_dataset(f.spec, cache_dir=cache, mirrors=[server.url.rstrip("/")])
    assert_matches(ds, f)
    assert ds.directory == cache / "fake-mnist"
    assert ds.files == tuple(cache / "fake-mnist" / f"{n}.gz" for n in NAMES)
    assert sorted(p.name for p in ds.directory.iterdir()) == sorted(f"{n}.gz" for n in NAMES)
    assert sorted(server.requests) == sorted(f"/files/{n}.gz" for n in NAMES)

    again = data.load_dataset(f.spec, cache_dir=cache, mirrors=[server.url])
    assert_matches(again, f)
    assert len(server.requests) == 4  # the second load read the cache only
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        again.x_train = again.x_test  # type: ignore[misc]


def test_default_cache_is_under_xdg_cache_home(tmp_path: Path, serve: Any) -> None:
    f = fake()
    server = serve({f"{n}.gz": f.gz[n] for n in NAMES}, "good")
    ds = data.load_dataset(f.spec, mirrors=[server.url])
    assert ds.directory == tmp_path / "xdg" / "fnn" / "fake-mnist"


def test_only_missing_files_are_downloaded(tmp_path: Path, serve: Any) -> None:
    f = fake()
    server = serve({f"{n}.gz": f.gz[n] for n in NAMES}, "good")
    cache = tmp_path / "cache"
    f.put(cache / "fake-mnist", names=NAMES[:2])
    assert_matches(data.load_dataset(f.spec, cache_dir=cache, mirrors=[server.url]), f)
    assert sorted(server.requests) == sorted(f"/files/{n}.gz" for n in NAMES[2:])


def test_a_corrupt_mirror_is_rejected_and_the_next_one_used(tmp_path: Path, serve: Any) -> None:
    f = fake()
    corrupt = {f"{n}.gz": f.gz[n][:-5] + b"\x00" * 5 for n in NAMES}
    bad = serve(corrupt, "bad")
    good = serve({f"{n}.gz": f.gz[n] for n in NAMES}, "good")
    ds = data.load_dataset(f.spec, cache_dir=tmp_path / "c", mirrors=[bad.url, good.url])
    assert_matches(ds, f)
    assert len(bad.requests) == 4 and len(good.requests) == 4


def test_bad_downloads_never_reach_the_cache(tmp_path: Path, serve: Any) -> None:
    f = fake()
    bad = serve({f"{n}.gz": b"not the file" for n in NAMES}, "bad")
    missing = serve({}, "empty")
    with pytest.raises(FileNotFoundError) as info:
        data.load_dataset(f.spec, cache_dir=tmp_path / "c", mirrors=[bad.url, missing.url])
    message = str(info.value)
    expected_gz = f.spec.train_images.gz_sha256
    assert f"{bad.url}train-images-idx3-ubyte.gz: checksum mismatch: SHA-256 " in message
    assert f"{sha256(b'not the file')} (12 bytes), expected {expected_gz}" in message
    assert f"{missing.url}train-images-idx3-ubyte.gz: HTTPError: File not found" in message
    assert list((tmp_path / "c" / "fake-mnist").iterdir()) == []  # no file, no temporary


def test_a_server_that_is_down_gives_the_offline_error(tmp_path: Path) -> None:
    f = fake()
    down = closed_port_url()
    data_dir = f.put(tmp_path / "partial", names=NAMES[:2])
    with pytest.raises(FileNotFoundError) as info:
        data.load_dataset(f.spec, data_dir=data_dir, cache_dir=tmp_path / "c", mirrors=[down])
    message = str(info.value)
    names = ", ".join(f"{n}[.gz]" for n in NAMES)
    assert message.startswith(f"fake-mnist not found: looked for {names} in these directories")
    lines = message.splitlines()
    assert lines[1] == f"  1. {data_dir / 'fake-mnist'} (data_dir): no such directory"
    assert lines[2] == (
        f"  2. {data_dir} (data_dir): 2 of 4 files, missing t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte"
    )
    assert lines[3] == f"  3. {tmp_path / 'c' / 'fake-mnist'} (cache): no such directory"
    assert lines[4] == "Download failed:"
    assert f"{down}train-images-idx3-ubyte.gz: URLError: [Errno " in message
    assert "Connection refused" in message
    assert "put the four files (gzipped or not) in a directory and pass data_dir=" in message
    assert "set FNN_DATA" in message and "download=True" in message


def test_a_silent_server_times_out(tmp_path: Path) -> None:
    f = fake()
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        start = time.perf_counter()
        with pytest.raises(FileNotFoundError, match="timed out"):
            data.load_dataset(f.spec, cache_dir=tmp_path / "c", mirrors=[url], timeout=0.2)
        assert time.perf_counter() - start < 5


def test_download_false_and_no_checksum_mean_no_network(tmp_path: Path, serve: Any) -> None:
    f = fake()
    server = serve({f"{n}.gz": f.gz[n] for n in NAMES}, "good")
    with pytest.raises(FileNotFoundError, match=r"Download not attempted \(download=False\)"):
        data.load_dataset(f.spec, cache_dir=tmp_path / "c", mirrors=[server.url], download=False)
    unverifiable = attrs.evolve(f.spec, test_labels=FileSpec(NAMES[3], sha256(f.raw[NAMES[3]])))
    with pytest.raises(FileNotFoundError, match="no gz checksum to verify a download of t10k-lab"):
        data.load_dataset(unverifiable, cache_dir=tmp_path / "c", mirrors=[server.url])
    with pytest.raises(FileNotFoundError, match="no mirrors to download from"):
        data.load_dataset(f.spec, cache_dir=tmp_path / "c", mirrors=[])
    assert server.requests == []


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = fake()
    system = tmp_path / "system"
    spec = attrs.evolve(f.spec, system_dirs=(str(system),))
    explicit = f.put(tmp_path / "explicit")
    env_sub = f.put(tmp_path / "env" / "fake-mnist")
    env = f.put(tmp_path / "env", compress=False)
    cache = f.put(tmp_path / "xdg" / "fnn" / "fake-mnist")
    f.put(system)
    monkeypatch.setenv("FNN_DATA", str(tmp_path / "env"))

    def where(**kwargs: Any) -> Path:
        ds = data.load_dataset(spec, download=False, **kwargs)
        assert_matches(ds, f)
        return ds.directory

    assert where(data_dir=explicit) == explicit
    f.put(explicit / "fake-mnist")
    assert where(data_dir=explicit) == explicit / "fake-mnist"  # <name>/ before the files
    assert where() == env_sub
    for p in env_sub.iterdir():
        p.unlink()
    assert where() == env
    ds = data.load_dataset(spec, download=False)
    assert ds.files == tuple(env / n for n in NAMES)  # raw files work as well as gz
    monkeypatch.delenv("FNN_DATA")
    assert where() == cache
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert where() == system  # the cache is now ~/.cache/fnn/fake-mnist, which is empty
    home_cache = f.put(tmp_path / "home" / ".cache" / "fnn" / "fake-mnist")
    assert where() == home_cache
    assert where(cache_dir=tmp_path / "xdg" / "fnn") == cache


def test_raw_files_are_preferred_to_gz_in_one_directory(tmp_path: Path) -> None:
    f = fake()
    d = f.put(f.put(tmp_path / "both"), compress=False)
    ds = data.load_dataset(f.spec, data_dir=d, download=False)
    assert ds.files == tuple(d / n for n in NAMES)


def test_a_file_that_fails_verification_is_an_error_not_skipped(tmp_path: Path) -> None:
    f, other = fake(0), fake(1)
    d = f.put(tmp_path / "here")
    (d / f"{NAMES[2]}.gz").write_bytes(other.gz[NAMES[2]])  # a valid IDX file, other content
    f.put(tmp_path / "xdg" / "fnn" / "fake-mnist")  # a good copy later in the search order
    with pytest.raises(ValueError, match="checksum mismatch") as info:
        data.load_dataset(f.spec, data_dir=d, download=False)
    assert str(info.value) == (
        f"{d / (NAMES[2] + '.gz')}: checksum mismatch for fake-mnist {NAMES[2]}: the SHA-256 "
        f"of its decompressed bytes is {sha256(other.raw[NAMES[2]])}, expected "
        f"{sha256(f.raw[NAMES[2]])}; the file is damaged or another file: replace it with a "
        "fresh copy"
    )
    (d / f"{NAMES[2]}.gz").write_bytes(f.gz[NAMES[2]][:-3])  # truncated gzip
    with pytest.raises(ValueError, match="corrupt gzip stream"):
        data.load_dataset(f.spec, data_dir=d, download=False)


def test_a_gz_with_the_mirrors_checksum_is_accepted(tmp_path: Path) -> None:
    f = fake()
    d = f.put(tmp_path / "here")
    # Suppose the decompressed checksum were unknown or wrong: the gz checksum still vouches.
    spec = attrs.evolve(f.spec, train_labels=attrs.evolve(f.spec.train_labels, sha256="0" * 64))
    ds = data.load_dataset(spec, data_dir=d, download=False)
    assert ds.sha256[NAMES[1]] == sha256(f.raw[NAMES[1]])  # the actual content's digest
    (d / NAMES[1]).write_bytes(f.raw[NAMES[1]])  # raw: no gz checksum applies
    with pytest.raises(ValueError, match=f"expected {'0' * 64}"):
        data.load_dataset(spec, data_dir=d, download=False)


def test_shapes_and_labels_are_checked(tmp_path: Path) -> None:
    bad_label = fake(max_label=10)
    with pytest.raises(
        ValueError, match=r"train-labels-idx1-ubyte.gz: labels must be in \[0, 10\)"
    ):
        data.load_dataset(bad_label.spec, data_dir=bad_label.put(tmp_path / "a"), download=False)
    small = fake(image_shape=(7, 4))
    with pytest.raises(
        ValueError, match=r"expected uint8 images of shape \(6, 28, 28\), got uint8 \(6, 7, 4\)"
    ):
        data.load_dataset(small.spec, data_dir=small.put(tmp_path / "b"), download=False)
    f = fake()
    d = f.put(tmp_path / "c")
    with pytest.raises(ValueError, match=r"shape \(7, 28, 28\), got uint8 \(6, 28, 28\)"):
        data.load_dataset(attrs.evolve(f.spec, num_train=7), data_dir=d, download=False)
    with pytest.raises(ValueError, match="4704 bytes of data, more than max_bytes=3920"):
        data.load_dataset(attrs.evolve(f.spec, num_train=5), data_dir=d, download=False)
    for code, itemsize, message in [
        (0x0C, 4, r"declares shape \(4,\) of int32, 16 bytes of data, more than max_bytes=4"),
        (0x09, 1, r"expected uint8 labels of shape \(4,\), got int8 \(4,\)"),
    ]:
        labels = bytes([0, 0, code, 1, 0, 0, 0, 4]) + bytes(4 * itemsize)  # 4 labels
        (d / NAMES[3]).write_bytes(labels)
        spec = attrs.evolve(f.spec, test_labels=FileSpec(NAMES[3], sha256(labels)))
        with pytest.raises(ValueError, match=message):
            data.load_dataset(spec, data_dir=d, download=False)


def test_names_and_arguments(tmp_path: Path) -> None:
    assert {"mnist", "fashion-mnist"} <= set(data.DATASETS)
    info = data.DATASETS["fashion-mnist"].info
    assert info == data.DataInfo(data.FASHION_MNIST.image_shape, data.FASHION_MNIST.classes)
    f = fake()
    d = f.put(tmp_path / "d")
    # Names resolve case- and underscore-insensitively (data_dir is searched first).
    with pytest.raises(ValueError, match="checksum mismatch for fashion-mnist train-images"):
        data.load_dataset("Fashion_MNIST", data_dir=d, download=False)
    with pytest.raises(ValueError, match="checksum mismatch for mnist train-images"):
        data.load_mnist(data_dir=d, download=False)
    with pytest.raises(ValueError, match="checksum mismatch for fashion-mnist"):
        data.load_fashion_mnist(data_dir=d, download=False)
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'; expected one of: fashion"):
        data.load_dataset("cifar10")
    with pytest.raises(TypeError, match="a dataset name must be a str, got 3"):
        data.load_dataset(3)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"data_dir .*nowhere is not a directory"):
        data.load_dataset(f.spec, data_dir=tmp_path / "nowhere")
    with pytest.raises(TypeError, match="mirrors must be a list of base URLs"):
        data.load_dataset(f.spec, mirrors="http://example.invalid/")
    with pytest.raises(ValueError, match="http:// or https:// URL, got 'file:///etc/'"):
        data.load_dataset(f.spec, mirrors=["file:///etc/"])
    with pytest.raises(TypeError, match="download must be True or False"):
        data.load_dataset(f.spec, download=1)  # type: ignore[arg-type]
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout must be a positive, finite number"):
            data.load_dataset(f.spec, timeout=bad)
    with pytest.raises(TypeError, match="timeout must be a number of seconds, got '3'"):
        data.load_dataset(f.spec, timeout="3")  # type: ignore[arg-type]


def test_specs_carry_the_published_checksums() -> None:
    for spec in (data.MNIST, data.FASHION_MNIST):
        assert [g.name for g in spec.files] == list(NAMES)
        for g in spec.files:
            assert len(g.sha256) == 64 and g.gz_sha256 is not None and len(g.gz_sha256) == 64
    assert data.FASHION_MNIST.train_images.sha256.startswith("c59f468a2f672dc8")
    assert data.MNIST.train_images.gz_sha256 is not None
    assert data.MNIST.train_images.gz_sha256.startswith("440fcabf73cc546f")
    assert "apt-get install dataset-fashion-mnist" in data.FASHION_MNIST.install_hint


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="needs apt's dataset-fashion-mnist")
def test_the_real_fashion_mnist_from_debian() -> None:
    ds = data.load_fashion_mnist(download=False)  # found in the system location
    assert ds.directory == DEBIAN_FASHION
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert dict(ds.sha256) == {g.name: g.sha256 for g in data.FASHION_MNIST.files}
    with pytest.raises(ValueError, match="it is fashion-mnist's train-images-idx3-ubyte"):
        data.load_mnist(data_dir=DEBIAN_FASHION, download=False)


def test_class_names() -> None:
    assert data.FASHION_MNIST.classes[9] == "Ankle boot"
    assert data.MNIST.classes == tuple("0123456789")
    assert all(len(s.classes) == s.num_classes for s in (data.MNIST, data.FASHION_MNIST))
    assert data.DATASETS["mnist"].info is not None
    assert data.DATASETS["mnist"].info.num_classes == 10


def test_load_dataset_carries_the_spec_classes(tmp_path: Path) -> None:
    values = arrays(n_train=6, n_test=4, image=(28, 28), classes=10)
    write_layout(tmp_path, "idx", values)
    raw = {n: (tmp_path / n).read_bytes() for n in IDX_NAMES}
    files = [data.FileSpec(n, hashlib.sha256(raw[n]).hexdigest()) for n in IDX_NAMES]
    spec = data.DatasetSpec(
        "tiny",
        files[0],
        files[1],
        files[2],
        files[3],
        num_train=6,
        num_test=4,
        classes=tuple("abcdefghij"),
    )
    ds = data.load_dataset(spec, data_dir=tmp_path, download=False)
    assert ds.num_classes == 10 and ds.classes == tuple("abcdefghij")
