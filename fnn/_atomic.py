"""Atomic file writes (private): a crash never leaves a half-written file at ``path``.

The data go to a temporary file in the destination's directory (named
``.<name>.<host>-<pid>.<random>.tmp``, so no loader mistakes it for the real file), which
is flushed and fsynced, then renamed over ``path`` with ``os.replace`` (atomic on POSIX),
and the directory is fsynced so the rename itself survives a power cut. A ``path`` that
is a symlink is followed: the file it points to (through any chain of links) is the one
written, atomically, with its temporary beside it, and the link stays a link. If anything
fails, the temporary file is removed and ``path`` keeps its previous content. When the
file system refuses the write (a full disk, an exceeded quota, a file-size limit, an I/O
error or a read-only file system: :data:`REFUSALS`), the OS's error names no file (or
only the temporary); it is raised again with the same errno, naming ``path``.

A process killed mid-write cannot remove its temporary file; the next write to the same
``path`` does: it removes the temporaries of ``path`` written on this host whose writing
process (the ``pid`` in the name) no longer runs. Nothing else is touched: not another
name's temporaries, not another host's (a shared file system), not a live writer's, not
a symlink or directory that happens to match the pattern. The clean-up is best effort:
a temporary it may not remove (another user's in a sticky directory) stays, and the
write goes on.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"

REFUSALS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EFBIG", "EIO", "EROFS")
    if hasattr(errno, name)
)
"""The errnos of a file system refusing a write: no space left, disk quota exceeded, file
too large, input/output error, read-only file system. Raised while writing, they are
raised again naming the file written."""


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary file, then move it to ``path`` atomically.

    Args:
        path: the destination; its directory must exist. A symlink is followed: the file
            it points to is written (created, for a dangling link), the link kept.
        write: writes the whole content to the binary file object it is given.

    Returns:
        ``path`` as a :class:`~pathlib.Path` (the link, when ``path`` is one).

    Raises:
        FileNotFoundError: the destination's directory does not exist (for a symlink, the
            directory of the file it points to).
        IsADirectoryError: ``path`` is an existing directory (or a link to one).
        OSError: ``path`` is a symlink that never ends in a file (a loop), ``ELOOP``.
        OSError: the file system refuses the write (an errno of :data:`REFUSALS`, such as
            ENOSPC "No space left on device"), from ``write`` or from fnn's own writing:
            the same errno, with ``filename`` set to ``path``; the temporary file is gone.
            Any other exception (a download's network error in ``write``) is raised as
            it came.
    """
    given = Path(path)
    target = _followed(given)
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {given}: the directory {directory} does not exist")
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {given}: it is a directory")
    remove_stale_temporaries(target)
    prefix = f".{target.name}.{_writer()}."
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=directory)
    except OSError as e:  # out of inodes, a read-only file system: no temporary was made
        refusal = _refusal(e, given, e.filename)  # any file it names is a temporary
        if refusal is None:
            raise
        raise refusal from e
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):  # best effort: the write's error is the one to see
            os.unlink(tmp)
        refusal = _refusal(e, given, tmp)
        if refusal is None:
            raise
        raise refusal from e
    _fsync_directory(directory)
    return given


def _followed(path: Path) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or for a symlink the file at
    the end of its links (which need not exist yet).

    Raises:
        OSError: ``ELOOP``, for links that never end (a loop); ``EINVAL``, for a link to
            something other than a regular file or a directory (a FIFO, a device: the
            write would put a regular file in its place).
    """
    if not path.is_symlink():
        return path
    target = Path(os.path.realpath(path))
    if target.is_symlink():  # realpath gives up on a loop, returning a link of it
        raise OSError(errno.ELOOP, f"{os.strerror(errno.ELOOP)} (a loop of symlinks)", str(path))
    if target.exists() and not (target.is_file() or target.is_dir()):
        raise OSError(
            errno.EINVAL,
            f"a symlink to {target}, which is not a regular file (a FIFO, a device or a "
            "socket): fnn writes regular files only, and would put one in its place",
            str(path),
        )
    return target


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic`)."""

    def write(f: BinaryIO) -> None:
        f.write(data)

    return write_atomic(path, write)


def _refusal(error: BaseException, target: Path, temporary: object) -> OSError | None:
    """``error`` naming ``target``, if it is a file system's refusal (an OSError of
    :data:`REFUSALS`) that names no file or only ``temporary``: the same errno and message
    (so the same subclass of OSError), ``filename`` set to ``target``. None for any other
    error, which is raised as it came."""
    if not isinstance(error, OSError) or error.filename not in (None, temporary):
        return None
    code = error.errno
    if code is None or code not in REFUSALS:
        return None
    return OSError(code, error.strerror or os.strerror(code), os.fspath(target))


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that killed writes to ``path`` left behind.

    Only regular files named ``.<name>.<host>-<pid>.<random>.tmp`` beside ``path``,
    ``<name>`` being ``path``'s name and ``<host>`` this host, whose process ``<pid>`` is
    not running, are removed; what cannot be listed or removed is left alone.

    Returns:
        The paths removed.
    """
    target = Path(path)
    pattern = re.compile(
        re.escape(f".{target.name}.{_host()}-") + r"(\d+)\.[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX)
    )
    removed = []
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match is None or _running(int(match.group(1))):
                continue
            with contextlib.suppress(OSError):
                if stat.S_ISREG(entry.stat(follow_symlinks=False).st_mode):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _host() -> str:
    """This host's name, as a temporary's name may hold it (letters, digits, ``_``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:64] or "host"


def _writer() -> str:
    """``<host>-<pid>``: who writes a temporary, in its name."""
    return f"{_host()}-{os.getpid()}"


def _running(pid: int) -> bool:
    """Whether a process ``pid`` exists (ours included; unknown counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or not a pid we can ask about: keep it
    return True


def _fsync_directory(directory: Path) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover - file systems that refuse directory fsync
        pass
    finally:
        os.close(dfd)
