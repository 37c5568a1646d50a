"""Reading the ``"tree"`` entry of a possibly hostile ``fnn.json`` (private).

Every entry is checked: node kinds and their exact entries, names, leaf indices in
flatten order, dtypes (bool, integer, float, complex only, in canonical form), shapes
(bounded), and how scalar leaves come back. Anything else is a :class:`FormatError`
naming the place in the tree.
"""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np

from ._describe import DTYPE, LEAF_KINDS, SCALAR_DTYPES, Leaf, Node, place, step
from ._format import MAX_NDIM, FormatError, short

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
        raise FormatError(f"{self.what}: at {place(path)} in the tree: {message}")

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
            or not all(type(d) is int and 0 <= d <= _MAX_DIM for d in shape)
        ):
            self.fail(
                path,
                f"'shape' must be a list of at most {MAX_NDIM} non-negative ints, "
                f"got {short(shape)}",
            )
        if kind != "array" and shape:
            self.fail(path, f"a leaf saved as {kind!r} must have shape [], got {short(shape)}")
        if kind in SCALAR_DTYPES and (dtype.kind, dtype.itemsize) != SCALAR_DTYPES[kind]:
            self.fail(
                path,
                f"a Python {kind} must be saved with dtype "
                f"{np.dtype(''.join(map(str, SCALAR_DTYPES[kind])))}, got {dtype}",
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
