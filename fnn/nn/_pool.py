"""Pooling over the height and width of channels-last images, and dropout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _checks
from .. import random as _random
from .._types import Array, Shape
from ..random import Key
from ._activations import parameterless
from ._layer import Declared, Layer
from ._registry import register

Pair = tuple[int, int]


def pair(value: Any, layer: str, what: str) -> Pair:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise TypeError(f"{layer} {what} must be an int or a pair of ints, got {value!r}")
    first, second = (_checks.positive_int(v, f"{layer} {what}") for v in value)
    return first, second


def _windows(
    name: str, window: Any, stride: Any
) -> tuple[Pair, Pair, Any]:  # (window, stride, geometry)
    wh, ww = pair(window, name, "window")
    sh, sw = (wh, ww) if stride is None else pair(stride, name, "stride")

    def geometry(in_shape: Shape) -> Shape:
        """The output shape for a ``(height, width, channels)`` input ("valid" pooling)."""
        if len(in_shape) != 3:
            raise ValueError(
                f"{name} expects inputs of shape (height, width, channels) per example, got "
                f"{in_shape}"
            )
        h, w, c = in_shape
        if h < wh or w < ww:
            raise ValueError(f"{name}'s {wh}x{ww} window does not fit an input of {h}x{w}")
        return (h - wh) // sh + 1, (w - ww) // sw + 1, c

    return (wh, ww), (sh, sw), geometry


def _pool(
    name: str,
    window: Any,
    stride: Any,
    forward_views: Any,
    backward_views: Any,
) -> Layer[None, None]:
    """A pooling layer from ``forward_views(views) -> (y, residuals)`` and
    ``backward_views(residuals, dy, dx_views)``, where ``views`` are the ``wh * ww``
    strided views of the input, one per window offset (row by row), each shaped like the
    output, and ``dx_views`` the same views of the zeroed input gradient."""
    (wh, ww), (sh, sw), geometry = _windows(name, window, stride)

    def views(x: Array, oh: int, ow: int) -> list[Array]:
        rows, cols = sh * (oh - 1) + 1, sw * (ow - 1) + 1
        return [x[:, p : p + rows : sh, q : q + cols : sw, :] for p in range(wh) for q in range(ww)]

    def forward(x: Array) -> tuple[Array, Any]:
        oh, ow, _ = geometry(x.shape[1:])
        y, residuals = forward_views(views(x, oh, ow))
        return y, (residuals, x.shape, x.dtype, oh, ow)

    def backward(residuals: Any, dy: Array) -> Array:
        kept, shape, dtype, oh, ow = residuals
        dx = np.zeros(shape, dtype)
        backward_views(kept, dy, views(dx, oh, ow))
        return dx

    return parameterless(forward, backward, output_shape=geometry)


def _tiled(name: str, window: Pair, forward_tiles: Any, backward_tiles: Any) -> Layer[None, None]:
    """A pooling layer whose windows tile the input, from ``forward_tiles(x, oh, ow) ->
    (y, residuals)`` and ``backward_tiles(residuals, dy, dx, oh, ow)`` writing every entry
    of ``dx``."""
    _, _, geometry = _windows(name, window, None)

    def forward(x: Array) -> tuple[Array, Any]:
        oh, ow, _ = geometry(x.shape[1:])
        y, residuals = forward_tiles(x, oh, ow)
        return y, (residuals, x.shape, oh, ow)

    def backward(residuals: Any, dy: Array) -> Array:
        kept, shape, oh, ow = residuals
        dx = np.empty(shape, dy.dtype)
        backward_tiles(kept, dy, dx, oh, ow)
        return dx

    return parameterless(forward, backward, output_shape=geometry)


def _max_forward(views: list[Array]) -> tuple[Array, Array]:
    """The window maxima and, per output, the offset of the first maximum (as PyTorch
    routes the gradient)."""
    y = views[0].copy()
    first = np.zeros(y.shape, np.uint8)
    for offset, view in enumerate(views[1:], 1):
        np.copyto(first, offset, where=view > y)
        np.maximum(y, view, out=y)
    return y, first


def _max_backward(first: Array, dy: Array, dx_views: list[Array]) -> None:
    for offset, view in enumerate(dx_views):
        view += np.where(first == offset, dy, 0)


def _along(axis: int, start: int, step: int) -> tuple[slice, ...]:
    """The index of every ``step``-th entry from ``start`` along ``axis``."""
    return (slice(None),) * axis + (slice(start, None, step),)


def first_max(candidates: list[Array], out: Array | None = None) -> tuple[Array, list[Array]]:
    """The elementwise maximum of same-shaped ``candidates`` and, for each candidate
    ``t >= 1``, where it beat the maximum of those before it: what :func:`route_first_max`
    needs to send a gradient to the first maximum (the first on ties). The maximum is
    written into ``out`` when given; otherwise it is a new array, or ``candidates[0]``
    itself when there is one candidate."""
    if len(candidates) == 1:
        if out is None:
            return candidates[0], []
        out[...] = candidates[0]
        return out, []
    wins = []
    best = candidates[0]
    for t, entry in enumerate(candidates[1:], 1):
        wins.append(entry > best)
        best = np.maximum(best, entry, out=out) if t == 1 else np.maximum(best, entry, out=best)
    return best, wins


def route_first_max(dy: Array, wins: list[Array], targets: list[Array]) -> None:
    """Write ``dy`` into ``targets[t]`` where candidate ``t`` was the first maximum (the
    last one that beat those before it), zeros elsewhere; every entry of every target is
    written."""
    later: Array | None = None
    for t in range(len(targets) - 1, 0, -1):
        won = wins[t - 1]
        np.multiply(dy, won if later is None else won & ~later, out=targets[t])
        later = won if later is None else later | won
    if later is None:
        targets[0][...] = dy
    else:
        np.multiply(dy, ~later, out=targets[0])


def _group_max(x: Array, k: int, axis: int) -> tuple[Array, list[Array]]:
    """The maxima of consecutive groups of ``k`` entries along ``axis`` (see
    :func:`first_max`)."""
    best, wins = first_max([x[_along(axis, q, k)] for q in range(k)])
    return (best.copy() if k == 1 else best), wins


def _group_route(dy: Array, wins: list[Array], k: int, axis: int, out: Array) -> None:
    """Write ``dy`` into ``out`` (``k`` times longer along ``axis``) at each group's first
    maximum, zeros elsewhere."""
    route_first_max(dy, wins, [out[_along(axis, q, k)] for q in range(k)])


@register("max_pool")
def max_pool(
    window: int | Sequence[int], stride: int | Sequence[int] | None = None
) -> Layer[None, None]:
    """The maximum over each ``window`` of height and width ("valid": windows that do not
    fit at the far edge are dropped), moved by ``stride`` (default: the window).

    Shapes: ``(batch, h, w, c) -> (batch, (h - wh) // sh + 1, (w - ww) // sw + 1, c)``.
    Backward routes each output's gradient to the first maximum of its window (row by
    row), as PyTorch's ``MaxPool2d`` does. Windows that tile the input (stride = window,
    the usual case) are reduced along the width, then along the height, which takes a few
    passes over the input rather than one per window offset.

    >>> import fnn, numpy as np
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    >>> fnn.nn.max_pool(2).apply(None, x)[0, :, :, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """
    (wh, ww), (sh, sw), _ = _windows("max_pool", window, stride)
    if (sh, sw) != (wh, ww):
        return _pool("max_pool", window, stride, _max_forward, _max_backward)

    def forward(x: Array, oh: int, ow: int) -> tuple[Array, Any]:
        rows, across = _group_max(x[:, : oh * wh, : ow * ww], ww, 2)
        y, down = _group_max(rows, wh, 1)
        return y, (across, down, rows.shape)

    def backward(residuals: Any, dy: Array, dx: Array, oh: int, ow: int) -> None:
        across, down, rows_shape = residuals
        drows = np.empty(rows_shape, dy.dtype)
        _group_route(dy, down, wh, 1, drows)
        _group_route(drows, across, ww, 2, dx[:, : oh * wh, : ow * ww])
        dx[:, oh * wh :] = 0  # the edges no window covers
        dx[:, : oh * wh, ow * ww :] = 0

    return _tiled("max_pool", (wh, ww), forward, backward)


@register("avg_pool")
def avg_pool(
    window: int | Sequence[int], stride: int | Sequence[int] | None = None
) -> Layer[None, None]:
    """The mean over each ``window`` of height and width ("valid"), moved by ``stride``
    (default: the window), as PyTorch's ``AvgPool2d``.

    Shapes: ``(batch, h, w, c) -> (batch, (h - wh) // sh + 1, (w - ww) // sw + 1, c)``;
    no params. Backward adds ``dy / (wh * ww)`` to every input entry of each window.

    Args:
        window: ``wh`` and ``ww``, an int or a pair of ints >= 1.
        stride: ``sh`` and ``sw``, an int or a pair (default: the window).

    Raises:
        TypeError: ``window`` or ``stride`` is not an int or a pair of ints.
        ValueError: a size below 1; (from ``init``, ``shapes`` and the checked calls) an
            input that is not ``(h, w, c)`` per example, or smaller than the window.

    >>> import fnn, numpy as np
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    >>> fnn.nn.avg_pool(2).apply(None, x)[0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    >>> fnn.nn.avg_pool(3, stride=1).output_shape((4, 4, 1))
    (2, 2, 1)
    """
    size = float(np.prod(pair(window, "avg_pool", "window")))

    def forward(views: list[Array]) -> tuple[Array, None]:
        y = views[0].copy()
        for view in views[1:]:
            y += view
        y /= size
        return y, None

    def backward(kept: None, dy: Array, dx_views: list[Array]) -> None:
        share = dy / float(size)
        for view in dx_views:
            view += share

    return _pool("avg_pool", window, stride, forward, backward)


@register("dropout")
def dropout(rate: float) -> Layer[None, None]:
    """In training, zero each entry with probability ``rate`` and scale the others by
    ``1 / (1 - rate)`` (inverted dropout, as PyTorch's ``Dropout``); in inference, the
    identity. The mask comes only from the key of the training forward (in
    :func:`fnn.train_step`, a function of the run's seed and the step).

    Shapes: any ``(batch, ...)``, kept; no params. The layer is ``stochastic``: its
    training forward needs a key. Backward: ``dx = dy * mask`` (the scaled mask).

    Args:
        rate: the probability of dropping an entry, in ``[0, 1)``.

    Raises:
        TypeError: ``rate`` is not a number; (from the training forward) no key.
        ValueError: ``rate`` is outside ``[0, 1)``.

    >>> import fnn, numpy as np
    >>> layer, x = fnn.nn.dropout(0.5), np.ones((1, 8), np.float32)
    >>> layer.apply(None, x).tolist()  # inference: the identity
    [[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]
    >>> layer.forward(None, x, None, fnn.random.key(0))[0].tolist()  # training
    [[0.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]]
    """
    p = _checks.real(rate, "dropout rate")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    keep = 1.0 - p

    def declare(in_shape: Shape) -> Declared[None, None]:
        return Declared(in_shape)

    def infer(params: None, x: Array, state: None) -> Array:
        return x

    def forward(params: None, x: Array, state: None, key: Key | None) -> tuple[Array, None, Array]:
        if not isinstance(key, Key):
            raise TypeError(f"dropout's training forward needs an fnn.random.Key, got {key!r}")
        mask = _random.bernoulli(key, keep, x.shape).astype(x.dtype)
        mask /= keep
        return x * mask, None, mask

    def backward(params: None, mask: Array, dy: Array, need_dx: bool, grads: None) -> Array | None:
        return dy * mask if need_dx else None

    return Layer(declare, infer, forward, backward, stochastic=True)
