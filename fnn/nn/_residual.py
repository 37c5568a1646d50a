"""The residual combinator: ``y = layer(x) + shortcut(x)``."""

from __future__ import annotations

from typing import Any, TypeVar, overload

from .._types import Array, Shape
from ._combinator import Back, Run, combinator
from ._layer import Layer
from ._registry import register

P1 = TypeVar("P1")
P2 = TypeVar("P2")
S1 = TypeVar("S1")
S2 = TypeVar("S2")


@overload
def residual(layer: Layer[P1, None], /, shortcut: None = None) -> Layer[tuple[P1, None], None]: ...


@overload
def residual(
    layer: Layer[P1, S1], /, shortcut: None = None
) -> Layer[tuple[P1, None], tuple[S1, None]]: ...


@overload
def residual(
    layer: Layer[P1, None], /, shortcut: Layer[P2, None]
) -> Layer[tuple[P1, P2], None]: ...


@overload
def residual(
    layer: Layer[P1, S1], /, shortcut: Layer[P2, S2]
) -> Layer[tuple[P1, P2], tuple[S1, S2]]: ...


@register("residual")
def residual(
    layer: Layer[Any, Any], /, shortcut: Layer[Any, Any] | None = None
) -> Layer[tuple[Any, Any], Any]:
    """A residual block: ``y = layer(x) + shortcut(x)``, the shortcut the identity when
    ``None`` (else, where the shapes change, a dense layer or a 1x1 convolution).

    Shapes: ``x (batch, *in_shape) -> y (batch, *out_shape)``; both branches must give
    ``out_shape`` (with the identity shortcut, ``out_shape == in_shape``).

    The params are the tuple ``(layer's, shortcut's)`` (``shortcut's`` is ``None`` for the
    identity); the state, when either branch keeps one, the tuple of the two states
    (``None`` for a branch without), else ``None``. In training a stochastic ``layer``
    gets ``fold_in(key, 0)`` and a stochastic shortcut ``fold_in(key, 1)``.

    Backward: both branches get ``dy`` and write their params' gradients;
    ``dx = dx_layer + dx_shortcut`` (``dy`` for the identity) is computed only when asked
    (with ``need_dx=False`` neither branch computes its input gradient).

    Raises:
        TypeError: ``layer`` or ``shortcut`` is not a layer.
        ValueError: (from ``init``, ``shapes`` and the checked calls) the two branches
            give different output shapes.

    >>> import fnn, numpy as np
    >>> block = residual(fnn.nn.serial(fnn.nn.dense(4), fnn.nn.tanh()))
    >>> params = block.init(fnn.random.key(0), (4,))
    >>> [type(p).__name__ for p in params]
    ['tuple', 'NoneType']
    >>> block.apply(params, np.ones((2, 4), np.float32)).shape
    (2, 4)
    """
    for what, branch in (("layer", layer), ("shortcut", shortcut)):
        if not isinstance(branch, Layer) and not (what == "shortcut" and branch is None):
            raise TypeError(f"residual expected a Layer as its {what}, got {type(branch).__name__}")

    def forward(run: Run, x: Array) -> Array:
        y = run(0, x)
        total: Array = y + (x if shortcut is None else run(1, x))
        return total

    def output(run: Run, in_shape: Shape) -> Shape:
        through, around = run(0, in_shape), in_shape if shortcut is None else run(1, in_shape)
        if through != around:
            raise ValueError(
                f"residual's branches give different shapes for inputs of shape {in_shape}: "
                f"the layer {through}, the shortcut {around}; give a shortcut that maps "
                f"{in_shape} to {through} (a dense layer, or a 1x1 convolution for images)"
            )
        out: Shape = through
        return out

    def backward(back: Back, dy: Array, need_dx: bool) -> Array | None:
        dx = back(0, dy, need_dx)
        around = dy if shortcut is None else back(1, dy, need_dx)
        if not need_dx:
            return None
        assert dx is not None and around is not None  # back raises when a child gives none
        total: Array = dx + around
        return total

    block: Layer[tuple[Any, Any], Any] = combinator((layer, shortcut), forward, backward, output)
    return block
