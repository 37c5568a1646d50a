"""Reading files that may be hostile (private): regular files only, never past their size.

:func:`open_regular` opens a path for reading only if it is a regular file: a FIFO in
its place cannot block (it is opened without waiting for a writer, then refused), and a
device such as ``/dev/zero`` is refused from its ``stat`` before it is even opened. The
file it returns reads at most the size ``fstat`` reported at open, so a file that grows
while it is read, or a ``/proc`` file that reports no size, cannot make a reader read
more. :func:`read_into` fills a preallocated buffer in bounded chunks; :func:`sha256`
hashes a file under the same rules. ``fnn.io`` and ``fnn.data`` read through these.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
from pathlib import Path
from typing import Any, Protocol

CHUNK = 1 << 24
"""The most bytes :func:`read_into` asks a stream for at once: 16 MiB."""

_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
)


class _ReadInto(Protocol):
    def readinto(self, buffer: Any, /) -> int | None: ...


def kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words: ``"a FIFO (named pipe)"``, ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check(path: str, mode: int, error: type[ValueError], directory: type[OSError] | None) -> None:
    """Raise unless ``mode`` is a regular file's."""
    if stat.S_ISREG(mode):
        return
    target = os.path.realpath(path)
    link = f" (a link to {target})" if target != os.path.abspath(path) else ""
    if stat.S_ISDIR(mode) and directory is not None:
        raise directory(errno.EISDIR, f"is a directory{link}; expected a regular file", path)
    raise error(f"{path}{link} is {kind(mode)}; expected a regular file")


class _Bounded(io.RawIOBase):
    """The first ``size`` bytes of an open file: reads stop there, whatever the file does."""

    def __init__(self, file: io.FileIO, size: int, name: str) -> None:
        super().__init__()
        self._file = file
        self.size = size
        self._name = name

    @property
    def name(self) -> str:
        """The path the file was opened by."""
        return self._name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._file.fileno()

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            return self._file.seek(self.size + offset, os.SEEK_SET)
        return self._file.seek(offset, whence)

    def readinto(self, buffer: Any) -> int:
        room = self.size - self._file.tell()
        if room <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        return self._file.readinto(view[: min(room, len(view))]) or 0

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            super().close()


def open_regular(
    path: str | os.PathLike[str],
    error: type[ValueError],
    *,
    directory: type[OSError] | None = None,
) -> io.BufferedReader:
    """Open ``path`` for reading, if it is a regular file (a symlink to one is fine).

    Args:
        path: the file to open.
        error: the exception to raise for a directory, a FIFO, a device or a socket,
            e.g. :class:`fnn.data.DataError` or :class:`fnn.io.FormatError`.
        directory: the exception to raise for a directory instead, e.g.
            ``IsADirectoryError`` as :func:`open` raises it (given errno, message, path).

    Returns:
        A buffered, seekable binary file that reads at most the size ``fstat`` reported
        at open; seeking to the end goes to that size. The caller closes it.

    Raises:
        FileNotFoundError: nothing is at ``path``.
        error: ``path`` is a directory (unless ``directory`` is given), a FIFO, a
            character or block device, or a socket; the message names the path, what it
            is, and that a regular file was expected.
        directory: ``path`` is a directory, when ``directory`` is given.
        PermissionError: the file cannot be read.
    """
    name = os.fspath(path)
    mode = os.stat(name).st_mode
    _check(name, mode, error, directory)  # a device is refused before it is opened
    fd = os.open(name, _FLAGS)  # O_NONBLOCK: a FIFO swapped in meanwhile opens at once
    try:
        info = os.fstat(fd)
        _check(name, info.st_mode, error, directory)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return io.BufferedReader(_Bounded(io.FileIO(fd, "rb"), info.st_size, name))


def read_into(stream: _ReadInto, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream`` in chunks of at most :data:`CHUNK` bytes.

    Returns:
        How many bytes were read: ``len(buffer)``, or fewer only if the stream ended.
    """
    view = buffer.cast("B")
    got = 0
    while got < len(view):
        n = stream.readinto(view[got : got + CHUNK])
        if not n:
            break
        got += n
    return got


def sha256(path: str | os.PathLike[str], error: type[ValueError]) -> str:
    """The SHA-256 (hex) of a regular file's bytes, read as :func:`open_regular` allows.

    Raises:
        FileNotFoundError, PermissionError, error: as :func:`open_regular`.
    """
    h = hashlib.sha256()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with open_regular(path, error) as file:
        while n := file.readinto(view):
            h.update(view[:n])
    return h.hexdigest()


RUN_FILE = "run.json"
"""A run's record, in the run's own directory: ``fnn train`` writes it, ``fnn sweep``,
``fnn compare`` and ``fnn replay`` read it."""

MAX_RUN_RECORD = 64 * 2**20
"""The largest ``run.json`` read (a record of thousands of epochs takes well under 1 MB)."""


def read_json_object(path: Path, limit: int, error: type[ValueError]) -> dict[str, Any]:
    """The JSON object in the regular file ``path`` of at most ``limit`` bytes.

    Raises:
        FileNotFoundError: nothing is at ``path``.
        error: not a regular file, larger than ``limit``, not JSON, or not an object
            (the message names the path).
    """
    with open_regular(path, error) as file:
        text = file.read(limit + 1)
    if len(text) > limit:
        raise error(f"{path} is larger than the {limit} bytes of a run record")
    try:
        found = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise error(f"cannot read {path}: {err}") from None
    if not isinstance(found, dict):
        raise error(f"{path} does not hold a run record")
    return found
