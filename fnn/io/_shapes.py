"""The params a layer spec will build, worked out without building them (private).

``load_model`` compares a file's params with :func:`expected_params` *before* it calls the
rebuilt model's ``init``, so the numbers in a hostile spec (``dense`` with 2**31 features)
cannot make it allocate more than the file itself holds: once the shapes agree, ``init``
builds exactly as many bytes as the file's params take.

Each of fnn's layer names needs a rule here; a name without one is refused (fail closed).
A new parameterless layer is one more name in ``_NO_PARAMS``; a layer with params needs a
branch in :func:`expected_params` that returns the node of its params.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn
from .._types import Shape
from ._describe import Leaf, Node
from ._types import type_name

_NO_PARAMS = frozenset(
    {
        "flatten",
        "identity",
        "leaky_relu",
        "linear",
        "log_softmax",
        "relu",
        "sigmoid",
        "softmax",
        "tanh",
    }
)
"""Layer names whose params are ``None``."""

KNOWN = _NO_PARAMS | {"dense", "serial"}
"""Every layer name :func:`expected_params` has a rule for."""


class UnknownLayerError(ValueError):
    """A layer name without a rule in this module."""


def _leaf(shape: Shape, dtype: np.dtype[Any]) -> Node:
    return Node("leaf", leaf=Leaf(0, "array", dtype, shape))


def expected_params(spec: Any, in_shape: Shape, dtype: np.dtype[Any]) -> tuple[Node, Shape]:
    """The node of the params that ``nn.from_spec(spec).init(key, in_shape, dtype)`` returns,
    and the layer's output shape; no array is built.

    ``spec`` must be a spec that :func:`fnn.nn.from_spec` accepts (check that first).

    Raises:
        UnknownLayerError: a layer name that has no rule here.
        ValueError, TypeError: ``in_shape`` does not suit a layer (as its ``init`` would).
    """
    name = spec["layer"]
    if name == "serial":
        children = []
        shape = in_shape
        for child in spec["layers"]:
            node, shape = expected_params(child, shape, dtype)
            children.append(node)
        return Node("tuple", tuple(children)), shape
    if name == "dense":
        if len(in_shape) != 1:
            raise ValueError(f"dense expects inputs of shape (features,), got {in_shape}")
        features = int(spec["features"])
        w, b = _leaf((in_shape[0], features), dtype), _leaf((features,), dtype)
        return Node("attrs", (w, b), ("w", "b"), type_name(nn.DenseParams)), (features,)
    if name in _NO_PARAMS:
        return Node("none"), nn.from_spec(spec).output_shape(in_shape)
    raise UnknownLayerError(
        f"load_model cannot check the params of layer {name!r} before building them: "
        "add a rule for it in fnn/io/_shapes.py"
    )
