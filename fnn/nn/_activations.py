"""Activations and other layers without params or state (their params are ``None``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .. import _checks
from .._types import Array, Shape
from ..random import Key
from ._layer import Layer, Shapes, check_in_shape, check_input, check_no_state
from ._registry import register


def parameterless(
    name: str,
    forward: Callable[[Array], tuple[Array, Any]],
    backward: Callable[[Any, Array], Array],
    *,
    output_shape: Callable[[Shape], Shape] | None = None,
) -> Layer[None]:
    """A layer without params or state from two functions of arrays.

    Args:
        name: the layer's name in error messages.
        forward: ``forward(x) -> (y, residuals)``, for inference and training alike.
        backward: ``backward(residuals, dy) -> dx``.
        output_shape: ``output_shape(in_shape) -> out_shape`` (default: the same shape).

    The layer checks that its params and state are ``None`` and that its input is a float
    array; it computes ``dx`` only when asked. Register its constructor with
    :func:`register` (``activation=True`` for an activation) to save models that use it.
    """
    same: Callable[[Shape], Shape] = lambda shape: shape  # noqa: E731
    out_shape = output_shape or same

    def init(key: Key, in_shape: Shape, dtype: DTypeLike = np.float32) -> None:
        check_in_shape(in_shape, name)

    def shapes(in_shape: Shape, dtype: DTypeLike = np.float32) -> Shapes:
        return Shapes(out_shape(check_in_shape(in_shape, name)))

    def check(params: None, x: Array, state: Any) -> Array:
        if params is not None:
            raise TypeError(f"{name} has no parameters: expected None, got {type(params).__name__}")
        if state is not None:
            check_no_state(state, name)
        return check_input(x, name)

    def infer(params: None, x: Array, state: None) -> Array:
        return forward(check(params, x, state))[0]

    def train_forward(
        params: None, x: Array, state: None, key: Key | None
    ) -> tuple[Array, None, Any]:
        y, residuals = forward(check(params, x, state))
        return y, None, residuals

    def train_backward(params: None, res: Any, dy: Array, need_dx: bool, out: None) -> Array | None:
        return backward(res, dy) if need_dx else None

    return Layer(init, shapes, infer, train_forward, train_backward)


def _relu_forward(x: Array) -> tuple[Array, Array]:
    y = np.maximum(x, 0)
    return y, y


@register("relu", activation=True)
def relu() -> Layer[None]:
    """``y = max(x, 0)``; backward ``dx = dy * (x > 0)`` (zero at the kink)."""
    return parameterless("relu", _relu_forward, lambda y, dy: np.multiply(dy, y > 0))


@register("leaky_relu", activation=True)
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

    return parameterless("leaky_relu", forward, backward)


def _sigmoid_forward(x: Array) -> tuple[Array, Array]:
    # e = exp(-|x|) never overflows; sigmoid'(x) = e / (1 + e)**2 on both sides.
    e = np.exp(-np.abs(x))
    denom = 1 + e
    y = np.where(x >= 0, 1 / denom, e / denom)
    return y, e / (denom * denom)


@register("sigmoid", activation=True)
def sigmoid() -> Layer[None]:
    """``y = 1 / (1 + exp(-x))``, computed without overflow; ``dx = dy * y * (1 - y)``."""
    return parameterless("sigmoid", _sigmoid_forward, lambda slope, dy: dy * slope)


def _tanh_forward(x: Array) -> tuple[Array, Array]:
    y = np.tanh(x)
    return y, y


@register("tanh", activation=True)
def tanh() -> Layer[None]:
    """``y = tanh(x)``; ``dx = dy * (1 - y**2)``."""
    return parameterless("tanh", _tanh_forward, lambda y, dy: dy * (1 - y * y))


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
    """
    return parameterless("softmax", _softmax_forward, _softmax_backward)


def _log_softmax_forward(x: Array) -> tuple[Array, Array]:
    z = x - x.max(axis=-1, keepdims=True)
    y = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return y, y


@register("log_softmax", activation=True)
def log_softmax() -> Layer[None]:
    """``y = x - logsumexp(x)`` over the last axis; ``dx = dy - exp(y) * sum(dy)``."""
    return parameterless(
        "log_softmax",
        _log_softmax_forward,
        lambda y, dy: dy - np.exp(y) * dy.sum(axis=-1, keepdims=True),
    )


@register("identity", activation=True)
def identity() -> Layer[None]:
    """``y = x`` (the "linear" activation); ``dx = dy``."""
    return parameterless("identity", lambda x: (x, None), lambda res, dy: dy)


@register("flatten")
def flatten() -> Layer[None]:
    """Flattens each example: ``(batch, *in_shape) -> (batch, prod(in_shape))``."""

    def forward(x: Array) -> tuple[Array, Shape]:
        if x.ndim < 2:
            raise ValueError(f"flatten expects input of shape (batch, ...), got {x.shape}")
        return x.reshape(x.shape[0], math.prod(x.shape[1:])), x.shape

    return parameterless(
        "flatten",
        forward,
        lambda shape, dy: dy.reshape(shape),
        output_shape=lambda in_shape: (math.prod(in_shape),),
    )
