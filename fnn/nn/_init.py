"""Initializers: ``init(key, shape, dtype) -> array``, and their registry.

A weight initializer sees a param of any shape as a matrix: ``fan_in`` is the product of
all axes but the last (``in`` of a dense ``(in, out)`` matrix, ``kh kw in_channels`` of
convolution kernels ``(kh, kw, in_channels, features)``) and ``fan_out`` the last axis.

========================  ==========================================================
name                      distribution of each weight
========================  ==========================================================
``he_normal``             normal, std ``sqrt(2 / fan_in)`` (Kaiming; for ReLU)
``he_uniform``            uniform on ``[-a, a)``, ``a = sqrt(6 / fan_in)``
``glorot_normal``         normal, std ``sqrt(2 / (fan_in + fan_out))`` (Xavier)
``glorot_uniform``        uniform on ``[-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``
``lecun_normal``          normal, std ``sqrt(1 / fan_in)``
``zeros``, ``ones``       all zeros, all ones
========================  ==========================================================

``xavier_normal`` and ``xavier_uniform`` are aliases of the glorot names. The normal
initializers draw from the plain (untruncated) normal, as the classic from-scratch
MNIST code and PyTorch's ``kaiming_normal_`` do; the draws fill the array in C order, so
a shape's draws do not depend on how it is split into axes. :func:`register_initializer`
adds a name (``dense(..., weight_init="mine")`` and ``fnn train --init mine`` then find
it); :func:`normal` and :func:`constant` make initializers with a fixed scale or value,
named ``"normal(0.02)"`` and ``"constant(0.5)"`` wherever a name is taken, so a spec
describes them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .. import _checks, random
from .._registry import Registry
from .._types import Array, Shape
from ..random import Key

Initializer = Callable[[Key, Shape, DTypeLike], Array]
"""``init(key, shape, dtype) -> array``: a param's starting values, a new array of
``shape`` (a tuple of ints) in ``dtype`` (float32 or float64; fnn's initializers take
float32 by default and draw the same numbers in both, rounded), drawn from ``key`` alone.
The named weight initializers take ``fan_in`` and ``fan_out`` from ``shape`` (see above)."""

_INITIALIZERS: Registry[Initializer] = Registry("weight initializer")

INITIALIZERS: Mapping[str, Initializer] = _INITIALIZERS.view
"""Every registered initializer by name (a read-only live view)."""

_PARAMETRIC = re.compile(r"(\w+)\(([^()]*)\)")
"""A made initializer's name: ``normal(0.02)``, ``constant(0)`` (:data:`_FACTORIES`)."""


def register_initializer(name: str) -> Callable[[Initializer], Initializer]:
    """Register an initializer under ``name`` (a decorator), as layers are registered
    with :func:`fnn.nn.register`: ``dense(n, weight_init=name)``, ``conv2d(...,
    weight_init=name)``, specs and model files and ``fnn train --init name`` then find it.

    Raises:
        ValueError: a bad name, one taken by another initializer, or one of the form
            ``normal(...)`` or ``constant(...)``, which names a made initializer
            (:func:`normal`, :func:`constant`) and so would never find this one.

    >>> import fnn, numpy as np
    >>> @fnn.nn.register_initializer("halves")
    ... def halves(key, shape, dtype=np.float32):
    ...     return np.full(shape, 0.5, dtype)
    >>> fnn.nn.dense(2, weight_init="halves").init(fnn.random.key(0), (3,)).w[0]
    array([0.5, 0.5], dtype=float32)
    """
    _INITIALIZERS.check_name(name)
    made = _PARAMETRIC.fullmatch(name)
    if made is not None and made.group(1) in _FACTORIES:
        raise ValueError(
            f"an initializer cannot be registered as {name!r}: {made.group(1)}(...) names "
            f"the made initializer fnn.nn.{made.group(1)}, so {name!r} would never find it"
        )

    def decorate(init: Initializer) -> Initializer:
        return _INITIALIZERS.add(name, init)

    return decorate


