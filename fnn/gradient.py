"""Gradients from hand-derived backward passes, and a finite-difference checker.

``value_and_grad(model, loss)`` composes the model's ``forward``, the loss and the
model's ``backward`` into ``f(params, x, y) -> (value, grads)``; there is no tape.
:func:`check_grad` compares any hand-written gradient with central finite differences
and reports the worst relative error and where it occurred.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import numpy as np

from . import _checks
from . import random as _random
from . import tree as _tree
from ._types import Array
from .losses import Loss, Penalty
from .nn import Layer

P = TypeVar("P")


def value_and_grad(
    model: Layer[P], loss: Loss, penalty: Penalty[P] | None = None
) -> Callable[[P, Array, Array], tuple[float, P]]:
    """``f(params, x, y) -> (loss value, grads)`` for a model and a loss.

    Args:
        model: the layer (usually a ``serial``) whose params are differentiated.
        loss: ``loss(prediction, y) -> (value, dprediction)``, e.g.
            :func:`fnn.losses.softmax_cross_entropy`.
        penalty: optional ``penalty(params) -> (value, grads)`` added to the loss,
            e.g. ``lambda p: fnn.losses.l2_penalty(p, 0.01)``.

    The returned function checks that ``x`` is finite, runs ``model.forward``, the
    loss, and ``model.backward`` without the input gradient. ``grads`` is a tree shaped
    like ``params``; nothing passed in is modified.
    """

    def value_and_grad_fn(params: P, x: Array, y: Array) -> tuple[float, P]:
        _checks.finite(_checks.float_array(x, "x"), "x")
        out, residuals = model.forward(params, x)
        value, dout = loss(out, y)
        grads, _ = model.backward(params, residuals, dout, False)
        if penalty is not None:
            extra, extra_grads = penalty(params)
            value += extra
            grads = _tree.add(grads, extra_grads)
        return value, grads

    return value_and_grad_fn


def grad(
    model: Layer[P], loss: Loss, penalty: Penalty[P] | None = None
) -> Callable[[P, Array, Array], P]:
    """``g(params, x, y) -> grads``: :func:`value_and_grad` without the value."""
    vg = value_and_grad(model, loss, penalty)

    def grad_fn(params: P, x: Array, y: Array) -> P:
        return vg(params, x, y)[1]

    return grad_fn


@attrs.frozen
class GradCheck:
    """The result of :func:`check_grad`.

    Attributes:
        max_rel_error: the worst ``|analytic - numeric| / max(|analytic|, |numeric|, floor)``.
        where: the path of the leaf and the index within it where it occurred,
            e.g. ``"[1].w[3, 0]"``.
        analytic: the hand-derived gradient entry there.
        numeric: the finite-difference estimate there.
        checked: how many entries were compared.
    """

    max_rel_error: float
    where: str
    analytic: float
    numeric: float
    checked: int

    def __str__(self) -> str:
        return (
            f"max relative error {self.max_rel_error:.3g} at {self.where} "
            f"(analytic {self.analytic:.10g}, numeric {self.numeric:.10g}; "
            f"{self.checked} entries checked)"
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

    Returns:
        A :class:`GradCheck` with the worst relative error and where it occurred.
        ``at`` and ``grads`` are not modified.
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
            worst = GradCheck(rel, where or "the root", exact, numeric, len(entries))
    return worst


def check_layer(
    layer: Layer[P],
    params: P,
    x: Array,
    *,
    key: _random.Key | None = None,
    **options: Any,
) -> GradCheck:
    """Check a layer's ``backward`` (params and input gradients) against finite differences.

    The scalar checked is ``sum(apply(params, x) * r)`` for a fixed random ``r``, whose
    gradient ``backward(params, residuals, r, True)`` returns. Use float64 params and
    inputs. ``options`` go to :func:`check_grad`.
    """
    k = key or _random.key(0)
    y, residuals = layer.forward(params, x)
    r = _random.normal(_random.fold_in(k, 1), y.shape, dtype=y.dtype)
    dparams, dx = layer.backward(params, residuals, r, True)

    def f(point: tuple[P, Array]) -> float:
        return float(np.vdot(layer.apply(point[0], point[1]), r))

    return check_grad(f, (dparams, dx), (params, x), key=k, **options)


def check_model(
    model: Layer[P],
    loss: Loss,
    params: P,
    x: Array,
    y: Array,
    *,
    penalty: Penalty[P] | None = None,
    **options: Any,
) -> GradCheck:
    """Check ``fnn.grad(model, loss, penalty)`` against finite differences of the loss.

    Use float64 params and inputs. ``options`` go to :func:`check_grad`.
    """
    vg = value_and_grad(model, loss, penalty)
    return check_grad(lambda p: vg(p, x, y)[0], vg(params, x, y)[1], params, **options)
