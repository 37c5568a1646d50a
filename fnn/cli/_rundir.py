"""A run directory: its files, its one writer, and what is left to do in it (private; see
:mod:`fnn.cli`).

``fnn train`` writes into its ``--out`` directory ``run.json`` (the record),
``checkpoints/last.npz`` (the whole training state after the latest epoch),
``model.npz`` and, with matplotlib, ``curves.png`` and ``confusion.png``. One process
writes there at a time (:class:`RunLock`); every file is replaced atomically, so a run
stopped at any moment leaves files that ``--resume`` finishes from.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import callbacks, io
from .. import tree as _tree
from .._atomic import write_bytes_atomic
from .._files import MAX_RUN_RECORD as MAX_RUN_RECORD
from .._files import RUN_FILE as RUN_FILE
from .._files import read_json_object
from .._lock import directory_lock
from ..data import DataError
from ..train import TrainState, check_finite
from ._config import Config, UsageError

MODEL_FILE = "model.npz"
CHECKPOINTS = "checkpoints"
PLOTS = ("curves.png", "confusion.png")
STEPS_FILE = "steps.json"
"""In ``checkpoints/``: ``--log-every``'s records so far, written before each checkpoint."""


@contextlib.contextmanager
def run_lock(directory: Path) -> Iterator[None]:
    """Hold the run directory's lock (an exclusive ``flock`` on the directory itself): the
    one writer of a run directory. The kernel releases it when the process ends, so a
    killed run never leaves it stuck, and no lock file is left behind.

    Raises:
        UsageError: another process holds it (another ``fnn train`` into the directory).
    """
    with directory_lock(
        directory,
        lambda: UsageError(
            f"another fnn train is writing into {directory}; wait for it to end, or "
            "choose another --out"
        ),
        lambda err: UsageError(f"cannot open {directory}: {err.strerror or err}"),
    ):
        yield


def check_out(directory: Path) -> None:
    """Refuse an output directory the run could not write into, before anything happens.

    Raises:
        UsageError: the path or one of the files fnn writes there is of the wrong kind, or
            the nearest existing directory is not writable.
    """
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--out {directory} exists and is not a directory")
    for name, is_dir in ((MODEL_FILE, False), (RUN_FILE, False), (CHECKPOINTS, True)):
        path = directory / name
        if path.exists() and path.is_dir() != is_dir:
            kind = "is not a directory" if is_dir else "is a directory"
            raise UsageError(f"{path} {kind}: fnn train writes its {name} there")
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot create {directory}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write into {existing}: permission denied")


def prepare_out(directory: Path) -> None:
    """Create the output directory and its checkpoint directory and write a probe file in
    each (removed at once), so that an unwritable place fails before training.

    Raises:
        UsageError: the directory cannot be created or written into.
    """
    for place in (directory, directory / CHECKPOINTS):
        try:
            place.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=place):
                pass
        except OSError as err:
            raise UsageError(f"cannot write into {place}: {err.strerror or err}") from None


def forget_run(directory: Path) -> None:
    """Remove the checkpoint, model and plots of an earlier run in ``directory`` (a new run
    replaces it), so that ``--resume`` cannot find the one nor ``fnn evaluate`` the other
    beside the new run's record."""
    paths = [directory / CHECKPOINTS / callbacks.LAST, directory / MODEL_FILE]
    paths.append(directory / CHECKPOINTS / STEPS_FILE)
    for path in paths + [directory / name for name in PLOTS]:
        if path.is_symlink() or path.is_file():
            path.unlink()


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented, key-sorted JSON, written atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_run(directory: Path) -> dict[str, Any]:
    """The run record of ``directory``, read only from a regular file of at most
    :data:`MAX_RUN_RECORD` bytes.

    Raises:
        UsageError: no record, one too large, or one that is not a JSON object.
    """
    path = directory / RUN_FILE
    try:
        return read_json_object(path, MAX_RUN_RECORD, DataError)
    except FileNotFoundError:
        raise UsageError(f"{path} not found: is {directory} an fnn run directory?") from None
    except DataError as err:
        raise UsageError(str(err)) from None


def checkpoint_of(
    directory: Path, run: dict[str, Any], config: Config, expected: Any
) -> TrainState[Any, Any]:
    """The checkpoint to resume, after checking it belongs to the run in ``directory``.

    Raises:
        UsageError: no checkpoint, a checkpoint of another run (its run id differs from
            ``run.json``'s), of another configuration (naming the options that differ), or
            holding something else than a training state of params like ``expected`` (a
            tree of :func:`fnn.nn.placeholder` arrays: the one "params fit" check), or
            one holding NaN or infinity where :func:`fnn.train.check_finite` refuses it.
    """
    path = directory / CHECKPOINTS / callbacks.LAST
    if not path.is_file():
        raise UsageError(f"{path} not found: nothing to resume")
    meta = io.load_metadata(path)
    run_id = run.get("run_id")
    if not isinstance(run_id, str):
        raise UsageError(
            f"{directory / RUN_FILE} carries no run id (written before runs had one), so "
            "its checkpoint cannot be matched to it: start a new run"
        )
    if meta.get("run_id") != run_id:
        raise UsageError(
            f"{path} is not a checkpoint of the run in {directory / RUN_FILE} (its run id is "
            f"{meta.get('run_id')!r}, the run's {run_id!r}): it is left from another run; "
            "start a new run instead"
        )
    saved = Config.from_json(meta.get("config"), str(path)).to_json()
    ours = config.to_json()
    differ = [
        f"--{key.replace('_', '-')} {saved.get(key)!r} (run.json: {ours.get(key)!r})"
        for key in sorted(set(saved) | set(ours))
        if key != config.unit and saved.get(key) != ours.get(key)  # the target may grow
    ]
    if differ:
        raise UsageError(f"{path} was trained with another configuration: {', '.join(differ)}")
    state = io.load(path)
    if not isinstance(state, TrainState):
        raise UsageError(f"{path} does not hold a training state")
    found = _tree.mismatch(expected, state.params)
    if found is not None:
        raise UsageError(f"{path} does not hold the params of the run's model: {found}")
    try:  # NaN only where a metric was not measured (val_loss without validation)
        check_finite(state)
    except ValueError as err:
        raise UsageError(f"{path}: {err}") from None
    return state


def finished(directory: Path, record: dict[str, Any], fingerprint: str) -> bool:
    """Whether a run's final phase is done for params of ``fingerprint``: ``run.json``
    holds the test results of those params, and ``model.npz`` holds them."""
    if record.get("params_sha256") != fingerprint or "test" not in record:
        return False
    path = directory / MODEL_FILE
    try:
        return _tree.fingerprint(io.load_model(path).params) == fingerprint
    except (OSError, ValueError):
        return False


__all__ = [
    "CHECKPOINTS",
    "MAX_RUN_RECORD",
    "MODEL_FILE",
    "PLOTS",
    "RUN_FILE",
    "STEPS_FILE",
    "check_out",
    "checkpoint_of",
    "finished",
    "forget_run",
    "prepare_out",
    "read_run",
    "run_lock",
    "write_json",
]
