"""Comparing a file's tree with a template, and rebuilding trees from a file (private)."""

from __future__ import annotations

from typing import Any

import attrs

from .. import tree as _tree
from .._types import Array
from ._describe import Described, Node, place, step
from ._format import FormatError, short
from ._json import encode
from ._types import TYPES


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
    where = place(path)
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
    where = f"{what}: at {place(path)}"
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
            f"{what}: at {place(path)}: {node.type_name} refused the file's values: {e}"
        ) from None


def restore(template: Described, arrays: list[Array]) -> Any:
    """A tree of the template's types and static values holding the loaded ``arrays``,
    each leaf coming back the way the template's does."""
    values = [convert(a, leaf.kind) for a, leaf in zip(arrays, template.leaves)]
    return _tree.unflatten(template.treedef, values)
