"""Optimizer states, gradient transforms and the optimizer record.

A :class:`Transform` is one step of an update rule, written for a single flat array:
the whole parameter tree is viewed as one contiguous buffer (see
:func:`fnn.tree.ravel`), so a rule costs a handful of whole-array NumPy operations per
step however many leaves the tree has. :class:`Optimizer` chains transforms and applies
their result to the parameters; its state, :class:`OptState`, is a frozen tree of
parameter-shaped trees (params and moments), so it saves and loads like any tree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, cast

import attrs
import numpy as np

from .. import tree as _tree
from .._types import Array
from ..tree import Layout
from ._schedules import Schedule

P = TypeVar("P")

Moments = tuple[Array, ...]
"""A transform's state: flat arrays shaped like the flat parameter buffer."""


@attrs.frozen(eq=False)
class Updates:
    """An update vector held lazily as ``scale * array``.

    Scalar factors (learning rates, bias corrections, clipping) multiply ``scale`` for
    free; :meth:`value` materializes the product once when a rule needs the numbers.
    ``array`` may be the caller's gradient buffer: transforms never write into it.
    """

    array: Array
    scale: float = 1.0

    def value(self) -> Array:
        """``scale * array`` as an array (``array`` itself when ``scale`` is 1)."""
        if self.scale == 1.0:
            return self.array
        out: Array = np.multiply(self.array, self.scale)
        return out

    def scaled(self, factor: float) -> Updates:
        """These updates times a Python float, without touching the array."""
        return Updates(self.array, self.scale * float(factor))


UpdateFn = Callable[[Updates, Moments, Array, int, Layout], tuple[Updates, Moments]]
"""``update(updates, moments, params, step, layout) -> (updates, moments)``; ``step``
counts the updates made before this one (0 for the first)."""


@attrs.frozen(eq=False)
class Transform:
    """One gradient transformation: a rule written for one flat array.

    Attributes:
        init: ``init(flat_params, layout) -> moments``, the initial state (flat arrays).
        update: see :data:`UpdateFn`. Must not modify its arguments.
        state: the frozen attrs class whose fields name the moments, in order; the
            optimizer state shows each moment as a tree shaped like the params.
        learning_rate: the schedule, for transforms that scale by a learning rate.
    """

    init: Callable[[Array, Layout], Moments]
    update: UpdateFn
    state: type
    learning_rate: Schedule | None = None


@attrs.frozen(eq=False)
class EmptyState:
    """The state of a transform that keeps no moments."""


def stateless(
    update: Callable[[Updates, Array, int, Layout], Updates],
    learning_rate: Schedule | None = None,
) -> Transform:
    """A transform without moments from ``update(updates, params, step, layout)``."""

    def init(flat: Array, layout: Layout) -> Moments:
        return ()

    def update_fn(
        u: Updates, moments: Moments, params: Array, step: int, layout: Layout
    ) -> tuple[Updates, Moments]:
        return update(u, params, step, layout), ()

    return Transform(init, update_fn, EmptyState, learning_rate)


@attrs.frozen(eq=False, slots=False)
class OptState(Generic[P]):
    """The state of an optimizer: the params, the step count and each transform's moments.

    Attributes:
        params: the current parameters (a frozen tree of read-only arrays).
        step: how many updates have been applied.
        inner: one record per transform of the chain (e.g. ``AdamState(mu, nu)``),
            whose fields are trees shaped like ``params``.

    A frozen tree like any other: it can be saved, loaded and compared with
    :mod:`fnn.tree`. States made by :meth:`Optimizer.update` also carry the flat
    buffers their trees are views of, an implementation detail that saves a copy per
    step; a state rebuilt from its fields (loaded, or mapped) works the same.
    """

    params: P
    step: int
    inner: tuple[Any, ...]


@attrs.frozen(eq=False)
class _Flat:
    """The flat buffers an OptState's trees are views of (cached on the state)."""

    layout: Layout
    params: Array
    moments: tuple[Moments, ...]


def _readonly(flat: Array) -> Array:
    flat.flags.writeable = False
    return flat


def _state(
    transforms: Sequence[Transform], flat: _Flat, step: int, params: Any = None
) -> OptState[Any]:
    layout = flat.layout
    inner = tuple(
        t.state(*(layout.unravel(_readonly(m)) for m in moments))
        for t, moments in zip(transforms, flat.moments)
    )
    if params is None:
        params = layout.unravel(_readonly(flat.params))
    state: OptState[Any] = OptState(params, step, inner)
    object.__setattr__(state, "_flat", flat)
    return state


