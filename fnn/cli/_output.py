"""What the command prints, and printing that never fails a run (private; see
:mod:`fnn.cli`)."""

from __future__ import annotations

import os
from typing import Any, TextIO


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: one line, every control or non-printable
    character (escape sequences included) shown as its Python escape."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


class Output:
    """A text stream that a closed, broken or missing stream (``fnn train | head -n 1``,
    ``>&-``, ``> /dev/full``) never fails: the first write that cannot be made stops the
    output, and the run goes on. :attr:`lost` says whether that happened."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self.lost = stream is None

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                self._stream.write(text)  # type: ignore[union-attr]
                self._stream.flush()  # type: ignore[union-attr]
            except (OSError, ValueError, AttributeError):  # closed, broken, full, None
                self.lost = True
                self._silence()
        return len(text)

    def _silence(self) -> None:
        """Point the lost stream's file descriptor at ``/dev/null``, so that what is left
        in its buffer cannot fail the interpreter's flush at exit (Python's advice for a
        broken pipe)."""
        try:
            fd = self._stream.fileno()  # type: ignore[union-attr]
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)
        except (OSError, ValueError, AttributeError):  # no descriptor: nothing to flush
            pass

    def flush(self) -> None:
        """Nothing to do: every write is flushed (or lost)."""

    def isatty(self) -> bool:
        try:
            return bool(not self.lost and self._stream.isatty())  # type: ignore[union-attr]
        except (OSError, ValueError, AttributeError):
            return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
