"""Comparing trees: bitwise, approximately, and by fingerprint (private; see :mod:`fnn.tree`)."""

from __future__ import annotations

import builtins
import hashlib
from typing import Any

import numpy as np

from ._structure import flatten, flatten_like


def equal(a: Any, b: Any) -> bool:
    """Whether two trees are bit-identical: same structure, dtypes, shapes and bytes."""
    la, da = flatten(a)
    lb, db = flatten(b)
    if da != db:
        return False
    for x, y in zip(la, lb):
        xa, ya = np.asarray(x), np.asarray(y)
        if xa.dtype != ya.dtype or xa.shape != ya.shape or xa.tobytes() != ya.tobytes():
            return False
    return True


def allclose(a: Any, b: Any, rtol: float = 1e-7, atol: float = 0.0) -> bool:
    """Whether two trees of the same structure are leafwise close (``np.allclose``)."""
    la, da = flatten(a)
    lb, db = flatten(b)
    if da != db:
        return False
    return all(
        np.shape(x) == np.shape(y) and bool(np.allclose(x, y, rtol=rtol, atol=atol))
        for x, y in zip(la, lb)
    )


def max_abs_difference(a: Any, b: Any) -> float:
    """The largest ``|a - b|`` over all leaves of two trees of the same structure."""
    la, da = flatten(a)
    lb = flatten_like(da, b, "trees passed to fnn.tree.max_abs_difference")
    diffs = [float(np.max(np.abs(np.subtract(x, y)), initial=0.0)) for x, y in zip(la, lb)]
    return builtins.max(diffs, default=0.0)


def fingerprint(tree: Any) -> str:
    """A SHA-256 hex digest of a tree's structure, dtypes, shapes and bytes.

    Bit-identical trees have equal fingerprints; any change of a bit, a shape, a dtype
    or the structure changes it (with overwhelming probability).
    """
    values, treedef = flatten(tree)
    digest = hashlib.sha256(str(treedef).encode())
    for value in values:
        arr = np.ascontiguousarray(value)
        digest.update(f"|{arr.dtype.str}{arr.shape}|".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()
