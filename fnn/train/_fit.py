"""``fit``: prepare a run, then fold epochs; early stopping and the events callbacks see
(private; see :mod:`fnn.train`)."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, Literal, TypeVar

import attrs
import numpy as np
from numpy.typing import DTypeLike

from .. import _checks, data, parallel
from .. import random as _random
from .. import tree as _tree
from .._supervised import Batch, check_accuracy, check_data, converted, scores
from .._types import Array
from ..inference import evaluate_checked
from ..losses import Loss, Penalty
from ..nn import Layer, params_dtype
from ..optim import Optimizer, OptState
from ._state import (
    DATA_KEY,
    INIT_KEY,
    SPLIT_KEY,
    Best,
    EpochMetrics,
    Metrics,
    TrainState,
)
from ._step import NonFiniteLossError, Step, make_step, train_epoch

P = TypeVar("P")
S = TypeVar("S")


@attrs.frozen
class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs; with ``restore_best`` the final params are the best epoch's.

    ``monitor`` is ``"val_loss"`` (default; falls back to ``"loss"`` without validation
    data), ``"loss"``, ``"accuracy"`` or ``"val_accuracy"``; losses are minimized and
    accuracies maximized.

    Attributes:
        monitor: the metric watched, by its :class:`EpochMetrics` name.
        patience: how many epochs in a row without improvement end the run, an int >= 1.
        min_delta: by how much (a finite number >= 0) a value must beat the best one to
            count as an improvement.
        restore_best: end with the params and model state of the best epoch (kept in
            :attr:`TrainState.best`) rather than the last one. Such a state does not
            continue its run (its optimizer state is the last epoch's): :func:`fit`
            refuses to train on from it; resume from a checkpoint instead.

    Raises:
        ValueError: an unknown ``monitor``, ``patience < 1``, or a ``min_delta`` that is
            negative or not finite.
        TypeError: ``patience`` is not an int, ``min_delta`` not a number, or
            ``restore_best`` not a bool.

    >>> import fnn, numpy as np
    >>> x = fnn.random.uniform(fnn.random.key(1), (32, 4))
    >>> y = (x[:, 0] > 0.5).astype(np.int64)
    >>> never = fnn.EarlyStopping("loss", patience=2, min_delta=1.0)  # no epoch improves by 1
    >>> final = fnn.fit(fnn.nn.mlp((2,)), fnn.losses.softmax_cross_entropy, fnn.optim.sgd(0.1),
    ...                 x, y, key=fnn.random.key(0), epochs=10, early_stopping=never)
    >>> final.epoch, final.stopped, final.best.epoch  # params restored to epoch 0's
    (3, True, 0)
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
        if not isinstance(self.restore_best, (bool, np.bool_)):
            raise TypeError(f"restore_best must be True or False, got {self.restore_best!r}")


EventKind = Literal["train_begin", "epoch_begin", "batch_end", "epoch_end", "train_end"]
"""What an :class:`Event` tells: the run began, an epoch began, a batch ended, an epoch
ended (its record is ready), or the run ended."""


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
    state: TrainState[Any, Any]
    record: EpochMetrics | None = None
    seconds: float = 0.0

    @property
    def samples_per_second(self) -> float:
        """Training throughput of the epoch so far."""
        return self.state.metrics.count / self.seconds if self.seconds > 0 else math.nan


Callback = Callable[[Event], None]
"""``callback(event) -> None``: what :func:`fit` calls at each :class:`Event` (see
:mod:`fnn.callbacks`); it may print, log or write files, and never changes the state."""


def _warn_narrowing(
    x: Array, validation_data: tuple[Array, Array] | None, dtype: np.dtype[Any]
) -> None:
    """Warn once (for :func:`fit`) when inputs in a wider float than the params' ``dtype``
    are to be converted to it batch by batch."""
    inputs = [("x", x)] + (
        [] if validation_data is None else [("validation x", validation_data[0])]
    )
    wider = [
        f"{what} is {arr.dtype}"
        for what, arr in inputs
        if arr.dtype.kind == "f" and arr.dtype.itemsize > dtype.itemsize
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


@attrs.frozen(eq=False)
class _Run(Generic[P, S]):
    """What :func:`fit` (or :func:`fit_steps`) prepared: the step, where each epoch's
    batches come from, validation and early stopping, and the callbacks."""

    model: Layer[P, S]
    loss: Loss
    step: Step[P, S]
    source: Callable[[TrainState[P, S], int], Iterable[Batch]]
    batches: Callable[[int], int]
    batch_size: int
    epochs: int
    validation: tuple[Array, Array] | None
    val_rows: Array | None
    eval_batch_size: int
    counted: bool
    early_stopping: EarlyStopping | None
    monitor: str | None
    comm: parallel.Communicator | None
    callbacks: Sequence[Callback]
    divergence: float | None
    first_loss: list[float]

    def notify(self, event: Event) -> None:
        for callback in self.callbacks:
            callback(event)


def fit(
    model: Layer[P, S],
    loss: Loss,
    optimizer: Optimizer[Any],
    x: Array,
    y: Array,
    *,
    key: _random.Key,
    epochs: int,
    batch_size: int = 32,
    params: P | None = None,
    model_state: S | None = None,
    state: TrainState[P, S] | None = None,
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
    divergence: float | None = 1e6,
) -> TrainState[P, S]:
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
            ``k`` epochs trains ``epochs - k`` more, and one whose run early stopping
            ended (``state.stopped``) none: it is a finished run, returned as it is.
        batch_size, shuffle, drop_last: how each epoch is batched.
        params: the initial params (default: ``model.init`` from the key, in ``dtype``).
        model_state: the initial model state of a stateful model (default:
            ``model.init_state``); the training forward updates it batch by batch and
            validation reads it.
        state: a state to resume from (as saved by :func:`fnn.io.save`); the run then
            continues bit-identically to one that never stopped. ``key`` must be the
            state's own (``state.key``) and the split its run's: another key, or a
            ``validation_split`` that trains on another number of rows an epoch (or
            validates where the run did not, or the reverse), is a ValueError naming both,
            never a silently different run. Given ``params``,
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
        divergence: end the run as diverged (a :class:`NonFiniteLossError`) when a step's
            loss exceeds this many times the loss of the first step of this call (or
            this many times 1, if that was smaller): a run whose loss grows a millionfold
            (``lr`` far too large) is as lost as one whose loss is NaN. None never ends it.

    Returns:
        The final :class:`TrainState`; ``state.history`` has one record per epoch.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the message names the step),
            or the validation loss did (naming the epoch, which is not recorded).
        ValueError, TypeError: bad data, params or state that do not fit the model,
            batches too small for it (:func:`batch_shortfall`), or early stopping on an
            accuracy the run does not count.

    >>> import fnn, numpy as np
    >>> x = fnn.random.uniform(fnn.random.key(1), (64, 4))
    >>> y = (x[:, 0] > 0.5).astype(np.int64)
    >>> final = fnn.fit(fnn.nn.mlp((8, 2)), fnn.losses.softmax_cross_entropy,
    ...                 fnn.optim.adam(1e-2), x, y, key=fnn.random.key(0), epochs=3)
    >>> len(final.history), final.epoch
    (3, 3)
    """
    run, state = _prepare(
        model,
        loss,
        optimizer,
        x,
        y,
        key,
        epochs,
        batch_size,
        params,
        model_state,
        state,
        validation_split,
        validation_data,
        shuffle,
        drop_last,
        early_stopping,
        penalty,
        augment,
        shards,
        comm,
        threads,
        callbacks,
        dtype,
        accuracy,
        divergence,
    )
    return _run_epochs(run, state)


