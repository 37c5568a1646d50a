"""Training as a fold: ``train_step``, ``train_epoch`` and ``fit``.

A :class:`TrainState` is a frozen tree: the optimizer state (which holds the params),
the key, the number of finished epochs, the running metrics of the epoch in progress,
the history of finished epochs and the early-stopping record. ``train_step(...)``
returns a pure function ``(state, (x, y)) -> state``; ``train_epoch`` is
``functools.reduce`` of it over batches; ``fit`` prepares a run and folds epochs, and
``fit_steps`` folds a number of updates on batches drawn from keys (language models).
Progress display and logging are callbacks at the edge (:mod:`fnn.callbacks`); nothing
in the state depends on time, so two runs with the same inputs give bit-identical
states. Inference (``evaluate``, ``predict``) lives in :mod:`fnn.inference`; data
parallelism (the sharded step) in :mod:`fnn.parallel`.

Randomness: the shuffle of epoch ``e`` uses ``fold_in(fold_in(key, 0), e)``, the
validation split ``fold_in(key, 1)``, the training forward of update ``t`` (dropout)
``fold_in(fold_in(key, 2), t)``, the initial params ``fold_in(key, 3)`` and the data
augmentation of update ``t`` ``fold_in(fold_in(key, 4), t)``, so a run depends only on
(seed, epoch, step).

The package holds one concept per module: the state (``_state``), one step and the
epoch's fold (``_step``), and ``fit`` with its events (``_fit``).
"""

from ._fit import Callback as Callback
from ._fit import EarlyStopping as EarlyStopping
from ._fit import Event as Event
from ._fit import EventKind as EventKind
from ._fit import batch_shortfall as batch_shortfall
from ._fit import fit as fit
from ._fit import fit_steps as fit_steps
from ._state import UNMEASURED as UNMEASURED
from ._state import Best as Best
from ._state import EpochMetrics as EpochMetrics
from ._state import Metrics as Metrics
from ._state import TrainState as TrainState
from ._state import augment_key as augment_key
from ._state import check_finite as check_finite
from ._state import step_key as step_key
from ._state import train_state as train_state
from ._step import NonFiniteLossError as NonFiniteLossError
from ._step import Step as Step
from ._step import train_epoch as train_epoch
from ._step import train_step as train_step

__all__ = [
    "Best",
    "Callback",
    "EarlyStopping",
    "EpochMetrics",
    "Event",
    "EventKind",
    "Metrics",
    "NonFiniteLossError",
    "Step",
    "TrainState",
    "UNMEASURED",
    "augment_key",
    "batch_shortfall",
    "check_finite",
    "fit",
    "fit_steps",
    "step_key",
    "train_epoch",
    "train_state",
    "train_step",
]
