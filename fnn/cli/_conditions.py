"""The conditions of a run: what decides its bits beside its configuration and its data
(private; see :mod:`fnn.cli`).

``fnn train`` records them in ``run.json`` (``conditions``) when a run begins;
``--resume`` compares them with the resuming process's and refuses a change that changes
the bits (:data:`BIT_DECIDING`) unless ``--allow-changed-conditions`` is given, which
records the change (``condition_changes``); ``fnn replay`` names those that differ from
the replaying machine's.
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _blas, parallel
from ..train import TrainState
from ._config import Config, UsageError

BIT_DECIDING = (
    "blas",
    "blas_version",
    "blas_core",
    "blas_threads",
    "cpu",
    "numpy",
    "python",
    "shards",
)
"""The conditions a change of which may change a run's bits: the BLAS library, its
release, the kernels it chose for the CPU (its core) and its thread count (products sum
in other orders), the CPU, NumPy's and Python's releases, the shard count (gradients summed
in other groups). ``threads`` decides the bits only through ``blas_threads`` (shards on
threads give the same bits), ``processes`` never (:mod:`fnn.parallel`)."""

NAMES = {
    "blas": "the BLAS library",
    "blas_version": "the BLAS version",
    "blas_core": "the BLAS core type",
    "blas_threads": "the BLAS thread count",
    "cpu": "the CPU",
    "numpy": "NumPy",
    "python": "Python",
    "shards": "the shard count",
    "threads": "the thread count (--threads)",
    "processes": "the process count",
}
"""Each condition in words, for messages."""


def current(threads: int, shards: int, comm: Any) -> dict[str, Any]:
    """The conditions this process trains under now: ``threads`` (``--threads``), the BLAS
    thread count NumPy's OpenBLAS has now (None for another BLAS), the BLAS build, the
    CPU model, NumPy's and Python's versions, the processes of ``comm`` and ``shards``.
    Call it after the BLAS thread count is set."""
    build = _blas.build()
    return {
        "threads": threads,
        "blas": build["library"],
        "blas_version": build["version"],
        "blas_core": build["core"],
        "blas_threads": _blas.threads(),
        "cpu": cpu_model(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "processes": parallel.rank_and_size(comm)[1],
        "shards": shards,
    }


def _threads_hint(recorded: dict[str, Any], shards: int, comm: Any) -> str:
    """How to resume on the run's BLAS thread count under this process count: the
    ``--threads`` that gives it here (the run's own, the count itself or 1, the first that
    does), or, where none can (shards take the threads), the run's process count."""
    wanted = recorded.get("blas_threads")
    if not isinstance(wanted, int):
        return ""
    tried = [recorded.get("threads"), wanted, 1]
    for threads in dict.fromkeys(t for t in tried if isinstance(t, int) and t >= 1):
        if parallel.thread_plan(threads, shards, comm)[1] == wanted:
            return f" (--threads {threads})"
    processes = parallel.rank_and_size(comm)[1]
    return (
        f" (with {shards} shards on {processes} process{'es' if processes > 1 else ''} no "
        f"--threads gives BLAS {wanted} threads: resume on the run's "
        f"{recorded.get('processes')} processes)"
    )


def cpu_model() -> str:
    """The CPU's model name (Linux's ``/proc/cpuinfo``), else what ``platform`` knows: the
    ``cpu`` of a run's recorded conditions, and what the benchmarks print beside figures."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def latest(record: Mapping[str, Any]) -> dict[str, Any]:
    """The conditions a run record says the run trained under last: its ``conditions``
    with each recorded change (``condition_changes``) applied. Records written before
    runs recorded them give what they hold (nothing, or the conditions of their final
    phase)."""
    found = record.get("conditions")
    conditions = dict(found) if isinstance(found, dict) else {}
    for change in changes(record):
        conditions.update({name: pair[1] for name, pair in change["changed"].items()})
    return conditions


def changes(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The recorded changes of a run's conditions (well-formed entries only), in order:
    each ``{"after": epochs (or intervals) done, "changed": {name: [before, after]}}``."""
    return _entries(
        record,
        "condition_changes",
        lambda c: isinstance(c.get("changed"), dict) and all(map(_is_pair, c["changed"].values())),
    )


