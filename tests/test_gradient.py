from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnn
from fnn import losses, nn, random

TOL = 1e-6


def test_the_design_contract_example(key: random.Key) -> None:
    k_init, k_data = random.split(key)
    mlp = nn.serial(nn.flatten(), nn.dense(128), nn.relu(), nn.dense(64), nn.relu(), nn.dense(10))
    params = mlp.init(k_init, (28, 28))
    x = random.uniform(k_data, (8, 28, 28))
    logits = mlp.apply(params, x)
    assert logits.shape == (8, 10) and logits.dtype == np.float32
    g = fnn.grad(mlp, losses.softmax_cross_entropy)(params, x, np.arange(8))
    fnn.tree.assert_same_structure(params, g)
    for p, gp in zip(fnn.tree.leaves(params), fnn.tree.leaves(g), strict=True):
        assert p.shape == gp.shape and gp.dtype == np.float32


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "leaky_relu"])
def test_mlp_gradients_in_float64(key: random.Key, activation: str) -> None:
    model = nn.mlp((7, 5, 3), activation)
    params = model.init(key, (2, 3), dtype=np.float64)
    x = random.normal(random.fold_in(key, 1), (4, 2, 3), dtype=np.float64)
    y = np.array([0, 1, 2, 1])
    result = fnn.check_model(model, losses.softmax_cross_entropy, params, x, y)
    assert result.max_rel_error < TOL, str(result)
    assert result.checked == fnn.tree.size(params)


def test_check_grad_reports_where_a_wrong_gradient_is(key: random.Key) -> None:
    model = nn.mlp((4, 3))
    params = model.init(key, (2,), dtype=np.float64)
    x = random.normal(key, (3, 2), dtype=np.float64)
    y = np.array([0, 1, 2])
    vg = fnn.value_and_grad(model, losses.softmax_cross_entropy)
    _, grads = vg(params, x, y)
    wrong_w = grads[3].w.copy()
    wrong_w[2, 1] += 0.5
    broken = (*grads[:3], nn.DenseParams(wrong_w, grads[3].b))
    result = fnn.check_grad(lambda p: vg(p, x, y)[0], broken, params)
    assert result.where == "[3].w[2, 1]"
    assert result.max_rel_error > 0.1
    assert "at [3].w[2, 1]" in str(result)


def test_check_grad_subsets_are_deterministic(key: random.Key) -> None:
    at = random.normal(key, (50,), dtype=np.float64)

    def f(v: Any) -> float:
        return float(np.sum(np.sin(v)))

    a = fnn.check_grad(f, np.cos(at), at, max_entries=10, key=key)
    b = fnn.check_grad(f, np.cos(at), at, max_entries=10, key=key)
    assert a == b and a.checked == 10 and a.max_rel_error < TOL


def test_check_grad_rejects_mismatched_gradients(key: random.Key) -> None:
    with pytest.raises(ValueError, match="do not have the same structure"):
        fnn.check_grad(lambda t: 0.0, (np.ones(2),), (np.ones(2), np.ones(1)))
    with pytest.raises(ValueError, match=r"has shape \(3,\), expected \(2,\)"):
        fnn.check_grad(lambda t: 0.0, np.ones(3), np.ones(2))
    with pytest.raises(TypeError, match="needs float leaves"):
        fnn.check_grad(lambda t: 0.0, np.ones(2), np.arange(2))


def test_value_and_grad_returns_the_loss(key: random.Key) -> None:
    model = nn.mlp((3,))
    params = model.init(key, (2,))
    x = random.normal(key, (4, 2))
    y = np.array([0, 1, 2, 0])
    value, grads = fnn.value_and_grad(model, losses.softmax_cross_entropy)(params, x, y)
    assert value == losses.softmax_cross_entropy(model.apply(params, x), y)[0]
    assert fnn.tree.equal(grads, fnn.grad(model, losses.softmax_cross_entropy)(params, x, y))
