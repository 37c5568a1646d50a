"""Gradient transforms, each the equation of one piece of an update rule.

Every rule is a pure function of one flat array ``g`` (the whole gradient tree, raveled):
it returns its updates and new moments in fresh arrays and modifies nothing it is given
(arrays it has just made itself it may finish in place).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from .. import _checks
from .. import tree as _tree
from .._types import Array
from ..tree import Layout
from ._base import (
    EmptyState,
    Moments,
    Transform,
    Updates,
    check_fraction,
    check_positive,
    stateless,
)
from ._schedules import Schedule, as_schedule


@attrs.frozen(eq=False)
class AdamState:
    """Adam's moments: ``mu`` (first) and ``nu`` (second), flat like the raveled params."""

    mu: Any
    nu: Any


_tree.register_type(AdamState, "fnn.optim.AdamState")


@attrs.frozen(eq=False)
class TraceState:
    """The momentum buffer (velocity) of :func:`trace`."""

    momentum: Any


_tree.register_type(TraceState, "fnn.optim.TraceState")


@attrs.frozen(eq=False)
class RmsState:
    """The running mean of squared gradients of :func:`scale_by_rms`."""

    nu: Any


_tree.register_type(RmsState, "fnn.optim.RmsState")


@attrs.frozen(eq=False)
class AdagradState:
    """The running sum of squared gradients of :func:`scale_by_adagrad`."""

    sum_of_squares: Any


_tree.register_type(AdagradState, "fnn.optim.AdagradState")


FLUSH_EVERY = 16
"""How often (in steps) decaying moments are swept for tiny entries."""

FLUSH_BELOW = 2.0**-100
"""Moment entries smaller in magnitude than this (about 7.9e-31) are swept to zero."""


def flush_tiny(moment: Array, step: int) -> Array:
    """Every :data:`FLUSH_EVERY` steps, set entries of a freshly computed moment whose
    magnitude is below :data:`FLUSH_BELOW` to zero (in place; ``moment`` must be fresh).

    Moments of parameters whose gradient stays zero (dead ReLU units, pixels that are
    almost always blank) decay geometrically into the subnormal range, where x86 CPUs
    multiply and divide 10-50x slower; NumPy, unlike JAX, does not flush subnormals.
    A value needs over 100 steps of decay to fall from the threshold into the subnormal
    range, so a sweep every 16 steps keeps every moment normal. The entries swept
    contribute less than 1e-22 to any update. The rule is a pure function of the
    moment and the step count: training stays deterministic.
    """
    if step % FLUSH_EVERY == 0:
        np.copyto(moment, 0, where=np.abs(moment) < FLUSH_BELOW)
    return moment


def _ema(old: Array, new: Array, decay: float, *, new_is_ours: bool = False) -> Array:
    """``decay * old + (1 - decay) * new``, computed as ``old + (1 - decay) * (new - old)``
    (three passes), in a fresh array, or in ``new`` when the calling rule has just made it."""
    step = np.subtract(new, old, out=new) if new_is_ours else np.subtract(new, old)
    step *= 1.0 - decay
    step += old
    return step


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Transform:
    """Adam's direction (Kingma & Ba, 2015), with ``t`` the 1-based step:

    ``mu = b1 mu + (1 - b1) g``, ``nu = b2 nu + (1 - b2) g**2``,
    ``direction = mu_hat / (sqrt(nu_hat) + eps)`` with ``mu_hat = mu / (1 - b1**t)`` and
    ``nu_hat = nu / (1 - b2**t)``. ``eps`` is added outside the square root, as in
    PyTorch, optax and Keras; the bias corrections are folded into one scalar
    (``sqrt(1 - b2**t) / (1 - b1**t) * mu / (sqrt(nu) + eps sqrt(1 - b2**t))``).
    """
    b1 = check_fraction(b1, "b1")
    b2 = check_fraction(b2, "b2")
    eps = check_positive(eps, "eps")

    def init(flat: Array, layout: Layout) -> Moments:
        return np.zeros_like(flat), np.zeros_like(flat)

    def update(
        u: Updates, moments: Moments, params: Any, step: int, layout: Layout
    ) -> tuple[Updates, Moments]:
        g = u.value()
        mu, nu = moments
        t = step + 1
        new_mu = flush_tiny(_ema(mu, g, b1), step)
        new_nu = flush_tiny(_ema(nu, np.multiply(g, g), b2, new_is_ours=True), step)
        root_bc2 = math.sqrt(1.0 - b2**t)
        direction = np.sqrt(new_nu)
        direction += eps * root_bc2
        np.divide(new_mu, direction, out=direction)
        return Updates(direction, root_bc2 / (1.0 - b1**t)), (new_mu, new_nu)

    return Transform(init, update, AdamState, name="scale_by_adam", elementwise=True)


