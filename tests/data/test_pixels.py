"""Pixel values (fnn/data/_images.py, _directory.py): ``read_images`` reads what training
reads, by the file's dtype.

Arrays (``.npy``, IDX) follow the one rule ``load_directory`` applies to training images:
uint8 0-255, or float32/float64 in [0, 1]. Pictures are read by their sample format:
8-bit / 255, 16-bit / 65535, float as it is (in [0, 1]); transparency is composited onto
white, and the EXIF orientation is applied. Everything else is a one-line DataError.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn.cli
from fnn import data
from fnn.data import DataError

Image = pytest.importorskip("PIL.Image")

Pixels = np.ndarray[Any, Any]


def picture(path: Path, array: Pixels, mode: str | None = None, **save: Any) -> Path:
    """``array`` saved with Pillow (as ``mode`` when given) to ``path``."""
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path, **save)
    return path


def opened(path: Path) -> tuple[str, dict[str, Any]]:
    """The mode and info Pillow opens ``path`` with."""
    with Image.open(path) as image:
        return image.mode, dict(image.info)


def drawing(height: int = 28, width: int = 28) -> Pixels:
    """A non-symmetric uint8 picture: a bright bar near the top left, a dim one lower."""
    x = np.zeros((height, width), np.uint8)
    x[2:6, 1 : width // 2] = 255
    x[height // 2 :, width - 5 : width - 2] = 100
    return x


# -- arrays: the rule training applies -------------------------------------------------------


def training_accepts(tmp_path: Path, x: Pixels) -> str | None:
    """None if ``load_directory`` takes ``x`` as training images, else its message."""
    directory = tmp_path / "own"
    directory.mkdir(exist_ok=True)
    labels = np.zeros(len(x), np.int64)
    np.savez(directory / "data.npz", x_train=x, y_train=labels, x_test=x, y_test=labels)
    try:
        data.load_directory(directory)
    except DataError as e:
        return str(e)
    return None


def predict_accepts(tmp_path: Path, x: Pixels) -> str | None:
    """None if ``read_images`` takes ``x`` from a ``.npy`` file, else its message."""
    np.save(tmp_path / "x.npy", x)
    try:
        data.read_images(tmp_path / "x.npy", image_shape=x.shape[1:])
    except DataError as e:
        return str(e)
    return None


ARRAYS: dict[str, Callable[[], Pixels]] = {
    "uint8": lambda: np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5) * 6,
    "float32": lambda: np.linspace(0, 1, 40, dtype=np.float32).reshape(2, 4, 5),
    "float64": lambda: np.linspace(0, 1, 40).reshape(2, 4, 5),
    "uint16": lambda: np.full((2, 4, 5), 1000, np.uint16),
    "uint16 in 0-255": lambda: np.full((2, 4, 5), 200, np.uint16),
    "int64": lambda: np.full((2, 4, 5), 200, np.int64),
    "int8": lambda: np.full((2, 4, 5), -3, np.int8),
    "bool": lambda: np.ones((2, 4, 5), bool),
    "float16": lambda: np.full((2, 4, 5), 0.5, np.float16),
    "negative": lambda: np.full((2, 4, 5), -0.5, np.float32),
    "above 1": lambda: np.full((2, 4, 5), 255.0, np.float32),
    "nan": lambda: np.full((2, 4, 5), np.nan, np.float32),
    "inf": lambda: np.full((2, 4, 5), np.inf),
}
DTYPES = "expected uint8 images (0-255) or float32/float64 images in [0, 1], got "
REFUSED = {
    "uint16": DTYPES + "uint16",
    "uint16 in 0-255": DTYPES + "uint16",
    "int64": DTYPES + "int64",
    "int8": DTYPES + "int8",
    "bool": DTYPES + "bool",
    "float16": DTYPES + "float16",
    "negative": "float pixels must be in [0, 1], found values in [-0.5, -0.5]",
    "above 1": "float pixels must be in [0, 1], found values in [255.0, 255.0]",
    "nan": "float pixels must be finite, found NaN or infinity",
    "inf": "float pixels must be finite, found NaN or infinity",
}


@pytest.mark.parametrize("case", ARRAYS)
def test_predict_reads_exactly_the_arrays_training_reads(tmp_path: Path, case: str) -> None:
    x = ARRAYS[case]()
    refused = predict_accepts(tmp_path, x)
    assert (refused is None) == (training_accepts(tmp_path, x) is None)
    if case in REFUSED:
        assert refused is not None
        assert refused.startswith(f"{tmp_path / 'x.npy'}: ") and REFUSED[case] in refused
        assert "\n" not in refused
        return
    images = data.read_images(tmp_path / "x.npy", image_shape=(4, 5))
    expected = data.to_float(x) if x.dtype == np.uint8 else x.astype(np.float32)
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images, expected)


def test_an_idx_file_of_another_dtype_is_refused(tmp_path: Path) -> None:
    path = data.write_idx(tmp_path / "x.idx", np.full((3, 28, 28), 300, np.int16))
    with pytest.raises(DataError, match=r"x\.idx: expected uint8 images .* got int16"):
        data.read_images(path)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_a_mask_reads_the_same_alone_and_in_a_batch(tmp_path: Path, dtype: type) -> None:
    """The value rule depends on the dtype, never on the other images of the file."""
    mask: Pixels = (drawing() > 0).astype(dtype)
    bright: Pixels = np.full((28, 28), 255 if dtype == np.uint8 else 1, dtype)
    np.save(tmp_path / "alone.npy", mask)
    np.save(tmp_path / "batch.npy", np.stack([mask, bright]))
    alone = data.read_images(tmp_path / "alone.npy")[0]
    np.testing.assert_array_equal(alone, data.read_images(tmp_path / "batch.npy")[0])
    assert alone.max() == (np.float32(1) / np.float32(255) if dtype == np.uint8 else 1)


@pytest.mark.parametrize(
    ("shape", "image_shape"),
    [((0, 28, 28), (28, 28)), ((0, 5, 5, 3), None), ((0, 4, 4), (4, 4))],
)
def test_a_file_of_no_images_is_refused(
    tmp_path: Path, shape: tuple[int, ...], image_shape: tuple[int, ...] | None
) -> None:
    np.save(tmp_path / "empty.npy", np.zeros(shape, np.uint8))
    with pytest.raises(DataError, match=r"empty\.npy: holds no images \(shape \(0, "):
        data.read_images(tmp_path / "empty.npy", image_shape=image_shape)


def test_predict_on_no_images_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = fnn.nn.mlp((4, 3))
    fnn.io.save_model(
        tmp_path / "m.npz", model, model.init(fnn.random.key(0), (28, 28)), in_shape=(28, 28)
    )
    np.save(tmp_path / "empty.npy", np.zeros((0, 28, 28), np.uint8))
    assert fnn.cli.main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "empty.npy")]) == 2
    err = capsys.readouterr().err
    assert err == f"fnn predict: error: {tmp_path / 'empty.npy'}: holds no images " + (
        "(shape (0, 28, 28)); expected at least one image of shape (28, 28)\n"
    )


# -- pictures: their sample format decides ---------------------------------------------------


def test_a_16_bit_png_is_read_by_its_range(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 65536, (28, 28), dtype=np.uint16)
    path = picture(tmp_path / "deep.png", x)
    assert opened(path)[0] == "I;16"
    images = data.read_images(path)
    np.testing.assert_allclose(images[0], x / 65535, rtol=1e-6)
    gray = np.full((28, 28), 0.3, np.float32)
    np.testing.assert_allclose(
        data.read_images(path, image_shape=(28, 28, 3))[0, ..., 2], images[0]
    )
    assert data.read_images(path, image_shape=(28, 28, 4))[0, ..., 3].min() == 1.0
    wide = picture(tmp_path / "wide.png", np.full((56, 40), round(0.3 * 65535), np.uint16))
    np.testing.assert_allclose(data.read_images(wide)[0], gray, atol=1e-5)  # resized


def test_a_16_bit_pgm_is_read_by_its_range(tmp_path: Path) -> None:
    """Pillow opens a 16-bit PGM as mode I (32-bit), holding 16-bit samples."""
    x = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    path = tmp_path / "deep.pgm"
    path.write_bytes(b"P5\n4 3\n65535\n" + x.astype(">u2").tobytes())
    assert opened(path)[0] == "I"
    np.testing.assert_allclose(data.read_images(path, image_shape=None)[0], x / 65535, rtol=1e-6)


def test_a_32_bit_integer_tiff_is_refused(tmp_path: Path) -> None:
    """32-bit integer samples have no agreed range (many hold 16-bit values): refused,
    never guessed from the values."""
    path = picture(tmp_path / "deep.tif", drawing().astype(np.int32) * 257)
    assert opened(path)[0] == "I"
    with pytest.raises(
        DataError,
        match=r"deep\.tif: 32-bit or signed integer pixels \(a TIFF of Pillow mode I\), whose "
        "range is unknown; expected 8- or 16-bit",
    ):
        data.read_images(path)


def test_a_float_tiff_is_read_as_it_is(tmp_path: Path) -> None:
    x = (drawing() / 255).astype(np.float32)
    path = picture(tmp_path / "float.tif", x)
    assert opened(path)[0] == "F"
    np.testing.assert_array_equal(data.read_images(path)[0], x)
    np.testing.assert_array_equal(data.read_images(path, invert=True)[0], 1 - x)
    big = picture(tmp_path / "big.tif", np.kron(x, np.ones((2, 2), np.float32)))
    resized = data.read_images(big)[0]
    assert resized.min() >= 0 and resized.max() <= 1 and abs(resized.mean() - x.mean()) < 0.01


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (255.0, r"float pixels must be in \[0, 1\], found values in \[0\.0, 255\.0\]"),
        (-1.0, r"float pixels must be in \[0, 1\], found values in \[-1\.0, 0\.0\]"),
        (np.nan, "float pixels must be finite, found NaN or infinity"),
    ],
)
def test_a_float_tiff_out_of_range_is_refused(tmp_path: Path, value: float, message: str) -> None:
    x = np.zeros((28, 28), np.float32)
    x[3, 4] = value
    path = picture(tmp_path / "float.tif", x)
    with pytest.raises(DataError, match=r"float\.tif: " + message):
        data.read_images(path)


def test_transparency_is_composited_onto_white(tmp_path: Path) -> None:
    """A drawing on a transparent background reads as it shows on a white page: dark
    strokes on white, which ``invert=True`` turns into MNIST's light-on-dark."""
    strokes = drawing() > 0
    rgba = np.zeros((28, 28, 4), np.uint8)  # transparent black everywhere...
    rgba[strokes, 3] = 255  # ...but opaque black strokes
    rgba[20, 3] = (0, 0, 0, 128)  # one half-transparent black pixel
    path = picture(tmp_path / "drawing.png", rgba)
    gray = data.read_images(path)[0]
    assert (gray[strokes] == 0).all() and gray[~strokes].max() == 1.0
    assert abs(gray[20, 3] - 127 / 255) <= 1 / 255
    np.testing.assert_array_equal(data.read_images(path, invert=True)[0], 1 - gray)
    color = data.read_images(path, image_shape=(28, 28, 3))[0]
    np.testing.assert_array_equal(color[..., 0], gray)
    kept = data.read_images(path, image_shape=(28, 28, 4))[0]  # a model that takes alpha
    np.testing.assert_array_equal(kept[..., 3], rgba[..., 3] / np.float32(255))
    gray_alpha = picture(tmp_path / "la.png", rgba[..., 2:], mode=None)  # LA
    assert opened(gray_alpha)[0] == "LA"
    np.testing.assert_array_equal(data.read_images(gray_alpha)[0], gray)


