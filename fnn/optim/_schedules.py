"""Learning-rate schedules: pure functions ``schedule(step) -> learning rate``.

``step`` counts the updates made before the one the rate is for, so ``schedule(0)`` is
the first update's rate. Every optimizer accepts a float or a schedule, and any Python
function of the step is a schedule: the ones here are only the common shapes.

>>> s = inverse_time_decay(0.1, decay=0.5)
>>> [round(s(t), 4) for t in range(3)]
[0.1, 0.0667, 0.05]

>>> import fnn, numpy as np
>>> opt = fnn.optim.sgd(lambda t: 0.1 / (t + 1))  # a schedule of one's own
>>> state = opt.init({"w": np.ones(1, np.float32)})
>>> state, params = opt.update(state, {"w": np.ones(1, np.float32)})
>>> params["w"], opt.learning_rate(state)  # 1 - 0.1 * 1, and 0.1 / 2 next
(array([0.9], dtype=float32), 0.05)
"""

from __future__ import annotations

import bisect
import itertools
import math
import numbers
from collections.abc import Callable, Sequence

from .. import _checks

Schedule = Callable[[int], float]
"""``schedule(step) -> learning rate``, a pure function of the update count.

``step`` is an int >= 0, the number of updates made before the one the rate is for
(``schedule(0)`` is the first update's rate); the result is a float. A schedule must give
the same rate for the same step every time (saved training states resume by step), and
a finite one: :func:`scale_by_learning_rate` raises a ValueError naming the step where a
schedule gives NaN or an infinity. Nothing else is checked: a schedule may reach 0 (the
update then leaves the params where they are) and even go negative (an ascent step).
Any ``Callable[[int], float]`` is one; the functions of this module build the common
shapes, and the module docstring shows one written by hand.
"""


def _finite(value: float, what: str) -> float:
    number = _checks.real(value, what)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {value}")
    return number