def trace(momentum: float, nesterov: bool = False) -> Transform:
    """Momentum as PyTorch's ``SGD`` (dampening 0) and optax's ``trace`` define it:

    ``v = momentum * v + g``; the update is ``v``, or ``g + momentum * v`` with
    ``nesterov``. ``v`` starts at zero, so the first update is ``g``.
    """
    m = check_fraction(momentum, "momentum")

    def update(
        u: Updates, moments: Moments, params: Any, step: int, layout: Layout
    ) -> tuple[Updates, Moments]:
        (velocity,) = moments
        g = u.value()
        new_v = np.multiply(velocity, m)
        new_v += g
        flush_tiny(new_v, step)
        if not nesterov:
            return Updates(new_v), (new_v,)
        out = np.multiply(new_v, m)
        out += g
        return Updates(out), (new_v,)

    def init(flat: Array, layout: Layout) -> Moments:
        return (np.zeros_like(flat),)

    return Transform(init, update, TraceState, name="trace", elementwise=True)


def scale_by_rms(rho: float = 0.99, eps: float = 1e-8) -> Transform:
    """RMSprop's direction as in PyTorch: ``nu = rho nu + (1 - rho) g**2``,
    ``direction = g / (sqrt(nu) + eps)`` (``eps`` outside the square root)."""
    rho = check_fraction(rho, "rho")
    eps = check_positive(eps, "eps")

    def update(
        u: Updates, moments: Moments, params: Any, step: int, layout: Layout
    ) -> tuple[Updates, Moments]:
        g = u.value()
        (nu,) = moments
        new_nu = flush_tiny(_ema(nu, np.multiply(g, g), rho, new_is_ours=True), step)
        direction = np.sqrt(new_nu)
        direction += eps
        np.divide(g, direction, out=direction)
        return Updates(direction), (new_nu,)

    def init(flat: Array, layout: Layout) -> Moments:
        return (np.zeros_like(flat),)

    return Transform(init, update, RmsState, name="scale_by_rms", elementwise=True)


