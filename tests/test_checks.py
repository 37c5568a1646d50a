"""fnn/_checks.py: the input checks every public entry point shares."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fnn import _checks


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_finite_passes_large_finite_arrays_without_a_warning(dtype: type[np.floating]) -> None:
    """A sum of finite values that overflows the dtype (60,000 float16 ones reach 65,504;
    values near the largest float32 or float64 overflow in a few terms) is no reason to
    warn or raise: every value is finite."""
    big = np.finfo(dtype).max / 4
    x = np.full((300, 200), big, dtype)
    with warnings.catch_warnings(), np.errstate(all="warn"):
        warnings.simplefilter("error")
        assert _checks.finite(x, "x") is x
        ones = np.ones((60000, 4), dtype)
        assert _checks.finite(ones, "x") is ones
    assert _checks.finite(x, "x") is x  # under the tests' np.seterr(over="raise") too


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_finite_names_the_first_non_finite_entry(dtype: type[np.floating], bad: float) -> None:
    x = np.full((300, 200), np.finfo(dtype).max / 4, dtype)
    x[7, 9] = bad
    x[8, 0] = bad
    with pytest.raises(ValueError, match=r"x must hold finite values, got .+ at index \(7, 9\)"):
        _checks.finite(x, "x")


def test_finite_sees_opposite_infinities() -> None:
    """inf + -inf sums to NaN: still refused, without an 'invalid value' warning."""
    x = np.array([np.inf, -np.inf], np.float16)
    with pytest.raises(ValueError, match=r"\(2 non-finite entries in all\)"):
        _checks.finite(x, "x")


def test_finite_leaves_names_the_first_non_finite_leaf() -> None:
    leaves = [
        ("mask", np.array([True, False])),
        ("step", 3),
        ("params[1].w", np.ones((2, 2), np.float32)),
        ("params[1].b", np.array([0.0, np.nan], np.float32)),
        ("loss", float("inf")),
    ]
    with pytest.raises(ValueError, match=r"^params\[1\]\.b must hold finite values, got nan"):
        _checks.finite_leaves(leaves)
    with pytest.raises(ValueError, match=r"^loss must hold finite values, got inf at index \(\)"):
        _checks.finite_leaves(leaves[:3] + leaves[4:])
    _checks.finite_leaves([*leaves[:3], ("z", np.array([1 + 2j]))])
