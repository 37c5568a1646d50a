"""The layer record: what a layer declares (its params and state, once) and its pure
functions; everything else (``init``, ``shapes``, ``init_state``, every check of params,
state and inputs) is derived here, in one place, for built-in and users' layers alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs
import numpy as np
from numpy.typing import DTypeLike

from .. import _checks
from .. import random as _random
from .. import tree as _tree
from .._types import Array, Shape
from ..random import Key
from ._init import Initializer, zeros

P = TypeVar("P")
S = TypeVar("S")
P_co = TypeVar("P_co", covariant=True)
S_co = TypeVar("S_co", covariant=True)


@attrs.frozen(eq=False)
class Param:
    """One declared leaf of a layer's params or state: its shape (batch axis excluded),
    how it starts (an initializer ``init(key, shape, dtype)``, zeros by default), and its
    dtype (None: the model's float dtype, float32 or float64). Make one with
    :func:`param`.
    """

    __fnn_leaf__ = True  # a leaf of the declaration tree (see fnn.tree.LEAF_TYPES)

    shape: Shape
    init: Initializer = zeros
    dtype: np.dtype[Any] | None = None


def param(shape: Shape, init: Initializer = zeros, dtype: DTypeLike | None = None) -> Array:
    """A declared leaf (:class:`Param`) of ``shape``, made by ``init`` (zeros by default),
    in ``dtype`` (None: the model's float dtype), to put where the array will be in a
    layer's :class:`Declared` params or state: ``DenseParams(param((784, 128),
    he_normal), param((128,)))``. Records whose fields convert with :func:`readonly` take
    it as it is. It is typed as the array it stands for, so that a declaration
    type-checks as the record it describes; it is not an array.

    Raises:
        TypeError: ``shape`` is not a tuple of ints >= 0, or ``init`` is not callable.
    """
    if not callable(init):
        raise TypeError(f"a param's init must be a function (key, shape, dtype), got {init!r}")
    dims = _checks.shape(tuple(shape) if isinstance(shape, list) else shape, "a param's shape", 0)
    declared: Any = Param(dims, init, None if dtype is None else np.dtype(dtype))
    return declared  # type: ignore[no-any-return]


@attrs.frozen(eq=False)
class Declared(Generic[P_co, S_co]):
    """What a layer makes of an input shape: its output shape, and its params and model
    state as trees of :func:`param` leaves (``declare``) or of :func:`placeholder`
    arrays (:meth:`Layer.shapes`).

    Attributes:
        output: the output shape (batch axis excluded).
        params: the params record (a tuple for a combinator; ``None`` for no params).
        state: the same for the model state (``None`` for a layer without).
        min_batch: the fewest examples a training batch needs (batch norm needs two
            values per channel to estimate a variance); :func:`fnn.fit` checks it.
        ids: for a layer whose input is integer token ids (:func:`embedding`), the
            vocabulary size: every id must be in ``[0, ids)``; ``None`` for float inputs.
    """

    output: Shape
    params: P_co = attrs.field(default=None)
    state: S_co = attrs.field(default=None)
    min_batch: int = 1
    ids: int | None = None


DeclareFn = Callable[[Shape], Declared[P, S]]
"""``declare(in_shape) -> Declared``: the output shape, params and state for inputs of
``in_shape`` (a tuple of positive ints, checked before the call)."""


InferFn = Callable[[P, Array, S], Array]
"""``infer(params, x, state) -> y``: the inference forward (``state`` is None without state)."""

ForwardFn = Callable[[P, Array, S, Key | None], tuple[Array, S, Any]]
"""``forward(params, x, state, key) -> (y, new_state, residuals)``: the training forward."""

BackwardFn = Callable[[P, Any, Array, bool, P], Array | None]
"""``backward(params, residuals, dy, need_dx, grads) -> dx``: the params' gradients are
written into ``grads`` (writable buffers arranged as the params, ``grads.w``); ``dx`` is
None unless asked for."""

StartFn = Callable[[Any, int, int], Any]
"""``start(params, batch, length) -> cache``: an empty cache for decoding ``batch``
sequences of up to ``length`` positions (``None`` for a layer that needs none)."""

StepFn = Callable[[Any, Array, Any, Any, int], Array]
"""``step(params, x, state, cache, t) -> y``: the layer's output at position ``t`` of each
sequence from its input there, ``x`` ``(batch, ...)`` (the time axis left out), given the
positions ``0 .. t-1`` that went through ``step`` before (kept in ``cache``, which the
step may write into). A :attr:`Layer.masked` layer's step is called with a sixth
argument, ``mask``, the valid positions ``(batch, length)`` (bool; those up to ``t``
filled in), when the model runs under :func:`fnn.nn.masked`; it must take it as its
``infer`` takes the mask."""


@attrs.frozen(eq=False)
class Decoder:
    """How a layer that mixes positions (attention, positional embeddings, recurrent
    layers) runs one position at a time, as generation does: each new position costs one
    position, not a whole sequence.

    A layer without one (``Layer.decoder is None``) acts on each position alone (dense,
    norms, activations): its step is its ``infer`` on the one position. Combinators
    derive theirs from their children's. :func:`fnn.generate` checks, on the prompt,
    that stepping gives what the whole forward gives, so a layer that mixes positions
    without a decoder is found, not trusted.

    Attributes:
        start: ``start(params, batch, length) -> cache`` (:data:`StartFn`).
        step: ``step(params, x, state, cache, t) -> y`` (:data:`StepFn`).
    """

    start: StartFn
    step: StepFn


@attrs.frozen(eq=False)
class Layer(Generic[P, S]):
    """A layer: what it declares and four pure functions, over params of type ``P`` and
    model state of type ``S`` (``None`` for a layer that keeps none: ``Layer[DenseParams,
    None]``; ``Layer[BatchNormParams, BatchNormState]``).

    A layer states its params and state once, in ``declare``; ``init``, ``init_state``,
    ``shapes`` and the checks of params, state and inputs (structure, record types,
    shapes, dtypes) follow from that declaration, here, the same for every layer. The
    functions are called with inputs already checked, so they hold only the layer's math.

    Attributes:
        declare: ``declare(in_shape) -> Declared(output, params, state)``: the output
            shape and the params (and state) as trees of :class:`Param` leaves. Raise a
            ValueError for an input shape the layer cannot take.
        infer: ``infer(params, x, state) -> y``, inference: no randomness, running
            statistics read from ``state``. Call it through :meth:`apply`, which checks.
        forward: ``forward(params, x, state, key) -> (y, new_state, residuals)``, the
            training forward: ``y`` (what the loss sees), the state after this batch
            (``state`` itself, or None, for layers without) and what ``backward`` needs.
            ``key`` is an :class:`fnn.random.Key` for stochastic layers, else ``None``.
        backward: ``backward(params, residuals, dy, need_dx, grads) -> dx``: writes the
            gradient of a scalar loss w.r.t. ``params`` into ``grads`` (writable arrays
            arranged exactly as the params, addressed by field: ``grads.w``, ``grads.b``;
            a tuple of the children's for a combinator; ``None`` without params) and
            returns the gradient w.r.t. the input when ``need_dx`` is true (else
            ``None``). Every entry of every buffer must be written. This is the layer's
            one derivative: training runs it (``grads`` are views into the optimizer's
            flat gradient buffer) and :func:`fnn.check_layer` checks it.
        name: how messages name the layer (:func:`register` sets the registered name).
        stateful: whether the layer keeps model state (batch norm's running statistics):
            its declaration then has a ``state``.
        stochastic: whether the training forward draws random numbers (dropout): it is
            then handed a key, derived per step from the training state's key.
        masked: whether the layer takes a mask of the valid positions of a sequence
            (attention, lstm, gru): its ``infer`` and ``forward`` then take it last, as an argument
            that defaults to None, ``infer(params, x, state, mask=None)`` and
            ``forward(params, x, state, key, mask=None)``, a bool array
            ``(batch, time)`` (``True`` where a position is a token, ``False`` where it is
            padding) or ``None`` (every position valid). A combinator hands its own mask to
            its masked children; :func:`masked` makes one from token ids and a pad id.
        spec: a JSON-able description (``{"layer": "dense", "features": 128, ...}``)
            from which :func:`fnn.nn.from_spec` rebuilds the layer, or ``None``.
            Constructors registered with :func:`fnn.nn.register` set it.
        decoder: how a layer that mixes positions decodes one position at a time
            (:class:`Decoder`); ``None`` for a layer that acts on each position alone.

    None of the functions modifies its arguments. Combinators (:func:`combinator`,
    :func:`serial`) thread params, state, keys and residuals through their children, so
    a layer written by a user takes part in training, checking and saving exactly as a
    built-in one does.
    """

    declare: DeclareFn[P, S]
    infer: InferFn[P, S]
    forward: ForwardFn[P, S]
    backward: BackwardFn[P]
    name: str = ""
    stateful: bool = False
    stochastic: bool = False
    masked: bool = False
    spec: Mapping[str, Any] | None = None
    decoder: Decoder | None = None

    def declared(self, in_shape: Shape) -> Declared[P, S]:
        """``declare(in_shape)`` after checking the shape, and that a state is declared
        exactly when the layer is :attr:`stateful`.

        Raises:
            TypeError: ``in_shape`` is not a tuple of positive ints.
            ValueError: the layer cannot take inputs of that shape.
        """
        found = self.declare(_checks.shape(in_shape, self.name or "layer"))
        if not isinstance(found, Declared):
            raise TypeError(
                f"{self.name or 'a layer'}'s declare must return nn.Declared, got "
                f"{type(found).__name__}"
            )
        if (found.state is not None) != self.stateful:
            raise TypeError(
                f"{self.name or 'a layer'} is {'' if self.stateful else 'not '}stateful but "
                f"declares {'no' if found.state is None else 'a'} state"
            )
        return found

    def init(self, key: Key, in_shape: Shape, dtype: DTypeLike = np.float32) -> P:
        """The initial params for inputs of ``in_shape`` (batch axis excluded), in ``dtype``
        (float32 or float64), each declared leaf made by its ``init`` from a key derived
        from ``key``: a record's (or dict's) first field gets ``key`` itself and field
        ``j`` gets ``fold_in(key, j)``; a tuple's (a combinator's) ``n`` children get
        ``split(key, n)``. ``None`` for a layer without params."""
        params: P = _make(self.declared(in_shape).params, key, _checks.float_dtype(dtype))
        return params

    def init_state(self, in_shape: Shape, dtype: DTypeLike = np.float32) -> S:
        """The initial model state for inputs of ``in_shape``: ``None`` for a layer that
        keeps none (every layer has this method, so generic code needs no branch)."""
        state: S = _make(self.declared(in_shape).state, _random.key(0), _checks.float_dtype(dtype))
        return state

    def shapes(self, in_shape: Shape, dtype: DTypeLike = np.float32) -> Declared[P, S]:
        """What the layer makes of ``in_shape``, without allocating: the output shape and
        the params and state with :func:`placeholder` arrays of their shapes and dtypes
        for leaves."""
        found, dt = self.declared(in_shape), _checks.float_dtype(dtype)
        return Declared(
            found.output, _placeholders(found.params, dt), _placeholders(found.state, dt)
        )

    def output_shape(self, in_shape: Shape) -> Shape:
        """The output shape for inputs of shape ``(batch, *in_shape)``."""
        return self.declared(in_shape).output

    def mismatch(self, params: Any, state: Any, in_shape: Shape) -> str | None:
        """Where ``params`` (then ``state``) first depart from what the layer declares for
        inputs of ``in_shape`` in the params' dtype (structure, record types, shapes,
        dtypes), in words (``"params at [1].w: the model needs float32 (784, 128), got
        float32 (700, 128)"``); None when they fit. The one "these params fit this model"
        check: applying, training, resuming, loading and checking layers all ask it.

        Raises:
            TypeError, ValueError: the layer cannot take inputs of ``in_shape``.
        """
        found = self._difference(params, state, in_shape)
        return None if found is None else f"{found[0]} {found[1]}"

    def _difference(self, params: Any, state: Any, in_shape: Shape) -> tuple[str, str, bool] | None:
        """``(what, where, in structure)`` of the first difference :meth:`mismatch` finds."""
        expected = self.shapes(in_shape, model_dtype(params, state))
        for what, want, have in (
            ("params", expected.params, params),
            ("state", expected.state, state),
        ):
            try:
                have_leaves, have_def = _tree.flatten(have)
            except TypeError as err:  # not a tree at all
                return what, f"at the root: {err}", True
            want_leaves, want_def = _tree.flatten(want)
            found = _tree.difference(want_def, have_def)
            if found is not None:
                return what, found, True
            found = _tree.first_difference(
                want_def, want_leaves, have_def, have_leaves, "the model needs"
            )
            if found is not None:
                return what, found, False
        return None

    def check(self, params: Any, state: Any, in_shape: Shape, what: str = "the") -> None:
        """Raise unless ``params`` and ``state`` fit the layer for inputs of ``in_shape``
        (:meth:`mismatch`), naming the first difference.

        Raises:
            TypeError: a params or state tree of another structure (record types, tuple
                lengths), or a state given to a layer without one.
            ValueError: a leaf of another shape or dtype; no state for a layer with one.
        """
        self.check_state(state)
        found = self._difference(params, state, in_shape)
        if found is not None:
            kind, where, structural = found
            fit = "does not fit" if kind == "state" else "do not fit"
            message = (
                f"{what} {kind} {fit} the model for inputs of shape {tuple(in_shape)}: {where}"
            )
            raise TypeError(message) if structural else ValueError(message)

    def check_inputs(self, params: P, x: Any, state: Any = None) -> Array:
        """``x`` after checking a call of the layer: a NumPy array with a batch axis, of
        finite floats of the params' dtype, or for a layer that takes token ids
        (:attr:`Declared.ids`) of integer ids in ``[0, vocabulary)``; and ``params`` and
        ``state`` what the layer declares for ``x``'s examples (:meth:`check`).

        Raises:
            TypeError: ``x`` is not an array of the kind the layer takes, or not of the
                params' dtype; a state given to a layer without one.
            ValueError: NaN or Inf in ``x``; an id outside the vocabulary (naming it);
                no ``state`` for a layer that keeps one; params or state that do not fit
                ``x`` (naming where).
        """
        if not isinstance(x, np.ndarray):
            raise TypeError(f"model input must be a NumPy array, got {type(x).__name__}")
        if x.ndim < 1:
            raise ValueError("model input needs a batch axis, got a 0-d array")
        vocabulary = self.declared(x.shape[1:]).ids
        if vocabulary is None:
            arr = _checks.float_array(x, "model input", model_dtype(params, state, None))
            _checks.finite(arr, "model input")
        else:
            arr = check_ids(x, vocabulary, "model input")
        examples = f"a batch of {len(arr)} examples of shape {arr.shape[1:]}"
        self.check(params, state, arr.shape[1:], f"x has shape {arr.shape} ({examples}), but the")
        return arr

    def apply(
        self, params: P, x: Array, state: S | None = None, mask: Array | None = None
    ) -> Array:
        """Inference, checked (:meth:`check_inputs`): ``infer(params, x, state)`` (with
        ``mask``, the valid positions of each sequence, for a :attr:`masked` layer).

        Raises:
            TypeError, ValueError: as :meth:`check_inputs`; a mask for a layer that takes
                none, or one not a bool array ``(batch, time)`` of ``x``'s.
        """
        x = self.check_inputs(params, x, state)
        checked: S = self.check_state(state)  # None exactly when the layer keeps none
        if mask is None:
            return self.infer(params, x, checked)
        if not self.masked:
            raise TypeError(
                "this model takes no mask (none of its layers does: attention, lstm, gru)"
            )
        if not (
            isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == x.shape[:2]
        ):
            got = (
                f"{mask.dtype} {mask.shape}"
                if isinstance(mask, np.ndarray)
                else type(mask).__name__
            )
            raise TypeError(f"a mask must be a bool array of shape {x.shape[:2]}, got {got}")
        infer: Any = self.infer
        result: Array = infer(params, x, state, mask)
        return result

    def check_state(self, state: Any) -> Any:
        """``state`` if it is given exactly when the layer keeps state, else an error.

        Raises:
            TypeError: a state for a layer that keeps none.
            ValueError: no state for a layer that keeps one.
        """
        if not self.stateful and state is not None:
            raise TypeError(
                f"this model keeps no state: expected state=None, got {type(state).__name__}"
            )
        if self.stateful and state is None:
            raise ValueError(
                "this model keeps state (running statistics): pass its state, e.g. "
                "train_state.model_state or the state fnn.io.load_model returns"
            )
        return state


def check_ids(x: Array, vocabulary: int, what: str) -> Array:
    """``x`` if it holds integer token ids in ``[0, vocabulary)``, else an error naming the
    first id outside it (checked before anything is computed).

    Raises:
        TypeError: not an integer array.
        ValueError: an id outside the vocabulary.
    """
    if x.dtype.kind not in "iu":
        raise TypeError(
            f"{what} must be integer token ids (this model begins with an embedding of "
            f"{vocabulary} ids), got dtype {x.dtype}"
        )
    if x.size:
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= vocabulary:
            bad = low if low < 0 else high
            where = tuple(int(i) for i in np.argwhere(x == bad)[0])
            raise ValueError(
                f"{what} holds the id {bad} at {where}, outside the vocabulary of "
                f"{vocabulary} ids [0, {vocabulary})"
            )
    return x


def decoder_of(layer: Layer[Any, Any]) -> Decoder:
    """``layer``'s :class:`Decoder`, or for a layer that acts on each position alone, one
    whose step is its ``infer`` on that position (and whose cache is None)."""
    if layer.decoder is not None:
        return layer.decoder

    def step(params: Any, x: Array, state: Any, cache: Any, t: int) -> Array:
        y: Array = layer.infer(params, x[:, np.newaxis], state)[:, 0]
        return y

    return Decoder(no_cache, step)


def no_cache(params: Any, batch: int, length: int) -> None:
    """The :data:`StartFn` of a decoder that keeps nothing between positions."""
    return None


# -- making params from a declaration --------------------------------------------------------


def _leaf_keys(treedef: _tree.TreeDef, key: Key, out: list[Key]) -> None:
    """The key of every leaf of a declaration, in flatten order (see :meth:`Layer.init`)."""
    if treedef.kind == "leaf":
        out.append(key)
        return
    count = len(treedef.children)
    if treedef.kind in ("tuple", "list"):
        keys = _random.split(key, count) if count else ()
    else:
        keys = tuple(key if j == 0 else _random.fold_in(key, j) for j in range(count))
    for child, k in zip(treedef.children, keys):
        _leaf_keys(child, k, out)


def _declared_leaves(declared: Any) -> tuple[list[Param], _tree.TreeDef]:
    """The :class:`Param` leaves and the structure of a declared tree.

    Raises:
        TypeError: a leaf that is not a Param (a record whose converter wrapped it).
    """
    leaves, treedef = _tree.flatten(declared)
    for path, leaf in zip(_tree.leaf_paths(treedef), leaves):
        if not isinstance(leaf, Param):
            raise TypeError(
                f"a declaration holds nn.Param leaves, got {type(leaf).__name__} at "
                f"{path or 'the root'} (declare record fields with converter=nn.readonly, "
                "which keeps a Param as it is)"
            )
    return leaves, treedef


def _make(declared: Any, key: Key, dtype: np.dtype[Any]) -> Any:
    """The tree a declaration describes, each leaf made by its ``init``."""
    if declared is None:
        return None
    leaves, treedef = _declared_leaves(declared)
    keys: list[Key] = []
    _leaf_keys(treedef, key, keys)
    values = []
    for path, leaf, k in zip(_tree.leaf_paths(treedef), leaves, keys):
        dt = leaf.dtype or dtype
        value = np.asarray(leaf.init(k, leaf.shape, dt), dtype=dt)
        if value.shape != leaf.shape:
            raise ValueError(
                f"the initializer of {path or 'the root'} made an array of shape "
                f"{value.shape}, declared {leaf.shape}"
            )
        values.append(value)
    return treedef.build(iter(values))


def _placeholders(declared: Any, dtype: np.dtype[Any]) -> Any:
    """The tree a declaration describes, with :func:`placeholder` leaves."""
    if declared is None:
        return None
    leaves, treedef = _declared_leaves(declared)
    return treedef.build(iter([placeholder(p.shape, p.dtype or dtype) for p in leaves]))


def params_dtype(params: Any, default: DTypeLike | None = np.float32) -> Any:
    """The dtype of the first array leaf of ``params`` (``default`` when it has none)."""
    for leaf in _tree.leaves(params):
        if isinstance(leaf, np.ndarray) and leaf.dtype.kind == "f":
            return leaf.dtype
    return None if default is None else np.dtype(default)


def model_dtype(params: Any, state: Any, default: DTypeLike | None = np.float32) -> Any:
    """The float dtype of a model's ``params`` (:func:`params_dtype`), or, for a model
    without params, of its ``state`` (a layer that only keeps state); ``default`` when
    neither has a float leaf."""
    found = params_dtype(params, None)
    return params_dtype(state, default) if found is None else found


# -- helpers for layers and records ----------------------------------------------------------


def placeholder(shape: Shape, dtype: DTypeLike = np.float32) -> Array:
    """A read-only array of ``shape`` and ``dtype`` that takes no memory (a broadcast
    zero): what :meth:`Layer.shapes` puts where the real params would be."""
    zero: Array = np.zeros((), dtype=dtype)
    try:
        out: Array = np.broadcast_to(zero, shape)
    except ValueError:
        raise ValueError(
            f"an array of shape {shape} has more entries than NumPy can index"
        ) from None
    return out


def readonly(x: Any) -> Array:
    """A read-only view of ``x`` as an array (no copy; the caller's array is untouched);
    a declared :class:`Param` is kept as it is.

    Use it as the converter of a params record's fields, as :class:`DenseParams` does."""
    if isinstance(x, Param):
        kept: Any = x
        return kept  # type: ignore[no-any-return]
    arr: Array = np.asarray(x)
    if not arr.flags.writeable:
        return arr
    view: Array = arr.view()
    view.flags.writeable = False
    return view
