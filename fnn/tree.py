"""Pytrees: nested containers whose leaves are arrays and numbers.

A *tree* is ``None``, a leaf, or a node holding trees:

* leaves: NumPy arrays, NumPy scalars, and Python ``bool``/``int``/``float``/``complex``;
* nodes: tuples, named tuples, lists, dicts with ``str`` keys (visited in sorted key
  order), and attrs classes (visited in field order).

``None`` is an empty node: it holds no leaves, as a parameterless layer's params do.
An attrs field declared with :func:`field` ``(static=True)`` is part of the tree's
*structure*, not a child; a field declared ``(weight=True)`` marks the leaves that weight
decay and L2 penalties act on.

Every function here is pure: nothing is modified in place, and a new tree is returned.
When two trees must share a structure and do not, a :class:`ValueError` names the path
where they first differ, for example ``at [2].w: expected an array leaf, got None``.

>>> import numpy as np
>>> t = {"a": np.ones(2), "b": (1.0, None)}
>>> leaves(t)
[array([1., 1.]), 1.0]
>>> map(lambda x: x * 2, t)["b"]
(2.0, None)
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

import attrs
import numpy as np

from ._types import Array

T = TypeVar("T")

_LEAF_TYPES = (np.ndarray, np.generic, bool, int, float, complex)

_STATIC = "fnn.static"
_WEIGHT = "fnn.weight"


def field(*, static: bool = False, weight: bool = False, **kwargs: Any) -> Any:
    """An attrs field with fnn's tree metadata.

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


@attrs.frozen(cache_hash=True)
class TreeDef:
    """The structure of a tree: its node types, keys and static fields, without leaves.

    Two trees have the same structure when their ``TreeDef`` objects are equal.
    ``num_leaves`` is the number of leaves a tree of this structure holds.
    """

    kind: str
    node_type: type | None
    meta: tuple[Any, ...]
    children: tuple[TreeDef, ...]
    num_leaves: int

    def __str__(self) -> str:
        return _describe(self)


_LEAF_DEF = TreeDef("leaf", None, (), (), 1)
_NONE_DEF = TreeDef("none", None, (), (), 0)


