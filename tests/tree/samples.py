"""Trees with every kind of node, for the tests of fnn.tree."""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np

from fnn import tree


@attrs.frozen(eq=False)
class Pair:
    w: Any = tree.field(weight=True)
    b: Any = tree.field()


@attrs.frozen(eq=False)
class WithStatic:
    x: Any
    name: str = tree.field(static=True, default="a")


@attrs.frozen(eq=False)
class MetadataPair:
    """:class:`Pair` and :class:`WithStatic`'s fields in one record, declared with
    ``attrs.field(metadata=...)`` (as the README does) instead of ``tree.field``."""

    w: Any = attrs.field(metadata={**tree.WEIGHT, "unit": "m"})
    b: Any
    name: str = attrs.field(metadata=tree.STATIC, default="a")


class Point(NamedTuple):
    x: Any
    y: Any


def sample() -> Any:
    return {
        "b": (np.arange(3.0), None, [1.0, np.float32(2.0)]),
        "a": Pair(np.ones((2, 2)), np.zeros(2)),
        "c": Point(np.array(5), 7),
    }
