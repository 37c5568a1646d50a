"""``fnn.sweep``: a training function over a grid of settings and a set of seeds, each
run in its own directory with its own ``run.json`` (private; see
:mod:`fnn.experiments`)."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import attrs

from .._atomic import write_bytes_atomic
from .._files import MAX_RUN_RECORD, RUN_FILE, read_json_object
from .._lock import directory_lock
from ..data import DataError
from ._grid import MAX_RUNS, expand, run_name
from ._pool import default_workers, run_tasks

C = TypeVar("C")
V = TypeVar("V")

SWEEP_FILE = "sweep.json"
"""The file that says what a sweep directory holds (its runs), written when it begins."""


class SweepError(Exception):
    """A sweep that cannot go on: its directory holds something else, another sweep is
    running in it, or a run failed."""


@attrs.frozen(eq=False)
class Run(Generic[C]):
    """One run of a sweep.

    Attributes:
        config: the setting it ran (a value of the grid, or one of the configs given).
        seed: its seed.
        directory: its directory (``out/<name>``).
        record: its ``run.json``: what the training function returned, with ``config``
            (as JSON), ``seed``, ``name`` and, unless the function gave one,
            ``timing.wall_seconds``.
    """

    config: C
    seed: int
    directory: Path
    record: dict[str, Any]


@overload
def sweep(
    train_fn: Callable[[dict[str, V], int], Mapping[str, Any]],
    grid: Mapping[str, Sequence[V]],
    seeds: Sequence[int],
    *,
    out: str | Path,
    workers: int | None = None,
    comm: Any = None,
) -> list[Run[dict[str, V]]]: ...


@overload
def sweep(
    train_fn: Callable[[C, int], Mapping[str, Any]],
    grid: Sequence[C],
    seeds: Sequence[int],
    *,
    out: str | Path,
    workers: int | None = None,
    comm: Any = None,
) -> list[Run[C]]: ...


def sweep(
    train_fn: Callable[[Any, int], Mapping[str, Any]],
    grid: Mapping[str, Sequence[Any]] | Sequence[Any],
    seeds: Sequence[int],
    *,
    out: str | Path,
    workers: int | None = None,
    comm: Any = None,
) -> list[Run[Any]]:
    """Run ``train_fn(config, seed)`` for every setting of ``grid`` and every seed, each
    run in its own directory ``out/<name>`` (``name`` as ``lr=0.01,seed=3``) holding its
    ``run.json``, spread over worker processes; returns the runs in grid order (settings
    slowest, seeds fastest), their configs of the grid's type.

    The record ``train_fn`` returns is JSON data; :func:`fnn.experiments.summarize` and
    ``fnn compare`` read from it ``test`` (``{"accuracy": ..., "loss": ...}``),
    ``epochs`` (a list of ``{"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}``,
    as :class:`fnn.train.EpochMetrics` gives with ``attrs.asdict``) and ``timing``
    (``{"wall_seconds": ...}``, measured here when absent), as ``fnn train`` writes them.

    Started again on the same ``out`` with the same grid and seeds, a sweep skips the
    runs that have a ``run.json`` and runs the others again from their start: a run is a
    function of its config and seed, so it ends with the bits it would have had. A
    different grid or seeds on the same ``out`` is refused; so is a second sweep on it
    while one runs (the directory's lock, the one ``fnn train`` holds on a run
    directory).

    Args:
        train_fn: ``train_fn(config, seed) -> record``; run in a worker process (forked:
            a closure works), with one BLAS thread.
        grid: ``{name: values}`` (each config a dict of one value per name, their
            product in order) or a sequence of configs (dicts or attrs records of JSON
            values).
        seeds: the seeds, each run with every config.
        out: the sweep's directory (made if missing; it must be empty or hold this
            sweep).
        workers: worker processes (default: one per core; 1 runs them in this process);
            under MPI (``comm`` of several processes) each process is one worker and
            runs every N-th run.
        comm: ``mpi4py.MPI.COMM_WORLD`` to spread the runs over an MPI job's processes.

    Raises:
        SweepError: ``out`` holds something else, or a run raised (naming it; the other
            runs end first and are kept).
        ValueError: an empty grid or no seeds; a grid of more than 100,000 runs.
        TypeError: a config or a record that is not JSON data.
        fnn.experiments.WorkerDiedError: a worker process died (finished runs are kept).

    >>> import tempfile, fnn
    >>> def train(config, seed):
    ...     return {"test": {"accuracy": config["lr"] * 10 + seed, "loss": 1.0}}
    >>> with tempfile.TemporaryDirectory() as out:
    ...     runs = fnn.sweep(train, {"lr": [0.01, 0.02]}, [0, 1], out=out, workers=1)
    ...     [(r.directory.name, r.record["test"]["accuracy"]) for r in runs]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('lr=0.01,seed=0', 0.1), ('lr=0.01,seed=1', 1.1),
     ('lr=0.02,seed=0', 0.2), ('lr=0.02,seed=1', 1.2)]
    """
    configs = expand(grid) if isinstance(grid, Mapping) else list(grid)
    if not configs or not seeds:
        raise ValueError(f"a sweep needs settings and seeds, got {len(configs)} and {len(seeds)}")
    if len(configs) * len(seeds) > MAX_RUNS:
        raise ValueError(f"at most {MAX_RUNS} runs, got {len(configs) * len(seeds)}")
    root = Path(out)
    plan = [(config, _as_json(config), int(seed)) for config in configs for seed in seeds]
    names = [run_name(shown, seed) for _, shown, seed in plan]
    if len(set(names)) != len(names):
        raise ValueError("two runs of the grid would share a directory name; give distinct values")
    spec = {"kind": "fnn.sweep", "runs": [[n, c, s] for n, (_, c, s) in zip(names, plan)]}
    root.mkdir(parents=True, exist_ok=True)
    tasks = [(root / name, config, shown, seed) for name, (config, shown, seed) in zip(names, plan)]

    def work(task: tuple[Path, Any, Any, int]) -> dict[str, Any]:
        return _one(train_fn, *task)

    with contextlib.ExitStack() as stack:
        begin_sweep(root, spec, comm, stack)
        results = run_tasks(work, tasks, workers=workers or default_workers(), comm=comm)
    failed = [r for r in results.values() if "error" in r]
    if failed:
        raise SweepError(f"run {failed[0]['name']} failed: {failed[0]['error']}")
    return [
        Run(config, seed, directory, records_of(directory))
        for directory, config, _, seed in tasks
        if (directory / RUN_FILE).is_file()
    ]


def _one(
    train_fn: Callable[[Any, int], Mapping[str, Any]],
    directory: Path,
    config: Any,
    shown: Any,
    seed: int,
) -> dict[str, Any]:
    """One run, in a worker: skipped when its ``run.json`` is there, else trained and
    recorded; returns ``{"name", "skipped"}`` or ``{"name", "error"}``."""
    name = directory.name
    if (directory / RUN_FILE).is_file():
        return {"name": name, "skipped": True}
    began = time.perf_counter()
    try:
        found = dict(train_fn(config, seed))
    except Exception as err:  # reported by the parent, naming the run
        return {"name": name, "error": f"{type(err).__name__}: {err}"}
    record = {**found, "config": shown, "seed": seed, "name": name}
    timing = record.get("timing")
    if not isinstance(timing, dict) or "wall_seconds" not in timing:
        record["timing"] = {**(timing or {}), "wall_seconds": time.perf_counter() - began}
    directory.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(directory / RUN_FILE, _json_bytes(record, f"the record of run {name}"))
    return {"name": name, "skipped": False}


def _as_json(config: Any) -> Any:
    """A config as JSON data: a mapping's items, an attrs record's fields."""
    if attrs.has(type(config)):
        config = attrs.asdict(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"a config must be a mapping or an attrs record, got {config!r}")
    shown = {str(k): list(v) if isinstance(v, tuple) else v for k, v in config.items()}
    _json_bytes(shown, f"the config {config!r}")
    return shown


def _json_bytes(obj: Any, what: str) -> bytes:
    """``obj`` as indented, key-sorted JSON (no NaN: written ``null``).

    Raises:
        TypeError: ``obj`` is not JSON data.
    """
    try:
        text = json.dumps(_nan_as_null(obj), indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} is not JSON data: {err}") from None
    return (text + "\n").encode()


def _nan_as_null(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _nan_as_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_as_null(v) for v in obj]
    return obj


def sweep_lock(directory: Path) -> Any:
    """The sweep directory's lock (the run-directory lock ``fnn train`` holds).

    Raises:
        SweepError: another sweep (or ``fnn train``) holds it.
    """
    return directory_lock(
        directory,
        lambda: SweepError(
            f"another sweep or search is running in {directory}; wait for it to end, or "
            "choose another directory"
        ),
        lambda err: SweepError(f"cannot open {directory}: {err.strerror or err}"),
    )


def claim(directory: Path, spec: Mapping[str, Any]) -> None:
    """Write ``sweep.json`` (``spec``) into a new or empty sweep directory, or check that
    the one there holds the same sweep.

    Raises:
        SweepError: the directory holds another sweep, a run of ``fnn train``, or other
            files.
    """
    path = directory / SWEEP_FILE
    if path.is_file():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise SweepError(f"cannot read {path}: {err}") from None
        if found != json.loads(_json_bytes(spec, "the sweep")):
            raise SweepError(
                f"{directory} holds another sweep (its {SWEEP_FILE} names other runs or "
                f"options: {_difference(found, spec)}); choose another directory"
            )
        return
    if (directory / RUN_FILE).exists():
        raise SweepError(f"{directory} holds a run of fnn train; choose another directory")
    if any(not p.name.startswith(".") for p in directory.iterdir()):
        raise SweepError(
            f"{directory} is not empty and holds no {SWEEP_FILE}; choose another directory"
        )
    write_bytes_atomic(path, _json_bytes(spec, "the sweep"))


def _difference(found: Any, spec: Mapping[str, Any]) -> str:
    """The first entry where a recorded sweep differs from this one, for messages."""
    if not isinstance(found, dict):
        return "it is not a JSON object"
    for key in sorted(set(found) | set(spec)):
        if found.get(key) != spec.get(key):
            shown = json.dumps(found.get(key))
            return f"{key} {shown[:120]}{'...' if len(shown) > 120 else ''}"
    return "nothing"


def records_of(directory: Path) -> dict[str, Any]:
    """The ``run.json`` of a run directory as a dict: read only from a regular file of
    at most :data:`MAX_RUN_RECORD` bytes.

    Raises:
        SweepError: it cannot be read, is larger, or is not a JSON object.
    """
    try:
        return read_json_object(directory / RUN_FILE, MAX_RUN_RECORD, DataError)
    except (OSError, DataError) as err:
        raise SweepError(str(err)) from None


def begin_sweep(
    directory: Path, spec: Mapping[str, Any], comm: Any, stack: contextlib.ExitStack
) -> None:
    """Begin a sweep in ``directory``: lock it (held until ``stack`` closes) and
    :func:`claim` it; under MPI process 0 does both and tells the others the outcome.

    Raises:
        SweepError: on every process, when process 0 could not.
    """
    error = None
    if comm is None or comm.Get_rank() == 0:
        try:
            stack.enter_context(sweep_lock(directory))
            claim(directory, spec)
        except SweepError as err:
            error = str(err)
        except OSError as err:  # a full disk, no permission: said on every process
            error = f"cannot write {directory / SWEEP_FILE}: {err.strerror or err}"
    if comm is not None and comm.Get_size() > 1:
        error = comm.bcast(error, root=0)
    if error is not None:
        raise SweepError(error)


__all__ = [
    "RUN_FILE",
    "SWEEP_FILE",
    "Run",
    "SweepError",
    "begin_sweep",
    "claim",
    "records_of",
    "sweep",
    "sweep_lock",
]
