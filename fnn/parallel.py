"""Data parallelism: each batch split into a fixed number of shards, summed in a fixed order.

A training step with ``shards=S`` (:func:`fnn.train_step`, :func:`fnn.fit`, ``fnn train
--shards S``) splits its batch of ``B`` rows into ``S`` contiguous shards
(:func:`shard_bounds`), computes each shard's loss and gradient on its own rows, and
combines them as ``sum_s (n_s / B) * v_s`` (``n_s`` the shard's rows) over a fixed binary
tree of shard numbers (:func:`reduce_shards`): node ``[lo, hi)`` is the sum of
``[lo, mid)`` and ``[mid, hi)`` with ``mid = (lo + hi) // 2``, the left one first. With
``N`` processes (``N`` dividing ``S``), process ``r`` owns shards ``r * S/N`` to ``(r + 1)
* S/N - 1``. Each process first adds up its own block of shards. When ``N`` is a
power of two, the levels above the blocks are partner swaps: at level ``k`` process
``r`` and ``r ^ 2**k`` exchange their nodes' values and both add ``left + right``, so
every process ends with the root (:func:`reduce_shards`). Otherwise a node is added up
by the process owning its first shard, which receives the right half from its owner
when that is another process (point-to-point messages), and the root, on process 0, is
broadcast to all. The additions are the same whichever process does them, so for a
given ``S`` the bits do not depend on ``N``: one process with ``shards=4`` gives the
bits of four.

When the number of processes is a power of two and the optimizer is elementwise
(:attr:`fnn.optim.Optimizer.elementwise`: Adam, SGD, RMSprop, Adagrad; no penalty),
:func:`fnn.train_step` shares out the update as well: the partner swaps become recursive
halving (:func:`reduce_scatter_shards`: at each level a process sends its partner only
the half the partner keeps, and both add that half in the same order), so each process
ends with its slice of the summed gradient (:func:`span`); it updates that slice of the
params and moments and :func:`gather_spans` gives every process the whole of them. Each
entry is added and updated by the same operations as before, so the bits are those of
one process; every process still ends each step with the same, whole state. Otherwise
every process applies the same update to the whole summed gradient.

Processes talk through a :class:`Communicator`: ``mpi4py.MPI.COMM_WORLD`` (the optional
extra ``fnn[mpi]``), or nothing for one process. What travels: the shards' weighted
gradients, losses, accuracy counts and float model state, and, when the update is shared
out, each process's slice of the new params and optimizer moments. Every process reads
the data itself and keeps the same key and shuffles.

Within a process, ``threads=T`` (:func:`fnn.train_step`, :func:`fnn.fit`, ``fnn train
--threads T``) computes up to ``T`` of its shards at once on threads; their results are
summed in the same tree, so the bits depend neither on ``N`` nor on ``T``.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from . import _checks
from ._types import Array


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

    def Abort(self, errorcode: int = 0) -> Any: ...  # noqa: N802


def rank_and_size(comm: Communicator | None) -> tuple[int, int]:
    """``(rank, number of processes)`` of ``comm``; ``(0, 1)`` for None."""
    if comm is None:
        return 0, 1
    return int(comm.Get_rank()), int(comm.Get_size())


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


def shard_bounds(rows: int, shards: int) -> tuple[tuple[int, int], ...]:
    """The ``(start, stop)`` rows of each shard of a batch of ``rows``: contiguous, in
    order, the first ``rows % shards`` of them one row longer (some empty when
    ``rows < shards``).

    >>> shard_bounds(10, 4)
    ((0, 3), (3, 6), (6, 8), (8, 10))
    """
    base, extra = divmod(rows, shards)
    starts = [s * base + min(s, extra) for s in range(shards + 1)]
    return tuple(itertools.pairwise(starts))


def owned_shards(shards: int, comm: Communicator | None) -> range:
    """The shards this process computes: a contiguous block of ``shards / processes``."""
    rank, size = rank_and_size(comm)
    per = shards // size
    return range(rank * per, (rank + 1) * per)


def shards_at_once(threads: int, shards: int, comm: Communicator | None) -> int:
    """How many of this process's shards run at once on ``threads`` threads
    (:func:`fnn.train_step`'s ``threads``): ``threads``, at most the shards it owns."""
    return min(threads, len(owned_shards(shards, comm)))


def reduce_shards(
    values: Mapping[int, Sequence[Array]],
    shards: int,
    nonempty: Sequence[bool],
    template: Sequence[Array],
    comm: Communicator | None = None,
) -> list[Array]:
    """The sum over shards of their vectors, added in the fixed tree order of the module
    docstring, on every process.

    Args:
        values: this process's shards' vectors, ``{shard: [array, ...]}``; every shard it
            owns and ``nonempty`` marks must be there.
        shards: the number of shards ``S``.
        nonempty: for each shard, whether it has a value (the same on every process;
            empty shards are left out of the sum).
        template: arrays of the vectors' shapes and dtypes (received into fresh ones).
        comm: the processes (None: this one alone owns every shard).

    Returns:
        New arrays, the same bits on every process. At least one shard must be nonempty.
    """
    rank, size = rank_and_size(comm)
    per = shards // size
    counts = np.cumsum([0, *map(bool, nonempty)])

    def has(lo: int, hi: int) -> bool:
        return bool(counts[hi] - counts[lo])

    def node(lo: int, hi: int) -> list[Array] | None:
        """The sum over ``[lo, hi)`` on the owner of ``lo`` (None elsewhere or if empty)."""
        if hi - lo == 1:
            return list(values[lo]) if rank == lo // per and nonempty[lo] else None
        mid = (lo + hi) // 2
        left, right = node(lo, mid), node(mid, hi)
        first, second = lo // per, mid // per
        if first != second and has(mid, hi):
            assert comm is not None  # two owners: more than one process
            if rank == second:
                _send(comm, right or (), first)
            elif rank == first:
                right = _receive(comm, template, second)
        return _add(left, right) if rank == first else None

    if comm is None or size == 1:
        total = _block_sum(values, 0, shards, nonempty)
        assert total is not None, "every shard is empty"
        return total
    if scatters(comm):
        mine = _block_sum(values, rank * per, (rank + 1) * per, nonempty)
        return _butterfly(mine, rank, size, per, has, template, comm)
    total = node(0, shards)
    out = total if rank == 0 else [np.empty_like(t) for t in template]
    assert out is not None, "every shard is empty"
    for part in out:
        comm.Bcast(part, root=0)
    return out


def _send(comm: Communicator, parts: Sequence[Array], dest: int) -> None:
    """Send ``parts`` to ``dest``, part ``i`` with tag ``i``."""
    for i, part in enumerate(parts):
        comm.Send(np.ascontiguousarray(part), dest=dest, tag=i)


def _receive(comm: Communicator, template: Sequence[Array], source: int) -> list[Array]:
    """What :func:`_send` sent from ``source``, into fresh arrays shaped like ``template``."""
    parts = [np.empty_like(t) for t in template]
    for i, part in enumerate(parts):
        comm.Recv(part, source=source, tag=i)
    return parts


def _butterfly(
    value: list[Array] | None,
    rank: int,
    size: int,
    per: int,
    has: Callable[[int, int], bool],
    template: Sequence[Array],
    comm: Communicator,
) -> list[Array]:
    """The tree's upper levels when the number of processes is a power of two: the nodes
    above the processes' blocks are then exactly the blocks of 2, 4, ... processes, and
    at each level every process swaps its node's value with its partner's (``rank ^
    2**level``) and both add ``left + right``; every process ends with the root, with no
    broadcast and the same bits as the one-owner order (the same additions)."""
    group = 1
    while group < size:
        partner = rank ^ group
        mine_lo = (rank // group) * group * per
        theirs_lo = (partner // group) * group * per
        span = group * per
        mine_has, theirs_has = has(mine_lo, mine_lo + span), has(theirs_lo, theirs_lo + span)
        theirs: list[Array] | None = None
        if mine_has and theirs_has:
            assert value is not None
            theirs = [np.empty_like(t) for t in template]
            for i, (out, into) in enumerate(zip(value, theirs)):
                comm.Sendrecv(np.ascontiguousarray(out), partner, i, into, partner, i)
        elif mine_has:
            assert value is not None
            _send(comm, value, partner)
        elif theirs_has:
            theirs = _receive(comm, template, partner)
        value = _add(value, theirs) if mine_lo < theirs_lo else _add(theirs, value)
        group *= 2
    assert value is not None, "every shard is empty"
    return value


def scatters(comm: Communicator | None) -> bool:
    """Whether the processes of ``comm`` can share out the reduction and the update
    (:func:`reduce_scatter_shards`, :func:`gather_spans`): more than one, a power of two."""
    _, size = rank_and_size(comm)
    return size > 1 and size & (size - 1) == 0


def span(length: int, rank: int, size: int, levels: int | None = None) -> tuple[int, int]:
    """The entries ``(lo, hi)`` of a flat vector of ``length`` that process ``rank`` of
    ``size`` (a power of two) holds after ``levels`` (default: all ``log2(size)``) levels
    of :func:`reduce_scatter_shards`: the vector halved once per level, the lower half
    (``(hi - lo) // 2`` entries) kept by the process whose rank has that level's bit
    clear (bit 0 first).

    >>> [span(10, r, 4) for r in range(4)]
    [(0, 2), (5, 7), (2, 5), (7, 10)]
    """
    lo, hi, group = 0, length, 1
    for _ in range(size.bit_length() - 1 if levels is None else levels):
        mid = lo + (hi - lo) // 2
        lo, hi = (mid, hi) if rank & group else (lo, mid)
        group *= 2
    return lo, hi


def reduce_scatter_shards(
    values: Mapping[int, Array], shards: int, comm: Communicator
) -> tuple[Array, tuple[int, int]]:
    """This process's part of the sum over shards of one flat vector: ``(part, (lo,
    hi))``, ``part`` the same bits as entries ``lo:hi`` (:func:`span`) of what
    :func:`reduce_shards` returns, in a new array.

    The same additions as :func:`reduce_shards`' partner swaps, but at each level a
    process sends its partner only the half of its vector the partner keeps (recursive
    halving): each level moves half as many numbers as the one before, and each process
    ends with its slice of the sum only (for an update of that slice followed by
    :func:`gather_spans`). Needs :func:`scatters` true for ``comm`` and every shard
    nonempty; ``values`` holds this process's shards.
    """
    rank, size = _scattering(comm)
    per = shards // size
    block = _block_sum({s: [v] for s, v in values.items()}, rank * per, (rank + 1) * per)
    assert block is not None, "every shard must be nonempty"
    value = block[0]
    length, lo = len(value), 0  # value holds entries lo:lo + len(value) of the sum
    for level in range(1, size.bit_length()):
        partner = rank ^ (1 << (level - 1))
        (keep_lo, keep_hi), (give_lo, give_hi) = (
            span(length, rank, size, level),
            span(length, partner, size, level),
        )
        theirs = np.empty(keep_hi - keep_lo, value.dtype)
        comm.Sendrecv(value[give_lo - lo : give_hi - lo], partner, _TAG, theirs, partner, _TAG)
        mine = value[keep_lo - lo : keep_hi - lo]
        value = mine + theirs if rank < partner else theirs + mine  # the left block first
        lo = keep_lo
    return value, (lo, lo + len(value))


def gather_spans(parts: Sequence[Array], length: int, comm: Communicator) -> list[Array]:
    """Whole flat vectors of ``length`` entries, on every process, from each process's
    :func:`span` of them (``parts``, one per vector): :func:`reduce_scatter_shards`' levels
    in reverse, each process swapping what it holds with its partner (recursive
    doubling). Needs :func:`scatters` true for ``comm``; returns new arrays."""
    rank, size = _scattering(comm)
    levels = size.bit_length() - 1
    lo, hi = span(length, rank, size)
    whole = [np.empty(length, p.dtype) for p in parts]
    for out, part in zip(whole, parts):
        out[lo:hi] = part
    for level in range(levels, 0, -1):
        partner = rank ^ (1 << (level - 1))
        mine, theirs = span(length, rank, size, level), span(length, partner, size, level)
        for out in whole:
            comm.Sendrecv(
                out[mine[0] : mine[1]], partner, _TAG, out[theirs[0] : theirs[1]], partner, _TAG
            )
    return whole


_TAG = 0
"""The tag of the reduce-scatter's and gather's messages. Every exchange is a blocking
``Sendrecv`` made in the same order on both partners, and MPI never lets a message
overtake an earlier one between the same two processes, so one tag serves them all."""


def _scattering(comm: Communicator) -> tuple[int, int]:
    """``(rank, size)`` of ``comm``, which must :func:`scatter <scatters>`.

    Raises:
        ValueError: one process, or a number of processes that is not a power of two.
    """
    rank, size = rank_and_size(comm)
    if not scatters(comm):
        raise ValueError(
            f"a reduce-scatter needs a power of two processes, more than one; got {size}"
        )
    return rank, size


def _block_sum(
    values: Mapping[int, Sequence[Array]],
    lo: int,
    hi: int,
    nonempty: Sequence[bool] | None = None,
) -> list[Array] | None:
    """The sum over shards ``[lo, hi)``, all held here, in the module docstring's order,
    leaving out those ``nonempty`` marks empty (None when all are; default: none is)."""
    if hi - lo == 1:
        return list(values[lo]) if nonempty is None or nonempty[lo] else None
    mid = (lo + hi) // 2
    return _add(_block_sum(values, lo, mid, nonempty), _block_sum(values, mid, hi, nonempty))


def _add(left: list[Array] | None, right: list[Array] | None) -> list[Array] | None:
    """``left + right`` part by part, or the one that is not None (a node's sum)."""
    if left is None or right is None:
        return left if right is None else right
    return [a + b for a, b in zip(left, right)]


# -- launching under MPI -----------------------------------------------------------------

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


def world(environ: Mapping[str, str] | None = None) -> Communicator | None:
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
    comm: Communicator = mpi.COMM_WORLD
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
