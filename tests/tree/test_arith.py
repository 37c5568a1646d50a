"""fnn.tree's arithmetic (fnn/tree/_arith.py): map over several trees, add, scale, norms,
dtype conversion, and inputs left unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fnn import optim, tree
from tests.tree.samples import sample


def test_map_over_several_trees() -> None:
    a = (np.ones(2), {"k": 2.0})
    b = (np.full(2, 3.0), {"k": 4.0})
    out = tree.map(lambda x, y: x * y, a, b)
    np.testing.assert_array_equal(out[0], [3.0, 3.0])
    assert out[1]["k"] == 8.0


def test_arithmetic() -> None:
    a = {"x": np.array([1.0, 2.0], np.float32), "y": np.array(3.0, np.float32)}
    b = {"x": np.array([0.5, 0.5], np.float32), "y": np.array(1.0, np.float32)}
    np.testing.assert_array_equal(tree.add(a, b)["x"], [1.5, 2.5])
    np.testing.assert_array_equal(tree.sub(a, b)["x"], [0.5, 1.5])
    scaled = tree.scale(np.float64(0.5), a)
    assert scaled["x"].dtype == np.float32  # no float64 promotion
    np.testing.assert_array_equal(scaled["x"], [0.5, 1.0])
    zeros = tree.zeros_like(a)
    assert zeros["x"].dtype == np.float32 and not zeros["x"].any()
    assert tree.vdot(a, b) == pytest.approx(1.5 + 3.0)
    assert tree.global_norm(a) == pytest.approx(np.sqrt(1 + 4 + 9))
    assert tree.size(a) == 3


def test_astype_converts_floats_only() -> None:
    t = (np.ones(2, np.float32), np.arange(2))
    out = tree.astype(t, np.float64)
    assert out[0].dtype == np.float64 and out[1].dtype == t[1].dtype


def test_functions_leave_their_inputs_unchanged() -> None:
    a = sample()
    before = tree.map(np.copy, a)
    tree.add(a, a)
    tree.scale(3.0, a)
    tree.global_norm(a)
    tree.ravel(a["a"])
    assert tree.equal(a, before)


def test_a_float32_norm_past_float32s_range_is_summed_in_float64() -> None:
    """Squares of 1e20 overflow float32 and squares of 1e-25 underflow it: the norm is
    still the norm, and clipping by it scales rather than zeroing the gradient."""
    big = {"w": np.full(4, 1e20, np.float32)}
    assert tree.global_norm(big) == pytest.approx(2e20, rel=1e-6)
    assert tree.global_norm({"w": np.full(4, 1e-25, np.float32)}) == pytest.approx(2e-25, rel=1e-6)
    assert tree.vdot(big, big) == pytest.approx(4e40, rel=1e-6)
    assert tree.global_norm({"w": np.zeros(3, np.float32)}) == 0.0
    clip = optim.chain(optim.clip_by_global_norm(1.0))
    _, clipped = clip.update(clip.init({"w": np.zeros(4, np.float32)}), big)
    np.testing.assert_allclose(clipped["w"], 0.5, rtol=1e-6)


def test_a_norm_past_float64s_range_is_scaled_first() -> None:
    """Squares of 1e200 overflow float64 and squares of 1e-200 underflow it: the norm is
    found from the entries divided by the largest, so clipping keeps the direction."""
    assert tree.global_norm({"w": np.full(4, 1e200)}) == pytest.approx(2e200, rel=1e-15)
    assert tree.global_norm([np.full(2, 1e-200), np.full(2, -1e-200)]) == pytest.approx(2e-200)
    # squares summing to a subnormal keep few digits: 6e-6 off before
    assert tree.global_norm({"w": np.full(4, 1e-160)}) == pytest.approx(2e-160, rel=1e-15)
    assert tree.global_norm({"w": np.array([np.inf, 1.0])}) == math.inf
    assert math.isnan(tree.global_norm({"w": np.array([np.nan, 1.0])}))
    step = optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.1))
    params = {"w": np.ones(2)}
    _, moved = step.update(step.init(params), {"w": np.array([1e160, -1e160])})
    np.testing.assert_allclose(moved["w"], [1 - 0.1 / math.sqrt(2), 1 + 0.1 / math.sqrt(2)])
