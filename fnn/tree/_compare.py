"""Comparing trees: bitwise, approximately, and by fingerprint (private; see :mod:`fnn.tree`)."""

from __future__ import annotations

import builtins
import hashlib
from typing import Any

import numpy as np

from ._structure import difference, flatten, flatten_like, leaf_paths


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


def mismatch(expected: Any, got: Any, says: str = "expected") -> str | None:
    """Where ``got`` first departs from ``expected`` in structure, or else in a leaf's
    shape or dtype, in words (``"at [1].w: expected float32 (20, 64), got float32
    (20, 32)"``); None when they agree. Only shapes and dtypes are compared, so
    ``expected`` may hold placeholders (what :attr:`fnn.nn.Layer.shapes` describes).
    ``says`` names the expectation in the leaves' case (``"shapes says"``)."""
    want_leaves, want_def = flatten(expected)
    have_leaves, have_def = flatten(got)
    found = difference(want_def, have_def)
    if found is not None:
        return found
    for path, w, h in zip(leaf_paths(want_def), want_leaves, have_leaves):
        w_dtype, h_dtype = np.asarray(w).dtype, np.asarray(h).dtype
        if np.shape(w) != np.shape(h) or w_dtype != h_dtype:
            return (
                f"at {path or 'the root'}: {says} {w_dtype} {np.shape(w)}, "
                f"got {h_dtype} {np.shape(h)}"
            )
    return None
