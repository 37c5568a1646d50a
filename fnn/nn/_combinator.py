"""The one combinator helper: a layer made of layers, from how data flows through them.

A combinator says only how its children are wired: ``forward(run, x)`` calls
``run(i, x)`` for child ``i`` and combines the results; ``backward(back, dy, need_dx)``
calls ``back(i, dy, need)`` in reverse and combines the input gradients; ``output(run,
in_shape)`` does the same with shapes (``forward`` itself by default, which suits a
chain). :func:`combinator` threads everything else, once, for :func:`serial`,
:func:`residual` and every block to come: the params (a tuple of the children's), the
model state (a tuple, ``None`` for children without, or ``None`` when no child keeps
one), the keys (child ``i`` gets ``fold_in(key, i)`` when it is stochastic), the mask
of valid sequence positions (handed to the children that are :attr:`Layer.masked`), the
residuals, and the gradient buffers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast, overload

import numpy as np

from .. import random
from .. import tree as _tree
from .._types import Array, Shape
from ..random import Key
from ._layer import Declared, Decoder, Layer, decoder_of

Run = Callable[[int, Any], Any]
"""``run(i, x) -> y``: child ``i`` applied (to an array, or to a shape in ``output``)."""


class Back:
    """What a combinator's ``backward`` is handed: ``back(i, dy, need_dx) -> dx`` runs
    child ``i``'s backward (writing its params' gradients), and :meth:`has_params` says
    whether child ``i`` has any."""

    def __init__(self, call: Callable[[int, Array, bool], Array | None], grads: tuple[Any, ...]):
        self._call = call
        self._grads = grads

    def __call__(self, i: int, dy: Array, need_dx: bool) -> Array | None:
        return self._call(i, dy, need_dx)

    def has_params(self, i: int) -> bool:
        """Whether child ``i`` has params (buffers to write), so its backward must run."""
        return _has_buffers(self._grads[i])


Flow = Callable[[Run, Array], Array]
BackFlow = Callable[[Back, Array, bool], Array | None]
ShapeFlow = Callable[[Run, Shape], Shape]


@overload
def combinator(
    layers: Sequence[Layer[Any, None] | None],
    forward: Flow,
    backward: BackFlow,
    output: ShapeFlow | None = None,
) -> Layer[tuple[object, ...], None]: ...


@overload
def combinator(
    layers: Sequence[Layer[Any, Any] | None],
    forward: Flow,
    backward: BackFlow,
    output: ShapeFlow | None = None,
) -> Layer[tuple[object, ...], tuple[object, ...]]: ...


def combinator(
    layers: Sequence[Layer[Any, Any] | None],
    forward: Flow,
    backward: BackFlow,
    output: ShapeFlow | None = None,
) -> Layer[tuple[Any, ...], Any]:
    """A layer made of ``layers`` (``None`` stands for a child that is not there, whose
    params and state are ``None``), wired by ``forward``, ``backward`` and ``output``.

    Its params are a tuple of the children's, typed ``tuple[object, ...]``; its state is
    ``None`` when no child keeps one (typed so when every child's state type is
    ``None``), else a tuple of the children's (``tuple[object, ...]``). The types hold no
    ``Any``, so :func:`serial`, :func:`residual` and :func:`tied` of a combinator keep
    their other children's types; a child's params are then reached by narrowing
    (``cast(nn.DenseParams, params[0]).w``, or an ``isinstance`` check).

    Args:
        layers: the children, in the order of the params tuple.
        forward: ``forward(run, x) -> y``, where ``run(i, x)`` applies child ``i`` (its
            inference, or its training forward, as the combinator is called). Each child
            runs at most once per call.
        backward: ``backward(back, dy, need_dx) -> dx``: calls ``back(i, dy_i, need)``
            for the children that ran, last first, and returns the input gradient when
            ``need_dx`` (else None). ``back(i, dy, need)`` returns child ``i``'s input
            gradient when ``need`` (a TypeError if the child gives none).
        output: ``output(run, in_shape) -> out_shape``, where ``run(i, shape)`` is child
            ``i``'s output shape; when None, ``forward`` itself, run on shapes: right for
            a forward that only passes values through its children (``run(1, run(0,
            x))``); one that computes with them (``run(0, x) + run(1, x)``) needs
            ``output`` (a TypeError says so).

    Raises:
        TypeError: a child is neither a Layer nor None.

    >>> import fnn, numpy as np
    >>> twice = fnn.nn.combinator(
    ...     [fnn.nn.dense(3), fnn.nn.dense(3)],
    ...     forward=lambda run, x: run(1, run(0, x)),
    ...     backward=lambda back, dy, need: back(0, back(1, dy, True), need),
    ... )
    >>> params = twice.init(fnn.random.key(0), (3,))
    >>> twice.apply(params, np.ones((2, 3), np.float32)).shape
    (2, 3)
    """
    children = tuple(layers)
    for i, layer in enumerate(children):
        if layer is not None and not isinstance(layer, Layer):
            raise TypeError(
                f"a combinator's children are Layers, got {type(layer).__name__} at {i}"
            )
    n = len(children)
    present = [layer for layer in children if layer is not None]
    stateful = any(layer.stateful for layer in present)
    stochastic = any(layer.stochastic for layer in present)
    masked = any(layer.masked for layer in present)
    no_states: tuple[Any, ...] = (None,) * n
    shape_flow = _on_shapes(forward) if output is None else output

    def child(i: int) -> Layer[Any, Any]:
        layer = children[i]
        if layer is None:
            raise IndexError(f"child {i} of this combinator is not there (None)")
        return layer

    def declare(in_shape: Shape) -> Declared[tuple[Any, ...], Any]:
        params: list[Any] = [None] * n
        states: list[Any] = [None] * n
        least, ids = [1], []

        def run(i: int, shape: Shape) -> Shape:
            found = child(i).declared(shape)
            params[i], states[i] = found.params, found.state
            least.append(found.min_batch)
            if found.ids is not None:
                ids.append(found.ids)
            return found.output

        out = shape_flow(run, in_shape)
        state = tuple(states) if stateful else None
        return Declared(out, tuple(params), state, max(least), ids[0] if ids else None)

    def infer(params: tuple[Any, ...], x: Array, state: Any, mask: Array | None = None) -> Array:
        states = state if stateful else no_states

        def run(i: int, h: Array) -> Array:
            layer = child(i)
            if layer.masked:
                masked_infer: Any = layer.infer
                y: Array = masked_infer(params[i], h, states[i], mask)
                return y
            return layer.infer(params[i], h, states[i])

        return forward(run, x)

    def train_forward(
        params: tuple[Any, ...], x: Array, state: Any, key: Key | None, mask: Array | None = None
    ) -> tuple[Array, Any, tuple[Any, ...]]:
        if stochastic and key is None:
            raise ValueError(
                "this model draws random numbers in training (dropout): its training "
                "forward needs a key"
            )
        states = state if stateful else no_states
        new_states = list(states)
        residuals: list[Any] = [None] * n
        in_shapes: list[tuple[int, ...] | None] = [None] * n  # what each child's dx must be

        def run(i: int, h: Array) -> Array:
            layer = child(i)
            k = random.fold_in(cast(Key, key), i) if layer.stochastic else None
            if layer.masked:
                masked_forward: Any = layer.forward
                out = masked_forward(params[i], h, states[i], k, mask)
            else:
                out = layer.forward(params[i], h, states[i], k)
            if not isinstance(out, tuple) or len(out) != 3 or not isinstance(out[0], np.ndarray):
                raise TypeError(
                    f"layer {i} ({_named(layer)}) of this combinator: forward must return "
                    f"(y, state, residuals) with y an array, got {_described(out)}"
                )
            y: Array = out[0]
            new_states[i], residuals[i], in_shapes[i] = out[1], out[2], getattr(h, "shape", None)
            return y

        y = forward(run, x)
        # the children's residuals, then the shapes of their inputs
        return y, tuple(new_states) if stateful else None, (*residuals, tuple(in_shapes))

    def train_backward(
        params: tuple[Any, ...],
        residuals: tuple[Any, ...],
        dy: Array,
        need_dx: bool,
        grads: tuple[Any, ...],
    ) -> Array | None:
        in_shapes = residuals[n]

        def call(i: int, d: Array, need: bool) -> Array | None:
            dx = child(i).backward(params[i], residuals[i], d, need, grads[i])
            if need and dx is None:
                raise TypeError(
                    f"layer {i} ({_named(child(i))}) of this combinator returned no input "
                    "gradient when asked"
                )
            expected = in_shapes[i]  # None: the child was handed something not an array
            if need and (
                not isinstance(dx, np.ndarray) or (expected is not None and dx.shape != expected)
            ):
                raise ValueError(
                    f"layer {i} ({_named(child(i))}) of this combinator: backward must return "
                    f"the gradient of its input, of shape {in_shapes[i]}, got "
                    f"{_described(dx)}"
                )
            return dx

        return backward(Back(call, grads), dy, need_dx)

    decoder = None
    if any(layer.decoder is not None for layer in present):  # else each position alone
        decoders = [None if layer is None else decoder_of(layer) for layer in children]

        def start(params: tuple[Any, ...], batch: int, length: int) -> tuple[Any, ...]:
            return tuple(
                None if d is None else d.start(params[i], batch, length)
                for i, d in enumerate(decoders)
            )

        def step(
            params: tuple[Any, ...],
            x: Array,
            state: Any,
            cache: Any,
            t: int,
            mask: Array | None = None,
        ) -> Array:
            states = state if stateful else no_states

            def run(i: int, h: Array) -> Array:
                d = decoders[i]
                assert d is not None  # forward runs only the children that are there
                layer = children[i]
                # a masked layer's own step takes the mask; one without a decoder gets
                # decoder_of's per-position step (which generate's check then refuses)
                if (
                    mask is not None
                    and layer is not None
                    and layer.masked
                    and layer.decoder is not None
                ):
                    masked_step: Any = d.step  # a masked layer's step takes the mask too
                    y: Array = masked_step(params[i], h, states[i], cache[i], t, mask)
                    return y
                return d.step(params[i], h, states[i], cache[i], t)

            return forward(run, x)

        decoder = Decoder(start, step)
    return Layer(
        declare,
        infer,
        train_forward,
        train_backward,
        stateful=stateful,
        stochastic=stochastic,
        masked=masked,
        decoder=decoder,
    )


def _has_buffers(grads: Any) -> bool:
    """Whether a child's ``grads`` (buffers arranged like its params) hold any buffer."""
    return _tree.structure(grads).num_leaves > 0


