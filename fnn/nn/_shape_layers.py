"""Layers without params that change the shape of each example: ``reshape`` and
``global_avg_pool``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._types import Array, Shape
from ._activations import parameterless
from ._layer import Layer
from ._registry import register


def _target_shape(shape: Any) -> Shape:
    """``shape`` checked as a reshape target: ints >= 1, and at most one -1."""
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and (d >= 1 or d == -1)
        for d in shape
    ):
        raise TypeError(
            f"reshape needs shape as a tuple or list of positive ints (one may be -1), "
            f"got {shape!r}"
        )
    target = tuple(int(d) for d in shape)
    if target.count(-1) > 1:
        raise ValueError(f"reshape can infer only one dimension (one -1), got {target}")
    return target


def _resolve(target: Shape, in_shape: Shape) -> Shape:
    """``target`` with its -1 worked out for examples of ``in_shape``, or a ValueError."""
    size, known = math.prod(in_shape), math.prod(d for d in target if d != -1)
    if -1 in target and size % known == 0:
        return tuple(size // known if d == -1 else d for d in target)
    if -1 not in target and size == known:
        return target
    shown = ", ".join(["batch", *map(str, target)]) + ("," if not target else "")
    raise ValueError(
        f"reshape cannot make examples of shape {in_shape} ({size} entries) into ({shown})"
    )


@register("reshape")
def reshape(shape: Sequence[int]) -> Layer[None, None]:
    """Reshapes each example: ``(batch, *in_shape) -> (batch, *shape)``.

    Args:
        shape: the new per-example shape, positive ints of the same product as the
            input's, one of which may be -1 (worked out from the input's size). ``()``
            makes each example a scalar (inputs of one entry per example).

    Backward reshapes ``dy`` back to the input's shape (both views of contiguous arrays).

    Raises:
        TypeError: ``shape`` is not a tuple or list of ints >= 1 or -1.
        ValueError: two -1, or (from ``init``, ``shapes`` and the forward) an input whose
            size does not fit ``shape``.

    >>> import fnn, numpy as np
    >>> layer = reshape((2, -1))
    >>> layer.output_shape((3, 4))
    (2, 6)
    >>> layer.apply(None, np.zeros((5, 12), np.float32)).shape
    (5, 2, 6)
    """
    target = _target_shape(shape)

    def forward(x: Array) -> tuple[Array, Shape]:
        new = _resolve(target, x.shape[1:])
        return x.reshape(x.shape[0], *new), x.shape

    return parameterless(
        forward,
        lambda in_shape, dy: dy.reshape(in_shape),
        output_shape=lambda in_shape: _resolve(target, in_shape),
    )


def _channels(in_shape: Shape) -> Shape:
    if len(in_shape) != 3:
        raise ValueError(
            f"global_avg_pool expects examples of shape (height, width, channels), got {in_shape}"
        )
    return (in_shape[2],)


def _pool_forward(x: Array) -> tuple[Array, Shape]:
    y: Array = x.mean(axis=(1, 2))
    return y, x.shape


def _pool_backward(in_shape: Shape, dy: Array) -> Array:
    _, h, w, _ = in_shape
    dx = np.empty(in_shape, dy.dtype)
    dx[...] = (dy / float(h * w))[:, None, None, :]
    return dx


@register("global_avg_pool")
def global_avg_pool() -> Layer[None, None]:
    """The mean over height and width of channels-last images:
    ``(batch, h, w, c) -> (batch, c)``, ``y[n, k] = mean(x[n, :, :, k])`` (PyTorch's
    ``AdaptiveAvgPool2d(1)`` then flatten, on NCHW).

    Backward spreads ``dy / (h w)`` over the ``h x w`` positions of each channel.

    >>> import fnn, numpy as np
    >>> x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    >>> global_avg_pool().apply(None, x)
    array([[3., 4.]], dtype=float32)
    """
    return parameterless(_pool_forward, _pool_backward, output_shape=_channels)
