"""Tree structure: what a node is, how a tree is taken apart and rebuilt, and the names
by which a file may refer to a record type (private; see :mod:`fnn.tree`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple, cast

import attrs
import numpy as np

LEAF_TYPES = (np.ndarray, np.generic, bool, int, float, complex)
"""The types of a tree's leaves (and any class with a true ``__fnn_leaf__`` attribute, such
as :class:`fnn.nn.Param`, the leaf of a layer's declaration)."""

KINDS = ("leaf", "none", "tuple", "list", "dict", "namedtuple", "attrs")
"""The kinds of node a tree is made of."""

_STATIC = "fnn.static"
_WEIGHT = "fnn.weight"

WEIGHT: Mapping[str, bool] = MappingProxyType({_WEIGHT: True})
"""The metadata of a field that holds weights (as opposed to biases), for
``attrs.field(metadata=WEIGHT)``: L2 penalties and ``weights_only`` weight decay act on
its leaves. Merge it with metadata of your own as ``{**WEIGHT, ...}``."""

STATIC: Mapping[str, bool] = MappingProxyType({_STATIC: True})
"""The metadata of a field that is part of the tree's structure (hashable configuration),
not a child, for ``attrs.field(metadata=STATIC)``: ``map`` and the optimizers never see
it."""


def field(*, static: bool = False, weight: bool = False, **kwargs: Any) -> Any:
    """An attrs field with fnn's tree metadata: ``attrs.field(**kwargs)`` with
    :data:`STATIC` and/or :data:`WEIGHT` merged into its ``metadata``.

    Prefer ``attrs.field(..., metadata=WEIGHT)`` (or :data:`STATIC`): mypy's attrs
    plugin knows a field only by ``attrs.field``/``attr.ib`` and reads any other call as
    a default value, so under mypy every field declared with this function is optional
    (``DenseParams(w)`` with the bias missing would pass) and a plain field after it is an
    error. This function stays for code written with it; the records are the same.

    Args:
        static: the field is part of the tree's structure (hashable configuration),
            not a child: ``map`` and the optimizers never see it.
        weight: the field holds weights (as opposed to biases): L2 penalties and
            ``weights_only`` weight decay act on it.
        **kwargs: passed to :func:`attrs.field` (``converter``, ``default``, ...).

    Returns:
        An attrs field definition, to assign in an ``@attrs.frozen`` class body.
    """
    metadata = dict(kwargs.pop("metadata", {}))
    metadata[_STATIC] = static
    metadata[_WEIGHT] = weight
    return attrs.field(metadata=metadata, **kwargs)


class RecordFields(NamedTuple):
    """How an attrs class is a tree node: its child fields in order, their ``__init__``
    names, its static fields, and which children hold weights."""

    children: tuple[str, ...]
    aliases: tuple[str, ...]
    static: tuple[str, ...]
    weights: tuple[bool, ...]


@functools.cache
def record_fields(cls: type) -> RecordFields:
    """The :class:`RecordFields` of an attrs class.

    Raises:
        TypeError: ``cls`` is not an attrs class, or a field is not an ``__init__`` argument.
    """
    if not attrs.has(cls):
        raise TypeError(f"{cls.__name__} is not an attrs class")
    fields = attrs.fields(cls)
    for f in fields:
        if not f.init:
            raise TypeError(
                f"{cls.__name__}.{f.name} has init=False: fnn trees need attrs classes whose "
                "fields are all constructor arguments"
            )
    kids = [f for f in fields if not f.metadata.get(_STATIC, False)]
    return RecordFields(
        tuple(f.name for f in kids),
        tuple(f.alias or f.name for f in kids),
        tuple(f.name for f in fields if f.metadata.get(_STATIC, False)),
        tuple(bool(f.metadata.get(_WEIGHT, False)) for f in kids),
    )


class TreeDef(NamedTuple):
    """The structure of a tree: its node kinds, types, keys and static fields, no leaves.
    Make one with :func:`node` (or get one from :func:`structure`).

    Attributes:
        kind: one of :data:`KINDS`.
        node_type: the class of a ``"namedtuple"`` or ``"attrs"`` node, else None. A
            structure read from a file, before its classes are looked up, holds their
            registered names instead (see :func:`type_name`).
        names: a dict's keys (sorted), or the child field names of a named tuple or
            attrs class; empty for the other kinds.
        static: an attrs node's static fields as ``(name, value)`` pairs in field order.
        children: the structures of the children, in flatten order.
        num_leaves: how many leaves a tree of this structure holds.

    Two trees have the same structure when their ``TreeDef`` objects are equal; they are
    immutable and hashable when their static values are.
    """

    kind: str
    node_type: Any
    names: tuple[str, ...]
    static: tuple[tuple[str, Any], ...]
    children: tuple[TreeDef, ...]
    num_leaves: int

    def __repr__(self) -> str:
        return f"TreeDef({self})"

    def __str__(self) -> str:
        return _describe(self)

    def build(self, leaves: Iterator[Any]) -> Any:
        """A tree of this structure whose leaves are taken from ``leaves`` in order."""
        return builder(self, True)(leaves)


