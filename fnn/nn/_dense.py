"""The fully connected layer ``y = x @ w + b``."""

from __future__ import annotations

from typing import Any, Literal, overload

import attrs
import numpy as np

from .. import _checks
from .. import tree as _tree
from .._types import Array, Shape
from ..random import Key
from ._init import Initializer, initializer_of
from ._layer import Declared, Layer, param, readonly
from ._registry import register


@attrs.frozen(eq=False)
class DenseParams:
    """Parameters of :func:`dense`: weights ``w`` of shape ``(in, out)``, biases ``b`` ``(out,)``.

    Both are stored as read-only arrays; ``w`` is marked as a weight (L2 and weight
    decay act on it), ``b`` is not.
    """

    w: Array = attrs.field(converter=readonly, metadata=_tree.WEIGHT)
    b: Array = attrs.field(converter=readonly)


@attrs.frozen(eq=False)
class WeightParams:
    """Parameters of :func:`dense` without a bias: weights ``w`` ``(in, out)``, read-only,
    a weight (L2 and weight decay act on it)."""

    w: Array = attrs.field(converter=readonly, metadata=_tree.WEIGHT)


@overload
def dense(
    features: int, *, weight_init: str | Initializer = ..., bias: Literal[True] = True
) -> Layer[DenseParams, None]: ...


@overload
def dense(
    features: int, *, weight_init: str | Initializer = ..., bias: Literal[False]
) -> Layer[WeightParams, None]: ...


@overload
def dense(
    features: int, *, weight_init: str | Initializer = ..., bias: bool = True
) -> Layer[DenseParams, None] | Layer[WeightParams, None]: ...


@register("dense", types=(DenseParams, WeightParams))
def dense(
    features: int, *, weight_init: str | Initializer = "he_normal", bias: bool = True
) -> Layer[Any, Any]:
    """A fully connected layer with ``features`` outputs: ``y = x @ w + b``.

    Args:
        features: the number of outputs.
        weight_init: a registered initializer's name (``"he_normal"``, the default,
            ``"he_uniform"``, ``"glorot_normal"``, ``"glorot_uniform"``, ``"xavier_*"``,
            ``"lecun_normal"``, ``"zeros"``, or one added with
            :func:`register_initializer`) or a function ``(key, (in, features), dtype) ->
            array`` (the layer then has no spec). Biases start at zero.
        bias: whether there is a bias ``b`` (``False``: ``y = x @ w``, params
            :class:`WeightParams`, as the linear layers of GPT-2 without biases).

    Shapes: ``x (batch, ..., in) -> y (batch, ..., features)``: the layer acts on the
    last axis, the same matrix at every position of a sequence ``(batch, time, in)``,
    as one matrix product over all leading axes (``x`` seen as ``(rows, in)``, a view);
    params ``w`` ``(in, features)`` and ``b`` ``(features,)``.

    Backward, with ``dy`` the gradient w.r.t. ``y`` and both seen as ``(rows, ...)``:
    ``dw = x.T @ dy``, ``db = sum(dy, axis=0)``, ``dx = dy @ w.T`` (only when asked for).

    >>> import fnn, numpy as np
    >>> layer = fnn.nn.dense(3)
    >>> p = layer.init(fnn.random.key(0), (2,))
    >>> p.w.shape, p.b.shape
    ((2, 3), (3,))
    >>> layer.apply(p, np.ones((4, 2), np.float32)).shape
    (4, 3)
    """
    features = _checks.positive_int(features, "dense features")
    init_w = initializer_of(weight_init, "weight_init")
    if not isinstance(bias, bool):
        raise TypeError(f"dense bias must be True or False, got {bias!r}")

    def declare(in_shape: Shape) -> Declared[Any, None]:
        if not in_shape:
            raise ValueError(
                "dense expects inputs of shape (batch, ..., features), got examples of "
                "shape (): each example needs a features axis"
            )
        w = param((in_shape[-1], features), init_w)
        params = DenseParams(w, param((features,))) if bias else WeightParams(w)
        return Declared((*in_shape[:-1], features), params)

    def infer(params: Any, x: Array, state: None) -> Array:
        y = rows_product(as_rows(x), params.w)
        if bias:
            y += params.b
        return y if x.ndim == 2 else y.reshape(*x.shape[:-1], features)

    def forward(params: Any, x: Array, state: None, key: Key | None) -> tuple[Array, None, Array]:
        return infer(params, x, state), None, x

    def backward(params: Any, x: Array, dy: Array, need_dx: bool, grads: Any) -> Array | None:
        x2, dy2 = as_rows(x), as_rows(dy)
        np.matmul(x2.T, dy2, out=grads.w)
        if bias:
            np.add.reduce(dy2, axis=0, out=grads.b)
        if not need_dx:
            return None
        dx: Array = dy2 @ params.w.T
        return dx if x.ndim == 2 else dx.reshape(x.shape)

    return Layer(declare, infer, forward, backward)


def rows_product(rows: Array, w: Array) -> Array:
    """``rows @ w`` for ``rows`` ``(n, in)``, as a matrix product (GEMM) even for one row,
    multiplied as two copies of it (one result kept): NumPy gives a single row to a
    vector product (GEMV), which sums in another order than a GEMM does, so a one-token
    sequence alone, or one position decoded, would differ from the same row among others.
    (OpenBLAS's GEMM itself keeps a row's bits whatever rows come with it for many
    shapes, not all: see :mod:`fnn.nn._attention`.)"""
    if len(rows) != 1:
        product: Array = rows @ w
        return product
    two: Array = np.concatenate([rows, rows]) @ w
    return two[:1]


def as_rows(a: Array) -> Array:
    """``a`` ``(batch, ..., n)`` as ``(rows, n)``: a view of a contiguous array, and ``a``
    itself when it has two axes."""
    return a if a.ndim == 2 else a.reshape(-1, a.shape[-1])
