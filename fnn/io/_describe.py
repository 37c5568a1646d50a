"""Trees and their JSON description (private).

:func:`describe` turns a tree into a :class:`Node` (its structure: node kinds, dict keys,
type names, static fields, and each leaf's dtype and shape) plus the arrays to store;
:func:`node_to_json` and :func:`node_from_json` convert a node to and from the JSON of
``fnn.json``, the latter checking every entry of a possibly hostile file. :func:`compare`
names the first difference between a template's node and a file's; :func:`build` rebuilds
a tree from a file's node alone, from the allow-list of types.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, NoReturn

import attrs
import numpy as np

from .. import tree as _tree
from .._types import Array
from ..tree import TreeDef
from ._format import MAX_NDIM, FormatError, short
from ._json import check_json, encode
from ._types import TYPES, type_name

LEAF_KINDS = ("array", "numpy", "bool", "int", "float", "complex")
"""How a leaf comes back: an array, a NumPy scalar, or a Python bool/int/float/complex."""

_SCALARS: dict[str, tuple[str, int]] = {
    "bool": ("b", 1),
    "int": ("i", 8),
    "float": ("f", 8),
    "complex": ("c", 16),
}
_DTYPE = re.compile(r"[<>|][biufc][0-9]{1,2}")
_INT64 = 2**63
_MAX_DIM = 2**62

_KEYS: dict[str, frozenset[str]] = {
    "none": frozenset({"kind"}),
    "leaf": frozenset({"kind", "index", "as", "dtype", "shape"}),
    "tuple": frozenset({"kind", "children"}),
    "list": frozenset({"kind", "children"}),
    "dict": frozenset({"kind", "keys", "children"}),
    "namedtuple": frozenset({"kind", "type", "fields", "children"}),
    "attrs": frozenset({"kind", "type", "fields", "static", "children"}),
}


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


def _where(path: str) -> str:
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
    if not _DTYPE.fullmatch(arr.dtype.str):
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
                (field, check_json(value, f"{what} at {_where(path)}: static field {field!r}"))
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
    pairs = [_leaf(x, i, f"{what} at {_where(p)}") for i, (x, p) in enumerate(zip(values, paths))]
    leaves = tuple(leaf for leaf, _ in pairs)
    node = _node_of(treedef, iter(leaves), "", what)
    return Described(node, leaves, tuple(arr for _, arr in pairs), treedef)


def node_to_json(node: Node) -> dict[str, Any]:
    """The JSON object of ``node`` in ``fnn.json`` (see README.io.md)."""
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


# -- from a file ---------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return short(value)


class _Parser:
    """Checks the ``"tree"`` entry of a description; counts leaves in flatten order."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.leaves: list[Leaf] = []

    def fail(self, path: str, message: str) -> NoReturn:
        raise FormatError(f"{self.what}: at {_where(path)} in the tree: {message}")

    def strings(self, value: Any, path: str, entry: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(path, f"{entry!r} must be a list of strings, got {_json_type(value)}")
        if len(set(value)) != len(value):
            self.fail(path, f"{entry!r} holds a name twice: {short(value)}")
        return tuple(value)

    def node(self, obj: Any, path: str) -> Node:
        if not isinstance(obj, dict):
            self.fail(path, f"expected a node object, got {_json_type(obj)}")
        kind = obj.get("kind")
        if not isinstance(kind, str) or kind not in _KEYS:
            self.fail(path, f"unknown node kind {short(kind)}; expected one of {list(_KEYS)}")
        expected = _KEYS[kind]
        if set(obj) != expected:
            missing, extra = sorted(expected - set(obj)), sorted(set(obj) - expected)
            self.fail(
                path,
                f"a {kind!r} node needs the entries {sorted(expected)}; "
                f"missing {missing}, unexpected {[k[:80] for k in extra]}",
            )
        if kind == "none":
            return Node("none")
        if kind == "leaf":
            return Node("leaf", leaf=self.leaf(obj, path))
        children = obj["children"]
        if not isinstance(children, list):
            self.fail(path, f"'children' must be a list, got {_json_type(children)}")
        names: tuple[str, ...] = ()
        name = ""
        static: tuple[tuple[str, Any], ...] = ()
        if kind == "dict":
            names = self.strings(obj["keys"], path, "keys")
            if list(names) != sorted(names):
                self.fail(path, "dict keys must be listed in sorted order")
        if kind in ("namedtuple", "attrs"):
            name = obj["type"]
            if not isinstance(name, str) or not 0 < len(name) <= 200:
                self.fail(path, f"'type' must be a type name, got {short(name)}")
            names = self.strings(obj["fields"], path, "fields")
        if kind == "attrs":
            fields = obj["static"]
            if not isinstance(fields, dict):
                self.fail(path, f"'static' must be an object, got {_json_type(fields)}")
            if set(fields) & set(names):
                self.fail(
                    path, f"fields {sorted(set(fields) & set(names))} are both static and children"
                )
            static = tuple(sorted(fields.items()))
        if kind in ("dict", "namedtuple", "attrs") and len(names) != len(children):
            self.fail(path, f"{len(names)} names for {len(children)} children")
        kids = tuple(self.node(c, path + step(kind, names, i)) for i, c in enumerate(children))
        return Node(kind, kids, names, name, static)

    def leaf(self, obj: dict[str, Any], path: str) -> Leaf:
        index = obj["index"]
        if type(index) is not int or index != len(self.leaves):
            self.fail(
                path, f"leaf 'index' must be {len(self.leaves)} (flatten order), got {short(index)}"
            )
        kind = obj["as"]
        if kind not in LEAF_KINDS:
            self.fail(path, f"'as' must be one of {list(LEAF_KINDS)}, got {short(kind)}")
        text = obj["dtype"]
        if not isinstance(text, str) or not _DTYPE.fullmatch(text):
            self.fail(
                path,
                f"'dtype' must be a bool, integer, float or complex dtype such as "
                f"'<f4', got {short(text)}",
            )
        try:
            dtype = np.dtype(text)
        except TypeError:
            self.fail(path, f"'dtype' {text!r} is not a NumPy dtype")
        if dtype.str != text:
            self.fail(path, f"'dtype' {text!r} is not in canonical form ({dtype.str!r})")
        shape = obj["shape"]
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_NDIM
            or not all(type(d) is int and 0 <= d <= _MAX_DIM for d in shape)
        ):
            self.fail(
                path,
                f"'shape' must be a list of at most {MAX_NDIM} non-negative ints, "
                f"got {short(shape)}",
            )
        if kind != "array" and shape:
            self.fail(path, f"a leaf saved as {kind!r} must have shape [], got {short(shape)}")
        if kind in _SCALARS and (dtype.kind, dtype.itemsize) != _SCALARS[kind]:
            self.fail(
                path,
                f"a Python {kind} must be saved with dtype "
                f"{np.dtype(''.join(map(str, _SCALARS[kind])))}, got {dtype}",
            )
        leaf = Leaf(index, kind, dtype, tuple(shape))
        self.leaves.append(leaf)
        return leaf


