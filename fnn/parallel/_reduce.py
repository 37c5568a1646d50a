"""The fixed-order sums over shards, on one process or several (private; see
:mod:`fnn.parallel`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .. import _checks
from .._types import Array
from ._comm import Communicator, rank_and_size


def shard_bounds(rows: int, shards: int) -> tuple[tuple[int, int], ...]:
    """The ``(start, stop)`` rows of each shard of a batch of ``rows``: contiguous, in
    order, the first ``rows % shards`` of them one row longer (some empty when
    ``rows < shards``).

    >>> shard_bounds(10, 4)
    ((0, 3), (3, 6), (6, 8), (8, 10))
    """
    rows = _checks.positive_int(rows, "rows", least=0)
    base, extra = divmod(rows, _checks.positive_int(shards, "shards"))
    starts = [s * base + min(s, extra) for s in range(shards + 1)]
    return tuple(itertools.pairwise(starts))


def owned_shards(shards: int, comm: Communicator | None) -> range:
    """The shards this process computes: a contiguous block of ``shards / processes``."""
    rank, size = rank_and_size(comm)
    per = shards // size
    return range(rank * per, (rank + 1) * per)


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