def _run_epochs(run: _Run[P, S], state: TrainState[P, S]) -> TrainState[P, S]:
    """The epochs of ``run`` from ``state`` (those it has not finished), the events
    around them, and the best params restored when early stopping says so."""
    best_held = _restored_best(state)
    if state.epoch < run.epochs and not state.stopped and best_held is not None:
        raise ValueError(
            f"the state holds the params of its best epoch, {best_held}, not of its last, "
            f"{state.epoch - 1} (EarlyStopping's restore_best put them there at the end of "
            "its run), beside the last epoch's optimizer state: training on from it would "
            "not continue that run. Resume from a checkpoint (callbacks.checkpoint's "
            "last.npz, saved before the params are restored), or train with "
            "EarlyStopping(restore_best=False) to continue from fit's result"
        )
    run.notify(Event("train_begin", state.epoch, run.epochs, 0, run.batches(state.epoch), state))
    for epoch in range(state.epoch, run.epochs):
        if state.stopped:
            break
        state = _epoch(run, state, epoch)
    stopping = run.early_stopping
    if stopping is not None and stopping.restore_best and state.best is not None:
        restored: OptState[P, Any] = OptState(state.best.params, state.opt.step, state.opt.inner)
        state = attrs.evolve(state, opt=restored, model_state=state.best.model_state)
    last = run.batches(max(state.epoch - 1, 0))
    run.notify(Event("train_end", state.epoch, run.epochs, 0, last, state))
    return state


