"""The ZIP container of fnn files (private): a deterministic writer and a bounded reader.

The writer stores every member uncompressed with a fixed timestamp and permissions, so
saving the same tree twice gives the same bytes. The reader opens regular files only (a
FIFO or a device such as ``/dev/zero`` is refused, and nothing past the size the file had
when it was opened is read), checks every member's name,
method and declared size against the file's real size before it reads anything, reads
``.npy`` headers with NumPy's own parser under a size cap, never with pickle, and reads a
leaf's data only after its header agrees with the description, byte for byte in size.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np

from .._files import open_regular
from .._npy_header import read_npy_header
from .._types import Array
from ._format import (
    DESCRIPTION,
    MAX_DESCRIPTION_BYTES,
    MAX_NPY_HEADER,
    FormatError,
    leaf_index,
    leaf_member,
    short,
)
from ._tree_json import Leaf

_EPOCH = (1980, 1, 1, 0, 0, 0)
_CHUNK = 2**24
_ZIP64 = 2**31

# What zipfile and struct raise on malformed input (the .npy header parser turns its own
# errors into FormatError).
_PARSE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    struct.error,
    NotImplementedError,
    OverflowError,
    ValueError,
    TypeError,
    OSError,
)


@contextlib.contextmanager
def reading(what: str) -> Iterator[None]:
    """Turn the errors of parsing malformed bytes into a :class:`FormatError` about ``what``."""
    try:
        yield
    except FormatError:
        raise
    except _PARSE_ERRORS as e:
        raise FormatError(f"{what}: {e}") from e


# -- writing -------------------------------------------------------------------------------


def _npy_header(arr: Array) -> bytes:
    buf = io.BytesIO()
    npy: Any = np.lib.format  # untyped in NumPy 1.26's stubs
    npy.write_array_header_1_0(buf, npy.header_data_from_array_1_0(arr))
    return buf.getvalue()


def _put(zf: zipfile.ZipFile, name: str, parts: Sequence[bytes | memoryview]) -> None:
    size = sum(len(p) for p in parts)
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    info.file_size = size
    with zf.open(info, "w", force_zip64=size >= _ZIP64) as member:
        for part in parts:
            for start in range(0, len(part), _CHUNK):
                member.write(part[start : start + _CHUNK])


def write(file: BinaryIO, description: bytes, arrays: Sequence[Array]) -> None:
    """Write an fnn archive: ``fnn.json``, then ``leaf_<i>.npy`` for each array, in C order."""
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        _put(zf, DESCRIPTION, [description])
        for i, leaf in enumerate(arrays):
            arr = leaf if leaf.flags.c_contiguous else np.ascontiguousarray(leaf)
            if arr.ndim != leaf.ndim:  # ascontiguousarray makes a 0-d array 1-d
                arr = arr.reshape(leaf.shape)
            data = arr.reshape(-1).view(np.uint8).data
            _put(zf, leaf_member(i), [_npy_header(arr), data])


# -- reading -------------------------------------------------------------------------------


def _read_exact(member: IO[bytes], n: int, what: str) -> bytes:
    data = member.read(n)
    if len(data) != n:
        raise FormatError(f"{what} is truncated: expected {n} bytes, got {len(data)}")
    return data


class Archive:
    """An open fnn archive whose member list has passed :func:`_members`."""

    def __init__(self, path: Path, zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]):
        self.path = path
        self.zip = zf
        self.members = members

    def read_description(self) -> bytes:
        """The bytes of ``fnn.json`` (at most 16 MiB).

        Raises:
            FormatError: no ``fnn.json``, too large, or unreadable (a bad CRC included).
        """
        info = self.members.get(DESCRIPTION)
        if info is None:
            raise FormatError(f"{self.path}: not an fnn file: the archive has no {DESCRIPTION}")
        if info.file_size > MAX_DESCRIPTION_BYTES:
            raise FormatError(
                f"{self.path}: {DESCRIPTION} takes {info.file_size} bytes, more than the "
                f"{MAX_DESCRIPTION_BYTES} this reader accepts"
            )
        what = f"{self.path}: {DESCRIPTION}"
        with reading(f"{what} cannot be read"), self.zip.open(info) as member:
            data = _read_exact(member, info.file_size, what)
            if member.read(1):
                raise FormatError(f"{what} is longer than declared")
        return data

    def check_members(self, leaves: Sequence[Leaf]) -> None:
        """Check that the archive holds exactly one member per leaf, each of a size that
        fits the leaf's dtype and shape plus a ``.npy`` header.

        Raises:
            FormatError: a missing or extra member, or a size that does not add up.
        """
        expected = {leaf_member(leaf.index): leaf for leaf in leaves}
        missing = [name for name in expected if name not in self.members]
        if missing:
            raise FormatError(
                f"{self.path}: the description has {len(leaves)} leaves but the archive "
                f"misses the member(s) {missing[:5]}"
            )
        extra = sorted(set(self.members) - set(expected) - {DESCRIPTION})
        if extra:
            raise FormatError(
                f"{self.path}: unexpected member(s) {extra[:5]}: the description has "
                f"{len(leaves)} leaves"
            )
        for name, leaf in expected.items():
            size = self.members[name].file_size
            if not leaf.nbytes + 10 <= size <= leaf.nbytes + 12 + MAX_NPY_HEADER:
                raise FormatError(
                    f"{self.path}: member {name} holds {size} bytes, but a {leaf} leaf "
                    f"takes {leaf.nbytes} bytes of data plus a .npy header"
                )

    def read_leaf(self, leaf: Leaf) -> Array:
        """The array of ``leaf``: a new read-only array of the described dtype and shape.

        The ``.npy`` header must declare exactly that dtype and shape, and the member
        must hold exactly the data that they take; nothing else is read or allocated.

        Raises:
            FormatError: a bad ``.npy`` magic, version or header, a header that disagrees
                with the description, a wrong data size, or a bad CRC.
        """
        name = leaf_member(leaf.index)
        info = self.members[name]
        what = f"{self.path}: member {name}"
        with reading(what), self.zip.open(info) as member:
            shape, fortran_order, dtype, header_size = read_npy_header(
                member, what, MAX_NPY_HEADER, FormatError
            )
            if dtype.str != leaf.dtype.str or tuple(shape) != leaf.shape:
                raise FormatError(
                    f"{what}: the .npy header declares {short(dtype, 40)} {short(shape, 60)}, "
                    f"the description {leaf}"
                )
            data_size = info.file_size - header_size
            if data_size != leaf.nbytes:
                raise FormatError(
                    f"{what}: holds {data_size} bytes of data, but {leaf} takes {leaf.nbytes}"
                )
            data = _read_exact(member, leaf.nbytes, what)
            if member.read(1):
                raise FormatError(f"{what} is longer than declared")
            arr: Array = np.frombuffer(data, dtype=leaf.dtype)
            out: Array = (
                arr.reshape(leaf.shape[::-1]).T if fortran_order else arr.reshape(leaf.shape)
            )
        return out


def _members(path: Path, zf: zipfile.ZipFile, size: int) -> dict[str, zipfile.ZipInfo]:
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in zf.infolist():
        name = info.filename
        if name != info.orig_filename or (name != DESCRIPTION and leaf_index(name) is None):
            raise FormatError(
                f"{path}: unexpected member {short(info.orig_filename)}: an fnn file holds "
                f"only {DESCRIPTION} and leaf_<i>.npy members"
            )
        if name in members:
            raise FormatError(f"{path}: the archive holds the member {name} more than once")
        if info.flag_bits & 0x1:
            raise FormatError(f"{path}: member {name} is encrypted")
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise FormatError(
                f"{path}: member {name} is compressed (method {info.compress_type}); "
                "fnn files store their members uncompressed"
            )
        if info.header_offset < 0 or info.header_offset + info.file_size > size:
            raise FormatError(
                f"{path}: member {name} claims {info.file_size} bytes at offset "
                f"{info.header_offset}, past the end of the {size}-byte file"
            )
        total += info.file_size
        members[name] = info
    if total > size:
        raise FormatError(
            f"{path}: the members claim {total} bytes in all, more than the {size}-byte file"
        )
    return members


@contextlib.contextmanager
def open_archive(path: Path) -> Iterator[Archive]:
    """Open ``path`` as an fnn archive and check its member list (names, methods, sizes).

    Raises:
        FileNotFoundError: ``path`` does not exist (``IsADirectoryError``,
            ``PermissionError``: as ``open`` raises them).
        FormatError: not a regular file (a FIFO, a device, a socket), not a ZIP
            archive, or a member that an fnn file cannot hold: any name
            but ``fnn.json`` and ``leaf_<i>.npy`` (so no ``../`` or absolute names), a
            duplicate, an encrypted or compressed member, or a size past the file's end.
    """
    with open_regular(path, FormatError, directory=IsADirectoryError) as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(0)
        with reading(f"{path} is not an fnn file (not a valid ZIP archive)"):
            zf = zipfile.ZipFile(file)
        with zf:
            yield Archive(path, zf, _members(path, zf, size))
