"""Search beyond a grid with Optuna (the optional extra ``fnn[tune]``; private, see
:mod:`fnn.experiments`).

A search space is a set of :class:`Param`; a study lives in an Optuna storage, by
default the SQLite file ``study.db`` in the search's directory, so a search that is
killed goes on where it stopped when started again, and the trials of several worker
processes share it. Optuna's samplers and pruners do the searching.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ._pool import run_tasks

STUDY_FILE = "study.db"
"""The SQLite file of a study, in the search's directory (the default storage)."""

SAMPLERS = ("tpe", "random", "qmc")
"""The Optuna samplers a search may use by name: ``TPESampler``, ``RandomSampler``,
``QMCSampler``."""

PRUNERS = ("none", "median", "hyperband", "successive-halving")
"""The Optuna pruners by name: ``NopPruner``, ``MedianPruner``, ``HyperbandPruner``,
``SuccessiveHalvingPruner``."""


class TuneUnavailableError(ImportError):
    """Optuna is not installed."""


class TrialFailedError(Exception):
    """A trial whose training failed (a diverged run, a usage error): marked failed, the
    search goes on."""


def optuna_module() -> Any:
    """The ``optuna`` module.

    Raises:
        TuneUnavailableError: it is not installed (the message says how to get it).
    """
    try:
        import optuna  # type: ignore[import-not-found, unused-ignore]  # the tune extra
    except ImportError:
        raise TuneUnavailableError(
            "searching needs Optuna, which is not installed: pip install 'fnn[tune]'"
        ) from None
    return optuna


