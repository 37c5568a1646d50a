"""Comparing trees: bitwise, approximately, and by fingerprint (private; see :mod:`fnn.tree`)."""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._structure import TreeDef, difference, flatten, flatten_like, leaf_paths


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
    or the structure (node kinds, record types by their class name, field names, dict
    keys) changes it (with overwhelming probability). Not covered: the values of a
    record's static fields (a layer's stride, say) and the module of a record's class,
    so two records differing only there have one fingerprint (:func:`equal` tells them
    apart). Runs record the fingerprints of their params, so the digest stays as it is
    for those records to keep matching.
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
    ``expected`` may hold placeholders (what :meth:`fnn.nn.Layer.shapes` describes).
    ``says`` names the expectation in the leaves' case (``"inputs of shape (784,) need"``)."""
    want_leaves, want_def = flatten(expected)
    have_leaves, have_def = flatten(got)
    return first_difference(want_def, want_leaves, have_def, have_leaves, says)


def _described(leaf: Any) -> tuple[np.dtype[Any], tuple[int, ...]]:
    """A leaf's dtype and shape: its own attributes (arrays, a file's leaf entries), or
    those of ``np.asarray(leaf)`` (Python numbers)."""
    if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
        return np.dtype(leaf.dtype), tuple(leaf.shape)
    arr = np.asarray(leaf)
    return arr.dtype, arr.shape


def first_difference(
    want_def: TreeDef,
    want_leaves: Sequence[Any],
    have_def: TreeDef,
    have_leaves: Sequence[Any],
    says: str = "expected",
) -> str | None:
    """:func:`mismatch` of two trees already taken apart, whose leaves are anything with a
    ``dtype`` and a ``shape`` (arrays, placeholders, a file's leaf entries) or numbers:
    the one "where do two trees first differ" of fnn (``fnn.io`` compares a file's
    description with it before reading any array)."""
    found = difference(want_def, have_def)
    if found is not None:
        return found
    for path, w, h in zip(leaf_paths(want_def), want_leaves, have_leaves):
        (w_dtype, w_shape), (h_dtype, h_shape) = _described(w), _described(h)
        if w_shape != h_shape or w_dtype != h_dtype:
            return f"at {path or 'the root'}: {says} {w_dtype} {w_shape}, got {h_dtype} {h_shape}"
    return None
