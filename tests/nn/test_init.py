"""Weight initializers (fnn/nn/_init.py): their scales, and a user's own."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnn
from fnn import nn, random


@pytest.mark.parametrize(
    ("name", "std"),
    [
        ("he_normal", np.sqrt(2 / 400)),
        ("he_uniform", np.sqrt(2 / 400)),
        ("glorot_normal", np.sqrt(2 / 600)),
        ("glorot_uniform", np.sqrt(2 / 600)),
        ("xavier_normal", np.sqrt(2 / 600)),
        ("xavier_uniform", np.sqrt(2 / 600)),
        ("lecun_normal", np.sqrt(1 / 400)),
        ("zeros", 0.0),
    ],
)
def test_initializers_have_the_documented_scale(key: random.Key, name: str, std: float) -> None:
    w = nn.dense(200, weight_init=name).init(key, (400,)).w
    assert abs(float(w.std()) - std) <= 0.03 * std
    assert abs(float(w.mean())) <= 0.03 * max(std, 1e-9)


def test_custom_initializer(key: random.Key) -> None:
    def ones(k: random.Key, shape: tuple[int, ...], dtype: Any) -> np.ndarray[Any, Any]:
        return np.ones(shape, dtype)

    layer = nn.dense(2, weight_init=ones)
    assert layer.spec is None
    assert (layer.init(key, (3,)).w == 1).all()


def test_made_initializers_are_named_and_found_again(key: random.Key) -> None:
    layer = nn.dense(3, weight_init=nn.normal(0.02))
    assert layer.spec is not None and layer.spec["weight_init"] == "normal(0.02)"
    rebuilt = nn.from_spec(layer.spec)
    assert fnn.tree.equal(rebuilt.init(key, (4,)), layer.init(key, (4,)))
    assert nn.dense(3, weight_init=nn.he_uniform).spec == nn.dense(3, weight_init="he_uniform").spec
    half = nn.initializer("constant(0.5)")(key, (2,), np.float64)
    np.testing.assert_array_equal(half, [0.5, 0.5])
    assert repr(nn.initializer("normal(1e-3)")) == "normal(0.001)"


def test_a_function_of_ones_own_leaves_the_spec_undescribed() -> None:
    def mine(key: random.Key, shape: tuple[int, ...], dtype: Any = np.float32) -> Any:
        return np.zeros(shape, dtype)

    assert nn.dense(3, weight_init=mine).spec is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("normal(big)", r"normal\(...\) needs a number, as in normal\(0.02\), got 'normal\(big\)'"),
        ("normal(-1)", "normal std must be a finite number > 0, got -1"),
        ("uniform(0.1)", "unknown weight initializer 'uniform\\(0.1\\)'"),
    ],
)
def test_bad_made_initializer_names(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        nn.initializer(name)
