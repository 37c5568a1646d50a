"""The training state: a frozen tree holding everything a run needs to continue (private;
see :mod:`fnn.train`)."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from typing import Any, Generic, TypeVar, overload

import attrs

from .. import _checks
from .. import random as _random
from .. import tree as _tree
from ..optim import Optimizer, OptState

P = TypeVar("P")
S = TypeVar("S")

DATA_KEY, SPLIT_KEY, STEP_KEY, INIT_KEY, AUGMENT_KEY = 0, 1, 2, 3, 4
"""What each stream of a run's randomness folds into its key (see :mod:`fnn.train`)."""


@attrs.frozen(eq=False)
class Metrics:
    """Running sums over the batches of the epoch in progress.

    Attributes:
        loss_sum: the sum over batches of ``batch loss * batch size``. With padded
            targets (:data:`fnn.losses.IGNORE`) a batch's loss is its mean over the
            targets it counts, and the batches are still weighed by their rows here
            (:func:`fnn.evaluate` and shards weigh by counted targets:
            :func:`fnn.losses.counted_rows`); the two agree without padding.
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
class Best(Generic[P, S]):
    """Early stopping's record: the best monitored value, its epoch, the params and the
    model state then, and how many epochs have passed without improvement."""

    value: float = attrs.field(converter=float)
    epoch: int = attrs.field(converter=operator.index)
    params: P
    wait: int = attrs.field(default=0, converter=operator.index)
    model_state: S = attrs.field(default=None)


_tree.register_type(Best, "fnn.train.Best")


@attrs.frozen(eq=False)
class TrainState(Generic[P, S]):
    """Everything a training run needs to continue exactly where it stopped.

    ``TrainState[P, S]`` is the state of a run of a ``Layer[P, S]``: ``P`` its params'
    type, ``S`` its model state's (``None`` for a model without).

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

    opt: OptState[P, Any]
    key: _random.Key
    model_state: S = attrs.field(default=None)
    epoch: int = attrs.field(default=0, converter=operator.index)
    metrics: Metrics = Metrics()
    history: tuple[EpochMetrics, ...] = attrs.field(default=(), converter=_records)
    best: Best[P, S] | None = None
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


UNMEASURED = ("accuracy", "val_loss", "val_accuracy")
"""The metrics of an epoch's record that are NaN when they were not measured: the
accuracy of a loss without labels to count, the validation metrics without validation
data."""


def check_finite(state: TrainState[Any, Any], what: str = "state") -> None:
    """Refuse a training state that holds NaN or infinity anywhere but where a NaN means a
    metric was not measured (:data:`UNMEASURED` in its history, never infinity).

    fnn never writes any other non-finite value into a training state: a run whose loss
    turns NaN or infinite stops before its state is kept (:class:`NonFiniteLossError`),
    so a state loaded from a file (``fnn.io.load``, which reads NaN as it is) is checked
    with this before it is trusted: its params, optimizer moments, model state, running
    metrics, early-stopping record and each epoch's loss must be finite.

    Args:
        state: a :class:`TrainState`.
        what: names the state in the message (``"state"``: ``state.opt.params[1].w``).

    Raises:
        ValueError: naming the first leaf that is not finite and the value's index, e.g.
            ``state.opt.params[1].w must hold finite values, got nan at index (3, 0) (1
            non-finite entries in all)``.

    >>> import fnn, numpy as np
    >>> x, y = np.eye(4, dtype=np.float32), np.arange(4)
    >>> state = fnn.fit(fnn.nn.mlp((4,)), fnn.losses.softmax_cross_entropy,
    ...                 fnn.optim.sgd(0.1), x, y, key=fnn.random.key(0), epochs=1)
    >>> state.history[0].val_loss  # no validation data: not measured
    nan
    >>> check_finite(state)  # passes
    """

    def measured(record: EpochMetrics) -> EpochMetrics:  # a finite stand-in for each NaN
        unmeasured: dict[str, Any] = {n: 0.0 for n in UNMEASURED if math.isnan(record.get(n))}
        return attrs.evolve(record, **unmeasured)

    checked = attrs.evolve(state, history=[measured(r) for r in state.history])
    _checks.finite_leaves(
        (what + path, leaf) for path, leaf in zip(_tree.paths(checked), _tree.leaves(checked))
    )


@overload
def train_state(optimizer: Optimizer[Any], params: P, key: _random.Key) -> TrainState[P, None]: ...


@overload
def train_state(
    optimizer: Optimizer[Any], params: P, key: _random.Key, model_state: S
) -> TrainState[P, S]: ...


def train_state(
    optimizer: Optimizer[Any], params: P, key: _random.Key, model_state: Any = None
) -> TrainState[P, Any]:
    """A fresh training state for ``params`` (and the model state of a stateful model).

    Args:
        optimizer: the update rule; ``optimizer.init(params)`` makes the state's ``opt``.
        params: the initial params, a tree of float arrays of one dtype (as
            ``model.init`` makes them).
        key: the run's key (:class:`TrainState` ``key``).
        model_state: the initial model state of a stateful model
            (``model.init_state(in_shape)``); None for a model without.

    Returns:
        A :class:`TrainState` at step 0 and epoch 0, with empty metrics and history: a
        ``TrainState[P, S]`` for ``model_state`` of type ``S``, ``TrainState[P, None]``
        without one.

    Raises:
        TypeError: a leaf of ``params`` is not a float array, or the leaves mix dtypes.

    >>> import fnn
    >>> model, key = fnn.nn.mlp((3,)), fnn.random.key(0)
    >>> state = fnn.train_state(fnn.optim.sgd(0.1), model.init(key, (2,)), key)
    >>> state.step, state.epoch, state.history, state.params[1].w.shape
    (0, 0, (), (2, 3))
    """
    return TrainState(optimizer.init(params), key, model_state)


def step_key(key: _random.Key, step: int) -> _random.Key:
    """The key of the training forward of update ``step`` (0-based) of a run keyed ``key``:
    a dropout mask depends only on (seed, step), so a resumed run draws the same ones.

    Returns:
        ``fold_in(fold_in(key, 2), step)``, a new :class:`fnn.random.Key`.

    Raises:
        TypeError, ValueError: ``key`` is not a key, or ``step`` not an int in
            ``[0, 2**31)``.

    >>> import fnn
    >>> key = fnn.random.key(0)
    >>> fnn.step_key(key, 5) == fnn.random.fold_in(fnn.random.fold_in(key, 2), 5)
    True
    >>> fnn.step_key(key, 5).path
    (5, 11)
    """
    return _random.fold_in(_random.fold_in(key, STEP_KEY), step)


def augment_key(key: _random.Key, step: int) -> _random.Key:
    """The key of the data augmentation of update ``step`` (0-based) of a run keyed
    ``key``: like dropout masks, the transforms depend only on (seed, step).

    Returns:
        ``fold_in(fold_in(key, 4), step)``, a new :class:`fnn.random.Key`.

    Raises:
        TypeError, ValueError: as :func:`step_key`.

    >>> import fnn
    >>> key = fnn.random.key(0)
    >>> fnn.augment_key(key, 5) == fnn.random.fold_in(fnn.random.fold_in(key, 4), 5)
    True
    >>> fnn.augment_key(key, 5) != fnn.step_key(key, 5)
    True
    """
    return _random.fold_in(_random.fold_in(key, AUGMENT_KEY), step)
