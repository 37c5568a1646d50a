"""``serial``: layers applied one after another."""

from __future__ import annotations

from typing import Any, TypeVar, overload

from .._types import Array
from ._combinator import Back, Run, combinator
from ._layer import Layer
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

    State and keys are threaded by :func:`combinator`: the state of a serial holding a
    stateful layer is the tuple of its layers' states (``None`` for those without), else
    ``None``; in training, stochastic layer ``i`` gets ``fold_in(key, i)``.

    Backward runs the layers in reverse and never computes more than it must: when the
    caller does not need the gradient of the input (``need_dx=False``, as
    :func:`fnn.grad` asks), it stops at the first layer that has parameters and asks
    that layer for its parameter gradients only.

    The static type records each layer's params type for up to 8 layers, so passing
    one model's params to another model is a type error where the structures differ.

    >>> import fnn, numpy as np
    >>> model = serial(fnn.nn.dense(4), fnn.nn.relu(), fnn.nn.dense(2))
    >>> params = model.init(fnn.random.key(0), (3,))
    >>> model.apply(params, np.ones((5, 3), np.float32)).shape
    (5, 2)
    """
    if not layers:
        raise ValueError("serial needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"serial expected Layer objects, got {type(layer).__name__} at {i}")
    n = len(layers)

    def forward(run: Run, x: Any) -> Any:
        for i in range(n):
            x = run(i, x)
        return x

    def backward(back: Back, dy: Array, need_dx: bool) -> Array | None:
        # Layers before the first one with parameters have nothing to write, and the input
        # gradient is never computed for them.
        stop = 0 if need_dx else next((i for i in range(n) if back.has_params(i)), n)
        for i in range(n - 1, stop - 1, -1):
            need = need_dx or i > stop
            dx = back(i, dy, need)
            if need:
                assert dx is not None  # back raises when a child gives none
                dy = dx
        return dy if need_dx else None

    return combinator(layers, forward, backward)
