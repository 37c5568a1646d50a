"""Training as a fold: ``train_step``, ``train_epoch``, ``evaluate``, ``predict`` and ``fit``.

A :class:`TrainState` is a frozen tree: the optimizer state (which holds the params),
the key, the number of finished epochs, the running metrics of the epoch in progress,
the history of finished epochs and the early-stopping record. ``train_step(...)``
returns a pure function ``(state, (x, y)) -> state``; ``train_epoch`` is
``functools.reduce`` of it over batches; ``fit`` folds epochs. Progress display and
logging are callbacks at the edge (:mod:`fnn.callbacks`); nothing in the state depends
on time, so two runs with the same inputs give bit-identical states.

Randomness: the shuffle of epoch ``e`` uses ``fold_in(fold_in(key, 0), e)``, the
validation split ``fold_in(key, 1)``, the training forward of update ``t`` (dropout)
``fold_in(fold_in(key, 2), t)``, the initial params ``fold_in(key, 3)`` and the data
augmentation of update ``t`` ``fold_in(fold_in(key, 4), t)``, so a run depends only on
(seed, epoch, step).
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import operator
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, Literal, TypeVar

import attrs
import numpy as np
from numpy.typing import DTypeLike

from . import _checks, data, parallel, runtime
from . import random as _random
from . import tree as _tree
from ._types import Array
from .gradient import _add_penalty, _forward_backward_flat
from .losses import Loss, Penalty, is_classification
from .nn import Layer, param_dtype
from .optim import Optimizer, OptState

P = TypeVar("P")
R = TypeVar("R")

Batch = tuple[Array, Array]

_DATA_KEY, _SPLIT_KEY, _STEP_KEY, _INIT_KEY, _AUGMENT_KEY = 0, 1, 2, 3, 4


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the step."""


@attrs.frozen(eq=False)
class Metrics:
    """Running sums over the batches of the epoch in progress.

    Attributes:
        loss_sum: the sum over batches of ``batch loss * batch size``.
        correct: how many examples were classified correctly.
        count: how many examples were seen.
        scored: how many of them had their accuracy counted (0 for regression losses).
    """

    loss_sum: float = attrs.field(default=0.0, converter=float)
    correct: int = attrs.field(default=0, converter=operator.index)
    count: int = attrs.field(default=0, converter=operator.index)
    scored: int = attrs.field(default=0, converter=operator.index)

    @property
    def loss(self) -> float:
        """The mean loss so far (NaN before the first batch)."""
        return self.loss_sum / self.count if self.count else math.nan

    @property
    def accuracy(self) -> float:
        """The accuracy so far (NaN when not tracked or before the first batch)."""
        return self.correct / self.scored if self.scored else math.nan


@attrs.frozen(eq=False)
class EpochMetrics:
    """The record of one finished epoch (validation values are NaN without validation).

    ``loss`` is the mean training objective over the epoch's batches, penalty included
    when ``fit`` was given one; ``val_loss`` is the data loss alone (as
    :func:`evaluate` computes it), so the two differ by the penalty.
    """

    epoch: int = attrs.field(converter=operator.index)
    loss: float = attrs.field(converter=float)
    accuracy: float = attrs.field(converter=float)
    val_loss: float = attrs.field(default=math.nan, converter=float)
    val_accuracy: float = attrs.field(default=math.nan, converter=float)

    def get(self, name: str) -> float:
        """The metric called ``name`` (``"loss"``, ``"val_accuracy"``, ...)."""
        if name not in ("loss", "accuracy", "val_loss", "val_accuracy"):
            raise ValueError(
                f"unknown metric {name!r}; expected loss, accuracy, val_loss or val_accuracy"
            )
        value: float = getattr(self, name)
        return value


def _records(values: Iterable[EpochMetrics]) -> tuple[EpochMetrics, ...]:
    return tuple(values)


_tree.register_type(Metrics, "fnn.train.Metrics")
_tree.register_type(EpochMetrics, "fnn.train.EpochMetrics")


@attrs.frozen(eq=False)
class Best(Generic[P]):
    """Early stopping's record: the best monitored value, its epoch, the params and the
    model state then, and how many epochs have passed without improvement."""

    value: float = attrs.field(converter=float)
    epoch: int = attrs.field(converter=operator.index)
    params: P
    wait: int = attrs.field(default=0, converter=operator.index)
    model_state: Any = None


_tree.register_type(Best, "fnn.train.Best")


@attrs.frozen(eq=False)
class TrainState(Generic[P]):
    """Everything a training run needs to continue exactly where it stopped.

    Attributes:
        opt: the optimizer state; ``opt.params`` are the current params.
        key: the run's key (shuffles, splits and dropout masks are derived from it).
        model_state: the model state (batch norm's running statistics), ``None`` for
            models without; the optimizer never sees it.
        epoch: the number of finished epochs.
        metrics: the running metrics of the epoch in progress.
        history: one :class:`EpochMetrics` per finished epoch.
        best: early stopping's record, or None when it is not used.
        stopped: whether early stopping ended the run.
    """

    opt: OptState[P]
    key: _random.Key
    model_state: Any = None
    epoch: int = attrs.field(default=0, converter=operator.index)
    metrics: Metrics = Metrics()
    history: tuple[EpochMetrics, ...] = attrs.field(default=(), converter=_records)
    best: Best[P] | None = None
    stopped: bool = attrs.field(default=False, converter=bool)

    @property
    def params(self) -> P:
        """The current parameters."""
        return self.opt.params

    @property
    def step(self) -> int:
        """The number of updates applied so far."""
        return self.opt.step


