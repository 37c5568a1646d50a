"""Flat layouts: a tree of same-dtype arrays viewed as one 1-D buffer (private; see
:mod:`fnn.tree`)."""

from __future__ import annotations

import functools
from typing import Any

import attrs
import numpy as np

from .._types import Array
from ._structure import (
    Builder,
    TreeDef,
    buffers,
    builder,
    flatten,
    flatten_like,
    has_static,
    leaf_paths,
    weight_flags,
)


@attrs.frozen(eq=False)
class Layout:
    """How a tree of same-dtype arrays maps onto one flat 1-D buffer (like ``ravel_pytree``).

    Leaf ``i`` occupies ``flat[offsets[i]:offsets[i + 1]]`` in C order. Build one with
    :func:`ravel` (or :func:`layout`); :meth:`unravel` turns a buffer back into a tree of
    views into it.

    Attributes:
        treedef: the tree's structure.
        shapes: each leaf's shape, in flatten order.
        dtype: the dtype of every leaf and of the buffer.
        offsets: where each leaf starts, plus the total size at the end.
        weights: per leaf, whether a ``field(weight=True)`` holds it.
    """

    treedef: TreeDef
    shapes: tuple[tuple[int, ...], ...]
    dtype: np.dtype[Any]
    offsets: tuple[int, ...]
    weights: tuple[bool, ...]

    size: int = attrs.field(init=False)
    """The length of the flat buffer."""
    _build: Builder | None = attrs.field(default=None, repr=False, alias="build")
    _out: Builder | None = attrs.field(default=None, repr=False, alias="out")

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "size", self.offsets[-1])

    def ranges(self, flags: Any) -> list[tuple[int, int]]:
        """The ``(start, stop)`` spans of the flat buffer of the leaves whose flag is true,
        with adjacent spans merged."""
        spans: list[tuple[int, int]] = []
        for i, flag in enumerate(flags):
            start, stop = self.offsets[i], self.offsets[i + 1]
            if not flag or stop == start:
                continue
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], stop)
            else:
                spans.append((start, stop))
        return spans

    def views(self, flat: Array) -> list[Array]:
        """The leaves of this layout as views into ``flat``, in flatten order (writable
        when ``flat`` is)."""
        o = self.offsets
        return [flat[o[i] : o[i + 1]].reshape(s) for i, s in enumerate(self.shapes)]

    def buffers(self, flat: Array) -> Any:
        """Views into ``flat`` arranged as the tree is, with records as lists of their
        children (:func:`fnn.tree.buffers`): writable when ``flat`` is, for writing a
        gradient straight into a flat buffer."""
        if self._out is None:
            return buffers(self.treedef, iter(self.views(flat)))
        return self._out(iter(self.views(flat)))

    def unravel(self, flat: Array) -> Any:
        """A tree of this layout whose leaves are views into ``flat`` (no copy).

        Views of a read-only buffer are read-only.
        """
        if flat.shape != (self.size,) or flat.dtype != self.dtype:
            raise ValueError(
                f"expected a flat {self.dtype} buffer of shape ({self.size},), "
                f"got {flat.dtype} {flat.shape}"
            )
        if self._build is None:
            return self.treedef.build(iter(self.views(flat)))
        return self._build(iter(self.views(flat)))

    def ravel(self, tree: Any, what: str = "tree") -> Array:
        """Copy a tree of this layout into a new flat buffer, checking shapes and dtypes.

        Raises:
            ValueError: the structure, a shape or a dtype differs (naming the leaf).
        """
        return self._copy(flatten_like(self.treedef, tree, f"{what} and the params"), what)

    def _copy(self, values: list[Any], what: str) -> Array:
        """The leaves copied into a new flat buffer (Python floats as this dtype)."""
        for i, (x, shape) in enumerate(zip(values, self.shapes)):
            if type(x) is not np.ndarray or x.shape != shape or x.dtype != self.dtype:
                arr = np.asarray(x, self.dtype if isinstance(x, float) else None)
                if arr.shape != shape or arr.dtype != self.dtype:
                    where = leaf_paths(self.treedef)[i] or "the root"
                    raise ValueError(
                        f"{what} at {where}: expected {self.dtype} of shape {shape}, "
                        f"got {arr.dtype} of shape {arr.shape}"
                    )
                values[i] = arr
        out = np.empty(self.size, dtype=self.dtype)
        if values:
            np.concatenate([np.ravel(v) for v in values], out=out)
        return out


@functools.lru_cache(maxsize=64)
def _parts(
    treedef: TreeDef, shapes: tuple[tuple[int, ...], ...]
) -> tuple[tuple[int, ...], tuple[bool, ...], Builder | None, Builder | None]:
    """Offsets, weight flags and compiled builders of a layout, computed once per structure
    (no builders where static fields are: those come from each tree's own TreeDef)."""
    offsets = [0]
    for s in shapes:
        offsets.append(offsets[-1] + int(np.prod(s, dtype=np.int64)))
    static = has_static(treedef)
    build = None if static else builder(treedef, True)
    out = None if static else builder(treedef, False)
    return tuple(offsets), tuple(weight_flags(treedef)), build, out


def _layout(treedef: TreeDef, shapes: tuple[tuple[int, ...], ...], dtype: np.dtype[Any]) -> Layout:
    offsets, weights, build, out = _parts(treedef, shapes)
    return Layout(treedef, shapes, dtype, offsets, weights, build, out)


def layout_of(values: list[Any], treedef: TreeDef) -> Layout:
    """The flat layout of the tree ``flatten`` split into ``(values, treedef)``.

    Raises:
        TypeError: a leaf is not floating, or the leaves mix dtypes.
    """
    dtypes = {
        x.dtype if type(x) is np.ndarray else np.asarray(x).dtype
        for x in values
        if not isinstance(x, float)
    }
    if len(dtypes) > 1:
        found = ", ".join(sorted(str(d) for d in dtypes))
        raise TypeError(f"expected all leaves to share one floating dtype, got {found}")
    dtype = dtypes.pop() if dtypes else np.dtype(np.float64)
    if dtype.kind != "f":
        raise TypeError(f"expected floating leaves, got {dtype}")
    shapes = tuple([x.shape if type(x) is np.ndarray else np.shape(x) for x in values])
    return _layout(treedef, shapes, dtype)


def layout(tree: Any) -> Layout:
    """The flat layout of a tree of floating arrays (or floats) of one dtype.

    Raises:
        TypeError: a leaf is not floating, or the leaves mix dtypes.
    """
    values, treedef = flatten(tree)
    return layout_of(values, treedef)


def ravel(tree: Any) -> tuple[Array, Layout]:
    """Copy the leaves of a tree into one new flat buffer and describe the layout.

    All leaves must be floating arrays (or floats) of one dtype; Python floats become
    0-d arrays of that dtype. Returns ``(flat, layout)`` with
    ``layout.unravel(flat)`` equal to ``tree``.

    Raises:
        TypeError: a leaf is not floating, or the leaves mix dtypes.
    """
    values, treedef = flatten(tree)
    found = layout_of(values, treedef)
    return found._copy(values, "tree"), found
