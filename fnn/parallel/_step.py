"""The sharded training step: a batch's shards computed here (on threads) and on the other
processes, summed in the fixed order, and the update shared out (private; see
:mod:`fnn.parallel`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import numpy as np

from .. import random as _random
from .. import tree as _tree
from .._types import Array
from ..losses import counted_rows
from ..optim import Optimizer, OptState
from ._comm import Communicator
from ._reduce import (
    gather_spans,
    owned_shards,
    reduce_scatter_shards,
    reduce_shards,
    shard_bounds,
)
from ._threads import ShardThreads

P = TypeVar("P")


@attrs.frozen(eq=False)
class BatchResult:
    """What one batch (or shard) gives a training step.

    Attributes:
        value: the batch-mean loss.
        grads: the flat gradient (:func:`fnn.gradient.flat_forward_backward`), or with a
            ``span`` only those entries of it (this process's share of the update).
        state: the model state after the batch.
        scored: whether the batch's accuracy was counted.
        correct: how many of its examples were classified correctly.
        span: ``(lo, hi)`` when ``grads`` holds only those entries, else None.
    """

    value: float
    grads: Array
    state: Any
    scored: bool
    correct: int
    span: tuple[int, int] | None = None


BatchFn = Callable[[Any, _tree.Layout, Array, Array, Any, "_random.Key | None"], BatchResult]
"""``batch(params, layout, x, y, state, key) -> BatchResult``."""


def sharded_batch(
    batch: BatchFn,
    scores: Callable[[Array], bool],
    shards: int,
    comm: Communicator | None,
    scatter: bool = False,
    workers: int = 1,
) -> BatchFn:
    """``batch`` over a batch in ``shards`` shards (:func:`shard_bounds`): this process's
    shards (:func:`owned_shards`) each through ``batch`` (up to ``workers`` at once, on a
    thread pool) with the key ``fold_in(key, s)``, their losses and gradients weighted
    by their share of the counted targets (:func:`fnn.losses.counted_rows`: the rows,
    less targets marked IGNORE) and their model states by their share of the rows, and
    summed in the fixed order of :func:`reduce_shards`; ``scores(y)``
    says whether the whole batch's accuracy counts (``batch`` counts it per shard). With
    ``scatter``
    (processes that :func:`scatters`, an elementwise optimizer, no penalty), when every
    shard has rows, each process gets only its span of the gradient
    (:func:`reduce_scatter_shards`): the same bits there, for :func:`sharded_update`.
    The model state's leaves must be float arrays (their rows-weighted mean is kept)."""
    mine = owned_shards(shards, comm)
    threads = ShardThreads(workers) if workers > 1 else None

    def run(
        params: Any, layout: _tree.Layout, x: Array, y: Array, state: Any, key: Any
    ) -> BatchResult:
        state_leaves, state_def = _tree.flatten(state)
        for leaf in state_leaves:
            if not (isinstance(leaf, np.ndarray) and leaf.dtype.kind == "f"):
                raise TypeError(
                    "training in shards averages the model state, so its leaves must be "
                    f"float arrays, got {type(leaf).__name__} "
                    f"{getattr(leaf, 'dtype', '')}".rstrip()
                )
        n = len(x)
        bounds = shard_bounds(n, shards)
        scored = scores(y)
        counted = counted_rows(y)

        def shard(s: int) -> list[Array] | None:
            """Shard ``s``'s weighted gradient, [loss, correct] and model state, or None
            for an empty shard."""
            lo, hi = bounds[s]
            if lo == hi:
                return None
            k = None if key is None else _random.fold_in(key, s)
            r = batch(params, layout, x[lo:hi], y[lo:hi], state, k)
            # the loss's share: the shard's counted targets (the same as its rows when
            # no target is IGNORE), so the shards' sum is the batch's mean over them
            share = counted_rows(y[lo:hi]) / counted if counted else 0.0
            rows = (hi - lo) / n  # the model state's (running statistics over rows)
            return [
                r.grads * share,
                np.array([r.value * share, r.correct], np.float64),
                *(leaf * rows for leaf in _tree.leaves(r.state)),
            ]

        results = [shard(s) for s in mine] if threads is None else threads.map(shard, mine)
        local = {s: result for s, result in zip(mine, results) if result is not None}
        small_template = [np.empty(2, np.float64), *(np.empty_like(leaf) for leaf in state_leaves)]
        nonempty = [hi > lo for lo, hi in bounds]
        span = None
        if scatter and all(nonempty):
            assert comm is not None
            grads, span = reduce_scatter_shards({s: v[0] for s, v in local.items()}, shards, comm)
            small = {s: v[1:] for s, v in local.items()}
            total = [grads, *reduce_shards(small, shards, nonempty, small_template, comm)]
        else:
            template = [np.empty(layout.size, layout.dtype), *small_template]
            total = reduce_shards(local, shards, nonempty, template, comm)
        grads, scalars = total[0], total[1]
        new_state = _tree.unflatten(state_def, total[2:]) if state_leaves else state
        return BatchResult(float(scalars[0]), grads, new_state, scored, int(scalars[1]), span)

    return run


def sharded_update(
    optimizer: Optimizer[Any],
    state: OptState[P, Any],
    grads: Array,
    layout: _tree.Layout,
    leaves: list[Array],
    span: tuple[int, int],
    comm: Communicator,
) -> OptState[P, Any]:
    """The state ``optimizer.update_flat`` would make from the whole gradient, computed
    from its entries ``span`` only (:meth:`fnn.optim.Optimizer.update_span`): this
    process updates that slice of the params and moments, and :func:`gather_spans` gives
    every process the whole of them. Only for an elementwise optimizer, for which the
    bits are the same.

    Raises:
        ValueError: the optimizer is not elementwise.
    """
    flat, moments = optimizer.update_span(state, grads, layout, leaves, span)
    gather = functools.partial(gather_spans, length=layout.size, comm=comm)
    whole = iter(gather([flat, *(m for ms in moments for m in ms)]))
    new_flat = next(whole)
    new_moments = [tuple(next(whole) for _ in ms) for ms in moments]
    return optimizer.assemble(layout, new_flat, new_moments, state.step + 1)
