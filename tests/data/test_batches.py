from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fnn
from fnn import data, random


def xy(n: int = 10) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3)
    return x, np.arange(n)


def test_same_key_same_batches_and_the_order_is_the_keys_permutation(key: random.Key) -> None:
    x, y = xy(10)
    one = list(data.batches(key, x, y, 4))
    two = list(data.batches(key, x, y, 4))
    assert [b.tobytes() for pair in one for b in pair] == [
        b.tobytes() for pair in two for b in pair
    ]
    order = fnn.random.permutation(key, 10)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in one]), order)
    for xb, yb in one:
        np.testing.assert_array_equal(xb, x[yb])  # each row stays with its label
    other = list(data.batches(fnn.random.fold_in(key, 1), x, y, 4))
    assert np.concatenate([yb for _, yb in other]).tolist() != order.tolist()


def test_sizes_and_drop_last(key: random.Key) -> None:
    x, y = xy(10)
    assert [len(yb) for _, yb in data.batches(key, x, y, 4)] == [4, 4, 2]
    assert [len(yb) for _, yb in data.batches(key, x, y, 4, drop_last=True)] == [4, 4]
    assert [xb.shape for xb, _ in data.batches(key, x, y, 5)] == [(5, 2, 3), (5, 2, 3)]
    assert [len(yb) for _, yb in data.batches(key, x, y, 64)] == [10]
    assert list(data.batches(key, x, y, 64, drop_last=True)) == []
    assert list(data.batches(key, x[:0], y[:0], 4)) == []


def test_in_order_without_a_key() -> None:
    x, y = xy(5)
    got = list(data.batches(None, x, y, 2, shuffle=False))
    assert [yb.tolist() for _, yb in got] == [[0, 1], [2, 3], [4]]
    np.testing.assert_array_equal(got[1][0], x[2:4])


@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_are_fresh_arrays_and_inputs_are_untouched(key: random.Key, shuffle: bool) -> None:
    x, y = xy(8)
    x.flags.writeable = False  # read-only data works, and nothing writes to it
    y_before = y.copy()
    kept = list(data.batches(key, x, y, 3, shuffle=shuffle))
    for i, (xb, yb) in enumerate(kept):
        assert xb.flags.writeable and yb.flags.writeable and xb.flags.owndata
        assert not np.shares_memory(xb, x) and not np.shares_memory(yb, y)
        for xo, yo in kept[i + 1 :]:
            assert not np.shares_memory(xb, xo) and not np.shares_memory(yb, yo)
    kept[0][0][...] = -1
    kept[0][1][...] = -1
    np.testing.assert_array_equal(y, y_before)
    assert (x >= 0).all()
    assert all((xb >= 0).all() for xb, _ in kept[1:])


def test_labels_may_be_one_hot(key: random.Key) -> None:
    x, y = xy(6)
    targets = data.one_hot(y, 6)
    for xb, tb in data.batches(key, x, targets, 4):
        np.testing.assert_array_equal(xb, x[tb.argmax(axis=1)])


def test_errors_are_raised_at_the_call_not_at_the_first_batch(key: random.Key) -> None:
    x, y = xy(4)
    with pytest.raises(TypeError, match=r"needs an fnn\.random\.Key to shuffle, got None"):
        data.batches(None, x, y, 2)
    with pytest.raises(
        ValueError, match=r"same number of examples, got x \(4, 2, 3\) and y \(3,\)"
    ):
        data.batches(key, x, y[:3], 2)
    with pytest.raises(TypeError, match="x must be a NumPy array, got list"):
        data.batches(key, [[1]], y, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="0-d array"):
        data.batches(key, x, np.zeros(()), 2)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        data.batches(key, x, y, 0)
    for bad in (2.0, True):
        with pytest.raises(TypeError, match="batch_size must be an int"):
            data.batches(key, x, y, bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        data.batches(key, x, y, 2, shuffle=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="drop_last must be True or False"):
        data.batches(key, x, y, 2, drop_last=None)  # type: ignore[arg-type]


@given(n=st.integers(0, 300), size=st.integers(1, 70), drop_last=st.booleans())
def test_num_batches_counts_what_batches_yields(n: int, size: int, drop_last: bool) -> None:
    x = np.zeros((n, 1), np.uint8)
    got = [len(yb) for _, yb in data.batches(random.key(0), x, np.arange(n), size, True, drop_last)]
    assert len(got) == data.num_batches(n, size, drop_last)
    assert sum(got) == (n - n % size if drop_last else n)
    assert all(b == size for b in got[:-1])


def test_num_batches_errors() -> None:
    assert data.num_batches(60000, 128) == 469
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        data.num_batches(-1, 2)
    with pytest.raises(TypeError, match="n must be an int, got float"):
        data.num_batches(10.0, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        data.num_batches(4, 0)