def node(
    kind: str,
    node_type: Any = None,
    names: tuple[str, ...] = (),
    static: tuple[tuple[str, Any], ...] = (),
    children: tuple[TreeDef, ...] = (),
) -> TreeDef:
    """The :class:`TreeDef` of a node of ``kind`` with these children."""
    count = 1 if kind == "leaf" else sum([c.num_leaves for c in children])
    return TreeDef(kind, node_type, names, static, children, count)


LEAF = node("leaf")
NONE = node("none")
_LEAF_CLASSES = frozenset({np.ndarray, bool, int, float, complex})


# -- taking trees apart ----------------------------------------------------------------------

Flattener = Callable[[Any, list[Any]], TreeDef]


def _leaf(tree: Any, out: list[Any]) -> TreeDef:
    out.append(tree)
    return LEAF


def _none(tree: Any, out: list[Any]) -> TreeDef:
    return NONE


def _sequence(kind: str, cls: type, names: tuple[str, ...]) -> Flattener:
    node_type = cls if kind == "namedtuple" else None

    def flatten_sequence(tree: Any, out: list[Any]) -> TreeDef:
        return node(kind, node_type, names, (), tuple([_flatten_into(c, out) for c in tree]))

    return flatten_sequence


def _dict(tree: Any, out: list[Any]) -> TreeDef:
    for k in tree:
        if not isinstance(k, str):
            raise TypeError(f"fnn trees need dicts with str keys; got the key {k!r}")
    keys = tuple(sorted(tree))
    return node("dict", None, keys, (), tuple([_flatten_into(tree[k], out) for k in keys]))