_tree.register_type(TrainState, "fnn.train.TrainState")


def train_state(
    optimizer: Optimizer, params: P, key: _random.Key, model_state: Any = None
) -> TrainState[P]:
    """A fresh training state for ``params`` (and the model state of a stateful model)."""
    return TrainState(optimizer.init(params), key, model_state)


Scores = Callable[[Array], bool]
"""``scores(y) -> bool``: whether the accuracy of a batch with targets ``y`` is counted."""


def _scores(loss: Loss, accuracy: bool | None) -> Scores:
    """Whether to count a batch's accuracy: as ``accuracy`` says; when it is None, as the
    loss declares (:func:`fnn.losses.is_classification`), and for a loss that declares
    nothing, when the targets are integer class labels ``(batch,)``."""
    if accuracy is None:
        accuracy = is_classification(loss)
    if accuracy is None:
        return _are_labels
    if not isinstance(accuracy, bool):
        raise TypeError(f"accuracy must be True, False or None, got {accuracy!r}")
    return _always if accuracy else _never


def _are_labels(y: Array) -> bool:
    return y.ndim == 1 and y.dtype.kind in "iu"


def _always(y: Array) -> bool:
    return True


def _never(y: Array) -> bool:
    return False


def _check_accuracy(scores: Scores, y: Array, out_shape: tuple[int, ...], what: str) -> bool:
    """Whether accuracy is counted on ``(x, y)`` (checked by :func:`_check_data`) for a
    model whose outputs have shape ``out_shape``; a ValueError if it is asked for
    where it means nothing."""
    counted = scores(y)
    fits = len(out_shape) == 1 and (y.ndim == 1 or y.shape[1:] == out_shape)
    if counted and not fits and scores is _are_labels:
        return False  # integer targets of a model that does not output class scores
    if counted and not fits:
        raise ValueError(
            f"accuracy needs class scores (n, classes) and integer labels (n,) or one-hot "
            f"targets (n, classes), got model outputs (n, {', '.join(map(str, out_shape))}) "
            f"and {what} y of shape {y.shape}; pass accuracy=False"
        )
    return counted


def _count_correct(out: Array, y: Array) -> int:
    predicted = out.argmax(axis=1)
    labels = y if y.ndim == 1 else y.argmax(axis=1)
    return int(np.count_nonzero(predicted == labels))


