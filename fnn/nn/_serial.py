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
P9 = TypeVar("P9")
P10 = TypeVar("P10")
P11 = TypeVar("P11")
P12 = TypeVar("P12")
P13 = TypeVar("P13")
P14 = TypeVar("P14")
P15 = TypeVar("P15")
P16 = TypeVar("P16")
S1 = TypeVar("S1")
S2 = TypeVar("S2")
S3 = TypeVar("S3")
S4 = TypeVar("S4")
S5 = TypeVar("S5")
S6 = TypeVar("S6")
S7 = TypeVar("S7")
S8 = TypeVar("S8")
S9 = TypeVar("S9")
S10 = TypeVar("S10")
S11 = TypeVar("S11")
S12 = TypeVar("S12")
S13 = TypeVar("S13")
S14 = TypeVar("S14")
S15 = TypeVar("S15")
S16 = TypeVar("S16")


@overload
def serial(l1: Layer[P1, None], /) -> Layer[tuple[P1,], None]: ...


@overload
def serial(l1: Layer[P1, S1], /) -> Layer[tuple[P1,], tuple[S1,]]: ...


@overload
def serial(l1: Layer[P1, None], l2: Layer[P2, None], /) -> Layer[tuple[P1, P2], None]: ...


@overload
def serial(l1: Layer[P1, S1], l2: Layer[P2, S2], /) -> Layer[tuple[P1, P2], tuple[S1, S2]]: ...


@overload
def serial(
    l1: Layer[P1, None], l2: Layer[P2, None], l3: Layer[P3, None], /
) -> Layer[tuple[P1, P2, P3], None]: ...


@overload
def serial(
    l1: Layer[P1, S1], l2: Layer[P2, S2], l3: Layer[P3, S3], /
) -> Layer[tuple[P1, P2, P3], tuple[S1, S2, S3]]: ...


@overload
def serial(
    l1: Layer[P1, None], l2: Layer[P2, None], l3: Layer[P3, None], l4: Layer[P4, None], /
) -> Layer[tuple[P1, P2, P3, P4], None]: ...


@overload
def serial(
    l1: Layer[P1, S1], l2: Layer[P2, S2], l3: Layer[P3, S3], l4: Layer[P4, S4], /
) -> Layer[tuple[P1, P2, P3, P4], tuple[S1, S2, S3, S4]]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5], None]: ...


@overload
def serial(
    l1: Layer[P1, S1], l2: Layer[P2, S2], l3: Layer[P3, S3], l4: Layer[P4, S4], l5: Layer[P5, S5], /
) -> Layer[tuple[P1, P2, P3, P4, P5], tuple[S1, S2, S3, S4, S5]]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    l6: Layer[P6, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6], None]: ...


@overload
def serial(
    l1: Layer[P1, S1],
    l2: Layer[P2, S2],
    l3: Layer[P3, S3],
    l4: Layer[P4, S4],
    l5: Layer[P5, S5],
    l6: Layer[P6, S6],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6], tuple[S1, S2, S3, S4, S5, S6]]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    l6: Layer[P6, None],
    l7: Layer[P7, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7], None]: ...


@overload
def serial(
    l1: Layer[P1, S1],
    l2: Layer[P2, S2],
    l3: Layer[P3, S3],
    l4: Layer[P4, S4],
    l5: Layer[P5, S5],
    l6: Layer[P6, S6],
    l7: Layer[P7, S7],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7], tuple[S1, S2, S3, S4, S5, S6, S7]]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    l6: Layer[P6, None],
    l7: Layer[P7, None],
    l8: Layer[P8, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7, P8], None]: ...


@overload
def serial(
    l1: Layer[P1, S1],
    l2: Layer[P2, S2],
    l3: Layer[P3, S3],
    l4: Layer[P4, S4],
    l5: Layer[P5, S5],
    l6: Layer[P6, S6],
    l7: Layer[P7, S7],
    l8: Layer[P8, S8],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7, P8], tuple[S1, S2, S3, S4, S5, S6, S7, S8]]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    l6: Layer[P6, None],
    l7: Layer[P7, None],
    l8: Layer[P8, None],
    l9: Layer[P9, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9], None]: ...


