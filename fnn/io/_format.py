"""The fnn file format's constants, its error type and argument checks (private).

Version 1 of the format (specified in FORMAT.md beside this module): a ZIP archive of uncompressed
members, ``fnn.json`` (the description) and ``leaf_<i>.npy`` (one ``.npy`` array per leaf,
numbered in the tree's flatten order).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

FORMAT = "fnn"
"""The value of the description's ``"format"`` entry."""

VERSION = 1
"""The format version this fnn writes and the only one it reads."""

DESCRIPTION = "fnn.json"
"""The member that holds the JSON description."""

MAX_DEPTH = 200
"""How deeply the JSON description may nest, counting each object and list, the
description's own object as 1 (a tree's node with children takes two levels, a leaf node
two, a ``None`` node one; the tree's root is at level 2)."""

MAX_TREE_DEPTH = MAX_DEPTH // 2
"""A bound on :func:`fnn.tree.depth` checked before anything walks a tree recursively:
deeper trees cannot fit in ``MAX_DEPTH`` JSON levels. The exact limit is the
description's depth: 99 levels of nodes above a ``None``, 98 above a leaf."""

MAX_SPEC_DEPTH = 64
"""How deeply a model's layer spec may nest (a ``serial`` inside a ``serial`` takes two)."""

MAX_SPEC_LAYERS = 10_000
"""The most layers a model's spec may hold, nested ones included (the MLP of ``fnn train``
has 7, a ResNet-152 about 500); a longer spec is refused before any layer is built."""

MAX_DESCRIPTION_BYTES = 16 * 2**20
"""The largest description accepted: about 150,000 leaves."""

MAX_NPY_HEADER = 65535
"""The largest ``.npy`` header accepted, in bytes (what a version 1.0 header can hold)."""

MAX_NDIM = 32
"""The most axes a leaf may have (NumPy 1.x's limit)."""

MAX_LEAF_SPAN = 2**62
"""The most a leaf's shape may declare: the product of its non-zero axes times its item
size, in bytes. A leaf holding data is bounded by the file's size already; this bounds a
zero-size one too (shape ``[0, 2**62]`` takes no bytes, but NumPy cannot make an array of
it), below NumPy's own limit on 64-bit platforms (``2**63 - 1``)."""

_LEAF_MEMBER = re.compile(r"leaf_(0|[1-9][0-9]{0,8})\.npy")


class FormatError(ValueError):
    """A file is not a valid fnn file: not a ZIP archive, truncated, corrupted, of another
    format version, or holding anything the format does not allow (pickled objects, unknown
    type names, unexpected or duplicate members, sizes that do not add up).

    A subclass of :class:`ValueError`, so ``except ValueError`` catches it too. The message
    names the file and what was wrong.
    """


def leaf_member(index: int) -> str:
    """The member name of leaf ``index``: ``leaf_<index>.npy``."""
    return f"leaf_{index}.npy"


def leaf_index(name: str) -> int | None:
    """The index of a ``leaf_<i>.npy`` member name, or ``None`` for any other name."""
    found = _LEAF_MEMBER.fullmatch(name)
    return int(found.group(1)) if found else None


def check_path(path: Any) -> Path:
    """``path`` as a :class:`~pathlib.Path`; it must be a ``str`` or ``os.PathLike[str]``.

    Raises:
        TypeError: any other type (bytes paths included).
    """
    if isinstance(path, (str, os.PathLike)):
        name = os.fspath(path)
        if isinstance(name, str):
            return Path(name)
    raise TypeError(f"expected a path as str or os.PathLike[str], got {type(path).__name__}")


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters for error messages about hostile data."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
