"""Explicit random keys: every random number in fnn comes from a key passed in.

A :class:`Key` is an immutable value: a seed's entropy plus a *path* of non-negative
integers. Splitting or folding in data extends the path; nothing ever advances a counter,
so the same key always gives the same numbers, in any order of use. Draws build a fresh
NumPy ``Generator`` (PCG64) from ``SeedSequence(entropy, spawn_key=path)``.

>>> k = key(0)
>>> a, b = split(k)
>>> bool((normal(a, (3,)) == normal(a, (3,))).all())
True
>>> bool((normal(a, (3,)) == normal(b, (3,))).all())
False

Draws are made in float64 and rounded to the requested dtype, so a float32 and a
float64 draw from one key hold the same numbers up to precision (a float64 copy of a
model starts where the float32 one does). Streams are reproducible for one NumPy
version; NumPy does not promise that a ``Generator`` method returns the same numbers
across its releases.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from typing import Any

import attrs
import numpy as np
from numpy.typing import DTypeLike

from . import _checks
from . import tree as _tree
from ._types import Array

__all__ = [
    "Key",
    "bernoulli",
    "fold_in",
    "generator",
    "key",
    "normal",
    "permutation",
    "split",
    "uniform",
]

_MAX_SEED = 2**63


def _indices(values: Iterable[Any]) -> tuple[int, ...]:
    return tuple(operator.index(v) for v in values)


@attrs.frozen
class Key:
    """An immutable random key. Make one with :func:`key`; derive more with :func:`split`.

    Attributes:
        entropy: the seed, an int in ``[0, 2**63)``.
        path: the derivation path from the seed; ``split`` child ``i`` appends ``2 * i``
            and ``fold_in(data)`` appends ``2 * data + 1``, so the two never collide.
    """

    entropy: int = attrs.field(converter=operator.index)
    path: tuple[int, ...] = attrs.field(default=(), converter=_indices)


_tree.register_type(Key, "fnn.random.Key")


def _check_index(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    number = operator.index(value)
    if not 0 <= number < _MAX_SEED:
        raise ValueError(f"{what} must be in [0, 2**63), got {number}")
    return number


def _check_key(k: Any) -> Key:
    if not isinstance(k, Key):
        raise TypeError(f"expected an fnn.random.Key (from fnn.random.key(seed)), got {k!r}")
    return k


def key(seed: int) -> Key:
    """A root key from an integer seed in ``[0, 2**63)``."""
    return Key(_check_index(seed, "seed"))


_MAX_PATH_INDEX = 2**31
"""Split indices and fold_in data stay below this, so that each path entry (``2 i`` or
``2 data + 1``) fits one 32-bit word of NumPy's ``SeedSequence``, which cuts a larger int
into several words: the entries of two different paths could then join into the same
words, ``fold_in(fold_in(k, a), b)`` drawing what ``fold_in(k, c)`` draws for some ``c``."""


def split(k: Key, n: int = 2) -> tuple[Key, ...]:
    """``n`` new independent keys derived from ``k`` (``k`` itself stays usable and
    unchanged); ``1 <= n <= 2**31``."""
    k = _check_key(k)
    count = _check_index(n, "n")
    if not 1 <= count <= _MAX_PATH_INDEX:
        raise ValueError(f"split needs 1 <= n <= 2**31, got {count}")
    return tuple(Key(k.entropy, (*k.path, 2 * i)) for i in range(count))


def fold_in(k: Key, data: int) -> Key:
    """A new key that mixes ``data`` (an int in ``[0, 2**31)``) into ``k``.

    ``fold_in(k, step)`` gives a distinct key per step without growing the path. The
    bound keeps every key's stream its own (:data:`_MAX_PATH_INDEX`).
    """
    k = _check_key(k)
    if isinstance(data, bool) or not isinstance(data, (int, np.integer)):
        raise TypeError(f"data must be an int, got {type(data).__name__}")
    number = operator.index(data)
    if not 0 <= number < _MAX_PATH_INDEX:
        raise ValueError(f"data must be in [0, 2**31), got {number}")
    return Key(k.entropy, (*k.path, 2 * number + 1))


def generator(k: Key) -> np.random.Generator:
    """A fresh NumPy Generator seeded by ``k`` alone; each call starts the same stream."""
    k = _check_key(k)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(k.entropy, spawn_key=k.path)))


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"shape must have non-negative sizes, got {dims}")
    return dims


def normal(
    k: Key, shape: int | tuple[int, ...], dtype: DTypeLike = np.float32, std: float = 1.0
) -> Array:
    """Draws from a normal distribution with mean 0 and standard deviation ``std`` (a
    finite number >= 0)."""
    dt = _checks.float_dtype(dtype, "dtype")
    if not (isinstance(std, (int, float, np.integer, np.floating)) and 0 <= std < math.inf):
        raise ValueError(f"normal's std must be a finite number >= 0, got {std!r}")
    out = generator(k).standard_normal(_shape(shape)) * float(std)
    drawn: Array = np.asarray(out, dt)  # an array for shape () too (NumPy gives a scalar)
    return drawn


def uniform(
    k: Key,
    shape: int | tuple[int, ...],
    low: float = 0.0,
    high: float = 1.0,
    dtype: DTypeLike = np.float32,
) -> Array:
    """Draws from the uniform distribution on ``[low, high)``, finite bounds, in
    ``dtype``: a draw that rounds to ``high`` in it (float32 rounds about one in 3e7
    float64 draws of [0, 1) up to 1) is taken as the largest ``dtype`` value below
    ``high``."""
    dt = _checks.float_dtype(dtype, "dtype")
    for value, what in ((low, "low"), (high, "high")):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(
                f"uniform's {what} must be a number, got {value!r}; pass the dtype by keyword"
            )
    if not -math.inf < low < high < math.inf:
        raise ValueError(f"uniform needs finite low < high, got low={low}, high={high}")
    out = generator(k).random(_shape(shape)) * (float(high) - float(low)) + float(low)
    drawn: Array = np.asarray(out, dt)  # an array for shape () too (NumPy gives a scalar)
    top = dt.type(high)
    below = np.nextafter(top, dt.type(-np.inf)) if top >= high else top  # < high in dt
    np.minimum(drawn, below, out=drawn)
    return drawn


def permutation(k: Key, n: int) -> Array:
    """A random permutation of ``range(n)`` as an int64 array."""
    count = _check_index(n, "n")
    return generator(k).permutation(count).astype(np.int64, copy=False)


def bernoulli(k: Key, p: float, shape: int | tuple[int, ...]) -> Array:
    """Boolean draws that are ``True`` with probability ``p`` (``0 <= p <= 1``)."""
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"bernoulli needs 0 <= p <= 1, got {p}")
    return generator(k).random(_shape(shape)) < float(p)
