"""The layer record: a frozen bundle of pure functions over a params type ``P``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import attrs
import numpy as np
from numpy.typing import DTypeLike

from .. import _checks
from .. import tree as _tree
from .._types import Array, Shape
from ..random import Key

P = TypeVar("P")
P_co = TypeVar("P_co", covariant=True)


class InitFn(Protocol[P_co]):
    """``init(key, in_shape, dtype=float32) -> params``; shapes exclude the batch axis."""

    def __call__(self, key: Key, in_shape: Shape, dtype: DTypeLike = np.float32) -> P_co: ...


Forward = Callable[[P, Array], tuple[Array, Any]]
"""``forward(params, x) -> (y, residuals)``: ``apply``'s ``y`` plus what backward needs."""

Backward = Callable[[P, Any, Array, bool], tuple[P, Array | None]]
"""``backward(params, residuals, dy, need_dx) -> (dparams, dx)``; ``dx`` is None unless asked."""

BackwardInto = Callable[[P, Any, Array, bool, list[Array]], Array | None]
"""``backward_into(params, residuals, dy, need_dx, out) -> dx``: like ``backward``, but the
params' gradients are written into ``out``, the writable leaves of a tree shaped like
``params`` in flatten order (for example views into one flat buffer)."""


@attrs.frozen(eq=False)
class Layer(Generic[P]):
    """A layer: a frozen record of pure functions over params of type ``P``.

    Attributes:
        init: ``init(key, in_shape, dtype=np.float32) -> params``. ``in_shape`` excludes
            the batch axis; layers without parameters return ``None``.
        output_shape: ``output_shape(in_shape) -> out_shape`` (batch axis excluded).
        apply: ``apply(params, x) -> y`` for ``x`` of shape ``(batch, *in_shape)``.
        forward: ``forward(params, x) -> (y, residuals)``, the same ``y`` as ``apply``
            plus what ``backward`` needs.
        backward: ``backward(params, residuals, dy, need_dx) -> (dparams, dx)``: the
            gradients of a scalar loss w.r.t. the params (a tree shaped like ``params``)
            and, only when ``need_dx`` is true, w.r.t. the input (else ``None``).
        spec: a JSON-able description (``{"layer": "dense", "features": 128, ...}``)
            from which :func:`fnn.nn.from_spec` rebuilds the layer, or ``None`` for
            layers that cannot be described that way (custom layers).
        backward_into: optionally, ``backward`` writing the params' gradients into given
            buffers (see :data:`BackwardInto`); training uses it to put the gradient of a
            whole model straight into the optimizer's flat buffer. Layers without it
            still work: their ``backward``'s result is copied.

    None of the functions modifies its arguments. Build your own layer by passing
    your functions: ``Layer(init=..., output_shape=..., apply=..., forward=...,
    backward=...)``, and check its backward with :func:`fnn.check_layer`.
    """

    init: InitFn[P]
    output_shape: Callable[[Shape], Shape]
    apply: Callable[[P, Array], Array]
    forward: Forward[P]
    backward: Backward[P]
    spec: Mapping[str, Any] | None = None
    backward_into: BackwardInto[P] | None = None


def backward_into(layer: Layer[P]) -> BackwardInto[P]:
    """``layer.backward_into``, or for layers without one, ``layer.backward`` whose
    gradients are copied into ``out``."""
    if layer.backward_into is not None:
        return layer.backward_into

    def copy_into(
        params: P, residuals: Any, dy: Array, need_dx: bool, out: list[Array]
    ) -> Array | None:
        grads, dx = layer.backward(params, residuals, dy, need_dx)
        values = _tree.leaves(grads)
        if len(values) != len(out):
            raise ValueError(
                f"a layer's backward gave {len(values)} gradients for {len(out)} params"
            )
        for target, value in zip(out, values):
            if np.shape(value) != target.shape:
                raise ValueError(
                    f"a layer's backward gave a gradient of shape {np.shape(value)} "
                    f"for a param of shape {target.shape}"
                )
            np.copyto(target, value)
        return dx

    return copy_into


def readonly(x: Any) -> Array:
    """A read-only view of ``x`` as an array (no copy; the caller's array is untouched)."""
    arr: Array = np.asarray(x)
    if not arr.flags.writeable:
        return arr
    view: Array = arr.view()
    view.flags.writeable = False
    return view


def param_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """The parameter dtype chosen at init: float32 (default) or float64."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"parameters must be float32 or float64, got dtype {dt}")
    return dt


def check_shape(in_shape: Any, what: str) -> Shape:
    """Validate an input shape (batch axis excluded) and return it as a tuple of ints."""
    if not isinstance(in_shape, tuple) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in in_shape
    ):
        raise TypeError(f"{what} needs in_shape as a tuple of positive ints, got {in_shape!r}")
    return tuple(int(d) for d in in_shape)


def float_input(x: Any, what: str) -> Array:
    """Check that ``x`` is a batched float array with at least a batch axis."""
    arr = _checks.float_array(x, what)
    if arr.ndim < 1:
        raise ValueError(f"{what} needs a batch axis, got a 0-d array")
    return arr
