"""Processes: the :class:`Communicator` fnn talks through, and launching under ``mpirun``
(private; see :mod:`fnn.parallel`)."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol


class Communicator(Protocol):
    """The part of an ``mpi4py.MPI.Comm`` fnn uses (buffers are NumPy arrays)."""

    def Get_rank(self) -> int: ...  # noqa: N802

    def Get_size(self) -> int: ...  # noqa: N802

    def Send(self, buf: Any, dest: int, tag: int = 0) -> None: ...  # noqa: N802

    def Recv(self, buf: Any, source: int, tag: int) -> Any: ...  # noqa: N802

    def Bcast(self, buf: Any, root: int = 0) -> Any: ...  # noqa: N802

    def Sendrecv(  # noqa: N802
        self, sendbuf: Any, dest: int, sendtag: int, recvbuf: Any, source: int, recvtag: int
    ) -> Any: ...

    def Allgather(self, sendbuf: Any, recvbuf: Any) -> Any: ...  # noqa: N802

    def Abort(self, errorcode: int = 0) -> Any: ...  # noqa: N802


class Request(Protocol):
    """The part of an ``mpi4py.MPI.Request`` fnn uses."""

    def Test(self) -> bool: ...  # noqa: N802


class NonblockingCommunicator(Communicator, Protocol):
    """A :class:`Communicator` that also starts its calls without waiting, as
    ``mpi4py.MPI.Comm`` does (what :func:`with_timeout` needs)."""

    def Isend(self, buf: Any, dest: int, tag: int = 0) -> Request: ...  # noqa: N802

    def Irecv(self, buf: Any, source: int, tag: int) -> Request: ...  # noqa: N802

    def Ibcast(self, buf: Any, root: int = 0) -> Request: ...  # noqa: N802

    def Iallgather(self, sendbuf: Any, recvbuf: Any) -> Request: ...  # noqa: N802


def rank_and_size(comm: Communicator | None) -> tuple[int, int]:
    """``(rank, number of processes)`` of ``comm``; ``(0, 1)`` for None.

    Raises:
        TypeError: ``comm`` is neither None nor a communicator (an mpi4py ``Comm``).
    """
    if comm is None:
        return 0, 1
    if not (
        callable(getattr(comm, "Get_rank", None)) and callable(getattr(comm, "Get_size", None))
    ):
        raise TypeError(
            "comm must be an MPI communicator (an mpi4py Comm such as fnn.parallel.world()) "
            f"or None, got {type(comm).__name__}"
        )
    return int(comm.Get_rank()), int(comm.Get_size())


_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def launched_processes(environ: Mapping[str, str] | None = None) -> int:
    """How many processes ``mpirun``/``mpiexec`` started (1 when not launched by one),
    from the variables Open MPI, MPICH and PMIx set."""
    env = os.environ if environ is None else environ
    for name in _SIZE_VARIABLES:
        text = env.get(name, "")
        if text.isdigit():
            return int(text)
    return 1


def world(environ: Mapping[str, str] | None = None) -> NonblockingCommunicator | None:
    """``mpi4py.MPI.COMM_WORLD`` when this process is one of several started by
    ``mpirun``, else None.

    Raises:
        ImportError: launched with several processes but mpi4py is not installed (the
            message says how to install it).
    """
    if launched_processes(environ) <= 1:
        return None
    try:
        mpi: Any = importlib.import_module("mpi4py.MPI")
    except ImportError as err:
        raise ImportError(
            f"started by mpirun with {launched_processes(environ)} processes, but mpi4py "
            f"is not installed ({err}): pip install 'fnn[mpi]' (it needs an MPI library, "
            "e.g. apt-get install openmpi-bin libopenmpi-dev)"
        ) from None
    comm: NonblockingCommunicator = mpi.COMM_WORLD
    return comm


@contextlib.contextmanager
def abort_on_error(
    comm: Communicator | None, report: Callable[[str], object] | None = None
) -> Iterator[None]:
    """Run the body; if it raises on any process of several, report the error (to
    stderr by default, naming the rank) and abort every process (``comm.Abort(2)``), so
    a failure on one process ends the run instead of leaving the others waiting.

    With one process (or ``comm`` None) the exception propagates unchanged.
    """
    try:
        yield
    except BaseException as err:
        rank, size = rank_and_size(comm)
        if comm is None or size == 1 or isinstance(err, (KeyboardInterrupt, GeneratorExit)):
            raise
        message = f"process {rank} of {size}: {type(err).__name__}: {err}\n"
        (report or sys.stderr.write)(message)
        sys.stderr.flush()
        comm.Abort(2)
        raise
