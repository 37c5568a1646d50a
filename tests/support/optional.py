"""Marks for tests that need an optional dependency: each skips, naming what is missing
and how to install it, when that dependency is absent (``bash .ci/test`` installs them
all, so none of these skips there)."""

from __future__ import annotations

import importlib.util
import shutil

import pytest


def needs(module: str, extra: str) -> pytest.MarkDecorator:
    """Skip unless ``module`` can be imported; it comes with fnn's extra ``extra``."""
    missing = importlib.util.find_spec(module) is None
    return pytest.mark.skipif(missing, reason=f"needs {module} (pip install 'fnn[{extra}]')")


needs_matplotlib = needs("matplotlib", "plot")
needs_pillow = needs("PIL", "image")
needs_tqdm = needs("tqdm", "progress")
needs_optuna = needs("optuna", "tune")
needs_mpi = pytest.mark.skipif(
    shutil.which("mpirun") is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs Open MPI's mpirun and mpi4py (pip install 'fnn[mpi]')",
)
