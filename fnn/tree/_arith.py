"""Leafwise arithmetic on trees (private; see :mod:`fnn.tree`)."""

from __future__ import annotations

import builtins
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

from ._structure import flatten, flatten_like, leaves, unflatten

T = TypeVar("T")


def map(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``f`` leaf by leaf to one tree, or to several trees of the same structure.

    ``map(f, a, b)`` returns a tree shaped like ``a`` whose leaves are ``f(leaf_a, leaf_b)``.

    Raises:
        ValueError: the trees do not share one structure (the message says where).
    """
    first, treedef = flatten(tree)
    others = [flatten_like(treedef, r, "trees passed to fnn.tree.map") for r in rest]
    return unflatten(treedef, [f(*xs) for xs in zip(first, *others)])


def add(a: T, b: T) -> T:
    """Leafwise ``a + b`` of two trees of the same structure."""
    return cast(T, map(np.add, a, b))


def sub(a: T, b: T) -> T:
    """Leafwise ``a - b`` of two trees of the same structure."""
    return cast(T, map(np.subtract, a, b))


def scale(s: float, a: T) -> T:
    """Leafwise ``s * a``; ``s`` acts as a Python float, so float32 leaves stay float32."""
    factor = float(s)
    return cast(T, map(lambda x: np.multiply(x, factor), a))


def zeros_like(a: T) -> T:
    """A tree like ``a`` whose leaves are zeros of the same shapes and dtypes."""
    return cast(T, map(np.zeros_like, a))


def astype(a: T, dtype: Any) -> T:
    """A tree like ``a`` with every floating leaf converted to ``dtype`` (others unchanged)."""
    target = np.dtype(dtype)

    def convert(x: Any) -> Any:
        arr = np.asarray(x)
        if np.issubdtype(arr.dtype, np.floating):
            return arr.astype(target)
        return x

    return cast(T, map(convert, a))


def _dot(x: Any, y: Any) -> float:
    """``sum(x * y)`` of two flat arrays as a Python float: in their dtype, and again in
    float64 when that overflows to infinity or underflows to zero with nonzero entries
    (float32 squares past 1.8e19 or below 1e-23), so that a float32 tree's norm is its
    norm, not inf or 0."""
    found = float(np.vdot(x, y))
    if np.asarray(x).dtype == np.float64 or (math.isfinite(found) and found != 0.0):
        return found
    if found == 0.0 and not (np.any(x) and np.any(y)):
        return found
    return float(np.vdot(np.asarray(x, np.float64), np.asarray(y, np.float64)))


def vdot(a: Any, b: Any) -> float:
    """The sum over leaves of ``sum(a_leaf * b_leaf)``, as a Python float (recomputed in
    float64 where a leaf's sum overflows or underflows in its own dtype)."""
    first, treedef = flatten(a)
    second = flatten_like(treedef, b, "trees passed to fnn.tree.vdot")
    return builtins.sum(
        _dot(np.asarray(x).ravel(), np.asarray(y).ravel()) for x, y in zip(first, second)
    )


def global_norm(a: Any) -> float:
    """The Euclidean norm of all leaves of a tree taken together, as a Python float (a
    float32 leaf whose sum of squares overflows or underflows in float32 is summed in
    float64: ``global_norm(np.full(4, 1e20, np.float32))`` is 2e20, not inf; and where
    the float64 sum overflows or underflows with finite entries, every entry is divided
    by the largest magnitude first and the norm scaled back: ``global_norm(np.full(4,
    1e200))`` is 2e200). The norm of entries with an inf is inf, with a NaN NaN."""
    arrays = [np.ravel(v) for v in leaves(a)]
    total = builtins.sum(_dot(x, x) for x in arrays)
    if sys.float_info.min <= total < math.inf or math.isnan(total):  # normal: full digits
        return math.sqrt(total)
    largest = builtins.max((float(np.max(np.abs(x))) for x in arrays if x.size), default=0.0)
    if largest == 0.0 or not math.isfinite(largest):
        return math.sqrt(total)  # all zeros (0), or an inf among the entries (inf)
    scaled = builtins.sum(_dot(y, y) for y in (np.asarray(x, np.float64) / largest for x in arrays))
    return largest * math.sqrt(scaled)


def size(tree: Any) -> int:
    """The total number of scalar entries over all leaves."""
    return builtins.sum(int(np.size(x)) for x in leaves(tree))
