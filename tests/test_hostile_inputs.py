"""Hostile files and paths: each is refused quickly with a clear ValueError, never read whole.

A path may name a FIFO (which blocks a careless reader forever), ``/dev/zero`` (which
never ends), a directory or a sparse file of gigabytes; a header may declare more data
than memory holds; a picture may be a decompression bomb; a tree or a model spec may be
deeper or longer than any real one. Where a regression would hang or eat the machine's
memory, the call runs in a child process with a time limit and 2 GiB of address space.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
import fnn.io
from fnn import data, nn
from fnn.data import DataError
from fnn.io import FormatError

LINUX = sys.platform.startswith("linux")
IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
NPY_NAMES = ("x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy")


def guarded(code: str, *args: str, timeout: float = 60.0) -> str:
    """Run ``code`` in a fresh Python limited to 2 GiB of address space; its stdout.

    A child that runs past ``timeout`` (a blocked FIFO) or fails (out of memory reading
    ``/dev/zero``) fails the test instead of hanging or swapping the suite.
    """
    script = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n" + textwrap.dedent(code)
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    root = Path(fnn.__file__).resolve().parents[1]  # the child imports this very fnn
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=root,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout} s: the reader blocks")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


CALL = """
import importlib, sys
module, name = sys.argv[1].rsplit(".", 1)
function = getattr(importlib.import_module(module), name)
try:
    function(sys.argv[2])
except ValueError as e:
    print(type(e).__name__, e)
else:
    print("no error")
