"""The static types catch one model's params passed to another (run mypy on snippets)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

from tests.support.mypy_cache import cache_args

HEADER = """
import numpy as np
import fnn
from fnn import nn, losses

key = fnn.random.key(0)
x = np.ones((2, 2), np.float32)
a = nn.serial(nn.dense(3), nn.relu())
b = nn.serial(nn.relu(), nn.dense(3))
pa = a.init(key, (2,))
"""


def run_mypy(tmp_path: Path, body: str) -> tuple[int, str]:
    source = tmp_path / "snippet.py"
    source.write_text(HEADER + body)
    out, err, status = api.run(["--strict", "--no-error-summary", *cache_args(), str(source)])
    return status, out + err


def test_matching_params_type_check(tmp_path: Path) -> None:
    status, out = run_mypy(
        tmp_path,
        "y = a.apply(pa, x)\n"
        "g = fnn.grad(a, losses.softmax_cross_entropy)(pa, x, np.zeros(2, int))\n"
        "reveal_type(g)\n",
    )
    assert status == 0, out
    assert "tuple[fnn.nn._dense.DenseParams, None]" in out


def test_params_of_another_model_are_a_type_error(tmp_path: Path) -> None:
    status, out = run_mypy(tmp_path, "b.apply(pa, x)\n")
    assert status == 1
    assert (
        'Argument 1 to "apply" of "Layer" has incompatible type "tuple[DenseParams, None]"' in out
    )
    assert '"tuple[None, DenseParams]"' in out
