"""mlp (fnn/nn/_mlp.py): its structure and options, and its gradients."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fnn
from fnn import nn, random
from tests.support.data import away_from_zero

TOL = 1e-6


def test_mlp_structure_and_options(key: random.Key) -> None:
    model = nn.mlp((16, 8, 3), "sigmoid", final_activation="softmax")
    params = model.init(key, (5,))
    kinds = [type(p).__name__ for p in params]
    dense_and_none = ["DenseParams", "NoneType"]
    assert kinds == ["NoneType", *dense_and_none, *dense_and_none, *dense_and_none]
    out = model.apply(params, np.ones((2, 5), np.float32))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    spec = model.spec
    assert spec is not None
    assert spec["layers"][1] == {
        "layer": "dense", "features": 16, "weight_init": "glorot_uniform", "bias": True
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.mlp((3,), "swish")


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 6),
    features=st.integers(1, 5),
    hidden=st.integers(1, 6),
    classes=st.integers(2, 4),
    activation=st.sampled_from(["relu", "sigmoid", "tanh", "leaky_relu"]),
    seed=st.integers(0, 2**32),
)
def test_mlp_gradient_property(
    batch: int, features: int, hidden: int, classes: int, activation: str, seed: int
) -> None:
    k = random.key(seed)
    model = nn.mlp((hidden, classes), activation)
    params = model.init(k, (features,), dtype=np.float64)
    x = away_from_zero(random.fold_in(k, 1), (batch, features))
    y = random.permutation(random.fold_in(k, 2), batch) % classes
    out = model.apply(params, x)
    assert out.shape == (batch, classes)
    pre = x @ params[1].w
    assume(np.abs(pre).min() >= 1e-3)  # a ReLU kink inside the stencil is not a gradient bug
    result = fnn.check_model(model, fnn.losses.softmax_cross_entropy, params, x, y)
    assert result.max_rel_error < TOL, str(result)