def node_from_json(obj: Any, what: str) -> tuple[Node, tuple[Leaf, ...]]:
    """The node and leaves that the ``"tree"`` entry ``obj`` of a description holds.

    Raises:
        FormatError: any entry that is not what the format allows (``what`` names the file).
    """
    parser = _Parser(what)
    node = parser.node(obj, "")
    return node, tuple(parser.leaves)


# -- comparing and rebuilding ----------------------------------------------------------------


def _name(node: Node) -> str:
    if node.leaf is not None:
        return f"a leaf {node.leaf}"
    if node.kind == "none":
        return "None"
    if node.kind in ("attrs", "namedtuple"):
        return node.type_name
    if node.kind == "dict":
        return "a dict"
    return f"a {node.kind} of {len(node.children)} items"


def compare(expected: Node, got: Node, path: str = "") -> str | None:
    """Where ``got`` (a file's node) first differs from ``expected`` (a template's), in
    words such as ``"[1].w: expected float32 (784, 128), got float64 (784, 127)"``, or
    ``None`` if every node, key, type, static field, leaf dtype and shape agree.

    How a leaf comes back (array, NumPy scalar or Python number) may differ: the template's
    way wins.
    """
    where = _where(path)
    if expected.leaf is not None and got.leaf is not None:
        want, have = expected.leaf, got.leaf
        if want.dtype != have.dtype or want.shape != have.shape:
            return f"{where}: expected {want}, got {have}"
        return None
    if expected.kind != got.kind or expected.type_name != got.type_name:
        return f"{where}: expected {_name(expected)}, got {_name(got)}"
    if expected.names != got.names:
        if expected.kind == "dict":
            missing = sorted(set(expected.names) - set(got.names))
            extra = sorted(set(got.names) - set(expected.names))
            return f"{where}: missing keys {missing}, extra keys {extra}"
        return (
            f"{where}: expected {expected.type_name} with fields {list(expected.names)}, "
            f"got fields {list(got.names)}"
        )
    if expected.kind == "attrs" and encode(dict(expected.static)) != encode(dict(got.static)):
        return (
            f"{where}: the static fields of {expected.type_name} differ: expected "
            f"{dict(expected.static)}, got {short(dict(got.static), 200)}"
        )
    if len(expected.children) != len(got.children):
        return f"{where}: expected {_name(expected)}, got {len(got.children)} items"
    for i, (e, g) in enumerate(zip(expected.children, got.children)):
        found = compare(e, g, path + step(expected.kind, expected.names, i))
        if found is not None:
            return found
    return None


