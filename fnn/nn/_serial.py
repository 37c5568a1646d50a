"""Combinators: layers made of layers."""

from __future__ import annotations

from typing import Any, TypeVar, cast, overload

import numpy as np
from numpy.typing import DTypeLike

from .. import random
from .._types import Array, Shape
from ..random import Key
from ._layer import Layer, Shapes, check_in_shape, check_no_state
from ._registry import register

P1 = TypeVar("P1")
P2 = TypeVar("P2")
P3 = TypeVar("P3")
P4 = TypeVar("P4")
P5 = TypeVar("P5")
P6 = TypeVar("P6")
P7 = TypeVar("P7")
P8 = TypeVar("P8")


@overload
def serial(l1: Layer[P1], /) -> Layer[tuple[P1,]]: ...


@overload
def serial(l1: Layer[P1], l2: Layer[P2], /) -> Layer[tuple[P1, P2]]: ...


@overload
def serial(l1: Layer[P1], l2: Layer[P2], l3: Layer[P3], /) -> Layer[tuple[P1, P2, P3]]: ...


@overload
def serial(
    l1: Layer[P1], l2: Layer[P2], l3: Layer[P3], l4: Layer[P4], /
) -> Layer[tuple[P1, P2, P3, P4]]: ...


@overload
def serial(
    l1: Layer[P1], l2: Layer[P2], l3: Layer[P3], l4: Layer[P4], l5: Layer[P5], /
) -> Layer[tuple[P1, P2, P3, P4, P5]]: ...


@overload
def serial(
    l1: Layer[P1], l2: Layer[P2], l3: Layer[P3], l4: Layer[P4], l5: Layer[P5], l6: Layer[P6], /
) -> Layer[tuple[P1, P2, P3, P4, P5, P6]]: ...


@overload
def serial(
    l1: Layer[P1],
    l2: Layer[P2],
    l3: Layer[P3],
    l4: Layer[P4],
    l5: Layer[P5],
    l6: Layer[P6],
    l7: Layer[P7],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7]]: ...


@overload
def serial(
    l1: Layer[P1],
    l2: Layer[P2],
    l3: Layer[P3],
    l4: Layer[P4],
    l5: Layer[P5],
    l6: Layer[P6],
    l7: Layer[P7],
    l8: Layer[P8],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7, P8]]: ...


@overload
def serial(*layers: Layer[Any]) -> Layer[tuple[Any, ...]]: ...