def _static_of(record: Any, names: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    """The ``(name, value)`` of a record's static fields, each value hashable (it is part
    of the structure, which is compared and cached), else a TypeError naming the field."""
    found = tuple([(name, getattr(record, name)) for name in names])
    for name, value in found:
        try:
            hash(value)
        except TypeError:
            raise TypeError(
                f"{type(record).__name__}.{name} is a static field (configuration, part of the "
                f"tree's structure), so its value must be hashable, got {type(value).__name__}: "
                "use a tuple for a list, or make it a leaf"
            ) from None
    return found


def _record(cls: type) -> Flattener:
    layout = record_fields(cls)
    names = layout.children
    all_leaves = node("attrs", cls, names, (), (LEAF,) * len(names))

    def flatten_record(tree: Any, out: list[Any]) -> TreeDef:
        kids = [getattr(tree, n) for n in names]
        static = _static_of(tree, layout.static) if layout.static else ()
        if not static and all(type(k) in _LEAF_CLASSES for k in kids):
            out.extend(kids)  # the common params record: arrays only, one shared TreeDef
            return all_leaves
        return node("attrs", cls, names, static, tuple([_flatten_into(k, out) for k in kids]))

    return flatten_record


def _flattener(cls: type) -> Flattener:
    if issubclass(cls, LEAF_TYPES) or getattr(cls, "__fnn_leaf__", False) is True:
        return _leaf
    if cls is type(None):
        return _none
    if cls is tuple or cls is list:
        return _sequence(cls.__name__, cls, ())
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return _sequence("namedtuple", cls, tuple(cls._fields))
    if cls is dict:
        return _dict
    if attrs.has(cls):
        return _record(cls)
    raise TypeError(
        f"{cls.__name__} is not part of an fnn tree: leaves are NumPy arrays and numbers; "
        "nodes are None, tuples, named tuples, lists, dicts with str keys and attrs classes"
    )


_FLATTENERS: dict[type, Flattener] = {}


def _flatten_into(tree: Any, out: list[Any]) -> TreeDef:
    cls = type(tree)
    found = _FLATTENERS.get(cls)
    if found is None:
        found = _FLATTENERS[cls] = _flattener(cls)
    return found(tree, out)


def flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """Split a tree into its leaves (in a fixed order) and its structure.

    Returns:
        ``(leaves, treedef)`` such that ``unflatten(treedef, leaves)`` rebuilds the tree.

    Raises:
        TypeError: the tree holds something that is neither a leaf nor a node.
    """
    out: list[Any] = []
    treedef = _flatten_into(tree, out)
    return out, treedef


def depth(tree: Any, limit: int | None = None) -> int:
    """How many levels of nodes ``tree`` nests, found without recursion.

    A leaf or ``None`` is 0 levels deep; a node is one level more than its deepest child
    (an empty node is 1). Objects that are neither nodes nor ``None`` count as leaves here
    (:func:`flatten` refuses them).

    Args:
        tree: any tree, however deep.
        limit: stop once the depth is known to exceed it, and return ``limit + 1``. Pass
            one for a tree that may contain itself (a list holding itself is infinitely
            deep: without a limit the walk would not end).

    Returns:
        The depth, or ``limit + 1`` when it exceeds ``limit``.

    Raises:
        TypeError: an attrs class whose fields a tree cannot hold (as :func:`flatten`).

    >>> depth({"a": [1.0, (2.0,)], "b": None})
    3
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        item, level = stack.pop()
        cls = type(item)
        if isinstance(item, (tuple, list)):
            children: Any = item
        elif cls is dict:
            children = item.values()
        elif attrs.has(cls):
            children = [getattr(item, n) for n in record_fields(cls).children]
        else:
            continue
        deepest = max(deepest, level + 1)
        if limit is not None and deepest > limit:
            return limit + 1
        stack.extend((c, level + 1) for c in children)
    return deepest


def unflatten(treedef: TreeDef, leaves: Sequence[Any]) -> Any:
    """Rebuild a tree of structure ``treedef`` from its leaves (the inverse of flatten).

    Raises:
        ValueError: ``leaves`` does not hold exactly ``treedef.num_leaves`` items.
    """
    if len(leaves) != treedef.num_leaves:
        raise ValueError(
            f"unflatten expected {treedef.num_leaves} leaves for the structure {treedef}, "
            f"got {len(leaves)}"
        )
    return treedef.build(iter(leaves))


def leaves(tree: Any) -> list[Any]:
    """The leaves of a tree, in flatten order."""
    return flatten(tree)[0]


def structure(tree: Any) -> TreeDef:
    """The structure (TreeDef) of a tree."""
    return flatten(tree)[1]


def num_leaves(tree: Any) -> int:
    """How many leaves ``tree`` has.

    Raises:
        TypeError: the tree holds something that is neither a leaf nor a node.
    """
    return structure(tree).num_leaves


# -- putting trees together -----------------------------------------------------------------

Builder = Callable[[Iterator[Any]], Any]


def builder(td: TreeDef, records: bool) -> Builder:
    """A function that builds a tree of structure ``td`` from an iterator of leaves; with
    ``records`` false, attrs records are made without running their converters,
    validators or ``__attrs_post_init__`` (see :func:`buffers`).

    Compiled once per structure, except where static fields are: equal structures may hold
    static values that compare equal but differ (``0.0`` and ``-0.0``, ``1`` and ``True``),
    and a tree is rebuilt with its own."""
    return _compile(td, records) if has_static(td) else _cached(td, records)


def _compile(td: TreeDef, records: bool) -> Builder:
    if td.kind == "leaf":
        return next
    if td.kind == "none":
        return lambda it: None
    subs = [builder(c, records) for c in td.children]
    if td.kind == "tuple":
        return lambda it: tuple([b(it) for b in subs])
    if td.kind == "dict":
        keys = td.names
        return lambda it: {k: b(it) for k, b in zip(keys, subs)}
    if td.kind == "list":
        return lambda it: [b(it) for b in subs]
    make = cast(Callable[..., Any], td.node_type)
    if td.kind == "namedtuple":
        return lambda it: make(*[b(it) for b in subs])
    fields = record_fields(cast(type, td.node_type))
    static = dict(td.static)
    if not records:
        names = fields.children

        cls = cast(type, td.node_type)

        def raw(it: Iterator[Any]) -> Any:
            obj: Any = object.__new__(cls)
            for name, b in zip(names, subs):
                object.__setattr__(obj, name, b(it))
            for name, value in static.items():
                object.__setattr__(obj, name, value)
            return obj

        return raw
    aliases = fields.aliases

    def record(it: Iterator[Any]) -> Any:
        kwargs = {a: b(it) for a, b in zip(aliases, subs)}
        kwargs.update(static)
        return make(**kwargs)

    return record


_cached = functools.lru_cache(maxsize=512)(_compile)


@functools.lru_cache(maxsize=512)
def has_static(td: TreeDef) -> bool:
    return bool(td.static) or any(has_static(c) for c in td.children)


def buffers(treedef: TreeDef, leaves: Iterator[Any]) -> Any:
    """A tree of structure ``treedef`` holding ``leaves`` in order, its attrs records made
    without their converters (which would make the arrays read-only): the ``grads`` a
    layer's backward writes its gradients into, field by field (``grads.w``, ``grads.b``).
    The records are still frozen: a field can be written into, not replaced."""
    return builder(treedef, False)(leaves)


def buffers_like(tree: Any) -> Any:
    """New zeroed writable arrays shaped like the leaves of ``tree``, arranged as
    :func:`buffers` arranges them: the ``grads`` to hand a layer's backward outside
    training (training hands it views of one flat buffer).

    >>> import numpy as np
    >>> buffers_like({"w": np.ones((2, 3), np.float32)})["w"].flags.writeable
    True
    """
    values, treedef = flatten(tree)
    return buffers(treedef, iter([np.zeros(np.shape(v), np.asarray(v).dtype) for v in values]))


# -- paths and differences --------------------------------------------------------------------


def path_step(treedef: TreeDef, i: int) -> str:
    """The path step from a node to its child ``i``: ``[2]``, ``['key']`` or ``.field``."""
    if treedef.kind == "dict":
        return f"[{treedef.names[i]!r}]"
    if treedef.kind in ("attrs", "namedtuple"):
        return "." + treedef.names[i]
    return f"[{i}]"


def _paths(treedef: TreeDef, prefix: str, out: list[str]) -> None:
    if treedef.kind == "leaf":
        out.append(prefix)
    for i, child in enumerate(treedef.children):
        _paths(child, prefix + path_step(treedef, i), out)


def leaf_paths(treedef: TreeDef) -> list[str]:
    """The path of every leaf of a structure, in flatten order (``""`` for a root leaf)."""
    out: list[str] = []
    _paths(treedef, "", out)
    return out


def paths(tree: Any) -> list[str]:
    """The path of every leaf, in flatten order, e.g. ``"[0].w"`` or ``"['opt'].m"``.

    The root leaf's path is the empty string.
    """
    return leaf_paths(structure(tree))


def node_name(treedef: TreeDef) -> str:
    """A node's kind in words: ``"an array leaf"``, ``"None"``, ``"DenseParams"``, ``"a dict"``."""
    if treedef.kind == "leaf":
        return "an array leaf"
    if treedef.kind == "none":
        return "None"
    if isinstance(treedef.node_type, str):
        return str(treedef.node_type)
    if treedef.node_type is not None:
        return str(treedef.node_type.__name__)
    return f"a {treedef.kind}"


def _describe(treedef: TreeDef) -> str:
    if treedef.kind == "leaf":
        return "*"
    if treedef.kind == "none":
        return "None"
    kids = [_describe(c) for c in treedef.children]
    if treedef.kind == "tuple":
        return "(" + ", ".join(kids) + ("," if len(kids) == 1 else "") + ")"
    if treedef.kind == "list":
        return "[" + ", ".join(kids) + "]"
    if treedef.kind == "dict":
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(treedef.names, kids)) + "}"
    pairs = ", ".join(f"{n}={v}" for n, v in zip(treedef.names, kids))
    return f"{node_name(treedef)}({pairs})"


