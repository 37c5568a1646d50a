"""Fixtures of the io tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import fnn
import fnn.io
from fnn import random
from tests.io.io_files import Members, members, sample


@pytest.fixture
def valid(tmp_path: Path, key: random.Key) -> Members:
    """The members of a valid fnn file of ``sample(key)``."""
    path = tmp_path / "valid.npz"
    fnn.io.save(path, sample(key), {"epoch": 1})
    return members(path)
