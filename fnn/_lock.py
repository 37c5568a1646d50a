"""The one lock of a directory: an exclusive ``flock`` on the directory itself (private:
what ``fnn train``'s run directories and sweeps share)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def directory_lock(
    directory: Path,
    busy: Callable[[], Exception],
    unopenable: Callable[[OSError], Exception],
) -> Iterator[None]:
    """Hold ``directory``'s lock (an exclusive, non-blocking ``flock`` on the directory
    itself) for the body. The kernel releases it when the process ends, so a killed
    holder never leaves it stuck, and no lock file is left behind.

    Raises:
        Exception: ``busy()`` when another process holds the lock, ``unopenable(err)``
            when the directory cannot be opened.
    """
    try:
        handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise unopenable(err) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise busy() from None
        yield
    finally:
        os.close(handle)


__all__ = ["directory_lock"]