def _layout(node: Node, path: str, what: str) -> tuple[type, tuple[str, ...]]:
    """The allow-listed class of an attrs or named-tuple node and its constructor names."""
    cls = TYPES.get(node.type_name)
    where = f"{what}: at {_where(path)}"
    if cls is None:
        raise FormatError(
            f"{where}: unknown type {short(node.type_name)}; without like= only fnn's own "
            f"types are rebuilt ({', '.join(TYPES)}): pass like= a tree of the same "
            "structure to load other types"
        )
    if node.kind == "namedtuple":
        fields = tuple(getattr(cls, "_fields", ()))
        if not issubclass(cls, tuple) or fields != node.names:
            raise FormatError(
                f"{where}: {node.type_name} does not match the file's named "
                f"tuple with fields {list(node.names)}"
            )
        return cls, fields
    names, aliases, static = _tree._attrs_layout(cls) if attrs.has(cls) else ((), (), ())
    if not attrs.has(cls) or names != node.names or set(static) != {k for k, _ in node.static}:
        raise FormatError(
            f"{where}: {node.type_name} has fields {list(names)} and static fields "
            f"{list(static)}; the file has {list(node.names)} and "
            f"{[k for k, _ in node.static]}"
        )
    return cls, aliases


def check_types(node: Node, what: str, path: str = "") -> None:
    """Check that :func:`build` can rebuild ``node``: every type is allow-listed and its
    fields match the file's.

    Raises:
        FormatError: an unknown type name (the file names it; nothing is imported) or a
            type whose fields differ from the file's.
    """
    if node.kind in ("attrs", "namedtuple"):
        _layout(node, path, what)
    for i, child in enumerate(node.children):
        check_types(child, what, path + step(node.kind, node.names, i))


def convert(arr: Array, kind: str) -> Any:
    """A loaded array as its leaf comes back: the array, a NumPy scalar or a Python number."""
    if kind == "array":
        return arr
    if kind == "numpy":
        return arr[()]
    return arr.item()


def build(node: Node, arrays: list[Array], what: str, path: str = "") -> Any:
    """The tree ``node`` describes, its leaves from ``arrays``, its types from the
    allow-list (call :func:`check_types` first).

    Raises:
        FormatError: an allow-listed class refused the file's values.
    """
    if node.leaf is not None:
        return convert(arrays[node.leaf.index], node.leaf.kind)
    if node.kind == "none":
        return None
    kids = [
        build(c, arrays, what, path + step(node.kind, node.names, i))
        for i, c in enumerate(node.children)
    ]
    if node.kind == "tuple":
        return tuple(kids)
    if node.kind == "list":
        return kids
    if node.kind == "dict":
        return dict(zip(node.names, kids))
    cls, names = _layout(node, path, what)
    try:
        if node.kind == "namedtuple":
            return cls(*kids)
        return cls(**dict(zip(names, kids)), **dict(node.static))
    except (TypeError, ValueError) as e:
        raise FormatError(
            f"{what}: at {_where(path)}: {node.type_name} refused the file's values: {e}"
        ) from None


def restore(template: Described, arrays: list[Array]) -> Any:
    """A tree of the template's types and static values holding the loaded ``arrays``,
    each leaf coming back the way the template's does."""
    values = [convert(a, leaf.kind) for a, leaf in zip(arrays, template.leaves)]
    return _tree.unflatten(template.treedef, values)
