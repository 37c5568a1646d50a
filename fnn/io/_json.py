"""Strict JSON for fnn files (private): what may be written, and a bounded parse.

fnn writes and reads plain JSON only: ``None``, ``bool``, ``int`` (from ``-2**63`` to
``2**64 - 1``, what an int64 or a uint64 holds),
finite ``float``, ``str``, lists and objects with ``str`` keys. No ``NaN``/``Infinity``,
no duplicate keys, and at most :data:`MAX_DEPTH` levels of nesting, so a hostile file
cannot exhaust the stack.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn

import numpy as np

from ._format import MAX_DEPTH, FormatError

INT_MIN = -(2**63)
"""The least int a description may hold (int64's)."""

INT_MAX = 2**64 - 1
"""The greatest int a description may hold (uint64's)."""

_INT_RANGE = "int64 or uint64: -2**63 to 2**64 - 1"

_READ_INT_MIN = -(2**64 - 1)
"""The least int a description is read with: what fnn's save took until 2026-12-08, so
that files it wrote then still load (save now keeps to ``INT_MIN``)."""


def check_json(value: Any, where: str, max_depth: int = MAX_DEPTH, depth: int = 0) -> Any:
    """``value`` as plain JSON data (tuples become lists), or raise.

    Args:
        value: the data to check.
        where: how to name ``value`` in an error message, e.g. ``"metadata"``.
        max_depth: the most levels of lists and dicts allowed.

    Returns:
        A copy made of ``None``, ``bool``, ``int``, ``float``, ``str``, ``list`` and
        ``dict`` only, equal to ``value`` except that tuples became lists.

    Raises:
        TypeError: something that is not JSON data (a NumPy scalar, an array, a set, a
            dict key that is not a ``str``), naming where it is.
        ValueError: a non-finite float, an int outside ``INT_MIN..INT_MAX``, or nesting deeper than
            ``max_depth`` (a list that contains itself also ends here).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if type(value) is int:
        if not INT_MIN <= value <= INT_MAX:
            raise ValueError(f"{where}: ints must fit in 64 bits ({_INT_RANGE}), got {value}")
        return value
    if type(value) is float:
        if not math.isfinite(value):
            raise ValueError(
                f"{where}: JSON has no {value}; store None or a string such as 'inf' instead"
            )
        return value
    if isinstance(value, (list, tuple, Mapping)) and depth >= max_depth:
        raise ValueError(f"{where}: nests deeper than {max_depth} levels (or contains itself)")
    if isinstance(value, (list, tuple)):
        return [check_json(v, f"{where}[{i}]", max_depth, depth + 1) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: JSON object keys must be str, got the key {k!r}")
            out[k] = check_json(v, f"{where}[{k!r}]", max_depth, depth + 1)
        return out
    hint = ""
    if hasattr(value, "item") and hasattr(value, "dtype"):
        hint = " (convert NumPy values with .item() or .tolist())"
    raise TypeError(
        f"{where}: expected JSON data (None, bool, int, float, str, list, tuple or dict "
        f"with str keys), got {type(value).__name__}{hint}"
    )


def encode(value: Any) -> bytes:
    """The canonical JSON encoding fnn writes: sorted keys, no spaces, ASCII, UTF-8 bytes."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.encode("ascii")


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How many levels of lists and dicts the parsed JSON ``value`` nests (a scalar is 0),
    without recursion.

    Walks one level at a time, holding references to the next level's values only (no
    object per value), and stops once past ``limit``, returning ``limit + 1``.
    """
    level: list[Any] = [value]
    deepest = 0
    while deepest <= limit:
        below: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                below.extend(item.values())
            elif isinstance(item, list):
                below.extend(item)
        if not below and not any(isinstance(item, (dict, list)) for item in level):
            return deepest
        deepest += 1
        level = below
    return limit + 1


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
"""A JSON string, its closing quote optional: every match succeeds, so the scan stays
linear (a required quote made an unterminated string of escapes rescan to the end from
each quote: quadratic, days for a 16 MiB description)."""
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_CHUNK = 2**20


def text_depth(data: bytes) -> int:
    """How many levels of lists and objects the JSON text ``data`` (UTF-8) nests: the most
    brackets open at once outside strings, found in one pass over the bytes, before (and
    without) parsing them.

    For valid JSON this is :func:`depth` of the parsed value; for invalid JSON it is a
    number the parser refuses anyway. It takes two copies of ``data`` at most, never an
    object per value.
    """
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    # '[' and '{' have bit 1 set, ']' and '}' clear: +1 opens a level, -1 closes one.
    steps = (np.frombuffer(brackets, np.uint8) & 2).astype(np.int8) - 1
    deepest = level = 0
    for start in range(0, len(steps), _CHUNK):
        levels = np.cumsum(steps[start : start + _CHUNK], dtype=np.int64) + level
        deepest = max(deepest, int(levels.max()))
        level = int(levels[-1])
    return deepest


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is out of range")
    return number


def _int_in_range(text: str) -> int:
    number = int(text)
    if not _READ_INT_MIN <= number <= INT_MAX:
        raise ValueError(f"the int {text[:40]} does not fit in 64 bits ({_INT_RANGE})")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k[:80]!r}")
            seen.add(k)
    return out


def parse(data: bytes, what: str) -> Any:
    """Parse strict JSON from UTF-8 ``data`` (``what`` names it in errors).

    Raises:
        FormatError: not UTF-8, not JSON, NaN/Infinity or out-of-range numbers (floats
            beyond float64, ints outside ``INT_MIN..INT_MAX``), duplicate
            object keys, or nesting deeper than :data:`MAX_DEPTH`.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{what} is not UTF-8 text: {e}") from None
    if text_depth(data) > MAX_DEPTH:
        raise FormatError(f"{what} nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_int_in_range,
        )
    except RecursionError:
        raise FormatError(f"{what} nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise FormatError(f"{what} is not valid JSON: {e}") from None
    return value