"""


def refused_in_child(function: str, path: Path) -> str:
    """What ``function(path)`` raises, as ``"<ErrorName> <message>"``, from a guarded child."""
    return guarded(CALL, function, str(path)).strip()


def special_file(tmp_path: Path, which: str, name: str) -> Path:
    """A FIFO, or a symlink to ``/dev/zero``, at ``tmp_path / name``."""
    path = tmp_path / name
    if which == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    return path


SPECIAL = [("fifo", "a FIFO (named pipe)"), ("zero", "a character device")]


# -- 1. regular files only ---------------------------------------------------------------------


@pytest.mark.skipif(not LINUX, reason="FIFOs and /dev/zero as on Linux")
@pytest.mark.parametrize(("which", "what"), SPECIAL)
@pytest.mark.parametrize(
    ("function", "error"),
    [
        ("fnn.io.load", "FormatError"),
        ("fnn.io.load_model", "FormatError"),
        ("fnn.io.load_metadata", "FormatError"),
        ("fnn.data.read_idx", "DataError"),
        ("fnn.data.read_images", "DataError"),
        ("fnn.data.load_directory", "DataError"),
    ],
)
def test_a_fifo_or_dev_zero_is_refused_at_once(
    tmp_path: Path, which: str, what: str, function: str, error: str
) -> None:
    if function.endswith("load_directory"):
        for name in NPY_NAMES[1:]:
            np.save(tmp_path / name, np.zeros(1, np.uint8))
        special_file(tmp_path, which, NPY_NAMES[0])
        path = tmp_path
    else:
        path = special_file(tmp_path, which, "model.npz")
    found = refused_in_child(function, path)
    assert found.startswith(error), found
    assert what in found and "expected a regular file" in found, found
    if which == "zero":
        assert "a link to /dev/zero" in found


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a directory"):  # as open() says it
        fnn.io.load(tmp_path)
    with pytest.raises(DataError, match="is a directory; expected a regular file"):
        data.read_idx(tmp_path)
    with pytest.raises(DataError, match="is a directory; expected a regular file"):
        data.read_images(tmp_path)


def test_a_growing_file_is_read_only_to_its_size_at_open(tmp_path: Path) -> None:
    from fnn import _files

    path = tmp_path / "grows"
    path.write_bytes(b"abc")
    with _files.open_regular(path, DataError) as file:
        with path.open("ab") as more:
            more.write(b"def")
        assert file.read() == b"abc"
        assert file.seek(0, os.SEEK_END) == 3


# -- 2. IDX: the header first, one buffer -----------------------------------------------------


def idx_header(code: int, shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


@pytest.mark.skipif(not LINUX, reason="sparse files and RLIMIT_AS as on Linux")
def test_a_sparse_6_gib_idx_file_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "huge.idx"
    size = 6 << 30
    with path.open("wb") as f:
        f.write(idx_header(0x08, (6, 1 << 30)))
        f.truncate(12 + size)  # sparse: no disk used
    code = """
        import sys
        from fnn.data import read_idx
        try:
            read_idx(sys.argv[1], max_bytes=int(sys.argv[2]))
        except ValueError as e:
            print(type(e).__name__, e)
    """
    found = guarded(code, str(path), str(1 << 30), timeout=30)
    assert found.startswith("DataError") and "more than max_bytes=1073741824" in found
    path.write_bytes(idx_header(0x08, (7, 1 << 30)))  # 7 GiB declared, 6 GiB there
    with path.open("r+b") as f:
        f.truncate(12 + size)
    found = guarded(code, str(path), str(8 << 30), timeout=30)
    assert "truncated: shape (7, 1073741824) of uint8 needs 7516192768 bytes" in found
    assert found.endswith("got 6442450944\n")


def gzip_bomb(path: Path, images: int) -> int:
    """A valid gzip IDX of ``images`` zero images of 28x28 (1 MiB members); its data size."""
    member = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    size = images * 784
    assert size % (1 << 20) == 0
    with path.open("wb") as f:
        f.write(gzip.compress(idx_header(0x08, (images, 28, 28)), mtime=0))
        for _ in range(size >> 20):
            f.write(member)
    return size


@pytest.mark.skipif(not LINUX, reason="ru_maxrss in KiB as on Linux")
def test_a_gzip_idx_is_inflated_into_one_buffer(tmp_path: Path) -> None:
    path = tmp_path / "bomb.idx.gz"
    declared = gzip_bomb(path, 1 << 18)  # 196 MiB of data from about 200 KB
    assert path.stat().st_size < 1 << 20
    code = """
        import resource, sys
        from fnn.data import read_idx
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        array = read_idx(sys.argv[1])
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(array.shape, array.nbytes, (after - before) * 1024)
    """
    shape, nbytes, grown = guarded(code, str(path)).rsplit(" ", 2)
    assert shape == "(262144, 28, 28)" and int(nbytes) == declared
    assert int(grown) < declared + (80 << 20)  # one buffer and a few 16 MiB chunks


def test_a_gzip_idx_declaring_more_than_max_bytes_is_refused_unread() -> None:
    bomb = gzip.compress(idx_header(0x08, (1000, 28, 28)), mtime=0) + b"\x00" * 10
    with pytest.raises(DataError, match="784000 bytes of data, more than max_bytes=1000"):
        data.read_idx(bomb, max_bytes=1000)


def test_big_endian_idx_is_swapped_in_place_and_read_only(tmp_path: Path) -> None:
    values = np.arange(6, dtype=">i4").reshape(2, 3)
    data.write_idx(tmp_path / "a.idx.gz", values, compress=True)
    out = data.read_idx(tmp_path / "a.idx.gz")
    assert out.dtype == np.dtype("=i4") and not out.flags.writeable
    np.testing.assert_array_equal(out, values)


# -- 3. .npy headers --------------------------------------------------------------------------


def npy_bytes(shape: tuple[int, ...], dtype: str = "|u1", payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


@pytest.mark.skipif(not LINUX, reason="RLIMIT_AS as on Linux")
def test_a_npy_header_declaring_313_gb_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    path.write_bytes(npy_bytes((400_000_000, 28, 28)))
    found = refused_in_child("fnn.data.read_images", path)
    assert found.startswith("DataError"), found
    assert "313600000000 bytes of data, more than max_bytes=1073741824" in found


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (npy_bytes((5, 28, 28), payload=bytes(100)), "truncated: the .npy header declares"),
        (npy_bytes((1, 28, 28), payload=bytes(785)), "trailing data"),
        (npy_bytes((1, 2), "|O"), "never Python objects"),
        (npy_bytes((1, 2), "<U3"), "expected numbers"),
        (b"\x93NUMPY\x09\x00" + bytes(20), "version (9, 0) is not supported"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}    ", "malformed .npy header"),
    ],
)
def test_bad_npy_files_are_data_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.npy"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"bad\.npy") as info:
        data.read_images(path)
    assert message in str(info.value)


def test_max_bytes_bounds_npy_and_idx_images(tmp_path: Path) -> None:
    np.save(tmp_path / "two.npy", np.zeros((2, 28, 28), np.uint8))
    assert data.read_images(tmp_path / "two.npy", max_bytes=1568).shape == (2, 28, 28)
    with pytest.raises(DataError, match="1568 bytes of data, more than max_bytes=1567"):
        data.read_images(tmp_path / "two.npy", max_bytes=1567)


# -- 4. pictures and read_images --------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` gray pixels and holds none."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 10))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [
        (30000, 30000, "too large to decode"),  # Pillow's DecompressionBombError
        (10000, 10000, "too large to decode"),  # Pillow's DecompressionBombWarning
        (9000, 8000, "9000x8000 (72000000 pixels), more than the 67108864"),  # ours
    ],
)
def test_a_picture_too_large_is_refused_before_decoding(
    tmp_path: Path, width: int, height: int, message: str
) -> None:
    pytest.importorskip("PIL")
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(width, height))
    with pytest.raises(DataError, match=r"bomb\.png") as info:
        data.read_images(path)
    assert message in str(info.value)


def saved_picture(path: Path, array: np.ndarray[Any, Any], format: str = "PNG") -> Path:
    from PIL import Image

    Image.fromarray(array).save(path, format=format)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda good: good[: len(good) // 2], "truncated or damaged"),
        (lambda good: good[:60] + bytes(len(good) - 72) + good[-12:], "truncated or damaged"),
        (lambda good: b"just some text, not a picture", "not a picture Pillow can read"),
        (lambda good: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n", "not a picture"),
    ],
)
def test_damaged_or_not_pictures_are_data_errors(
    tmp_path: Path, make: Callable[[bytes], bytes], message: str
) -> None:
    pytest.importorskip("PIL")
    rng = np.random.default_rng(0)
    good = saved_picture(tmp_path / "good.png", rng.integers(0, 256, (64, 64), np.uint8))
    path = tmp_path / "bad.png"
    path.write_bytes(make(good.read_bytes()))
    with pytest.raises(DataError, match=r"bad\.png") as info:
        data.read_images(path)
    assert message in str(info.value)


@pytest.mark.skipif(not LINUX, reason="sparse files and RLIMIT_AS as on Linux")
def test_read_images_reads_8_bytes_to_tell_the_format(tmp_path: Path) -> None:
    path = tmp_path / "huge.idx"
    with path.open("wb") as f:
        f.write(idx_header(0x08, (6, 1 << 30)))
        f.truncate(6 << 30)
    found = refused_in_child("fnn.data.read_images", path)
    assert found.startswith("DataError") and "more than max_bytes" in found, found


def test_read_images_keeps_its_documented_behaviour(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    one = np.full((28, 28), 255, np.uint8)
    np.save(tmp_path / "one.npy", one)
    out = data.read_images(tmp_path / "one.npy")
    assert out.shape == (1, 28, 28) and out.dtype == np.float32 and out.max() == 1.0
    assert data.read_images(tmp_path / "one.npy", invert=True).max() == 0.0
    picture = saved_picture(tmp_path / "big.png", np.zeros((56, 40), np.uint8))
    assert data.read_images(picture).shape == (1, 28, 28)
    with pytest.raises(FileNotFoundError, match=r"nothing\.png: no such file"):
        data.read_images(tmp_path / "nothing.png")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 5)))
    with pytest.raises(DataError, match=r"expected images of shape \(28, 28\) or \(n, 28, 28\)"):
        data.read_images(tmp_path / "wrong.npy")


def test_read_images_of_other_shapes(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    rng = np.random.default_rng(1)
    color = rng.integers(0, 256, (10, 20, 3), np.uint8)
    picture = saved_picture(tmp_path / "color.png", color)
    assert data.read_images(picture, image_shape=(16, 12, 3)).shape == (1, 16, 12, 3)
    assert data.read_images(picture, image_shape=(16, 12, 1)).shape == (1, 16, 12, 1)
    as_is = data.read_images(picture, image_shape=None)
    np.testing.assert_allclose(as_is[0], color / 255.0, atol=1e-6)
    gray = saved_picture(tmp_path / "gray.bmp", rng.integers(0, 256, (9, 7), np.uint8), "BMP")
    assert data.read_images(gray, image_shape=None).shape == (1, 9, 7)
    with pytest.raises(DataError, match="c = 1, 3 or 4 channels"):
        data.read_images(picture, image_shape=(8, 8, 2))
    np.save(tmp_path / "batch.npy", rng.random((5, 4, 4, 2)).astype(np.float32))
    assert data.read_images(tmp_path / "batch.npy", image_shape=(4, 4, 2)).shape == (5, 4, 4, 2)
    assert data.read_images(tmp_path / "batch.npy", image_shape=None).shape == (5, 4, 4, 2)
    with pytest.raises(TypeError, match="image_shape must be a tuple"):
        data.read_images(tmp_path / "batch.npy", image_shape=[4, 4])  # type: ignore[arg-type]


# -- 5. deep trees, long specs -----------------------------------------------------------------


@pytest.mark.parametrize("levels", [300, 900, 5000])
def test_saving_a_deep_tree_is_the_documented_value_error(tmp_path: Path, levels: int) -> None:
    deep: Any = np.ones(1)
    for _ in range(levels):
        deep = [deep]
    with pytest.raises(ValueError, match="the tree nests too deeply to be saved"):
        fnn.io.save(tmp_path / "deep.npz", deep)
    with pytest.raises(ValueError, match="the tree nests too deeply"):
        fnn.io.load(tmp_path / "deep.npz", like=deep)
    assert not (tmp_path / "deep.npz").exists()


def test_a_list_that_contains_itself_is_too_deep(tmp_path: Path) -> None:
    loop: list[Any] = [np.ones(1)]
    loop.append(loop)
    with pytest.raises(ValueError, match="the tree nests too deeply to be saved"):
        fnn.io.save(tmp_path / "loop.npz", loop)
    assert fnn.tree.depth(loop, 10) == 11


def model_file(path: Path, layers: int) -> Path:
    """A model file whose spec is ``serial`` of ``layers`` relus (and a matching tree)."""
    description = {
        "format": "fnn",
        "version": 1,
        "metadata": {},
        "model": {
            "spec": {"layer": "serial", "layers": [{"layer": "relu"}] * layers},
            "in_shape": [4],
            "dtype": "float32",
        },
        "tree": {"kind": "tuple", "children": [{"kind": "none"}] * layers},
    }
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fnn.json", json.dumps(description))
    return path


def test_a_spec_of_too_many_layers_is_refused_before_any_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(fnn.io.load_model(model_file(tmp_path / "ok.npz", 9_999)).params) == 9_999

    def never(spec: Any) -> Any:
        raise AssertionError("a layer was built")

    monkeypatch.setattr(nn, "from_spec", never)
    path = model_file(tmp_path / "long.npz", 10_000)
    with pytest.raises(FormatError, match="spec of 10001 layers, more than the 10000"):
        fnn.io.load_model(path)
    with pytest.raises(FormatError, match="10001 layers"):
        fnn.io.load_metadata(path)


def test_save_model_refuses_a_spec_it_could_not_load(tmp_path: Path, key: Any) -> None:
    model = nn.serial(*[nn.relu()] * 10_001)
    with pytest.raises(ValueError, match=r"model\.spec holds 10002 layers, more than the 10000"):
        fnn.io.save_model(tmp_path / "m.npz", model, model.init(key, (3,)), in_shape=(3,))


# -- 6. a user's own data directory ------------------------------------------------------------


def idx_file(array: np.ndarray[Any, Any]) -> bytes:
    return idx_header(0x08, array.shape) + array.astype(np.uint8).tobytes()


def arrays(
    n_train: int = 6, n_test: int = 4, image: tuple[int, ...] = (5, 4), classes: int = 3
) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    return {
        "x_train": rng.integers(0, 256, (n_train, *image), np.uint8),
        "y_train": np.arange(n_train, dtype=np.int64) % classes,
        "x_test": rng.integers(0, 256, (n_test, *image), np.uint8),
        "y_test": np.arange(n_test, dtype=np.int64) % classes,
    }


def write_layout(directory: Path, layout: str, values: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    ordered = [values[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    if layout in ("idx", "idx.gz"):
        for name, array in zip(IDX_NAMES, ordered):
            raw = idx_file(array)
            if layout == "idx.gz":
                (directory / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
            else:
                (directory / name).write_bytes(raw)
    elif layout == "npy":
        for name, array in zip(NPY_NAMES, ordered):
            np.save(directory / name, array)
    elif layout == "npz":
        np.savez(directory / "data.npz", **values)
    else:
        np.savez_compressed(directory / "data.npz", **values)


@pytest.mark.parametrize("layout", ["idx", "idx.gz", "npy", "npz", "npz-compressed"])
def test_load_directory_round_trip(tmp_path: Path, layout: str) -> None:
    values = arrays()
    directory = tmp_path / "my-digits"
    write_layout(directory, layout, values)
    ds = data.load_directory(directory)
    for name in ("x_train", "x_test"):
        np.testing.assert_array_equal(getattr(ds, name), values[name])
    for name in ("y_train", "y_test"):
        got = getattr(ds, name)
        assert got.dtype == np.int64 and not got.flags.writeable
        np.testing.assert_array_equal(got, values[name])
    assert ds.name == "my-digits" and ds.directory == directory
    assert ds.num_classes == 3 and ds.classes == ("0", "1", "2")
    on_disk = sorted(p.name for p in directory.iterdir())
    assert sorted(p.name for p in ds.files) == on_disk
    assert dict(ds.sha256) == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()
    }


def test_load_directory_float_images_of_any_shape_and_class_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    values = arrays(image=(6, 5, 3))
    values["x_train"] = rng.random((6, 6, 5, 3)).astype(np.float32)
    values["x_test"] = rng.random((4, 6, 5, 3))
    write_layout(tmp_path, "npy", values)
    (tmp_path / "classes.txt").write_text("cat\nT-shirt/top\nbird, small\n", encoding="utf-8")
    ds = data.load_directory(tmp_path)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float64
    assert ds.x_train.shape[1:] == (6, 5, 3)
    assert ds.classes == ("cat", "T-shirt/top", "bird, small") and ds.num_classes == 3
    assert tmp_path / "classes.txt" in ds.files and "classes.txt" in ds.sha256
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\n")
    assert data.load_directory(tmp_path).num_classes == 4


def expect(directory: Path, message: str, **kwargs: Any) -> None:
    with pytest.raises(DataError) as info:
        data.load_directory(directory, **kwargs)
    assert message in str(info.value), str(info.value)


def test_load_directory_missing_or_mixed_files(tmp_path: Path) -> None:
    expect(tmp_path, "looked for the IDX files train-images-idx3-ubyte[.gz]")
    expect(tmp_path, "x_train.npy, y_train.npy, x_test.npy, y_test.npy, or data.npz")
    values = arrays()
    write_layout(tmp_path, "npy", values)
    (tmp_path / "y_test.npy").unlink()
    expect(tmp_path, "found x_train.npy, y_train.npy, x_test.npy but not y_test.npy")
    np.save(tmp_path / "y_test.npy", values["y_test"])
    write_layout(tmp_path, "npz", values)
    expect(tmp_path, "a mix of formats (.npy: x_train.npy")
    (tmp_path / "data.npz").unlink()
    (tmp_path / IDX_NAMES[0]).write_bytes(idx_file(values["x_train"]))
    expect(tmp_path, "a mix of formats (IDX: train-images-idx3-ubyte")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        data.load_directory(tmp_path / "nowhere")
    expect(tmp_path / IDX_NAMES[0], "is a regular file; expected a directory")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x_test": np.zeros((4, 5, 5), np.uint8)}, "train and test images differ in shape"),
        ({"y_train": np.zeros(5, np.int64)}, "5 labels for the 6 images"),
        ({"y_test": np.array([0, 1, -1, 2])}, "labels must be >= 0, found -1"),
        ({"y_train": np.zeros(6, np.float32)}, "expected integer labels of shape (n,)"),
        ({"x_train": np.full((6, 5, 4), np.nan, np.float32)}, "must be finite"),
        ({"x_train": np.full((6, 5, 4), 2.0)}, "must be in [0, 1], found values in [2.0, 2.0]"),
        ({"x_train": np.zeros((6, 5, 4), np.int16)}, "expected uint8 images (0-255) or float32"),
        ({"x_train": np.zeros((0, 5, 4), np.uint8), "y_train": np.zeros(0, np.int64)}, "empty"),
        ({"x_train": np.zeros((6, 20), np.uint8)}, "expected images (n, h, w) or (n, h, w, c)"),
        ({"y_train": np.full(6, 10**9)}, "more than the 100000 allowed"),
    ],
)
def test_load_directory_refuses_bad_arrays(
    tmp_path: Path, change: dict[str, np.ndarray[Any, Any]], message: str
) -> None:
    write_layout(tmp_path, "npz", {**arrays(), **change})
    expect(tmp_path, message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\nb\n", "names 2 classes, but a label is 2"),
        ("a\nb\x1b[31m\nc\n", "line 2 holds 'b\\x1b[31m'"),
        ("a\n\nc\n", "line 2 holds ''"),
        ("a\nb\na\n", "class names appear twice: ['a']"),
    ],
)
def test_load_directory_refuses_bad_class_names(tmp_path: Path, text: str, message: str) -> None:
    write_layout(tmp_path, "idx", arrays())
    (tmp_path / "classes.txt").write_text(text)
    expect(tmp_path, message)


def test_load_directory_checks_every_npz_header_before_reading(tmp_path: Path) -> None:
    values = arrays()
    values["x_test"] = np.zeros((4, 100, 100), np.uint8)
    values["y_test"] = np.zeros(4, np.int64)
    write_layout(tmp_path, "npz-compressed", values)
    expect(tmp_path, "x_test.npy: the .npy header declares", max_bytes=1000)
    np.savez(tmp_path / "data.npz", **values, extra=np.zeros(1))
    expect(tmp_path, "unexpected ['extra.npy']")
    values["x_train"] = np.zeros((6, 5, 4), object)
    np.savez(tmp_path / "data.npz", **values)
    expect(tmp_path, "never Python objects")
    (tmp_path / "data.npz").write_bytes(b"PK junk")
    expect(tmp_path, "not a valid .npz (ZIP) archive")


def test_load_directory_bounds_every_file(tmp_path: Path) -> None:
    write_layout(tmp_path, "npy", arrays())
    expect(tmp_path, "x_train.npy: the .npy header declares shape (6, 5, 4)", max_bytes=100)
    (tmp_path / "x_train.npy").unlink()
    (tmp_path / "x_train.npy").mkdir()
    expect(tmp_path, "x_train.npy is a directory; expected a regular file")


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