@register("serial")
def serial(*layers: Layer[Any]) -> Layer[tuple[Any, ...]]:
    """Layers applied one after another; the params are the tuple of the layers' params.

    ``serial(a, b).apply((pa, pb), x) == b.apply(pb, a.apply(pa, x))``.

    State and keys are threaded the same way: the state of a serial holding a stateful
    layer is the tuple of its layers' states (``None`` for those without), else ``None``;
    in training, stochastic layer ``i`` gets ``fold_in(key, i)``.

    Backward runs the layers in reverse and never computes more than it must: when the
    caller does not need the gradient of the input (``need_dx=False``, as
    :func:`fnn.grad` asks), it stops at the first layer that has parameters and asks
    that layer for its parameter gradients only.

    The static type records each layer's params type for up to 8 layers, so passing
    one model's params to another model is a type error where the structures differ.
    """
    if not layers:
        raise ValueError("serial needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"serial expected Layer objects, got {type(layer).__name__} at {i}")
    n = len(layers)
    stateful = any(layer.stateful for layer in layers)
    stochastic = any(layer.stochastic for layer in layers)
    no_states = (None,) * n

    def check_params(params: Any) -> tuple[Any, ...]:
        if not isinstance(params, tuple) or len(params) != n:
            got = (
                f"a tuple of {len(params)}" if isinstance(params, tuple) else type(params).__name__
            )
            raise TypeError(
                f"serial of {n} layers expected params as a tuple of {n} "
                f"(as its init returns), got {got}"
            )
        return params

    def check_state(state: Any) -> tuple[Any, ...]:
        if not stateful:
            check_no_state(state, "this serial")
            return no_states
        if not isinstance(state, tuple) or len(state) != n:
            got = f"a tuple of {len(state)}" if isinstance(state, tuple) else type(state).__name__
            raise TypeError(
                f"serial of {n} layers expected its state as a tuple of {n} "
                f"(as its init_state returns), got {got}"
            )
        return state

    def init(key: Key, in_shape: Shape, dtype: DTypeLike = np.float32) -> tuple[Any, ...]:
        shape = check_in_shape(in_shape, "serial")
        params = []
        for layer, k in zip(layers, random.split(key, n)):
            params.append(layer.init(k, shape, dtype))
            shape = layer.output_shape(shape)
        return tuple(params)

    def shapes(in_shape: Shape, dtype: DTypeLike = np.float32) -> Shapes:
        shape = check_in_shape(in_shape, "serial")
        params, states = [], []
        for layer in layers:
            found = layer.shapes(shape, dtype)
            params.append(found.params)
            states.append(found.state)
            shape = found.output
        return Shapes(shape, tuple(params), tuple(states) if stateful else None)

    def init_state(in_shape: Shape, dtype: DTypeLike = np.float32) -> tuple[Any, ...]:
        shape = check_in_shape(in_shape, "serial")
        states = []
        for layer in layers:
            states.append(None if layer.init_state is None else layer.init_state(shape, dtype))
            shape = layer.output_shape(shape)
        return tuple(states)

    def infer(params: tuple[Any, ...], x: Array, state: Any) -> Array:
        for layer, p, s in zip(layers, check_params(params), check_state(state)):
            x = layer.infer(p, x, s)
        return x

    def forward(
        params: tuple[Any, ...], x: Array, state: Any, key: Key | None
    ) -> tuple[Array, Any, tuple[Any, ...]]:
        params, states = check_params(params), check_state(state)
        if stochastic and key is None:
            raise ValueError(
                "this model draws random numbers in training (dropout): its training "
                "forward needs a key"
            )
        residuals, new_states = [], []
        for i, (layer, p, s) in enumerate(zip(layers, params, states)):
            k = random.fold_in(cast(Key, key), i) if layer.stochastic else None
            x, s, r = layer.forward(p, x, s, k)
            residuals.append(r)
            new_states.append(s)
        return x, tuple(new_states) if stateful else None, tuple(residuals)

    def backward(
        params: tuple[Any, ...],
        residuals: tuple[Any, ...],
        dy: Array,
        need_dx: bool,
        out: tuple[Any, ...],
    ) -> Array | None:
        params = check_params(params)
        if not isinstance(out, tuple) or len(out) != n:
            raise TypeError(f"serial of {n} layers expected out as a tuple of {n}, got {out!r}")
        # Layers before the first one with parameters have nothing to write, and the input
        # gradient is never computed for them.
        stop = 0 if need_dx else next((i for i, o in enumerate(out) if _has_buffers(o)), n)
        for i in range(n - 1, stop - 1, -1):
            need = need_dx or i > stop
            dx = layers[i].backward(params[i], residuals[i], dy, need, out[i])
            if need:
                if dx is None:
                    raise TypeError(f"layer {i} of serial returned no input gradient when asked")
                dy = dx
        return dy if need_dx else None

    return Layer(
        init, shapes, infer, forward, backward, init_state if stateful else None, stochastic
    )


def _has_buffers(out: Any) -> bool:
    """Whether a layer's ``out`` (buffers arranged like its params) holds any buffer."""
    if isinstance(out, np.ndarray):
        return True
    if isinstance(out, (list, tuple)):
        return any(_has_buffers(o) for o in out)
    if isinstance(out, dict):
        return any(_has_buffers(o) for o in out.values())
    return False
