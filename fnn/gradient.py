"""THE gradient pipeline, and finite-difference checkers.

:func:`forward_backward` composes a model's training ``forward``, the loss, an optional
penalty and the model's ``backward`` into ``f(params, x, y, state=None, key=None) ->
LossAndGrad``; there is no tape. Everything that differentiates a model uses it:
:func:`value_and_grad`, :func:`grad`, :func:`check_model`, :func:`fnn.train_step` and so
:func:`fnn.fit`. :func:`check_grad` compares any hand-written gradient with finite
differences and reports the worst relative error and where it occurred;
:func:`check_layer` checks the one derivative a layer has, the one training runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import attrs
import numpy as np

from . import _checks
from . import random as _random
from . import tree as _tree
from ._types import Array
from .losses import Loss, Penalty
from .nn import Layer, check_ids

P = TypeVar("P")

__all__ = [
    "GradCheck",
    "GradFn",
    "LossAndGrad",
    "Pipeline",
    "ValueAndGradFn",
    "check_grad",
    "check_layer",
    "check_model",
    "forward_backward",
    "grad",
    "value_and_grad",
]

_PROBE = 8_191_919
"""What check_layer folds into its key for the random output weights: far from the small
numbers tests fold into the same key for their inputs (equal draws would hide errors)."""


@attrs.frozen(eq=False)
class LossAndGrad(Generic[P]):
    """What one training forward and backward pass gives.

    Attributes:
        value: the batch-mean loss plus the penalty (if any), a Python float.
        grads: its gradient w.r.t. the params, a tree shaped like them.
        state: the model state after the training forward (``None`` without state).
        output: the model's output for the batch (what the loss saw).
    """

    value: float
    grads: P
    state: Any
    output: Array


class Pipeline(Protocol[P]):
    """``f(params, x, y, state=None, key=None) -> LossAndGrad``."""

    def __call__(
        self, params: P, x: Array, y: Array, state: Any = None, key: _random.Key | None = None
    ) -> LossAndGrad[P]: ...


class ValueAndGradFn(Protocol[P]):
    """``f(params, x, y, *, state=None, key=None) -> (value, grads)``."""

    def __call__(
        self, params: P, x: Array, y: Array, *, state: Any = None, key: _random.Key | None = None
    ) -> tuple[float, P]: ...


class GradFn(Protocol[P]):
    """``g(params, x, y, *, state=None, key=None) -> grads``."""

    def __call__(
        self, params: P, x: Array, y: Array, *, state: Any = None, key: _random.Key | None = None
    ) -> P: ...


# -- the flat interface (internal: for fnn.train and fnn.parallel) ----------------------------


@attrs.frozen(eq=False)
class FlatLossAndGrad:
    """One training forward and backward pass with the gradient as one flat buffer.

    Internal: part of the flat interface :func:`fnn.train_step` and :mod:`fnn.parallel`
    share (see :func:`flat_forward_backward`); not in ``__all__``.

    Attributes:
        value: the batch-mean loss (no penalty: :func:`finish_gradient` adds it).
        grads: the gradient w.r.t. the params, one writable flat buffer laid out as the
            params' :class:`fnn.tree.Layout` (the layers' ``backward`` wrote into views
            of it).
        state: the model state after the training forward.
        output: the model's output for the batch.
    """

    value: float
    grads: Array
    state: Any
    output: Array


FlatPipeline = Callable[
    [Any, _tree.Layout, Array, Array, Any, "_random.Key | None"], FlatLossAndGrad
]
"""``run(params, layout, x, y, state, key) -> FlatLossAndGrad`` (internal: the type of
:func:`flat_forward_backward`'s result; not in ``__all__``)."""


def flat_forward_backward(
    model: Layer[P, Any], loss: Loss, unwritten: float | None = None
) -> FlatPipeline:
    """The gradient pipeline with the gradient in one flat buffer laid out as ``layout``
    (the params' flat layout, :func:`fnn.tree.layout`): the model's training forward, the
    loss, and the model's ``backward`` (without the input gradient) writing straight into
    views of the buffer. The penalty and the read-only marking come after, once, from
    :func:`finish_gradient`, on a batch's whole gradient (after the shards' sum when
    :mod:`fnn.parallel` splits the batch).

    Internal: this and :func:`finish_gradient` are the flat interface
    :func:`forward_backward`, :func:`fnn.train_step` and :mod:`fnn.parallel` share (not in
    ``__all__``, no promise of stability); it trusts its inputs.

    Args:
        model: the layer whose params are differentiated.
        loss: ``loss(prediction, y) -> (value, dprediction)``.
        unwritten: what the buffer holds before ``backward`` writes it (NaN for
            :func:`check_model`, which finds entries left unwritten); None: whatever
            memory held (``np.empty``: a backward writes every entry).

    Returns:
        ``run(params, layout, x, y, state=None, key=None) -> FlatLossAndGrad``: ``layout``
        is ``fnn.tree.layout(params)``, and ``grads`` comes back as a new writable flat
        array of ``layout.size`` entries in ``layout.dtype``.
    """

    def run(
        params: P,
        layout: _tree.Layout,
        x: Array,
        y: Array,
        state: Any = None,
        key: _random.Key | None = None,
    ) -> FlatLossAndGrad:
        out, new_state, residuals = model.forward(params, x, state, key)
        value, dout = _loss_of(loss, out, y)
        grads = (
            np.empty(layout.size, layout.dtype)
            if unwritten is None
            else np.full(layout.size, unwritten, layout.dtype)
        )
        model.backward(params, residuals, dout, False, layout.buffers(grads))
        return FlatLossAndGrad(value, grads, new_state, out)

    return run


def _loss_of(loss: Loss, out: Array, y: Array) -> tuple[float, Array]:
    """``loss(out, y)``, checked: a ``(value, dprediction)`` pair whose gradient has the
    shape of the model's output ``out`` (a TypeError or ValueError naming the loss
    otherwise, before the gradient reaches a layer's backward)."""
    name = getattr(loss, "__name__", repr(loss))
    value, dout = _checks.pair(loss(out, y), f"the loss {name}'s result", "(value, dprediction)")
    if not isinstance(dout, np.ndarray) or dout.shape != out.shape:
        got = f"shape {dout.shape}" if isinstance(dout, np.ndarray) else type(dout).__name__
        raise ValueError(
            f"the loss {name} returned a gradient of {got} "
            f"for predictions of shape {out.shape}: it must have their shape"
        )
    return value, dout


def finish_gradient(
    value: float, grads: Array, params: P, layout: _tree.Layout, penalty: Penalty[P] | None
) -> float:
    """Add ``penalty(params)`` (if any) to a batch's flat gradient ``grads`` (in place) and
    make ``grads`` read-only; returns ``value`` plus the penalty's value. ``grads`` may be
    a slice of the flat gradient only when there is no penalty.

    Internal: the second half of the flat interface (see :func:`flat_forward_backward`);
    not in ``__all__``."""
    if penalty is not None:
        extra, extra_grads = penalty(params)
        grads += layout.ravel(extra_grads, "the penalty's gradient")
        value += extra
    grads.flags.writeable = False
    return value


def forward_backward(
    model: Layer[P, Any], loss: Loss, penalty: Penalty[P] | None = None
) -> Pipeline[P]:
    """The one gradient pipeline: ``f(params, x, y, state=None, key=None) -> LossAndGrad``.

    Args:
        model: the layer (usually a ``serial``) whose params are differentiated.
        loss: ``loss(prediction, y) -> (value, dprediction)``, e.g.
            :func:`fnn.losses.softmax_cross_entropy`.
        penalty: optional ``penalty(params) -> (value, grads)`` added to the loss,
            e.g. ``lambda p: fnn.losses.l2_penalty(p, 0.01)``.

    The returned function runs ``model.forward(params, x, state, key)``, the loss, the
    penalty, and ``model.backward`` without the input gradient. ``state`` is the model
    state (``None`` for models without) and ``key`` the key of a stochastic model's
    training forward; the result holds the new state. The gradient is a tree of read-only
    views into one flat buffer, which :meth:`fnn.optim.Optimizer.update` reads without a
    copy. Nothing passed in is modified.

    It trusts its inputs (training checks the data once, up front); :func:`value_and_grad`
    and :func:`grad` check ``x``, ``state`` and ``key`` first.

    Returns:
        ``f(params, x, y, state=None, key=None) -> LossAndGrad``: ``x`` a float batch
        ``(batch, *in_shape)`` in the params' dtype, ``y`` what ``loss`` takes (integer
        labels ``(batch,)`` or targets shaped like the output). The
        :class:`LossAndGrad` holds ``value`` (a Python float: the batch-mean loss plus
        the penalty), ``grads`` (read-only arrays of the params' shapes and dtype),
        ``state`` (the new model state) and ``output`` (the model's output,
        ``(batch, *out_shape)``).

    >>> import fnn, numpy as np
    >>> model = fnn.nn.mlp((3,))
    >>> params = model.init(fnn.random.key(0), (4,))
    >>> x, y = fnn.random.uniform(fnn.random.key(1), (2, 4)), np.array([0, 2])
    >>> result = fnn.forward_backward(model, fnn.losses.softmax_cross_entropy)(params, x, y)
    >>> round(result.value, 4), result.grads[1].w.shape, result.output.shape, result.state
    (1.4729, (4, 3), (2, 3), None)
    """
    flat = flat_forward_backward(model, loss)

    def run(
        params: P, x: Array, y: Array, state: Any = None, key: _random.Key | None = None
    ) -> LossAndGrad[P]:
        layout = _tree.layout(params)
        result = flat(params, layout, x, y, state, key)
        value = finish_gradient(result.value, result.grads, params, layout, penalty)
        grads: P = layout.unravel(result.grads)
        return LossAndGrad(value, grads, result.state, result.output)

    return run


def check_call(model: Layer[Any, Any], params: Any, x: Any, state: Any, key: Any) -> None:
    """Check what a training forward of ``model`` is given: a finite float ``x`` of the
    params' dtype, params and a state that fit the model for ``x``'s examples
    (:meth:`fnn.nn.Layer.check`), and a key exactly when the model is stochastic.

    Internal: the check :func:`value_and_grad` and :func:`check_model` share; not in
    ``__all__``.

    Raises:
        TypeError, ValueError: naming what was expected and what came.
    """
    model.check_inputs(params, x, state)
    if model.stochastic and not isinstance(key, _random.Key):
        raise TypeError(
            "this model draws random numbers in training (dropout): pass key=, an "
            f"fnn.random.Key, got {type(key).__name__}"
        )
    if not model.stochastic and key is not None:
        raise TypeError(f"this model draws no random numbers: expected key=None, got {key!r}")


def value_and_grad(
    model: Layer[P, Any], loss: Loss, penalty: Penalty[P] | None = None
) -> ValueAndGradFn[P]:
    """``f(params, x, y, *, state=None, key=None) -> (loss value, grads)``.

    :func:`forward_backward` after checking its arguments (``x`` finite, ``state`` and
    ``key`` given exactly when the model needs them); the new model state is dropped
    (use :func:`forward_backward` to keep it). ``grads`` is a tree shaped like ``params``.

    Args:
        model: the layer whose params are differentiated.
        loss: ``loss(prediction, y) -> (value, dprediction)``, e.g.
            :func:`fnn.losses.softmax_cross_entropy`.
        penalty: optional ``penalty(params) -> (value, grads)`` added to the loss.

    Returns:
        ``f(params, x, y, *, state=None, key=None) -> (value, grads)``: ``value`` a Python
        float (the batch-mean loss plus the penalty), ``grads`` read-only arrays of the
        params' shapes and dtype, arranged as the params.

    Raises:
        TypeError, ValueError: (from ``f``) ``x`` is not a finite float array of the
            params' dtype, params or state do not fit the model for ``x``'s examples,
            or ``state``/``key`` is missing or given to a model that takes none (each
            message names what was expected and what came).

    >>> import fnn, numpy as np
    >>> model = fnn.nn.mlp((3,))
    >>> params = model.init(fnn.random.key(0), (4,))
    >>> x, y = fnn.random.uniform(fnn.random.key(1), (2, 4)), np.array([0, 2])
    >>> value, grads = fnn.value_and_grad(model, fnn.losses.softmax_cross_entropy)(params, x, y)
    >>> round(value, 4), [round(g, 4) for g in grads[1].b.tolist()]
    (1.4729, [-0.147, 0.1096, 0.0374])
    """
    run = forward_backward(model, loss, penalty)

    def value_and_grad_fn(
        params: P, x: Array, y: Array, *, state: Any = None, key: _random.Key | None = None
    ) -> tuple[float, P]:
        check_call(model, params, x, state, key)
        result = run(params, x, y, state, key)
        return result.value, result.grads

    return value_and_grad_fn


def grad(model: Layer[P, Any], loss: Loss, penalty: Penalty[P] | None = None) -> GradFn[P]:
    """``g(params, x, y, *, state=None, key=None) -> grads``: :func:`value_and_grad`
    without the value.

    Args:
        model, loss, penalty: as for :func:`value_and_grad`.

    Returns:
        ``g(params, x, y, *, state=None, key=None) -> grads``: the gradient of the
        batch-mean loss (plus the penalty) w.r.t. the params, read-only arrays of their
        shapes and dtype, arranged as the params.

    Raises:
        TypeError, ValueError: (from ``g``) as :func:`value_and_grad`.

    >>> import fnn, numpy as np
    >>> model = fnn.nn.mlp((3,))
    >>> params = model.init(fnn.random.key(0), (4,))
    >>> x, y = fnn.random.uniform(fnn.random.key(1), (2, 4)), np.array([0, 2])
    >>> grads = fnn.grad(model, fnn.losses.softmax_cross_entropy)(params, x, y)
    >>> fnn.tree.structure(grads) == fnn.tree.structure(params), grads[1].w.flags.writeable
    (True, False)
    """
    vg = value_and_grad(model, loss, penalty)

    def grad_fn(
        params: P, x: Array, y: Array, *, state: Any = None, key: _random.Key | None = None
    ) -> P:
        return vg(params, x, y, state=state, key=key)[1]

    return grad_fn


@attrs.frozen
class GradCheck:
    """The result of :func:`check_grad`.

    Attributes:
        max_rel_error: the worst ``|analytic - numeric| / max(|analytic|, |numeric|, floor)``.
        where: the path of the leaf and the index within it where it occurred, after
            the name of the point (:func:`check_grad`'s ``name``): ``"params[1].w[3, 0]"``
            from :func:`check_model`, ``"params.w[3, 0]"`` or ``"input[1, 4]"`` from
            :func:`check_layer`, ``"[1].w[3, 0]"`` from :func:`check_grad` unnamed.
        analytic: the hand-derived gradient entry there.
        numeric: the finite-difference estimate there.
        checked: how many entries were compared.
        skipped: what was not checked and why (``"input: integer token ids have no
            gradient"`` from :func:`check_layer` on a model that reads ids), or ``""``.
    """

    max_rel_error: float
    where: str
    analytic: float
    numeric: float
    checked: int
    skipped: str = ""

    def __str__(self) -> str:
        skipped = f"; not checked: {self.skipped}" if self.skipped else ""
        return (
            f"max relative error {self.max_rel_error:.3g} at {self.where} "
            f"(analytic {self.analytic:.10g}, numeric {self.numeric:.10g}; "
            f"{self.checked} entries checked{skipped})"
        )


def check_grad(
    f: Callable[[Any], float],
    grads: Any,
    at: Any,
    *,
    step: float = 1e-4,
    floor: float = 1e-4,
    max_entries: int | None = None,
    key: _random.Key | None = None,
    name: str = "",
) -> GradCheck:
    """Compare a hand-derived gradient with finite differences of ``f``.

    Args:
        f: a scalar function of a tree, ``f(at) -> float``.
        grads: the hand-derived gradient of ``f`` at ``at``, a tree shaped like ``at``.
        at: the point, a tree of float arrays (float64 for meaningful results).
        step: the finite-difference step. The five-point stencil
            ``(-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h`` has error ``O(h**4)``.
        floor: the smallest denominator of the relative error, so entries that are
            zero in both gradients compare by absolute error below ``floor``.
        max_entries: check at most this many entries, chosen at random by ``key``
            (default: all).
        key: the key that picks the entries when ``max_entries`` is set.
        name: what ``at`` is, put before the paths of the report (``"params"`` gives
            ``params[1].w[3, 0]``).

    Returns:
        A :class:`GradCheck` with the worst relative error and where it occurred.
        ``at`` and ``grads`` are not modified.

    Raises:
        TypeError: a leaf of ``at`` is not a float array, or ``f`` returns no scalar.
        ValueError: ``grads`` is not shaped like ``at`` (structure or a leaf's shape).

    >>> import numpy as np
    >>> at = {"w": np.array([1.0, -2.0, 3.0])}
    >>> def f(t): return float(np.sum(t["w"] ** 3))
    >>> right = check_grad(f, {"w": 3 * at["w"] ** 2}, at)
    >>> right.checked, right.max_rel_error < 1e-8
    (3, True)
    >>> round(check_grad(f, {"w": at["w"] ** 2}, at).max_rel_error, 4)  # a wrong gradient
    0.6667
    """
    values, treedef = _tree.flatten(at)
    _tree.assert_same_structure(at, grads, "the point and its gradient")
    paths = _tree.paths(at)
    analytic = [np.asarray(g) for g in _tree.leaves(grads)]
    base = [np.array(v) for v in values]  # private copies, perturbed one entry at a time
    for p, a, g in zip(paths, base, analytic):
        if a.dtype.kind != "f":
            raise TypeError(f"check_grad needs float leaves, got {a.dtype} at {p or 'the root'}")
        if a.shape != g.shape:
            raise ValueError(
                f"gradient at {p or 'the root'} has shape {g.shape}, expected {a.shape}"
            )
    entries = [(i, j) for i, a in enumerate(base) for j in range(a.size)]
    if max_entries is not None and max_entries < len(entries):
        chosen = _random.permutation(key or _random.key(0), len(entries))[:max_entries]
        entries = [entries[k] for k in sorted(chosen.tolist())]

    def f_at(i: int, j: int, delta: float) -> float:
        moved = list(base)
        leaf = base[i].copy()
        leaf.flat[j] += delta
        moved[i] = leaf
        value = f(_tree.unflatten(treedef, moved))
        if np.ndim(value) != 0:
            raise TypeError(f"check_grad needs f to return a scalar, got shape {np.shape(value)}")
        return float(value)

    worst = GradCheck(0.0, "(nothing checked)", 0.0, 0.0, len(entries))
    for i, j in entries:
        numeric = (
            -f_at(i, j, 2 * step)
            + 8 * f_at(i, j, step)
            - 8 * f_at(i, j, -step)
            + f_at(i, j, -2 * step)
        ) / (12 * step)
        exact = float(analytic[i].flat[j])
        rel = abs(exact - numeric) / max(abs(exact), abs(numeric), floor)
        if rel > worst.max_rel_error or worst.where == "(nothing checked)":
            index = np.unravel_index(j, base[i].shape) if base[i].ndim else ()
            where = paths[i] + (f"[{', '.join(str(int(k)) for k in index)}]" if index else "")
            worst = GradCheck(rel, name + where or "the root", exact, numeric, len(entries))
    return worst


def _warn_if_imprecise(point: Any, what: str) -> None:
    dtypes = {np.asarray(v).dtype for v in _tree.leaves(point)}
    low = sorted({str(d) for d in dtypes if d.kind not in "iu"} - {"float64"})  # ids: exact
    if low:
        warnings.warn(
            f"{what} in {', '.join(low)}: finite differences need float64 to mean anything "
            "(float32 round-off alone gives relative errors near 1); init with "
            "dtype=np.float64 and convert the input with x.astype(np.float64)",
            UserWarning,
            stacklevel=3,
        )


def _check_description(layer: Layer[Any, Any], params: Any, state: Any, x: Array, y: Array) -> None:
    """Raise if the layer's ``shapes`` disagree with its params, state or output."""
    found = layer.mismatch(params, state, x.shape[1:])
    if found is not None:
        raise ValueError(f"the layer's declaration does not describe its {found}")
    described = layer.output_shape(x.shape[1:])
    if described != y.shape[1:]:
        raise ValueError(
            f"the layer declares the output shape {described}, but its forward returned "
            f"{y.shape[1:]}"
        )


def check_layer(
    layer: Layer[P, Any],
    params: P,
    x: Array,
    *,
    state: Any = None,
    key: _random.Key | None = None,
    mask: Array | None = None,
    **options: Any,
) -> GradCheck:
    """Check a layer's ``backward`` (params and input gradients) against finite differences
    of its training ``forward``: the derivative training runs.

    The scalar checked is ``sum(forward(params, x, state, key)[0] * r)`` for a fixed
    random ``r``, whose gradient ``backward(params, residuals, r, True, out)`` gives (the
    params' part written into ``out``, which starts as NaN: an entry left unwritten is an
    error); the
    report names a path in the params as ``params...`` and one in the input as
    ``input[...]``. Use float64 params and inputs (float32 gives a warning). Before that,
    the layer's own description is checked: ``shapes`` must agree with ``params``,
    ``state`` and the output, and a layer without state or randomness must infer what it
    trains on. ``options`` go to :func:`check_grad`. A layer that reads integer token ids
    (an :func:`fnn.nn.embedding` first) is asked for no input gradient, ids having none:
    only its params are checked, and the report's ``skipped`` says so.

    Args:
        layer: the layer to check.
        params: its params for inputs shaped like ``x``'s examples (float64 arrays).
        x: an input batch ``(batch, *in_shape)``, float64 (or integer token ids).
        state: the layer's model state (``None`` for a layer without).
        key: the key of a stochastic layer's training forward (the same mask in every
            evaluation), from which ``r`` and the checked entries are drawn too
            (``fnn.random.key(0)`` for those when it is None).
        mask: for a :attr:`~fnn.nn.Layer.masked` layer, the valid positions ``(batch,
            time)`` (bools), handed to its forward and infer; None: all valid.
        options: ``step``, ``floor`` and ``max_entries``, as for :func:`check_grad`.

    Returns:
        A :class:`GradCheck` over the params' entries and the input's, its ``where``
        ``params...`` or ``input[...]``.

    Raises:
        ValueError: the layer's ``shapes`` or ``infer`` disagree with what it computes,
            its ``backward`` leaves a gradient entry unwritten, or returns no input
            gradient (or one of the wrong shape); an id of ``x`` outside the vocabulary
            of a layer that reads ids (naming it).
        TypeError: ``x`` is not an integer array for a layer that reads ids.

    >>> import fnn, numpy as np
    >>> layer = fnn.nn.dense(3)
    >>> params = layer.init(fnn.random.key(0), (4,), np.float64)
    >>> x = fnn.random.normal(fnn.random.key(1), (2, 4), np.float64)
    >>> report = fnn.check_layer(layer, params, x)
    >>> report.checked, report.max_rel_error < 1e-6  # 12 + 3 params, 8 inputs
    (23, True)
    """
    vocabulary = layer.declared(x.shape[1:]).ids
    ids = vocabulary is not None
    if vocabulary is not None:  # before anything is computed, as apply does
        check_ids(x, vocabulary, "check_layer's x")
    _warn_if_imprecise((params, x), "check_layer")
    k = _random.key(0) if key is None else key
    with_mask: tuple[Any, ...] = (mask,) if layer.masked else ()
    if mask is not None and not layer.masked:
        raise TypeError("check_layer was given a mask, but the layer takes none")
    forward: Any = layer.forward
    y, _, residuals = forward(params, x, state, key, *with_mask)
    _check_description(layer, params, state, x, y)
    if not layer.stateful and not layer.stochastic:
        infer: Any = layer.infer
        inferred = infer(params, x, None, *with_mask)
        if inferred.shape != y.shape or not np.allclose(inferred, y, rtol=1e-12, atol=0.0):
            raise ValueError("the layer's infer and forward compute different outputs")
    r = _random.normal(_random.fold_in(k, _PROBE), y.shape, dtype=y.dtype)
    values, treedef = _tree.flatten(params)
    out = [np.full(np.shape(v), np.nan, np.asarray(v).dtype) for v in values]
    dx = layer.backward(params, residuals, r, not ids, _tree.buffers(treedef, iter(out)))
    _refuse_unwritten(treedef, out, "the layer's backward")
    if not ids and (dx is None or np.shape(dx) != np.shape(x)):
        raise ValueError(
            f"the layer's backward returned {'no' if dx is None else 'a wrong'} input "
            f"gradient ({None if dx is None else np.shape(dx)}) for an input of shape "
            f"{np.shape(x)} when need_dx was true"
        )
    dparams = _tree.unflatten(treedef, out)

    def f(point: dict[str, Any]) -> float:
        at = x if ids else point["input"]
        return float(np.vdot(forward(point["params"], at, state, key, *with_mask)[0], r))

    grads: dict[str, Any] = {"params": dparams}
    point: dict[str, Any] = {"params": params}
    if not ids:
        grads["input"], point["input"] = dx, x
    found = check_grad(f, grads, point, key=k, **options)
    if ids:
        found = attrs.evolve(found, skipped="input: integer token ids have no gradient")
    for root in ("input", "params"):  # "['params'][1].w[0, 2]" -> "params[1].w[0, 2]"
        if found.where.startswith(f"[{root!r}]"):
            return attrs.evolve(found, where=root + found.where[len(root) + 4 :])
    return found


def check_model(
    model: Layer[P, Any],
    loss: Loss,
    params: P,
    x: Array,
    y: Array,
    *,
    penalty: Penalty[P] | None = None,
    state: Any = None,
    key: _random.Key | None = None,
    **options: Any,
) -> GradCheck:
    """Check :func:`forward_backward` (so ``fnn.grad`` and training) against finite
    differences of the loss, at a fixed ``state`` and ``key``.

    The report names its paths in the params, e.g. ``params[1].w[4, 1]``. Use float64
    params and inputs (float32 gives a warning). ``options`` go to :func:`check_grad`.

    Args:
        model, loss, penalty: as for :func:`forward_backward`.
        params: the point, float64 params of ``model`` for ``x``'s examples.
        x, y: a batch ``(batch, *in_shape)`` (float64) and its labels or targets.
        state, key: the model state and the key of a stochastic model's training
            forward, held fixed (given exactly when the model needs them).
        options: ``step``, ``floor``, ``max_entries`` and ``name`` (``"params"`` by
            default), as for :func:`check_grad`.

    Returns:
        A :class:`GradCheck` over the params' entries.

    Raises:
        TypeError, ValueError: as :func:`value_and_grad` for ``x``, params, ``state``
            and ``key``.

    >>> import fnn, numpy as np
    >>> model = fnn.nn.mlp((5, 3))
    >>> params = model.init(fnn.random.key(0), (4,), np.float64)
    >>> x, y = fnn.random.normal(fnn.random.key(1), (6, 4), np.float64), np.arange(6) % 3
    >>> report = fnn.check_model(model, fnn.losses.softmax_cross_entropy, params, x, y)
    >>> report.checked, report.max_rel_error < 1e-6  # 4 * 5 + 5 + 5 * 3 + 3 params
    (43, True)
    """
    _warn_if_imprecise((params, x), "check_model")
    check_call(model, params, x, state, key)
    run = forward_backward(model, loss, penalty)
    # the gradient as forward_backward makes it, in a buffer that starts as NaN, so that
    # an entry some backward leaves unwritten (training would get whatever memory held)
    # is found, not compared at random
    layout = _tree.layout(params)
    found = flat_forward_backward(model, loss, unwritten=np.nan)(params, layout, x, y, state, key)
    _, treedef = _tree.flatten(params)
    _refuse_unwritten(treedef, list(layout.views(found.grads)), "a layer's backward")
    finish_gradient(found.value, found.grads, params, layout, penalty)
    return check_grad(
        lambda p: run(p, x, y, state, key).value,
        layout.unravel(found.grads),
        params,
        **{"name": "params", **options},
    )


def _refuse_unwritten(treedef: Any, grads: list[Array], whose: str) -> None:
    """A ValueError naming the first leaf of ``grads`` (laid out as ``treedef``) that
    still holds NaN, the value its buffer started as: an entry ``whose`` left
    unwritten."""
    unwritten = [p for p, g in zip(_tree.leaf_paths(treedef), grads) if np.isnan(g).any()]
    if unwritten:
        raise ValueError(
            f"{whose} left entries of grads unwritten (still NaN) at params{unwritten[0]}: "
            "it must write every entry of each param's gradient"
        )
