"""Leafwise arithmetic on trees (private; see :mod:`fnn.tree`)."""

from __future__ import annotations

import builtins
import math
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


def vdot(a: Any, b: Any) -> float:
    """The sum over leaves of ``sum(a_leaf * b_leaf)``, as a Python float."""
    first, treedef = flatten(a)
    second = flatten_like(treedef, b, "trees passed to fnn.tree.vdot")
    return builtins.sum(
        float(np.vdot(np.asarray(x).ravel(), np.asarray(y).ravel())) for x, y in zip(first, second)
    )


def global_norm(a: Any) -> float:
    """The Euclidean norm of all leaves of a tree taken together, as a Python float."""
    return math.sqrt(builtins.sum(float(np.vdot(x, x)) for x in (np.ravel(v) for v in leaves(a))))


def size(tree: Any) -> int:
    """The total number of scalar entries over all leaves."""
    return builtins.sum(int(np.size(x)) for x in leaves(tree))