def _flat_of(state: OptState[Any], transforms: Sequence[Transform]) -> _Flat:
    """The flat buffers of ``state``: cached when the optimizer made it, else raveled."""
    if not isinstance(state, OptState):
        raise TypeError(f"expected an OptState (from optimizer.init), got {type(state).__name__}")
    if len(state.inner) != len(transforms):
        raise ValueError(
            f"this optimizer has {len(transforms)} transforms but the state holds "
            f"{len(state.inner)}: was it made by another optimizer?"
        )
    for t, record in zip(transforms, state.inner):
        if not isinstance(record, t.state):
            raise TypeError(
                f"expected {t.state.__name__} in the state, got {type(record).__name__}: "
                "was it made by another optimizer?"
            )
    cached = state.__dict__.get("_flat")
    if isinstance(cached, _Flat):
        return cached
    params, layout = _tree.ravel(state.params)
    moments = []
    for record in state.inner:
        fields = [getattr(record, f.name) for f in attrs.fields(cast(Any, type(record)))]
        moments.append(tuple(layout.ravel(m, "a moment of the state") for m in fields))
    return _Flat(layout, params, tuple(moments))


@attrs.frozen(eq=False)
class Optimizer:
    """An optimizer: a chain of transforms, then ``params + updates``.

    ``init(params) -> state`` and ``update(state, grads) -> (state, params)`` are pure:
    the old state and the grads are never modified, and the new params are a frozen
    tree of read-only arrays with the old params' structure, shapes and dtypes.

    Attributes:
        transforms: the chain, applied in order to the gradient.
    """

    transforms: tuple[Transform, ...]

    def init(self, params: P) -> OptState[P]:
        """The initial state for ``params`` (a tree of float arrays of one dtype).

        Raises:
            TypeError: a leaf is not a float array, or the leaves mix dtypes.
        """
        flat, layout = _tree.ravel(params)
        moments = tuple(t.init(flat, layout) for t in self.transforms)
        return cast(OptState[P], _state(self.transforms, _Flat(layout, flat, moments), 0))

    def update(self, state: OptState[P], grads: P) -> tuple[OptState[P], P]:
        """Apply one step: returns the new state and the new params (``new_state.params``).

        Raises:
            ValueError: ``grads`` does not match the params' structure, shapes or dtypes.
        """
        flat = _flat_of(state, self.transforms)
        g = flat.layout.ravel(grads, "grads")
        new_state = self.update_flat(state, g)
        return new_state, new_state.params

    def update_flat(self, state: OptState[P], flat_grads: Array) -> OptState[P]:
        """:meth:`update` for a gradient already laid out as the flat parameter buffer.

        ``flat_grads`` must have the layout's dtype and size; it is not modified.
        """
        flat = _flat_of(state, self.transforms)
        u = Updates(flat_grads)
        moments = []
        for t, m in zip(self.transforms, flat.moments):
            u, new_m = t.update(u, m, flat.params, state.step, flat.layout)
            moments.append(new_m)
        new_params = _apply(flat.params, u)
        new_flat = _Flat(flat.layout, new_params, tuple(moments))
        return cast(OptState[P], _state(self.transforms, new_flat, state.step + 1))

    def learning_rate(self, state: OptState[Any]) -> float:
        """The learning rate the next update will use (of the first scheduled transform).

        Raises:
            ValueError: no transform of the chain has a learning rate.
        """
        for t in self.transforms:
            if t.learning_rate is not None:
                return t.learning_rate(state.step)
        raise ValueError("this optimizer has no learning rate")


def _apply(params: Array, u: Updates) -> Array:
    """``params + scale * array`` into a fresh buffer."""
    if u.scale == 0.0:
        same: Array = params.copy()
        return same
    if u.scale == 1.0:
        out: Array = np.add(params, u.array)
        return out
    step = np.multiply(u.array, u.scale)
    np.add(params, step, out=step)
    return step


def chain(*parts: Transform | Optimizer) -> Optimizer:
    """An optimizer applying the given transforms (and optimizers' chains) in order.

    >>> import fnn
    >>> opt = fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0), fnn.optim.adam(1e-3))
    >>> len(opt.transforms)
    3
    """
    transforms: list[Transform] = []
    for part in parts:
        if isinstance(part, Optimizer):
            transforms.extend(part.transforms)
        elif isinstance(part, Transform):
            transforms.append(part)
        else:
            raise TypeError(f"chain expects transforms or optimizers, got {type(part).__name__}")
    return Optimizer(tuple(transforms))


def params(state: OptState[P]) -> P:
    """The parameters held by an optimizer state."""
    return state.params


def check_positive(value: float, what: str) -> float:
    """``value`` as a float if it is finite and > 0, else a ValueError."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{what} must be a finite number > 0, got {value}")
    return number


def check_fraction(value: float, what: str) -> float:
    """``value`` as a float if it is in [0, 1), else a ValueError."""
    number = float(value)
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value}")
    return number
