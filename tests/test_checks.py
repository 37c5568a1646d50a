"""fnn/_checks.py, the input checks every public entry point shares, and what they give:
bad input at the public entry points fails early with a clear error, never deep in NumPy."""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import _checks, data, losses, metrics, nn, optim

KEY = fnn.random.key(0)

MODEL = nn.mlp((4, 3))

PARAMS = MODEL.init(KEY, (5,))

X = np.ones((2, 5), np.float32)

Y = np.array([0, 1])

GRAD = fnn.grad(MODEL, losses.softmax_cross_entropy)


def bad(value: Any) -> Any:
    """``value`` typed as Any: the calls below are wrong on purpose."""
    return value


CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("params of another kind", lambda: MODEL.apply(bad(None), X), TypeError, "expected a tuple"),
    (
        "x without batch axis",
        lambda: MODEL.apply(PARAMS, X[0]),
        ValueError,
        r"examples of shape \(\)",
    ),
    ("x a number", lambda: MODEL.apply(PARAMS, np.float32(1)), TypeError, "NumPy array"),
    ("key not a Key", lambda: MODEL.init(bad(0), (5,)), TypeError, "fnn.random.Key"),
    ("negative shape", lambda: MODEL.init(KEY, (-5,)), TypeError, "positive ints"),
    ("float labels", lambda: GRAD(PARAMS, X, np.array([0.0, 1.0])), ValueError, "shape"),
    ("labels as list", lambda: GRAD(PARAMS, X, bad([0, 1])), TypeError, "NumPy array"),
    (
        "inf in x",
        lambda: GRAD(PARAMS, np.full((2, 5), np.inf, np.float32), Y),
        ValueError,
        "finite",
    ),
    ("string hyperparameter", lambda: optim.adam(b1=bad("0.9")), TypeError, "b1 must be a number"),
    (
        "string lam",
        lambda: losses.l2_penalty(PARAMS, bad("0.1")),
        TypeError,
        "lam must be a number",
    ),
    ("bool slope", lambda: nn.leaky_relu(True), TypeError, "negative_slope must be a number"),
    (
        "string validation split",
        lambda: fnn.fit(
            MODEL,
            losses.softmax_cross_entropy,
            optim.sgd(),
            X,
            Y,
            key=KEY,
            epochs=1,
            validation_split=bad("0.1"),
        ),
        TypeError,
        "validation_split must be a number",
    ),
    ("batch size zero", lambda: list(data.batches(KEY, X, Y, 0)), ValueError, "batch_size"),
    ("shuffle without key", lambda: list(data.batches(None, X, Y, 1)), TypeError, "Key"),
    ("unknown dataset", lambda: data.load_dataset("cifar"), ValueError, "unknown dataset"),
    (
        "missing IDX file",
        lambda: data.read_idx("/nonexistent"),
        FileNotFoundError,
        "does not exist",
    ),
    ("missing checkpoint", lambda: fnn.load("/nonexistent.npz"), FileNotFoundError, "No such file"),
    ("path not a path", lambda: fnn.load(bad(3)), TypeError, "str or os.PathLike"),
    (
        "f not scalar",
        lambda: fnn.check_grad(bad(lambda p: np.ones(2)), np.ones(2), np.ones(2)),
        TypeError,
        "return a scalar",
    ),
    (
        "empty accuracy",
        lambda: metrics.accuracy(np.array([], np.int64), np.array([], np.int64)),
        ValueError,
        "at least one",
    ),
    (
        "float16 params",
        lambda: nn.dense(3).init(KEY, (2,), np.float16),
        TypeError,
        "float32 or float64",
    ),
]


@pytest.mark.parametrize(("name", "call", "error", "message"), CASES, ids=[c[0] for c in CASES])
def test_clear_errors(
    name: str, call: Callable[[], Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        call()
    origin = traceback.extract_tb(info.value.__traceback__)[-1].filename
    assert "/fnn/" in origin, f"raised deep in {origin}, not by fnn's own checks"


def test_an_empty_batch_is_not_an_error() -> None:
    out = MODEL.apply(PARAMS, np.ones((0, 5), np.float32))
    assert out.shape == (0, 3)


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


def test_int_vector_takes_1d_integer_arrays_only() -> None:
    for ok in (np.arange(3), np.arange(3, dtype=np.uint8), np.zeros(0, np.int32)):
        assert _checks.int_vector(ok, "ids") is ok
    with pytest.raises(TypeError, match="ids must be a NumPy array, got list"):
        _checks.int_vector([1, 2], "ids")
    with pytest.raises(TypeError, match="ids must be integers, got dtype float64"):
        _checks.int_vector(np.ones(2), "ids")
    with pytest.raises(TypeError, match="labels must be class labels, got dtype bool"):
        _checks.int_vector(np.ones(2, bool), "labels", "class labels")
    with pytest.raises(ValueError, match=r"ids must have shape \(n,\), got \(1, 2\)"):
        _checks.int_vector(np.ones((1, 2), np.int64), "ids")
