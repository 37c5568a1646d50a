"""Images to predict on (fnn/data/_images.py): pictures, .npy and IDX files read within a
size limit, decompression bombs and damaged pictures refused, and other shapes."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fnn import data
from fnn.data import DataError
from tests.support.files import LINUX, idx_header, refused_in_child
from tests.support.optional import needs_pillow


def test_max_bytes_bounds_npy_and_idx_images(tmp_path: Path) -> None:
    np.save(tmp_path / "two.npy", np.zeros((2, 28, 28), np.uint8))
    assert data.read_images(tmp_path / "two.npy", max_bytes=1568).shape == (2, 28, 28)
    with pytest.raises(DataError, match="1568 bytes of data, more than max_bytes=1567"):
        data.read_images(tmp_path / "two.npy", max_bytes=1567)


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` gray pixels and holds none."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 10))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


@needs_pillow
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
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(width, height))
    with pytest.raises(DataError, match=r"bomb\.png") as info:
        data.read_images(path)
    assert message in str(info.value)


def saved_picture(path: Path, array: np.ndarray[Any, Any], format: str = "PNG") -> Path:
    from PIL import Image

    Image.fromarray(array).save(path, format=format)
    return path


@needs_pillow
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
    rng = np.random.default_rng(0)
    good = saved_picture(tmp_path / "good.png", rng.integers(0, 256, (64, 64), np.uint8))
    path = tmp_path / "bad.png"
    path.write_bytes(make(good.read_bytes()))
    with pytest.raises(DataError, match=r"bad\.png") as info:
        data.read_images(path)
    assert message in str(info.value)


@needs_pillow
def test_a_netpbm_picture_without_a_suffix_is_read_as_a_picture(tmp_path: Path) -> None:
    path = tmp_path / "digit"  # P5: a binary PGM
    path.write_bytes(b"P5\n2 2\n255\n" + bytes([0, 255, 255, 0]))
    found = data.read_images(path, image_shape=(2, 2))
    np.testing.assert_array_equal(found, [[[0.0, 1.0], [1.0, 0.0]]])


def test_a_file_of_no_known_kind_is_named_as_such(tmp_path: Path) -> None:
    """Neither a picture (by its bytes or suffix), an IDX file (raw or gzip) nor a .npy
    file: the refusal says so and lists the pictures' suffixes, not IDX's magic."""
    path = tmp_path / "notes.txt"
    path.write_text("hello, these are not images\n")
    with pytest.raises(DataError, match=r"notes\.txt: not a picture, an IDX file or a \.npy"):
        data.read_images(path)
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(DataError, match="it starts with nothing"):
        data.read_images(tmp_path / "empty")


@pytest.mark.skipif(not LINUX, reason="sparse files and RLIMIT_AS as on Linux")
def test_read_images_reads_8_bytes_to_tell_the_format(tmp_path: Path) -> None:
    path = tmp_path / "huge.idx"
    with path.open("wb") as f:
        f.write(idx_header(0x08, (6, 1 << 30)))
        f.truncate(6 << 30)
    found = refused_in_child("fnn.data.read_images", path)
    assert found.startswith("DataError") and "more than max_bytes" in found, found


@needs_pillow
def test_read_images_keeps_its_documented_behaviour(tmp_path: Path) -> None:
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


@needs_pillow
def test_read_images_of_other_shapes(tmp_path: Path) -> None:
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
