from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pytest

import fnn
from fnn import random


def test_same_key_same_numbers(key: random.Key) -> None:
    a = random.normal(key, (4, 3))
    b = random.normal(key, (4, 3))
    assert a.dtype == np.float32
    assert a.tobytes() == b.tobytes()


def test_split_gives_distinct_keys_and_leaves_the_parent_alone(key: random.Key) -> None:
    before = key
    k1, k2, k3 = random.split(key, 3)
    assert key == before
    draws = [random.uniform(k, (8,)).tobytes() for k in (key, k1, k2, k3)]
    assert len(set(draws)) == 4
    assert random.split(key, 3) == (k1, k2, k3)


def test_fold_in_never_collides_with_split(key: random.Key) -> None:
    children = random.split(key, 4)
    folded = [random.fold_in(key, d) for d in range(4)]
    assert not set(children) & set(folded)
    assert random.fold_in(key, 7) == random.fold_in(key, 7)
    assert random.fold_in(key, 7) != random.fold_in(key, 8)


def test_keys_are_immutable(key: random.Key) -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        key.entropy = 3  # type: ignore[misc]


def test_no_global_state(key: random.Key) -> None:
    np.random.seed(1)  # noqa: NPY002 - the legacy global state must not matter
    a = random.normal(key, (3,))
    np.random.seed(2)  # noqa: NPY002
    np.random.random(10)  # noqa: NPY002
    b = random.normal(key, (3,))
    assert a.tobytes() == b.tobytes()


def test_draws(key: random.Key) -> None:
    p = random.permutation(key, 10)
    assert sorted(p.tolist()) == list(range(10)) and p.dtype == np.int64
    u = random.uniform(key, 1000, -2.0, 3.0, dtype=np.float64)
    assert u.dtype == np.float64 and u.min() >= -2.0 and u.max() < 3.0
    assert 0.4 < random.bernoulli(key, 0.5, (1000,)).mean() < 0.6
    n = random.normal(key, (20000,), std=2.0)
    assert abs(float(n.std()) - 2.0) < 0.05
    assert random.generator(key).random() == random.generator(key).random()


@pytest.mark.parametrize(
    ("seed", "error"),
    [(-1, ValueError), (2**63, ValueError), (1.5, TypeError), (True, TypeError), ("1", TypeError)],
)
def test_bad_seeds(seed: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="seed"):
        random.key(seed)


def test_bad_arguments(key: random.Key) -> None:
    with pytest.raises(TypeError, match=r"expected an fnn\.random\.Key"):
        random.split(0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"1 <= n <= 2\*\*31, got 0"):
        random.split(key, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        random.normal(key, (2,), dtype=np.int32)
    with pytest.raises(ValueError, match="low < high"):
        random.uniform(key, (2,), 1.0, 1.0)  # finite low < high
    with pytest.raises(ValueError, match="0 <= p <= 1"):
        random.bernoulli(key, 1.5, (2,))
    with pytest.raises(ValueError, match="non-negative"):
        random.normal(key, (-1,))


def test_public_alias() -> None:
    assert fnn.random.key(3) == random.Key(3)


def test_uniform_names_a_misplaced_dtype(key: random.Key) -> None:
    with pytest.raises(TypeError, match=r"uniform's low must be a number.*dtype by keyword"):
        random.uniform(key, (2,), np.float64)  # type: ignore[arg-type]


def test_paths_of_different_keys_never_join(key: random.Key) -> None:
    """NumPy's SeedSequence cuts a path entry of 2**32 or more into 32-bit words, where the
    entries of two paths could join: fold_in(fold_in(k, 0), 0), path (1, 1), drew what
    fold_in(k, 2**31), path (2**32 + 1,), draws. Data and split counts stay below 2**31."""
    with pytest.raises(ValueError, match=r"data must be in \[0, 2\*\*31\), got 2147483648"):
        random.fold_in(key, 2**31)
    with pytest.raises(ValueError, match=r"split needs 1 <= n <= 2\*\*31"):
        random.split(key, 2**31 + 1)
    last = random.fold_in(key, 2**31 - 1)
    assert max(last.path) < 2**32


def test_uniform_stays_below_high(key: random.Key) -> None:
    """float32 rounds about one in 3e7 float64 draws of [0, 1) up to 1.0."""
    drawn = random.uniform(random.fold_in(key, 9), (2**22,))
    assert drawn.max() < 1.0
    narrow = random.uniform(key, (64,), 1.0, 1.0 + 1e-7)
    assert narrow.dtype == np.float32 and (narrow < 1.0 + 1e-7).all() and (narrow >= 1.0).all()
    with pytest.raises(ValueError, match="finite low < high"):
        random.uniform(key, (2,), 0.0, float("inf"))
    for std in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="std must be a finite number >= 0"):
            random.normal(key, (2,), std=std)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_draws_of_shape_empty_tuple_are_0d_arrays(key: random.Key, dtype: Any) -> None:
    """uniform(key, ()) raised 'return arrays must be of ArrayType' (NumPy draws a scalar
    for shape (), which the clip below high cannot write into); normal gave a scalar."""
    for drawn, whole in [
        (random.uniform(key, (), dtype=dtype), random.uniform(key, (1,), dtype=dtype)),
        (random.normal(key, (), dtype), random.normal(key, (1,), dtype)),
    ]:
        assert isinstance(drawn, np.ndarray) and drawn.shape == () and drawn.dtype == dtype
        assert drawn == whole[0]  # the first draw of the same key
