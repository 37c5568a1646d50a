"""One training step and the fold of an epoch (private; see :mod:`fnn.train`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

from .. import _checks, _malloc, data, parallel
from .. import tree as _tree
from .._supervised import Batch, Scores, count_correct, scores
from ..gradient import finish_gradient, flat_forward_backward
from ..losses import Loss, Penalty
from ..nn import Layer, check_ids
from ..optim import Optimizer
from ._state import Metrics, TrainState, augment_key, step_key

P = TypeVar("P")
S = TypeVar("S")

Step = Callable[[TrainState[P, S], Batch], TrainState[P, S]]
"""``step(state, (x, y)) -> state``: one optimizer update."""


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the step."""


def train_step(
    model: Layer[P, S],
    loss: Loss,
    optimizer: Optimizer[Any],
    penalty: Penalty[P] | None = None,
    augment: data.Augment | None = None,
    shards: int = 1,
    comm: parallel.Communicator | None = None,
    *,
    threads: int = 1,
    accuracy: bool | None = None,
) -> Step[P, S]:
    """The pure function ``step(state, (x, y)) -> state`` of one optimizer update.

    With ``augment`` (e.g. :func:`fnn.data.random_flip`), the batch's inputs are first
    replaced by ``augment(augment_key(state.key, step), x)``. It then runs
    :func:`fnn.forward_backward` (the model's training forward with the state's model
    state and, for a stochastic model, the key ``fold_in(fold_in(state.key, 2), step)``;
    the loss; the penalty; the backward pass without the input gradient), then
    ``optimizer.update``, keeps the new model state, and adds the batch to the running
    metrics. Accuracy is counted when ``accuracy`` is true; when it is None (the
    default), for a classification loss (:func:`fnn.losses.is_classification`: the
    cross-entropies, partials of them, losses marked with
    :func:`fnn.losses.classification_loss`) and, for a loss that declares nothing, for
    batches of integer labels. The first batch of each input shape and dtype is checked
    against the model and the params (:meth:`fnn.nn.Layer.check`); no batch is checked
    for NaN (``fit`` checks the data once); a non-finite loss raises
    :class:`NonFiniteLossError` naming the step.

    With ``shards=S > 1`` the batch is split into ``S`` shards (:mod:`fnn.parallel`): each
    shard's training forward gets the key ``fold_in(step key, s)``; its loss and gradient
    are weighted by its share of the batch's counted targets (its rows, less targets
    marked :data:`fnn.losses.IGNORE`: :func:`fnn.losses.counted_rows`), so that they sum
    to the batch's mean over them, and its new model state by its share of the rows; they
    and its accuracy count are summed in a fixed order over the processes of ``comm``
    (each computing ``S / processes`` shards), and the penalty is added to the sum. The
    result depends on ``S`` but not on the number of processes. The model state's leaves
    must then be float arrays (batch norm's running statistics become the rows-weighted
    mean of the shards').

    With ``threads=T > 1``, up to ``T`` of this process's shards are computed at once,
    each on a thread of its own (a pool the step keeps; its threads wait on a condition,
    never spinning, so on a busy machine they give their cores to other processes). The
    shards' results are summed in the same fixed order, so the bits do not depend on
    ``T``: ``shards=2, threads=2`` trains on two cores exactly as ``shards=2`` does on
    one. NumPy's matrix products and
    whole-array operations release the GIL, so the threads do run together; while they
    do, the step has NumPy's OpenBLAS use one thread (and gives it back its count after
    the shards), else its own threads would compete with the shards' for the cores. With
    ``T`` shards on ``T`` threads, the bits are those of ``shards=T`` with one BLAS
    thread. It pays where a shard's work is large: ``nn.cnn()`` on batches of
    128 trains 1.15-1.3x faster on two cores this way than with two BLAS threads, since
    its patch copies, pooling and elementwise work run on both cores too; the MLP of the
    main job, whose step takes about a millisecond, trains 1.7x slower: its NumPy calls
    last microseconds, and a thread that lets go of the GIL for so short a time mostly
    takes it back before the other thread wakes, so the two queue for it.

    The loss and the layers' ``forward``/``backward`` then run on several threads at once:
    fnn's own are pure, and a loss or layer of your own must be too (no writes to shared
    objects). Each shard runs under the calling thread's ``np.errstate``.

    Making the first step of a process raises glibc's ``M_MMAP_THRESHOLD`` and
    ``M_TRIM_THRESHOLD`` to 1 GiB (Linux; nothing elsewhere), unless the program set them
    with :func:`fnn.runtime.keep_freed_memory`: the arrays a step frees are then reused
    by the next step rather than given back to the kernel and page-faulted in again
    (about 6,900 minor faults a step of ``nn.cnn()`` on batches of 128 without it, none
    with it). The process keeps its peak memory between steps (and after training).

    Raises:
        ValueError, TypeError: ``shards`` or ``threads`` is not an int >= 1, ``threads >
            1`` with ``shards=1``, or ``shards`` does not fit the processes of ``comm``;
            (from the step) a batch that does not fit the model or the params.

    >>> import fnn, numpy as np
    >>> model, opt = fnn.nn.mlp((8, 3)), fnn.optim.adam(1e-2)
    >>> key = fnn.random.key(0)
    >>> state = fnn.train_state(opt, model.init(key, (4,)), key)
    >>> step = fnn.train_step(model, fnn.losses.softmax_cross_entropy, opt)
    >>> x, y = np.ones((16, 4), np.float32), np.arange(16) % 3
    >>> state = step(state, (x, y))
    >>> state.step, state.metrics.count
    (1, 16)
    """
    return make_step(model, loss, optimizer, penalty, augment, shards, comm, threads, accuracy)


