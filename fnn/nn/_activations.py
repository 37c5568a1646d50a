"""Activations and other layers without params or state (their params are ``None``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _checks
from .._types import Array, Shape
from ..random import Key
from ._layer import Declared, Layer
from ._registry import register


def parameterless(
    forward: Callable[[Array], tuple[Array, Any]],
    backward: Callable[[Any, Array], Array],
    *,
    output_shape: Callable[[Shape], Shape] | None = None,
) -> Layer[None]:
    """A layer without params or state from two functions of arrays.

    Args:
        forward: ``forward(x) -> (y, residuals)``, for inference and training alike.
        backward: ``backward(residuals, dy) -> dx``.
        output_shape: ``output_shape(in_shape) -> out_shape`` (default: the same shape);
            a ValueError there refuses an input shape.

    The layer computes ``dx`` only when asked. Register its constructor with
    :func:`register` (``activation=True`` for an activation) to name it and to save models
    that use it.

    Returns:
        A ``Layer[None]``: no params (``init`` gives ``None``), no state, not stochastic,
        and no ``spec`` until a registered constructor returns it.

    >>> import fnn, numpy as np
    >>> square = fnn.nn.parameterless(lambda x: (x * x, x), lambda x, dy: 2 * x * dy)
    >>> square.apply(None, np.array([[1.0, -3.0]], np.float32))
    array([[1., 9.]], dtype=float32)
    >>> square.init(fnn.random.key(0), (2,)), square.output_shape((2,))
    (None, (2,))
    """

    def declare(in_shape: Shape) -> Declared[None]:
        return Declared(in_shape if output_shape is None else output_shape(in_shape))

    def infer(params: None, x: Array, state: None) -> Array:
        return forward(x)[0]

    def train_forward(
        params: None, x: Array, state: None, key: Key | None
    ) -> tuple[Array, None, Any]:
        y, residuals = forward(x)
        return y, None, residuals

    def train_backward(
        params: None, res: Any, dy: Array, need_dx: bool, grads: None
    ) -> Array | None:
        return backward(res, dy) if need_dx else None

    return Layer(declare, infer, train_forward, train_backward)


def _relu_forward(x: Array) -> tuple[Array, Array]:
    y = np.maximum(x, 0)
    return y, y


@register("relu", activation=True)
def relu() -> Layer[None]:
    """``y = max(x, 0)``; backward ``dx = dy * (x > 0)`` (zero at the kink).

    Shapes: any ``(batch, ...)``, kept; no params.

    >>> import fnn, numpy as np
    >>> fnn.nn.relu().apply(None, np.array([[-1.0, 0.0, 2.0]], np.float32))
    array([[0., 0., 2.]], dtype=float32)
    """
    return parameterless(_relu_forward, lambda y, dy: np.multiply(dy, y > 0))


@register("leaky_relu", activation=True)
def leaky_relu(negative_slope: float = 0.01) -> Layer[None]:
    """``y = x`` where ``x > 0``, else ``negative_slope * x``; backward ``dx = dy`` where
    ``x > 0``, else ``negative_slope * dy``.

    Shapes: any ``(batch, ...)``, kept; no params.

    Args:
        negative_slope: the slope for ``x <= 0``, a finite number.

    Raises:
        TypeError: ``negative_slope`` is not a number.
        ValueError: ``negative_slope`` is not finite.

    >>> import fnn, numpy as np
    >>> fnn.nn.leaky_relu(0.1).apply(None, np.array([[-2.0, 0.0, 3.0]], np.float32))
    array([[-0.2,  0. ,  3. ]], dtype=float32)
    """
    slope = _checks.real(negative_slope, "negative_slope")
    if not math.isfinite(slope):
        raise ValueError(f"leaky_relu needs a finite negative_slope, got {negative_slope}")

    def forward(x: Array) -> tuple[Array, Array]:
        positive = x > 0
        return np.where(positive, x, x * slope), positive

    def backward(positive: Array, dy: Array) -> Array:
        return np.where(positive, dy, dy * slope)

    return parameterless(forward, backward)


def _sigmoid_forward(x: Array) -> tuple[Array, Array]:
    # e = exp(-|x|) never overflows; sigmoid'(x) = e / (1 + e)**2 on both sides.
    e = np.exp(-np.abs(x))
    denom = 1 + e
    y = np.where(x >= 0, 1 / denom, e / denom)
    return y, e / (denom * denom)


@register("sigmoid", activation=True)
def sigmoid() -> Layer[None]:
    """``y = 1 / (1 + exp(-x))``, computed without overflow; ``dx = dy * y * (1 - y)``.

    Shapes: any ``(batch, ...)``, kept; no params.

    >>> import fnn, numpy as np
    >>> fnn.nn.sigmoid().apply(None, np.array([[-1e4, 0.0, 1e4]], np.float32))
    array([[0. , 0.5, 1. ]], dtype=float32)
    """
    return parameterless(_sigmoid_forward, lambda slope, dy: dy * slope)


def _tanh_forward(x: Array) -> tuple[Array, Array]:
    y = np.tanh(x)
    return y, y


@register("tanh", activation=True)
def tanh() -> Layer[None]:
    """``y = tanh(x)``; ``dx = dy * (1 - y**2)``.

    Shapes: any ``(batch, ...)``, kept; no params.

    >>> import fnn, numpy as np
    >>> fnn.nn.tanh().apply(None, np.array([[-1e4, 0.0, 1e4]], np.float32))
    array([[-1.,  0.,  1.]], dtype=float32)
    """
    return parameterless(_tanh_forward, lambda y, dy: dy * (1 - y * y))


def _softmax_forward(x: Array) -> tuple[Array, Array]:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    return y, y


def _softmax_backward(y: Array, dy: Array) -> Array:
    dx: Array = y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    return dx


@register("softmax", activation=True)
def softmax() -> Layer[None]:
    """``y = exp(x) / sum(exp(x))`` over the last axis (shifted by the max: no overflow).

    Backward: ``dx = y * (dy - sum(dy * y))``. For training, prefer logits with
    :func:`fnn.losses.softmax_cross_entropy`; a model ending in ``softmax`` pairs with
    :func:`fnn.losses.categorical_cross_entropy`.

    Shapes: any ``(batch, ..., classes)``, kept; each row along the last axis sums to 1.

    >>> import fnn, numpy as np
    >>> fnn.nn.softmax().apply(None, np.array([[0.0, 0.0], [1e4, 0.0]], np.float32))
    array([[0.5, 0.5],
           [1. , 0. ]], dtype=float32)
    """
    return parameterless(_softmax_forward, _softmax_backward)


def _log_softmax_forward(x: Array) -> tuple[Array, Array]:
    z = x - x.max(axis=-1, keepdims=True)
    y = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return y, y


@register("log_softmax", activation=True)
def log_softmax() -> Layer[None]:
    """``y = x - logsumexp(x)`` over the last axis; ``dx = dy - exp(y) * sum(dy)``.

    Shapes: any ``(batch, ..., classes)``, kept; shifted by the max, so large logits
    neither overflow nor give ``log(0)``.

    >>> import fnn, numpy as np
    >>> y = fnn.nn.log_softmax().apply(None, np.array([[0.0, 0.0], [1e4, 0.0]]))  # float64
    >>> np.round(y, 4).tolist()
    [[-0.6931, -0.6931], [0.0, -10000.0]]
    """
    return parameterless(
        _log_softmax_forward,
        lambda y, dy: dy - np.exp(y) * dy.sum(axis=-1, keepdims=True),
    )


@register("identity", activation=True)
def identity() -> Layer[None]:
    """``y = x`` (the "linear" activation); ``dx = dy``.

    Shapes: any ``(batch, ...)``, kept; no params.

    >>> import fnn, numpy as np
    >>> fnn.nn.identity().apply(None, np.array([[-1.0, 2.0]], np.float32))
    array([[-1.,  2.]], dtype=float32)
    >>> fnn.nn.activation("linear").spec
    {'layer': 'identity'}
    """
    return parameterless(lambda x: (x, None), lambda res, dy: dy)


@register("flatten")
def flatten() -> Layer[None]:
    """Flattens each example: ``(batch, *in_shape) -> (batch, prod(in_shape))``; backward
    reshapes ``dy`` back to the input's shape. No params.

    >>> import fnn, numpy as np
    >>> layer = fnn.nn.flatten()
    >>> layer.output_shape((28, 28, 1)), layer.apply(None, np.zeros((2, 28, 28, 1))).shape
    ((784,), (2, 784))
    """

    def forward(x: Array) -> tuple[Array, Shape]:
        return x.reshape(x.shape[0], math.prod(x.shape[1:])), x.shape

    return parameterless(
        forward,
        lambda shape, dy: dy.reshape(shape),
        output_shape=lambda in_shape: (math.prod(in_shape),),
    )


_GELU_C = math.sqrt(2 / math.pi)
_GELU_A = 0.044715
_GELU_CLIP = 10.0
"""Beyond |x| = 10 the tanh of GELU is exactly +-1 in float32 and float64 (its argument
exceeds 43), so the cubic may use the clipped x: the same values, and no overflow."""

# The forwards below work in place on the temporaries they allocate (never on x): an
# activation's forward runs in inference too, and each fresh temporary costs a pass.


def _gelu_forward(x: Array) -> tuple[Array, Array]:
    # h = (1 + tanh(c (x + a x**3))) / 2, so that y = x h; the cubic is of the clipped x
    # (exact, see _GELU_CLIP). With 1 - tanh**2 = 4 h (1 - h), the slope
    # 0.5 (1 + t) + 0.5 x (1 - t**2) c (1 + 3 a x**2) is h + g h (1 - h), where
    # g = 2 c x (1 + 3 a x**2); beyond the clip h is 0 or 1, so g h (1 - h) is 0.
    xc = np.clip(x, -_GELU_CLIP, _GELU_CLIP)
    x2 = np.square(xc)
    h = x2 * _GELU_A
    h += 1
    h *= xc
    h *= _GELU_C
    np.tanh(h, out=h)
    h += 1
    h *= 0.5
    y = x * h
    g = x2  # x2 is not needed any more: g is built in its place
    g *= 3 * _GELU_A
    g += 1
    g *= xc
    g *= 2 * _GELU_C
    slope = 1 - h
    slope *= h
    slope *= g
    slope += h
    return y, slope


@register("gelu", activation=True)
def gelu() -> Layer[None]:
    """The GELU in its tanh form (PyTorch's ``GELU(approximate="tanh")``):
    ``y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))``.

    Shapes: any ``(batch, ...)``, kept. The forward keeps the slope
    ``0.5 (1 + t) + 0.5 x (1 - t**2) sqrt(2/pi) (1 + 3 * 0.044715 x**2)`` (``t`` the
    tanh) as its residual, so backward is one pass: ``dx = dy * slope``. No overflow for
    any finite ``x``: the cubic is taken of ``x`` clipped to ``[-10, 10]``, beyond which the
    tanh is exactly +-1 anyway, so ``y = x`` (or 0) there.

    >>> import fnn, numpy as np
    >>> fnn.nn.activation("gelu").apply(None, np.array([[-1e4, 0.0, 1e4]], np.float32))
    array([[   -0.,     0., 10000.]], dtype=float32)
    """
    return parameterless(_gelu_forward, lambda slope, dy: dy * slope)


def _silu_forward(x: Array) -> tuple[Array, Array]:
    # With e = exp(-|x|) and d = 1 + e (no overflow, no branch): sigmoid(x) =
    # exp(min(x, 0)) / d (1 / d for x >= 0, e / d below), sigmoid'(x) = e / d**2, and the
    # slope of x sigmoid(x) is sigmoid(x) + x sigmoid'(x).
    e = np.exp(-np.abs(x))
    d = 1 + e
    s = np.exp(np.minimum(x, 0))
    s /= d
    d *= d
    slope = e / d
    slope *= x
    slope += s
    return x * s, slope


@register("silu", activation=True)
def silu() -> Layer[None]:
    """The SiLU (swish): ``y = x * sigmoid(x)``, computed without overflow.

    Shapes: any ``(batch, ...)``, kept. The forward keeps the slope
    ``sigmoid(x) + x sigmoid(x) (1 - sigmoid(x))`` as its residual, so backward is one
    pass: ``dx = dy * slope``.

    >>> import fnn, numpy as np
    >>> fnn.nn.activation("silu").apply(None, np.array([[-1e4, 0.0, 1e4]], np.float32))
    array([[   -0.,     0., 10000.]], dtype=float32)
    """
    return parameterless(_silu_forward, lambda slope, dy: dy * slope)


@register("elu", activation=True)
def elu(alpha: float = 1.0) -> Layer[None]:
    """The ELU: ``y = x`` where ``x > 0``, else ``alpha (exp(x) - 1)`` (PyTorch's ``ELU``).

    Shapes: any ``(batch, ...)``, kept. ``exp`` is only taken of ``min(x, 0)`` (as
    ``expm1``, exact near 0), so nothing overflows. The forward keeps the slope, ``1``
    where ``x > 0`` and ``alpha exp(x) = y + alpha`` elsewhere, so backward is one pass:
    ``dx = dy * slope``.

    Args:
        alpha: the value ``y`` tends to as ``x -> -inf`` is ``-alpha``; a finite number.

    >>> import fnn, numpy as np
    >>> elu(0.5).apply(None, np.array([[-1e4, 0.0, 2.0]], np.float32))
    array([[-0.5,  0. ,  2. ]], dtype=float32)
    """
    a = _checks.real(alpha, "elu alpha")
    if not math.isfinite(a):
        raise ValueError(f"elu needs a finite alpha, got {alpha}")

    def forward(x: Array) -> tuple[Array, Array]:
        # Branch-free: neg = alpha expm1(min(x, 0)) is 0 where x > 0, so
        # y = max(x, 0) + neg, and the slope is 1 there and neg + alpha elsewhere.
        positive = x > 0
        neg = np.minimum(x, 0)
        np.expm1(neg, out=neg)
        neg *= a
        y = np.maximum(x, 0)
        y += neg
        slope = neg + a
        slope *= ~positive
        slope += positive
        return y, slope

    return parameterless(forward, lambda slope, dy: dy * slope)
