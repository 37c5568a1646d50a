"""The named optimizers, each a short chain of transforms.

Defaults follow PyTorch's ``torch.optim`` (where PyTorch, optax and Keras disagree,
the docstring says so). Each rule is written for the flat params ``p`` and gradient ``g``
(the whole tree raveled, every operation entrywise), with ``t`` the 1-based number of the
update being made and ``lr = learning_rate(t - 1)``. The examples make one or two updates
of ``p = [1, 2]`` with the gradient ``g = [0.5, -1]``.

>>> import fnn, numpy as np
>>> opt = fnn.optim.sgd(0.1)
>>> state = opt.init({"w": np.array([1.0, 2.0], np.float32)})
>>> state, params = opt.update(state, {"w": np.array([0.5, -1.0], np.float32)})
>>> params["w"], state.step  # p - 0.1 g
(array([0.95, 2.1 ], dtype=float32), 1)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from .. import _options
from .._registry import Registry
from ._base import EmptyState, Optimizer, chain
from ._schedules import Schedule
from ._transforms import (
    AdagradState,
    AdamState,
    RmsState,
    TraceState,
    add_decayed_weights,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    trace,
)

F = TypeVar("F", bound=Callable[..., Optimizer[Any]])

SGDMoments = tuple[EmptyState] | tuple[TraceState, EmptyState]
"""The moments of :func:`sgd` (and :func:`momentum`, :func:`nesterov`): the learning rate's
alone without momentum, a velocity (:class:`TraceState`) first with it."""

RMSpropMoments = tuple[RmsState, EmptyState] | tuple[RmsState, TraceState, EmptyState]
"""The moments of :func:`rmsprop`, without and with momentum."""

_OPTIMIZERS: Registry[Callable[..., Optimizer[Any]]] = Registry("optimizer")

OPTIMIZERS: Mapping[str, Callable[..., Optimizer[Any]]] = _OPTIMIZERS.view
"""Every registered optimizer constructor by name (a read-only live view)."""

_OPTIONS: dict[str, tuple[_options.Option, ...]] = {}
"""Each registered optimizer's options, read once when it registers: its annotations need
not resolve later (a function defined in a doctest, whose globals doctest clears)."""


def register(name: str) -> Callable[[F], F]:
    """Register an optimizer constructor under ``name`` (a decorator), as layers are
    registered with :func:`fnn.nn.register`: ``fnn train --optimizer name`` then finds
    it. Its first parameter is the learning rate (a float or a schedule); its other
    parameters, each with a default and annotated ``bool``, ``int``, ``float``, ``str``,
    ``tuple[int, ...]`` or ``tuple[str, ...]``, become options of ``fnn train``
    (``--b1``, ``--weight-decay``), with the help lines of the docstring's ``Args:``. An
    option cannot be named like one of ``fnn train``'s own flags (``seed``, ``epochs``,
    ``clip``, ``out``, ...; the message lists them) or like a registered model recipe's
    option (the two would share a run's ``config`` entry), nor start with ``_``, nor
    give a flag another option has (``no_nesterov`` beside ``sgd``'s bool ``nesterov``:
    both ``--no-nesterov``).

    Args:
        name: the optimizer's name in the command and in run records.

    Returns:
        A decorator that registers the constructor and returns it unchanged.

    Raises:
        ValueError: a bad name, one taken by another constructor, or an option named
            like a flag of ``fnn train`` or a recipe's option, or whose flag another
            option has.
        TypeError: a constructor without parameters, or an option without a default or
            of another type.

    >>> import fnn
    >>> @fnn.optim.register("sgd_half")
    ... def sgd_half(learning_rate: float = 0.01) -> fnn.optim.Optimizer:
    ...     return fnn.optim.sgd(learning_rate / 2)
    >>> fnn.optim.optimizer("sgd_half") is sgd_half
    True
    """
    _OPTIMIZERS.check_name(name)

    def decorate(make: F) -> F:
        options = _options.options_after_first(make, "the learning rate")
        optimizers = {f"optimizer {k!r}": optimizer_options(k) for k in OPTIMIZERS}
        _options.check_names(options, f"optimizer {name!r}", optimizers, _recipe_options())
        added = _OPTIMIZERS.add(name, make)
        _OPTIONS[name] = options
        return added  # type: ignore[return-value]

    return decorate


def optimizer_options(name: str) -> tuple[_options.Option, ...]:
    """The options of the optimizer registered as ``name``: its constructor's parameters
    after the learning rate, as read when it registered (what ``fnn train --optimizer
    name`` takes as flags).

    Args:
        name: a registered optimizer's name (:data:`OPTIMIZERS`).

    Returns:
        Its options, in its signature's order: each a name, a kind, a default and a help
        line.

    Raises:
        ValueError: no such optimizer.

    >>> [o.name for o in optimizer_options("adam")]
    ['b1', 'b2', 'eps']
    """
    make = optimizer(name)
    found = _OPTIONS.get(name)
    return _options.options_after_first(make, "the learning rate") if found is None else found


def _recipe_options() -> dict[str, tuple[_options.Option, ...]]:
    """The options of the registered model recipes, by ``"recipe 'name'"``: none before
    :mod:`fnn.recipes` (which imports this module, and registers its recipes as it is
    imported) is imported."""
    recipes = getattr(sys.modules.get("fnn.recipes"), "RECIPES", {})
    return {f"recipe {k!r}": r.options for k, r in recipes.items()}


def optimizer(name: str) -> Callable[..., Optimizer[Any]]:
    """The optimizer constructor registered as ``name`` (:data:`OPTIMIZERS`).

    Args:
        name: a registered name: ``"adam"``, ``"adamw"``, ``"sgd"``, ``"momentum"``,
            ``"nesterov"``, ``"adagrad"``, ``"rmsprop"``, or one added with
            :func:`register`.

    Returns:
        The constructor, e.g. :func:`adam`.

    Raises:
        ValueError: no such optimizer (the message lists the registered ones).

    >>> optimizer("adam") is adam
    True
    """
    return _OPTIMIZERS.get(name)


@register("sgd")
def sgd(
    learning_rate: float | Schedule = 0.01, momentum: float = 0.0, nesterov: bool = False
) -> Optimizer[SGDMoments]:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    The rule::

        p = p - lr * g                       # momentum = 0
        v = momentum * v + g                 # momentum > 0; v starts at zero
        p = p - lr * v                       # heavy ball
        p = p - lr * (g + momentum * v)      # with nesterov, after the same v

    PyTorch's form (dampening 0): the learning rate multiplies ``v`` rather than being
    kept inside it as Keras does, which differs only while ``lr`` changes. It is
    ``chain(trace(momentum, nesterov), scale_by_learning_rate(learning_rate))``, without
    :func:`trace` when ``momentum`` is 0.

    For the classic "SGD with momentum and decay" use
    ``sgd(inverse_time_decay(lr, decay), momentum=0.9)``. PyTorch's ``weight_decay``
    argument is ``chain(add_l2(weight_decay, weights_only=False), sgd(...))``.

    Args:
        learning_rate: a finite float > 0 or a :data:`Schedule` (default 0.01, Keras'
            default; PyTorch's ``SGD`` long had none and now uses 1e-3, and optax's
            ``sgd`` has none).
        momentum: the decay of the velocity ``v``; in [0, 1) (default 0: no momentum,
            no velocity kept in the state).
        nesterov: use Nesterov's look-ahead ``g + momentum * v`` (default False); needs
            ``momentum > 0``.

    Returns:
        An :class:`Optimizer`.

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a callable, or ``momentum``
            is not a real number.
        ValueError: ``learning_rate`` is a float that is not finite and > 0, ``momentum``
            is not in [0, 1), or ``nesterov`` is asked for without momentum.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.sgd(0.1, momentum=0.9)
    >>> state = opt.init({"w": np.array([1.0, 2.0], np.float32)})
    >>> g = {"w": np.array([0.5, -1.0], np.float32)}
    >>> state, params = opt.update(state, g)  # v = g: p - 0.1 g
    >>> state, params = opt.update(state, g)  # v = 1.9 g: p - 0.19 g
    >>> params["w"]
    array([0.855, 2.29 ], dtype=float32)

    References:
        Robbins & Monro, "A Stochastic Approximation Method", The Annals of Mathematical
        Statistics 22(3), 1951.

        Polyak, "Some methods of speeding up the convergence of iteration methods", USSR
        Computational Mathematics and Mathematical Physics 4(5), 1964.

        Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and
        momentum in deep learning", ICML 2013 (momentum and Nesterov's form for deep
        networks), http://proceedings.mlr.press/v28/sutskever13.pdf
    """
    if nesterov and momentum == 0.0:
        raise ValueError("nesterov momentum needs momentum > 0")
    rate = scale_by_learning_rate(learning_rate)
    opt = chain(trace(momentum, nesterov), rate) if momentum else chain(rate)
    return cast(Optimizer[SGDMoments], opt)


@register("adagrad")
def adagrad(
    learning_rate: float | Schedule = 0.01,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
) -> Optimizer[tuple[AdagradState, EmptyState]]:
    """Adagrad: each entry's step divided by the root of its summed squared gradients.

    The rule::

        G = G + g**2                         # G starts at initial_accumulator_value
        p = p - lr * g / (sqrt(G) + eps)

    PyTorch's defaults (optax and Keras start ``G`` at 0.1 and use ``eps=1e-7``; optax
    also puts ``eps`` inside the square root). PyTorch's ``lr_decay`` is
    ``adagrad(inverse_time_decay(lr, lr_decay))``. It is
    ``chain(scale_by_adagrad(initial_accumulator_value, eps),
    scale_by_learning_rate(learning_rate))``.

    Args:
        learning_rate: a finite float > 0 or a :data:`Schedule` (default 0.01, PyTorch's;
            Keras uses 0.001).
        initial_accumulator_value: where ``G`` starts; a finite number >= 0 (default 0).
        eps: added to ``sqrt(G)``; a finite number > 0 (default 1e-10).

    Returns:
        An :class:`Optimizer`.

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a callable, or another
            argument is not a real number.
        ValueError: ``learning_rate`` is a float that is not finite and > 0,
            ``initial_accumulator_value`` is negative or not finite, or ``eps`` is not
            finite and > 0.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.adagrad(0.1)
    >>> state = opt.init({"w": np.array([1.0, 2.0], np.float32)})
    >>> g = {"w": np.array([0.5, -1.0], np.float32)}
    >>> state, params = opt.update(state, g)  # p - 0.1 sign(g)
    >>> state, params = opt.update(state, g)  # then p - 0.1 sign(g) / sqrt(2)
    >>> params["w"]
    array([0.8292893, 2.1707106], dtype=float32)

    References:
        Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
        Stochastic Optimization", JMLR 12, 2011,
        https://jmlr.org/papers/v12/duchi11a.html
    """
    return chain(
        scale_by_adagrad(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate)
    )


@register("rmsprop")
def rmsprop(
    learning_rate: float | Schedule = 0.01,
    rho: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
) -> Optimizer[RMSpropMoments]:
    """RMSprop: each entry's step divided by the root of a running mean of its squares.

    The rule::

        nu = rho nu + (1 - rho) g**2          # nu starts at zero
        p = p - lr * g / (sqrt(nu) + eps)     # momentum = 0
        b = momentum * b + g / (sqrt(nu) + eps)
        p = p - lr * b                        # momentum > 0; b starts at zero

    PyTorch's defaults and form (not centered; ``eps`` outside the square root); Keras
    and optax use ``rho=0.9``, Keras ``lr=0.001`` and ``epsilon=1e-7``, and optax puts
    ``eps`` inside the square root. ``nu`` is not bias-corrected, so the first steps
    are the largest: about ``lr / sqrt(1 - rho)`` per entry, ``10 lr`` at the default
    ``rho``. It is ``chain(scale_by_rms(rho, eps), trace(momentum),
    scale_by_learning_rate(learning_rate))``, without :func:`trace` when ``momentum`` is
    0.

    Args:
        learning_rate: a finite float > 0 or a :data:`Schedule` (default 0.01).
        rho: the decay of the mean of squares ``nu`` (PyTorch's ``alpha``); in [0, 1)
            (default 0.99).
        eps: added to ``sqrt(nu)``; a finite number > 0 (default 1e-8).
        momentum: the decay of the momentum buffer ``b``; in [0, 1) (default 0: none).

    Returns:
        An :class:`Optimizer`.

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a callable, or another
            argument is not a real number.
        ValueError: ``learning_rate`` is a float that is not finite and > 0, ``rho`` or
            ``momentum`` is not in [0, 1), or ``eps`` is not finite and > 0.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.rmsprop(0.01)
    >>> state = opt.init({"w": np.array([1.0, 2.0], np.float32)})
    >>> state, params = opt.update(state, {"w": np.array([0.5, -1.0], np.float32)})
    >>> params["w"]  # p - 0.01 g / (0.1 |g|): a step of 10 lr
    array([0.90000004, 2.1       ], dtype=float32)

    References:
        Tieleman & Hinton, "Lecture 6.5 - RMSProp: Divide the gradient by a running
        average of its recent magnitude", COURSERA: Neural Networks for Machine
        Learning, 2012, https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf
    """
    rms, rate = scale_by_rms(rho, eps), scale_by_learning_rate(learning_rate)
    opt = chain(rms, trace(momentum), rate) if momentum else chain(rms, rate)
    return cast(Optimizer[RMSpropMoments], opt)


@register("adam")
def adam(
    learning_rate: float | Schedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> Optimizer[tuple[AdamState, EmptyState]]:
    """Adam: momentum divided by the root of a running mean of squares, both
    bias-corrected.

    The rule (Algorithm 1 of the paper)::

        mu = b1 mu + (1 - b1) g               # mu and nu start at zero
        nu = b2 nu + (1 - b2) g**2
        mu_hat = mu / (1 - b1**t)
        nu_hat = nu / (1 - b2**t)
        p = p - lr * mu_hat / (sqrt(nu_hat) + eps)

    The defaults of the paper, PyTorch, optax and Keras (Keras uses ``eps=1e-7``, and
    adds it before the bias correction; see :func:`scale_by_adam`). The first step is
    about ``lr`` per entry, ``lr * g / (|g| + eps)``. It is
    ``chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(learning_rate))``.
    PyTorch's ``weight_decay`` argument of ``Adam`` is an L2 penalty,
    ``chain(add_l2(weight_decay, weights_only=False), adam(...))``; for decoupled decay
    use :func:`adamw`.

    Args:
        learning_rate: a finite float > 0 or a :data:`Schedule` (default 1e-3).
        b1: the decay of the first moment ``mu``; in [0, 1) (default 0.9).
        b2: the decay of the second moment ``nu``; in [0, 1) (default 0.999).
        eps: added to ``sqrt(nu_hat)``; a finite number > 0 (default 1e-8).

    Returns:
        An :class:`Optimizer`.

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a callable, or another
            argument is not a real number.
        ValueError: ``learning_rate`` is a float that is not finite and > 0, ``b1`` or
            ``b2`` is not in [0, 1), or ``eps`` is not finite and > 0.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.adam(0.1)
    >>> state = opt.init({"w": np.array([1.0, 2.0], np.float32)})
    >>> g = {"w": np.array([0.5, -1.0], np.float32)}
    >>> state, params = opt.update(state, g)  # p - 0.1 g / (|g| + eps)
    >>> params["w"]
    array([0.90000004, 2.1       ], dtype=float32)
    >>> state, params = opt.update(state, g)  # the same gradient: the same step
    >>> params["w"]
    array([0.8      , 2.1999998], dtype=float32)

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
        https://arxiv.org/abs/1412.6980
    """
    return chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(learning_rate))


@register("adamw")
def adamw(
    learning_rate: float | Schedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    *,
    weights_only: bool = False,
) -> Optimizer[tuple[AdamState, EmptyState, EmptyState]]:
    """AdamW (Loshchilov & Hutter, 2019): Adam with weight decay decoupled from the
    gradient.

    The rule, with ``mu_hat`` and ``nu_hat`` as in :func:`adam`::

        p = p - lr * (mu_hat / (sqrt(nu_hat) + eps) + weight_decay * p)

    ``p`` on the right is the params before the update, so the decay does not pass
    through Adam's rescaling (as an L2 penalty in :func:`adam` would). PyTorch's
    defaults (``weight_decay=0.01``, every leaf decayed; optax uses 1e-4). As in PyTorch
    and optax the decay is multiplied by the learning rate, schedule included: the
    paper's ``eta_t * lambda`` (with its ``lambda`` not multiplied by Adam's step size
    ``alpha``) is ``lr * weight_decay`` here. It is ``chain(scale_by_adam(b1, b2, eps),
    add_decayed_weights(weight_decay, weights_only=weights_only),
    scale_by_learning_rate(learning_rate))``.

    Args:
        learning_rate: a finite float > 0 or a :data:`Schedule` (default 1e-3).
        b1: the decay of the first moment; in [0, 1) (default 0.9).
        b2: the decay of the second moment; in [0, 1) (default 0.999).
        eps: added to ``sqrt(nu_hat)``; a finite number > 0 (default 1e-8).
        weight_decay: the decay rate; a finite number >= 0 (default 0.01; 0 gives
            :func:`adam`).
        weights_only: decay only the leaves marked as weights (fields declared
            ``metadata=fnn.tree.WEIGHT``, such as the ``w`` of dense layers), not
            biases (keyword only; default False: every leaf, as PyTorch does within a
            parameter group). Leaves of plain dicts, lists and tuples are never weights.

    Returns:
        An :class:`Optimizer`.

    Raises:
        TypeError: ``learning_rate`` is neither a number nor a callable, or another
            argument is not a real number.
        ValueError: ``learning_rate`` is a float that is not finite and > 0, ``b1`` or
            ``b2`` is not in [0, 1), ``eps`` is not finite and > 0, or ``weight_decay``
            is negative or not finite.

    >>> import fnn, numpy as np
    >>> opt = fnn.optim.adamw(0.1, weight_decay=0.1)
    >>> state = opt.init({"w": np.array([1.0, 2.0], np.float32)})
    >>> state, params = opt.update(state, {"w": np.array([0.5, -1.0], np.float32)})
    >>> params["w"]  # p - 0.1 (sign(g) + 0.1 p)
    array([0.89, 2.08], dtype=float32)

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019,
        https://arxiv.org/abs/1711.05101

        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
        https://arxiv.org/abs/1412.6980
    """
    return chain(
        scale_by_adam(b1, b2, eps),
        add_decayed_weights(weight_decay, weights_only=weights_only),
        scale_by_learning_rate(learning_rate),
    )


@register("momentum")
def momentum(
    learning_rate: float | Schedule = 0.01, momentum: float = 0.9, nesterov: bool = False
) -> Optimizer[SGDMoments]:
    """SGD with heavy-ball momentum, 0.9 by default: :func:`sgd` with ``momentum`` (what
    ``fnn train --optimizer momentum`` trains with).

    ``v = momentum * v + g``, ``p = p - lr * v`` (with ``nesterov``,
    ``p = p - lr * (g + momentum * v)``).

    Args:
        learning_rate: a float > 0 or a schedule.
        momentum: the momentum coefficient, in ``[0, 1)``.
        nesterov: Nesterov's momentum instead of the heavy ball.

    Returns:
        The :class:`Optimizer` ``sgd(learning_rate, momentum, nesterov)``.

    Raises:
        ValueError: as :func:`sgd`.

    >>> import numpy as np
    >>> opt = momentum(0.1)
    >>> state = opt.init({"w": np.array([1.0, 2.0], np.float32)})
    >>> for _ in range(2):
    ...     state, params = opt.update(state, {"w": np.array([0.5, -1.0], np.float32)})
    >>> [round(float(v), 4) for v in params["w"]]  # v = g, then 1.9 g
    [0.855, 2.29]

    References:
        Polyak, 1964, "Some methods of speeding up the convergence of iteration methods".
    """
    return sgd(learning_rate, momentum, nesterov)


@register("nesterov")
def nesterov(
    learning_rate: float | Schedule = 0.01, momentum: float = 0.9
) -> Optimizer[SGDMoments]:
    """SGD with Nesterov momentum, 0.9 by default: :func:`sgd` with ``momentum`` and
    ``nesterov=True``.

    ``v = momentum * v + g``, ``p = p - lr * (g + momentum * v)``.

    Args:
        learning_rate: a float > 0 or a schedule.
        momentum: the momentum coefficient, in ``(0, 1)``.

    Returns:
        The :class:`Optimizer` ``sgd(learning_rate, momentum, nesterov=True)``.

    Raises:
        ValueError: as :func:`sgd` (``momentum`` 0 is refused).

    >>> import numpy as np
    >>> opt = nesterov(0.1)
    >>> state = opt.init({"w": np.array([1.0, 2.0], np.float32)})
    >>> state, params = opt.update(state, {"w": np.array([0.5, -1.0], np.float32)})
    >>> [round(float(v), 4) for v in params["w"]]  # p - 0.1 (g + 0.9 g)
    [0.905, 2.19]

    References:
        Sutskever, Martens, Dahl and Hinton, 2013, "On the importance of initialization
        and momentum in deep learning".
    """
    return sgd(learning_rate, momentum, nesterov=True)
