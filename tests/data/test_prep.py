from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnn
from fnn import data, random


def test_to_float_scales_uint8_to_unit_interval() -> None:
    images = np.array([[0, 51], [128, 255]], np.uint8)
    before = images.copy()
    x = data.to_float(images)
    assert x.dtype == np.float32 and x.shape == (2, 2)
    assert x[0, 0] == 0.0 and x[1, 1] == 1.0
    assert x[0, 1] == np.float32(0.2)
    np.testing.assert_array_equal(images, before)  # input untouched
    x64 = data.to_float(images, dtype=np.float64)
    assert x64.dtype == np.float64 and x64[1, 0] == 128 / 255


def test_to_float_rejects_what_is_not_uint8() -> None:
    with pytest.raises(
        TypeError, match="expects uint8 images with values 0-255, got dtype float32"
    ):
        data.to_float(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="must be a NumPy array, got list"):
        data.to_float([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float32 or float64, got int32"):
        data.to_float(np.zeros(3, np.uint8), dtype=np.int32)
    assert data.to_float(np.full((), 255, np.uint8)) == 1.0  # any shape, even 0-d


def test_flatten_is_a_view_when_it_can_be() -> None:
    images = np.zeros((5, 28, 28), np.uint8)
    flat = data.flatten(images)
    assert flat.shape == (5, 784) and np.shares_memory(flat, images)
    assert data.flatten(np.arange(4)).shape == (4, 1)
    assert data.flatten(np.zeros((0, 28, 28))).shape == (0, 784)
    strided = np.arange(24).reshape(2, 3, 4).transpose(0, 2, 1)
    np.testing.assert_array_equal(data.flatten(strided), strided.reshape(2, 12))
    with pytest.raises(ValueError, match="0-d array"):
        data.flatten(np.zeros(()))


def test_one_hot() -> None:
    labels = np.array([2, 0, 1, 2])
    out = data.one_hot(labels, 3)
    assert out.dtype == np.float32 and out.shape == (4, 3)
    np.testing.assert_array_equal(out.argmax(axis=1), labels)
    np.testing.assert_array_equal(out.sum(axis=1), 1.0)
    assert data.one_hot(labels.astype(np.uint8), 3, dtype=np.int64).dtype == np.int64
    assert data.one_hot(np.zeros(0, int), 10).shape == (0, 10)


@pytest.mark.parametrize(
    ("labels", "k", "error", "message"),
    [
        (np.array([0, 3]), 3, ValueError, r"must be in \[0, 3\) for 3 classes, got 3"),
        (np.array([-1, 0]), 3, ValueError, "got -1"),
        (np.array([0.0, 1.0]), 3, TypeError, "integer dtype, got float64"),
        (np.zeros((2, 2), int), 3, ValueError, r"shape \(2,\)"),
        (np.array([0]), 0, ValueError, "num_classes must be >= 1"),
        ([0, 1], 3, TypeError, "NumPy array, got list"),
    ],
)
def test_one_hot_errors(labels: Any, k: int, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        data.one_hot(labels, k)
    with pytest.raises(TypeError, match="float or integer dtype"):
        data.one_hot(np.array([0]), 2, dtype=bool)


def test_split_is_a_deterministic_partition(key: random.Key) -> None:
    x = np.arange(100, dtype=np.float32).reshape(50, 2)
    y = np.arange(50)
    (xt, yt), (xv, yv) = data.split(key, x, y, 0.2)
    assert xt.shape == (40, 2) and yt.shape == (40,) and xv.shape == (10, 2) and yv.shape == (10,)
    assert sorted([*yt.tolist(), *yv.tolist()]) == list(range(50))  # disjoint and complete
    np.testing.assert_array_equal(xt[:, 0], 2 * yt)  # rows stay paired with their labels
    np.testing.assert_array_equal(xv[:, 0], 2 * yv)
    assert (np.diff(yt) > 0).all() and (np.diff(yv) > 0).all()  # original order kept
    (xt2, yt2), (xv2, yv2) = data.split(key, x, y, 0.2)
    for a, b in ((xt, xt2), (yt, yt2), (xv, xv2), (yv, yv2)):
        assert a.tobytes() == b.tobytes()
    (_, _), (_, yv3) = data.split(fnn.random.split(key)[0], x, y, 0.2)
    assert yv3.tolist() != yv.tolist()
    assert not np.shares_memory(xt, x) and not np.shares_memory(xv, x)


@pytest.mark.parametrize(
    ("fraction", "n", "error", "message"),
    [
        (0.0, 10, ValueError, "strictly between 0 and 1, got 0.0"),
        (1.0, 10, ValueError, "strictly between 0 and 1"),
        (-0.5, 10, ValueError, "strictly between 0 and 1"),
        (0.01, 10, ValueError, r"leaves an empty part \(10 to train, 0 to validate\)"),
        (0.99, 10, ValueError, r"leaves an empty part \(0 to train, 10 to validate\)"),
        (True, 10, TypeError, "fraction must be a number, got True"),
        ("0.1", 10, TypeError, "fraction must be a number"),
    ],
)
def test_split_errors(
    key: random.Key, fraction: Any, n: int, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        data.split(key, np.zeros((n, 2)), np.zeros(n), fraction)


def test_split_checks_key_and_lengths(key: random.Key) -> None:
    with pytest.raises(TypeError, match=r"needs an fnn\.random\.Key, got 0"):
        data.split(0, np.zeros(4), np.zeros(4), 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"same number of examples, got x \(4,\) and y \(3,\)"):
        data.split(key, np.zeros(4), np.zeros(3), 0.5)
