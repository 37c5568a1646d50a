"""A user's own data directory (fnn/data/_directory.py): every layout round trips, class
names, and missing, mixed, bad or oversized files refused with a DataError."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
import fnn.io
from fnn import data
from fnn.data import DataError
from tests.support.files import IDX_NAMES, arrays, idx_file, write_layout


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


def test_load_directory_refuses_labels_beyond_any_class_count_and_an_empty_test_set(
    tmp_path: Path,
) -> None:
    own = tmp_path / "own"
    own.mkdir()
    np.save(own / "x_train.npy", np.zeros((4, 3, 3), np.uint8))
    np.save(own / "y_train.npy", np.array([0, 1, 2**63 + 5, 1], np.uint64))
    np.save(own / "x_test.npy", np.zeros((2, 3, 3), np.uint8))
    np.save(own / "y_test.npy", np.array([0, 1], np.uint64))
    (own / "classes.txt").write_text("a\nb\nc\n")
    with pytest.raises(fnn.data.DataError, match="more than the 100000 allowed"):
        fnn.data.load_directory(own)
    np.save(own / "y_train.npy", np.array([0, 1, 2, 1], np.uint64))
    np.save(own / "x_test.npy", np.zeros((0, 3, 3), np.uint8))
    np.save(own / "y_test.npy", np.zeros(0, np.uint64))
    with pytest.raises(fnn.data.DataError, match="the test set is empty"):
        fnn.data.load_directory(own)
