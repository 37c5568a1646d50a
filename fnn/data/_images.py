"""Images to predict on, from a picture, an IDX file or a ``.npy`` array (private).

Every path must name a regular file (a directory, a FIFO or a device is refused), and
nothing larger than a limit is allocated: an IDX or ``.npy`` file whose header declares
more than ``max_bytes`` of data is refused from its header, and a picture of more than
:data:`MAX_PICTURE_PIXELS` from its size, before it is decoded.

Values are read by their dtype, as training reads them (:func:`check_pixels`): an array
is uint8 (``/ 255``) or float32/float64 in [0, 1]; a picture's samples are 8-bit
(``/ 255``), 16-bit (``/ 65535``) or float (in [0, 1]). A picture is turned upright by its
EXIF orientation and its transparency composited onto white before it is converted.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from .._files import open_regular
from .._types import Array

if TYPE_CHECKING:
    from PIL.Image import Image as Picture
from ._directory import as_float_images, check_pixels
from ._errors import DataError
from ._idx import DEFAULT_MAX_BYTES, read_idx
from ._npy import MAGIC as _NPY_MAGIC
from ._npy import read_npy

MAX_PICTURE_PIXELS = 8192 * 8192
"""The largest picture decoded: 64 megapixels (Pillow's own warning starts at about 89)."""

PICTURE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
"""The picture formats read, by Pillow's names. Others (EPS, which runs Ghostscript, or
PDF) are never tried."""

_PICTURE_MAGIC = (
    *(b"\x89PNG", b"\xff\xd8\xff", b"BM", b"GIF8", b"II*\x00", b"MM\x00*", b"RIFF"),
    *(b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"),  # the netpbm family (PBM, PGM, PPM)
)
_PICTURE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_GRAY = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_SIXTEEN_BITS = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_MODE_I_IS_16_BITS = frozenset({"PNG", "PPM"})
"""Formats whose pictures Pillow may open in mode I (32-bit) holding 16-bit samples: PNG
has no deeper samples, and Pillow scales PGM samples to 0-65535."""

BACKGROUND = 255
"""The gray level transparent pixels are composited onto: white, as a drawing shows on
a page or in a browser. Dark strokes on a transparent background then read as dark on
light, which ``invert=True`` turns into MNIST's light-on-dark, as for any drawing."""


def read_images(
    path: str | os.PathLike[str],
    invert: bool = False,
    *,
    image_shape: tuple[int, ...] | None = (28, 28),
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Array:
    """Images ``(n, *image_shape)``, float32 in [0, 1], from a picture, an IDX file or a
    ``.npy`` file.

    Args:
        path: a picture (PNG, JPEG, BMP, GIF, TIFF, WebP or PPM, read with Pillow: ``pip
            install 'fnn[image]'``), an IDX file (raw or gzip) or a ``.npy`` file. A
            picture is recognised by its first bytes or its suffix, a ``.npy`` file by
            its magic, an IDX file by its first two bytes (00 00, or gzip's 1f 8b);
            anything else is refused.
        invert: turn dark-on-light pictures into the light-on-dark style of MNIST
            (``1 - x``).
        image_shape: the shape of one image: ``(h, w)`` (grayscale) or ``(h, w, c)`` with
            ``c`` channels. An array must have shape ``image_shape`` (one image) or
            ``(n, *image_shape)``; a picture is converted to grayscale (or to ``c`` = 1,
            3 or 4 channels: L, RGB, RGBA) and resized to ``(h, w)`` (Lanczos) when it
            differs. ``None`` accepts any shape: an array is then a batch ``(n, ...)``, and
            a picture keeps its size, as one image ``(h, w)`` if it is grayscale, else
            ``(h, w, 3)``.
        max_bytes: the largest array data an IDX or ``.npy`` header may declare.

    Returns:
        A new float32 array ``(n, *image_shape)`` in [0, 1], ``n >= 1``, read by dtype as
        :func:`fnn.data.load_directory` reads training images: an array of uint8 as
        ``x / 255``, of float32/float64 as it is (it must be in [0, 1]). A picture's
        8-bit samples are divided by 255, 16-bit ones (PNG, TIFF, PGM) by 65535, and
        float ones (a TIFF of mode F) are taken as they are (in [0, 1]). A picture is
        first turned upright by its EXIF orientation, and its transparent pixels
        (alpha, or a transparent palette entry) are composited onto white
        (:data:`BACKGROUND`), unless ``c`` = 4 keeps the alpha channel.

    Raises:
        FileNotFoundError: nothing at ``path`` ("no such file").
        DataError: (a ValueError) ``path`` is a directory, a FIFO or a device; a picture
            Pillow cannot read (not a picture, truncated, damaged), larger than
            :data:`MAX_PICTURE_PIXELS`, or read without Pillow installed; a picture of
            32-bit or signed integer samples (their range is unknown); an invalid IDX or
            ``.npy`` file, or one declaring more than ``max_bytes``; no images; images of
            another shape or dtype (uint16, int64, bool, float16, ...), float pixels that
            are not finite or not in [0, 1]. The message names the file, what was
            expected and what was found.
        TypeError, ValueError: ``image_shape`` is not a tuple of positive ints.

    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "two.npy")
    >>> np.save(path, np.full((2, 4, 4), 255, np.uint8))
    >>> read_images(path, image_shape=(4, 4)).shape
    (2, 4, 4)
    """
    name = os.fspath(path)
    shape = _image_shape(image_shape)
    head = _head(name)
    if head.startswith(_PICTURE_MAGIC) or os.path.splitext(name)[1].lower() in _PICTURE_SUFFIXES:
        array = _read_picture(name, shape)[None]
    else:
        array = _batch(_read_array(name, head, max_bytes), name, shape)
    images = as_float_images(array, name)
    return 1.0 - images if invert else images


def _image_shape(shape: Any) -> tuple[int, ...] | None:
    if shape is None:
        return None
    if not isinstance(shape, tuple) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape
    ):
        raise TypeError(f"image_shape must be a tuple of ints or None, got {shape!r}")
    if not shape or not all(d >= 1 for d in shape):
        raise ValueError(f"image_shape must hold positive ints, got {shape}")
    return tuple(int(d) for d in shape)


def _head(name: str) -> bytes:
    """The first 8 bytes of the regular file ``name`` (only those are read)."""
    try:
        with open_regular(name, DataError) as file:
            return file.read(8)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file") from None


def _read_array(name: str, head: bytes, max_bytes: int) -> Array:
    if head.startswith(_NPY_MAGIC):
        return read_npy(name, max_bytes)
    if not head.startswith((b"\x00\x00", b"\x1f\x8b")):  # IDX's magic, gzip's
        raise DataError(
            f"{name}: not a picture, an IDX file or a .npy file (it starts with "
            f"{head[:4].hex(' ') or 'nothing'}); pictures: {', '.join(sorted(_PICTURE_SUFFIXES))}"
        )
    return read_idx(name, max_bytes=max_bytes)


def _batch(array: Array, name: str, shape: tuple[int, ...] | None) -> Array:
    """``array`` as a batch of images of ``shape`` (any shape for ``None``)."""
    if shape is None:
        if array.ndim < 2:
            raise DataError(
                f"{name}: expected a batch of images (n, ...), got an array of shape {array.shape}"
            )
    elif array.shape == shape:
        return array[None]
    elif array.shape[1:] != shape:
        batch = "(n, " + ", ".join(str(d) for d in shape) + ")"
        raise DataError(f"{name}: expected images of shape {shape} or {batch}, got {array.shape}")
    if len(array) == 0:
        raise DataError(
            f"{name}: holds no images (shape {array.shape}); expected at least one image of "
            f"shape {array.shape[1:]}"
        )
    return array


def _read_picture(name: str, shape: tuple[int, ...] | None) -> Array:
    """One picture, upright, as ``(h, w)`` or ``(h, w, c)``, converted and resized to
    ``shape``: uint8 for 8-bit samples, float32 in [0, 1] for 16-bit or float ones."""
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError:
        raise DataError(
            f"{name}: reading pictures needs Pillow; install it with: pip install 'fnn[image]' "
            "(or pass an IDX or .npy file)"
        ) from None
    if shape is not None and not (len(shape) == 2 or (len(shape) == 3 and shape[2] in _MODES)):
        raise DataError(
            f"{name}: a picture gives images of shape (h, w) or (h, w, c) with c = 1, 3 or "
            f"4 channels, but image_shape is {shape}"
        )
    with open_regular(name, DataError) as file, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(file, formats=PICTURE_FORMATS) as picture:
                _check_size(name, picture.size)
                deep = _deep(name, picture.mode, picture.format)
                ImageOps.exif_transpose(picture, in_place=True)
                if deep:
                    pixels = _deep_pixels(name, np.asarray(picture), shape)
                else:
                    mode = _MODES[shape[2] if len(shape) == 3 else 1] if shape else None
                    pixels = _eight_bits(picture, mode or ("L" if picture.mode in _GRAY else "RGB"))
                    if shape is not None and pixels.shape[:2] != shape[:2]:
                        resized = Image.fromarray(pixels).resize(
                            (shape[1], shape[0]), Image.Resampling.LANCZOS
                        )
                        pixels = np.asarray(resized)
        except UnidentifiedImageError:
            raise DataError(
                f"{name}: not a picture Pillow can read; expected one of "
                f"{', '.join(PICTURE_FORMATS)}, an IDX file or a .npy file"
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise DataError(
                f"{name}: the picture is too large to decode ({e}); at most "
                f"{MAX_PICTURE_PIXELS} pixels are read"
            ) from None
        except DataError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as e:
            raise DataError(f"{name}: the picture is truncated or damaged: {e}") from None
    if pixels.ndim == 2 and shape is not None and len(shape) == 3:
        return pixels[..., None]
    return pixels


def _deep(name: str, mode: str, format: str | None) -> bool:
    """Whether a picture of Pillow ``mode`` holds 16-bit or float samples (else 8-bit).

    Raises:
        DataError: 32-bit or signed integer samples, whose range no file states.
    """
    if mode == "F" or mode in _SIXTEEN_BITS or (mode == "I" and format in _MODE_I_IS_16_BITS):
        return True
    if mode.startswith("I"):
        raise DataError(
            f"{name}: 32-bit or signed integer pixels (a {format} of Pillow mode {mode}), "
            "whose range is unknown; expected 8- or 16-bit pixels, or float pixels in [0, 1] "
            "(save it as an 8- or 16-bit PNG, or a float TIFF)"
        )
    return False


def _eight_bits(picture: Picture, mode: str) -> Array:
    """An 8-bit picture as uint8 pixels of ``mode`` (L, RGB or RGBA); transparent pixels
    composited onto :data:`BACKGROUND` unless ``mode`` keeps the alpha."""
    from PIL import Image

    bands = picture.getbands()
    if mode != "RGBA" and ("A" in bands or "a" in bands or "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (BACKGROUND,) * 4)
        picture = Image.alpha_composite(white, rgba)
    return np.asarray(picture.convert(mode), dtype=np.uint8)


def _deep_pixels(name: str, samples: Array, shape: tuple[int, ...] | None) -> Array:
    """One-band 16-bit (uint16, or int32 holding 16 bits) or float32 ``samples`` ``(h, w)``
    as float32 in [0, 1]: ``/ 65535``, or as they are for floats (checked by
    :func:`check_pixels`); resized (Lanczos, clipped to [0, 1]) and given ``shape``'s
    channels (gray repeated; alpha 1)."""
    from PIL import Image

    if samples.dtype.kind == "f":
        check_pixels(name, samples)
        unit = samples.astype(np.float32)
    else:
        unit = (samples / 65535.0).astype(np.float32)
    if shape is not None and unit.shape != shape[:2]:
        resized = Image.fromarray(unit).resize((shape[1], shape[0]), Image.Resampling.LANCZOS)
        unit = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    channels = shape[2] if shape is not None and len(shape) == 3 else 1
    if channels == 1:
        return unit
    planes = [unit] * 3 + ([np.ones_like(unit)] if channels == 4 else [])
    return np.stack(planes, axis=-1)


def _check_size(name: str, size: tuple[int, int]) -> None:
    """Refuse a picture of more than :data:`MAX_PICTURE_PIXELS` before it is decoded."""
    width, height = size
    if math.prod(size) > MAX_PICTURE_PIXELS:
        raise DataError(
            f"{name}: the picture is {width}x{height} ({width * height} pixels), more than "
            f"the {MAX_PICTURE_PIXELS} pixels read; scale it down first"
        )
