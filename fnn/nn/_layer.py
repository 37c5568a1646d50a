"""The layer record: a frozen bundle of pure functions over a params type ``P``, and the
checks and helpers every layer, built-in or written by a user, shares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import attrs
import numpy as np
from numpy.typing import DTypeLike

from .. import _checks
from .._types import Array, Shape
from ..random import Key

P = TypeVar("P")
P_co = TypeVar("P_co", covariant=True)


class InitFn(Protocol[P_co]):
    """``init(key, in_shape, dtype=float32) -> params``; shapes exclude the batch axis."""

    def __call__(self, key: Key, in_shape: Shape, dtype: DTypeLike = np.float32) -> P_co: ...


class InitStateFn(Protocol):
    """``init_state(in_shape, dtype=float32) -> state``: a stateful layer's initial state."""

    def __call__(self, in_shape: Shape, dtype: DTypeLike = np.float32) -> Any: ...


@attrs.frozen(eq=False)
class Shapes:
    """What a layer makes of an input shape, worked out without allocating anything.

    Attributes:
        output: the output shape (batch axis excluded).
        params: a tree shaped like the params ``init`` returns, whose leaves are
            :func:`placeholder` arrays of the params' shapes and dtypes.
        state: the same for the state ``init_state`` returns (``None`` without state).
    """

    output: Shape
    params: Any = None
    state: Any = None


class ShapesFn(Protocol):
    """``shapes(in_shape, dtype=float32) -> Shapes``."""

    def __call__(self, in_shape: Shape, dtype: DTypeLike = np.float32) -> Shapes: ...


InferFn = Callable[[P, Array, Any], Array]
"""``infer(params, x, state) -> y``: the inference forward (``state`` is None without state)."""

ForwardFn = Callable[[P, Array, Any, Key | None], tuple[Array, Any, Any]]
"""``forward(params, x, state, key) -> (y, new_state, residuals)``: the training forward."""

BackwardFn = Callable[[P, Any, Array, bool, Any], Array | None]
"""``backward(params, residuals, dy, need_dx, out) -> dx``: the params' gradients are
written into ``out`` (buffers shaped like the params, records as lists); ``dx`` is None
unless asked for."""


@attrs.frozen(eq=False)
class Layer(Generic[P]):
    """A layer: a frozen record of pure functions over params of type ``P``.

    Attributes:
        init: ``init(key, in_shape, dtype=np.float32) -> params``. ``in_shape`` excludes
            the batch axis; layers without parameters return ``None``.
        shapes: ``shapes(in_shape, dtype=np.float32) -> Shapes``: the output shape and
            the shapes and dtypes of the params (and state) ``init`` (and ``init_state``)
            would make, without making them (:func:`placeholder` leaves). Loading a model
            file checks the file against it before allocating anything.
        infer: ``infer(params, x, state) -> y``, inference: no randomness, running
            statistics read from ``state``. Call it through :meth:`apply`.
        forward: ``forward(params, x, state, key) -> (y, new_state, residuals)``, the
            training forward: ``y`` (what the loss sees), the state after this batch
            (``state`` itself for layers without state) and what ``backward`` needs.
            ``key`` is an :class:`fnn.random.Key` for stochastic layers, else ``None``.
        backward: ``backward(params, residuals, dy, need_dx, out) -> dx``: writes the
            gradient of a scalar loss w.r.t. ``params`` into ``out`` and returns the
            gradient w.r.t. the input when ``need_dx`` is true (else ``None``). ``out``
            holds writable arrays shaped like the params' leaves, arranged like the
            params with each record (attrs class) as the list of its fields
            (:func:`fnn.tree.buffers`): ``dw, db = out`` for :class:`DenseParams`, one
            entry per layer for a ``serial``, ``None`` for a layer without params. Every
            entry must be written. This is the layer's one derivative: training runs it
            (``out`` are views into the optimizer's flat gradient buffer) and
            :func:`fnn.check_layer` checks it.
        init_state: ``init_state(in_shape, dtype) -> state`` for a layer that keeps model
            state (batch norm's running statistics); ``None`` (the default) for layers
            without, whose state is ``None`` everywhere.
        stochastic: whether the training forward draws random numbers (dropout): it is
            then handed a key, derived per step from the training state's key.
        spec: a JSON-able description (``{"layer": "dense", "features": 128, ...}``)
            from which :func:`fnn.nn.from_spec` rebuilds the layer, or ``None``.
            Constructors registered with :func:`fnn.nn.register` set it.

    None of the functions modifies its arguments. Combinators (:func:`serial`) thread
    params, state, keys and residuals through their children, so a layer written by a
    user takes part in training, checking and saving exactly as a built-in one does.
    """

    init: InitFn[P]
    shapes: ShapesFn
    infer: InferFn[P]
    forward: ForwardFn[P]
    backward: BackwardFn[P]
    init_state: InitStateFn | None = None
    stochastic: bool = False
    spec: Mapping[str, Any] | None = None

    @property
    def stateful(self) -> bool:
        """Whether the layer keeps model state (``init_state`` is set)."""
        return self.init_state is not None

    def output_shape(self, in_shape: Shape) -> Shape:
        """The output shape for inputs of shape ``(batch, *in_shape)``."""
        return self.shapes(in_shape).output

    def apply(self, params: P, x: Array, state: Any = None) -> Array:
        """Inference: ``infer(params, x, state)`` after checking that ``x`` is a finite float
        array and that ``state`` is given exactly when the layer keeps state.

        Raises:
            TypeError: ``x`` is not a float array; ``state`` given to a stateless layer.
            ValueError: NaN or Inf in ``x``; no ``state`` for a layer that keeps one.
        """
        _checks.finite(check_input(x, "model"), "model input")
        return self.infer(params, x, self.check_state(state))

    def check_state(self, state: Any) -> Any:
        """``state`` if it is given exactly when the layer keeps state, else an error.

        Raises:
            TypeError: a state for a layer that keeps none.
            ValueError: no state for a layer that keeps one.
        """
        if self.init_state is None and state is not None:
            raise TypeError(
                f"this model keeps no state: expected state=None, got {type(state).__name__}"
            )
        if self.init_state is not None and state is None:
            raise ValueError(
                "this model keeps state (running statistics): pass its state, e.g. "
                "train_state.model_state or the state fnn.io.load_model returns"
            )
        return state


