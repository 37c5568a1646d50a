"""How a batch's shards are laid out over processes and threads (private; see
:mod:`fnn.parallel`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .. import _blas, _checks
from ._comm import Communicator, rank_and_size
from ._reduce import owned_shards


def check_plan(shards: Any, comm: Communicator | None) -> int:
    """``shards`` as an int >= 1 that the number of processes divides.

    Raises:
        ValueError, TypeError: naming what was expected and what came.
    """
    count = _checks.positive_int(shards, "shards")
    _, size = rank_and_size(comm)
    if count % size:
        raise ValueError(
            f"shards must be a multiple of the number of processes ({size}), got {count}: "
            "each process computes the same number of shards"
        )
    return count


def shards_at_once(threads: int, shards: int, comm: Communicator | None) -> int:
    """How many of this process's shards run at once on ``threads`` threads
    (:func:`fnn.train_step`'s ``threads``): ``threads``, at most the shards it owns."""
    return min(threads, len(owned_shards(shards, comm)))


def thread_plan(threads: int, shards: int, comm: Communicator | None) -> tuple[int, int]:
    """``(workers, blas)`` for ``threads`` threads a process (``fnn train --threads``):
    how many of this process's shards are computed at once (each on a thread of its own,
    :func:`fnn.train_step`) and how many threads NumPy's BLAS gets: all ``threads`` when
    one shard runs at a time, else 1 (OpenBLAS has one pool of threads for the whole
    process, which the shards' threads would compete with). Shards on threads use the
    cores for all of a step's work, not only its matrix products (the CNN: 1.15-1.3x
    faster on two threads here), and give the same bits however many run at once.

    Raises:
        ValueError, TypeError: ``threads`` is not an int >= 1, or the processes of
            ``comm`` do not divide ``shards``.
    """
    threads = _checks.positive_int(threads, "threads")
    workers = shards_at_once(threads, check_plan(shards, comm), comm)
    return workers, threads if workers == 1 else 1


@contextlib.contextmanager
def one_blas_thread(workers: int) -> Iterator[None]:
    """While ``workers`` (> 1) shards run at once on threads, NumPy's OpenBLAS uses one
    thread, and afterwards the count it had: OpenBLAS keeps one pool of threads for the
    whole process, which the shards' threads would otherwise compete with for the cores
    (measured about 2x slower here). Nothing changes for ``workers == 1`` or where NumPy's
    BLAS is not OpenBLAS."""
    blas = _blas.threads() if workers > 1 else None
    if blas is None or blas == 1:
        yield
        return
    _blas.set_threads(1)
    try:
        yield
    finally:
        _blas.set_threads(blas)
