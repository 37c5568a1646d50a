"""Activations and other parameterless layers: their params are ``None``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .. import _checks
from .._types import Array, Shape
from ..random import Key
from ._layer import Layer, check_shape, float_input


def _parameterless(
    name: str,
    forward: Callable[[Array], tuple[Array, Any]],
    backward: Callable[[Any, Array], Array],
    spec: dict[str, Any] | None = None,
    output_shape: Callable[[Shape], Shape] = lambda s: s,
) -> Layer[None]:
    """A Layer[None] from ``forward(x) -> (y, residuals)`` and ``backward(res, dy) -> dx``."""

    def init(key: Key, in_shape: Shape, dtype: DTypeLike = np.float32) -> None:
        check_shape(in_shape, name)

    def check(params: None, x: Array) -> Array:
        if params is not None:
            raise TypeError(f"{name} has no parameters: expected None, got {type(params).__name__}")
        return float_input(x, f"{name} input")

    def apply(params: None, x: Array) -> Array:
        return forward(check(params, x))[0]

    def fwd(params: None, x: Array) -> tuple[Array, Any]:
        return forward(check(params, x))

    def bwd_into(
        params: None, res: Any, dy: Array, need_dx: bool, out: list[Array]
    ) -> Array | None:
        return backward(res, dy) if need_dx else None

    def bwd(params: None, res: Any, dy: Array, need_dx: bool) -> tuple[None, Array | None]:
        return None, bwd_into(params, res, dy, need_dx, [])

    return Layer(init, output_shape, apply, fwd, bwd, spec or {"layer": name}, bwd_into)


def _relu_forward(x: Array) -> tuple[Array, Array]:
    y = np.maximum(x, 0)
    return y, y


def relu() -> Layer[None]:
    """``y = max(x, 0)``; backward ``dx = dy * (x > 0)`` (zero at the kink)."""
    return _parameterless("relu", _relu_forward, lambda y, dy: np.multiply(dy, y > 0))


def leaky_relu(negative_slope: float = 0.01) -> Layer[None]:
    """``y = x`` where ``x > 0``, else ``negative_slope * x``."""
    slope = _checks.real(negative_slope, "negative_slope")
    if not math.isfinite(slope):
        raise ValueError(f"leaky_relu needs a finite negative_slope, got {negative_slope}")

    def forward(x: Array) -> tuple[Array, Array]:
        positive = x > 0
        return np.where(positive, x, x * slope), positive

    def backward(positive: Array, dy: Array) -> Array:
        return np.where(positive, dy, dy * slope)

    return _parameterless(
        "leaky_relu", forward, backward, {"layer": "leaky_relu", "negative_slope": slope}
    )


def _sigmoid_forward(x: Array) -> tuple[Array, Array]:
    # e = exp(-|x|) never overflows; sigmoid'(x) = e / (1 + e)**2 on both sides.
    e = np.exp(-np.abs(x))
    denom = 1 + e
    y = np.where(x >= 0, 1 / denom, e / denom)
    return y, e / (denom * denom)


def sigmoid() -> Layer[None]:
    """``y = 1 / (1 + exp(-x))``, computed without overflow; ``dx = dy * y * (1 - y)``."""
    return _parameterless("sigmoid", _sigmoid_forward, lambda slope, dy: dy * slope)


def _tanh_forward(x: Array) -> tuple[Array, Array]:
    y = np.tanh(x)
    return y, y


def tanh() -> Layer[None]:
    """``y = tanh(x)``; ``dx = dy * (1 - y**2)``."""
    return _parameterless("tanh", _tanh_forward, lambda y, dy: dy * (1 - y * y))


def _softmax_forward(x: Array) -> tuple[Array, Array]:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    return y, y


def _softmax_backward(y: Array, dy: Array) -> Array:
    dx: Array = y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    return dx


def softmax() -> Layer[None]:
    """``y = exp(x) / sum(exp(x))`` over the last axis (shifted by the max: no overflow).

    Backward: ``dx = y * (dy - sum(dy * y))``. For training, prefer logits with
    :func:`fnn.losses.softmax_cross_entropy`; a model ending in ``softmax`` pairs with
    :func:`fnn.losses.categorical_cross_entropy`.
    """
    return _parameterless("softmax", _softmax_forward, _softmax_backward)


def _log_softmax_forward(x: Array) -> tuple[Array, Array]:
    z = x - x.max(axis=-1, keepdims=True)
    y = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return y, y


def log_softmax() -> Layer[None]:
    """``y = x - logsumexp(x)`` over the last axis; ``dx = dy - exp(y) * sum(dy)``."""
    return _parameterless(
        "log_softmax",
        _log_softmax_forward,
        lambda y, dy: dy - np.exp(y) * dy.sum(axis=-1, keepdims=True),
    )


def identity() -> Layer[None]:
    """``y = x`` (the "linear" activation); ``dx = dy``."""
    return _parameterless("identity", lambda x: (x, None), lambda res, dy: dy)


def flatten() -> Layer[None]:
    """Flattens each example: ``(batch, *in_shape) -> (batch, prod(in_shape))``."""

    def forward(x: Array) -> tuple[Array, Shape]:
        if x.ndim < 2:
            raise ValueError(f"flatten expects input of shape (batch, ...), got {x.shape}")
        return x.reshape(x.shape[0], math.prod(x.shape[1:])), x.shape

    def output_shape(in_shape: Shape) -> Shape:
        return (math.prod(check_shape(in_shape, "flatten")),)

    return _parameterless(
        "flatten", forward, lambda shape, dy: dy.reshape(shape), output_shape=output_shape
    )


ACTIVATIONS: dict[str, Callable[[], Layer[None]]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "identity": identity,
    "linear": identity,
}


def activation(name: str) -> Layer[None]:
    """The activation layer called ``name`` (``"linear"`` is ``identity``)."""
    try:
        return ACTIVATIONS[name]()
    except (KeyError, TypeError):
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation {name!r}; expected one of: {known}") from None
