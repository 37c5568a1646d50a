"""The typing suite: mypy --strict, run once on the user code of tests/typing/cases/, must
report exactly the errors its lines are marked with (``# E: <code>``) and no other, so a
correct line that mypy rejects fails this test, and so does a mistake mypy stops
catching. ``assert_type`` lines are correct lines: a type that drifts fails them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from mypy import api

import fnn
from tests.support.mypy_cache import cache_args

CASES = sorted((Path(__file__).parent / "cases").glob("*.py"))
MARK = re.compile(r"#\s*E:\s*([\w-]+)\s*$")
ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[\w-]+)\]$")


def expected_errors() -> set[tuple[str, int, str]]:
    found = set()
    for path in CASES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            mark = MARK.search(line)
            if mark:
                found.add((path.name, number, mark.group(1)))
    return found


def reported_errors(out: str) -> set[tuple[str, int, str]]:
    found = set()
    for line in out.splitlines():
        error = ERROR.match(line)
        if error:
            found.add((Path(error["path"]).name, int(error["line"]), error["code"]))
    return found


def test_mypy_reports_exactly_the_marked_mistakes() -> None:
    assert len(CASES) >= 2
    expected = expected_errors()
    assert len(expected) >= 15  # the suite's mistakes are there to be caught
    out, err, _ = api.run(
        ["--strict", "--no-error-summary", "--show-error-codes", *cache_args(), *map(str, CASES)]
    )
    assert not err, err
    reported = reported_errors(out)
    assert sorted(reported - expected) == [], f"rejected correct lines:\n{out}"
    assert sorted(expected - reported) == [], "mistakes mypy no longer catches"


def test_a_width_mismatch_that_types_cannot_see_names_both_sides_at_run_time() -> None:
    """``mlp((16, 3))`` and ``mlp((8, 3))`` have one params type; the check at run time
    names where the params differ, what the model needs and what came."""
    key = fnn.random.key(0)
    params = fnn.nn.mlp((8, 3)).init(key, (4,))
    with pytest.raises(
        ValueError, match=r"at \[1\]\.w: the model needs float32 \(4, 16\), got float32 \(4, 8\)"
    ):
        fnn.nn.mlp((16, 3)).apply(params, np.ones((2, 4), np.float32))
