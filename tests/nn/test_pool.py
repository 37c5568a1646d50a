"""max_pool and avg_pool (fnn/nn/_pool.py): gradients, ties, agreement with PyTorch in
float64, and pooling before a ReLU."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import nn, random
from tests.nn.images import _pair, nchw, nhwc

TOL = 1e-6


def pool_input(key: random.Key, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """Distinct values (no ties inside a window, so max has one gradient)."""
    x = random.permutation(key, int(np.prod(shape))).reshape(shape).astype(np.float64)
    return x / x.size + random.uniform(random.fold_in(key, 1), shape, dtype=np.float64) * 1e-3


POOL_CASES = [(2, None, (6, 7)), (3, None, (7, 8)), ((2, 3), None, (5, 7)), (3, 2, (7, 8)),
              ((2, 2), (1, 2), (5, 6)), (1, None, (3, 4))]  # fmt: skip


@pytest.mark.parametrize("make", [nn.max_pool, nn.avg_pool])
@pytest.mark.parametrize(("window", "stride", "hw"), POOL_CASES)
def test_pool_gradients(key: random.Key, make: Any, window: Any, stride: Any, hw: Any) -> None:
    layer = make(window, stride)
    x = pool_input(key, (2, *hw, 3))
    report = fnn.check_layer(layer, None, x)
    assert report.max_rel_error < TOL, report


def test_max_pool_gives_a_tied_window_gradient_to_its_first_maximum() -> None:
    x = np.zeros((1, 4, 4, 1))
    x[0, 0, 3, 0] = x[0, 1, 2, 0] = 1.0  # a tie in the window at rows 0-1, columns 2-3
    for layer in (nn.max_pool(2), nn.max_pool(2, 1)):
        y, _, residuals = layer.forward(None, x, None, None)
        dx = layer.backward(None, residuals, np.ones_like(y), True, None)
        assert dx is not None and dx.sum() == y.size  # every output's gradient goes once
    tiled = nn.max_pool(2)
    y, _, residuals = tiled.forward(None, x, None, None)
    dx = tiled.backward(None, residuals, np.ones_like(y), True, None)
    assert dx is not None
    np.testing.assert_array_equal(
        dx[0, :, :, 0], [[1, 0, 0, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    )


def test_relu_and_max_pool_commute_values_and_gradients(key: random.Key) -> None:
    """What lets the CNN recipe pool before its ReLU: the same outputs and gradients, ties
    and windows with nothing above zero included."""
    x = np.round(random.normal(key, (3, 6, 8, 2), np.float64), 1)  # many ties
    x[0, :2, :2] = -1.0  # a window with nothing above zero
    dy = random.normal(random.fold_in(key, 1), (3, 3, 4, 2), np.float64)
    results = []
    for model in (nn.serial(nn.relu(), nn.max_pool(2)), nn.serial(nn.max_pool(2), nn.relu())):
        y, _, residuals = model.forward((None, None), x, None, None)
        results.append((y, model.backward((None, None), residuals, dy, True, (None, None))))
    (y1, dx1), (y2, dx2) = results
    assert y1.tobytes() == y2.tobytes()
    assert dx1 is not None and dx2 is not None and np.array_equal(dx1, dx2)


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("window", "stride", "hw"), POOL_CASES)
def test_pools_agree_with_pytorch(
    torch: ModuleType, key: random.Key, kind: str, window: Any, stride: Any, hw: Any
) -> None:
    layer = (nn.max_pool if kind == "max" else nn.avg_pool)(window, stride)
    x = pool_input(key, (3, *hw, 2))
    y, _, residuals = layer.forward(None, x, None, None)
    dy = random.normal(key, y.shape, np.float64)
    dx = layer.backward(None, residuals, dy, True, None)
    assert dx is not None
    pool = torch.nn.MaxPool2d if kind == "max" else torch.nn.AvgPool2d
    tx = torch.tensor(nchw(x), requires_grad=True)
    ty = pool(_pair(window), _pair(stride if stride is not None else window))(tx)
    ty.backward(torch.tensor(nchw(dy)))
    np.testing.assert_allclose(y, nhwc(ty), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dx, nhwc(tx.grad), rtol=1e-12, atol=1e-15)
