"""Learning-rate schedules: pure functions ``schedule(step) -> learning rate``.

``step`` counts the updates made before the one the rate is for, so ``schedule(0)`` is
the first update's rate. Every optimizer accepts a float or a schedule.

>>> s = inverse_time_decay(0.1, decay=0.5)
>>> [round(s(t), 4) for t in range(3)]
[0.1, 0.0667, 0.05]
"""

from __future__ import annotations

import bisect
import itertools
import math
import numbers
from collections.abc import Callable, Sequence

from .. import _checks

Schedule = Callable[[int], float]
"""``schedule(step) -> learning rate``, a pure function of the update count."""


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
    """``lr(t) = value``."""
    lr = _finite(value, "learning rate")

    def schedule(step: int) -> float:
        return lr

    return schedule


def inverse_time_decay(value: float, decay: float) -> Schedule:
    """``lr(t) = value / (1 + decay * t)``: the "decay" of the classic from-scratch
    optimizers (and of Keras' legacy ``SGD(decay=...)``)."""
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
    """``lr(t) = value * rate ** (t / steps)`` (``t // steps`` with ``staircase``)."""
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
    """``values[i]`` for ``boundaries[i-1] <= t < boundaries[i]``.

    ``values`` has one more entry than ``boundaries``, which must increase strictly.

    >>> s = piecewise_constant([10, 20], [0.1, 0.01, 0.001])
    >>> s(0), s(10), s(25)
    (0.1, 0.01, 0.001)
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
    """``lr(t) = value * factor ** (t // every)``: multiply by ``factor`` every
    ``every`` steps (PyTorch's ``StepLR``)."""
    return exponential_decay(value, factor, every, staircase=True)


def cosine_decay(value: float, steps: int, final: float = 0.0) -> Schedule:
    """Cosine annealing from ``value`` to ``final`` over ``steps``, then ``final``:
    ``lr(t) = final + (value - final) * (1 + cos(pi * min(t, steps) / steps)) / 2``."""
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

    >>> s = linear_warmup(cosine_decay(1.0, 10), 4)
    >>> [s(t) for t in (0, 2, 4)]
    [0.0, 0.5, 1.0]
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


def as_schedule(learning_rate: float | Schedule) -> Schedule:
    """A schedule from a float (constant) or a schedule (returned as is).

    Raises:
        ValueError: a float that is not finite and > 0.
        TypeError: neither a number nor a callable.
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
