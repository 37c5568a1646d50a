"""The fully connected layer ``y = x @ w + b``."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from numpy.typing import DTypeLike

from .. import _checks
from .. import tree as _tree
from .._types import Array, Shape
from ..random import Key
from ._init import Initializer, initializer
from ._layer import (
    Layer,
    Shapes,
    check_in_shape,
    check_input,
    check_no_state,
    param_dtype,
    placeholder,
    readonly,
)
from ._registry import register


@attrs.frozen(eq=False)
class DenseParams:
    """Parameters of :func:`dense`: weights ``w`` of shape ``(in, out)``, biases ``b`` ``(out,)``.

    Both are stored as read-only arrays; ``w`` is marked as a weight (L2 and weight
    decay act on it), ``b`` is not.
    """

    w: Array = _tree.field(weight=True, converter=readonly)
    b: Array = _tree.field(converter=readonly)


_tree.register_type(DenseParams, "fnn.nn.DenseParams")


def _check_params(params: Any) -> DenseParams:
    if not isinstance(params, DenseParams):
        raise TypeError(f"dense expected DenseParams, got {type(params).__name__}")
    return params


def _wrong_params(features: int, w: Array, b: Array) -> str:
    """What :func:`dense` says of params that are not those of a ``dense(features)``."""
    return (
        f"dense({features}) expected params w of shape (in_features, {features}) and b of "
        f"shape ({features},), of one dtype, got w {w.dtype} {w.shape} and b {b.dtype} "
        f"{b.shape}: the params of another model?"
    )


def _in_features(in_shape: Shape) -> int:
    in_shape = check_in_shape(in_shape, "dense")
    if len(in_shape) != 1:
        raise ValueError(
            f"dense expects inputs of shape (features,) per example, got {in_shape}; "
            "add nn.flatten() before dense"
        )
    return in_shape[0]


@register("dense", types=(DenseParams,))
def dense(features: int, *, weight_init: str | Initializer = "he_normal") -> Layer[DenseParams]:
    """A fully connected layer with ``features`` outputs: ``y = x @ w + b``.

    Args:
        features: the number of outputs.
        weight_init: a name from :mod:`fnn.nn` initializers (``"he_normal"``, the
            default, ``"he_uniform"``, ``"glorot_normal"``, ``"glorot_uniform"``,
            ``"xavier_*"``, ``"lecun_normal"``, ``"zeros"``) or a function
            ``(key, (fan_in, fan_out), dtype) -> array`` (the layer then has no spec).
            Biases start at zero.

    Shapes: ``x (batch, in) -> y (batch, features)``. Params of another width (``w`` not
    ``(in, features)``, ``b`` not ``(features,)``, or the two of different dtypes) raise a
    ValueError naming what was expected and what came.

    Backward, with ``dy`` the gradient w.r.t. ``y``: ``dw = x.T @ dy``,
    ``db = sum(dy, axis=0)``, ``dx = dy @ w.T`` (only when asked for).

    >>> import fnn, numpy as np
    >>> layer = fnn.nn.dense(3)
    >>> p = layer.init(fnn.random.key(0), (2,))
    >>> layer.apply(p, np.ones((4, 2), np.float32)).shape
    (4, 3)
    """
    features = _checks.positive_int(features, "dense features")
    if isinstance(weight_init, str):
        init_w = initializer(weight_init)
    elif callable(weight_init):
        init_w = weight_init
    else:
        raise TypeError(f"weight_init must be a name or a function, got {weight_init!r}")

    def init(key: Key, in_shape: Shape, dtype: DTypeLike = np.float32) -> DenseParams:
        fan_in, dt = _in_features(in_shape), param_dtype(dtype)
        w = np.asarray(init_w(key, (fan_in, features), dt), dtype=dt)
        return DenseParams(w, np.zeros(features, dtype=dt))

    def shapes(in_shape: Shape, dtype: DTypeLike = np.float32) -> Shapes:
        fan_in, dt = _in_features(in_shape), param_dtype(dtype)
        w, b = placeholder((fan_in, features), dt), placeholder((features,), dt)
        return Shapes((features,), DenseParams(w, b))

    def infer(params: DenseParams, x: Array, state: None) -> Array:
        params = _check_params(params)
        if state is not None:
            check_no_state(state, "dense")
        w, b = params.w, params.b
        if w.shape[1:] != (features,) or b.shape != (features,) or b.dtype != w.dtype:
            raise ValueError(_wrong_params(features, w, b))
        x = check_input(x, "dense", w.dtype)
        fan_in = params.w.shape[0]
        if x.ndim != 2 or x.shape[1] != fan_in:
            hint = "; add nn.flatten() before dense" if x.ndim > 2 else ""
            raise ValueError(
                f"dense expected input of shape (batch, {fan_in}), got {x.shape}{hint}"
            )
        y = x @ params.w
        y += params.b
        return y

    def forward(
        params: DenseParams, x: Array, state: None, key: Key | None
    ) -> tuple[Array, None, Array]:
        return infer(params, x, state), None, x

    def backward(
        params: DenseParams, x: Array, dy: Array, need_dx: bool, out: list[Array]
    ) -> Array | None:
        dw, db = out
        np.matmul(x.T, dy, out=dw)
        np.add.reduce(dy, axis=0, out=db)
        return dy @ params.w.T if need_dx else None

    return Layer(init, shapes, infer, forward, backward)
