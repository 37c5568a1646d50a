"""Pytrees: nested containers whose leaves are arrays and numbers.

A *tree* is ``None``, a leaf, or a node holding trees:

* leaves: NumPy arrays, NumPy scalars, and Python ``bool``/``int``/``float``/``complex``;
* nodes: tuples, named tuples, lists, dicts with ``str`` keys (visited in sorted key
  order), and attrs classes (visited in field order).

``None`` is an empty node: it holds no leaves, as a parameterless layer's params do.
An attrs field declared ``attrs.field(metadata=STATIC)`` is part of the tree's
*structure*, not a child; a field declared ``attrs.field(metadata=WEIGHT)`` marks the
leaves that weight decay and L2 penalties act on (:func:`field` ``(static=True)`` and
``(weight=True)`` make the same fields, but mypy reads them as optional).

The package holds one concept per module: the structure (:class:`TreeDef`, flatten,
paths, differences, the names of record types), leafwise arithmetic, comparison, and flat
layouts (one buffer for a whole tree, as the optimizers use it).

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

from ._arith import add as add
from ._arith import astype as astype
from ._arith import global_norm as global_norm
from ._arith import map as map
from ._arith import scale as scale
from ._arith import size as size
from ._arith import sub as sub
from ._arith import vdot as vdot
from ._arith import zeros_like as zeros_like
from ._compare import allclose as allclose
from ._compare import equal as equal
from ._compare import fingerprint as fingerprint
from ._compare import first_difference as first_difference
from ._compare import max_abs_difference as max_abs_difference
from ._compare import mismatch as mismatch
from ._layout import Layout as Layout
from ._layout import layout as layout
from ._layout import layout_of as layout_of
from ._layout import ravel as ravel
from ._structure import STATIC as STATIC
from ._structure import TYPES as TYPES
from ._structure import WEIGHT as WEIGHT
from ._structure import TreeDef as TreeDef
from ._structure import assert_same_structure as assert_same_structure
from ._structure import buffers as buffers
from ._structure import buffers_like as buffers_like
from ._structure import depth as depth
from ._structure import difference as difference
from ._structure import field as field
from ._structure import flatten as flatten
from ._structure import leaf_paths as leaf_paths
from ._structure import leaves as leaves
from ._structure import node as node
from ._structure import num_leaves as num_leaves
from ._structure import path_step as path_step
from ._structure import paths as paths
from ._structure import record_fields as record_fields
from ._structure import register_type as register_type
from ._structure import registered_name as registered_name
from ._structure import structure as structure
from ._structure import type_name as type_name
from ._structure import unflatten as unflatten
from ._structure import weight_mask as weight_mask

__all__ = [
    "Layout",
    "STATIC",
    "TYPES",
    "TreeDef",
    "WEIGHT",
    "add",
    "allclose",
    "assert_same_structure",
    "astype",
    "buffers",
    "buffers_like",
    "depth",
    "difference",
    "equal",
    "field",
    "fingerprint",
    "first_difference",
    "flatten",
    "global_norm",
    "layout",
    "layout_of",
    "leaf_paths",
    "leaves",
    "map",
    "max_abs_difference",
    "mismatch",
    "node",
    "num_leaves",
    "path_step",
    "paths",
    "ravel",
    "record_fields",
    "register_type",
    "registered_name",
    "scale",
    "size",
    "structure",
    "sub",
    "type_name",
    "unflatten",
    "vdot",
    "weight_mask",
    "zeros_like",
]