@overload
def serial(
    l1: Layer[P1, S1],
    l2: Layer[P2, S2],
    l3: Layer[P3, S3],
    l4: Layer[P4, S4],
    l5: Layer[P5, S5],
    l6: Layer[P6, S6],
    l7: Layer[P7, S7],
    l8: Layer[P8, S8],
    l9: Layer[P9, S9],
    /,
) -> Layer[
    tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9], tuple[S1, S2, S3, S4, S5, S6, S7, S8, S9]
]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    l6: Layer[P6, None],
    l7: Layer[P7, None],
    l8: Layer[P8, None],
    l9: Layer[P9, None],
    l10: Layer[P10, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10], None]: ...


@overload
def serial(
    l1: Layer[P1, S1],
    l2: Layer[P2, S2],
    l3: Layer[P3, S3],
    l4: Layer[P4, S4],
    l5: Layer[P5, S5],
    l6: Layer[P6, S6],
    l7: Layer[P7, S7],
    l8: Layer[P8, S8],
    l9: Layer[P9, S9],
    l10: Layer[P10, S10],
    /,
) -> Layer[
    tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10], tuple[S1, S2, S3, S4, S5, S6, S7, S8, S9, S10]
]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    l6: Layer[P6, None],
    l7: Layer[P7, None],
    l8: Layer[P8, None],
    l9: Layer[P9, None],
    l10: Layer[P10, None],
    l11: Layer[P11, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11], None]: ...


@overload
def serial(
    l1: Layer[P1, S1],
    l2: Layer[P2, S2],
    l3: Layer[P3, S3],
    l4: Layer[P4, S4],
    l5: Layer[P5, S5],
    l6: Layer[P6, S6],
    l7: Layer[P7, S7],
    l8: Layer[P8, S8],
    l9: Layer[P9, S9],
    l10: Layer[P10, S10],
    l11: Layer[P11, S11],
    /,
) -> Layer[
    tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11],
    tuple[S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11],
]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    l6: Layer[P6, None],
    l7: Layer[P7, None],
    l8: Layer[P8, None],
    l9: Layer[P9, None],
    l10: Layer[P10, None],
    l11: Layer[P11, None],
    l12: Layer[P12, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12], None]: ...


@overload
def serial(
    l1: Layer[P1, S1],
    l2: Layer[P2, S2],
    l3: Layer[P3, S3],
    l4: Layer[P4, S4],
    l5: Layer[P5, S5],
    l6: Layer[P6, S6],
    l7: Layer[P7, S7],
    l8: Layer[P8, S8],
    l9: Layer[P9, S9],
    l10: Layer[P10, S10],
    l11: Layer[P11, S11],
    l12: Layer[P12, S12],
    /,
) -> Layer[
    tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12],
    tuple[S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, S12],
]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    l6: Layer[P6, None],
    l7: Layer[P7, None],
    l8: Layer[P8, None],
    l9: Layer[P9, None],
    l10: Layer[P10, None],
    l11: Layer[P11, None],
    l12: Layer[P12, None],
    l13: Layer[P13, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13], None]: ...


@overload
def serial(
    l1: Layer[P1, S1],
    l2: Layer[P2, S2],
    l3: Layer[P3, S3],
    l4: Layer[P4, S4],
    l5: Layer[P5, S5],
    l6: Layer[P6, S6],
    l7: Layer[P7, S7],
    l8: Layer[P8, S8],
    l9: Layer[P9, S9],
    l10: Layer[P10, S10],
    l11: Layer[P11, S11],
    l12: Layer[P12, S12],
    l13: Layer[P13, S13],
    /,
) -> Layer[
    tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13],
    tuple[S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, S12, S13],
]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    l6: Layer[P6, None],
    l7: Layer[P7, None],
    l8: Layer[P8, None],
    l9: Layer[P9, None],
    l10: Layer[P10, None],
    l11: Layer[P11, None],
    l12: Layer[P12, None],
    l13: Layer[P13, None],
    l14: Layer[P14, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14], None]: ...