def make_step(
    model: Layer[P, S],
    loss: Loss,
    optimizer: Optimizer[Any],
    penalty: Penalty[P] | None,
    augment: data.Augment | None,
    shards: int,
    comm: parallel.Communicator | None,
    threads: int,
    accuracy: bool | None,
) -> Step[P, S]:
    """:func:`train_step`, for it and :func:`fnn.fit`."""
    shards = parallel.check_plan(shards, comm)
    threads = _checks.positive_int(threads, "threads")
    if threads > 1 and shards == 1:
        raise ValueError(
            f"threads={threads} computes shards of a batch at once, but shards=1: give "
            f"shards >= 2 (for example shards={threads})"
        )
    _malloc.keep_freed_for_training()  # no page faults on each step's temporaries
    workers = parallel.shards_at_once(threads, shards, comm)
    counts = scores(loss, accuracy)
    stochastic = model.stochastic
    scatter = parallel.scatters(comm) and optimizer.elementwise and penalty is None
    run = _whole_batch(model, loss, counts)
    if shards > 1:
        run = parallel.sharded_batch(run, counts, shards, comm, scatter, workers)
    seen: dict[Any, int | None] = {}  # the inputs and params already checked: their vocabulary

    def step(state: TrainState[P, S], batch: Batch) -> TrainState[P, S]:
        x, y = batch
        if augment is not None:
            x = augment(augment_key(state.key, state.opt.step), x)
        key = step_key(state.key, state.opt.step) if stochastic else None
        params = state.opt.params
        leaves, treedef = _tree.flatten(params)
        layout = _tree.layout_of(leaves, treedef)
        _check_once(model, params, x, state.model_state, (treedef, layout.shapes), seen)
        with parallel.one_blas_thread(workers):
            result = run(params, layout, x, y, state.model_state, key)
        value = finish_gradient(result.value, result.grads, params, layout, penalty)
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the loss is {value} at step {state.opt.step} (epoch {state.epoch}, "
                f"batch {state.metrics.count // max(len(x), 1)}); lower the learning rate "
                "or check the data"
            )
        if result.span is None:
            opt = optimizer.update_flat(state.opt, result.grads, layout, leaves)
        else:
            assert comm is not None  # a span comes from processes that scatter
            opt = parallel.sharded_update(
                optimizer, state.opt, result.grads, layout, leaves, result.span, comm
            )
        n = len(x)
        m = state.metrics
        metrics = Metrics(
            m.loss_sum + value * n,
            m.correct + result.correct,
            m.count + n,
            m.scored + (n if result.scored else 0),
        )
        return TrainState(
            opt, state.key, result.state, state.epoch, metrics, state.history, state.best
        )

    return step


def _check_once(
    model: Layer[Any, Any],
    params: Any,
    x: Any,
    state: Any,
    layout: Any,
    seen: dict[Any, int | None],
) -> None:
    """Check a batch's inputs, the params and the model state against the model
    (:meth:`fnn.nn.Layer.check_inputs`) the first time this input shape and dtype and this
    params layout come (a step makes no other check of them: the layers trust theirs);
    token ids, which a batch drawn later may hold out of range, are checked against the
    vocabulary in every batch (a pass over its ids)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"the batch's x must be a NumPy array, got {type(x).__name__}")
    signature = (x.shape[1:], x.dtype, layout)
    if signature not in seen:
        model.check_inputs(params, x, state)
        seen[signature] = model.declared(x.shape[1:]).ids
    vocabulary = seen[signature]
    if vocabulary is not None:
        check_ids(x, vocabulary, "the batch's x")


def _whole_batch(model: Layer[P, Any], loss: Loss, counts: Scores) -> parallel.BatchFn:
    """The whole batch through the gradient pipeline at once."""
    run = flat_forward_backward(model, loss)

    def batch(
        params: Any, layout: _tree.Layout, x: Any, y: Any, state: Any, key: Any
    ) -> parallel.BatchResult:
        r = run(params, layout, x, y, state, key)
        scored = counts(y)
        correct = count_correct(r.output, y) if scored else 0
        return parallel.BatchResult(r.value, r.grads, r.state, scored, correct)

    return batch


def train_epoch(
    step: Step[P, S], state: TrainState[P, S], batches: Iterable[Batch]
) -> TrainState[P, S]:
    """Fold ``step`` over ``batches``: ``functools.reduce(step, batches, state)``.

    >>> import fnn, numpy as np
    >>> model, opt = fnn.nn.mlp((3,)), fnn.optim.sgd(0.1)
    >>> key = fnn.random.key(0)
    >>> state = fnn.train_state(opt, model.init(key, (2,)), key)
    >>> step = fnn.train_step(model, fnn.losses.softmax_cross_entropy, opt)
    >>> x, y = np.ones((8, 2), np.float32), np.arange(8) % 3
    >>> state = fnn.train_epoch(step, state, fnn.data.batches(key, x, y, batch_size=4))
    >>> state.step
    2
    """
    return functools.reduce(step, batches, state)
