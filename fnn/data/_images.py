"""Images to predict on, from a picture, an IDX file or a ``.npy`` array (private).

Every path must name a regular file (a directory, a FIFO or a device is refused), and
nothing larger than a limit is allocated: an IDX or ``.npy`` file whose header declares
more than ``max_bytes`` of data is refused from its header, and a picture of more than
:data:`MAX_PICTURE_PIXELS` from its size, before it is decoded.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
import zlib
from typing import Any

import numpy as np

from .._files import open_regular
from .._types import Array
from ._errors import DataError
from ._idx import DEFAULT_MAX_BYTES, read_idx
from ._npy import MAGIC as _NPY_MAGIC
from ._npy import read_npy

MAX_PICTURE_PIXELS = 8192 * 8192
"""The largest picture decoded: 64 megapixels (Pillow's own warning starts at about 89)."""

PICTURE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
"""The picture formats read, by Pillow's names. Others (EPS, which runs Ghostscript, or
PDF) are never tried."""

_PICTURE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"BM", b"GIF8", b"II*\x00", b"MM\x00*")
_PICTURE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_GRAY = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "F"})


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
            its magic; anything else is read as IDX.
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
        A new float32 array ``(n, *image_shape)``. Pixel values above 1 are taken as
        0-255 and divided by 255.

    Raises:
        FileNotFoundError: nothing at ``path`` ("no such file").
        DataError: (a ValueError) ``path`` is a directory, a FIFO or a device; a picture
            Pillow cannot read (not a picture, truncated, damaged), larger than
            :data:`MAX_PICTURE_PIXELS`, or read without Pillow installed; an invalid IDX
            or ``.npy`` file, or one declaring more than ``max_bytes``; images of another
            shape, of non-numeric dtype, or with non-finite values.
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
    if array.dtype.kind not in "uif":
        raise DataError(f"{name}: expected numeric pixels, got dtype {array.dtype}")
    images = array.astype(np.float32)
    if images.size and float(images.max()) > 1.0:
        images /= 255.0
    if not np.isfinite(images).all():
        raise DataError(f"{name}: pixels must be finite")
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
    return read_idx(name, max_bytes=max_bytes)


def _batch(array: Array, name: str, shape: tuple[int, ...] | None) -> Array:
    """``array`` as a batch of images of ``shape`` (any shape for ``None``)."""
    if shape is None:
        if array.ndim < 2:
            raise DataError(
                f"{name}: expected a batch of images (n, ...), got an array of shape {array.shape}"
            )
        return array
    if array.shape == shape:
        return array[None]
    if array.shape[1:] != shape:
        batch = "(n, " + ", ".join(str(d) for d in shape) + ")"
        raise DataError(f"{name}: expected images of shape {shape} or {batch}, got {array.shape}")
    return array


def _read_picture(name: str, shape: tuple[int, ...] | None) -> Array:
    """One picture as uint8 ``(h, w)`` or ``(h, w, c)``: converted and resized to ``shape``."""
    try:
        from PIL import Image, UnidentifiedImageError
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
                _check_pixels(name, picture.size)
                mode = _MODES[shape[2] if len(shape) == 3 else 1] if shape else None
                converted = picture.convert(mode or ("L" if picture.mode in _GRAY else "RGB"))
                if shape is not None and converted.size != (shape[1], shape[0]):
                    converted = converted.resize((shape[1], shape[0]), Image.Resampling.LANCZOS)
                pixels = np.asarray(converted, dtype=np.uint8)
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
    return pixels[..., None] if shape is not None and len(shape) == 3 and shape[2] == 1 else pixels


def _check_pixels(name: str, size: tuple[int, int]) -> None:
    """Refuse a picture of more than :data:`MAX_PICTURE_PIXELS` before it is decoded."""
    width, height = size
    if math.prod(size) > MAX_PICTURE_PIXELS:
        raise DataError(
            f"{name}: the picture is {width}x{height} ({width * height} pixels), more than "
            f"the {MAX_PICTURE_PIXELS} pixels read; scale it down first"
        )
