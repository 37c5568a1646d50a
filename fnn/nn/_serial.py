"""Combinators: layers made of layers."""

from __future__ import annotations

from typing import Any, TypeVar, overload

import numpy as np
from numpy.typing import DTypeLike

from .. import _checks, random
from .. import tree as _tree
from .._types import Array, Shape
from ..random import Key
from ._layer import Layer, backward_into, check_shape, float_input

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


def serial(*layers: Layer[Any]) -> Layer[tuple[Any, ...]]:
    """Layers applied one after another; the params are the tuple of the layers' params.

    ``serial(a, b).apply((pa, pb), x) == b.apply(pb, a.apply(pa, x))``.

    Backward runs the layers in reverse and never computes more than it must: when the
    caller does not need the gradient of the input (``need_dx=False``, as
    :func:`fnn.grad` asks), it stops at the first layer that has parameters and asks
    that layer for its parameter gradients only.

    ``apply`` checks that its input is a finite float array (one cheap pass), so NaN or
    Inf in ``x`` fails with a ValueError instead of spreading through the output.

    The static type records each layer's params type for up to 8 layers, so passing
    one model's params to another model is a type error where the structures differ.
    """
    if not layers:
        raise ValueError("serial needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"serial expected Layer objects, got {type(layer).__name__} at {i}")
    n = len(layers)

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

    def init(key: Key, in_shape: Shape, dtype: DTypeLike = np.float32) -> tuple[Any, ...]:
        shape = check_shape(in_shape, "serial")
        params = []
        for layer, k in zip(layers, random.split(key, n)):
            params.append(layer.init(k, shape, dtype))
            shape = layer.output_shape(shape)
        return tuple(params)

    def output_shape(in_shape: Shape) -> Shape:
        for layer in layers:
            in_shape = layer.output_shape(in_shape)
        return in_shape

    def apply(params: tuple[Any, ...], x: Array) -> Array:
        _checks.finite(float_input(x, "model input"), "model input")
        for layer, p in zip(layers, check_params(params)):
            x = layer.apply(p, x)
        return x

    def forward(params: tuple[Any, ...], x: Array) -> tuple[Array, tuple[Any, ...]]:
        residuals = []
        for layer, p in zip(layers, check_params(params)):
            x, r = layer.forward(p, x)
            residuals.append(r)
        return x, tuple(residuals)

    intos = [backward_into(layer) for layer in layers]

    def into(
        params: tuple[Any, ...],
        residuals: tuple[Any, ...],
        dy: Array,
        need_dx: bool,
        out: list[Array],
    ) -> Array | None:
        params = check_params(params)
        counts = [_tree.num_leaves(p) for p in params]
        if sum(counts) != len(out):
            raise ValueError(f"serial's params have {sum(counts)} leaves, got {len(out)} buffers")
        stop = 0 if need_dx else next((i for i, c in enumerate(counts) if c), n)
        end = len(out)
        for i in range(n - 1, stop - 1, -1):
            need = need_dx or i > stop
            dx = intos[i](params[i], residuals[i], dy, need, out[end - counts[i] : end])
            end -= counts[i]
            if need:
                if dx is None:
                    raise TypeError(f"layer {i} of serial returned no input gradient when asked")
                dy = dx
        return dy if need_dx else None

    def backward(
        params: tuple[Any, ...], residuals: tuple[Any, ...], dy: Array, need_dx: bool
    ) -> tuple[tuple[Any, ...], Array | None]:
        values, treedef = _tree.flatten(check_params(params))
        out = [np.empty_like(v) for v in values]
        dx = into(params, residuals, dy, need_dx, out)
        grads: tuple[Any, ...] = _tree.unflatten(treedef, out)
        return grads, dx

    specs = [layer.spec for layer in layers]
    spec = None if any(s is None for s in specs) else {"layer": "serial", "layers": specs}
    return Layer(init, output_shape, apply, forward, backward, spec, into)
