"""Optimizer states, gradient transforms and the optimizer record.

A :class:`Transform` is one step of an update rule written as a pure function of one
flat array: the whole parameter tree is viewed as one contiguous buffer (see
:func:`fnn.tree.ravel`), so a rule costs a handful of whole-array NumPy operations per
step however many leaves the tree has. A rule returns fresh arrays and never writes into
what it is given. :class:`Optimizer` chains transforms and applies their result to the
parameters; its state, :class:`OptState`, is a frozen tree (params, step count, each
transform's moments), so it saves and loads like any tree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar, cast, overload

import attrs
import numpy as np

from .. import tree as _tree
from .._types import Array
from ..tree import Layout
from ._schedules import Schedule

P = TypeVar("P")
R = TypeVar("R")
R1 = TypeVar("R1")
R2 = TypeVar("R2")
R3 = TypeVar("R3")
R4 = TypeVar("R4")
M = TypeVar("M", bound=tuple[Any, ...])
M_co = TypeVar("M_co", bound=tuple[Any, ...], covariant=True)

Moments = tuple[Array, ...]
"""A transform's state: flat arrays laid out like the flat parameter buffer."""


class Updates(NamedTuple):
    """An update vector ``scale * array``: the numbers and a scalar factor kept apart.

    Scalar factors (learning rates, bias corrections, clipping) multiply ``scale``
    without a pass over the array; :meth:`value` gives the product when a rule needs the
    numbers. Updates are immutable: a rule never writes into ``array`` (nor into what
    :meth:`value` returns, which is ``array`` itself when ``scale`` is 1).

    Attributes:
        array: the numbers, before ``scale``: a flat array like the raveled params.
        scale: a Python float factor.
    """

    array: Array
    scale: float = 1.0

    def value(self) -> Array:
        """``scale * array``: a new array, or ``array`` itself when ``scale`` is 1."""
        if self.scale == 1.0:
            return self.array
        out: Array = np.multiply(self.array, self.scale)
        return out

    def scaled(self, factor: float) -> Updates:
        """These updates times a Python float, without touching the array."""
        return Updates(self.array, self.scale * float(factor))


UpdateFn = Callable[[Updates, Moments, Any, int, Layout], tuple[Updates, Moments]]
"""``update(updates, moments, params, step, layout) -> (updates, moments)``: ``params``
is the current params tree (``layout.ravel(params)`` copies them into one flat array, for
the rules that need them), ``step`` counts the updates made before this one (0 for the
first), ``layout`` maps the flat buffer to the params' leaves (per-leaf masks such as
``layout.weights``)."""


@attrs.frozen(eq=False)
class Transform(Generic[R]):
    """One gradient transformation: a rule written for one flat array, whose moments
    are a record of type ``R`` (``AdamState``; :class:`EmptyState` for none).

    Attributes:
        init: ``init(flat_params, layout) -> moments``, the initial state (flat arrays).
        update: see :data:`UpdateFn`; a pure function returning fresh arrays.
        state: the frozen attrs class whose fields name the moments, in order; register
            it with :func:`fnn.tree.register_type` so that saved states load without a
            template.
        learning_rate: the schedule, for transforms that scale by a learning rate.
        name: how error messages name the transform (default: the state class's name).
        elementwise: the transform's promise that its update treats every entry alike
            and on its own: it reads neither ``params`` nor ``layout``, and entry ``i``
            of its updates and moments depends only on entry ``i`` of the updates and
            moments it is given (and on the step and the updates' scale). Such a rule
            gives the same bits applied to any slice of the flat arrays, so data-parallel
            training may update each process's slice only (:mod:`fnn.parallel`): the
            update is then given slices of the updates and moments (of any length, zero
            included), and ``params`` and ``layout`` are stand-ins that raise a
            TypeError naming the transform when read, so a rule that breaks the promise
            fails instead of training on wrong numbers. Adam, RMSprop, Adagrad,
            momentum, ``clip`` and the learning rate are elementwise; weight decay (reads
            the params; elementwise at rate 0), ``clip_by_global_norm`` (a norm over
            every entry) and ``freeze`` (per-leaf masks; elementwise when it freezes
            nothing) are not.
    """

    init: Callable[[Array, Layout], Moments]
    update: UpdateFn
    state: type[R]
    learning_rate: Schedule | None = None
    name: str = ""
    elementwise: bool = False

    @property
    def label(self) -> str:
        """The transform's name, or its state class's name."""
        return self.name or self.state.__name__


@attrs.frozen(eq=False)
class EmptyState:
    """The state of a transform that keeps no moments."""


_tree.register_type(EmptyState, "fnn.optim.EmptyState")


