"""Small datasets and inputs drawn by tests in more than one file."""

from __future__ import annotations

from typing import Any

import numpy as np

from fnn import random

Array = np.ndarray[Any, Any]
Data = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]


def blobs(key: random.Key, n: int = 240, noise: float = 0.8) -> Data:
    """Three overlapping Gaussian blobs in 4-D: float32 x (n, 4), int64 labels."""
    k1, k2 = random.split(key)
    labels = random.permutation(k1, n) % 3
    centres = np.array([[2, 0, 0, 1], [0, 2, 0, -1], [0, 0, 2, 0]], np.float32)
    return centres[labels] + random.normal(k2, (n, 4)) * noise, labels


def well_separated(n: int = 96, seed: int = 3) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Three well separated classes in 4 dimensions."""
    k1, k2 = random.split(random.key(seed))
    y = random.permutation(k1, n) % 3
    centres = np.array([[2.0, 0, 0, 1], [0, 2.0, 0, 0], [0, 0, 2.0, -1]], np.float32)
    return centres[y] + random.normal(k2, (n, 4)), y


def separable(key: random.Key, n: int = 120, features: int = 6) -> tuple[Array, Array]:
    """Three separable classes: float32 x ``(n, features)``, int64 labels ``(n,)``."""
    labels = random.permutation(key, n) % 3
    x = random.normal(random.fold_in(key, 1), (n, features)) * 0.5
    x[np.arange(n), labels] += 2.0
    return x, labels.astype(np.int64)


def away_from_zero(k: random.Key, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """Float64 inputs at least 0.1 away from zero, so no kink lies within the stencil."""
    x = random.normal(k, shape, dtype=np.float64)
    return np.where(x >= 0, x + 0.1, x - 0.1)


def uniform(shape: tuple[int, ...], seed: int) -> Array:
    return np.random.default_rng(seed).random(shape).astype(np.float32)
