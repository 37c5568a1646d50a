"""Gradient transforms, each the equation of one piece of an update rule.

Every rule is a pure function of one flat array ``g`` (the whole gradient tree, raveled):
it returns its updates and new moments in fresh arrays and modifies nothing it is given
(arrays it has just made itself it may finish in place). The equations below are
written for that one array, every operation entrywise; ``t`` is the 1-based number of
the update being made and ``p`` the flat params before it. The moments live in the
state records (:class:`AdamState`, ...), flat like ``g``.

A chain of transforms without a learning rate adds its updates to the params, so the
examples below chain one transform alone onto zero params: the new params are then the
transform's updates.

>>> import fnn, numpy as np
>>> opt = fnn.optim.chain(fnn.optim.clip(1.0))
>>> state = opt.init({"w": np.zeros(2, np.float32)})
>>> state, params = opt.update(state, {"w": np.array([0.5, -3.0], np.float32)})
>>> params["w"]
array([ 0.5, -1. ], dtype=float32)
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
    stateless,
)
from ._schedules import Schedule, as_schedule


@attrs.frozen(eq=False)
class AdamState:
    """The state of :func:`scale_by_adam`: Adam's first and second moments.

    Saved and loaded as ``"fnn.optim.AdamState"`` (see :func:`fnn.tree.register_type`).

    Attributes:
        mu: the running mean of the gradient, ``mu = b1 mu + (1 - b1) g``; a read-only
            flat array of the params' dtype and size (the raveled params' layout).
        nu: the running mean of the squared gradient, ``nu = b2 nu + (1 - b2) g**2``;
            laid out like ``mu``. Both start at zero and are not bias-corrected.

    :func:`fnn.optim.moment_trees` shows the moments shaped like the params.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.adam(0.1)
    >>> state = opt.init({"w": np.zeros((1, 2), np.float32)})
    >>> state, _ = opt.update(state, {"w": np.array([[0.5, -1.0]], np.float32)})
    >>> state.inner[0]
    AdamState(mu=array([ 0.05, -0.1 ], dtype=float32),
              nu=array([0.00025, 0.001  ], dtype=float32))
    >>> fnn.optim.moment_trees(state)[0].mu
    {'w': array([[ 0.05, -0.1 ]], dtype=float32)}
    """

    mu: Any
    nu: Any


_tree.register_type(AdamState, "fnn.optim.AdamState")


@attrs.frozen(eq=False)
class TraceState:
    """The state of :func:`trace`: the momentum buffer (velocity).

    Saved and loaded as ``"fnn.optim.TraceState"``.

    Attributes:
        momentum: ``v = momentum * v + g``, starting at zero (so after the first update it
            is the gradient); a read-only flat array of the params' dtype and size.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.sgd(0.1, momentum=0.9)
    >>> state = opt.init({"w": np.zeros(2, np.float32)})
    >>> state, _ = opt.update(state, {"w": np.array([0.5, -1.0], np.float32)})
    >>> state.inner[0]
    TraceState(momentum=array([ 0.5, -1. ], dtype=float32))
    """

    momentum: Any


_tree.register_type(TraceState, "fnn.optim.TraceState")


@attrs.frozen(eq=False)
class RmsState:
    """The state of :func:`scale_by_rms`: the running mean of squared gradients.

    Saved and loaded as ``"fnn.optim.RmsState"``.

    Attributes:
        nu: ``nu = rho nu + (1 - rho) g**2``, starting at zero (PyTorch's start; TF1
            started at 1); a read-only flat array of the params' dtype and size.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.rmsprop()  # rho = 0.99
    >>> state = opt.init({"w": np.zeros(2, np.float32)})
    >>> state, _ = opt.update(state, {"w": np.array([0.5, -1.0], np.float32)})
    >>> state.inner[0]  # 0.01 * g**2
    RmsState(nu=array([0.0025, 0.01  ], dtype=float32))
    """

    nu: Any


_tree.register_type(RmsState, "fnn.optim.RmsState")


@attrs.frozen(eq=False)
class AdagradState:
    """The state of :func:`scale_by_adagrad`: the running sum of squared gradients.

    Saved and loaded as ``"fnn.optim.AdagradState"``.

    Attributes:
        sum_of_squares: ``G = G + g**2``, starting at ``initial_accumulator_value``; a
            read-only flat array of the params' dtype and size.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.adagrad(initial_accumulator_value=0.1)
    >>> state = opt.init({"w": np.zeros(2, np.float32)})
    >>> state, _ = opt.update(state, {"w": np.array([0.5, -1.0], np.float32)})
    >>> state.inner[0]  # 0.1 + g**2
    AdagradState(sum_of_squares=array([0.35, 1.1 ], dtype=float32))
    """

    sum_of_squares: Any


_tree.register_type(AdagradState, "fnn.optim.AdagradState")


FLUSH_EVERY = 16
"""How often (in steps) decaying moments are swept for tiny entries."""

FLUSH_BELOW = 2.0**-100
"""Moment entries smaller in magnitude than this (about 7.9e-31) are swept to zero."""


def flush_tiny(moment: Array, step: int) -> Array:
    """Every :data:`FLUSH_EVERY` steps after the first (steps 16, 32, ...), set entries of
    a freshly computed moment whose magnitude is below :data:`FLUSH_BELOW` to zero (in
    place; ``moment`` must be fresh).

    Moments of parameters whose gradient stays zero (dead ReLU units, pixels that are
    almost always blank) decay geometrically into the subnormal range, where x86 CPUs
    multiply and divide 10-50x slower; NumPy, unlike JAX, does not flush subnormals.
    A value needs over 100 steps of decay to fall from the threshold into the subnormal
    range, so a sweep every 16 steps keeps every moment normal. The first step is not
    swept: nothing has decayed yet, and its bias correction is the largest. What a sweep
    changes: a first moment below 2**-100 moves a direction ``mu_hat / (sqrt(nu_hat) +
    eps)`` by less than ``1e-29 / eps`` (1e-21 at the default ``eps=1e-8``); a second
    moment below 2**-100 has ``sqrt(nu_hat)`` below ``7e-15`` from step 16 on (with
    Adam's default ``b2=0.999``), which moves the direction by a relative ``7e-15 / eps``
    at most (7e-7 at ``eps=1e-8``, for entries whose gradients are below about 1e-15;
    with an ``eps`` much below 1e-14 such entries move by a sizeable fraction: keep
    ``eps`` above it).
    The rule is a pure function of the moment and the step count: training stays
    deterministic.
    """
    if step % FLUSH_EVERY == 0 and step > 0:
        np.copyto(moment, 0, where=np.abs(moment) < FLUSH_BELOW)
    return moment


def _ema(old: Array, new: Array, decay: float, *, new_is_ours: bool = False) -> Array:
    """``decay * old + (1 - decay) * new``, computed as ``old + (1 - decay) * (new - old)``
    (three passes), in a fresh array, or in ``new`` when the calling rule has just made it."""
    step = np.subtract(new, old, out=new) if new_is_ours else np.subtract(new, old)
    step *= 1.0 - decay
    step += old
    return step


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Transform[AdamState]:
    """Adam's direction (Kingma & Ba, 2015), with ``t`` the 1-based step::

        mu = b1 mu + (1 - b1) g
        nu = b2 nu + (1 - b2) g**2
        mu_hat = mu / (1 - b1**t)
        nu_hat = nu / (1 - b2**t)
        direction = mu_hat / (sqrt(nu_hat) + eps)

    ``mu`` and ``nu`` start at zero (:class:`AdamState`). ``eps`` is added to the
    bias-corrected ``sqrt(nu_hat)``, outside the square root, as in the paper's Algorithm
    1, PyTorch and optax; the bias corrections are folded into one scalar
    (``sqrt(1 - b2**t) / (1 - b1**t) * mu / (sqrt(nu) + eps sqrt(1 - b2**t))``, the same
    direction). Keras adds its ``epsilon`` to the uncorrected ``sqrt(nu)`` (the paper's
    "epsilon hat", just before its Section 2.1), so it acts as
    ``eps = epsilon / sqrt(1 - b2**t)`` would here. The first direction is
    ``g / (|g| + eps)``, about ``sign(g)``. Every 16 updates, moment entries below
    ``2**-100`` in magnitude are set to zero (see :func:`flush_tiny`). The descent step,
    ``-lr * direction``, is :func:`scale_by_learning_rate`'s; :func:`adam` chains the two.

    Args:
        b1: the decay of the first moment ``mu``; in [0, 1) (default 0.9).
        b2: the decay of the second moment ``nu``; in [0, 1) (default 0.999).
        eps: added to ``sqrt(nu_hat)`` so that the division is safe; a finite number > 0
            (default 1e-8, as PyTorch and optax; Keras uses 1e-7).

    Returns:
        An elementwise :class:`Transform` whose state is :class:`AdamState`.

    Raises:
        TypeError: an argument is not a real number.
        ValueError: ``b1`` or ``b2`` is not in [0, 1), or ``eps`` is not finite and > 0.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.chain(fnn.optim.scale_by_adam())
    >>> state = opt.init({"w": np.zeros(2, np.float32)})
    >>> state, params = opt.update(state, {"w": np.array([0.5, -1.0], np.float32)})
    >>> params["w"]  # the first direction: g / (|g| + eps)
    array([ 0.99999994, -0.99999994], dtype=float32)

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
        https://arxiv.org/abs/1412.6980
    """
    b1 = _checks.fraction(b1, "b1")
    b2 = _checks.fraction(b2, "b2")
    eps = _checks.positive(eps, "eps")

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


def trace(momentum: float, nesterov: bool = False) -> Transform[TraceState]:
    """Momentum as PyTorch's ``SGD`` (dampening 0) and optax's ``trace`` define it::

        v = momentum * v + g
        direction = v                     # heavy ball (Polyak)
        direction = g + momentum * v      # with nesterov (Sutskever et al.'s form)

    ``v`` starts at zero (:class:`TraceState`), so the first update is ``g`` (``(1 +
    momentum) g`` with ``nesterov``). The learning rate is applied after, to the
    direction (PyTorch's form; Keras keeps it inside ``v``, which differs only while the
    rate changes). Every 16 updates, entries of ``v`` below ``2**-100`` in magnitude are
    set to zero (see :func:`flush_tiny`).

    Args:
        momentum: the decay of the velocity ``v`` (optax's ``decay``); in [0, 1)
            (no default; 0 passes the gradient through).
        nesterov: use Nesterov's look-ahead ``g + momentum * v`` (default False).

    Returns:
        An elementwise :class:`Transform` whose state is :class:`TraceState`.

    Raises:
        TypeError: ``momentum`` is not a real number.
        ValueError: ``momentum`` is not in [0, 1).

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.chain(fnn.optim.trace(0.9))
    >>> state = opt.init({"w": np.zeros(2, np.float32)})
    >>> g = {"w": np.array([0.5, -1.0], np.float32)}
    >>> state, params = opt.update(state, g)  # v = g
    >>> state, params = opt.update(state, g)  # v = 0.9 g + g; the params g + 1.9 g
    >>> params["w"], state.inner[0].momentum
    (array([ 1.45, -2.9 ], dtype=float32), array([ 0.95, -1.9 ], dtype=float32))

    References:
        Polyak, "Some methods of speeding up the convergence of iteration methods", USSR
        Computational Mathematics and Mathematical Physics 4(5), 1964.

        Nesterov, "A method of solving a convex programming problem with convergence
        rate O(1/k^2)", Soviet Mathematics Doklady 27, 1983.

        Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and
        momentum in deep learning", ICML 2013,
        http://proceedings.mlr.press/v28/sutskever13.pdf
    """
    m = _checks.fraction(momentum, "momentum")

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


def scale_by_rms(rho: float = 0.99, eps: float = 1e-8) -> Transform[RmsState]:
    """RMSprop's direction as in PyTorch (Tieleman & Hinton, 2012)::

        nu = rho nu + (1 - rho) g**2
        direction = g / (sqrt(nu) + eps)

    ``nu`` starts at zero (:class:`RmsState`) and is not bias-corrected, so the first
    direction is ``g / (sqrt(1 - rho) |g| + eps)``, about ``10 sign(g)`` at ``rho=0.99``:
    under a steady gradient RMSprop's first steps are its largest. ``eps`` is outside the
    square root as in PyTorch and Keras; optax's ``scale_by_rms`` puts it inside
    (``eps_in_sqrt=True``) and decays with 0.9 by default. Every 16 updates, entries of
    ``nu`` below ``2**-100`` are set to zero (see :func:`flush_tiny`).

    Args:
        rho: the decay of the mean of squares ``nu`` (PyTorch's ``alpha``, optax's
            ``decay``); in [0, 1) (default 0.99, PyTorch's; Keras and optax use 0.9).
        eps: added to ``sqrt(nu)``; a finite number > 0 (default 1e-8).

    Returns:
        An elementwise :class:`Transform` whose state is :class:`RmsState`.

    Raises:
        TypeError: an argument is not a real number.
        ValueError: ``rho`` is not in [0, 1), or ``eps`` is not finite and > 0.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.chain(fnn.optim.scale_by_rms())
    >>> state = opt.init({"w": np.zeros(2, np.float32)})
    >>> state, params = opt.update(state, {"w": np.array([0.5, -1.0], np.float32)})
    >>> params["w"]  # g / (0.1 |g| + eps)
    array([ 9.999998, -9.999999], dtype=float32)

    References:
        Tieleman & Hinton, "Lecture 6.5 - RMSProp: Divide the gradient by a running
        average of its recent magnitude", COURSERA: Neural Networks for Machine
        Learning, 2012, https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf
    """
    rho = _checks.fraction(rho, "rho")
    eps = _checks.positive(eps, "eps")

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


def scale_by_adagrad(
    initial_accumulator_value: float = 0.0, eps: float = 1e-10
) -> Transform[AdagradState]:
    """Adagrad's direction (Duchi et al., 2011) as in PyTorch::

        G = G + g**2
        direction = g / (sqrt(G) + eps)

    ``G`` starts at ``initial_accumulator_value`` (:class:`AdagradState`) and only grows,
    so each entry's steps shrink like ``1 / sqrt(t)`` under a steady gradient. ``eps`` is
    outside the square root as in PyTorch; optax's ``scale_by_rss`` puts it inside.

    Args:
        initial_accumulator_value: where ``G`` starts; a finite number >= 0 (default 0,
            PyTorch's; optax and Keras start at 0.1).
        eps: added to ``sqrt(G)``; a finite number > 0 (default 1e-10, PyTorch's; optax
            and Keras use 1e-7).

    Returns:
        An elementwise :class:`Transform` whose state is :class:`AdagradState`.

    Raises:
        TypeError: an argument is not a real number.
        ValueError: ``initial_accumulator_value`` is negative or not finite, or ``eps``
            is not finite and > 0.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.chain(fnn.optim.scale_by_adagrad())
    >>> state = opt.init({"w": np.zeros(2, np.float32)})
    >>> g = {"w": np.array([0.5, -1.0], np.float32)}
    >>> state, params = opt.update(state, g)  # g / |g|
    >>> state, params = opt.update(state, g)  # plus g / (sqrt(2) |g|)
    >>> params["w"], state.inner[0].sum_of_squares
    (array([ 1.7071068, -1.7071068], dtype=float32), array([0.5, 2. ], dtype=float32))

    References:
        Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
        Stochastic Optimization", JMLR 12, 2011,
        https://jmlr.org/papers/v12/duchi11a.html
    """
    start = _checks.real(initial_accumulator_value, "initial_accumulator_value")
    if not (math.isfinite(start) and start >= 0):
        raise ValueError(f"initial_accumulator_value must be >= 0, got {start}")
    eps = _checks.positive(eps, "eps")

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


def scale_by_learning_rate(learning_rate: float | Schedule) -> Transform[EmptyState]:
    """The descent step: ``updates = -lr(t - 1) * updates``.

    ``lr`` is the schedule of ``learning_rate`` read at the number of updates made before
    this one (so ``lr(0)`` scales the first). Only the scalar factor of the updates is
    multiplied (see :class:`Updates`); no pass over the array. Every named optimizer ends
    with it, and :meth:`Optimizer.learning_rate` reads its schedule.

    Args:
        learning_rate: a finite float > 0, or a :data:`Schedule` (no default).

    Returns:
        An elementwise stateless :class:`Transform` carrying the schedule.

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a callable.
        ValueError: ``learning_rate`` is a float that is not finite and > 0; at an update,
            the schedule gave a rate that is not finite (the message names the step).

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.chain(fnn.optim.scale_by_learning_rate(fnn.optim.step_decay(0.1, 0.5, 1)))
    >>> state = opt.init({"w": np.array([1.0, 2.0], np.float32)})
    >>> g = {"w": np.array([0.5, -1.0], np.float32)}
    >>> state, params = opt.update(state, g)  # p - 0.1 g
    >>> state, params = opt.update(state, g)  # p - 0.05 g
    >>> params["w"], opt.learning_rate(state)
    (array([0.925    , 2.1499999], dtype=float32), 0.025)
    """
    schedule = as_schedule(learning_rate)

    def update(u: Updates, params: Any, step: int, layout: Layout) -> Updates:
        lr = float(schedule(step))
        if not math.isfinite(lr):
            raise ValueError(f"the learning-rate schedule gave {lr} at step {step}")
        return u.scaled(-lr)

    return stateless(update, schedule, "scale_by_learning_rate", elementwise=True)


def add_decayed_weights(rate: float, *, weights_only: bool = False) -> Transform[EmptyState]:
    """Weight decay: ``updates = updates + rate * p``.

    ``p`` are the params before the update. Placed after an update rule's direction and
    before :func:`scale_by_learning_rate` (as in :func:`adamw`) this is decoupled weight
    decay (Loshchilov & Hutter): the params shrink by ``lr * rate * p`` beside the rule's
    step, whatever the rule does to the gradient. Placed in front of the rule it is the
    gradient of an L2 penalty, which the rule then rescales (see :func:`add_l2`). The same
    as optax's ``add_decayed_weights``.

    Args:
        rate: the decay rate; a finite number >= 0 (0 makes the transform do nothing).
        weights_only: decay only the leaves marked as weights, those in fields declared
            ``metadata=fnn.tree.WEIGHT`` such as the ``w`` of dense layers, leaving
            biases alone (keyword only; default False: every leaf). Leaves of plain
            dicts, lists and tuples are never weights, so with ``weights_only`` a tree
            of those is not decayed at all.

    Returns:
        A stateless :class:`Transform`; it reads the params, so it is elementwise only
        when ``rate`` is 0.

    Raises:
        TypeError: ``rate`` is not a real number.
        ValueError: ``rate`` is negative or not finite (the message calls it the "weight
            decay rate").

    >>> import fnn, numpy as np
    >>> p = fnn.nn.DenseParams(np.array([[1.0, 2.0]], np.float32), np.array([1.0], np.float32))
    >>> zero = fnn.tree.map(np.zeros_like, p)
    >>> opt = fnn.optim.chain(fnn.optim.add_decayed_weights(0.1), fnn.optim.sgd(1.0))
    >>> opt.update(opt.init(p), zero)[1]  # p - 1.0 * (0 + 0.1 p)
    DenseParams(w=array([[0.9, 1.8]], dtype=float32), b=array([0.9], dtype=float32))
    >>> opt = fnn.optim.chain(
    ...     fnn.optim.add_decayed_weights(0.1, weights_only=True), fnn.optim.sgd(1.0))
    >>> opt.update(opt.init(p), zero)[1]  # the bias b is not decayed
    DenseParams(w=array([[0.9, 1.8]], dtype=float32), b=array([1.], dtype=float32))

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019,
        https://arxiv.org/abs/1711.05101
    """
    return _decayed(rate, weights_only, "add_decayed_weights", "weight decay rate")


def _decayed(rate: float, weights_only: bool, name: str, what: str) -> Transform[EmptyState]:
    """``updates + rate * p`` (on the weights only with ``weights_only``), named ``name``;
    ``what`` names ``rate`` in the error for a negative or non-finite one."""
    r = _checks.real(rate, what)
    if not (math.isfinite(r) and r >= 0):
        raise ValueError(f"{what} must be a finite number >= 0, got {rate}")

    def update(u: Updates, params: Any, step: int, layout: Layout) -> Updates:
        if r == 0.0:
            return u
        leaves, treedef = _tree.flatten(params)
        if treedef != layout.treedef:
            layout.ravel(params, "params")  # raises, naming where they differ
        value = u.value()
        out = value.copy() if value is u.array else value  # never write into u.array
        # leaf by leaf from the params themselves (no flat copy of them): r p into a
        # scratch buffer, added to the updates
        o = layout.offsets
        decayed = [i for i, w in enumerate(layout.weights) if w or not weights_only]
        scratch = np.empty(max((o[i + 1] - o[i] for i in decayed), default=0), layout.dtype)
        for i in decayed:
            part = scratch[: o[i + 1] - o[i]]
            np.multiply(leaves[i].reshape(-1), r, out=part)
            out[o[i] : o[i + 1]] += part
        return Updates(out)

    return stateless(update, name=name, elementwise=r == 0.0)


def add_l2(lam: float, *, weights_only: bool = True) -> Transform[EmptyState]:
    """Add the gradient of the L2 penalty ``(lam / 2) * sum(w**2)``, ``lam * w``, to the
    gradient: ``updates = updates + lam * w``.

    Place it in front of the update rule (``chain(add_l2(0.01), sgd(0.1))``): the rule
    then sees the penalised loss's gradient, as with PyTorch's ``weight_decay`` argument
    of ``SGD``, ``Adam``, ``Adagrad`` and ``RMSprop``, which is
    ``add_l2(weight_decay, weights_only=False)`` in front of the rule. For SGD this is
    weight decay; for adaptive rules (Adam, RMSprop, Adagrad) it is not, since they
    rescale it (Loshchilov & Hutter): use :func:`adamw` or :func:`add_decayed_weights`
    after the rule for decoupled decay. :func:`add_decayed_weights` under another name
    and default.

    Args:
        lam: the penalty's strength; a finite number >= 0.
        weights_only: act only on the leaves marked as weights (fields declared
            ``metadata=fnn.tree.WEIGHT``, such as the ``w`` of dense layers), as
            :func:`fnn.losses.l2_penalty` does (keyword only; default True). Leaves of
            plain dicts, lists and tuples are never weights: for such a tree pass
            ``weights_only=False``, or the penalty adds nothing.

    Returns:
        A stateless :class:`Transform` (not elementwise unless ``lam`` is 0).

    Raises:
        TypeError: ``lam`` is not a real number.
        ValueError: ``lam`` is negative or not finite.

    >>> import fnn, numpy as np
    >>> p = fnn.nn.DenseParams(np.array([[1.0, 2.0]], np.float32), np.array([1.0], np.float32))
    >>> zero = fnn.tree.map(np.zeros_like, p)
    >>> opt = fnn.optim.chain(fnn.optim.add_l2(0.1), fnn.optim.sgd(1.0))
    >>> opt.update(opt.init(p), zero)[1]  # w - 1.0 * 0.1 w; the bias left alone
    DenseParams(w=array([[0.9, 1.8]], dtype=float32), b=array([1.], dtype=float32))

    References:
        Krogh & Hertz, "A Simple Weight Decay Can Improve Generalization", Advances in
        Neural Information Processing Systems 4 (NIPS 1991), 1992.

        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019 (L2 and
        weight decay differ for adaptive rules), https://arxiv.org/abs/1711.05101
    """
    return _decayed(lam, weights_only, "add_l2", "the L2 penalty's lam")


def clip_by_global_norm(max_norm: float) -> Transform[EmptyState]:
    """Clip the gradient's global norm: ``updates = g * min(1, max_norm / ||g||)``.

    ``||g|| = sqrt(sum(g**2))`` is the Euclidean norm over all leaves together, so the
    direction is kept and only the length is capped (Pascanu et al.). The same rule as
    optax's ``clip_by_global_norm``; PyTorch's ``clip_grad_norm_`` divides by
    ``||g|| + 1e-6``, leaving the norm just under ``max_norm``. Only the scalar factor of
    the updates changes. Put it first in a chain to clip the raw gradient.

    Args:
        max_norm: the largest norm let through; a finite number > 0 (no default).

    Returns:
        A stateless :class:`Transform`; not elementwise (the norm reads every entry).

    Raises:
        TypeError: ``max_norm`` is not a real number.
        ValueError: ``max_norm`` is not finite and > 0.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0))
    >>> state = opt.init({"w": np.zeros(2, np.float32)})
    >>> state, params = opt.update(state, {"w": np.array([3.0, -4.0], np.float32)})
    >>> params["w"]  # norm 5 scaled to norm 1
    array([ 0.6, -0.8], dtype=float32)

    References:
        Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural
        networks", ICML 2013, https://arxiv.org/abs/1211.5063
    """
    limit = _checks.positive(max_norm, "max_norm")

    def update(u: Updates, params: Any, step: int, layout: Layout) -> Updates:
        norm = abs(u.scale) * _tree.global_norm(u.array)  # float64 where float32 overflows
        if norm > limit:
            return u.scaled(limit / norm)
        return u

    return stateless(update, name="clip_by_global_norm")


def clip(max_abs: float) -> Transform[EmptyState]:
    """Clip every gradient entry: ``updates = clip(g, -max_abs, max_abs)``.

    Entry by entry, so unlike :func:`clip_by_global_norm` it can turn the direction. As
    optax's ``clip`` and PyTorch's ``clip_grad_value_``. NaN entries stay NaN.

    Args:
        max_abs: the largest magnitude let through; a finite number > 0 (no default).

    Returns:
        An elementwise stateless :class:`Transform`.

    Raises:
        TypeError: ``max_abs`` is not a real number.
        ValueError: ``max_abs`` is not finite and > 0.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.chain(fnn.optim.clip(1.0))
    >>> state = opt.init({"w": np.zeros(3, np.float32)})
    >>> state, params = opt.update(state, {"w": np.array([0.5, -3.0, 2.0], np.float32)})
    >>> params["w"]
    array([ 0.5, -1. ,  1. ], dtype=float32)

    References:
        Mikolov, "Statistical Language Models Based on Neural Networks", PhD thesis, Brno
        University of Technology, 2012 (element-wise clipping).

        Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural
        networks", ICML 2013, https://arxiv.org/abs/1211.5063
    """
    limit = _checks.positive(max_abs, "max_abs")

    def update(u: Updates, params: Any, step: int, layout: Layout) -> Updates:
        if u.scale == 0.0:
            return u
        bound = limit / abs(u.scale)
        return Updates(np.clip(u.array, -bound, bound), u.scale)

    return stateless(update, name="clip", elementwise=True)


def _flag_of(path: str, leaf: Any) -> bool:
    """A freeze mask's leaf as one flag for its whole array: a bool (or a one-entry
    value), else a TypeError naming the leaf's path."""
    if isinstance(leaf, (bool, np.bool_)) or np.size(leaf) == 1:
        return bool(np.asarray(leaf).reshape(()))
    raise TypeError(
        f"freeze's mask has one flag (a bool) per params array, got {np.shape(leaf)} entries "
        f"at {path or 'the root'}: freeze whole arrays; to hold some entries of an array "
        "fixed, zero their updates in a transform of your own"
    )


def freeze(mask: Any) -> Transform[EmptyState]:
    """Zero the updates of the leaves where ``mask`` (a tree of bools shaped like the
    params) is true. Place it last in a chain so frozen leaves do not move at all.

    ``updates[leaf] = 0`` for each leaf whose flag is true. Transforms before it still
    see the frozen leaves' gradients (Adam's moments of a frozen leaf keep moving); a
    transform after it may move them again (weight decay would). Like optax's
    ``set_to_zero`` under a mask, or much as ``requires_grad=False`` in PyTorch.

    Args:
        mask: a tree of the params' structure with one flag per leaf (a bool, or anything
            ``bool()`` takes: not an array of several entries), true for the leaves to
            freeze.

    Returns:
        A :class:`Transform` without moments (state :class:`EmptyState`); elementwise
        when it freezes nothing.

    Raises:
        ValueError: at ``init``, the mask's structure does not match the params' (the
            message says where).

    >>> import fnn
    >>> params = fnn.nn.mlp((4, 2)).init(fnn.random.key(0), (3,))
    >>> first_layer_frozen = (None, fnn.tree.map(lambda leaf: True, params[1]),
    ...                       None, fnn.tree.map(lambda leaf: False, params[3]))
    >>> opt = fnn.optim.chain(fnn.optim.sgd(0.1), fnn.optim.freeze(first_layer_frozen))
    >>> state, new_params = opt.update(opt.init(params), params)
    >>> fnn.tree.equal(new_params[1], params[1]), fnn.tree.equal(new_params[3], params[3])
    (True, False)
    """
    flags_tree = mask
    flags = [
        _flag_of(path, f)
        for path, f in zip(_tree.leaf_paths(_tree.structure(mask)), _tree.leaves(mask))
    ]
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
