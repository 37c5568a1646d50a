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
from ._layer import Layer, check_shape, param_dtype, readonly


@attrs.frozen(eq=False)
class DenseParams:
    """Parameters of :func:`dense`: weights ``w`` of shape ``(in, out)``, biases ``b`` ``(out,)``.

    Both are stored as read-only arrays; ``w`` is marked as a weight (L2 and weight
    decay act on it), ``b`` is not.
    """

    w: Array = _tree.field(weight=True, converter=readonly)
    b: Array = _tree.field(converter=readonly)


def _check_params(params: Any) -> DenseParams:
    if not isinstance(params, DenseParams):
        raise TypeError(f"dense expected DenseParams, got {type(params).__name__}")
    return params


def _check_input(params: DenseParams, x_in: Any) -> Array:
    x = _checks.float_array(x_in, "dense input", params.w.dtype)
    fan_in = params.w.shape[0]
    if x.ndim != 2 or x.shape[1] != fan_in:
        hint = "; add nn.flatten() before dense" if x.ndim > 2 else ""
        raise ValueError(f"dense expected input of shape (batch, {fan_in}), got {x.shape}{hint}")
    return x


def dense(features: int, *, weight_init: str | Initializer = "he_normal") -> Layer[DenseParams]:
    """A fully connected layer with ``features`` outputs: ``y = x @ w + b``.

    Args:
        features: the number of outputs.
        weight_init: a name from :mod:`fnn.nn` initializers (``"he_normal"``, the
            default, ``"he_uniform"``, ``"glorot_normal"``, ``"glorot_uniform"``,
            ``"xavier_*"``, ``"lecun_normal"``, ``"zeros"``) or a function
            ``(key, (fan_in, fan_out), dtype) -> array``. Biases start at zero.

    Shapes: ``x (batch, in) -> y (batch, features)``.

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
        spec: dict[str, Any] | None = {
            "layer": "dense",
            "features": features,
            "weight_init": weight_init,
        }
    elif callable(weight_init):
        init_w, spec = weight_init, None
    else:
        raise TypeError(f"weight_init must be a name or a function, got {weight_init!r}")

    def init(key: Key, in_shape: Shape, dtype: DTypeLike = np.float32) -> DenseParams:
        in_shape = check_shape(in_shape, "dense")
        if len(in_shape) != 1:
            raise ValueError(
                f"dense expects inputs of shape (features,) per example, got {in_shape}; "
                "add nn.flatten() before dense"
            )
        dt = param_dtype(dtype)
        w = np.asarray(init_w(key, (in_shape[0], features), dt), dtype=dt)
        return DenseParams(w, np.zeros(features, dtype=dt))

    def output_shape(in_shape: Shape) -> Shape:
        return (features,)

    def apply(params: DenseParams, x: Array) -> Array:
        params = _check_params(params)
        y = _check_input(params, x) @ params.w
        y += params.b
        return y

    def forward(params: DenseParams, x: Array) -> tuple[Array, Array]:
        return apply(params, x), x

    def backward_into(
        params: DenseParams, x: Array, dy: Array, need_dx: bool, out: list[Array]
    ) -> Array | None:
        dw, db = out
        np.matmul(x.T, dy, out=dw)
        np.add.reduce(dy, axis=0, out=db)
        return dy @ params.w.T if need_dx else None

    def backward(
        params: DenseParams, x: Array, dy: Array, need_dx: bool
    ) -> tuple[DenseParams, Array | None]:
        dw, db = np.empty_like(params.w), np.empty_like(params.b)
        dx = backward_into(params, x, dy, need_dx, [dw, db])
        return DenseParams(dw, db), dx

    return Layer(init, output_shape, apply, forward, backward, spec, backward_into)
