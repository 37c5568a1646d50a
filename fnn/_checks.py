"""Input validation shared by fnn's public entry points (private).

Every check raises ``TypeError`` (wrong kind or dtype) or ``ValueError`` (wrong shape,
range or value) with a message that names what was expected and what came.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from ._types import Array

_SUM_DTYPE = {np.dtype(np.float16): np.dtype(np.float32)}
"""The dtype :func:`finite` sums an array of a dtype in, where it is not the array's."""


def float_array(x: Any, what: str, dtype: np.dtype[Any] | None = None) -> Array:
    """Return ``x`` if it is a floating NumPy array (of ``dtype`` when given), else raise."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(
            f"{what} must be a float array ({dtype or 'float16, float32 or float64'}), got dtype "
            f"{x.dtype}; convert it first, e.g. x.astype(np.float32) / 255 for uint8 images"
        )
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{what} must have dtype {dtype} (the parameters' dtype), got {x.dtype}; "
            f"convert it with x.astype(np.{dtype})"
        )
    return x


def float_dtype(dtype: Any, what: str = "parameters") -> np.dtype[Any]:
    """``dtype`` as a NumPy dtype if it is float32 or float64 (fnn computes in those two).

    Raises:
        TypeError: any other dtype (``what`` names what it was for).
    """
    dt: np.dtype[Any] = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{what} must be float32 or float64, got dtype {dt}")
    return dt


def finite(x: Array, what: str) -> Array:
    """Return ``x`` if every entry is finite, else raise naming the first bad entry.

    One pairwise sum decides the common case; a sum that is not finite (a NaN or an
    infinity in ``x``, or finite values whose sum overflows) falls back to the exact
    elementwise test, so the answer never depends on the sum. The sum runs without
    overflow or invalid-value warnings, and float16 is summed in float32, whose range no
    sum of float16 values reaches (the fast path stays the common case for float16 too).
    """
    if x.size == 0:
        return x
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(x, axis=None, dtype=_SUM_DTYPE.get(x.dtype))
    if np.isfinite(total):
        return x
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(
        f"{what} must hold finite values, got {x[where]} at index {where} "
        f"({int(bad.sum())} non-finite entries in all)"
    )


def finite_leaves(leaves: Iterable[tuple[str, Any]]) -> None:
    """Raise for the first ``(name, leaf)`` whose float or complex values are not all
    finite, as :func:`finite` does, naming the leaf: ``"params[1].w must hold finite
    values, got nan at index (3, 0) (2 non-finite entries in all)"``.

    Args:
        leaves: names and leaves (arrays, NumPy scalars or Python numbers), in the order
            to search; bool and integer leaves are always finite.
    """
    for name, leaf in leaves:
        array = np.asarray(leaf)
        if array.dtype.kind in "fc":
            finite(array, name)


def shape(value: Any, what: str, least: int = 1) -> tuple[int, ...]:
    """``value`` as a tuple of ints, each at least ``least``, of fewer than 2**63 entries in
    all (the shape of an example, the batch axis excluded, or of a param).

    Raises:
        TypeError: not a tuple of such ints (``what`` names whose shape it is).
        ValueError: 2**63 entries or more.
    """
    if not isinstance(value, tuple) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= least for d in value
    ):
        kind = "in_shape as a tuple of positive ints" if least == 1 else "a tuple of ints >= 0"
        raise TypeError(f"{what} needs {kind}, got {value!r}")
    if math.prod(value) >= 2**63:
        raise ValueError(f"{what} needs fewer than 2**63 entries, got {value}")
    return tuple(int(d) for d in value)


def int_vector(x: Any, what: str, kind: str = "integers") -> Array:
    """Return ``x`` if it is a 1-d NumPy array of an integer dtype, else raise.

    Raises:
        TypeError: not a NumPy array, or not of an integer dtype (``"{what} must be
            {kind}, got dtype ..."``).
        ValueError: not 1-d.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.kind not in "iu":
        raise TypeError(f"{what} must be {kind}, got dtype {x.dtype}")
    if x.ndim != 1:
        raise ValueError(f"{what} must have shape (n,), got {x.shape}")
    return x


def real(value: Any, what: str) -> float:
    """Return ``value`` as a Python float if it is a real number (not a bool or str)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    return float(value)


def positive(value: Any, what: str) -> float:
    """``value`` as a float if it is a finite number > 0, else a ValueError."""
    number = real(value, what)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{what} must be a finite number > 0, got {value}")
    return number


def fraction(value: Any, what: str) -> float:
    """``value`` as a float if it is in [0, 1), else a ValueError."""
    number = real(value, what)
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value}")
    return number


MAX_INT = 2**63 - 1
"""The largest count fnn takes (epochs, batch sizes, widths...): what fits in 64 bits."""


def positive_int(value: Any, what: str, least: int = 1) -> int:
    """Return ``value`` as an int if it is an int in ``[least, 2**63)``, else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < least:
        raise ValueError(f"{what} must be >= {least}, got {value}")
    if value > MAX_INT:
        raise ValueError(f"{what} must fit in 64 bits (at most 2**63 - 1), got {value}")
    return int(value)


def labels(
    y: Any,
    n_classes: int,
    batch: int | tuple[int, ...],
    what: str = "labels",
    *,
    ignore: bool = False,
) -> Array:
    """Return integer class labels ``y`` of shape ``(batch,)`` (or the shape ``batch``
    names) in ``[0, n_classes)``; with ``ignore``, ``-1`` (no target here) is allowed too."""
    shape = (batch,) if isinstance(batch, int) else batch
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{what} must be a NumPy array, got {type(y).__name__}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"integer {what} must have an integer dtype, got {y.dtype}")
    if y.shape != shape:
        raise ValueError(f"{what} must have shape {shape} to match the batch, got {y.shape}")
    if y.size:
        low, high = int(np.minimum.reduce(y, axis=None)), int(np.maximum.reduce(y, axis=None))
        least = -1 if ignore else 0
        if low < least or high >= n_classes:
            bad = low if low < least else high
            also = " or -1 (no target)" if ignore else ""
            raise ValueError(
                f"{what} must be in [0, {n_classes}){also} for {n_classes} classes, got {bad}"
            )
    return y


def row_indices(indices: object, n: int, what: str = "indices") -> Array:
    """Return ``indices`` if it is a 1-D integer array of rows in ``[0, n)`` (of ``n``
    examples), else a TypeError (not a 1-D integer array: a bool mask is refused, as
    is a negative index, which NumPy would read from the end) or a ValueError."""
    if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu" or indices.ndim != 1:
        got = (
            f"a {indices.dtype} array of shape {indices.shape}"
            if isinstance(indices, np.ndarray)
            else f"{indices!r:.60}"
        )
        raise TypeError(f"{what} must be a 1-D integer array of row numbers, got {got}")
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= n):
        bad = int(indices.min()) if int(indices.min()) < 0 else int(indices.max())
        raise ValueError(f"{what} must be in [0, {n}) for {n} examples, got {bad}")
    return indices


def pair(value: object, what: str, names: str) -> tuple[Any, Any]:
    """``value``'s two items if it is a pair (a tuple, a NamedTuple or a list of two),
    else a TypeError: ``"{what} must be a pair {names}, got ..."``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        got = (
            f"a {type(value).__name__} of {len(value)}"
            if isinstance(value, (tuple, list))
            else type(value).__name__
        )
        raise TypeError(f"{what} must be a pair {names}, got {got}")
    return value[0], value[1]
