"""Weight initializers (fnn/nn/_init.py): their scales, and a user's own."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

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
