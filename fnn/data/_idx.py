"""Reading and writing IDX files, raw or gzip-compressed.

An IDX file is a 4-byte magic ``00 00 TT DD`` (``TT`` the type code, ``DD`` the number
of dimensions), then ``DD`` big-endian uint32 sizes, then the data in C order,
big-endian. Type codes: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32,
``0x0D`` float32, ``0x0E`` float64.

A gzip file is recognised by its first two bytes ``1f 8b``, never by its name. The
header is read and checked first: a payload larger than ``max_bytes``, or (for a raw
file) a file size that disagrees with the header, is refused before the data is read.
The data then go into one buffer of the declared size; the stream is read to its end,
never more than that size plus one byte: a bomb or trailing data is caught after one
extra byte, and a truncated stream or a bad CRC (which gzip only checks at the end)
fails instead of being trusted. A path must name a regular file (see
:func:`fnn._files.open_regular`): a FIFO or a device such as ``/dev/zero`` is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from .._atomic import write_atomic
from .._files import open_regular, read_into
from .._types import Array
from ._errors import DataError

DEFAULT_MAX_BYTES = 1 << 30
"""The largest data payload :func:`read_idx` accepts by default: 1 GiB."""

MAX_NDIM = 32
"""The largest number of dimensions accepted (NumPy 1.26's limit)."""

_GZIP_MAGIC = b"\x1f\x8b"

_CODE_TO_DTYPE: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_NAMES = {
    0x08: "uint8",
    0x09: "int8",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
_KIND_SIZE_TO_CODE = {(dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()}


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def readinto(self, buffer: Any, /) -> int | None: ...


Source = str | os.PathLike[str] | bytes | bytearray | memoryview
"""What :func:`read_idx` reads: a path, or the file's bytes."""


def read_idx(source: Source, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Array:
    """Read an IDX file (raw or gzip) into a read-only, native-endian NumPy array.

    Args:
        source: a path to the file, or the file's content as bytes. Gzip is detected
            from the content (magic ``1f 8b``), not from the name.
        max_bytes: the largest data payload (``prod(dims) * itemsize``) to accept;
            a header declaring more is rejected before anything is allocated.

    Returns:
        An array of the header's shape and dtype (uint8, int8, int16, int32, float32
        or float64, native byte order). It is read-only; ``.copy()`` it to modify it.

    Raises:
        FileNotFoundError: ``source`` is a path to a file that does not exist.
        DataError: (a ValueError) the file is not a valid IDX file: empty, truncated,
            wrong magic, unknown type code, zero or too many dimensions, a payload larger
            than ``max_bytes``, a payload size different from the header's, or a corrupt
            gzip stream; or the path is not a regular file (a directory, a FIFO, a
            device). The message names the file and what was wrong.
        TypeError: ``source`` is neither a path nor bytes.
        ValueError: ``max_bytes`` is negative.
        OSError: the file exists but cannot be read (no permission).

    >>> import numpy as np
    >>> header = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3])
    >>> read_idx(header + bytes(range(6)))
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    array, _ = read_idx_digest(source, max_bytes=max_bytes, digest=False)
    return array


def read_idx_digest(
    source: Source, *, max_bytes: int = DEFAULT_MAX_BYTES, digest: bool = True
) -> tuple[Array, str]:
    """:func:`read_idx`, plus the SHA-256 (hex) of the decompressed bytes, or ``""``.

    The digest covers the whole decompressed file, header included, so it equals
    ``sha256sum`` of the gunzipped file.
    """
    limit = check_max_bytes(max_bytes)
    name, opened = _open(source)
    with opened as raw:
        head = raw.read(2)
        raw.seek(0)
        if not head:
            raise DataError(f"{name}: the file is empty; expected an IDX file")
        if head != _GZIP_MAGIC:
            size = raw.seek(0, os.SEEK_END)
            raw.seek(0)
            return _parse(raw, name, limit, digest, size)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _parse(stream, name, limit, digest, None)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(
                f"{name}: corrupt gzip stream ({e}); the file is truncated or damaged, "
                "get a fresh copy"
            ) from None


def write_idx(path: str | os.PathLike[str], array: Array, *, compress: bool = False) -> Path:
    """Write ``array`` to ``path`` as an IDX file, atomically.

    Args:
        path: the destination; its directory must exist. An existing file is replaced
            only once the new one is complete.
        array: a NumPy array of dtype uint8, int8, int16, int32, float32 or float64
            (any byte order) with 1 to 32 dimensions, each smaller than ``2**32``.
        compress: gzip the file (deterministic: no timestamp, no name in the header).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``array`` is not an array of a supported dtype.
        ValueError: ``array`` has no dimensions, too many, or one too large.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"write_idx needs a NumPy array, got {type(array).__name__}")
    code = _KIND_SIZE_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise TypeError(
            "IDX files hold uint8, int8, int16, int32, float32 or float64 data, got dtype "
            f"{array.dtype}; convert the array first, e.g. with .astype(np.int32)"
        )
    if not 1 <= array.ndim <= MAX_NDIM:
        raise ValueError(f"an IDX array needs 1 to {MAX_NDIM} dimensions, got shape {array.shape}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX dimensions must be < 2**32, got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).reshape(-1).view(np.uint8)

    def write(f: BinaryIO) -> None:
        if not compress:
            f.write(header)
            f.write(payload.data)
            return
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
            gz.write(header)
            gz.write(payload.data)

    return write_atomic(path, write)


def check_max_bytes(max_bytes: Any) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)):
        raise TypeError(f"max_bytes must be an int, got {type(max_bytes).__name__}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    return int(max_bytes)


def _open(source: Any) -> tuple[str, io.BufferedIOBase]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>", io.BytesIO(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return str(path), open_regular(path, DataError)
        except FileNotFoundError:
            raise FileNotFoundError(f"IDX file {path} does not exist") from None
    raise TypeError(f"read_idx needs a path or bytes, got {type(source).__name__}")


def _parse(
    stream: _Readable, name: str, limit: int, digest: bool, size: int | None
) -> tuple[Array, str]:
    """Parse one IDX file from ``stream``: raw of ``size`` bytes, or gzip (``None``).

    The header is checked first; the data are read into one buffer of the size it
    declares (at most ``limit``), and nothing else of that size is allocated.
    """
    magic = stream.read(4)
    if len(magic) < 4:
        raise DataError(f"{name}: truncated header: {len(magic)} bytes, need at least 4")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{name}: bad magic {magic.hex(' ')}; an IDX file starts with 00 00 TT DD "
            "(this is not an IDX file)"
        )
    code, ndim = magic[2], magic[3]
    dtype = _CODE_TO_DTYPE.get(code)
    if dtype is None:
        known = ", ".join(f"0x{c:02X}" for c in _CODE_TO_DTYPE)
        raise DataError(f"{name}: unknown IDX type code 0x{code:02X}; expected one of {known}")
    if not 1 <= ndim <= MAX_NDIM:
        raise DataError(f"{name}: the header declares {ndim} dimensions; expected 1 to {MAX_NDIM}")
    dims_bytes = stream.read(4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        raise DataError(
            f"{name}: truncated header: {ndim} dimensions need {4 * ndim} bytes of sizes, "
            f"got {len(dims_bytes)}"
        )
    shape = tuple(int.from_bytes(dims_bytes[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    what = f"shape {shape} of {_NAMES[code]}"
    if expected > limit:
        raise DataError(
            f"{name}: the header declares {what}, {expected} bytes of data, more than "
            f"max_bytes={limit}; pass a larger max_bytes if the file is genuine"
        )
    _check_size(name, what, expected, expected if size is None else size - 4 - 4 * ndim)
    buffer = np.empty(expected, dtype=np.uint8)
    got = read_into(stream, buffer.data)
    if size is None and got == expected and stream.read(1):
        got += 1  # gzip: one byte past the declared end catches bombs and trailing data
    _check_size(name, what, expected, got)
    hexdigest = ""
    if digest:
        h = hashlib.sha256(magic)
        h.update(dims_bytes)
        h.update(buffer.data)
        hexdigest = h.hexdigest()
    array: Array = buffer.view(dtype).reshape(shape)
    if not array.dtype.isnative:
        array = array.byteswap(inplace=True).view(array.dtype.newbyteorder("="))
    array.flags.writeable = False
    return array, hexdigest


def _check_size(name: str, what: str, expected: int, got: int) -> None:
    """Raise unless ``got``, the bytes of data found after the header, is ``expected``."""
    if got < expected:
        raise DataError(
            f"{name}: truncated: {what} needs {expected} bytes of data after the header, got {got}"
        )
    if got > expected:
        raise DataError(
            f"{name}: trailing data: more than the {expected} bytes of data that {what} declares"
        )