def difference(a: TreeDef, b: TreeDef, path: str = "") -> str | None:
    """Where two structures first differ, in words, or ``None`` if they are equal.

    ``a`` is taken as the expected structure and ``b`` as the received one.
    """
    if a == b:
        return None
    where = f"at {path or 'the root'}"
    if a.kind != b.kind or a.node_type != b.node_type:
        return f"{where}: expected {node_name(a)}, got {node_name(b)}"
    if a.kind == "dict" and a.names != b.names:
        return f"{where}: expected dict keys {list(a.names)}, got {list(b.names)}"
    if len(a.children) != len(b.children):
        return (
            f"{where}: expected {node_name(a)} with {len(a.children)} children, "
            f"got {len(b.children)}"
        )
    if a.static != b.static:
        return (
            f"{where}: the static fields of {node_name(a)} differ: expected {dict(a.static)}, "
            f"got {dict(b.static)}"
        )
    for i, (ca, cb) in enumerate(zip(a.children, b.children)):
        found = difference(ca, cb, path + path_step(a, i))
        if found is not None:
            return found
    return f"{where}: structures differ"  # pragma: no cover - equal children, equal meta


def assert_same_structure(expected: Any, got: Any, what: str = "trees") -> None:
    """Raise a ValueError naming the first difference if two trees' structures differ."""
    found = difference(structure(expected), structure(got))
    if found is not None:
        raise ValueError(f"{what} do not have the same structure {found}")