def _named(layer: Layer[Any, Any]) -> str:
    """How messages name a child: its registered name, or that it has none."""
    return layer.name or "a layer without a registered name"


def _described(value: Any) -> str:
    """``value`` in a message: an array's shape, a tuple's length, else its type."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return type(value).__name__


class _ShapeOnly:
    """A shape standing for an input or output while a combinator without ``output`` runs
    its ``forward`` on shapes: arithmetic on it is refused, since on tuples it would
    concatenate or repeat them into a wrong shape."""

    __slots__ = ("shape",)

    def __init__(self, shape: Shape) -> None:
        self.shape = tuple(shape)

    def _refuse(self, *args: Any) -> Any:
        raise TypeError(
            "this combinator has no output=, so its forward is run on shapes to find its "
            "output shape, and that forward computes with its inputs: pass output=lambda "
            "run, shape: ..., the output shape from the children's (run(i, shape))"
        )

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __matmul__ = __rmatmul__ = __pow__ = __neg__ = _refuse
    __getitem__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __array_ufunc__ = __array_function__ = _refuse  # np.maximum(a, b), np.concatenate

    def __getattr__(self, name: str) -> Any:  # .reshape, .T, ...: not a shape's
        self._refuse()


def _on_shapes(forward: Flow) -> ShapeFlow:
    """``forward`` as the combinator's ``output``: run on :class:`_ShapeOnly` shapes."""

    def flow(run: Run, in_shape: Shape) -> Shape:
        def run_shape(i: int, shape: Any) -> Any:
            return _ShapeOnly(run(i, shape.shape if isinstance(shape, _ShapeOnly) else shape))

        out: Any = forward(run_shape, cast(Array, _ShapeOnly(in_shape)))
        if not isinstance(out, _ShapeOnly):
            raise TypeError(
                "this combinator has no output=, and its forward, run on shapes, returned "
                f"{type(out).__name__} rather than what its children gave: pass output="
            )
        return out.shape

    return flow
