"""dense (fnn/nn/_dense.py): init, the formula, gradients, frozen read-only params, and
params of another width or dtype refused."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pytest

import fnn
from fnn import losses, nn, random

Array = np.ndarray[Any, Any]

TOL = 1e-6


def test_dense_init_shapes_dtypes_and_zero_bias(key: random.Key) -> None:
    p = nn.dense(5).init(key, (3,))
    assert isinstance(p, nn.DenseParams)
    assert p.w.shape == (3, 5) and p.b.shape == (5,)
    assert p.w.dtype == np.float32 and p.b.dtype == np.float32
    assert not p.b.any()
    p64 = nn.dense(5).init(key, (3,), dtype=np.float64)
    assert p64.w.dtype == np.float64
    np.testing.assert_allclose(p64.w, p.w, rtol=1e-6)  # same draws, other precision


def test_unknown_initializer_and_bad_sizes() -> None:
    with pytest.raises(ValueError, match="unknown weight initializer 'he'; expected one of"):
        nn.dense(3, weight_init="he")
    with pytest.raises(ValueError, match="dense features must be >= 1, got 0"):
        nn.dense(0)
    with pytest.raises(TypeError, match="dense features must be an int, got float"):
        nn.dense(3.0)  # type: ignore[call-overload]


def test_params_are_frozen_and_read_only(key: random.Key) -> None:
    p = nn.dense(2).init(key, (3,))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        p.w = np.zeros((3, 2), np.float32)  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        p.w[0, 0] = 1.0
    source = np.ones((3, 2), np.float32)
    q = nn.DenseParams(source, np.zeros(2, np.float32))
    assert source.flags.writeable  # the caller's array is not touched
    assert not q.w.flags.writeable


def test_dense_apply_matches_the_formula(key: random.Key) -> None:
    layer = nn.dense(4)
    p = layer.init(key, (3,))
    x = random.normal(random.fold_in(key, 1), (5, 3))
    np.testing.assert_allclose(layer.apply(p, x), x @ p.w + p.b, rtol=1e-6)


def test_dense_and_flatten_gradients(key: random.Key) -> None:
    k1, k2 = random.split(key)
    layer = nn.dense(3)
    p = layer.init(k1, (4,), dtype=np.float64)
    result = fnn.check_layer(layer, p, random.normal(k2, (5, 4), dtype=np.float64))
    assert result.max_rel_error < TOL, str(result)
    flat = fnn.check_layer(nn.flatten(), None, random.normal(k2, (2, 3, 4), dtype=np.float64))
    assert flat.max_rel_error < TOL, str(flat)


def test_dense_acts_on_the_last_axis_of_a_sequence(key: random.Key) -> None:
    layer = nn.dense(4)
    p = layer.init(key, (3,), np.float64)
    x = random.normal(random.fold_in(key, 1), (2, 5, 3), np.float64)
    assert layer.output_shape((5, 3)) == (5, 4)
    y = layer.apply(p, x)
    np.testing.assert_allclose(y, np.stack([layer.apply(p, x[i]) for i in range(2)]), rtol=1e-14)
    report = fnn.check_layer(layer, p, x)
    assert report.max_rel_error < TOL, str(report)
    with pytest.raises(ValueError, match=r"dense expects inputs of shape \(batch, ..., features\)"):
        layer.output_shape(())


def test_a_dense_layer_refuses_params_of_another_width(key: random.Key) -> None:
    params_32 = nn.mlp((32, 10)).init(key, (20,))
    x = np.ones((4, 20), np.float32)
    wider = nn.mlp((64, 10))
    message = r"at \[1\]\.w: the model needs float32 \(20, 64\), got float32 \(20, 32\)"
    with pytest.raises(ValueError, match=message):
        wider.apply(params_32, x)
    with pytest.raises(ValueError, match=message):  # the training path too
        fnn.grad(wider, losses.softmax_cross_entropy)(params_32, x, np.zeros(4, np.int64))


@pytest.mark.parametrize(
    ("b", "got"),
    [
        (np.zeros(3, np.float32), r"at \.b: the model needs float32 \(4,\), got float32 \(3,\)"),
        (np.zeros(4, np.float64), r"at \.b: the model needs float32 \(4,\), got float64 \(4,\)"),
    ],
)
def test_a_dense_layer_refuses_a_bias_of_another_shape_or_dtype(
    key: random.Key, b: Array, got: str
) -> None:
    layer = nn.dense(4)
    params = layer.init(key, (5,))
    with pytest.raises(ValueError, match=got):
        layer.apply(nn.DenseParams(params.w, b), np.ones((2, 5), np.float32))


@pytest.mark.oracle
def test_dense_on_sequences_agrees_with_pytorch(torch: Any, key: random.Key) -> None:
    layer = nn.dense(4)
    p = layer.init(key, (3,), np.float64)
    x = random.normal(random.fold_in(key, 1), (2, 5, 3), np.float64)
    dy = random.normal(random.fold_in(key, 2), (2, 5, 4), np.float64)
    theirs = torch.nn.Linear(3, 4, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(np.array(p.w.T)))
        theirs.bias.copy_(torch.from_numpy(np.array(p.b)))
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    yt.backward(torch.from_numpy(dy))
    y, _, saved = layer.forward(p, x, None, None)
    grads = fnn.tree.buffers(fnn.tree.structure(p), iter([np.empty((3, 4)), np.empty(4)]))
    dx = layer.backward(p, saved, dy, True, grads)
    assert dx is not None
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(grads.w, theirs.weight.grad.numpy().T, rtol=1e-12)
    np.testing.assert_allclose(grads.b, theirs.bias.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_a_row_alone_gives_its_bits_in_a_batch(key: random.Key, bias: bool) -> None:
    """One row is multiplied as a matrix product too (NumPy would take a vector product,
    summing in another order): its output does not depend on the rows beside it."""
    layer: nn.Layer[Any, None] = nn.dense(8, bias=bias)
    params = layer.init(key, (32,))
    x = random.normal(random.fold_in(key, 1), (5, 32))
    together = layer.apply(params, x)
    for i in range(5):
        np.testing.assert_array_equal(layer.apply(params, x[i : i + 1])[0], together[i])
    np.testing.assert_array_equal(layer.apply(params, x[None, :1])[0, 0], together[0])


def test_dense_without_bias(key: random.Key) -> None:
    layer = nn.dense(4, bias=False)
    p = layer.init(key, (3,), np.float64)
    assert isinstance(p, nn.WeightParams) and p.w.shape == (3, 4)
    x = random.normal(random.fold_in(key, 1), (2, 5, 3), np.float64)
    np.testing.assert_array_equal(
        layer.apply(p, x), nn.dense(4).apply(nn.DenseParams(p.w, np.zeros(4)), x)
    )
    report = fnn.check_layer(layer, p, x)
    assert report.max_rel_error < TOL, str(report)
    assert nn.from_spec(layer.spec).spec == layer.spec
    assert layer.spec == {
        "layer": "dense",
        "features": 4,
        "weight_init": "he_normal",
        "bias": False,
    }
    assert fnn.tree.type_name(nn.WeightParams) == "dense.WeightParams"
    with pytest.raises(TypeError, match="dense bias must be True or False, got 'no'"):
        nn.dense(4, bias="no")  # type: ignore[call-overload]
