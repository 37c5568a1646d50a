"""Weight initializers: ``init(key, (fan_in, fan_out), dtype) -> array``.

========================  ==========================================================
name                      distribution of each weight
========================  ==========================================================
``he_normal``             normal, std ``sqrt(2 / fan_in)`` (Kaiming; for ReLU)
``he_uniform``            uniform on ``[-a, a)``, ``a = sqrt(6 / fan_in)``
``glorot_normal``         normal, std ``sqrt(2 / (fan_in + fan_out))`` (Xavier)
``glorot_uniform``        uniform on ``[-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``
``lecun_normal``          normal, std ``sqrt(1 / fan_in)``
``zeros``                 all zeros
========================  ==========================================================

``xavier_normal`` and ``xavier_uniform`` are aliases of the glorot names. The normal
initializers draw from the plain (untruncated) normal, as the classic from-scratch
MNIST code and PyTorch's ``kaiming_normal_`` do.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import DTypeLike

from .. import random
from .._types import Array
from ..random import Key

Initializer = Callable[[Key, tuple[int, int], DTypeLike], Array]


def he_normal(key: Key, shape: tuple[int, int], dtype: DTypeLike = np.float32) -> Array:
    """Normal weights with std ``sqrt(2 / fan_in)``."""
    return random.normal(key, shape, dtype, std=math.sqrt(2.0 / shape[0]))


def he_uniform(key: Key, shape: tuple[int, int], dtype: DTypeLike = np.float32) -> Array:
    """Uniform weights on ``[-a, a)`` with ``a = sqrt(6 / fan_in)``."""
    a = math.sqrt(6.0 / shape[0])
    return random.uniform(key, shape, -a, a, dtype)


def glorot_normal(key: Key, shape: tuple[int, int], dtype: DTypeLike = np.float32) -> Array:
    """Normal weights with std ``sqrt(2 / (fan_in + fan_out))``."""
    return random.normal(key, shape, dtype, std=math.sqrt(2.0 / (shape[0] + shape[1])))


def glorot_uniform(key: Key, shape: tuple[int, int], dtype: DTypeLike = np.float32) -> Array:
    """Uniform weights on ``[-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``."""
    a = math.sqrt(6.0 / (shape[0] + shape[1]))
    return random.uniform(key, shape, -a, a, dtype)


def lecun_normal(key: Key, shape: tuple[int, int], dtype: DTypeLike = np.float32) -> Array:
    """Normal weights with std ``sqrt(1 / fan_in)``."""
    return random.normal(key, shape, dtype, std=math.sqrt(1.0 / shape[0]))


def zeros(key: Key, shape: tuple[int, int], dtype: DTypeLike = np.float32) -> Array:
    """All-zero weights (the key is unused)."""
    return np.zeros(shape, dtype=dtype)


INITIALIZERS: dict[str, Initializer] = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "lecun_normal": lecun_normal,
    "zeros": zeros,
}


def initializer(name: str) -> Initializer:
    """The initializer called ``name`` (see the table above)."""
    try:
        return INITIALIZERS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(INITIALIZERS))
        raise ValueError(f"unknown weight initializer {name!r}; expected one of: {known}") from None