def target_changes(record: Mapping[str, Any], unit: str) -> list[dict[str, Any]]:
    """The recorded extensions of a run's target (well-formed entries only), in order:
    each ``{"after": epochs (or intervals) done, unit: [before, after]}``; ``unit`` is
    ``"epochs"``, or ``"steps"`` for a language model."""
    return _entries(record, "target_changes", lambda c: _is_pair(c.get(unit)))


def _entries(
    record: Mapping[str, Any], key: str, well_formed: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """The entries of the record's list ``key`` that are objects with an int ``after``
    and pass ``well_formed``, in order (a hand-edited record's others are left out)."""
    found = record.get(key)
    if not isinstance(found, list):
        return []
    return [
        c
        for c in found
        if isinstance(c, dict) and isinstance(c.get("after"), int) and well_formed(c)
    ]


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2


def differences(
    recorded: Mapping[str, Any], now: Mapping[str, Any], names: Sequence[str] | None = None
) -> dict[str, list[Any]]:
    """The conditions (of ``names``, default all) that ``recorded`` holds and ``now``
    gives another value: ``{name: [recorded, now]}``. A condition a record does not hold
    (an older record) is not a difference."""
    keys = [n for n in (names if names is not None else now) if n in recorded and n in now]
    return {n: [recorded[n], now[n]] for n in keys if recorded[n] != now[n]}


def describe(changed: Mapping[str, Sequence[Any]], was: str, now: str) -> str:
    """Differences in words: ``the BLAS thread count 1 (the run's) -> 2 (this process's)``."""
    return "; ".join(
        f"{NAMES.get(name, name)} {pair[0]!r} ({was}) -> {pair[1]!r} ({now})"
        for name, pair in changed.items()
    )


def run_entries(
    record: Mapping[str, Any] | None,
    state: TrainState[Any, Any] | None,
    config: Config,
    args: argparse.Namespace,
    comm: Any,
) -> dict[str, Any]:
    """The entries of ``run.json`` that a run's start, or its resume from ``state``, sets
    beside its configuration: ``conditions`` (:func:`current`) for a new run; on resume,
    each change of the conditions or of the target appended to ``condition_changes`` or
    ``target_changes`` (``{"after": epochs (intervals) done, ...: [before, after]}``).

    Raises:
        UsageError: on resume, a condition of :data:`BIT_DECIDING` that differs from the
            one the run trained under last, naming each, unless ``args`` allows it
            (``--allow-changed-conditions``).
    """
    unit = config.unit
    now = current(args.threads, config.general["shards"], comm)
    if record is None or state is None or not isinstance(record.get("conditions"), dict):
        return {"conditions": now}  # a new run, or one recorded before its conditions were
    entries: dict[str, Any] = {}
    changed = differences(latest(record), now)
    bits = {name: pair for name, pair in changed.items() if name in BIT_DECIDING}
    if bits and not getattr(args, "allow_changed_conditions", False):
        hint = ""
        if "blas_threads" in bits:
            hint = _threads_hint(latest(record), config.general["shards"], comm)
        raise UsageError(
            f"--resume: the run trained under other conditions, which decide its bits: "
            f"{describe(bits, 'the run', 'now')}; resume under the run's conditions{hint}, or "
            "give --allow-changed-conditions to train on under these (run.json records the "
            "change; the run then no longer repeats bit for bit)"
        )
    if changed:
        entries["condition_changes"] = [
            *changes(record),
            {"after": state.epoch, "changed": changed},
        ]
    config_before = record.get("config")
    before = config_before.get(unit) if isinstance(config_before, dict) else None
    if isinstance(before, int) and before != config.general[unit]:
        entries["target_changes"] = [
            *target_changes(record, unit),
            {"after": state.epoch, unit: [before, config.general[unit]]},
        ]
    return entries


__all__ = [
    "run_entries",
    "target_changes",
    "BIT_DECIDING",
    "NAMES",
    "changes",
    "cpu_model",
    "current",
    "describe",
    "differences",
    "latest",
]
