"""Data augmentation: keyed random transforms of a batch of images.

Each transform is a pure function ``(key, images) -> images`` of a batch ``(n, height,
width)`` or ``(n, height, width, channels)``: the same key gives the same bits, the input
is never modified, and the result is a new array of the input's shape and dtype.
``fnn.fit(..., augment=...)`` and ``fnn.train_step`` call one with a key derived from the
run's key and the update's number, so an augmented run reruns and resumes bit-identically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import _checks
from .. import random as _random
from .._types import Array

Augment = Callable[[_random.Key, Array], Array]
"""``augment(key, images) -> images``: a keyed transform of a batch of images."""


def _images(images: Any, what: str) -> Array:
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{what} expects a NumPy array of images, got {type(images).__name__}")
    if images.ndim not in (3, 4):
        raise ValueError(
            f"{what} expects images of shape (n, height, width) or (n, height, width, "
            f"channels), got shape {images.shape}"
        )
    return images


def random_flip(key: _random.Key, images: Array) -> Array:
    """Mirror each image left to right with probability 1/2.

    Args:
        key: which images are flipped: ``fnn.random.bernoulli(key, 0.5, n)``.
        images: ``(n, height, width)`` or ``(n, height, width, channels)``, any dtype.

    Returns:
        A new array of ``images``' shape and dtype: image ``i`` is ``images[i, :, ::-1]``
        where the draw is true and ``images[i]`` where it is false.

    >>> import numpy as np, fnn
    >>> x = np.arange(6).reshape(2, 1, 3)
    >>> flipped = random_flip(fnn.random.key(0), x)
    >>> [row.tolist() in ([[0, 1, 2]], [[2, 1, 0]]) for row in flipped[:1]]
    [True]
    """
    images = _images(images, "random_flip")
    flip = _random.bernoulli(key, 0.5, len(images))
    out: Array = images.copy()
    out[flip] = images[flip, :, ::-1]
    return out


def random_shift(key: _random.Key, images: Array, max_shift: int = 2) -> Array:
    """Translate each image by a whole number of pixels, filling with zeros.

    Args:
        key: the shifts: ``dy`` and ``dx`` uniform in ``[-max_shift, max_shift]``, drawn
            by ``fnn.random.generator(key).integers`` (``dy`` for every image, then ``dx``).
        images: ``(n, height, width)`` or ``(n, height, width, channels)``, any dtype.
        max_shift: the largest shift along each axis, an int >= 1.

    Returns:
        A new array of ``images``' shape and dtype: ``out[i, r, c] = images[i, r - dy_i,
        c - dx_i]`` where that pixel exists, zero elsewhere (a shift of ``+1`` moves the
        content down or right).
    """
    images = _images(images, "random_shift")
    s = _checks.positive_int(max_shift, "random_shift max_shift")
    n, h, w = images.shape[:3]
    shifts = _random.generator(key).integers(-s, s + 1, size=(2, n))
    pad = ((0, 0), (s, s), (s, s)) + ((0, 0),) * (images.ndim - 3)
    padded = np.pad(images, pad)
    view: Any = sliding_window_view  # NumPy 1.26's stubs take one axis only
    windows = view(padded, (h, w), axis=(1, 2))  # (n, 2s+1, 2s+1, [c], h, w)
    picked = windows[np.arange(n), s - shifts[0], s - shifts[1]]  # (n, [c], h, w)
    return np.ascontiguousarray(np.moveaxis(picked, 1, -1) if images.ndim == 4 else picked)


def augmentation(*transforms: Augment) -> Augment:
    """The transforms applied one after another, transform ``i`` keyed ``fold_in(key, i)``.

    >>> import fnn
    >>> flip_and_shift = augmentation(random_flip, random_shift)
    """
    steps: Sequence[Augment] = tuple(transforms)
    for t in steps:
        if not callable(t):
            raise TypeError(f"augmentation expects functions (key, images) -> images, got {t!r}")

    def augment(key: _random.Key, images: Array) -> Array:
        for i, t in enumerate(steps):
            images = t(_random.fold_in(key, i), images)
        return images

    return augment
