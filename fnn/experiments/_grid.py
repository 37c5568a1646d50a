"""Grids of settings and sets of seeds: parsing, expanding, naming (private; see
:mod:`fnn.experiments`)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import TypeVar

from .._checks import MAX_INT

V = TypeVar("V")

MAX_RUNS = 100_000
"""The most runs one sweep may hold (a typo like ``--seeds 0-99999999`` is refused)."""


def parse_seeds(text: str) -> tuple[int, ...]:
    """The seeds ``text`` names: integers and inclusive ranges, comma-separated, in the
    order given, each once (``"0-4"`` is 0, 1, 2, 3, 4; ``"0-2,7"`` is 0, 1, 2, 7).

    Raises:
        ValueError: a malformed part, a range running backwards, a seed outside
            ``[0, 2**63)``, or more than :data:`MAX_RUNS` seeds.
    """
    seeds: dict[int, None] = {}  # insertion-ordered, and a set for "each once"
    for part in text.split(","):
        found = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if found is None:
            raise ValueError(f"expected seeds like 0-4 or 0,3,7, got {text!r}")
        first = int(found.group(1))
        last = first if found.group(2) is None else int(found.group(2))
        if last < first or last > MAX_INT:
            raise ValueError(
                f"expected ranges low-high of seeds in [0, 2**63) with low <= high, got {part!r}"
            )
        if len(seeds) + last - first + 1 > MAX_RUNS:
            raise ValueError(f"at most {MAX_RUNS} seeds, got {text!r}")
        seeds.update(dict.fromkeys(range(first, last + 1)))
    return tuple(seeds)


def expand(grid: Mapping[str, Sequence[V]]) -> list[dict[str, V]]:
    """Every setting of a grid: the product of its values, the first name slowest.

    >>> expand({"optimizer": ["adam", "sgd"], "lr": [0.1, 0.01]})  # doctest: +NORMALIZE_WHITESPACE
    [{'optimizer': 'adam', 'lr': 0.1}, {'optimizer': 'adam', 'lr': 0.01},
     {'optimizer': 'sgd', 'lr': 0.1}, {'optimizer': 'sgd', 'lr': 0.01}]

    Raises:
        ValueError: a name with no values, a value given twice, or more than
            :data:`MAX_RUNS` settings.
    """
    size = 1
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or len(values) == 0:
            raise ValueError(f"the grid's {name!r} must be a sequence of values, got {values!r}")
        if len({repr(v) for v in values}) != len(values):
            raise ValueError(f"the grid's {name!r} holds a value twice: {list(values)!r}")
        size *= len(values)
    if size > MAX_RUNS:
        raise ValueError(f"the grid has {size} settings, more than {MAX_RUNS}")
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]


def run_name(setting: Mapping[str, object], seed: int) -> str:
    """The directory name of a run: ``name=value`` pairs and ``seed=N``, comma-separated
    (``optimizer=adam,lr=0.001,seed=0``), each character that is not a letter, a digit or
    one of ``._+-`` shown as ``_``."""
    pairs = [f"{name}={_text(value)}" for name, value in setting.items()]
    return ",".join([*pairs, f"seed={seed}"])


def _text(value: object) -> str:
    shown = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
    return re.sub(r"[^A-Za-z0-9._+-]", "_", shown.replace(",", "+"))[:60]


__all__ = ["MAX_RUNS", "expand", "parse_seeds", "run_name"]