def placeholder(shape: Shape, dtype: DTypeLike = np.float32) -> Array:
    """A read-only array of ``shape`` and ``dtype`` that takes no memory (a broadcast
    zero): what :attr:`Layer.shapes` puts where the real params would be."""
    zero: Array = np.zeros((), dtype=dtype)
    try:
        out: Array = np.broadcast_to(zero, shape)
    except ValueError:
        raise ValueError(
            f"an array of shape {shape} has more entries than NumPy can index"
        ) from None
    return out


def readonly(x: Any) -> Array:
    """A read-only view of ``x`` as an array (no copy; the caller's array is untouched).

    Use it as the converter of a params record's fields, as :class:`DenseParams` does."""
    arr: Array = np.asarray(x)
    if not arr.flags.writeable:
        return arr
    view: Array = arr.view()
    view.flags.writeable = False
    return view


def param_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """The parameter dtype chosen at init: float32 (default) or float64.

    Raises:
        TypeError: any other dtype.
    """
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"parameters must be float32 or float64, got dtype {dt}")
    return dt


def check_in_shape(in_shape: Any, what: str) -> Shape:
    """Validate an input shape (batch axis excluded) and return it as a tuple of ints.

    Raises:
        TypeError: not a tuple of positive ints (``what`` names the layer).
    """
    if not isinstance(in_shape, tuple) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in in_shape
    ):
        raise TypeError(f"{what} needs in_shape as a tuple of positive ints, got {in_shape!r}")
    return tuple(int(d) for d in in_shape)


def check_input(
    x: Any, name: str, dtype: np.dtype[Any] | None = None, shape: Shape | None = None
) -> Array:
    """Check the input of the layer called ``name``: a float NumPy array with a batch axis,
    of ``dtype`` (the params' dtype) and per-example ``shape`` when given. Returns ``x``.

    Raises:
        TypeError: not a NumPy array, not floating, or not of ``dtype``.
        ValueError: no batch axis, or not ``(batch, *shape)``, e.g. ``"dense expected input
            of shape (batch, 784), got (32, 700)"``.
    """
    arr: Array = x
    if type(x) is not np.ndarray or x.dtype.kind != "f" or (dtype is not None and x.dtype != dtype):
        arr = _checks.float_array(x, f"{name} input", dtype)  # raises, naming what came
    if arr.ndim < 1:
        raise ValueError(f"{name} input needs a batch axis, got a 0-d array")
    if shape is not None and arr.shape[1:] != shape:
        expected = ", ".join(["batch", *map(str, shape)])
        raise ValueError(f"{name} expected input of shape ({expected}), got {arr.shape}")
    return arr


def check_no_state(state: Any, what: str) -> None:
    """Raise a TypeError unless ``state`` is None (for layers that keep no state)."""
    if state is not None:
        raise TypeError(f"{what} keeps no state: expected None, got {type(state).__name__}")