def flatten_like(treedef: TreeDef, other: Any, what: str) -> list[Any]:
    """The leaves of ``other``, which must have structure ``treedef``.

    Raises:
        ValueError: the structures differ (naming where, as ``what`` do not match).
    """
    other_leaves, other_def = flatten(other)
    if other_def != treedef:
        raise ValueError(f"{what} do not have the same structure {difference(treedef, other_def)}")
    return other_leaves


def _weight_flags(treedef: TreeDef, inside: bool, out: list[bool]) -> None:
    if treedef.kind == "leaf":
        out.append(inside)
        return
    marks = (
        record_fields(treedef.node_type).weights
        if treedef.kind == "attrs" and isinstance(treedef.node_type, type)
        else (False,) * len(treedef.children)
    )
    for child, mark in zip(treedef.children, marks):
        _weight_flags(child, inside or mark, out)


def weight_flags(treedef: TreeDef) -> list[bool]:
    """Per leaf of a structure, in flatten order: whether a ``field(weight=True)`` holds it."""
    out: list[bool] = []
    _weight_flags(treedef, False, out)
    return out


def weight_mask(tree: Any) -> Any:
    """A tree like ``tree`` with ``True`` at leaves held by ``field(weight=True)`` fields.

    Leaves anywhere below a weight field count as weights; every other leaf is ``False``.
    """
    treedef = structure(tree)
    return unflatten(treedef, weight_flags(treedef))


# -- the names of record types ----------------------------------------------------------------

_TYPES: dict[str, type] = {}
_NAMES: dict[type, str] = {}

TYPES: Mapping[str, type] = MappingProxyType(_TYPES)
"""Every registered record type by its stable name (a read-only live view)."""


def register_type(cls: type, name: str | None = None, *, aliases: Sequence[str] = ()) -> type:
    """Give an attrs class or named tuple a stable name by which files may refer to it.

    :func:`fnn.io.load` rebuilds, without a template, only the types registered here: a
    file can never make fnn import a name. A name is part of the file format, so never
    rename a registered type; files keep loading under ``aliases``, older names that are
    read but never written. ``name`` defaults to ``module.QualName``, except for a class
    defined in ``__main__`` (a script run as ``python script.py``), whose module name no
    other process shares: it needs an explicit name. Layer records get theirs from
    :func:`fnn.nn.register` (``"<layer name>.<ClassName>"``). Registering a class again
    under its name (or with no name) does nothing.

    Returns:
        ``cls``, so this works as a class decorator.

    Raises:
        TypeError: ``cls`` is neither an attrs class nor a named tuple.
        ValueError: the name (or an alias) already belongs to another class, or the class
            to another name; a ``__main__`` class without a name.
    """
    if not isinstance(cls, type) or not (
        attrs.has(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    ):
        raise TypeError(f"register_type expects an attrs class or a named tuple, got {cls!r}")
    if attrs.has(cls):
        record_fields(cls)  # fails now, not at load time, for fields a tree cannot hold
    stable = name or _NAMES.get(cls)
    if stable is None:
        if cls.__module__ == "__main__":
            raise ValueError(
                f"{cls.__qualname__} is defined in __main__, a name no other process shares: "
                "give it a stable name, register_type(cls, 'mypackage.ClassName') (a layer's "
                "records get one from fnn.nn.register)"
            )
        stable = f"{cls.__module__}.{cls.__qualname__}"
    names = [stable, *aliases]
    for each in names:
        if not isinstance(each, str) or not 0 < len(each) <= 200:
            raise ValueError(f"a type name must be a str of 1 to 200 characters, got {each!r}")
        known = _TYPES.get(each)
        if known is not None and known is not cls:
            raise ValueError(f"the type name {each!r} already belongs to {known!r}")
    if _NAMES.get(cls, stable) != stable:
        raise ValueError(f"{cls!r} is already registered as {_NAMES[cls]!r}")
    for each in names:
        _TYPES[each] = cls
    _NAMES[cls] = stable
    return cls


def registered_name(cls: type) -> str | None:
    """The name ``cls`` was registered under (:func:`register_type`), or None."""
    return _NAMES.get(cls)


def type_name(cls: type) -> str:
    """The name a file records for ``cls``: its registered name, else ``module.QualName``."""
    return _NAMES.get(cls) or f"{cls.__module__}.{cls.__qualname__}"
