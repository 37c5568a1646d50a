"""Parsing ``.npy`` headers (private): one parser for fnn.io's leaves and fnn.data's arrays.

The magic, the version (1.0 or 2.0) and the header's length are read by hand, the
length is capped before the header is read, and the header itself is parsed by NumPy's
own parser (never with pickle), so nothing a header declares is allocated here.
"""

from __future__ import annotations

import io
import struct
import tokenize
from typing import Any, Protocol

import numpy as np

MAGIC = b"\x93NUMPY"
"""The first six bytes of every ``.npy`` file."""

_LENGTH_FORMAT = {(1, 0): "<H", (2, 0): "<I"}
_PARSE_ERRORS = (
    ValueError,
    SyntaxError,
    TypeError,
    OverflowError,
    RecursionError,
    tokenize.TokenError,
    struct.error,
)


class Readable(Protocol):
    """What a header is read from: an open file, or a member of a ZIP archive."""

    def read(self, size: int = -1, /) -> bytes: ...


def read_npy_header(
    stream: Readable, name: str, max_header: int, error: type[ValueError]
) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """Read the header of the ``.npy`` data at the start of ``stream``.

    Args:
        stream: positioned at the magic; left at the start of the array's data.
        name: names the file (or member) in errors.
        max_header: the largest header length read, in bytes.
        error: the exception raised for a bad header (``FormatError``, ``DataError``).

    Returns:
        ``(shape, fortran_order, dtype, header_size)``, ``header_size`` counting the magic
        and version bytes.

    Raises:
        error: not the ``.npy`` magic, a version other than 1.0 or 2.0, a header longer
            than ``max_header``, a truncated or malformed header.
    """
    prefix = _read_exact(stream, len(MAGIC) + 2, name, error)
    if prefix[: len(MAGIC)] != MAGIC:
        raise error(
            f"{name}: not a .npy array: the magic string is not correct (expected {MAGIC!r}, "
            f"got {prefix[: len(MAGIC)]!r})"
        )
    version = (prefix[-2], prefix[-1])
    fmt = _LENGTH_FORMAT.get(version)
    if fmt is None:
        raise error(f"{name}: .npy version {version} is not supported; expected 1.0 or 2.0")
    length_bytes = _read_exact(stream, struct.calcsize(fmt), name, error)
    (length,) = struct.unpack(fmt, length_bytes)
    if length > max_header:
        raise error(f"{name}: a .npy header of {length} bytes; at most {max_header} are read")
    raw = io.BytesIO(length_bytes + _read_exact(stream, length, name, error))
    parse: Any = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    try:
        shape, fortran_order, dtype = parse(raw, max_header_size=max_header)
    except _PARSE_ERRORS as e:
        raise error(f"{name}: malformed .npy header: {e}") from None
    return tuple(shape), bool(fortran_order), dtype, len(prefix) + len(length_bytes) + length


def _read_exact(stream: Readable, n: int, name: str, error: type[ValueError]) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise error(f"{name}: truncated .npy header: expected {n} more bytes, got {len(data)}")
    return data
