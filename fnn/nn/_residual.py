"""The residual combinator: ``y = layer(x) + shortcut(x)``."""

from __future__ import annotations

from typing import Any, TypeVar, cast, overload

import numpy as np
from numpy.typing import DTypeLike

from .. import random
from .._types import Array, Shape
from ..random import Key
from ._layer import Layer, Shapes, check_in_shape, check_input, check_no_state
from ._registry import register

P1 = TypeVar("P1")
P2 = TypeVar("P2")


def _mismatch(layer_shape: Shape, shortcut_shape: Shape, in_shape: Shape) -> ValueError:
    return ValueError(
        f"residual's branches give different shapes for inputs of shape {in_shape}: the "
        f"layer {layer_shape}, the shortcut {shortcut_shape}; give a shortcut that maps "
        f"{in_shape} to {layer_shape} (a dense layer, or a 1x1 convolution for images)"
    )


@overload
def residual(layer: Layer[P1], /, shortcut: None = None) -> Layer[tuple[P1, None]]: ...


@overload
def residual(layer: Layer[P1], /, shortcut: Layer[P2]) -> Layer[tuple[P1, P2]]: ...


@register("residual")
def residual(layer: Layer[Any], /, shortcut: Layer[Any] | None = None) -> Layer[tuple[Any, Any]]:
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
        ValueError: (from ``init``, ``shapes`` and the forward) the two branches give
            different output shapes.

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
    branches = (layer, shortcut)
    stateful = layer.stateful or (shortcut is not None and shortcut.stateful)
    stochastic = layer.stochastic or (shortcut is not None and shortcut.stochastic)

    def check_params(params: Any) -> tuple[Any, Any]:
        if not isinstance(params, tuple) or len(params) != 2:
            got = (
                f"a tuple of {len(params)}" if isinstance(params, tuple) else type(params).__name__
            )
            raise TypeError(
                "residual expected params as a tuple of 2, (layer's, shortcut's), as its "
                f"init returns, got {got}"
            )
        if shortcut is None and params[1] is not None:
            raise TypeError(
                "residual with the identity shortcut expected None as the shortcut's params, "
                f"got {type(params[1]).__name__}"
            )
        return params

    def check_state(state: Any) -> tuple[Any, Any]:
        if not stateful:
            check_no_state(state, "this residual")
            return None, None
        if not isinstance(state, tuple) or len(state) != 2:
            got = f"a tuple of {len(state)}" if isinstance(state, tuple) else type(state).__name__
            raise TypeError(
                "residual expected its state as a tuple of 2, (layer's, shortcut's), as its "
                f"init_state returns, got {got}"
            )
        return state

    def out_shape(in_shape: Shape, layer_shape: Shape, shortcut_shape: Shape) -> Shape:
        if layer_shape != shortcut_shape:
            raise _mismatch(layer_shape, shortcut_shape, in_shape)
        return layer_shape

    def init(key: Key, in_shape: Shape, dtype: DTypeLike = np.float32) -> tuple[Any, Any]:
        shapes(in_shape, dtype)  # mismatched branches fail before anything is drawn
        k_layer, k_shortcut = random.split(key, 2)
        return (
            layer.init(k_layer, in_shape, dtype),
            None if shortcut is None else shortcut.init(k_shortcut, in_shape, dtype),
        )

    def shapes(in_shape: Shape, dtype: DTypeLike = np.float32) -> Shapes:
        shape = check_in_shape(in_shape, "residual")
        found = [None if b is None else b.shapes(shape, dtype) for b in branches]
        through = [shape if f is None else f.output for f in found]
        output = out_shape(shape, *through)
        params = tuple(None if f is None else f.params for f in found)
        states = tuple(None if f is None else f.state for f in found)
        return Shapes(output, params, states if stateful else None)

    def init_state(in_shape: Shape, dtype: DTypeLike = np.float32) -> tuple[Any, Any]:
        shape = check_in_shape(in_shape, "residual")
        return cast(
            "tuple[Any, Any]",
            tuple(
                None if b is None or b.init_state is None else b.init_state(shape, dtype)
                for b in branches
            ),
        )

    def add(y_layer: Array, y_shortcut: Array, x: Array) -> Array:
        if y_layer.shape != y_shortcut.shape:
            raise _mismatch(y_layer.shape[1:], y_shortcut.shape[1:], x.shape[1:])
        y: Array = y_layer + y_shortcut
        return y

    def infer(params: tuple[Any, Any], x: Array, state: Any) -> Array:
        (p_layer, p_shortcut), (s_layer, s_shortcut) = check_params(params), check_state(state)
        x = check_input(x, "residual")
        y = layer.infer(p_layer, x, s_layer)
        return add(y, x if shortcut is None else shortcut.infer(p_shortcut, x, s_shortcut), x)

    def forward(
        params: tuple[Any, Any], x: Array, state: Any, key: Key | None
    ) -> tuple[Array, Any, tuple[Any, Any]]:
        (p_layer, p_shortcut), (s_layer, s_shortcut) = check_params(params), check_state(state)
        x = check_input(x, "residual")
        if stochastic and key is None:
            raise ValueError(
                "this model draws random numbers in training (dropout): its training "
                "forward needs a key"
            )
        k_layer = random.fold_in(cast(Key, key), 0) if layer.stochastic else None
        y, s_layer, r_layer = layer.forward(p_layer, x, s_layer, k_layer)
        y_shortcut, r_shortcut = x, None
        if shortcut is not None:
            k_shortcut = random.fold_in(cast(Key, key), 1) if shortcut.stochastic else None
            y_shortcut, s_shortcut, r_shortcut = shortcut.forward(
                p_shortcut, x, s_shortcut, k_shortcut
            )
        new_state = (s_layer, s_shortcut) if stateful else None
        return add(y, y_shortcut, x), new_state, (r_layer, r_shortcut)

    def backward(
        params: tuple[Any, Any],
        residuals: tuple[Any, Any],
        dy: Array,
        need_dx: bool,
        out: tuple[Any, Any],
    ) -> Array | None:
        p_layer, p_shortcut = check_params(params)
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError(f"residual expected out as a tuple of 2, got {out!r}")
        r_layer, r_shortcut = residuals
        dx = layer.backward(p_layer, r_layer, dy, need_dx, out[0])
        dx_shortcut: Array | None = dy
        if shortcut is not None:
            dx_shortcut = shortcut.backward(p_shortcut, r_shortcut, dy, need_dx, out[1])
        if not need_dx:
            return None
        if dx is None or dx_shortcut is None:
            branch = "layer" if dx is None else "shortcut"
            raise TypeError(f"residual's {branch} returned no input gradient when asked")
        total: Array = dx + dx_shortcut
        return total

    return Layer(
        init, shapes, infer, forward, backward, init_state if stateful else None, stochastic
    )