def scale_by_adagrad(initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> Transform:
    """Adagrad's direction (Duchi et al., 2011) as in PyTorch: ``G = G + g**2``,
    ``direction = g / (sqrt(G) + eps)``, ``G`` starting at ``initial_accumulator_value``."""
    start = _checks.real(initial_accumulator_value, "initial_accumulator_value")
    if not (math.isfinite(start) and start >= 0):
        raise ValueError(f"initial_accumulator_value must be >= 0, got {start}")
    eps = check_positive(eps, "eps")

    def init(flat: Array, layout: Layout) -> Moments:
        return (np.full_like(flat, start),)

    def update(
        u: Updates, moments: Moments, params: Any, step: int, layout: Layout
    ) -> tuple[Updates, Moments]:
        g = u.value()
        (total,) = moments
        new_total = np.multiply(g, g)
        new_total += total
        direction = np.sqrt(new_total)
        direction += eps
        np.divide(g, direction, out=direction)
        return Updates(direction), (new_total,)

    return Transform(init, update, AdagradState, name="scale_by_adagrad", elementwise=True)


def scale_by_learning_rate(learning_rate: float | Schedule) -> Transform:
    """``updates = -lr(step) * updates`` (the descent step); ``learning_rate`` is a float
    or a schedule of the step count."""
    schedule = as_schedule(learning_rate)

    def update(u: Updates, params: Any, step: int, layout: Layout) -> Updates:
        lr = float(schedule(step))
        if not math.isfinite(lr):
            raise ValueError(f"the learning-rate schedule gave {lr} at step {step}")
        return u.scaled(-lr)

    return stateless(update, schedule, "scale_by_learning_rate", elementwise=True)


def add_decayed_weights(rate: float, *, weights_only: bool = False) -> Transform:
    """``updates = updates + rate * params``: decoupled weight decay when placed after an
    update rule's direction (as in :func:`adamw`), an L2 penalty's gradient when placed
    in front of it (see :func:`add_l2`).

    ``weights_only`` restricts it to the leaves marked as weights (the ``w`` of dense
    layers), leaving biases alone.
    """
    r = _checks.real(rate, "weight decay rate")
    if not (math.isfinite(r) and r >= 0):
        raise ValueError(f"weight decay rate must be a finite number >= 0, got {rate}")

    def update(u: Updates, params: Any, step: int, layout: Layout) -> Updates:
        if r == 0.0:
            return u
        value = u.value()
        flat = layout.ravel(params, "params")
        if not weights_only:
            out = np.multiply(flat, r)
            out += value
            return Updates(out)
        out = value.copy() if value is u.array else value  # never write into u.array
        for start, stop in layout.ranges(layout.weights):
            out[start:stop] += flat[start:stop] * r
        return Updates(out)

    return stateless(update, name="add_decayed_weights", elementwise=r == 0.0)


def add_l2(lam: float, *, weights_only: bool = True) -> Transform:
    """Add the gradient of the L2 penalty ``(lam / 2) * sum(w**2)``, ``lam * w``, to the
    gradient. Place it in front of the update rule (``chain(add_l2(0.01), sgd(0.1))``).
    By default it acts on weights only, as :func:`fnn.losses.l2_penalty` does."""
    return add_decayed_weights(lam, weights_only=weights_only)


def clip_by_global_norm(max_norm: float) -> Transform:
    """Scale the whole gradient by ``min(1, max_norm / ||g||)``, ``||g||`` the Euclidean
    norm over all leaves together."""
    limit = check_positive(max_norm, "max_norm")

    def update(u: Updates, params: Any, step: int, layout: Layout) -> Updates:
        norm = abs(u.scale) * math.sqrt(float(np.dot(u.array, u.array)))
        if norm > limit:
            return u.scaled(limit / norm)
        return u

    return stateless(update, name="clip_by_global_norm")


def clip(max_abs: float) -> Transform:
    """Clip every gradient entry to ``[-max_abs, max_abs]``."""
    limit = check_positive(max_abs, "max_abs")

    def update(u: Updates, params: Any, step: int, layout: Layout) -> Updates:
        if u.scale == 0.0:
            return u
        bound = limit / abs(u.scale)
        return Updates(np.clip(u.array, -bound, bound), u.scale)

    return stateless(update, name="clip", elementwise=True)


def freeze(mask: Any) -> Transform:
    """Zero the updates of the leaves where ``mask`` (a tree of bools shaped like the
    params) is true. Place it last in a chain so frozen leaves do not move at all.

    >>> import fnn
    >>> params = fnn.nn.mlp((4, 2)).init(fnn.random.key(0), (3,))
    >>> first_layer_frozen = (None, fnn.tree.map(lambda leaf: True, params[1]),
    ...                       None, fnn.tree.map(lambda leaf: False, params[3]))
    >>> opt = fnn.optim.chain(fnn.optim.sgd(0.1), fnn.optim.freeze(first_layer_frozen))
    >>> state, new_params = opt.update(opt.init(params), params)
    >>> fnn.tree.equal(new_params[1], params[1])
    True
    """
    flags_tree = mask
    flags = [bool(f) for f in _tree.leaves(mask)]
    frozen = any(flags)

    def init(flat: Array, layout: Layout) -> Moments:
        found = _tree.difference(layout.treedef, _tree.structure(flags_tree))
        if found is not None:
            raise ValueError(f"the freeze mask does not match the params: {found}")
        return ()

    def update(
        u: Updates, moments: Moments, params: Any, step: int, layout: Layout
    ) -> tuple[Updates, Moments]:
        if not frozen:  # nothing frozen: elementwise, and layout unread
            return u, ()
        spans = layout.ranges(flags)
        if not spans:
            return u, ()
        out = u.array.copy()
        for start, stop in spans:
            out[start:stop] = 0
        return Updates(out, u.scale), ()

    return Transform(init, update, EmptyState, name="freeze", elementwise=not frozen)