def train_step(
    model: Layer[P],
    loss: Loss,
    optimizer: Optimizer,
    penalty: Penalty[P] | None = None,
    augment: data.Augment | None = None,
    shards: int = 1,
    comm: parallel.Communicator | None = None,
    *,
    threads: int = 1,
    accuracy: bool | None = None,
) -> Callable[[TrainState[P], Batch], TrainState[P]]:
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
    batches of integer labels. The batch is not checked for NaN
    (``fit`` checks the data once); a non-finite loss raises :class:`NonFiniteLossError`
    naming the step.

    With ``shards=S > 1`` the batch is split into ``S`` shards (:mod:`fnn.parallel`): each
    shard's training forward gets the key ``fold_in(step key, s)``, its loss, gradient,
    accuracy count and new model state are weighted by its share of the rows and summed
    in a fixed order over the processes of ``comm`` (each computing ``S / processes``
    shards), and the penalty is added to the sum. The result depends on ``S`` but not on
    the number of processes. The model state's leaves must then be float arrays (batch
    norm's running statistics become the rows-weighted mean of the shards').

    With ``threads=T > 1``, up to ``T`` of this process's shards are computed at once,
    each on a thread of its own (a pool the step keeps). The shards' results are summed in
    the same fixed order, so the bits do not depend on ``T``: ``shards=2, threads=2``
    trains on two cores exactly as ``shards=2`` does on one. NumPy's matrix products and
    whole-array operations release the GIL, so the threads do run together; NumPy's
    OpenBLAS should then use one thread (:func:`fnn.runtime.set_blas_threads`), else its
    own threads compete with the shards' for the cores (a ``RuntimeWarning`` says so when
    the step is made). It pays where a shard's work is large: ``nn.cnn()`` on batches of
    128 trains 1.15-1.3x faster on two cores this way than with two BLAS threads, since
    its patch copies, pooling and elementwise work run on both cores too; the MLP of the
    main job, whose step takes about a millisecond, trains 1.7x slower (the threads'
    handoffs cost more than they save).

    The loss and the layers' ``forward``/``backward`` then run on several threads at once:
    fnn's own are pure, and a loss or layer of your own must be too (no writes to shared
    objects). Each shard runs under the calling thread's ``np.errstate``.

    Raises:
        ValueError, TypeError: ``shards`` or ``threads`` is not an int >= 1, ``threads >
            1`` with ``shards=1``, or ``shards`` does not fit the processes of ``comm``.
    """
    return _train_step(model, loss, optimizer, penalty, augment, shards, comm, threads, accuracy)


def _train_step(
    model: Layer[P],
    loss: Loss,
    optimizer: Optimizer,
    penalty: Penalty[P] | None,
    augment: data.Augment | None,
    shards: int,
    comm: parallel.Communicator | None,
    threads: int,
    accuracy: bool | None,
) -> Callable[[TrainState[P], Batch], TrainState[P]]:
    """:func:`train_step`, for it and :func:`fit`: its warning points at their caller."""
    shards = parallel.check_plan(shards, comm)
    threads = _checks.positive_int(threads, "threads")
    if threads > 1 and shards == 1:
        raise ValueError(
            f"threads={threads} computes shards of a batch at once, but shards=1: give "
            f"shards >= 2 (for example shards={threads})"
        )
    workers = parallel.shards_at_once(threads, shards, comm)
    if workers > 1:
        _warn_blas_threads(workers)
    scores = _scores(loss, accuracy)
    stochastic = model.stochastic
    scatter = parallel.scatters(comm) and optimizer.elementwise and penalty is None
    run = (
        _single_batch(model, loss, penalty, scores)
        if shards == 1
        else _sharded_batch(model, loss, penalty, scores, shards, comm, scatter, workers)
    )

    def step(state: TrainState[P], batch: Batch) -> TrainState[P]:
        x, y = batch
        if augment is not None:
            x = augment(augment_key(state.key, state.opt.step), x)
        key = step_key(state.key, state.opt.step) if stochastic else None
        leaves, treedef = _tree.flatten(state.opt.params)
        layout = _tree.layout_of(leaves, treedef)
        result = run(state.opt.params, layout, x, y, state.model_state, key)
        value = result.value
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the loss is {value} at step {state.opt.step} (epoch {state.epoch}, "
                f"batch {state.metrics.count // max(len(x), 1)}); lower the learning rate "
                "or check the data"
            )
        if result.span is None:
            opt = optimizer._update(state.opt, result.grads, leaves, layout)
        else:
            assert comm is not None  # a span comes from processes that scatter
            gather = functools.partial(parallel.gather_spans, length=layout.size, comm=comm)
            opt = optimizer._update_sharded(
                state.opt, result.grads, leaves, layout, result.span, gather
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


@attrs.frozen(eq=False)
class _BatchResult:
    """A batch's loss (penalty included), flat gradient, new model state, whether its
    accuracy was counted and how many of its examples were classified correctly; with a
    ``span`` ``(lo, hi)``, ``grads`` holds only those entries of the flat gradient (this
    process's share of the update, :func:`fnn.parallel.reduce_scatter_shards`)."""

    value: float
    grads: Array
    state: Any
    scored: bool
    correct: int
    span: tuple[int, int] | None = None


_BatchFn = Callable[[Any, _tree.Layout, Array, Array, Any, "_random.Key | None"], _BatchResult]


def _single_batch(
    model: Layer[P],
    loss: Loss,
    penalty: Penalty[P] | None,
    scores: Scores,
) -> _BatchFn:
    """The whole batch through the gradient pipeline at once."""
    run = _forward_backward_flat(model, loss, penalty)

    def batch(
        params: Any, layout: _tree.Layout, x: Array, y: Array, state: Any, key: Any
    ) -> _BatchResult:
        r = run(params, layout, x, y, state, key)
        scored = scores(y)
        correct = _count_correct(r.output, y) if scored else 0
        return _BatchResult(r.value, r.grads, r.state, scored, correct)

    return batch


def _warn_blas_threads(workers: int) -> None:
    """Warn when NumPy's OpenBLAS runs threads of its own beside ``workers`` shard threads,
    at the line that called :func:`train_step` or :func:`fit` (through
    :func:`_train_step`)."""
    blas = runtime.blas_threads()
    if blas is not None and blas > 1:
        warnings.warn(
            f"train_step computes {workers} shards at once on threads, but NumPy's OpenBLAS "
            f"uses {blas} threads of its own: they compete for the cores (measured about 2x "
            "slower than one BLAS thread here); call fnn.runtime.set_blas_threads(1)",
            RuntimeWarning,
            stacklevel=4,
        )


class _ShardThreads:
    """Calls of one function computed up to ``workers`` at once, on a thread pool made on
    first use (and made again in a forked child, which inherits no threads)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def map(self, fn: Callable[[int], R], items: Sequence[int]) -> list[R]:
        """``[fn(i) for i in items]``, computed on the pool under the calling thread's
        NumPy floating-point error settings (``np.errstate``; threads do not inherit them).
        Every call is awaited before an error is raised: the first, in ``items``' order."""
        pool = self._pool
        if pool is None or self._pid != os.getpid():
            pool = self._pool = ThreadPoolExecutor(self.workers, "fnn-shard")
            self._pid = os.getpid()
        errors, handler = np.geterr(), np.geterrcall()

        def run(i: int) -> R:
            settings = np.errstate(**errors)
            if handler is not None:
                settings = np.errstate(call=handler, **errors)
            with settings:
                return fn(i)

        futures = [pool.submit(run, i) for i in items]
        try:
            concurrent.futures.wait(futures)
        except BaseException:  # interrupted: drop the calls not yet started
            for future in futures:
                future.cancel()
            raise
        return [future.result() for future in futures]


def _sharded_batch(
    model: Layer[P],
    loss: Loss,
    penalty: Penalty[P] | None,
    scores: Scores,
    shards: int,
    comm: parallel.Communicator | None,
    scatter: bool = False,
    workers: int = 1,
) -> _BatchFn:
    """The batch in ``shards`` shards, this process's through the pipeline (up to
    ``workers`` at once, on a thread pool), the weighted results summed in the fixed order
    of :func:`fnn.parallel.reduce_shards`. With ``scatter`` (processes that
    :func:`fnn.parallel.scatters`, an elementwise optimizer, no penalty), when every
    shard has rows, each process gets only its span of the gradient
    (:func:`fnn.parallel.reduce_scatter_shards`): the same bits there, and the optimizer
    updates that span (half the work on 2 processes) before a gather."""
    run = _forward_backward_flat(model, loss, None)
    mine = parallel.owned_shards(shards, comm)
    threads = _ShardThreads(workers) if workers > 1 else None

    def batch(
        params: Any, layout: _tree.Layout, x: Array, y: Array, state: Any, key: Any
    ) -> _BatchResult:
        state_leaves, state_def = _tree.flatten(state)
        for leaf in state_leaves:
            if not (isinstance(leaf, np.ndarray) and leaf.dtype.kind == "f"):
                raise TypeError(
                    "training in shards averages the model state, so its leaves must be "
                    f"float arrays, got {type(leaf).__name__} "
                    f"{getattr(leaf, 'dtype', '')}".rstrip()
                )
        n = len(x)
        scored = scores(y)
        bounds = parallel.shard_bounds(n, shards)

        def shard(s: int) -> list[Array] | None:
            """Shard ``s``'s weighted gradient, [loss, correct] and model state, or None
            for an empty shard."""
            lo, hi = bounds[s]
            if lo == hi:
                return None
            k = None if key is None else _random.fold_in(key, s)
            r = run(params, layout, x[lo:hi], y[lo:hi], state, k)
            share = (hi - lo) / n
            correct = _count_correct(r.output, y[lo:hi]) if scored else 0
            return [
                r.grads * share,
                np.array([r.value * share, correct], np.float64),
                *(leaf * share for leaf in _tree.leaves(r.state)),
            ]

        results = [shard(s) for s in mine] if threads is None else threads.map(shard, mine)
        local = {s: result for s, result in zip(mine, results) if result is not None}
        small_template = [np.empty(2, np.float64), *(np.empty_like(leaf) for leaf in state_leaves)]
        nonempty = [hi > lo for lo, hi in bounds]
        span = None
        if scatter and all(nonempty):
            assert comm is not None
            grads, span = parallel.reduce_scatter_shards(
                {s: v[0] for s, v in local.items()}, shards, comm
            )
            small = {s: v[1:] for s, v in local.items()}
            total = [grads, *parallel.reduce_shards(small, shards, nonempty, small_template, comm)]
        else:
            template = [np.empty(layout.size, layout.dtype), *small_template]
            total = parallel.reduce_shards(local, shards, nonempty, template, comm)
        grads, scalars = total[0], total[1]
        value = float(scalars[0])
        if penalty is not None:
            value = _add_penalty(penalty, params, layout, value, grads)
        grads.flags.writeable = False
        new_state = _tree.unflatten(state_def, total[2:]) if state_leaves else state
        return _BatchResult(value, grads, new_state, scored, int(scalars[1]), span)

    return batch


def step_key(key: _random.Key, step: int) -> _random.Key:
    """The key of the training forward of update ``step`` (0-based) of a run keyed ``key``:
    a dropout mask depends only on (seed, step), so a resumed run draws the same ones."""
    return _random.fold_in(_random.fold_in(key, _STEP_KEY), step)


def augment_key(key: _random.Key, step: int) -> _random.Key:
    """The key of the data augmentation of update ``step`` (0-based) of a run keyed
    ``key``: like dropout masks, the transforms depend only on (seed, step)."""
    return _random.fold_in(_random.fold_in(key, _AUGMENT_KEY), step)


def train_epoch(
    step: Callable[[TrainState[P], Batch], TrainState[P]],
    state: TrainState[P],
    batches: Iterable[Batch],
) -> TrainState[P]:
    """Fold ``step`` over ``batches``: ``functools.reduce(step, batches, state)``."""
    return functools.reduce(step, batches, state)


@attrs.frozen
class Evaluation:
    """The mean loss and the accuracy (NaN when not tracked) over a dataset."""

    loss: float
    accuracy: float


def _check_data(model: Layer[Any], x: Any, y: Any, what: str) -> None:
    x = _checks.float_array(x, f"{what} x")
    if x.ndim < 2:
        raise ValueError(f"{what} x must have shape (n, features...), got {x.shape}")
    _checks.finite(x, f"{what} x")
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{what} y must be a NumPy array, got {type(y).__name__}")
    if len(y) != len(x):
        raise ValueError(f"{what} x has {len(x)} examples but y has {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{what} data must hold at least one example")
    out_shape = model.output_shape(x.shape[1:])
    if y.dtype.kind in "iu":
        if len(out_shape) == 1:
            _checks.labels(y, out_shape[0], len(x), f"{what} labels")
    elif y.dtype.kind == "f":
        _checks.finite(y, f"{what} y")
        if y.ndim == 1 and len(out_shape) == 1 and out_shape != (1,):
            raise ValueError(
                f"{what} targets are {y.dtype} labels of shape {y.shape}; pass integer class "
                f"labels (y.astype(np.int64)) or one-hot targets of shape (n, {out_shape[0]})"
            )
        if y.shape[1:] != out_shape:
            raise ValueError(
                f"{what} targets must have shape (n, {', '.join(map(str, out_shape))}) "
                f"to match the model's output, got {y.shape}"
            )
    else:
        raise TypeError(f"{what} y must hold integer labels or float targets, got {y.dtype}")


def _params_dtype(params: Any, default: DTypeLike = np.float32) -> np.dtype[Any]:
    """The dtype of the first leaf of ``params`` (``default`` when it has none)."""
    leaves = _tree.leaves(params)
    return np.asarray(leaves[0]).dtype if leaves else np.dtype(default)


def _check_fits(model: Layer[Any], params: Any, state: Any, in_shape: Any, what: str) -> None:
    """Raise a ValueError unless ``params`` and the model ``state`` are what
    ``model.init`` and ``model.init_state`` make for inputs of ``in_shape`` in the
    params' dtype (:attr:`Layer.shapes`): in structure, shapes and dtypes, so the params
    of another model or of another width fail here, naming the first difference."""
    described = model.shapes(in_shape, _params_dtype(params))
    for name, want, have in (
        ("params", described.params, params),
        ("state", described.state, state),
    ):
        found = _tree.mismatch(want, have)
        if found is not None:
            raise ValueError(
                f"{what} {name} do not fit the model for inputs of shape {in_shape}: {found}"
            )


def _as_dtype(x: Array, dtype: np.dtype[Any]) -> Array:
    """``x`` converted to ``dtype`` (``x`` itself when it has it)."""
    return x if x.dtype == dtype else x.astype(dtype)


def _converted(batches: Iterable[Batch], dtype: np.dtype[Any]) -> Iterable[Batch]:
    """The batches with their inputs converted to ``dtype``, one batch at a time."""
    return ((_as_dtype(xb, dtype), yb) for xb, yb in batches)


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def evaluate(
    model: Layer[P],
    loss: Loss,
    params: P,
    x: Array,
    y: Array,
    batch_size: int = 1024,
    indices: Array | None = None,
    *,
    model_state: Any = None,
    accuracy: bool | None = None,
    comm: parallel.Communicator | None = None,
) -> Evaluation:
    """The mean ``loss`` and the accuracy of ``model`` over ``(x, y)`` (or over the rows
    ``indices`` of them, gathered chunk by chunk), in chunks of ``batch_size`` rows: the
    data loss only, without any penalty. Inference: a stateful model reads its running
    statistics from ``model_state`` (``train_state.model_state``), nothing is drawn.

    Each chunk of ``x`` is converted to the params' dtype (float64 data for float32
    params, as :func:`fit` trains them). Accuracy (else NaN) is counted as
    :func:`train_step` counts it: as ``accuracy`` says, or when it is None for a
    classification loss or integer labels.

    With ``comm`` (:mod:`fnn.parallel`; every process calls ``evaluate`` with the same
    arguments), process ``r`` of ``N`` evaluates chunks ``r, r + N, ...`` and every
    process gets the chunks' sums and adds them in chunk order: the same bits as one
    process, in about ``1 / N`` of the time."""
    batch_size = _checks.positive_int(batch_size, "batch_size")
    _check_data(model, x, y, "evaluation")
    model.check_state(model_state)
    counted = _check_accuracy(
        _scores(loss, accuracy), y, model.output_shape(x.shape[1:]), "evaluation"
    )
    return _evaluate(model, loss, params, model_state, x, y, batch_size, indices, counted, comm)


def _evaluate(
    model: Layer[P],
    loss: Loss,
    params: P,
    model_state: Any,
    x: Array,
    y: Array,
    batch_size: int,
    indices: Array | None,
    counted: bool,
    comm: parallel.Communicator | None = None,
) -> Evaluation:
    """:func:`evaluate` on data already checked, counting accuracy when ``counted``: each
    chunk's loss sum and correct count (this process's chunks with ``comm``), summed in
    chunk order."""
    dtype = _params_dtype(params, x.dtype)
    rank, size = parallel.rank_and_size(comm)
    n = len(x) if indices is None else len(indices)
    chunks = _chunks(n, batch_size)
    rows: list[Any] = chunks if indices is None else [indices[c] for c in chunks]
    sums = np.zeros((len(rows), 2))  # per chunk: loss times rows, correct count
    for i in range(rank, len(rows), size):  # a slice is a view; indices gather rows
        xb, yb = _as_dtype(x[rows[i]], dtype), y[rows[i]]
        out = model.infer(params, xb, model_state)
        value, _ = loss(out, yb)
        sums[i] = value * len(out), _count_correct(out, yb) if counted else 0
    if size > 1:  # one process's number and zeros in each entry: exact sums
        sums = parallel.reduce_shards({rank: [sums]}, size, [True] * size, [sums], comm)[0]
    total, correct = 0.0, 0
    for loss_sum, count in sums.tolist():
        total += loss_sum
        correct += int(count)
    return Evaluation(total / n, correct / n if counted else math.nan)


def _outputs(model: Layer[P], params: P, x: Array, batch_size: int, model_state: Any) -> Array:
    """The model's outputs for ``x``, in chunks of ``batch_size`` rows each converted to
    the params' dtype."""
    batch_size = _checks.positive_int(batch_size, "batch_size")
    x = _checks.float_array(x, "x")
    dtype = _params_dtype(params, x.dtype)
    parts = [
        model.apply(params, _as_dtype(x[part], dtype), model_state)
        for part in _chunks(len(x), batch_size)
    ]
    if not parts:
        raise ValueError("predict needs at least one example, got an empty x")
    return np.concatenate(parts)


def predict_proba(
    model: Layer[P],
    params: P,
    x: Array,
    batch_size: int = 1024,
    from_logits: bool | None = None,
    *,
    model_state: Any = None,
) -> Array:
    """Class probabilities ``(n, classes)``.

    ``from_logits`` says whether the model outputs logits (softmax is applied) or
    probabilities already; by default it is true unless the model's last layer is a
    ``softmax``. A stateful model needs its ``model_state``. ``x`` is converted to the
    params' dtype chunk by chunk (as :func:`evaluate` does).
    """
    out = _outputs(model, params, x, batch_size, model_state)
    if from_logits is None:
        from_logits = not _ends_in_softmax(model)
    if not from_logits:
        return out
    z: Array = out - out.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _ends_in_softmax(model: Layer[Any]) -> bool:
    spec = model.spec
    while spec is not None and spec.get("layer") == "serial" and spec.get("layers"):
        spec = spec["layers"][-1]
    return spec is not None and spec.get("layer") == "softmax"


def predict(
    model: Layer[P], params: P, x: Array, batch_size: int = 1024, *, model_state: Any = None
) -> Array:
    """Predicted class labels ``(n,)`` (the argmax of the model's outputs); a stateful model
    needs its ``model_state``; ``x`` is converted to the params' dtype chunk by chunk."""
    labels: Array = _outputs(model, params, x, batch_size, model_state).argmax(axis=1)
    return labels


@attrs.frozen
class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs; with ``restore_best`` the final params are the best epoch's.

    ``monitor`` is ``"val_loss"`` (default; falls back to ``"loss"`` without validation
    data), ``"loss"``, ``"accuracy"`` or ``"val_accuracy"``; losses are minimized and
    accuracies maximized.
    """

    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    restore_best: bool = True

    def __attrs_post_init__(self) -> None:
        EpochMetrics(0, 0.0, 0.0).get(self.monitor)  # validates the name
        _checks.positive_int(self.patience, "patience")
        delta = _checks.real(self.min_delta, "min_delta")
        if not (math.isfinite(delta) and delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0, got {self.min_delta}")


EventKind = Literal["train_begin", "epoch_begin", "batch_end", "epoch_end", "train_end"]


@attrs.frozen(eq=False)
class Event:
    """What a callback is told.

    Attributes:
        kind: ``train_begin``, ``epoch_begin``, ``batch_end``, ``epoch_end`` or ``train_end``.
        epoch: the 0-based epoch in progress (or just finished).
        epochs: the total number of epochs asked for.
        batch: batches done in this epoch; ``batches`` how many it has.
        state: the training state after the event.
        record: the finished epoch's metrics (``epoch_end``), else None.
        seconds: wall time since the epoch began (for display only; never in the state).
    """

    kind: EventKind
    epoch: int
    epochs: int
    batch: int
    batches: int
    state: TrainState[Any]
    record: EpochMetrics | None = None
    seconds: float = 0.0

    @property
    def samples_per_second(self) -> float:
        """Training throughput of the epoch so far."""
        return self.state.metrics.count / self.seconds if self.seconds > 0 else math.nan


Callback = Callable[[Event], None]


def _warn_narrowing(
    x: Array, validation_data: tuple[Array, Array] | None, dtype: np.dtype[Any]
) -> None:
    """Warn once (for :func:`fit`) when inputs in a wider float than the params' ``dtype``
    are to be converted to it batch by batch."""
    inputs = [("x", x)] + (
        [] if validation_data is None else [("validation x", validation_data[0])]
    )
    wider = [
        f"{what} is {arr.dtype}" for what, arr in inputs if arr.dtype.itemsize > dtype.itemsize
    ]
    if wider:
        warnings.warn(
            f"fit: {' and '.join(wider)} but the params are {dtype}: each batch is converted "
            f"to {dtype} (the dataset is not copied). To train in float64, pass "
            "dtype=np.float64 (or float64 params); to silence this, convert the data "
            "first, e.g. x_uint8.astype(np.float32) / 255",
            UserWarning,
            stacklevel=3,
        )


def _improved(monitor: str, value: float, best: float, min_delta: float) -> bool:
    if math.isnan(value):
        return False
    if monitor.endswith("loss"):
        return value < best - min_delta
    return value > best + min_delta


def fit(
    model: Layer[P],
    loss: Loss,
    optimizer: Optimizer,
    x: Array,
    y: Array,
    *,
    key: _random.Key,
    epochs: int,
    batch_size: int = 32,
    params: P | None = None,
    model_state: Any = None,
    state: TrainState[P] | None = None,
    validation_split: float = 0.0,
    validation_data: tuple[Array, Array] | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
    early_stopping: EarlyStopping | None = None,
    penalty: Penalty[P] | None = None,
    augment: data.Augment | None = None,
    shards: int = 1,
    comm: parallel.Communicator | None = None,
    threads: int = 1,
    callbacks: Sequence[Callback] = (),
    dtype: DTypeLike | None = None,
    accuracy: bool | None = None,
) -> TrainState[P]:
    """Train ``model`` for ``epochs`` epochs (in total) and return the final state.

    Args:
        model, loss, optimizer: what to train, on what objective, with what rule.
        x, y: training inputs ``(n, ...)`` (floats) and integer labels ``(n,)`` or
            targets shaped like the model's outputs. Checked once, NaN included. Inputs
            of another dtype than the params' are converted batch by batch (never the
            whole dataset at once); float64 inputs for float32 params (``x_uint8 /
            255.0``) give one ``UserWarning`` per call that says so.
        key: the run's key: initial params (when neither ``params`` nor ``state`` is
            given), the validation split and every epoch's shuffle derive from it.
        epochs: the total number of epochs; a resumed ``state`` that has finished
            ``k`` epochs trains ``epochs - k`` more.
        batch_size, shuffle, drop_last: how each epoch is batched.
        params: the initial params (default: ``model.init`` from the key, in ``dtype``).
        model_state: the initial model state of a stateful model (default:
            ``model.init_state``); the training forward updates it batch by batch and
            validation reads it.
        state: a state to resume from (as saved by :func:`fnn.io.save`); the run then
            continues bit-identically to one that never stopped. Given ``params``,
            ``model_state`` or ``state`` must be what ``model.init`` (``init_state``)
            makes for inputs shaped like ``x``'s rows (structure, shapes, one dtype),
            else a ValueError names the first difference before anything is trained.
        validation_split: the fraction of ``(x, y)`` held out for validation (a
            deterministic split from the key); or ``validation_data=(x_val, y_val)``.
        early_stopping: an :class:`EarlyStopping`, or None.
        penalty: an optional penalty on the params added to the loss (e.g. L2).
        augment: an optional keyed transform of each training batch's inputs,
            ``augment(key, x) -> x`` (e.g. ``fnn.data.random_flip``; see
            :func:`train_step`); validation and evaluation data are never augmented.
        shards, comm: data parallelism (:mod:`fnn.parallel`): each batch in ``shards``
            shards summed in a fixed order, computed by the processes of ``comm`` (an
            ``mpi4py`` communicator; None for this process alone). Every process must call
            ``fit`` with the same arguments and data; they end with the same state, whose
            bits depend on ``shards`` but not on the number of processes. Validation is
            shared out too (see :func:`evaluate`), with the same bits. Callbacks run
            on every process (give them to one, e.g. rank 0, for output).
        threads: how many of this process's shards are computed at once, each on a
            thread of its own (see :func:`train_step`; the bits do not depend on it).
        callbacks: functions of an :class:`Event`, for progress bars, logging,
            checkpoints (see :mod:`fnn.callbacks`).
        dtype: the params' dtype, float32 or float64. None (the default) means float32
            for the params ``fit`` makes, as Keras and PyTorch do whatever the data's
            dtype, and the dtype of ``params`` or ``state`` when given (``dtype`` must
            then agree with it). Training in float64 takes twice the memory and about
            twice the time; ask for it with ``dtype=np.float64``.
        accuracy: whether to count accuracy in the history (``accuracy``,
            ``val_accuracy``; NaN when not counted). None (the default): for a
            classification loss (:func:`fnn.losses.is_classification`: the two
            cross-entropies, ``functools.partial`` objects of them, wrappers made with
            ``functools.wraps``, losses marked with
            :func:`fnn.losses.classification_loss`) and, for a loss that declares
            nothing, when ``y`` holds integer labels.

    Returns:
        The final :class:`TrainState`; ``state.history`` has one record per epoch.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the message names the step).
        ValueError, TypeError: bad data, or params or state that do not fit the model.
    """
    epochs = _checks.positive_int(epochs, "epochs")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    if not isinstance(key, _random.Key):
        raise TypeError(f"key must be an fnn.random.Key, got {type(key).__name__}")
    if validation_data is not None and validation_split:
        raise ValueError("give validation_split or validation_data, not both")
    if not 0.0 <= _checks.real(validation_split, "validation_split") < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")

    wanted = None if dtype is None else param_dtype(dtype)
    _check_data(model, x, y, "training")
    if validation_data is not None:
        _check_data(model, *validation_data, "validation")
    in_shape = x.shape[1:]
    out_shape = model.output_shape(in_shape)
    counted = _check_accuracy(_scores(loss, accuracy), y, out_shape, "training")
    train_rows: Array | None = None  # a split selects rows; it never copies the data
    val_rows: Array | None = None
    if validation_split:
        train_rows, val_rows = data.split_indices(
            _random.fold_in(key, _SPLIT_KEY), len(x), validation_split
        )
    if state is None:
        if params is None:
            init_key = _random.fold_in(key, _INIT_KEY)
            params = model.init(init_key, in_shape, np.float32 if wanted is None else wanted)
        if model_state is None and model.init_state is not None:
            model_state = model.init_state(in_shape, _params_dtype(params))
        model.check_state(model_state)
        _check_fits(model, params, model_state, in_shape, "fit's")
        state = TrainState(optimizer.init(params), key, model_state)
    elif params is not None or model_state is not None:
        raise ValueError("give params (and model_state) or state, not both")
    else:
        model.check_state(state.model_state)
        _check_fits(model, state.params, state.model_state, in_shape, "the state's")
    dt = _params_dtype(state.params)
    if wanted is not None and wanted != dt:
        raise ValueError(
            f"dtype={wanted} was asked for, but the params given are {dt}; convert them "
            f"with fnn.tree.astype(params, np.{wanted}) or leave out dtype"
        )
    _warn_narrowing(x, validation_data, dt)
    if validation_split:
        validation_data = (x, y)
    monitor = None
    if early_stopping is not None:
        monitor = early_stopping.monitor
        if validation_data is None and monitor.startswith("val_"):
            monitor = monitor[4:]

    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be a function (key, x) -> x, got {augment!r}")
    step = _train_step(model, loss, optimizer, penalty, augment, shards, comm, threads, counted)
    n_fit = len(x) if train_rows is None else len(train_rows)
    n_batches = data.num_batches(n_fit, batch_size, drop_last)

    def notify(event: Event) -> None:
        for callback in callbacks:
            callback(event)

    def run_epoch(current: TrainState[P], epoch: int) -> TrainState[P]:
        if current.stopped or epoch < current.epoch:
            return current
        began = time.perf_counter()
        current = attrs.evolve(current, metrics=Metrics())
        notify(Event("epoch_begin", epoch, epochs, 0, n_batches, current))

        def step_and_report(s: TrainState[P], batch: Batch) -> TrainState[P]:
            s = step(s, batch)
            if callbacks:
                done = -(-s.metrics.count // batch_size)
                seconds = time.perf_counter() - began
                notify(Event("batch_end", epoch, epochs, done, n_batches, s, None, seconds))
            return s

        batches: Iterable[Batch] = data.batches(
            _random.fold_in(_random.fold_in(current.key, _DATA_KEY), epoch),
            x,
            y,
            batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            indices=train_rows,
        )
        if x.dtype != dt:
            batches = _converted(batches, dt)
        current = train_epoch(step_and_report, current, batches)
        record = EpochMetrics(epoch, current.metrics.loss, current.metrics.accuracy)
        if validation_data is not None:
            x_val, y_val = validation_data
            result = _evaluate(
                model,
                loss,
                current.params,
                current.model_state,
                x_val,
                y_val,
                1024,
                val_rows,
                counted,
                comm,
            )
            record = attrs.evolve(record, val_loss=result.loss, val_accuracy=result.accuracy)
        best, stopped = current.best, False
        if early_stopping is not None and monitor is not None:
            value = record.get(monitor)
            if best is None or _improved(monitor, value, best.value, early_stopping.min_delta):
                best = Best(value, epoch, current.params, 0, current.model_state)
            else:
                best = attrs.evolve(best, wait=best.wait + 1)
                stopped = best.wait >= early_stopping.patience
        current = TrainState(
            current.opt,
            current.key,
            current.model_state,
            epoch + 1,
            current.metrics,
            (*current.history, record),
            best,
            stopped,
        )
        seconds = time.perf_counter() - began
        notify(Event("epoch_end", epoch, epochs, n_batches, n_batches, current, record, seconds))
        return current

    notify(Event("train_begin", state.epoch, epochs, 0, n_batches, state))
    final = functools.reduce(run_epoch, range(epochs), state)
    if early_stopping is not None and early_stopping.restore_best and final.best is not None:
        restored = OptState(final.best.params, final.opt.step, final.opt.inner)
        final = attrs.evolve(final, opt=restored, model_state=final.best.model_state)
    notify(Event("train_end", final.epoch, epochs, 0, n_batches, final))
    return final
