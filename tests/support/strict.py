"""Strictness beyond the suite's own: a block in which any warning fails the test."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def no_warnings() -> Iterator[None]:
    """A context in which any warning fails the test, whatever the filters outside."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
