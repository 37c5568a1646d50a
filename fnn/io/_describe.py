"""Trees and their description (private): node kinds, keys, types, leaf dtypes and shapes.

:func:`describe` takes a tree apart into a :class:`Node` (its structure: node kinds, dict
keys, type names, static fields, and each leaf's dtype and shape) and the arrays to store;
:func:`node_to_json` writes a node as the JSON of ``fnn.json``. Reading that JSON back is
:mod:`._parse`'s job; comparing and rebuilding trees is :mod:`._rebuild`'s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np

from .. import tree as _tree
from .._types import Array
from ..tree import TreeDef
from ._format import MAX_NDIM
from ._json import check_json
from ._types import type_name

LEAF_KINDS = ("array", "numpy", "bool", "int", "float", "complex")
"""How a leaf comes back: an array, a NumPy scalar, or a Python bool/int/float/complex."""

SCALAR_DTYPES: dict[str, tuple[str, int]] = {
    "bool": ("b", 1),
    "int": ("i", 8),
    "float": ("f", 8),
    "complex": ("c", 16),
}
"""The dtype (kind, itemsize) a Python scalar leaf is stored with."""

DTYPE = re.compile(r"[<>|][biufc][0-9]{1,2}")
"""The ``dtype.str`` of every dtype the format holds: bool, int, uint, float, complex."""

_INT64 = 2**63


@attrs.frozen(eq=False)
class Leaf:
    """One leaf: its index (flatten order), how it comes back, its dtype and shape."""

    index: int
    kind: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """The size of the leaf's data in bytes."""
        return math.prod(self.shape) * self.dtype.itemsize

    def __str__(self) -> str:
        return f"{self.dtype} {self.shape}"


@attrs.frozen(eq=False)
class Node:
    """One node of a tree's structure.

    ``kind`` is ``"none"``, ``"leaf"``, ``"tuple"``, ``"list"``, ``"dict"``,
    ``"namedtuple"`` or ``"attrs"``; ``names`` holds a dict's keys (sorted) or the child
    field names of a named tuple or attrs class; ``type_name`` the class's stable name;
    ``static`` an attrs class's static fields as sorted ``(name, JSON value)`` pairs.
    """

    kind: str
    children: tuple[Node, ...] = ()
    names: tuple[str, ...] = ()
    type_name: str = ""
    static: tuple[tuple[str, Any], ...] = ()
    leaf: Leaf | None = None


@attrs.frozen(eq=False)
class Described:
    """A tree taken apart: its node, its leaves in flatten order, their C-contiguous arrays,
    and its :class:`~fnn.tree.TreeDef` (to rebuild a tree of exactly its types)."""

    node: Node
    leaves: tuple[Leaf, ...]
    arrays: tuple[Array, ...]
    treedef: TreeDef


def step(kind: str, names: tuple[str, ...], i: int) -> str:
    """The path step to child ``i`` of a node, as :func:`fnn.tree.paths` writes it."""
    if kind == "dict":
        return f"[{names[i]!r}]"
    if kind in ("attrs", "namedtuple"):
        return f".{names[i]}"
    return f"[{i}]"


def place(path: str) -> str:
    """A tree path as error messages name it: ``"the root"`` for the empty path."""
    return path or "the root"


# -- from a tree ---------------------------------------------------------------------------


def _leaf(x: Any, index: int, where: str) -> tuple[Leaf, Array]:
    if isinstance(x, np.generic):
        kind, arr = "numpy", np.asarray(x)
    elif isinstance(x, bool):
        kind, arr = "bool", np.asarray(x, dtype=np.bool_)
    elif isinstance(x, int):
        if not -_INT64 <= x < _INT64:
            raise ValueError(f"{where}: a Python int leaf must fit in int64 to be saved, got {x}")
        kind, arr = "int", np.asarray(x, dtype=np.int64)
    elif isinstance(x, float):
        kind, arr = "float", np.asarray(x, dtype=np.float64)
    elif isinstance(x, complex):
        kind, arr = "complex", np.asarray(x, dtype=np.complex128)
    else:
        kind, arr = "array", np.asarray(x)
    if not DTYPE.fullmatch(arr.dtype.str):
        raise TypeError(
            f"{where}: cannot save dtype {arr.dtype}: fnn files hold bool, integer, float and "
            "complex arrays only (never pickled objects)"
        )
    if arr.ndim > MAX_NDIM:
        raise ValueError(f"{where}: arrays may have at most {MAX_NDIM} axes, got {arr.ndim}")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return Leaf(index, kind, arr.dtype, tuple(arr.shape)), arr


def _node_of(treedef: TreeDef, leaves: Iterator[Leaf], path: str, what: str) -> Node:
    kind = treedef.kind
    if kind == "leaf":
        return Node("leaf", leaf=next(leaves))
    if kind == "none":
        return Node("none")
    names: tuple[str, ...] = ()
    static: tuple[tuple[str, Any], ...] = ()
    name = ""
    if kind == "dict":
        names = tuple(treedef.meta)
    elif kind == "namedtuple":
        names, name = tuple(treedef.meta), type_name(treedef.node_type or type(None))
    elif kind == "attrs":
        names, name = tuple(treedef.meta[0]), type_name(treedef.node_type or type(None))
        static = tuple(
            sorted(
                (field, check_json(value, f"{what} at {place(path)}: static field {field!r}"))
                for field, value in treedef.meta[2]
            )
        )
    children = tuple(
        _node_of(c, leaves, path + step(kind, names, i), what)
        for i, c in enumerate(treedef.children)
    )
    return Node(kind, children, names, name, static)


def describe(tree: Any, what: str = "tree") -> Described:
    """Take ``tree`` apart for saving or as a template.

    Raises:
        TypeError: ``tree`` is not an fnn tree, a leaf has a dtype the format does not
            hold (objects, strings, structured), or a static field is not JSON data.
        ValueError: a Python int beyond int64, an array of more than 32 axes, or a static
            field that is not valid JSON (non-finite float, too deep).
    """
    values, treedef = _tree.flatten(tree)
    paths = _tree.paths(tree)
    pairs = [_leaf(x, i, f"{what} at {place(p)}") for i, (x, p) in enumerate(zip(values, paths))]
    leaves = tuple(leaf for leaf, _ in pairs)
    node = _node_of(treedef, iter(leaves), "", what)
    return Described(node, leaves, tuple(arr for _, arr in pairs), treedef)


def node_to_json(node: Node) -> dict[str, Any]:
    """The JSON object of ``node`` in ``fnn.json`` (see the README's fnn.io section)."""
    if node.kind == "none":
        return {"kind": "none"}
    if node.leaf is not None:
        leaf = node.leaf
        return {
            "kind": "leaf",
            "index": leaf.index,
            "as": leaf.kind,
            "dtype": leaf.dtype.str,
            "shape": list(leaf.shape),
        }
    out: dict[str, Any] = {"kind": node.kind, "children": [node_to_json(c) for c in node.children]}
    if node.kind == "dict":
        out["keys"] = list(node.names)
    if node.kind in ("namedtuple", "attrs"):
        out["type"] = node.type_name
        out["fields"] = list(node.names)
    if node.kind == "attrs":
        out["static"] = dict(node.static)
    return out