def _positive_steps(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be an int >= 1, got {value!r}")
    return value


def constant(value: float) -> Schedule:
    """A constant learning rate: ``lr(t) = value``.

    A float given as a learning rate becomes this schedule (see :func:`as_schedule`,
    which also requires it to be > 0; ``constant`` itself takes any finite value).

    Args:
        value: the rate at every step; a finite number.

    Returns:
        The :data:`Schedule` ``t -> value``.

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: ``value`` is NaN or infinite.

    >>> s = constant(0.1)
    >>> s(0), s(1), s(10**6)
    (0.1, 0.1, 0.1)
    """
    lr = _finite(value, "learning rate")

    def schedule(step: int) -> float:
        return lr

    return schedule


def inverse_time_decay(value: float, decay: float) -> Schedule:
    """Inverse-time decay: ``lr(t) = value / (1 + decay * t)``.

    The "decay" of the classic from-scratch optimizers (and of Keras' legacy
    ``SGD(decay=...)``, which applies it per update as here): the rate halves after
    ``1 / decay`` updates and falls like ``1 / t`` from then on. TensorFlow's
    ``InverseTimeDecay(value, decay_steps, decay_rate)`` is
    ``inverse_time_decay(value, decay_rate / decay_steps)``.

    Args:
        value: the first update's rate, ``lr(0)``; a finite number.
        decay: how fast the rate falls, per update; a finite number >= 0 (0 gives the
            constant ``value``).

    Returns:
        The :data:`Schedule` ``t -> value / (1 + decay * t)``.

    Raises:
        TypeError: ``value`` or ``decay`` is not a real number.
        ValueError: either is not finite, or ``decay < 0``.

    >>> s = inverse_time_decay(0.1, decay=0.5)
    >>> [s(t) for t in range(4)]
    [0.1, 0.06666666666666667, 0.05, 0.04]
    """
    lr = _finite(value, "learning rate")
    k = _finite(decay, "decay")
    if k < 0:
        raise ValueError(f"decay must be >= 0, got {decay}")

    def schedule(step: int) -> float:
        return lr / (1.0 + k * step)

    return schedule


def exponential_decay(
    value: float, rate: float, steps: int, *, staircase: bool = False
) -> Schedule:
    """Exponential decay: ``lr(t) = value * rate ** (t / steps)``, or
    ``value * rate ** (t // steps)`` with ``staircase``.

    The rate is multiplied by ``rate`` every ``steps`` updates: smoothly, or all at once at
    each multiple of ``steps`` with ``staircase`` (then it is :func:`step_decay`). The
    formula of optax's ``exponential_decay`` and TensorFlow's ``ExponentialDecay``, with
    the arguments in another order (optax: ``init_value, transition_steps,
    decay_rate``); PyTorch's ``ExponentialLR(gamma)`` is ``exponential_decay(value,
    gamma, 1)``.

    Args:
        value: the first update's rate, ``lr(0)``; a finite number.
        rate: the factor applied every ``steps`` updates; a finite number > 0 (< 1 to
            decay; > 1 grows the rate, until ``rate ** (t / steps)`` overflows a float and
            the schedule raises OverflowError).
        steps: the number of updates over which the rate is multiplied by ``rate``; a
            Python int >= 1.
        staircase: drop the rate at each multiple of ``steps`` only (keyword only;
            default False: a smooth decay).

    Returns:
        The :data:`Schedule`.

    Raises:
        TypeError: ``value`` or ``rate`` is not a real number.
        ValueError: ``value`` or ``rate`` is not finite, ``rate <= 0``, or ``steps`` is
            not an int >= 1 (NumPy integers are refused too: pass ``int(steps)``).

    >>> s = exponential_decay(1.0, 0.5, 2)
    >>> [round(s(t), 4) for t in range(5)]
    [1.0, 0.7071, 0.5, 0.3536, 0.25]
    >>> s = exponential_decay(1.0, 0.5, 2, staircase=True)
    >>> [s(t) for t in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    lr = _finite(value, "learning rate")
    r = _finite(rate, "rate")
    if r <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    n = _positive_steps(steps, "steps")

    def schedule(step: int) -> float:
        exponent = step // n if staircase else step / n
        return lr * r**exponent

    return schedule


def piecewise_constant(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    """A piecewise-constant rate: ``lr(t) = values[i]`` for
    ``boundaries[i-1] <= t < boundaries[i]``.

    ``values[0]`` holds before ``boundaries[0]`` and ``values[-1]`` from
    ``boundaries[-1]`` on; at a boundary the next value starts (``lr(boundaries[0]) =
    values[1]``), as the milestones of PyTorch's ``MultiStepLR`` do. TensorFlow's
    ``PiecewiseConstantDecay`` keeps the earlier value at the boundary step itself, and
    optax's ``piecewise_constant_schedule`` multiplies by scales instead of taking values.

    Args:
        boundaries: the steps where the rate changes, strictly increasing; each is
            converted with ``int()`` (so ``10.7`` means step 10).
        values: the rates, one more than ``boundaries``; finite numbers.

    Returns:
        The :data:`Schedule`.

    Raises:
        TypeError: a value is not a real number.
        ValueError: a value is not finite, ``len(values) != len(boundaries) + 1``, or the
            boundaries do not increase strictly.

    >>> s = piecewise_constant([10, 20], [0.1, 0.01, 0.001])
    >>> s(0), s(9), s(10), s(25)
    (0.1, 0.1, 0.01, 0.001)
    """
    bounds = [int(b) for b in boundaries]
    vals = [_finite(v, "learning rate") for v in values]
    if len(vals) != len(bounds) + 1:
        raise ValueError(
            f"piecewise_constant needs len(values) == len(boundaries) + 1, "
            f"got {len(vals)} values and {len(bounds)} boundaries"
        )
    if any(b >= c for b, c in itertools.pairwise(bounds)):
        raise ValueError(f"boundaries must increase strictly, got {bounds}")

    def schedule(step: int) -> float:
        return vals[bisect.bisect_right(bounds, step)]

    return schedule


def step_decay(value: float, factor: float, every: int) -> Schedule:
    """Step decay: ``lr(t) = value * factor ** (t // every)``.

    The rate is multiplied by ``factor`` once every ``every`` updates: PyTorch's
    ``StepLR(step_size=every, gamma=factor)`` counted in updates, and
    ``exponential_decay(value, factor, every, staircase=True)``, which it is.

    Args:
        value: the first update's rate, ``lr(0)``; a finite number.
        factor: the factor applied every ``every`` updates; a finite number > 0.
        every: the number of updates between drops; a Python int >= 1.

    Returns:
        The :data:`Schedule`.

    Raises:
        TypeError: ``value`` or ``factor`` is not a real number.
        ValueError: ``value`` or ``factor`` is not finite, ``factor <= 0``, or ``every``
            is not an int >= 1 (the messages call ``factor`` "rate" and ``every``
            "steps", the names of :func:`exponential_decay`).

    >>> s = step_decay(0.1, 0.5, every=2)
    >>> [s(t) for t in range(6)]
    [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    """
    return exponential_decay(value, factor, every, staircase=True)


def cosine_decay(value: float, steps: int, final: float = 0.0) -> Schedule:
    """Cosine annealing from ``value`` to ``final`` over ``steps`` updates, then ``final``:
    ``lr(t) = final + (value - final) * (1 + cos(pi * min(t, steps) / steps)) / 2``.

    One period of SGDR's schedule (Loshchilov & Hutter), without the restarts. ``final``
    is a rate, as PyTorch's ``CosineAnnealingLR(T_max=steps, eta_min=final)`` takes it
    (optax's ``cosine_decay_schedule`` takes ``alpha = final / value`` instead). After
    ``steps`` the rate stays at ``final``, as in optax; PyTorch's ``CosineAnnealingLR``
    would rise again along the cosine.

    Args:
        value: the first update's rate, ``lr(0)``; a finite number.
        steps: the number of updates the decay takes; a Python int >= 1.
        final: the rate reached at step ``steps`` and kept after it; a finite number
            (default 0).

    Returns:
        The :data:`Schedule`.

    Raises:
        TypeError: ``value`` or ``final`` is not a real number.
        ValueError: ``value`` or ``final`` is not finite, or ``steps`` is not an int >= 1
            (NumPy integers are refused too: pass ``int(steps)``).

    >>> s = cosine_decay(1.0, 4)
    >>> [round(s(t), 4) for t in range(6)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    >>> s = cosine_decay(1.0, 4, final=0.1)
    >>> [round(s(t), 4) for t in (0, 2, 4, 100)]
    [1.0, 0.55, 0.1, 0.1]

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
        ICLR 2017, https://arxiv.org/abs/1608.03983
    """
    lr = _finite(value, "learning rate")
    end = _finite(final, "final learning rate")
    n = _positive_steps(steps, "steps")

    def schedule(step: int) -> float:
        progress = min(step, n) / n
        return end + (lr - end) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return schedule


def linear_warmup(target: float | Schedule, steps: int, start: float = 0.0) -> Schedule:
    """Rise linearly from ``start`` to ``target(0)`` over ``steps`` steps, then follow
    ``target`` shifted by ``steps`` (``lr(t) = target(t - steps)`` for ``t >= steps``).

    ``lr(t) = start + (target(0) - start) * t / steps`` for ``t < steps``. The warm-up
    comes in front of ``target``: ``linear_warmup(cosine_decay(v, 1000), 100)`` ends its
    cosine at step 1100 (optax's ``warmup_cosine_decay_schedule`` counts the warm-up
    inside its ``decay_steps``). With the default ``start=0`` the first update's rate is
    0, so that update leaves the params unchanged (a rule's moments still see its
    gradient).

    Args:
        target: the rate (a float > 0) or schedule to warm up to; ``target(0)`` is read
            once, here.
        steps: the length of the warm-up, in updates; a Python int >= 1.
        start: the first update's rate, ``lr(0)``; a finite number (default 0).

    Returns:
        The :data:`Schedule`.

    Raises:
        TypeError: ``target`` is neither a number nor a callable, or ``start`` is not a
            real number.
        ValueError: ``target`` is a float that is not finite and > 0, ``start`` is not
            finite, or ``steps`` is not an int >= 1.

    >>> s = linear_warmup(cosine_decay(1.0, 10), 4)
    >>> [s(t) for t in (0, 2, 4, 9, 14)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    >>> s = linear_warmup(0.1, 4, start=0.01)
    >>> [round(s(t), 4) for t in range(6)]
    [0.01, 0.0325, 0.055, 0.0775, 0.1, 0.1]

    References:
        Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017
        (gradual warm-up), https://arxiv.org/abs/1706.02677
    """
    after = as_schedule(target)
    n = _positive_steps(steps, "warmup steps")
    begin = _finite(start, "start")
    peak = after(0)

    def schedule(step: int) -> float:
        if step < n:
            return begin + (peak - begin) * step / n
        return after(step - n)

    return schedule


def warmup_cosine(value: float, warmup: int, steps: int, final: float = 0.0) -> Schedule:
    """nanoGPT's learning rate (``get_lr`` in its ``train.py``): a linear warm-up to
    ``value`` over ``warmup`` updates, then a cosine decay to ``final`` at update
    ``steps``, then ``final``:

    * ``lr(t) = value * (t + 1) / (warmup + 1)`` for ``t < warmup``;
    * ``lr(t) = final + (value - final) * (1 + cos(pi * r)) / 2`` with
      ``r = (t - warmup) / (steps - warmup)`` for ``warmup <= t <= steps``;
    * ``lr(t) = final`` after ``steps``.

    Unlike :func:`linear_warmup` of a :func:`cosine_decay`, the warm-up counts inside
    ``steps`` (nanoGPT's ``lr_decay_iters``, optax's ``decay_steps``) and its first rate is
    not 0 (``value / (warmup + 1)``), so every update moves the params.

    Args:
        value: the peak rate, reached at update ``warmup``; a finite number.
        warmup: the warm-up's updates, an int >= 0 (0: the cosine from the first update).
        steps: the update at which the rate reaches ``final``, an int > ``warmup``.
        final: the rate at and after ``steps`` (nanoGPT's ``min_lr``); a finite number.

    Returns:
        The :data:`Schedule`.

    Raises:
        TypeError: ``value`` or ``final`` is not a real number.
        ValueError: not finite, ``warmup`` not an int >= 0, or ``steps <= warmup``.

    >>> s = warmup_cosine(1e-3, 100, 2000, final=1e-4)  # nanoGPT's Shakespeare recipe
    >>> [round(s(t), 7) for t in (0, 99, 100, 1050, 2000, 5000)]
    [9.9e-06, 0.0009901, 0.001, 0.00055, 0.0001, 0.0001]
    """
    peak = _finite(value, "learning rate")
    end = _finite(final, "final learning rate")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup steps must be an int >= 0, got {warmup!r}")
    n = _positive_steps(steps, "steps")
    if n <= warmup:
        raise ValueError(f"steps ({n}) must be more than the warmup steps ({warmup})")

    def schedule(step: int) -> float:
        if step < warmup:
            return peak * (step + 1) / (warmup + 1)
        if step > n:
            return end
        ratio = (step - warmup) / (n - warmup)
        return end + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (peak - end)

    return schedule


def as_schedule(learning_rate: float | Schedule) -> Schedule:
    """A schedule from a float (constant) or a schedule (returned as is).

    How every optimizer and :func:`scale_by_learning_rate` read their ``learning_rate``.
    A callable is taken to be a schedule and returned unchecked (its rates are checked
    to be finite at each update); a number must be a finite float > 0.

    Args:
        learning_rate: a real number (not a bool), or a :data:`Schedule`.

    Returns:
        ``learning_rate`` itself if it is callable, else :func:`constant` of it.

    Raises:
        ValueError: a float that is not finite and > 0.
        TypeError: neither a number nor a callable.

    >>> as_schedule(0.1)(7)
    0.1
    >>> s = cosine_decay(1.0, 10)
    >>> as_schedule(s) is s
    True
    >>> as_schedule(0.0)
    Traceback (most recent call last):
    ...
    ValueError: a learning rate must be a finite number > 0, got 0.0
    """
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(
            f"a learning rate must be a float or a schedule, got {type(learning_rate).__name__}"
        )
    lr = float(learning_rate)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"a learning rate must be a finite number > 0, got {learning_rate}")
    return constant(lr)