def test_a_palette_picture_with_a_transparent_colour_is_composited(tmp_path: Path) -> None:
    palette = Image.fromarray(drawing()).convert("P")
    path = tmp_path / "palette.png"
    palette.save(path, transparency=0)  # palette index 0, the black background, see-through
    assert "transparency" in opened(path)[1]
    gray = data.read_images(path)[0]
    assert gray[0, 0] == 1.0 and gray[3, 3] == 1.0  # background: white; the bar: white too
    assert abs(gray[20, 24] - 100 / 255) < 1e-6


@pytest.mark.parametrize(("orientation", "turns"), [(6, -1), (8, 1), (3, 2)])
def test_the_exif_orientation_is_applied(tmp_path: Path, orientation: int, turns: int) -> None:
    """A camera stores a portrait photo sideways with an EXIF tag saying how to turn it:
    the picture is read the way it shows."""
    stored = np.kron(drawing(14, 20), np.ones((2, 2), np.uint8))  # 28 x 40, blocky for JPEG
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = picture(tmp_path / "photo.jpg", stored, exif=exif, quality=95)
    upright = np.rot90(stored, turns) / 255
    images = data.read_images(path, image_shape=None)
    assert images.shape == (1, *upright.shape)
    assert np.abs(images[0] - upright).mean() < 0.02
    plain = picture(tmp_path / "plain.jpg", stored, quality=95)
    assert np.abs(data.read_images(plain, image_shape=None)[0] - stored / 255).mean() < 0.02


def test_an_8_bit_picture_reads_as_before(tmp_path: Path) -> None:
    x = drawing()
    path = picture(tmp_path / "gray.png", x)
    np.testing.assert_array_equal(data.read_images(path)[0], x / np.float32(255))
