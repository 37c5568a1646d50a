"""A tree in ``fnn.json`` (private): its structure with type names, and its leaves.

A file names each class by its registered name (:func:`fnn.tree.type_name`), so the
structure it holds is a :class:`~fnn.tree.TreeDef` whose node types are names and whose
static values are JSON data (lists read back as tuples). :func:`named` puts a tree's
structure in that form (to save it, or to compare a template with a file); :func:`to_json`
and :func:`from_json` write and read it, checking every entry of a possibly hostile file;
:func:`resolve` looks the names up among the registered types, importing nothing.
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
from ._format import MAX_LEAF_SPAN, MAX_NDIM, FormatError, short
from ._json import check_json

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

_ENTRIES: dict[str, frozenset[str]] = {
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


def span(shape: tuple[int, ...], itemsize: int) -> int:
    """What ``shape`` declares, in bytes: the product of its non-zero axes times
    ``itemsize`` (what NumPy bounds, so that a zero-size array's axes can be indexed)."""
    return math.prod(max(d, 1) for d in shape) * itemsize


def place(path: str) -> str:
    """A tree path as error messages name it: ``"the root"`` for the empty path."""
    return path or "the root"


def leaf_of(x: Any, index: int, where: str) -> tuple[Leaf, Array]:
    """The entry of leaf ``x`` and ``x`` as an array (not copied: a template's placeholder
    leaves take no memory and must not be made contiguous).

    Raises:
        TypeError: a dtype the format does not hold (objects, strings, structured).
        ValueError: a Python int beyond int64, or an array of more than 32 axes.
    """
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
    if span(arr.shape, arr.itemsize) > MAX_LEAF_SPAN:
        raise ValueError(
            f"{where}: the shape {arr.shape} of {arr.dtype} declares "
            f"{span(arr.shape, arr.itemsize)} bytes (its non-zero axes times the item size), "
            f"more than the {MAX_LEAF_SPAN} a leaf may declare"
        )
    return Leaf(index, kind, arr.dtype, tuple(arr.shape)), arr


def convert(arr: Array, kind: str) -> Any:
    """A loaded array as its leaf comes back: the array, a NumPy scalar or a Python number."""
    if kind == "array":
        return arr
    if kind == "numpy":
        return arr[()]
    return arr.item()


def _frozen(value: Any) -> Any:
    """JSON data with lists made tuples (hashable, as static values must be)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def named(treedef: TreeDef, what: str, path: str = "") -> TreeDef:
    """``treedef`` as a file holds it: classes by registered name, static values as JSON
    (sorted by name, lists as tuples).

    Raises:
        TypeError, ValueError: a static value that is not JSON data (naming where).
    """
    kids = tuple(
        named(c, what, path + _tree.path_step(treedef, i)) for i, c in enumerate(treedef.children)
    )
    node_type = treedef.node_type
    if isinstance(node_type, type):
        node_type = _tree.type_name(node_type)
    static = tuple(
        sorted(
            (k, _frozen(check_json(v, f"{what} at {place(path)}: static field {k!r}")))
            for k, v in treedef.static
        )
    )
    return _tree.node(treedef.kind, node_type, treedef.names, static, kids)


def to_json(treedef: TreeDef, leaves: Iterator[Leaf]) -> dict[str, Any]:
    """The JSON object of a :func:`named` structure in ``fnn.json``."""
    if treedef.kind == "none":
        return {"kind": "none"}
    if treedef.kind == "leaf":
        leaf = next(leaves)
        return {
            "kind": "leaf",
            "index": leaf.index,
            "as": leaf.kind,
            "dtype": leaf.dtype.str,
            "shape": list(leaf.shape),
        }
    out: dict[str, Any] = {
        "kind": treedef.kind,
        "children": [to_json(c, leaves) for c in treedef.children],
    }
    if treedef.kind == "dict":
        out["keys"] = list(treedef.names)
    if treedef.kind in ("namedtuple", "attrs"):
        out["type"] = treedef.node_type
        out["fields"] = list(treedef.names)
    if treedef.kind == "attrs":
        out["static"] = dict(treedef.static)
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return short(value)


class _Reader:
    """Checks the ``"tree"`` entry of a description; counts leaves in flatten order."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.leaves: list[Leaf] = []

    def fail(self, path: str, message: str) -> NoReturn:
        raise FormatError(f"{self.what}: at {place(path)} in the tree: {message}")

    def strings(self, value: Any, path: str, entry: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(path, f"{entry!r} must be a list of strings, got {_json_type(value)}")
        if len(set(value)) != len(value):
            self.fail(path, f"{entry!r} holds a name twice: {short(value)}")
        return tuple(value)

    def node(self, obj: Any, path: str) -> TreeDef:
        if not isinstance(obj, dict):
            self.fail(path, f"expected a node object, got {_json_type(obj)}")
        kind = obj.get("kind")
        if not isinstance(kind, str) or kind not in _ENTRIES:
            self.fail(path, f"unknown node kind {short(kind)}; expected one of {list(_ENTRIES)}")
        expected = _ENTRIES[kind]
        if set(obj) != expected:
            missing, extra = sorted(expected - set(obj)), sorted(set(obj) - expected)
            self.fail(
                path,
                f"a {kind!r} node needs the entries {sorted(expected)}; "
                f"missing {missing}, unexpected {[k[:80] for k in extra]}",
            )
        if kind == "none":
            return _tree.node("none")
        if kind == "leaf":
            self.leaf(obj, path)
            return _tree.node("leaf")
        children = obj["children"]
        if not isinstance(children, list):
            self.fail(path, f"'children' must be a list, got {_json_type(children)}")
        names: tuple[str, ...] = ()
        name = None
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
            static = tuple(sorted((k, _frozen(v)) for k, v in fields.items()))
        if kind in ("dict", "namedtuple", "attrs") and len(names) != len(children):
            self.fail(path, f"{len(names)} names for {len(children)} children")
        steps = [f"[{k!r}]" if kind == "dict" else f".{k}" for k in names] or [
            f"[{i}]" for i in range(len(children))
        ]
        kids = tuple(self.node(c, path + s) for c, s in zip(children, steps))
        return _tree.node(kind, name, names, static, kids)

    def leaf(self, obj: dict[str, Any], path: str) -> None:
        index = obj["index"]
        if type(index) is not int or index != len(self.leaves):
            self.fail(
                path, f"leaf 'index' must be {len(self.leaves)} (flatten order), got {short(index)}"
            )
        kind = obj["as"]
        if kind not in LEAF_KINDS:
            self.fail(path, f"'as' must be one of {list(LEAF_KINDS)}, got {short(kind)}")
        text = obj["dtype"]
        if not isinstance(text, str) or not DTYPE.fullmatch(text):
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
            or not all(type(d) is int and 0 <= d <= MAX_LEAF_SPAN for d in shape)
        ):
            self.fail(
                path,
                f"'shape' must be a list of at most {MAX_NDIM} non-negative ints, "
                f"got {short(shape)}",
            )
        if span(tuple(shape), dtype.itemsize) > MAX_LEAF_SPAN:
            self.fail(
                path,
                f"'shape' {short(shape)} of {dtype} declares {span(tuple(shape), dtype.itemsize)} "
                f"bytes (its non-zero axes times the item size), more than the "
                f"{MAX_LEAF_SPAN} a leaf may declare",
            )
        if kind != "array" and shape:
            self.fail(path, f"a leaf saved as {kind!r} must have shape [], got {short(shape)}")
        if kind in SCALAR_DTYPES and (dtype.kind, dtype.itemsize) != SCALAR_DTYPES[kind]:
            self.fail(
                path,
                f"a Python {kind} must be saved with dtype "
                f"{np.dtype(''.join(map(str, SCALAR_DTYPES[kind])))}, got {dtype}",
            )
        self.leaves.append(Leaf(index, kind, dtype, tuple(shape)))


def from_json(obj: Any, what: str) -> tuple[TreeDef, tuple[Leaf, ...]]:
    """The :func:`named` structure and the leaves that the ``"tree"`` entry ``obj`` holds.

    Raises:
        FormatError: any entry that is not what the format allows (``what`` names the file).
    """
    reader = _Reader(what)
    treedef = reader.node(obj, "")
    return treedef, tuple(reader.leaves)


def canonical(treedef: TreeDef) -> TreeDef:
    """A :func:`named` structure with each registered name (or older alias, see
    :func:`fnn.tree.register_type`) replaced by the name its class is registered under."""
    kids = tuple(canonical(c) for c in treedef.children)
    node_type = treedef.node_type
    cls = _tree.TYPES.get(node_type) if isinstance(node_type, str) else None
    if cls is not None:
        node_type = _tree.type_name(cls)
    return _tree.node(treedef.kind, node_type, treedef.names, treedef.static, kids)


def resolve(treedef: TreeDef, what: str, path: str = "") -> TreeDef:
    """A :func:`named` structure with each name replaced by its registered class.

    Raises:
        FormatError: a name that is not registered (nothing is imported), or a class whose
            fields differ from the file's.
    """
    kids = tuple(
        resolve(c, what, path + _tree.path_step(treedef, i)) for i, c in enumerate(treedef.children)
    )
    if treedef.kind not in ("attrs", "namedtuple"):
        return _tree.node(treedef.kind, None, treedef.names, (), kids)
    where = f"{what}: at {place(path)}"
    cls = _tree.TYPES.get(treedef.node_type)
    if cls is None:
        raise FormatError(
            f"{where}: unknown type {short(treedef.node_type)}; without like= only registered "
            "types are rebuilt (fnn.tree.TYPES; fnn.nn.register and fnn.tree.register_type "
            "add yours): pass like= a tree of the same structure to load other types"
        )
    if treedef.kind == "namedtuple":
        if attrs.has(cls) or getattr(cls, "_fields", None) != treedef.names:
            raise FormatError(
                f"{where}: {treedef.node_type} does not match the file's named tuple with "
                f"fields {list(treedef.names)}"
            )
        return _tree.node("namedtuple", cls, treedef.names, (), kids)
    layout = _tree.record_fields(cls) if attrs.has(cls) else None
    file_static = dict(treedef.static)
    if layout is None or layout.children != treedef.names or set(layout.static) != set(file_static):
        children, static = (layout.children, layout.static) if layout else ((), ())
        raise FormatError(
            f"{where}: {treedef.node_type} has fields {list(children)} and static fields "
            f"{list(static)}; the file has {list(treedef.names)} and {sorted(file_static)}"
        )
    static_items = tuple((k, file_static[k]) for k in layout.static)
    return _tree.node("attrs", cls, treedef.names, static_items, kids)
