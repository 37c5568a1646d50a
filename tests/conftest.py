"""Shared fixtures: one key, and strict floating-point error handling in every test."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import fnn


@pytest.fixture
def key() -> fnn.random.Key:
    """The one root key tests derive their randomness from."""
    return fnn.random.key(0)


@pytest.fixture(autouse=True)
def strict_numerics() -> Iterator[None]:
    """Overflow, invalid operations and division by zero raise instead of warning."""
    old = np.seterr(over="raise", invalid="raise", divide="raise")
    yield
    np.seterr(**old)
