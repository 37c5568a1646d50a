"""Reading ``.npy`` arrays within a size limit (private): the header first, then one buffer.

``np.load`` allocates whatever a header declares, so a 100-byte file declaring 313 GB
ends in NumPy's allocation traceback. Here the header is parsed (with NumPy's own
parser, under a header-size cap, never with pickle), and its declared size is checked
against the limit and against the bytes the file really holds before the one buffer of
that size is allocated and filled.
"""

from __future__ import annotations

import io
import math
from typing import Any, Protocol

import attrs
import numpy as np

from .._files import open_regular, read_into
from .._npy_header import MAGIC as MAGIC
from .._npy_header import read_npy_header
from .._types import Array
from ._errors import DataError

MAX_HEADER = 10_000
"""The largest ``.npy`` header read, in bytes (NumPy's own default cap)."""

MAX_NDIM = 32
"""The most axes an array may have (NumPy 1.x's limit)."""

_KINDS = "biuf"


class Stream(Protocol):
    """What the reader reads from: an open file, or a member of a ZIP archive."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readinto(self, buffer: Any, /) -> int | None: ...


@attrs.frozen
class Header:
    """What a ``.npy`` header declares: the array's shape, dtype and memory order, and
    how many bytes the header and the data take."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fortran_order: bool
    header_size: int

    @property
    def nbytes(self) -> int:
        """The size of the data the header declares, in bytes."""
        return math.prod(self.shape) * self.dtype.itemsize

    def __str__(self) -> str:
        return f"shape {self.shape} of {self.dtype}"


def read_header(stream: Stream, name: str, max_bytes: int, size: int) -> Header:
    """Read and check the header of the ``.npy`` data of ``size`` bytes in ``stream``.

    Args:
        stream: positioned at the start of the ``.npy`` data.
        name: names the file (or member) in errors.
        max_bytes: the largest data the header may declare.
        size: the bytes the ``.npy`` data take, header included.

    Returns:
        The :class:`Header`; ``stream`` is left at the start of the array's data.

    Raises:
        DataError: not a ``.npy`` file, a version other than 1.0 or 2.0, a malformed
            header, an object (pickled) or non-numeric dtype, more than 32 axes, data
            larger than ``max_bytes``, or a size that disagrees with the header.
    """
    shape, fortran_order, dtype, header_size = read_npy_header(stream, name, MAX_HEADER, DataError)
    header = Header(shape, dtype, fortran_order, header_size)
    return _check(header, name, max_bytes, size)


def _check(header: Header, name: str, max_bytes: int, size: int) -> Header:
    if header.dtype.hasobject or header.dtype.kind not in _KINDS:
        raise DataError(
            f"{name}: the .npy file holds dtype {header.dtype}; expected numbers (bool, "
            "integer or float), never Python objects"
        )
    if len(header.shape) > MAX_NDIM or any(d < 0 for d in header.shape):
        raise DataError(f"{name}: the .npy header declares the shape {header.shape[:40]}")
    if header.nbytes > max_bytes:
        raise DataError(
            f"{name}: the .npy header declares {header}, {header.nbytes} bytes of data, more "
            f"than max_bytes={max_bytes}; pass a larger max_bytes if the file is genuine"
        )
    found = size - header.header_size
    if found != header.nbytes:
        state = "truncated" if found < header.nbytes else "trailing data"
        raise DataError(
            f"{name}: {state}: the .npy header declares {header}, {header.nbytes} bytes of "
            f"data, but {found} bytes follow the header"
        )
    return header


def read_data(stream: Stream, header: Header, name: str) -> Array:
    """Read the array ``header`` declares from ``stream`` (positioned at its data) into one
    new buffer.

    Returns:
        A read-only, native-endian array of the header's shape and dtype.

    Raises:
        DataError: the stream holds fewer bytes than declared.
    """
    buffer = np.empty(header.nbytes, dtype=np.uint8)
    got = read_into(stream, buffer.data)
    if got != header.nbytes:
        raise DataError(f"{name}: truncated: {header} needs {header.nbytes} bytes, got {got}")
    flat = buffer.view(header.dtype)
    if not flat.dtype.isnative:
        flat = flat.byteswap(inplace=True).view(flat.dtype.newbyteorder("="))
    array: Array = (
        flat.reshape(header.shape[::-1]).T if header.fortran_order else flat.reshape(header.shape)
    )
    array.flags.writeable = False
    return array


def read_npy(path: str, max_bytes: int) -> Array:
    """Read the ``.npy`` file at ``path``, a regular file, if its data fit in ``max_bytes``.

    Returns:
        A read-only, native-endian array of bool, integer or float dtype.

    Raises:
        FileNotFoundError: nothing at ``path``.
        DataError: not a regular file, or any error of :func:`read_header`.
    """
    with open_regular(path, DataError) as file:
        size = file.seek(0, io.SEEK_END)
        file.seek(0)
        return read_data(file, read_header(file, path, max_bytes, size), path)