def _fans(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a param seen as a matrix (all axes but the last, the last)."""
    if not shape:
        return 1, 1
    return max(math.prod(shape[:-1]), 1), shape[-1]


@register_initializer("he_normal")
def he_normal(key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
    """Normal weights with std ``sqrt(2 / fan_in)`` (He et al., 2015; for ReLU).

    An :data:`Initializer`: a new array of ``shape`` in ``dtype`` (float32 by default).

    >>> import fnn, math
    >>> std = math.sqrt(2 / 1000)  # fan_in 1000, fan_out 10
    >>> w = fnn.nn.he_normal(fnn.random.key(0), (1000, 10), np.float64)
    >>> w.shape, round(float(w.std()) / std, 2)
    ((1000, 10), 1.0)
    """
    return random.normal(key, shape, dtype, std=math.sqrt(2.0 / _fans(shape)[0]))


@register_initializer("he_uniform")
def he_uniform(key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
    """Uniform weights on ``[-a, a)`` with ``a = sqrt(6 / fan_in)``.

    An :data:`Initializer`: a new array of ``shape`` in ``dtype`` (float32 by default).

    >>> import fnn, math
    >>> a = math.sqrt(6 / 1000)  # fan_in 1000, fan_out 10
    >>> w = fnn.nn.he_uniform(fnn.random.key(0), (1000, 10))
    >>> w.dtype, bool(abs(w).max() < a), round(float(abs(w).max()) / a, 2)
    (dtype('float32'), True, 1.0)
    """
    a = math.sqrt(6.0 / _fans(shape)[0])
    return random.uniform(key, shape, -a, a, dtype)


@register_initializer("glorot_normal")
def glorot_normal(key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
    """Normal weights with std ``sqrt(2 / (fan_in + fan_out))`` (Glorot & Bengio, 2010).

    An :data:`Initializer`: a new array of ``shape`` in ``dtype`` (float32 by default).

    >>> import fnn, math
    >>> std = math.sqrt(2 / (1000 + 10))  # fan_in 1000, fan_out 10
    >>> w = fnn.nn.glorot_normal(fnn.random.key(0), (1000, 10), np.float64)
    >>> w.shape, round(float(w.std()) / std, 2)
    ((1000, 10), 1.0)
    """
    return random.normal(key, shape, dtype, std=math.sqrt(2.0 / sum(_fans(shape))))


@register_initializer("glorot_uniform")
def glorot_uniform(key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
    """Uniform weights on ``[-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``.

    An :data:`Initializer`: a new array of ``shape`` in ``dtype`` (float32 by default).

    >>> import fnn, math
    >>> a = math.sqrt(6 / (1000 + 10))  # fan_in 1000, fan_out 10
    >>> w = fnn.nn.glorot_uniform(fnn.random.key(0), (1000, 10))
    >>> w.dtype, bool(abs(w).max() < a), round(float(abs(w).max()) / a, 2)
    (dtype('float32'), True, 1.0)
    """
    a = math.sqrt(6.0 / sum(_fans(shape)))
    return random.uniform(key, shape, -a, a, dtype)


@register_initializer("lecun_normal")
def lecun_normal(key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
    """Normal weights with std ``sqrt(1 / fan_in)`` (LeCun et al., 1998).

    An :data:`Initializer`: a new array of ``shape`` in ``dtype`` (float32 by default).

    >>> import fnn, math
    >>> std = math.sqrt(1 / 1000)  # fan_in 1000, fan_out 10
    >>> w = fnn.nn.lecun_normal(fnn.random.key(0), (1000, 10), np.float64)
    >>> w.shape, round(float(w.std()) / std, 2)
    ((1000, 10), 1.0)
    """
    return random.normal(key, shape, dtype, std=math.sqrt(1.0 / _fans(shape)[0]))


@register_initializer("zeros")
def zeros(key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
    """All zeros (the key is unused): the biases' initializer.

    An :data:`Initializer`: a new array of ``shape`` in ``dtype`` (float32 by default).

    >>> import fnn
    >>> fnn.nn.zeros(fnn.random.key(0), (2,))
    array([0., 0.], dtype=float32)
    """
    return np.zeros(shape, dtype=dtype)


@register_initializer("ones")
def ones(key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
    """All ones (the key is unused): batch and layer norm's ``scale``.

    An :data:`Initializer`: a new array of ``shape`` in ``dtype`` (float32 by default).

    >>> import fnn
    >>> fnn.nn.ones(fnn.random.key(0), (2,), np.float64)
    array([1., 1.])
    """
    return np.ones(shape, dtype=dtype)


_INITIALIZERS.add("xavier_normal", glorot_normal)
_INITIALIZERS.add("xavier_uniform", glorot_uniform)


class _Parametric:
    """An initializer made by a factory from one number (:func:`normal`, :func:`constant`),
    named as a spec writes it: ``"normal(0.02)"``, which :func:`initializer` reads back."""

    def __init__(self, name: str, init: Initializer) -> None:
        self.name = name
        self._init = init

    def __call__(self, key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
        return self._init(key, shape, dtype)

    def __repr__(self) -> str:
        return self.name


def normal(std: float) -> Initializer:
    """An initializer drawing normal weights with a fixed standard deviation ``std``
    (GPT-2's ``normal(0.02)``), whatever the shape. Named ``"normal(<std>)"`` wherever a
    name is taken (``weight_init="normal(0.02)"``), so specs describe it.

    >>> import fnn
    >>> float(normal(0.02)(fnn.random.key(0), (1000,), np.float64).std().round(3))
    0.02
    >>> normal(0.02), initializer("normal(0.02)")
    (normal(0.02), normal(0.02))
    """
    scale = _checks.real(std, "normal std")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"normal std must be a finite number > 0, got {std}")

    def init(key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
        return random.normal(key, shape, dtype, std=scale)

    return _Parametric(f"normal({scale!r})", init)


def constant(value: float) -> Initializer:
    """An initializer filling every entry with ``value``; named ``"constant(<value>)"``.

    >>> import fnn
    >>> constant(0.25)(fnn.random.key(0), (2,), np.float32)
    array([0.25, 0.25], dtype=float32)
    """
    number = _checks.real(value, "constant value")
    if not math.isfinite(number):
        raise ValueError(f"constant needs a finite value, got {value}")

    def init(key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
        return np.full(shape, number, dtype)

    return _Parametric(f"constant({number!r})", init)


_FACTORIES: Mapping[str, Callable[[float], Initializer]] = {"normal": normal, "constant": constant}
"""The initializers made from one number, by the name their results carry."""


def describe(init: Initializer) -> str | None:
    """The name by which :func:`initializer` finds ``init`` again (a registered name, or
    ``"normal(0.02)"`` for a made one), or None for a function of the user's own."""
    if isinstance(init, _Parametric):
        return init.name
    return next((name for name, each in INITIALIZERS.items() if each is init), None)


def initializer(name: str) -> Initializer:
    """The initializer registered as ``name`` (see the table above).

    Args:
        name: a registered initializer's name, e.g. ``"he_normal"`` or ``"xavier_uniform"``,
            or ``"normal(<std>)"`` / ``"constant(<value>)"`` (:func:`normal`,
            :func:`constant`).

    Returns:
        The :data:`Initializer` function ``init(key, shape, dtype) -> array``.

    Raises:
        ValueError: no such name (the message lists the registered ones), or a bad number.

    >>> import fnn
    >>> fnn.nn.initializer("xavier_uniform") is fnn.nn.glorot_uniform
    True
    """
    made = _PARAMETRIC.fullmatch(name) if isinstance(name, str) else None
    if made is not None and made.group(1) in _FACTORIES:
        try:
            number = float(made.group(2))
        except ValueError:
            raise ValueError(
                f"{made.group(1)}(...) needs a number, as in {made.group(1)}(0.02), got {name!r}"
            ) from None
        return _FACTORIES[made.group(1)](number)
    return _INITIALIZERS.get(name)


def initializer_of(value: Any, what: str) -> Initializer:
    """``value`` as an initializer: a registered name or a function ``(key, shape, dtype)``.

    Raises:
        ValueError: an unknown name.
        TypeError: neither a name nor a function (``what`` names the argument).
    """
    if isinstance(value, str):
        return initializer(value)
    if callable(value):
        found: Initializer = value
        return found
    raise TypeError(f"{what} must be an initializer name or a function, got {value!r}")