def _prepare(
    model: Layer[P, S],
    loss: Loss,
    optimizer: Optimizer[Any],
    x: Array,
    y: Array,
    key: _random.Key,
    epochs: int,
    batch_size: int,
    params: P | None,
    model_state: S | None,
    state: TrainState[P, S] | None,
    validation_split: float,
    validation_data: tuple[Array, Array] | None,
    shuffle: bool,
    drop_last: bool,
    early_stopping: EarlyStopping | None,
    penalty: Penalty[P] | None,
    augment: data.Augment | None,
    shards: int,
    comm: parallel.Communicator | None,
    threads: int,
    callbacks: Sequence[Callback],
    dtype: DTypeLike | None,
    accuracy: bool | None,
    divergence: float | None,
) -> tuple[_Run[P, S], TrainState[P, S]]:
    """Check everything :func:`fit` is given, before anything is trained, and make the
    run and its first state."""
    epochs = _checks.positive_int(epochs, "epochs")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    if not isinstance(key, _random.Key):
        raise TypeError(f"key must be an fnn.random.Key, got {type(key).__name__}")
    if validation_data is not None and validation_split:
        raise ValueError("give validation_split or validation_data, not both")
    _checks.fraction(validation_split, "validation_split")
    wanted = None if dtype is None else _checks.float_dtype(dtype)
    check_data(model, x, y, "training")
    _check_validation_data(model, validation_data)
    in_shape = x.shape[1:]
    counted = check_accuracy(scores(loss, accuracy), y, model.output_shape(in_shape), "training")
    train_rows: Array | None = None  # a split selects rows; it never copies the data
    val_rows: Array | None = None
    if validation_split:
        train_rows, val_rows = data.split_indices(
            _random.fold_in(key, SPLIT_KEY), len(x), validation_split
        )
        validation_data = (x, y)
    state = _first_state(model, optimizer, key, in_shape, params, model_state, state, wanted)
    _check_validation_fits(model, state, None if validation_split else validation_data)
    dt = params_dtype(state.params)
    _warn_narrowing(x, None if validation_split else validation_data, dt)
    monitor = None
    if early_stopping is not None:
        monitor = early_stopping.monitor
        if validation_data is None and monitor.startswith("val_"):
            monitor = monitor[4:]
        if monitor.endswith("accuracy") and not counted:  # NaN every epoch: never improves
            raise ValueError(
                f"early stopping monitors {early_stopping.monitor!r}, but this run counts no "
                "accuracy (a loss without class labels, or accuracy=False): monitor "
                "'val_loss' or 'loss'"
            )
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be a function (key, x) -> x, got {augment!r}")
    step = make_step(model, loss, optimizer, penalty, augment, shards, comm, threads, counted)
    if divergence is not None:
        divergence = _checks.positive(divergence, "divergence")
    n_fit = len(x) if train_rows is None else len(train_rows)
    if drop_last and n_fit < batch_size:
        raise ValueError(
            f"drop_last=True leaves no batch of batch_size={batch_size} in the {n_fit} "
            "training examples: nothing would be trained; choose a batch_size of at most "
            f"{n_fit}, or drop_last=False"
        )
    short = batch_shortfall(model, in_shape, n_fit, batch_size, shards=shards, drop_last=drop_last)
    if short is not None:
        helps = (
            not drop_last
            and n_fit >= batch_size
            and batch_shortfall(model, in_shape, n_fit, batch_size, shards=shards, drop_last=True)
            is None
        )  # only the last batch is short
        raise ValueError(
            f"{short}: choose another batch_size for the {n_fit} training examples"
            + (", or drop_last=True" if helps else "")
        )
    per_epoch = data.num_batches(n_fit, batch_size, drop_last)
    rows = per_epoch * batch_size if drop_last else n_fit
    if not state.stopped and state.epoch < epochs:
        _check_same_split(state, rows, validation_data is not None, validation_split, len(x))

    def source(state: TrainState[P, S], epoch: int) -> Iterable[Batch]:
        shuffle_key = _random.fold_in(_random.fold_in(state.key, DATA_KEY), epoch)
        batches = data.batches(
            shuffle_key, x, y, batch_size, shuffle=shuffle, drop_last=drop_last, indices=train_rows
        )
        return batches if x.dtype == dt else converted(batches, dt)

    run = _Run(
        model,
        loss,
        step,
        source,
        lambda epoch: per_epoch,
        batch_size,
        epochs,
        validation_data,
        val_rows,
        1024,
        counted,
        early_stopping,
        monitor,
        comm,
        _callback_list(callbacks),
        divergence,
        [],
    )
    return run, state


