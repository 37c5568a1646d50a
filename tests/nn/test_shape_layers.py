"""reshape and global_avg_pool: shapes, errors, gradients and PyTorch agreement."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

import fnn
from fnn import losses, nn, random
from fnn.nn._shape_layers import global_avg_pool, reshape

TOL = 1e-6


@pytest.mark.parametrize(
    ("shape", "in_shape", "out_shape"),
    [
        ((6,), (2, 3), (6,)),
        ((-1,), (2, 3), (6,)),
        ([3, 2], (6,), (3, 2)),
        ((2, -1, 1), (2, 3), (2, 3, 1)),
        ((1, 1), (1,), (1, 1)),
        ((), (1, 1), ()),
    ],
)
def test_reshape_shapes_and_values(
    key: random.Key, shape: tuple[int, ...], in_shape: tuple[int, ...], out_shape: tuple[int, ...]
) -> None:
    layer = reshape(shape)
    assert layer.output_shape(in_shape) == out_shape
    assert layer.init(key, in_shape) is None
    x = random.normal(key, (4, *in_shape))
    y = layer.apply(None, x)
    assert y.shape == (4, *out_shape) and y.dtype == np.float32
    np.testing.assert_array_equal(y, x.reshape(4, *out_shape))  # C order, per example


def test_reshape_gradient_and_backward(key: random.Key) -> None:
    layer = reshape((3, -1))
    x = random.normal(key, (2, 4, 3), dtype=np.float64)
    report = fnn.check_layer(layer, None, x)
    assert report.max_rel_error < TOL, report
    y, _, res = layer.forward(None, x, None, None)
    dy = random.normal(random.fold_in(key, 1), y.shape, dtype=np.float64)
    dx = layer.backward(None, res, dy, True, None)
    assert dx is not None
    np.testing.assert_array_equal(dx, dy.reshape(x.shape))
    assert layer.backward(None, res, dy, False, None) is None


def test_reshape_spec_round_trip() -> None:
    layer = reshape((2, -1))
    assert layer.spec == {"layer": "reshape", "shape": [2, -1]}
    rebuilt = nn.from_spec(layer.spec)
    assert rebuilt.spec == layer.spec and rebuilt.output_shape((4, 3)) == (2, 6)


@pytest.mark.parametrize(
    ("shape", "error", "message"),
    [
        ((2, -1, -1), ValueError, r"only one dimension \(one -1\), got \(2, -1, -1\)"),
        ((0, 3), TypeError, r"tuple or list of positive ints \(one may be -1\), got \(0, 3\)"),
        ((-2,), TypeError, "got"),
        ((2.0,), TypeError, "got"),
        ((True,), TypeError, "got"),
        (6, TypeError, "got 6"),
        ("23", TypeError, "got '23'"),
    ],
)
def test_reshape_rejects_bad_shapes(shape: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        reshape(shape)  # type: ignore[arg-type]


def test_reshape_rejects_inputs_of_another_size(key: random.Key) -> None:
    layer = reshape((4, -1))
    message = r"reshape cannot make examples of shape \(2, 3\) \(6 entries\) into \(batch, 4, -1\)"
    with pytest.raises(ValueError, match=message):
        layer.init(key, (2, 3))
    with pytest.raises(ValueError, match=message):
        layer.shapes((2, 3))
    with pytest.raises(ValueError, match=message):
        layer.apply(None, np.zeros((5, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(6 entries\) into \(batch, 5\)"):
        reshape((5,)).init(key, (6,))
    with pytest.raises(ValueError, match=r"into \(batch,\)"):
        reshape(()).shapes((2,))


def test_reshape_in_a_model_trains(key: random.Key) -> None:
    model = nn.serial(nn.dense(6), reshape((2, 3)), nn.flatten(), nn.dense(3))
    params = model.init(key, (4,), np.float64)
    x = random.normal(key, (5, 4), dtype=np.float64)
    report = fnn.check_model(model, losses.softmax_cross_entropy, params, x, np.arange(5) % 3)
    assert report.max_rel_error < TOL, report


@pytest.mark.oracle
def test_reshape_agrees_with_pytorch(torch: ModuleType, key: random.Key) -> None:
    x = random.normal(key, (3, 4, 2), dtype=np.float64)
    dy = random.normal(random.fold_in(key, 1), (3, 2, 2, 2), dtype=np.float64)
    layer = reshape((2, -1, 2))
    y, _, res = layer.forward(None, x, None, None)
    tx = torch.tensor(x, requires_grad=True)
    ty = tx.reshape(3, 2, -1, 2)
    ty.backward(torch.tensor(dy))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(layer.backward(None, res, dy, True, None), tx.grad.numpy())


def test_global_avg_pool_values_and_shapes(key: random.Key) -> None:
    layer = global_avg_pool()
    assert layer.spec == {"layer": "global_avg_pool"}
    assert nn.from_spec(layer.spec).spec == layer.spec
    assert layer.output_shape((5, 4, 3)) == (3,)
    assert layer.init(key, (5, 4, 3)) is None
    x = random.normal(key, (2, 5, 4, 3))
    y = layer.apply(None, x)
    assert y.shape == (2, 3) and y.dtype == np.float32
    expected = x.astype(np.float64).sum(axis=(1, 2)) / 20
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_global_avg_pool_gradient(key: random.Key) -> None:
    layer = global_avg_pool()
    x = random.normal(key, (2, 3, 4, 5), dtype=np.float64)
    report = fnn.check_layer(layer, None, x)
    assert report.max_rel_error < TOL, report
    y, _, res = layer.forward(None, x, None, None)
    dx = layer.backward(None, res, np.ones_like(y), True, None)
    assert dx is not None and dx.shape == x.shape
    np.testing.assert_allclose(dx, 1 / 12)
    assert layer.backward(None, res, np.ones_like(y), False, None) is None


def test_global_avg_pool_rejects_other_shapes(key: random.Key) -> None:
    layer = global_avg_pool()
    message = r"expects examples of shape \(height, width, channels\), got \(4, 3\)"
    with pytest.raises(ValueError, match=message):
        layer.init(key, (4, 3))
    with pytest.raises(ValueError, match=message):
        layer.shapes((4, 3))
    with pytest.raises(ValueError, match=message):
        layer.apply(None, np.zeros((2, 4, 3), np.float32))


def test_global_avg_pool_in_a_model(key: random.Key) -> None:
    model = nn.serial(global_avg_pool(), nn.dense(3))
    params = model.init(key, (4, 4, 2), np.float64)
    x = random.normal(key, (5, 4, 4, 2), dtype=np.float64)
    report = fnn.check_model(model, losses.softmax_cross_entropy, params, x, np.arange(5) % 3)
    assert report.max_rel_error < TOL, report


@pytest.mark.oracle
def test_global_avg_pool_agrees_with_pytorch(torch: ModuleType, key: random.Key) -> None:
    x = random.normal(key, (2, 5, 3, 4), dtype=np.float64)  # NHWC
    dy = random.normal(random.fold_in(key, 1), (2, 4), dtype=np.float64)
    layer = global_avg_pool()
    y, _, res = layer.forward(None, x, None, None)
    dx = layer.backward(None, res, dy, True, None)
    tx = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)  # NCHW
    ty = torch.flatten(torch.nn.AdaptiveAvgPool2d(1)(tx), 1)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-13, atol=1e-15)
    assert dx is not None
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-13, atol=1e-15)
