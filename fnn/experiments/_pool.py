"""The engine of a sweep: tasks spread over worker processes, or over the processes of an
MPI job (private; see :mod:`fnn.experiments`).

Each task runs whole in one process. With ``workers`` > 1 the tasks go to a pool of
``workers`` forked processes (:class:`concurrent.futures.ProcessPoolExecutor`), each
with one BLAS thread; the work function and the tasks reach them by the fork itself, not
by pickling, so a closure works. With one worker they run one after another in this
process. Under ``mpirun -n N`` process ``r`` runs tasks ``r, r + N, r + 2N, ...`` in
order. A worker that dies (killed, out of memory) ends the pool with
:class:`WorkerDiedError`; what finished before stays finished. A worker ends with the
process that made it (:func:`_die_with`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar

from .. import _blas, _checks

T = TypeVar("T")
R = TypeVar("R")


class WorkerDiedError(RuntimeError):
    """A worker process ended without finishing its task (killed by a signal, out of
    memory): the tasks it and the others were running are left unfinished."""


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Installed(Generic[T, R]):
    """What a forked worker runs: the work and the tasks, handed over by the fork."""

    work: Callable[[T], R] | None = None
    tasks: Sequence[T] = ()


_installed: _Installed[Any, Any] = _Installed()


def _die_with(parent: int) -> None:
    """End this worker when the process that made it ends, however it ends (``kill -9``
    of the sweep included): else it would go on with nobody to report to, and it holds
    the sweep directory's lock (inherited through the fork), so that running the sweep
    again would be refused. On Linux the kernel sends SIGKILL (``PR_SET_PDEATHSIG``);
    elsewhere a thread looks for a new parent every second."""
    with contextlib.suppress(OSError, AttributeError):  # no libc prctl: not Linux
        if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0:
            if os.getppid() != parent:  # it ended before the request was made
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


_PR_SET_PDEATHSIG = 1
"""Linux's ``prctl`` option: the signal a process gets when its parent ends."""


def _install(work: Callable[[Any], Any], tasks: Sequence[Any], parent: int) -> None:
    """The pool's initializer, in each worker: ended with its parent (:func:`_die_with`),
    one BLAS thread, and the work to do."""
    _die_with(parent)
    _blas.set_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the pool
    _installed.work, _installed.tasks = work, tasks


def _run(index: int) -> Any:
    assert _installed.work is not None
    return _installed.work(_installed.tasks[index])


def run_tasks(
    work: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int,
    comm: Any = None,
    done: Callable[[int, R], None] | None = None,
) -> dict[int, R]:
    """Run ``work`` on each task; returns ``{index: result}`` of the tasks this process
    ran (under MPI, its share), calling ``done(index, result)`` in this process as each
    ends.

    Args:
        work: a function of one task; what it returns travels back pickled.
        tasks: the tasks.
        workers: worker processes (1: one after another in this process); ignored under
            MPI (``comm`` of several processes), where each process is one worker.
        comm: an MPI communicator (``mpi4py.MPI.COMM_WORLD``), or None.
        done: called with each task's index and result, in the order they end.

    Raises:
        WorkerDiedError: a worker process died; the tasks that ended are in ``done``'s
            calls.
        Exception: what ``work`` raised (it should return its failures instead).
    """
    _checks.positive_int(workers, "workers")
    indices = range(len(tasks))
    if comm is not None and comm.Get_size() > 1:
        indices = indices[comm.Get_rank() :: comm.Get_size()]
        workers = 1
    results: dict[int, R] = {}

    def finish(index: int, result: R) -> None:
        results[index] = result
        if done is not None:
            done(index, result)

    if workers == 1 or len(indices) <= 1:
        for index in indices:
            finish(index, work(tasks[index]))
        return results
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with concurrent.futures.ProcessPoolExecutor(
        min(workers, len(indices)),
        context,
        initializer=_install,
        initargs=(work, tasks, os.getpid()),
    ) as pool:
        running = {pool.submit(_run, i): i for i in indices}
        try:
            for future in concurrent.futures.as_completed(running):
                finish(running[future], future.result())
        except BrokenProcessPool:
            left = len(indices) - len(results)
            raise WorkerDiedError(
                f"a worker process died (killed by a signal or out of memory); "
                f"{len(results)} runs finished here and are kept, {left} are left"
            ) from None
        except BaseException:
            for future in running:
                future.cancel()
            _stop(pool)
            raise
    return results


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """End the pool's workers now (on Ctrl-C or an error): their runs are left to be
    resumed."""
    for process in list(getattr(pool, "_processes", {}).values()):
        process.terminate()


__all__ = ["WorkerDiedError", "default_workers", "run_tasks"]