@functools.cache
def _attrs_layout(cls: type) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(child field names, their __init__ aliases, static field names) of an attrs class."""
    children: list[str] = []
    aliases: list[str] = []
    static: list[str] = []
    for f in attrs.fields(cls):
        if not f.init:
            raise TypeError(
                f"{cls.__name__}.{f.name} has init=False: fnn trees need attrs classes whose "
                "fields are all constructor arguments"
            )
        if f.metadata.get(_STATIC, False):
            static.append(f.name)
        else:
            children.append(f.name)
            aliases.append(f.alias or f.name)
    return tuple(children), tuple(aliases), tuple(static)


def _flatten_into(node: Any, out: list[Any]) -> TreeDef:
    if isinstance(node, _LEAF_TYPES):
        out.append(node)
        return _LEAF_DEF
    if node is None:
        return _NONE_DEF
    cls = type(node)
    if cls is tuple or cls is list:
        kids = tuple(_flatten_into(c, out) for c in node)
        return TreeDef(cls.__name__, cls, (), kids, sum(k.num_leaves for k in kids))
    if isinstance(node, tuple) and hasattr(cls, "_fields"):
        kids = tuple(_flatten_into(c, out) for c in node)
        return TreeDef("namedtuple", cls, cls._fields, kids, sum(k.num_leaves for k in kids))
    if cls is dict:
        keys = tuple(node.keys())
        if not all(isinstance(k, str) for k in keys):
            bad = next(k for k in keys if not isinstance(k, str))
            raise TypeError(f"fnn trees need dicts with str keys; got the key {bad!r}")
        keys = tuple(sorted(keys))
        kids = tuple(_flatten_into(node[k], out) for k in keys)
        return TreeDef("dict", dict, keys, kids, sum(k.num_leaves for k in kids))
    if attrs.has(cls):
        names, aliases, static = _attrs_layout(cls)
        kids = tuple(_flatten_into(getattr(node, n), out) for n in names)
        static_items = tuple((s, getattr(node, s)) for s in static)
        return TreeDef(
            "attrs",
            cls,
            (names, aliases, static_items),
            kids,
            sum(k.num_leaves for k in kids),
        )
    raise TypeError(
        f"{cls.__name__} is not part of an fnn tree: leaves are NumPy arrays and numbers; "
        "nodes are None, tuples, named tuples, lists, dicts with str keys and attrs classes"
    )


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


def _build(treedef: TreeDef, it: Iterator[Any]) -> Any:
    kind = treedef.kind
    if kind == "leaf":
        return next(it)
    if kind == "none":
        return None
    kids = [_build(c, it) for c in treedef.children]
    if kind == "tuple":
        return tuple(kids)
    if kind == "list":
        return kids
    if kind == "namedtuple":
        return cast(Callable[..., Any], treedef.node_type)(*kids)
    if kind == "dict":
        return dict(zip(treedef.meta, kids))
    _names, aliases, static_items = treedef.meta
    kwargs = dict(zip(aliases, kids))
    kwargs.update(static_items)
    return cast(Callable[..., Any], treedef.node_type)(**kwargs)


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
    return _build(treedef, iter(leaves))


def leaves(tree: Any) -> list[Any]:
    """The leaves of a tree, in flatten order."""
    return flatten(tree)[0]


def num_leaves(tree: Any) -> int:
    """How many leaves ``tree`` has (``len(leaves(tree))``, without building anything).

    Raises:
        TypeError: the tree holds something that is neither a leaf nor a node.
    """
    if isinstance(tree, _LEAF_TYPES):
        return 1
    if tree is None:
        return 0
    cls = type(tree)
    if cls is tuple or cls is list or (isinstance(tree, tuple) and hasattr(cls, "_fields")):
        return sum(num_leaves(c) for c in tree)
    if attrs.has(cls):
        return sum(num_leaves(getattr(tree, n)) for n in _attrs_layout(cls)[0])
    return structure(tree).num_leaves  # dicts (their keys are checked there) and errors


def structure(tree: Any) -> TreeDef:
    """The structure (TreeDef) of a tree."""
    return flatten(tree)[1]


def _path_step(treedef: TreeDef, i: int) -> str:
    if treedef.kind == "dict":
        return f"[{treedef.meta[i]!r}]"
    if treedef.kind == "attrs":
        return "." + str(treedef.meta[0][i])
    if treedef.kind == "namedtuple":
        return "." + str(treedef.meta[i])
    return f"[{i}]"


def _paths(treedef: TreeDef, prefix: str, out: list[str]) -> None:
    if treedef.kind == "leaf":
        out.append(prefix)
        return
    for i, child in enumerate(treedef.children):
        _paths(child, prefix + _path_step(treedef, i), out)


def paths(tree: Any) -> list[str]:
    """The path of every leaf, in flatten order, e.g. ``"[0].w"`` or ``"['opt'].m"``.

    The root leaf's path is the empty string.
    """
    out: list[str] = []
    _paths(structure(tree), "", out)
    return out


def _node_name(treedef: TreeDef) -> str:
    if treedef.kind == "leaf":
        return "an array leaf"
    if treedef.kind == "none":
        return "None"
    if treedef.kind in ("attrs", "namedtuple"):
        return cast(type, treedef.node_type).__name__
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
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(treedef.meta, kids)) + "}"
    names = treedef.meta if treedef.kind == "namedtuple" else treedef.meta[0]
    return f"{_node_name(treedef)}(" + ", ".join(f"{n}={v}" for n, v in zip(names, kids)) + ")"


def difference(a: TreeDef, b: TreeDef, path: str = "") -> str | None:
    """Where two structures first differ, in words, or ``None`` if they are equal.

    ``a`` is taken as the expected structure and ``b`` as the received one.
    """
    if a == b:
        return None
    where = f"at {path or 'the root'}"
    if a.kind != b.kind or a.node_type is not b.node_type:
        return f"{where}: expected {_node_name(a)}, got {_node_name(b)}"
    if a.kind == "dict" and a.meta != b.meta:
        return f"{where}: expected dict keys {list(a.meta)}, got {list(b.meta)}"
    if len(a.children) != len(b.children):
        return (
            f"{where}: expected {_node_name(a)} with {len(a.children)} children, "
            f"got {len(b.children)}"
        )
    if a.kind == "attrs" and a.meta != b.meta:
        return f"{where}: static fields differ: expected {a.meta[2]}, got {b.meta[2]}"
    for i, (ca, cb) in enumerate(zip(a.children, b.children)):
        found = difference(ca, cb, path + _path_step(a, i))
        if found is not None:
            return found
    return f"{where}: structures differ"  # pragma: no cover - equal children, equal meta


def assert_same_structure(expected: Any, got: Any, what: str = "trees") -> None:
    """Raise a ValueError naming the first difference if two trees' structures differ."""
    found = difference(structure(expected), structure(got))
    if found is not None:
        raise ValueError(f"{what} do not have the same structure {found}")


