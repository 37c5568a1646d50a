"""Preprocessing: scale images to floats, flatten, one-hot labels, a train/validation split."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .. import _checks
from .. import random as _random
from .._types import Array


def _array(x: Any, what: str) -> Array:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a NumPy array, got {type(x).__name__}")
    if x.ndim < 1:
        raise ValueError(f"{what} needs a first (example) axis, got a 0-d array")
    return x


def check_pair(x: Any, y: Any) -> tuple[Array, Array]:
    """Check that ``x`` and ``y`` are arrays with the same number of examples (O(1))."""
    x = _array(x, "x")
    y = _array(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same number of examples, got x {x.shape} and y {y.shape}"
        )
    return x, y


def to_float(images: Array, dtype: DTypeLike = np.float32) -> Array:
    """Scale uint8 images (0-255) to floats in ``[0, 1]``: ``images / 255``.

    Args:
        images: a uint8 array of any shape, e.g. ``(n, 28, 28)``.
        dtype: float32 (default) or float64.

    Returns:
        A new array of ``images``' shape and the given dtype; 0 maps to 0.0 and 255 to
        exactly 1.0. ``images`` is not modified.

    Raises:
        TypeError: ``images`` is not a uint8 NumPy array, or ``dtype`` is neither
            float32 nor float64.

    >>> import numpy as np
    >>> to_float(np.array([0, 51, 255], np.uint8))
    array([0. , 0.2, 1. ], dtype=float32)
    """
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a NumPy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(
            f"to_float expects uint8 images with values 0-255, got dtype {images.dtype}; "
            "float images need no conversion (scale them yourself if they are not in [0, 1])"
        )
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    out = images.astype(dt)
    out /= 255.0
    return out


def flatten(images: Array) -> Array:
    """Reshape ``(n, d1, d2, ...)`` to ``(n, d1 * d2 * ...)``; ``(n,)`` becomes ``(n, 1)``.

    Returns a view of ``images`` when its memory layout allows (no copy), else a copy.

    >>> import numpy as np
    >>> flatten(np.zeros((5, 28, 28), np.uint8)).shape
    (5, 784)
    """
    images = _array(images, "images")
    features = 1
    for d in images.shape[1:]:
        features *= d
    return images.reshape(images.shape[0], features)


def one_hot(labels: Array, num_classes: int, dtype: DTypeLike = np.float32) -> Array:
    """One-hot encode integer labels: ``(n,)`` in ``[0, num_classes)`` -> ``(n, num_classes)``.

    Row ``i`` is all zeros except a one at column ``labels[i]``. ``dtype`` may be any
    float or integer dtype (float32 by default).

    Args:
        labels: integer class labels, ``(n,)``.
        num_classes: the number of classes, an int >= 1.
        dtype: the result's dtype, float or integer.

    Returns:
        A new ``(n, num_classes)`` array of ``dtype``.

    Raises:
        TypeError: ``labels`` is not an integer array, ``num_classes`` not an int, or
            ``dtype`` neither float nor integer.
        ValueError: ``labels`` is not 1-D, a label is outside ``[0, num_classes)``, or
            ``num_classes < 1``.

    >>> import numpy as np
    >>> one_hot(np.array([2, 0]), 3)
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    labels = _array(labels, "labels")
    k = _checks.positive_int(num_classes, "num_classes")
    labels = _checks.labels(labels, k, labels.shape[0])
    dt = np.dtype(dtype)
    if dt.kind not in "fiu":
        raise TypeError(f"one_hot dtype must be a float or integer dtype, got {dt}")
    out: Array = (labels[:, None] == np.arange(k)).astype(dt)
    return out


def split(
    key: _random.Key, x: Array, y: Array, fraction: float
) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    """Split ``(x, y)`` at random into a training and a validation part.

    The validation part holds ``round(n * fraction)`` examples, drawn by
    ``fnn.random.permutation(key, n)``: the same key gives the same split. Each part
    keeps the examples in their original order.

    Args:
        key: an :class:`fnn.random.Key`.
        x: examples, ``(n, ...)``.
        y: labels or targets, ``(n, ...)``.
        fraction: the validation share, ``0 < fraction < 1``; both parts must be
            non-empty.

    Returns:
        ``((x_train, y_train), (x_val, y_val))``, new arrays (the inputs are untouched).

    Raises:
        TypeError: ``key`` is not a key, ``x`` or ``y`` not an array, or ``fraction``
            not a number.
        ValueError: ``x`` and ``y`` hold different numbers of examples, ``fraction`` is
            not strictly between 0 and 1, or a part would be empty.

    >>> import fnn, numpy as np
    >>> (xt, yt), (xv, yv) = split(fnn.random.key(0), np.arange(10), np.arange(10), 0.2)
    >>> len(xt), len(xv), sorted([*xt, *xv]) == list(range(10))
    (8, 2, True)
    """
    x, y = check_pair(x, y)
    train, val = split_indices(key, x.shape[0], fraction)
    return (x[train], y[train]), (x[val], y[val])


def split_indices(key: _random.Key, n: int, fraction: float) -> tuple[Array, Array]:
    """The row indices of :func:`split`: ``(train, val)``, each sorted, from ``key``.

    Use them to split without copying the data (``fnn.data.batches(...,
    indices=train)``); ``split`` is ``x[train], y[train]`` and ``x[val], y[val]``.
    """
    if not isinstance(key, _random.Key):
        raise TypeError(f"split needs an fnn.random.Key, got {key!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
        raise TypeError(f"fraction must be a number, got {fraction!r}")
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}")
    n_val = round(n * float(fraction))
    if not 0 < n_val < n:
        raise ValueError(
            f"fraction {fraction} of {n} examples leaves an empty part ({n - n_val} to "
            f"train, {n_val} to validate); use more data or another fraction"
        )
    order = _random.permutation(key, n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])