def stateless(
    update: Callable[[Updates, Any, int, Layout], Updates],
    learning_rate: Schedule | None = None,
    name: str = "",
    *,
    elementwise: bool = False,
) -> Transform[EmptyState]:
    """A transform without moments from ``update(updates, params, step, layout)``
    (``elementwise`` as in :class:`Transform`)."""

    def init(flat: Array, layout: Layout) -> Moments:
        return ()

    def update_fn(
        u: Updates, moments: Moments, params: Any, step: int, layout: Layout
    ) -> tuple[Updates, Moments]:
        return update(u, params, step, layout), ()

    return Transform(
        init, update_fn, EmptyState, learning_rate, name or update.__name__, elementwise
    )


def _as_tuple(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(values)


@attrs.frozen(eq=False)
class OptState(Generic[P, M_co]):
    """The state of an optimizer: the params, the step count and each transform's moments,
    of types ``P`` and ``M`` (the tuple of the chain's moment records: an Adam's state is
    an ``OptState[P, tuple[AdamState, EmptyState]]``), so that one optimizer's state
    handed to another is a type error.

    Attributes:
        params: the current parameters (a frozen tree of read-only arrays).
        step: how many updates have been applied.
        inner: one record per transform of the chain (e.g. ``AdamState(mu, nu)``) whose
            fields are read-only flat arrays laid out like the raveled params (see
            :func:`fnn.tree.ravel`; :func:`moment_trees` shows them shaped like the
            params).

    A frozen tree like any other: it can be saved, loaded and compared with
    :mod:`fnn.tree`.
    """

    params: P
    step: int = attrs.field(converter=operator.index)
    inner: M_co = attrs.field(converter=_as_tuple)


_tree.register_type(OptState, "fnn.optim.OptState")


def _opt_state(state: Any) -> OptState[Any, Any]:
    if not isinstance(state, OptState):
        raise TypeError(f"expected an OptState (from optimizer.init), got {type(state).__name__}")
    return state


def _check_moments(
    transform: Transform[Any],
    values: Any,
    layout: Layout,
    what: str,
    count: int,
    size: int | None = None,
) -> Moments:
    """``values`` as a tuple of ``count`` flat arrays like the params' buffer (one per field
    of the transform's state record), or like a slice of ``size`` entries of it, else an
    error naming the transform and ``what`` (its output or the state it was given)."""
    if not isinstance(values, tuple):
        raise TypeError(
            f"{transform.label} {what} a {type(values).__name__} of moments, expected a tuple"
        )
    if len(values) != count:
        fields = _tree.record_fields(cast(type, transform.state)).children
        raise ValueError(
            f"{transform.label} {what} {len(values)} moments, expected {count}: one per "
            f"field of its state {transform.state.__name__} ({', '.join(fields)})"
        )
    shape, dtype = (layout.size if size is None else size,), layout.dtype
    for v in values:
        if type(v) is not np.ndarray or v.shape != shape or v.dtype != dtype:
            got = f"{v.dtype} {v.shape}" if isinstance(v, np.ndarray) else type(v).__name__
            raise ValueError(
                f"{transform.label} {what} a moment that is not a flat {layout.dtype} array "
                f"of shape {shape} like the raveled params{_part(size)}: got {got}"
            )
    return values


def _part(size: int | None) -> str:
    """How messages name the slice of the flat buffer an update was asked for."""
    return "" if size is None else "' slice it was given"


def _check_output(
    transform: Transform[Any], result: Any, layout: Layout, size: int | None = None
) -> tuple[Updates, Any]:
    """A transform's ``update`` result as ``(updates, moments)``, its updates checked to be
    a flat array like the params' buffer (or a slice of ``size`` entries of it) times a
    Python float, else an error naming the transform (its moments are checked by
    :func:`_check_moments`). A few type and shape comparisons, run at every update."""
    if type(result) is not tuple or len(result) != 2:
        got = type(result).__name__
        if isinstance(result, Updates):
            got = "Updates alone"
        elif isinstance(result, tuple):
            got = f"a tuple of {len(result)}"
        raise TypeError(f"{transform.label}'s update must return (updates, moments), got {got}")
    u = result[0]
    shape = (layout.size if size is None else size,)
    if not (
        type(u) is Updates
        and type(u.array) is np.ndarray
        and u.array.shape == shape
        and u.array.dtype == layout.dtype
        and type(u.scale) is float
    ):
        if type(u) is not Updates:
            got = type(u).__name__
        elif not isinstance(u.array, np.ndarray):
            got = f"Updates of a {type(u.array).__name__}"
        else:
            got = f"Updates({u.array.dtype} {u.array.shape}, {type(u.scale).__name__} scale)"
        raise ValueError(
            f"{transform.label} returned updates that are not Updates of a flat "
            f"{layout.dtype} array of shape {shape} like the params{_part(size)} and a "
            f"Python float scale: got {got} (make them with Updates(array, float(scale)))"
        )
    return result


def _state_moments(
    state: Any, transforms: Sequence[Transform[Any]], layout: Layout
) -> list[Moments]:
    if len(state.inner) != len(transforms):
        raise ValueError(
            f"this optimizer has {len(transforms)} transforms but the state holds "
            f"{len(state.inner)}: was it made by another optimizer?"
        )
    out = []
    for t, record in zip(transforms, state.inner):
        if not isinstance(record, t.state):
            raise TypeError(
                f"expected {t.state.__name__} in the state, got {type(record).__name__}: "
                "was it made by another optimizer?"
            )
        values = tuple(
            [getattr(record, n) for n in _tree.record_fields(cast(type, t.state)).children]
        )
        out.append(_check_moments(t, values, layout, "has in the state", len(values)))
    return out


def moment_trees(state: OptState[Any, Any]) -> tuple[Any, ...]:
    """The state's transform records with each flat moment shown as a tree shaped like
    the params (views, no copy)."""
    layout = _tree.layout(state.params)
    return tuple(
        type(record)(*(layout.unravel(getattr(record, f.name)) for f in attrs.fields(type(record))))
        for record in state.inner
    )


def _apply(params: list[Array], u: Updates, layout: Layout, span: tuple[int, int]) -> Array:
    """``params + scale * array`` on the flat entries ``span = (lo, hi)`` (``array`` holds
    just those) as a new buffer of ``hi - lo`` entries (two passes), added leaf by leaf
    (the params need not be one buffer)."""
    lo, hi = span
    out: Array = np.multiply(u.array, u.scale) if u.scale != 1.0 else u.array.copy()
    for start, stop, p in zip(layout.offsets, layout.offsets[1:], params):
        a, b = max(start, lo), min(stop, hi)
        if a < b:
            into = out[a - lo : b - lo]  # into the buffer this function has just made
            np.add(into, p.reshape(-1)[a - start : b - start], out=into)
    return out


class _Unread:
    """What an elementwise transform is given for ``params`` and ``layout`` when it
    updates a slice: reading it raises, naming the transform (see
    :attr:`Transform.elementwise`)."""

    def __init__(self, label: str) -> None:
        self._label = label

    def __getattr__(self, name: str) -> Any:
        raise TypeError(
            f"{self._label} is marked elementwise but read params or layout (.{name}); "
            "an elementwise transform is given slices of the flat arrays in data-parallel "
            "training and must use only its updates, moments and step"
        )


@attrs.frozen(eq=False)
class Optimizer(Generic[M]):
    """An optimizer: a chain of transforms, then ``params + updates``, over states whose
    moments are of type ``M`` (``Optimizer[tuple[AdamState, EmptyState]]`` for
    :func:`adam`; ``Optimizer[Any]`` accepts any).

    ``init(params) -> state`` and ``update(state, grads) -> (state, params)`` are pure:
    the old state and the grads are never modified, and the new params are a frozen
    tree of read-only arrays with the old params' structure, shapes and dtypes.

    Attributes:
        transforms: the chain, applied in order to the gradient.
    """

    transforms: tuple[Transform[Any], ...]

    def init(self, params: P) -> OptState[P, M]:
        """The initial state for ``params`` (a tree of float arrays of one dtype).

        Raises:
            TypeError: a leaf is not a float array, or the leaves mix dtypes.
            ValueError: a transform's ``init`` made moments unlike the params' buffer.
        """
        flat, layout = _tree.ravel(params)
        moments = [
            _check_moments(
                t,
                tuple(t.init(flat, layout)),
                layout,
                "init returned",
                len(_tree.record_fields(cast(type, t.state)).children),
            )
            for t in self.transforms
        ]
        return self.assemble(layout, flat, moments, 0)

    def update(self, state: OptState[P, M], grads: P) -> tuple[OptState[P, M], P]:
        """Apply one step: returns the new state and the new params (``new_state.params``).

        Raises:
            ValueError: ``grads`` does not match the params' structure, shapes or dtypes;
                a transform returned moments or updates unlike the params' buffer, or
                another number of moments than its state record has fields (the message
                names the transform).
            TypeError: a transform's update did not return ``(Updates, tuple of
                moments)`` (the message names it).
        """
        leaves, treedef = _tree.flatten(_opt_state(state).params)
        layout = _tree.layout_of(leaves, treedef)
        new_state = self.update_flat(state, layout.ravel(grads, "grads"), layout, leaves)
        return new_state, new_state.params

    # -- the flat interface (for fnn.train and fnn.parallel) ----------------------------------

    def update_flat(
        self, state: OptState[P, M], grads: Array, layout: Layout, leaves: list[Array]
    ) -> OptState[P, M]:
        """:meth:`update` for a gradient already laid out flat as ``layout`` (the params'),
        given the params' leaves (as :func:`fnn.train_step` has them at hand). ``grads``
        is read, never written."""
        flat, moments = self.update_span(state, grads, layout, leaves, None)
        return self.assemble(layout, flat, moments, state.step + 1)

    @property
    def elementwise(self) -> bool:
        """Whether every transform of the chain is elementwise (see :class:`Transform`):
        the update of a slice of the flat params is then that slice of the whole update,
        bit for bit."""
        return all(t.elementwise for t in self.transforms)

    def update_span(
        self,
        state: OptState[Any, Any],
        grads: Array,
        layout: Layout,
        leaves: list[Array],
        span: tuple[int, int] | None,
    ) -> tuple[Array, list[Moments]]:
        """The new flat params and each transform's new moments on the entries ``span =
        (lo, hi)`` of the flat buffer (all of them for None), from ``grads``, the
        gradient's entries there. A span other than None needs an :attr:`elementwise`
        chain: the result is then that slice of the whole update, bit for bit (what
        :func:`fnn.parallel.sharded_update` gives each process).

        Raises:
            ValueError: a span for a chain that is not elementwise.
        """
        if span is not None and not self.elementwise:
            names = ", ".join(t.label for t in self.transforms if not t.elementwise)
            raise ValueError(f"an update of a slice needs elementwise transforms, not {names}")
        moments = _state_moments(state, self.transforms, layout)
        size = None
        if span is not None:
            lo, hi = span
            moments = [tuple(m[lo:hi] for m in ms) for ms in moments]
            size = hi - lo
        u = Updates(grads)
        new_moments = []
        for t, m in zip(self.transforms, moments):
            if span is None:
                result = t.update(u, m, state.params, state.step, layout)
            else:  # an elementwise rule promised to read neither
                stand_in = cast(Layout, _Unread(t.label))
                result = t.update(u, m, stand_in, state.step, stand_in)
            u, new_m = _check_output(t, result, layout, size)
            new_moments.append(_check_moments(t, new_m, layout, "returned", len(m), size))
        return _apply(leaves, u, layout, span or (0, layout.size)), new_moments

    def assemble(
        self, layout: Layout, flat_params: Array, moments: Sequence[Moments], step: int
    ) -> OptState[Any, M]:
        """The optimizer state holding the whole flat params (laid out as ``layout``), each
        transform's whole flat moments and ``step``, all made read-only."""
        records = []
        for t, ms in zip(self.transforms, moments):
            for m in ms:
                m.flags.writeable = False
            records.append(t.state(*ms))
        flat_params.flags.writeable = False
        return OptState(layout.unravel(flat_params), step, tuple(records))

    def learning_rate(self, state: OptState[Any, Any]) -> float:
        """The learning rate the next update will use (of the first scheduled transform).

        Raises:
            ValueError: no transform of the chain has a learning rate.
        """
        for t in self.transforms:
            if t.learning_rate is not None:
                return t.learning_rate(state.step)
        raise ValueError("this optimizer has no learning rate")


@overload
def chain(t1: Transform[R1], /) -> Optimizer[tuple[R1]]: ...


@overload
def chain(t1: Transform[R1], t2: Transform[R2], /) -> Optimizer[tuple[R1, R2]]: ...


@overload
def chain(
    t1: Transform[R1], t2: Transform[R2], t3: Transform[R3], /
) -> Optimizer[tuple[R1, R2, R3]]: ...


@overload
def chain(
    t1: Transform[R1], t2: Transform[R2], t3: Transform[R3], t4: Transform[R4], /
) -> Optimizer[tuple[R1, R2, R3, R4]]: ...


@overload
def chain(*parts: Transform[Any] | Optimizer[Any]) -> Optimizer[tuple[Any, ...]]: ...


def chain(*parts: Transform[Any] | Optimizer[Any]) -> Optimizer[tuple[Any, ...]]:
    """An optimizer applying the given transforms (and optimizers' chains) in order.

    Its static type names the moment record of each transform for up to four
    transforms (``chain(scale_by_adam(), scale_by_learning_rate(1e-3))`` is an
    ``Optimizer[tuple[AdamState, EmptyState]]``); with optimizers among the parts, or
    more transforms, it is ``Optimizer[tuple[Any, ...]]``.

    >>> import fnn
    >>> opt = fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0), fnn.optim.adam(1e-3))
    >>> len(opt.transforms)
    3
    """
    transforms: list[Transform[Any]] = []
    for part in parts:
        if isinstance(part, Optimizer):
            transforms.extend(part.transforms)
        elif isinstance(part, Transform):
            transforms.append(part)
        else:
            raise TypeError(f"chain expects transforms or optimizers, got {type(part).__name__}")
    return Optimizer(tuple(transforms))


def params(state: OptState[P, Any]) -> P:
    """The parameters held by an optimizer state."""
    return state.params
