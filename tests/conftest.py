"""Shared fixtures: one key, strict floating-point error handling in every test, and
PyTorch for the oracle tests.

An oracle test (marked ``oracle``) compares an fnn layer with PyTorch's in float64 and
takes the module from the ``torch`` fixture, the one place that imports it. Without
PyTorch these tests skip, saying why; with ``FNN_REQUIRE_ORACLES=1`` in the environment
(as ``.ci/test`` sets on its main run) they fail instead, so a CI run whose PyTorch is
missing cannot pass. The terminal summary counts the oracle tests that ran and skipped.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pytest

import fnn

REQUIRE_ORACLES = "FNN_REQUIRE_ORACLES"
NO_TORCH = "the PyTorch oracle needs torch (pip install -e '.[oracle]')"


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


@pytest.fixture
def torch(request: pytest.FixtureRequest) -> ModuleType:
    """PyTorch, for a test marked ``oracle``; a skip (a failure under
    FNN_REQUIRE_ORACLES=1) when it cannot be imported."""
    if request.node.get_closest_marker("oracle") is None:
        pytest.fail(f"{request.node.name} uses PyTorch: mark it @pytest.mark.oracle")
    if os.environ.get(REQUIRE_ORACLES) == "1":
        try:
            return importlib.import_module("torch")
        except ImportError as e:
            pytest.fail(f"{REQUIRE_ORACLES}=1 but torch cannot be imported ({e}); {NO_TORCH}")
    module: ModuleType = pytest.importorskip("torch", reason=NO_TORCH)
    return module


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line: how many oracle tests ran (and how many of them failed) and skipped."""
    ran = skipped = failed = 0
    for reports in terminalreporter.stats.values():
        for report in reports:
            if not isinstance(report, pytest.TestReport) or "oracle" not in report.keywords:
                continue
            if report.skipped:
                skipped += 1
            elif report.when == "call":
                ran += 1
                failed += report.failed
            elif report.failed:  # an error in setup: the test did not run
                failed += 1
    if ran or skipped or failed:
        line = f"oracle tests (PyTorch, float64): {ran} ran, {skipped} skipped"
        terminalreporter.write_line(line + (f", {failed} failed" if failed else ""))