def fit_steps(
    model: Layer[P, S],
    loss: Loss,
    optimizer: Optimizer[Any],
    sample: Callable[[_random.Key], Batch],
    *,
    key: _random.Key,
    steps: int,
    eval_every: int | None = None,
    validation_data: tuple[Array, Array] | None = None,
    params: P | None = None,
    model_state: S | None = None,
    state: TrainState[P, S] | None = None,
    penalty: Penalty[P] | None = None,
    shards: int = 1,
    comm: parallel.Communicator | None = None,
    threads: int = 1,
    callbacks: Sequence[Callback] = (),
    dtype: DTypeLike | None = None,
    accuracy: bool | None = None,
    divergence: float | None = 1e6,
    eval_batch_size: int = 256,
) -> TrainState[P, S]:
    """Train ``model`` for ``steps`` updates (in total) on batches drawn by ``sample``, with
    a validation every ``eval_every`` updates, and return the final state: how language
    models are trained (nanoGPT's ``max_iters`` and ``eval_interval``), where an epoch of
    all windows of a text means nothing.

    Update ``t`` trains on ``sample(fold_in(fold_in(key, 0), t))``, so a run depends only
    on (seed, step): rerun, or resumed from a saved state, it gives the same bits.
    ``steps`` are grouped in intervals of ``eval_every`` (the last one shorter when it
    does not divide them): each is an "epoch" of the history (``state.epoch`` counts the
    intervals done; a record's ``loss`` is the mean training loss of the interval's
    updates) and its end runs the validation over the whole of ``validation_data`` and
    the ``epoch_end`` callbacks (checkpoints, progress). Everything else is as
    :func:`fit`.

    Args:
        model, loss, optimizer: what to train, on what objective, with what rule.
        sample: ``sample(key) -> (x, y)``, a batch drawn from a key, the same for the same
            key (e.g. ``lambda key: fnn.data.random_windows(key, train_ids, context,
            batch_size)``); the first batch's shapes are the model's input.
        key: the run's key (initial params, every update's batch and dropout).
        steps: the total number of updates; a resumed ``state`` that has made ``k``
            continues from update ``k``.
        eval_every: updates per interval (default: ``steps``, one interval).
        validation_data: ``(x, y)`` evaluated whole after each interval (e.g.
            ``fnn.data.fixed_windows(val_ids, context)``), in chunks of
            ``eval_batch_size`` rows; None for none.
        params, model_state, state, penalty, shards, comm, threads, callbacks, dtype,
            accuracy, divergence: as for :func:`fit`.

    Returns:
        The final :class:`TrainState`; ``state.history`` has one record per interval.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite, or diverged; or the
            validation loss did (naming the interval, which is not recorded).
        ValueError, TypeError: bad arguments, a first batch the model cannot take, or
            params or state that do not fit the model.

    >>> import fnn, numpy as np
    >>> ids = np.arange(200) % 5  # a "text" that counts 0 1 2 3 4 0 1 ...
    >>> body = fnn.nn.serial(fnn.nn.positional_embedding(6), fnn.nn.dense(8), fnn.nn.relu())
    >>> model = fnn.nn.tied(5, 8, fnn.nn.serial(body, fnn.nn.dense(8)))
    >>> sample = lambda key: fnn.data.random_windows(key, ids, 6, 4)
    >>> final = fnn.fit_steps(model, fnn.losses.softmax_cross_entropy, fnn.optim.adam(0.1),
    ...                       sample, key=fnn.random.key(0), steps=40, eval_every=20,
    ...                       validation_data=fnn.data.fixed_windows(ids, 6))
    >>> final.step, len(final.history), final.history[-1].val_loss < 0.1
    (40, 2, True)
    """
    total = _checks.positive_int(steps, "steps")
    every = total if eval_every is None else _checks.positive_int(eval_every, "eval_every")
    size = _checks.positive_int(eval_batch_size, "eval_batch_size")
    if not isinstance(key, _random.Key):
        raise TypeError(f"key must be an fnn.random.Key, got {type(key).__name__}")
    if not callable(sample):
        raise TypeError(f"sample must be a function key -> (x, y), got {sample!r}")
    wanted = None if dtype is None else _checks.float_dtype(dtype)
    x0, y0 = _checks.pair(sample(_sample_key(key, 0)), "sample's batch", "(x, y)")
    check_data(model, x0, y0, "the sampled batch's")
    _check_validation_data(model, validation_data)
    in_shape = x0.shape[1:]
    counted = check_accuracy(scores(loss, accuracy), y0, model.output_shape(in_shape), "training")
    state = _first_state(model, optimizer, key, in_shape, params, model_state, state, wanted)
    _check_validation_fits(model, state, validation_data)
    dt = params_dtype(state.params)
    _warn_narrowing(x0, validation_data, dt)
    short = batch_shortfall(model, in_shape, len(x0), len(x0), shards=shards)
    if short is not None:
        raise ValueError(f"{short}: sample larger batches")
    step = make_step(model, loss, optimizer, penalty, None, shards, comm, threads, counted)
    if divergence is not None:
        divergence = _checks.positive(divergence, "divergence")

    def source(state: TrainState[P, S], interval: int) -> Iterable[Batch]:
        first, last = interval * every, min((interval + 1) * every, total)
        batches = (sample(_sample_key(state.key, t)) for t in range(first, last))
        return converted(batches, dt)

    run = _Run(
        model,
        loss,
        step,
        source,
        lambda interval: min(every, total - interval * every),
        len(x0),
        -(-total // every),
        validation_data,
        None,
        size,
        counted,
        None,
        None,
        comm,
        _callback_list(callbacks),
        divergence,
        [],
    )
    if state.step != min(state.epoch * every, total):  # the last interval may be short
        raise ValueError(
            f"the state has made {state.step} updates in {state.epoch} intervals, which "
            f"intervals of eval_every={every} updates cannot continue"
        )
    return _run_epochs(run, state)


def _restored_best(state: TrainState[Any, Any]) -> int | None:
    """The best epoch whose params ``state`` holds in place of its last epoch's (what
    :func:`fit` returns with ``EarlyStopping(restore_best=True)`` when a later epoch
    scored worse: its optimizer state stays the last epoch's); None otherwise.

    The state holds the best epoch's params, and its last epoch scored otherwise than the
    best one: the last epoch's params were not those (a score is a function of them), so
    they were put back. With validation, "otherwise" is any difference in the validation
    loss or accuracy (a monitored accuracy may tie with other params: its loss tells
    them apart); without, the monitored value. Params that merely stopped changing (a
    learning rate decayed to 0) score the same again and pass, as do params that stopped
    changing beside a model state that did not."""
    best = state.best
    if best is None or best.epoch == state.epoch - 1 or not state.history:
        return None
    last = state.history[-1]
    at_best = next((m for m in state.history if m.epoch == best.epoch), None)
    if at_best is not None and not math.isnan(last.val_loss):
        same = _same_scores(
            (last.val_loss, last.val_accuracy), (at_best.val_loss, at_best.val_accuracy)
        )
    else:
        same = best.value in (last.val_loss, last.loss, last.val_accuracy, last.accuracy)
    if same:
        return None
    # a restore puts back the params and the model state both: params that stopped
    # changing beside running statistics that did not (batch norm recalibrated with
    # every param frozen) score otherwise without any restore
    restored = _tree.equal((state.params, state.model_state), (best.params, best.model_state))
    return best.epoch if restored else None


def _same_scores(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether two records of scores are equal, NaN (not measured) equal to NaN."""
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b))


def _callback_list(callbacks: Any) -> tuple[Callback, ...]:
    """``callbacks`` as a tuple of functions of an :class:`Event`, else a TypeError: a
    class given for an instance (``callbacks.EpochTimes``), or a function for a list."""
    if callable(callbacks) or not isinstance(callbacks, Iterable):
        raise TypeError(
            f"callbacks must be a list of callbacks, got {type(callbacks).__name__}: put "
            "even one in a list, callbacks=[...]"
        )
    found = tuple(callbacks)
    for i, callback in enumerate(found):
        if isinstance(callback, type):
            raise TypeError(
                f"callbacks[{i}] is the class {callback.__name__}, not a callback: pass an "
                f"instance, {callback.__name__}(...)"
            )
        if not callable(callback):
            raise TypeError(
                f"callbacks[{i}] must be a function of an Event, got {type(callback).__name__}"
            )
    return found


def _check_validation_data(model: Layer[Any, Any], validation_data: Any) -> None:
    """``validation_data`` None or a pair ``(x_val, y_val)`` the model can read
    (:func:`check_data`), else a TypeError or ValueError saying what came."""
    if validation_data is None:
        return
    x_val, y_val = _checks.pair(validation_data, "validation_data", "(x_val, y_val)")
    check_data(model, x_val, y_val, "validation")


def _check_validation_fits(
    model: Layer[Any, Any], state: TrainState[Any, Any], validation_data: Any
) -> None:
    """The run's params and model state fit the validation examples too (another example
    shape than training's failed inside the first validation, after a whole epoch)."""
    if validation_data is not None:
        x_val = validation_data[0]
        model.check(
            state.params, state.model_state, x_val.shape[1:], "validation x's examples: the"
        )


def _sample_key(key: _random.Key, step: int) -> _random.Key:
    """The key :func:`fit_steps` draws update ``step``'s batch from."""
    return _random.fold_in(_random.fold_in(key, DATA_KEY), step)


def _first_state(
    model: Layer[P, S],
    optimizer: Optimizer[Any],
    key: _random.Key,
    in_shape: tuple[int, ...],
    params: P | None,
    model_state: S | None,
    state: TrainState[P, S] | None,
    wanted: np.dtype[Any] | None,
) -> TrainState[P, S]:
    """The state a run starts from: ``state`` (checked against the model), or a new one
    from ``params`` and ``model_state`` (made from the key when not given)."""
    if state is None:
        if params is None:
            init_key = _random.fold_in(key, INIT_KEY)
            params = model.init(init_key, in_shape, np.float32 if wanted is None else wanted)
        if model_state is None:
            model_state = model.init_state(in_shape, params_dtype(params))
        model.check(params, model_state, in_shape, "fit's")
        state = TrainState(optimizer.init(params), key, model_state)
    elif params is not None or model_state is not None:
        raise ValueError("give params (and model_state) or state, not both")
    elif state.key != key:
        raise ValueError(
            f"key={key} is not the key of the state's run, {state.key}: a resumed run "
            "continues with its own key (its split, shuffles and dropout derive from it); "
            "pass key=state.key"
        )
    else:
        model.check(state.params, state.model_state, in_shape, "the state's")
    dt = params_dtype(state.params)
    if wanted is not None and wanted != dt:
        raise ValueError(
            f"dtype={wanted} was asked for, but the params given are {dt}; convert them "
            f"with fnn.tree.astype(params, np.{wanted}) or leave out dtype"
        )
    return state


def _check_same_split(
    state: TrainState[P, S], rows: int, validated: bool, validation_split: float, n: int
) -> None:
    """Refuse to resume ``state`` on another split of the data than its run's: its last
    epoch trained on ``state.metrics.count`` examples and was validated or not (its
    ``val_loss`` measured or NaN); the call trains on ``rows`` an epoch of ``n``, and
    validates when ``validated``. (Under one key, the same count is the same split.) A
    state with nothing left to train (stopped early, or all ``epochs`` done) passes.

    Raises:
        ValueError: naming both counts, or whether each validates.
    """
    if state.epoch == 0 or not state.history:
        return
    was = not math.isnan(state.history[-1].val_loss)
    this = f"validation_split={validation_split} of {n} examples"
    if was != validated:
        said = ("validated after each epoch", "does not") if was else ("did not validate", "does")
        raise ValueError(
            f"the state's run {said[0]}, this call ({this}) {said[1]}: resume with the run's "
            "validation_split (or validation_data)"
        )
    if state.metrics.count != rows:
        raise ValueError(
            f"the state's run trained on {state.metrics.count} examples an epoch, this call "
            f"on {rows} ({this}): resume with the run's data, validation_split, batch_size "
            "and drop_last"
        )


def _check_growth(run: _Run[P, S], before: Metrics, after: TrainState[P, S]) -> None:
    """End the run as diverged when a step's loss exceeds ``run.divergence`` times the loss
    of the first step this ``fit`` made (or times 1, if that was smaller)."""
    if run.divergence is None:
        return
    loss = (after.metrics.loss_sum - before.loss_sum) / max(after.metrics.count - before.count, 1)
    if not run.first_loss:
        run.first_loss.append(loss)
    limit = run.divergence * max(run.first_loss[0], 1.0)
    if loss > limit:
        raise NonFiniteLossError(
            f"the loss grew to {loss:.4g} at step {after.opt.step - 1} (epoch {after.epoch}), "
            f"more than {run.divergence:g} times the {run.first_loss[0]:.4g} of this run's "
            "first step: the run diverged; lower the learning rate or check the data"
        )


def batch_shortfall(
    model: Layer[Any, Any],
    in_shape: Any,
    rows: int,
    batch_size: int,
    *,
    shards: int = 1,
    drop_last: bool = False,
) -> str | None:
    """What makes a run's batches too small for ``model`` in training, or None when none
    is: the model's ``min_batch`` (batch norm needs two values per channel to estimate a
    variance) against every full batch's and the last batch's smallest shard.
    :func:`fit` refuses such a run before training, and so does ``fnn train``, each
    naming its own fix.

    Args:
        model: the model.
        in_shape: the shape of one example (without the batch axis).
        rows: how many examples are trained on (after a validation split).
        batch_size, shards, drop_last: as :func:`fit` takes them.

    Returns:
        The batch that is too small and what the model needs, in words, or None.

    >>> import fnn
    >>> model = fnn.nn.serial(fnn.nn.dense(4), fnn.nn.batch_norm())
    >>> batch_shortfall(model, (3,), 9, 4)  # doctest: +NORMALIZE_WHITESPACE
    'the last batch of each epoch has 1 rows, but the model needs at least 2 rows per
    batch in training (a layer declares min_batch=2: batch norm estimates a variance
    from its rows)'
    >>> batch_shortfall(model, (3,), 9, 4, drop_last=True) is None
    True
    """
    least = model.declared(in_shape).min_batch
    if least <= 1:
        return None
    sizes = [min(batch_size, rows)]
    if rows % batch_size and not drop_last and rows > batch_size:
        sizes.append(rows % batch_size)
    for size in sizes:
        smallest = max(size // shards, 1)  # empty shards are left out
        if smallest < least:
            what = "the last batch of each epoch" if size != sizes[0] else "each batch"
            split, per = (f" in {shards} shards", " (shard)") if shards > 1 else ("", "")
            return (
                f"{what} has {size} rows{split}, but the model needs at least {least} rows "
                f"per batch{per} in training (a layer declares min_batch={least}: batch "
                "norm estimates a variance from its rows)"
            )
    return None


def _epoch(run: _Run[P, S], state: TrainState[P, S], epoch: int) -> TrainState[P, S]:
    """One epoch of ``run`` from ``state``: the fold of the step over the epoch's batches,
    the validation, the early-stopping record, and the events around them."""
    began = time.perf_counter()
    state = attrs.evolve(state, metrics=Metrics())
    batches = run.batches(epoch)
    run.notify(Event("epoch_begin", epoch, run.epochs, 0, batches, state))
    start = state.step  # one update a batch: the batches done are the updates made

    def step_and_report(s: TrainState[P, S], batch: Batch) -> TrainState[P, S]:
        before = s.metrics
        s = run.step(s, batch)
        _check_growth(run, before, s)
        if run.callbacks:
            done = s.step - start
            seconds = time.perf_counter() - began
            run.notify(Event("batch_end", epoch, run.epochs, done, batches, s, None, seconds))
        return s

    state = train_epoch(step_and_report, state, run.source(state, epoch))
    record = EpochMetrics(epoch, state.metrics.loss, state.metrics.accuracy)
    if run.validation is not None:
        x_val, y_val = run.validation
        result = evaluate_checked(
            run.model,
            run.loss,
            state.params,
            state.model_state,
            x_val,
            y_val,
            run.eval_batch_size,
            run.val_rows,
            run.counted,
            run.comm,
        )
        if not math.isfinite(result.loss):  # NaN would read as "not measured" hereafter
            raise NonFiniteLossError(
                f"the validation loss after epoch {epoch} is {result.loss} (the model's "
                "outputs on the validation data, or the loss of them, are not finite); the "
                "epoch is not recorded"
            )
        record = attrs.evolve(record, val_loss=result.loss, val_accuracy=result.accuracy)
    best, stopped = state.best, False
    if run.early_stopping is not None and run.monitor is not None:
        value = record.get(run.monitor)
        if best is None or _improved(run.monitor, value, best.value, run.early_stopping.min_delta):
            best = Best(value, epoch, state.params, 0, state.model_state)
        else:
            best = attrs.evolve(best, wait=best.wait + 1)
            stopped = best.wait >= run.early_stopping.patience
    state = TrainState(
        state.opt,
        state.key,
        state.model_state,
        epoch + 1,
        state.metrics,
        (*state.history, record),
        best,
        stopped,
    )
    seconds = time.perf_counter() - began
    run.notify(Event("epoch_end", epoch, run.epochs, batches, batches, state, record, seconds))
    return state