def _flatten_like(treedef: TreeDef, other: Any, what: str) -> list[Any]:
    other_leaves, other_def = flatten(other)
    if other_def != treedef:
        raise ValueError(f"{what} do not have the same structure {difference(treedef, other_def)}")
    return other_leaves


def map(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``f`` leaf by leaf to one tree, or to several trees of the same structure.

    ``map(f, a, b)`` returns a tree shaped like ``a`` whose leaves are ``f(leaf_a, leaf_b)``.

    Raises:
        ValueError: the trees do not share one structure (the message says where).
    """
    first, treedef = flatten(tree)
    others = [_flatten_like(treedef, r, "trees passed to fnn.tree.map") for r in rest]
    return unflatten(treedef, [f(*xs) for xs in zip(first, *others)])


def add(a: T, b: T) -> T:
    """Leafwise ``a + b`` of two trees of the same structure."""
    return cast(T, map(np.add, a, b))


def sub(a: T, b: T) -> T:
    """Leafwise ``a - b`` of two trees of the same structure."""
    return cast(T, map(np.subtract, a, b))


def scale(s: float, a: T) -> T:
    """Leafwise ``s * a``; ``s`` acts as a Python float, so float32 leaves stay float32."""
    factor = float(s)
    return cast(T, map(lambda x: np.multiply(x, factor), a))


def zeros_like(a: T) -> T:
    """A tree like ``a`` whose leaves are zeros of the same shapes and dtypes."""
    return cast(T, map(np.zeros_like, a))


def astype(a: T, dtype: Any) -> T:
    """A tree like ``a`` with every floating leaf converted to ``dtype`` (others unchanged)."""
    target = np.dtype(dtype)

    def convert(x: Any) -> Any:
        arr = np.asarray(x)
        if np.issubdtype(arr.dtype, np.floating):
            return arr.astype(target)
        return x

    return cast(T, map(convert, a))


def vdot(a: Any, b: Any) -> float:
    """The sum over leaves of ``sum(a_leaf * b_leaf)``, as a Python float."""
    total = 0.0
    for x, y in zip(leaves(a), _flatten_like(structure(a), b, "trees passed to fnn.tree.vdot")):
        total += float(np.vdot(np.asarray(x).ravel(), np.asarray(y).ravel()))
    return total


def global_norm(a: Any) -> float:
    """The Euclidean norm of all leaves of a tree taken together, as a Python float."""
    return math.sqrt(builtins.sum(float(np.vdot(x, x)) for x in (np.ravel(v) for v in leaves(a))))


def weight_mask(tree: Any) -> Any:
    """A tree like ``tree`` with ``True`` at leaves held by ``field(weight=True)`` fields.

    Leaves anywhere below a weight field count as weights; every other leaf is ``False``.
    """
    out: list[bool] = []
    _weight_flags(tree, False, out)
    return unflatten(structure(tree), out)


def _weight_flags(node: Any, inside: bool, out: list[bool]) -> None:
    if isinstance(node, _LEAF_TYPES):
        out.append(inside)
    elif node is None:
        return
    elif isinstance(node, (tuple, list)):
        for c in node:
            _weight_flags(c, inside, out)
    elif isinstance(node, dict):
        for k in sorted(node):
            _weight_flags(node[k], inside, out)
    elif attrs.has(type(node)):
        for f in attrs.fields(type(node)):
            if not f.metadata.get(_STATIC, False):
                _weight_flags(getattr(node, f.name), inside or f.metadata.get(_WEIGHT, False), out)
    else:
        flatten(node)  # raises the TypeError that names the offending type


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
    lb = _flatten_like(da, b, "trees passed to fnn.tree.max_abs_difference")
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


def size(tree: Any) -> int:
    """The total number of scalar entries over all leaves."""
    return builtins.sum(int(np.size(x)) for x in leaves(tree))


def array_leaves(tree: Any) -> list[Array]:
    """The leaves of a tree as NumPy arrays (numbers become 0-d arrays)."""
    return [np.asarray(x) for x in leaves(tree)]


LeafGetter = Callable[[Any, list[Any]], bool]
Builder = Callable[[Iterator[Any]], Any]


def _compile_getter(td: TreeDef) -> LeafGetter:
    """A function that appends a tree's leaves to a list and returns True, or returns
    False as soon as the tree does not have structure ``td`` (no TreeDef is built)."""
    kind = td.kind
    if kind == "leaf":

        def leaf(node: Any, out: list[Any]) -> bool:
            if isinstance(node, _LEAF_TYPES):
                out.append(node)
                return True
            return False

        return leaf
    if kind == "none":
        return lambda node, out: node is None
    subs = [_compile_getter(c) for c in td.children]
    n = len(subs)
    node_type: Any = td.node_type
    if kind in ("tuple", "list", "namedtuple"):

        def sequence(node: Any, out: list[Any]) -> bool:
            if type(node) is not node_type or len(node) != n:
                return False
            return all(get(child, out) for get, child in zip(subs, node))

        return sequence
    if kind == "dict":
        keys = td.meta

        def mapping(node: Any, out: list[Any]) -> bool:
            if type(node) is not dict or len(node) != n:
                return False
            try:
                return all(get(node[k], out) for get, k in zip(subs, keys))
            except KeyError:
                return False

        return mapping
    names, _aliases, static_items = td.meta

    def record(node: Any, out: list[Any]) -> bool:
        if type(node) is not node_type:
            return False
        if any(getattr(node, k) != v for k, v in static_items):
            return False
        return all(get(getattr(node, name), out) for get, name in zip(subs, names))

    return record


def _compile_builder(td: TreeDef) -> Builder:
    """A function that builds a tree of structure ``td`` from an iterator of leaves."""
    kind = td.kind
    if kind == "leaf":
        return next
    if kind == "none":
        return lambda it: None
    subs = [_compile_builder(c) for c in td.children]
    node_type = cast(Callable[..., Any], td.node_type)
    if kind == "tuple":
        return lambda it: tuple([b(it) for b in subs])
    if kind == "list":
        return lambda it: [b(it) for b in subs]
    if kind == "namedtuple":
        return lambda it: node_type(*[b(it) for b in subs])
    if kind == "dict":
        keys = td.meta
        return lambda it: {k: b(it) for k, b in zip(keys, subs)}
    _names, aliases, static_items = td.meta
    static = dict(static_items)

    def record(it: Iterator[Any]) -> Any:
        kwargs = {a: b(it) for a, b in zip(aliases, subs)}
        kwargs.update(static)
        return node_type(**kwargs)

    return record


@attrs.frozen(eq=False)
class Layout:
    """How a tree of same-dtype arrays maps onto one flat 1-D buffer (like ``ravel_pytree``).

    Leaf ``i`` occupies ``flat[offsets[i]:offsets[i + 1]]`` in C order. Build one with
    :func:`ravel`; :meth:`unravel` turns a buffer back into a tree of views into it.
    Both directions are compiled once per layout into straight-line code, so they cost
    a few microseconds for a small model.
    """

    treedef: TreeDef
    shapes: tuple[tuple[int, ...], ...]
    dtype: np.dtype[Any]
    offsets: tuple[int, ...]
    weights: tuple[bool, ...]
    """Per leaf: whether it is held by a ``field(weight=True)`` (see :func:`weight_mask`)."""
    _getter: LeafGetter = attrs.field(init=False, repr=False)
    _builder: Builder = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_getter", _compile_getter(self.treedef))
        object.__setattr__(self, "_builder", _compile_builder(self.treedef))

    def ranges(self, flags: Sequence[bool]) -> list[tuple[int, int]]:
        """The ``(start, stop)`` spans of the flat buffer of the leaves whose flag is true,
        with adjacent spans merged."""
        spans: list[tuple[int, int]] = []
        for i, flag in enumerate(flags):
            if flag:
                start, stop = self.offsets[i], self.offsets[i + 1]
                if spans and spans[-1][1] == start:
                    spans[-1] = (spans[-1][0], stop)
                elif stop > start:
                    spans.append((start, stop))
        return spans

    @property
    def size(self) -> int:
        """The length of the flat buffer."""
        return self.offsets[-1]

    def unravel(self, flat: Array) -> Any:
        """A tree of this layout whose leaves are views into ``flat`` (no copy).

        Views of a read-only buffer are read-only.
        """
        if flat.shape != (self.size,) or flat.dtype != self.dtype:
            raise ValueError(
                f"expected a flat {self.dtype} buffer of shape ({self.size},), "
                f"got {flat.dtype} {flat.shape}"
            )
        return self._builder(iter(self.views(flat)))

    def views(self, flat: Array) -> list[Array]:
        """The leaves of this layout as views into ``flat``, in flatten order (writable
        when ``flat`` is): for writing a tree's values straight into a flat buffer."""
        o = self.offsets
        return [flat[o[i] : o[i + 1]].reshape(s) for i, s in enumerate(self.shapes)]

    def leaves(self, tree: Any, what: str = "tree") -> list[Any]:
        """The leaves of a tree that has this layout's structure.

        Raises:
            ValueError: the structure differs (the message names where).
        """
        out: list[Any] = []
        if self._getter(tree, out):
            return out
        return _flatten_like(self.treedef, tree, f"{what} and the params")

    def ravel(self, tree: Any, what: str = "tree") -> Array:
        """Copy a tree of this layout into a new flat buffer, checking shapes and dtypes.

        Raises:
            ValueError: the structure, a shape or a dtype differs (naming the leaf).
        """
        values = self.leaves(tree, what)
        for i, (x, shape) in enumerate(zip(values, self.shapes)):
            if type(x) is not np.ndarray or x.shape != shape or x.dtype != self.dtype:
                arr = np.asarray(x)
                if arr.shape != shape or arr.dtype != self.dtype:
                    where = paths(tree)[i] or "the root"
                    raise ValueError(
                        f"{what} at {where}: expected {self.dtype} of shape {shape}, "
                        f"got {arr.dtype} of shape {arr.shape}"
                    )
                values[i] = arr
        out = np.empty(self.size, dtype=self.dtype)
        if values:
            np.concatenate([np.ravel(v) for v in values], out=out)
        return out


def ravel(tree: Any) -> tuple[Array, Layout]:
    """Copy the leaves of a tree into one new flat buffer and describe the layout.

    All leaves must be floating arrays (or floats) of one dtype; Python floats become
    0-d arrays of that dtype. Returns ``(flat, layout)`` with
    ``layout.unravel(flat)`` equal to ``tree``.

    Raises:
        TypeError: a leaf is not floating, or the leaves mix dtypes.
    """
    values, treedef = flatten(tree)
    dtypes = {np.asarray(x).dtype for x in values if not isinstance(x, float)}
    if len(dtypes) > 1:
        found = ", ".join(sorted(str(d) for d in dtypes))
        raise TypeError(f"expected all leaves to share one floating dtype, got {found}")
    dtype = dtypes.pop() if dtypes else np.dtype(np.float64)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"expected floating leaves, got {dtype}")
    arrays = [np.asarray(x, dtype=dtype) for x in values]
    shapes = tuple(a.shape for a in arrays)
    offsets = [0]
    for a in arrays:
        offsets.append(offsets[-1] + a.size)
    weights = tuple(bool(w) for w in leaves(weight_mask(tree)))
    layout = Layout(treedef, shapes, dtype, tuple(offsets), weights)
    flat = np.empty(layout.size, dtype=dtype)
    for i, a in enumerate(arrays):
        flat[offsets[i] : offsets[i + 1]] = a.ravel()
    return flat, layout