@attrs.frozen
class Param:
    """One dimension of a search space.

    Attributes:
        name: the option's name.
        kind: ``"float"``, ``"int"`` or ``"choice"``.
        low, high: the range of a float or an int (inclusive).
        log: draw a float or an int on a log scale.
        choices: the values of a choice, as text.
    """

    name: str
    kind: str
    low: float = math.nan
    high: float = math.nan
    log: bool = False
    choices: tuple[str, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value ``trial`` (an ``optuna.Trial``) draws for this dimension."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))


def parse_param(text: str, numeric: str | None) -> Param:
    """A dimension from ``NAME=LOW..HIGH``, ``NAME=LOW..HIGH:log`` (a range: the
    option's kind, ``numeric`` ``"float"`` or ``"int"``, decides which) or
    ``NAME=A,B,C`` (a choice).

    >>> parse_param("lr=1e-4..1e-1:log", "float")
    Param(name='lr', kind='float', low=0.0001, high=0.1, log=True, choices=())
    >>> parse_param("optimizer=adam,sgd", None).choices
    ('adam', 'sgd')

    Raises:
        ValueError: a malformed entry, a range of an option that is not a number, a
            range running backwards, or a log range that does not lie above 0.
    """
    name, sep, spec = text.partition("=")
    name = name.strip().removeprefix("--").replace("-", "_")
    if not sep or not name or not spec.strip():
        raise ValueError(f"expected NAME=LOW..HIGH[:log] or NAME=A,B,..., got {text!r}")
    found = re.fullmatch(r"\s*([^.:]+(?:\.\d*)?(?:e[-+]?\d+)?)\.\.([^:]+?)\s*(:log)?\s*", spec)
    if found is None:
        choices = tuple(v.strip() for v in spec.split(","))
        if any(not v for v in choices) or len(set(choices)) != len(choices):
            raise ValueError(f"{text!r}: expected distinct choices separated by ','")
        return Param(name, "choice", choices=choices)
    if numeric not in ("float", "int"):
        raise ValueError(f"{text!r}: a range needs an option that takes a number")
    try:
        kind = float if numeric == "float" else int
        low, high = kind(found.group(1)), kind(found.group(2))
    except ValueError:
        raise ValueError(f"{text!r}: expected a range of {numeric}s LOW..HIGH") from None
    log = found.group(3) is not None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high or (log and low <= 0):
        raise ValueError(
            f"{text!r}: expected LOW <= HIGH, finite{' and above 0 for :log' if log else ''}"
        )
    return Param(name, numeric, float(low), float(high), log)


def sampler(name: str, seed: int) -> Any:
    """The Optuna sampler called ``name`` (:data:`SAMPLERS`), seeded.

    Raises:
        ValueError: an unknown name.
    """
    samplers = optuna_module().samplers
    made = {"tpe": samplers.TPESampler, "random": samplers.RandomSampler}
    made["qmc"] = samplers.QMCSampler
    if name not in made:
        raise ValueError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")
    return made[name](seed=seed)


def sampler_seed(name: str, seed: int, worker: int, started: int) -> int:
    """The seed of worker ``worker``'s sampler in a search that has ``started`` trials
    already: ``seed + worker`` in a new search; in one started again, a seed drawn from
    all three (``numpy.random.SeedSequence``), else the restarted sampler would draw the
    points it drew the first time. The QMC sampler keeps ``seed + worker``: it goes on
    along its sequence by the study's trial count, which a new seed would scramble
    otherwise.

    >>> sampler_seed("tpe", 0, 1, 0), sampler_seed("qmc", 0, 1, 5)
    (1, 1)
    """
    if started == 0 or name == "qmc":
        return seed + worker
    return int(np.random.SeedSequence([seed, worker, started]).generate_state(1)[0])


def pruner(name: str) -> Any:
    """The Optuna pruner called ``name`` (:data:`PRUNERS`).

    Raises:
        ValueError: an unknown name.
    """
    pruners = optuna_module().pruners
    made = {
        "none": pruners.NopPruner,
        "median": pruners.MedianPruner,
        "hyperband": pruners.HyperbandPruner,
        "successive-halving": pruners.SuccessiveHalvingPruner,
    }
    if name not in made:
        raise ValueError(f"unknown pruner {name!r}; expected one of {', '.join(PRUNERS)}")
    return made[name]()


def storage_url(directory: str | os.PathLike[str], storage: str | None) -> str:
    """The storage of a search: ``storage`` when given (any Optuna storage URL), else
    the SQLite file :data:`STUDY_FILE` in ``directory``."""
    return storage or f"sqlite:///{(Path(directory) / STUDY_FILE).resolve()}"


def _storage(url: str) -> Any:
    """An Optuna storage for ``url``; SQLite waits up to 60 s for another process's
    write rather than failing."""
    storages = optuna_module().storages
    if url.startswith("sqlite:"):
        return storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return storages.get_storage(url)


def tune(
    objective: Callable[[Any], float],
    *,
    directory: str | os.PathLike[str],
    trials: int,
    direction: str,
    study_name: str = "fnn",
    storage: str | None = None,
    sampler_name: str = "tpe",
    pruner_name: str = "none",
    seed: int = 0,
    workers: int = 1,
    done: Callable[[Any], None] | None = None,
) -> Any:
    """Run an Optuna study to ``trials`` finished (complete or pruned) trials: as many
    trials as it lacks are run, shared out among the workers (a failed trial is one of
    them; the next call runs it again); returns the study.

    The study is created, or loaded when it is there (a search started again goes on
    where it stopped): the trials a killed search left running are marked failed first
    (the caller holds the search directory's lock, so no other process runs them).
    ``workers`` processes run trials at once (forked: ``objective`` may be a closure),
    worker ``i`` with the sampler seeded ``seed + i`` (:func:`sampler_seed`: started again,
    from the seed, ``i`` and the trials so far); a trial raising
    :class:`TrialFailedError` is marked failed and the search goes on.

    Args:
        objective: ``objective(trial) -> value``, an ``optuna.Trial``; it may report
            intermediate values and raise ``optuna.TrialPruned``.
        directory: the search's directory, a ``str`` or path (holding ``study.db`` by
            default).
        trials: finished trials to reach.
        direction: ``"maximize"`` or ``"minimize"``.
        study_name: the study's name in the storage.
        storage: an Optuna storage URL (default ``sqlite:///<directory>/study.db``).
        sampler_name: one of :data:`SAMPLERS`.
        pruner_name: one of :data:`PRUNERS`.
        seed: the sampler's seed (of worker 0).
        workers: processes running trials at once.
        done: called in the worker with each finished ``FrozenTrial``.

    Raises:
        TuneUnavailableError: Optuna is not installed.
        ValueError: an unknown sampler, pruner or direction, or a study of another
            direction in the storage.
    """
    optuna = optuna_module()
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"expected direction maximize or minimize, got {direction!r}")
    url = storage_url(directory, storage)
    sampler(sampler_name, seed), pruner(pruner_name)  # the names checked before anything
    store = _storage(url)
    study = optuna.create_study(
        storage=store,
        study_name=study_name,
        direction=direction,
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"the study {study_name!r} in {url} is to {study.direction.name.lower()}, "
            f"not {direction}; choose another directory"
        )
    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in stale:  # Optuna's own id of a trial (FrozenTrial has no public one)
        store.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    left = trials - len(study.get_trials(deepcopy=False, states=finished))
    started = len(study.get_trials(deepcopy=False))

    def work(index: int) -> int:
        mine = optuna.load_study(
            study_name=study_name,
            storage=_storage(url),
            sampler=sampler(sampler_name, sampler_seed(sampler_name, seed, index, started)),
            pruner=pruner(pruner_name),
        )
        callbacks = [] if done is None else [lambda _study, trial: done(trial)]
        share = left // count + (index < left % count)  # the trials left, shared out
        mine.optimize(objective, n_trials=share, catch=(TrialFailedError,), callbacks=callbacks)
        return index

    count = min(workers, left)
    if left > 0:
        run_tasks(work, list(range(count)), workers=count)
    return optuna.load_study(study_name=study_name, storage=_storage(url))


__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "STUDY_FILE",
    "Param",
    "TrialFailedError",
    "TuneUnavailableError",
    "optuna_module",
    "parse_param",
    "pruner",
    "sampler",
    "sampler_seed",
    "storage_url",
    "tune",
]