@overload
def serial(
    l1: Layer[P1, S1],
    l2: Layer[P2, S2],
    l3: Layer[P3, S3],
    l4: Layer[P4, S4],
    l5: Layer[P5, S5],
    l6: Layer[P6, S6],
    l7: Layer[P7, S7],
    l8: Layer[P8, S8],
    l9: Layer[P9, S9],
    l10: Layer[P10, S10],
    l11: Layer[P11, S11],
    l12: Layer[P12, S12],
    l13: Layer[P13, S13],
    l14: Layer[P14, S14],
    /,
) -> Layer[
    tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14],
    tuple[S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, S12, S13, S14],
]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    l6: Layer[P6, None],
    l7: Layer[P7, None],
    l8: Layer[P8, None],
    l9: Layer[P9, None],
    l10: Layer[P10, None],
    l11: Layer[P11, None],
    l12: Layer[P12, None],
    l13: Layer[P13, None],
    l14: Layer[P14, None],
    l15: Layer[P15, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15], None]: ...


@overload
def serial(
    l1: Layer[P1, S1],
    l2: Layer[P2, S2],
    l3: Layer[P3, S3],
    l4: Layer[P4, S4],
    l5: Layer[P5, S5],
    l6: Layer[P6, S6],
    l7: Layer[P7, S7],
    l8: Layer[P8, S8],
    l9: Layer[P9, S9],
    l10: Layer[P10, S10],
    l11: Layer[P11, S11],
    l12: Layer[P12, S12],
    l13: Layer[P13, S13],
    l14: Layer[P14, S14],
    l15: Layer[P15, S15],
    /,
) -> Layer[
    tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15],
    tuple[S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, S12, S13, S14, S15],
]: ...


@overload
def serial(
    l1: Layer[P1, None],
    l2: Layer[P2, None],
    l3: Layer[P3, None],
    l4: Layer[P4, None],
    l5: Layer[P5, None],
    l6: Layer[P6, None],
    l7: Layer[P7, None],
    l8: Layer[P8, None],
    l9: Layer[P9, None],
    l10: Layer[P10, None],
    l11: Layer[P11, None],
    l12: Layer[P12, None],
    l13: Layer[P13, None],
    l14: Layer[P14, None],
    l15: Layer[P15, None],
    l16: Layer[P16, None],
    /,
) -> Layer[tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16], None]: ...


@overload
def serial(
    l1: Layer[P1, S1],
    l2: Layer[P2, S2],
    l3: Layer[P3, S3],
    l4: Layer[P4, S4],
    l5: Layer[P5, S5],
    l6: Layer[P6, S6],
    l7: Layer[P7, S7],
    l8: Layer[P8, S8],
    l9: Layer[P9, S9],
    l10: Layer[P10, S10],
    l11: Layer[P11, S11],
    l12: Layer[P12, S12],
    l13: Layer[P13, S13],
    l14: Layer[P14, S14],
    l15: Layer[P15, S15],
    l16: Layer[P16, S16],
    /,
) -> Layer[
    tuple[P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16],
    tuple[S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, S12, S13, S14, S15, S16],
]: ...


@overload
def serial(*layers: Layer[Any, Any]) -> Layer[tuple[Any, ...], Any]: ...


@register("serial")
def serial(*layers: Layer[Any, Any]) -> Layer[tuple[Any, ...], Any]:
    """Layers applied one after another; the params are the tuple of the layers' params.

    ``serial(a, b).apply((pa, pb), x) == b.apply(pb, a.apply(pa, x))``.

    State and keys are threaded by :func:`combinator`: the state of a serial holding a
    stateful layer is the tuple of its layers' states (``None`` for those without), else
    ``None``; in training, stochastic layer ``i`` gets ``fold_in(key, i)``.

    Backward runs the layers in reverse and never computes more than it must: when the
    caller does not need the gradient of the input (``need_dx=False``, as
    :func:`fnn.grad` asks), it stops at the first layer that has parameters and asks
    that layer for its parameter gradients only.

    The static type records each layer's params and state types for up to 16 layers
    (``serial(dense(4), relu())`` is a ``Layer[tuple[DenseParams, None], None]``; with a
    ``batch_norm`` its state is the tuple of the layers' states), so passing one model's
    params or state to another model is a type error where the structures differ. More
    layers give ``Layer[tuple[Any, ...], Any]``: nest serials to keep the types.

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
