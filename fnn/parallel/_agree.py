"""Agreement: every process checks, before training, that all were given the same facts
(private; see :mod:`fnn.parallel`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._comm import Communicator, rank_and_size


class DisagreementError(ValueError):
    """The processes were not given the same facts (:func:`agree`); raised alike on every
    process."""


def agree(comm: Communicator | None, facts: Mapping[str, Any], what: str = "the facts") -> None:
    """Check that every process of ``comm`` was given the same ``facts``; if one was not,
    raise the same :class:`DisagreementError` on every process.

    Every process must call it, at the same point (it is a collective call), before
    anything that only works when the processes agree: the training loop, whose
    exchanges assume the same data sizes, model and configuration everywhere. Two
    collectives gather every process's facts on every process (``Allgather`` of the
    lengths of their JSON texts, then of the texts, padded to the longest), so facts of
    any size, different on each process, arrive whole; each process then compares them
    with process 0's in the same way, so all decide alike and raise the same message, and
    none is left waiting for the others.

    Args:
        comm: the processes (None, or one process: nothing to compare, returns at once).
        facts: what must be equal on every process, as JSON (str keys; str, int, float,
            bool, None, lists and mappings of them): the configuration, the data's
            SHA-256, the data's shapes and dtypes, the model's parameter shapes... A key
            is compared wherever it sits, whatever the order of the keys.
        what: what the facts are, for the message (``"fnn train's setup"``).

    Raises:
        DisagreementError: (a ``ValueError``) on every process, when the facts of some
            process differ from process 0's: the lowest such process and the first key
            where they differ (in process 0's order; inside two lists of one length, the
            first entry that differs) are named in one line, with both values (a string
            up to 100 characters in full, a longer one or a long list shortened)::

                process 1 of 2 disagrees with process 0 on data.sha256.train-labels
                (fnn train's setup): 'cd34...' on process 1, 'ab12...' on process 0

            A key one process lacks shows as ``(absent)``; ``1`` and ``1.0`` differ.
        TypeError: ``facts`` is not a mapping, or not JSON (raised on the process given
            it, before any message is sent).

    >>> agree(None, {"seed": 0, "data": {"sha256": "ab12"}}, what="the run's setup")
    """
    if not isinstance(facts, Mapping):
        raise TypeError(f"facts must be a mapping, got {type(facts).__name__}")
    try:
        text = json.dumps(facts, ensure_ascii=True, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise TypeError(
            "facts must be JSON (str keys; str, int, float, bool, None, lists and mappings "
            f"of them; e.g. list(x.shape), str(x.dtype)): {err}"
        ) from None
    _, size = rank_and_size(comm)
    if comm is None or size == 1:
        return
    texts = _allgather_text(comm, text.encode("ascii"), size)
    for other in range(1, size):
        if texts[other] == texts[0]:
            continue
        found = _first_difference(json.loads(texts[0]), json.loads(texts[other]), "")
        if found is not None:
            key, expected, got = found
            raise DisagreementError(
                f"process {other} of {size} disagrees with process 0 on {key} ({what}): "
                f"{_shown(got)} on process {other}, {_shown(expected)} on process 0"
            )


def _allgather_text(comm: Communicator, data: bytes, size: int) -> list[str]:
    """Every process's ``data``, on every process, in rank order (two ``Allgather``: the
    lengths, then the bytes padded to the longest, so no receive is ever too short)."""
    lengths = np.zeros(size, np.int64)
    comm.Allgather(np.array([len(data)], np.int64), lengths)
    width = max(int(lengths.max()), 1)
    mine = np.zeros(width, np.uint8)
    mine[: len(data)] = np.frombuffer(data, np.uint8)
    every = np.zeros((size, width), np.uint8)
    comm.Allgather(mine, every)
    return [every[r, : lengths[r]].tobytes().decode("ascii") for r in range(size)]


class _Absent:
    """A key one process's facts lack."""

    def __repr__(self) -> str:
        return "(absent)"


_ABSENT: Any = _Absent()


def _first_difference(expected: Any, got: Any, path: str) -> tuple[str, Any, Any] | None:
    """``(key, expected's value, got's value)`` where two JSON values first differ: mapping
    keys in ``expected``'s order, then those only ``got`` has; lists of one length entry
    by entry; anything else compared as canonical JSON (so ``1 != 1.0``). None if equal."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for name in [*expected, *(k for k in got if k not in expected)]:
            key = f"{path}.{name}" if path else str(name)
            found = _first_difference(expected.get(name, _ABSENT), got.get(name, _ABSENT), key)
            if found is not None:
                return found
        return None
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        for i, (a, b) in enumerate(zip(expected, got)):
            found = _first_difference(a, b, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if expected is _ABSENT or got is _ABSENT or _canonical(expected) != _canonical(got):
        return path, expected, got
    return None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


_LONGEST = 100
"""The longest value the message shows in full, in characters (a SHA-256 has 64)."""


def _shown(value: Any) -> str:
    """``value`` for the message: its repr, a long string or list or mapping shortened."""
    text = repr(value)
    if len(text) <= _LONGEST:
        return text
    if isinstance(value, str):
        return f"{value[:40]!r}"[:-1] + f"...' ({len(value)} characters)"
    if isinstance(value, (list, dict)):
        items = (
            [repr(v) for v in value]
            if isinstance(value, list)
            else [f"{k!r}: {v!r}" for k, v in value.items()]
        )
        kept: list[str] = []
        while items and sum(map(len, kept)) + len(items[0]) < _LONGEST // 2:
            kept.append(items.pop(0))
        opening, closing = "[]" if isinstance(value, list) else "{}"
        noun = "items" if isinstance(value, list) else "keys"
        return f"{opening}{', '.join([*kept, '...'])}{closing} ({len(value)} {noun})"
    return text[: _LONGEST - 3] + "..."
