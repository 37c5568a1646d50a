"""float32 stays float32 when a count is large.

NumPy 1.x (value-based casting) gives ``float32_array / n`` the dtype float64 when the
Python int ``n`` needs 32 bits (above 65535): a batch norm over 128 images of 26x26
pixels averages 86,528 rows. NumPy 2 keeps float32, so these tests guard the NumPy 1.26
run of the test command (``.venv-compat``): every mean or scale by a count in a layer or
a loss must keep the input's dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import losses, nn

Array = np.ndarray[Any, Any]
BIG = 70_000  # more than 65,535
KEY = fnn.random.key(0)


def as_grads(params: Any, arrays: list[Any]) -> Any:
    """``arrays`` arranged as the writable ``grads`` a layer's backward writes into."""
    return fnn.tree.buffers(fnn.tree.structure(params), iter(arrays))


def uniform(shape: tuple[int, ...], seed: int) -> Array:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


LAYERS: list[tuple[str, Callable[[], nn.Layer[Any]], tuple[int, ...]]] = [
    ("batch_norm over many rows", nn.batch_norm, (BIG, 3)),
    ("layer_norm over many features", nn.layer_norm, (2, BIG)),
    ("global_avg_pool over many pixels", nn.global_avg_pool, (2, 280, 250, 1)),
]


@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=[c[0] for c in LAYERS])
def test_layers_keep_float32(
    name: str, make: Callable[[], nn.Layer[Any]], shape: tuple[int, ...]
) -> None:
    layer = make()
    in_shape = shape[1:]
    params = layer.init(KEY, in_shape)
    state = layer.init_state(in_shape) if layer.init_state is not None else None
    x = uniform(shape, 1)
    y, new_state, saved = layer.forward(params, x, state, None)
    assert y.dtype == np.float32
    assert all(a.dtype == np.float32 for a in fnn.tree.leaves(new_state))
    out = [np.zeros_like(a) for a in fnn.tree.leaves(params)]
    dx = layer.backward(
        params,
        saved,
        uniform(y.shape, 2),
        True,
        as_grads(params, out),
    )
    assert dx is not None and dx.dtype == np.float32
    assert layer.apply(params, x, state=new_state).dtype == np.float32


LOSSES: list[tuple[str, Callable[..., tuple[float, Array]], Array, Array]] = [
    ("softmax_cross_entropy, labels", losses.softmax_cross_entropy, uniform((BIG, 3), 3),
     np.zeros(BIG, np.int64)),
    ("softmax_cross_entropy, one-hot", losses.softmax_cross_entropy, uniform((BIG, 3), 3),
     np.eye(3, dtype=np.float32)[np.zeros(BIG, np.int64)]),
    ("categorical_cross_entropy, labels", losses.categorical_cross_entropy,
     0.1 + 0.8 * uniform((BIG, 3), 4), np.zeros(BIG, np.int64)),
    ("categorical_cross_entropy, one-hot", losses.categorical_cross_entropy,
     0.1 + 0.8 * uniform((BIG, 3), 4), np.eye(3, dtype=np.float32)[np.zeros(BIG, np.int64)]),
    ("binary_cross_entropy", losses.binary_cross_entropy, uniform((BIG, 1), 5),
     uniform((BIG, 1), 6).round()),
    ("mean_squared_error", losses.mean_squared_error, uniform((BIG, 1), 7),
     uniform((BIG, 1), 8)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "loss", "pred", "target"), LOSSES, ids=[c[0] for c in LOSSES])
def test_losses_keep_float32(
    name: str, loss: Callable[..., tuple[float, Array]], pred: Array, target: Array
) -> None:
    pred = pred.astype(np.float32)
    _, grad = loss(pred, target)
    assert grad.dtype == np.float32
