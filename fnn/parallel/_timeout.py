"""A timeout on every wait for another process (private; see :mod:`fnn.parallel`)."""

from __future__ import annotations

import math
import time
from typing import Any, overload

from .. import _checks
from ._comm import Communicator, NonblockingCommunicator, Request

DEFAULT_TIMEOUT = 300.0
"""A timeout, in seconds, far above any legitimate wait of fnn's: at most the time process 0
takes to write a checkpoint (or, with ``fnn train``, its run record) while the others wait
at the next step's first exchange, or the difference between the processes' loading of the
data before :func:`agree`; both take seconds on a local disk (the MLP's checkpoint is 1.3
MB), and minutes only on a very slow shared file system."""


@overload
def with_timeout(comm: NonblockingCommunicator, seconds: float | None) -> Communicator: ...


@overload
def with_timeout(comm: None, seconds: float | None) -> None: ...


def with_timeout(
    comm: NonblockingCommunicator | None, seconds: float | None
) -> Communicator | None:
    """``comm`` whose blocking calls give up after ``seconds`` of waiting for another
    process, raising :class:`TimeoutError`, instead of waiting forever.

    Each of the calls fnn makes (``Send``, ``Recv``, ``Sendrecv``, ``Bcast``,
    ``Allgather``) is started without waiting (``Isend``, ``Irecv``, ``Ibcast``,
    ``Iallgather``) and its requests are tested until they are done or ``seconds`` have
    passed since the call began. The messages are the same, so the bits are too; a
    process that is stopped, hung or far slower than the others then ends the job:
    around a ``fit`` in :func:`abort_on_error`, the first process to give up reports the
    error and aborts every process (``MPI_Abort``), where it would otherwise wait
    forever. Open MPI's blocking calls also test their requests in a loop (they keep a
    core busy while they wait), so waiting this way costs no more CPU; it adds about a
    microsecond of Python to each call (the README's "Data parallelism" section has the
    measurements). Waiting in Python also lets Ctrl-C interrupt a wait.

    After a :class:`TimeoutError` the communicator is not usable: its requests were not
    completed (MPI cannot cancel them). End the job (:func:`abort_on_error` does).

    Args:
        comm: the processes, an ``mpi4py.MPI.Comm`` (:func:`world`); None for one process.
        seconds: the longest wait for any one call, ``> 0``; None or 0 for no timeout
            (``comm`` itself is returned). :data:`DEFAULT_TIMEOUT` suggests 300.

    Returns:
        A :class:`Communicator` (its ``Abort``, ``Get_rank`` and ``Get_size`` are
        ``comm``'s), ``comm`` itself for no timeout, None for None.

    Raises:
        TypeError: ``comm`` has no nonblocking calls, or ``seconds`` is not a number.
        ValueError: ``seconds`` is negative or not finite.

    The TimeoutError, raised by the process that waited, names it, what it waited for
    and the timeout: ``process 0 of 2 gave up on Sendrecv with process 1 after waiting
    300 s (the timeout): it may be stopped, hung or far slower``.

    >>> with_timeout(None, DEFAULT_TIMEOUT) is None
    True
    """
    if seconds is not None:
        seconds = _checks.real(seconds, "seconds")
        if seconds < 0 or not math.isfinite(seconds):
            raise ValueError(f"seconds must be >= 0 and finite, got {seconds:g}")
    if comm is None or not seconds:
        return comm
    missing = [name for name in _NONBLOCKING if not callable(getattr(comm, name, None))]
    if missing:
        raise TypeError(
            "with_timeout needs a communicator with nonblocking calls (an mpi4py.MPI.Comm), "
            f"got {type(comm).__name__} without {', '.join(missing)}"
        )
    return _Timed(comm, seconds)


_NONBLOCKING = ("Isend", "Irecv", "Ibcast", "Iallgather")


class _Timed:
    """A :class:`Communicator` whose blocking calls are ``comm``'s nonblocking ones, waited
    on for at most ``seconds``."""

    def __init__(self, comm: NonblockingCommunicator, seconds: float) -> None:
        self._comm = comm
        self._seconds = seconds
        self._rank, self._size = int(comm.Get_rank()), int(comm.Get_size())

    def Get_rank(self) -> int:  # noqa: N802
        return self._rank

    def Get_size(self) -> int:  # noqa: N802
        return self._size

    def Send(self, buf: Any, dest: int, tag: int = 0) -> None:  # noqa: N802
        self._wait(time.monotonic(), self._comm.Isend(buf, dest, tag), None, "Send to", dest)

    def Recv(self, buf: Any, source: int, tag: int) -> None:  # noqa: N802
        began = time.monotonic()
        self._wait(began, self._comm.Irecv(buf, source, tag), None, "Recv from", source)

    def Sendrecv(  # noqa: N802
        self, sendbuf: Any, dest: int, sendtag: int, recvbuf: Any, source: int, recvtag: int
    ) -> None:
        began = time.monotonic()
        received = self._comm.Irecv(recvbuf, source, recvtag)
        sent = self._comm.Isend(sendbuf, dest, sendtag)
        partner = dest if dest == source else f"{dest} and {source}"
        self._wait(began, received, sent, "Sendrecv with", partner)

    def Bcast(self, buf: Any, root: int = 0) -> None:  # noqa: N802
        began = time.monotonic()
        whom = "to" if root == self._rank else "from"
        self._wait(began, self._comm.Ibcast(buf, root), None, f"Bcast {whom}", root)

    def Allgather(self, sendbuf: Any, recvbuf: Any) -> None:  # noqa: N802
        began = time.monotonic()
        self._wait(began, self._comm.Iallgather(sendbuf, recvbuf), None, "Allgather with", None)

    def Abort(self, errorcode: int = 0) -> Any:  # noqa: N802
        return self._comm.Abort(errorcode)

    def _wait(
        self,
        began: float,
        first: Request,
        second: Request | None,
        operation: str,
        partner: int | str | None,
    ) -> None:
        """Test ``first`` until done, then ``second``; raise TimeoutError once ``seconds``
        have passed since ``began`` (testing one request lets MPI progress them all)."""
        deadline = began + self._seconds
        for request in (first, second):
            while request is not None and not request.Test():
                if time.monotonic() > deadline:
                    raise self._timeout(operation, partner)

    def _timeout(self, operation: str, partner: int | str | None) -> TimeoutError:
        if partner is None:
            whom, who = "the other processes", "one"
        elif isinstance(partner, str):  # a Sendrecv with two partners
            whom, who = f"processes {partner}", "one"
        elif partner != self._rank:
            whom, who = f"process {partner}", "it"
        else:  # the root of a Bcast waits for all the others
            whom, who = "the other processes", "one"
        return TimeoutError(
            f"process {self._rank} of {self._size} gave up on {operation} {whom} after waiting "
            f"{self._seconds:g} s (the timeout): {who} may be stopped, hung or far slower"
        )
