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
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar, cast

import attrs
import numpy as np

from .. import _checks
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

    Attributes:
        array: the numbers, before ``scale``.
        scale: a Python float factor.
        owned: whether ``array`` is a scratch buffer of this update step that later
            transforms may overwrite. The caller's gradient buffer and any moment kept
            in a state are never owned, so they are never written into.
    """

    array: Array
    scale: float = attrs.field(default=1.0, converter=float)
    owned: bool = False

    def value(self) -> Array:
        """``scale * array`` as an array: ``array`` itself when ``scale`` is 1; scaled in
        place when the array is owned (these updates are then used up: build new ones
        from the result instead of reading them again)."""
        if self.scale == 1.0:
            return self.array
        if self.owned:
            scaled: Array = np.multiply(self.array, self.scale, out=self.array)
            return scaled
        out: Array = np.multiply(self.array, self.scale)
        return out

    def scratch(self) -> Array:
        """A buffer of the array's shape that the caller may overwrite: the array itself
        when owned (its values are then lost), else a new one."""
        if self.owned:
            return self.array
        out: Array = np.empty_like(self.array)
        return out

    def scaled(self, factor: float) -> Updates:
        """These updates times a Python float, without touching the array."""
        return Updates(self.array, self.scale * float(factor), self.owned)


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


def _as_tuple(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(values)


@attrs.frozen(eq=False, slots=False)
class OptState(Generic[P]):
    """The state of an optimizer: the params, the step count and each transform's moments.

    Attributes:
        params: the current parameters (a frozen tree of read-only arrays).
        step: how many updates have been applied.
        inner: one record per transform of the chain (e.g. ``AdamState(mu, nu)``) whose
            fields are read-only flat arrays laid out like the raveled params (see
            :func:`fnn.tree.ravel`; :func:`moment_trees` shows them shaped like the
            params).

    A frozen tree like any other: it can be saved, loaded and compared with
    :mod:`fnn.tree`. The params are views into one flat buffer, which a state made by
    :meth:`Optimizer.update` keeps at hand (an implementation detail that saves a copy
    per step); a state rebuilt from its fields (loaded, or mapped) works the same.
    """

    params: P
    step: int = attrs.field(converter=operator.index)
    inner: tuple[Any, ...] = attrs.field(converter=_as_tuple)


@attrs.frozen(eq=False)
class _Flat:
    """What an optimizer's update knows of the state it made: the flat buffer the params
    are views of, its layout, the (already checked) moments, and the transforms."""

    layout: Layout
    params: Array
    moments: tuple[Moments, ...]
    transforms: tuple[Transform, ...]


def _readonly(flat: Array) -> Array:
    flat.flags.writeable = False
    return flat


def _state(
    transforms: tuple[Transform, ...],
    layout: Layout,
    flat_params: Array,
    moments: Sequence[Moments],
    step: int,
) -> OptState[Any]:
    frozen = tuple(tuple(_readonly(m) for m in ms) for ms in moments)
    inner = tuple(t.state(*ms) for t, ms in zip(transforms, frozen))
    state: OptState[Any] = OptState(layout.unravel(_readonly(flat_params)), step, inner)
    object.__setattr__(state, "_flat", _Flat(layout, flat_params, frozen, transforms))
    return state


def _check_state(state: Any, transforms: Sequence[Transform]) -> None:
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


def _flat_of(state: OptState[Any], transforms: tuple[Transform, ...]) -> _Flat:
    """The flat view of ``state`` for these transforms: cached when this optimizer made
    the state, else checked and raveled (a state loaded from disk, or mapped)."""
    cached = state.__dict__.get("_flat") if isinstance(state, OptState) else None
    if isinstance(cached, _Flat) and cached.transforms is transforms:
        return cached
    _check_state(state, transforms)
    flat, layout = _tree.ravel(state.params)
    return _Flat(layout, flat, tuple(_moments(state, layout)), transforms)


def flat_view(state: OptState[Any], optimizer: Optimizer) -> _Flat:
    """The flat buffer, layout and moments of ``state`` as ``optimizer`` sees them
    (private to fnn: training writes gradients straight into this layout)."""
    return _flat_of(state, optimizer.transforms)


def _moments(state: OptState[Any], layout: Layout) -> list[Moments]:
    out = []
    for record in state.inner:
        values = tuple(getattr(record, f.name) for f in attrs.fields(cast(Any, type(record))))
        for v in values:
            flat_like = isinstance(v, np.ndarray) and v.shape == (layout.size,)
            if not flat_like or v.dtype != layout.dtype:
                got = f"{v.dtype} {v.shape}" if isinstance(v, np.ndarray) else type(v).__name__
                raise ValueError(
                    f"a moment of {type(record).__name__} must be a flat {layout.dtype} array "
                    f"of shape ({layout.size},) like the raveled params, got {got}"
                )
        out.append(values)
    return out


def moment_trees(state: OptState[Any]) -> tuple[Any, ...]:
    """The state's transform records with each flat moment shown as a tree shaped like
    the params (views, no copy)."""
    _, layout = _tree.ravel(state.params)
    return tuple(
        type(record)(*(layout.unravel(m) for m in ms))
        for record, ms in zip(state.inner, _moments(state, layout))
    )


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
        moments = [tuple(t.init(flat, layout)) for t in self.transforms]
        return cast(OptState[P], _state(self.transforms, layout, flat, moments, 0))

    def update(self, state: OptState[P], grads: P) -> tuple[OptState[P], P]:
        """Apply one step: returns the new state and the new params (``new_state.params``).

        Raises:
            ValueError: ``grads`` does not match the params' structure, shapes or dtypes.
        """
        flat = _flat_of(state, self.transforms)
        new_state = self._step(state.step, flat, flat.layout.ravel(grads, "grads"))
        return new_state, new_state.params

    def update_flat(
        self, state: OptState[P], flat_grads: Array, *, donate: bool = False
    ) -> OptState[P]:
        """:meth:`update` for a gradient already laid out as the flat parameter buffer.

        ``flat_grads`` must have the layout's dtype and size. It is not modified unless
        ``donate`` is true: then the caller hands the buffer over (its contents are
        undefined afterwards and it must not be read again), and the update uses it as
        scratch instead of allocating another parameter-sized array.
        """
        flat = _flat_of(state, self.transforms)
        layout = flat.layout
        if flat_grads.shape != (layout.size,) or flat_grads.dtype != layout.dtype:
            raise ValueError(
                f"flat grads must be {layout.dtype} of shape ({layout.size},), "
                f"got {flat_grads.dtype} {flat_grads.shape}"
            )
        return self._step(state.step, flat, flat_grads, donate)

    def _step(
        self, step: int, flat: _Flat, flat_grads: Array, donate: bool = False
    ) -> OptState[Any]:
        u = Updates(flat_grads, owned=donate)
        moments = []
        for t, m in zip(self.transforms, flat.moments):
            u, new_m = t.update(u, m, flat.params, step, flat.layout)
            moments.append(new_m)
        new_params = _apply(flat.params, u)
        return _state(self.transforms, flat.layout, new_params, moments, step + 1)

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
    """``params + scale * array`` in a buffer no one else holds (the owned array, or a
    new one): two passes over the buffer at most, one new allocation at most."""
    if u.scale == 0.0:
        same: Array = params.copy()
        return same
    if u.owned:
        out = u.array
        if u.scale != 1.0:
            np.multiply(out, u.scale, out=out)
        np.add(out, params, out=out)
        return out
    if u.scale == 1.0:
        added: Array = np.add(params, u.array)
        return added
    step: Array = np.multiply(u.array, u.scale)
    step += params
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
    number = _checks.real(value, what)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{what} must be a finite number > 0, got {value}")
    return number


def check_fraction(value: float, what: str) -> float:
    """``value`` as a float if it is in [0, 1), else a ValueError."""
    number = _checks.real(value, what)
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value}")
    return number
