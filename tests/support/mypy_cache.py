"""A mypy cache of its own for each pytest-xdist worker: the tests that run mypy run in
several workers at once, and mypy's cache is not safe to write from two processes (one
run crashed with "Duplicates in dependencies list" reading what another was writing)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cache_args() -> list[str]:
    """``--cache-dir`` for mypy: ``.mypy_cache/tests-<worker>`` in the repository (the
    worker's name from pytest-xdist, ``main`` without it), reused by the worker's runs."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return ["--cache-dir", str(ROOT / ".mypy_cache" / f"tests-{worker}")]
