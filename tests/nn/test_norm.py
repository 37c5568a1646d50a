from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import losses, nn, optim, random, tree
from fnn.nn import _norm
from fnn.nn._norm import (
    BatchNormParams,
    BatchNormState,
    LayerNormParams,
    ScaleParams,
    batch_norm,
    layer_norm,
    rms_norm,
)
from tests.support.data import uniform, well_separated
from tests.support.models import state_of

Array = np.ndarray[Any, Any]

TOL = 1e-6


def as_grads(params: Any, arrays: list[Any]) -> Any:
    """``arrays`` arranged as the writable ``grads`` a layer's backward writes into."""
    return fnn.tree.buffers(fnn.tree.structure(params), iter(arrays))


def draw(key: random.Key, shape: tuple[int, ...], i: int, dtype: Any = np.float64) -> Array:
    """Normal draws with a per-channel offset and spread, so statistics are not trivial.

    Keys from ``fold_in(key, 1000 + i)``: check_layer's probe ``r`` is drawn from
    ``fold_in(key(0), 1)``, and an input equal to it makes the input gradient vanish."""
    x = random.normal(random.fold_in(key, 1000 + i), shape, dtype)
    c = shape[-1]
    return (x * np.linspace(0.5, 2.0, c) + np.linspace(-1.0, 3.0, c)).astype(dtype)


def bn_params(key: random.Key, c: int, dtype: Any = np.float64) -> BatchNormParams:
    k1, k2 = random.split(key)
    return BatchNormParams(
        1 + 0.5 * random.normal(k1, (c,), dtype), 0.3 * random.normal(k2, (c,), dtype)
    )


def ln_params(key: random.Key, f: int, dtype: Any = np.float64) -> LayerNormParams:
    k1, k2 = random.split(key)
    return LayerNormParams(
        1 + 0.5 * random.normal(k1, (f,), dtype), 0.3 * random.normal(k2, (f,), dtype)
    )


def bn_state(layer: nn.Layer[Any, Any], in_shape: tuple[int, ...], dtype: Any) -> BatchNormState:
    assert layer.init_state is not None
    state = layer.init_state(in_shape, dtype)
    assert isinstance(state, BatchNormState)
    return state


def reference_norm(x: Array, scale: Any, bias: Any, eps: float, axes: Any) -> Array:
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    out: Array = (x - mean) / np.sqrt(var + eps) * scale + bias
    return out


def batch_axes(x: Array) -> tuple[int, ...]:
    return tuple(range(x.ndim - 1))


def readonly(x: Array) -> Array:
    """A read-only copy: a layer that writes into its input or dy fails loudly."""
    y: Array = np.array(x)
    y.flags.writeable = False
    return y


def assert_close(actual: Any, desired: Any, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    """Agreement to float64 round-off (the default) or to ``rtol``/``atol``."""
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol)


# -- gradients --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 3), (3, 4, 5, 2), (2, 7), (4, 3, 6)])
def test_batch_norm_gradients(key: random.Key, shape: tuple[int, ...]) -> None:
    layer = batch_norm()
    params = bn_params(key, shape[-1])
    state = bn_state(layer, shape[1:], np.float64)
    x = readonly(draw(key, shape, 1))
    report = fnn.check_layer(layer, params, x, state=state)
    assert report.max_rel_error < TOL, report


def test_batch_norm_gradients_across_blocks(key: random.Key, monkeypatch: Any) -> None:
    """Blocks of 7 channels-wide rows: several blocks and a short last one."""
    monkeypatch.setattr(_norm, "_BLOCK", 3 * 7)
    layer = batch_norm()
    shape = (5, 4, 7)  # 20 rows of 7 channels: blocks of 3 rows, the last of 2
    params = bn_params(key, 7)
    x = readonly(draw(key, shape, 2))
    report = fnn.check_layer(layer, params, x, state=bn_state(layer, shape[1:], np.float64))
    assert report.max_rel_error < TOL, report
    y, _, _ = layer.forward(params, x, bn_state(layer, shape[1:], np.float64), None)
    want = reference_norm(x, params.scale, params.bias, 1e-5, (0, 1))
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (4, 6), (2, 3, 6), (3, 1, 4)])
def test_layer_norm_gradients(key: random.Key, shape: tuple[int, ...]) -> None:
    layer = layer_norm()
    params = ln_params(key, shape[-1])
    x = readonly(draw(key, shape, 3))
    report = fnn.check_layer(layer, params, x)
    assert report.max_rel_error < TOL, report


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 6), (3, 1, 4)])
@pytest.mark.parametrize("make", [rms_norm, lambda: layer_norm(bias=False)])
def test_scale_only_norm_gradients(key: random.Key, shape: tuple[int, ...], make: Any) -> None:
    layer = make()
    params = ScaleParams(1 + 0.5 * random.normal(key, (shape[-1],), np.float64))
    report = fnn.check_layer(layer, params, readonly(draw(key, shape, 3)))
    assert report.max_rel_error < TOL, report


def test_rms_norm_follows_its_formula(key: random.Key) -> None:
    x = draw(key, (3, 4, 5), 7)
    params = ScaleParams(1 + 0.5 * random.normal(key, (5,), np.float64))
    y = rms_norm(eps=1e-3).apply(params, x)
    want = params.scale * x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-13)


def test_layer_norm_without_bias_is_layer_norm_with_a_zero_bias(key: random.Key) -> None:
    x = draw(key, (4, 3, 6), 8)
    scale = 1 + 0.5 * random.normal(key, (6,), np.float64)
    unbiased = layer_norm(bias=False)
    assert isinstance(unbiased.init(key, (3, 6)), ScaleParams)
    np.testing.assert_array_equal(
        unbiased.apply(ScaleParams(scale), x),
        layer_norm().apply(LayerNormParams(scale, np.zeros(6)), x),
    )
    assert nn.from_spec(unbiased.spec).spec == unbiased.spec == {
        "layer": "layer_norm", "eps": 1e-5, "bias": False
    }  # fmt: skip
    with pytest.raises(TypeError, match="layer_norm bias must be True or False, got 0"):
        layer_norm(bias=0)  # type: ignore[call-overload]


@pytest.mark.parametrize("make", [batch_norm, layer_norm, rms_norm])
def test_backward_without_dx_writes_the_same_param_gradients(key: random.Key, make: Any) -> None:
    layer = make()
    x = draw(key, (6, 4), 4)
    params = layer.init(key, (4,), np.float64)
    state = None if layer.init_state is None else layer.init_state((4,), np.float64)
    _, _, saved = layer.forward(params, x, state, None)
    dy = readonly(draw(key, (6, 4), 5))
    count = tree.structure(params).num_leaves
    with_dx = [np.full(4, np.nan) for _ in range(count)]
    without = [np.full(4, np.nan) for _ in range(count)]
    assert layer.backward(params, saved, dy, True, as_grads(params, with_dx)) is not None
    assert layer.backward(params, saved, dy, False, as_grads(params, without)) is None
    np.testing.assert_array_equal(with_dx, without)
    assert not np.isnan(without).any()


# -- running statistics and inference ---------------------------------------------------------


def test_running_statistics_after_two_steps_follow_the_formula(key: random.Key) -> None:
    momentum, eps = 0.75, 1e-3
    layer = batch_norm(momentum=momentum, eps=eps)
    shape = (4, 3, 5, 2)
    params = bn_params(key, 2)
    state = bn_state(layer, shape[1:], np.float64)
    mean, var = np.zeros(2), np.ones(2)
    for step in range(2):
        x = draw(key, shape, 10 + step)
        y, state, _ = layer.forward(params, x, state, None)
        np.testing.assert_allclose(
            y, reference_norm(x, params.scale, params.bias, eps, (0, 1, 2)), rtol=1e-12, atol=1e-12
        )
        flat = x.reshape(-1, 2)
        mean = momentum * mean + (1 - momentum) * flat.mean(axis=0)
        var = momentum * var + (1 - momentum) * flat.var(axis=0, ddof=1)
        np.testing.assert_allclose(state.mean, mean, rtol=1e-13)
        np.testing.assert_allclose(state.var, var, rtol=1e-13)
    assert not state.mean.flags.writeable and not state.var.flags.writeable


def test_momentum_zero_takes_the_batch_statistics(key: random.Key) -> None:
    layer = batch_norm(momentum=0.0)
    x = draw(key, (6, 3), 12)
    _, state, _ = layer.forward(
        layer.init(key, (3,), np.float64), x, bn_state(layer, (3,), np.float64), None
    )
    np.testing.assert_allclose(state.mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(state.var, x.var(axis=0, ddof=1), rtol=1e-13)


def test_inference_reads_the_running_statistics(key: random.Key) -> None:
    eps = 1e-2
    layer = batch_norm(eps=eps)
    params = bn_params(key, 3)
    state = BatchNormState(np.array([0.5, -1.0, 2.0]), np.array([0.25, 4.0, 1.0]))
    x = draw(key, (4, 2, 3), 13)
    want = params.scale * (x - state.mean) / np.sqrt(state.var + eps) + params.bias
    np.testing.assert_allclose(layer.apply(params, x, state), want, rtol=1e-12, atol=1e-12)
    # one example is fine in inference, and inference moves no statistics
    np.testing.assert_allclose(layer.infer(params, x[:1, :1], state), want[:1, :1], rtol=1e-12)
    with pytest.raises(ValueError, match="keeps state"):
        layer.apply(params, x)


def test_layer_norm_normalizes_each_example(key: random.Key) -> None:
    eps = 1e-3
    layer = layer_norm(eps=eps)
    params = ln_params(key, 5)
    x = draw(key, (3, 2, 5), 14)
    want = reference_norm(x, params.scale, params.bias, eps, -1)
    np.testing.assert_allclose(layer.apply(params, x), want, rtol=1e-12, atol=1e-12)
    y, state, _ = layer.forward(params, x, None, None)
    assert state is None
    np.testing.assert_array_equal(y, layer.apply(params, x))
    # each example on its own: the others do not matter
    np.testing.assert_allclose(layer.apply(params, x[1:2]), want[1:2], rtol=1e-12, atol=1e-12)


# -- shapes and dtypes ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("in_shape", [(3,), (4, 5, 2), (2, 6)])
@pytest.mark.parametrize("make", [batch_norm, layer_norm])
def test_shapes_agree_with_init_and_init_state(
    key: random.Key, dtype: Any, in_shape: tuple[int, ...], make: Any
) -> None:
    layer = make()
    described = layer.shapes(in_shape, dtype)
    params = layer.init(key, in_shape, dtype)
    state = None if layer.init_state is None else layer.init_state(in_shape, dtype)
    assert described.output == in_shape == layer.output_shape(in_shape)
    for want, have in ((described.params, params), (described.state, state)):
        tree.assert_same_structure(want, have)
        for w, h in zip(tree.leaves(want), tree.leaves(have)):
            assert (w.shape, w.dtype) == (h.shape, h.dtype) == ((in_shape[-1],), np.dtype(dtype))
            assert w.strides == (0,)
    np.testing.assert_array_equal(params.scale, 1)
    np.testing.assert_array_equal(params.bias, 0)
    if state is not None:
        np.testing.assert_array_equal(state.mean, 0)
        np.testing.assert_array_equal(state.var, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [batch_norm, layer_norm])
def test_each_dtype_stays_itself(key: random.Key, dtype: Any, make: Any) -> None:
    layer = make()
    shape = (6, 3, 4)
    x = draw(key, shape, 15, dtype)
    params = layer.init(key, shape[1:], dtype)
    state = None if layer.init_state is None else layer.init_state(shape[1:], dtype)
    y, new_state, saved = layer.forward(params, x, state, None)
    out = [np.empty(4, dtype), np.empty(4, dtype)]
    dx = layer.backward(
        params,
        saved,
        draw(key, shape, 16, dtype),
        True,
        as_grads(params, out),
    )
    arrays = [y, dx, *out, *tree.leaves(new_state), layer.apply(params, x, new_state)]
    assert all(a.dtype == dtype for a in arrays)
    assert y.shape == dx.shape == shape
    axes = (0, 1) if make is batch_norm else -1
    x64 = x.astype(np.float64)
    want = reference_norm(x64, params.scale.astype(np.float64), 0.0, 1e-5, axes)
    np.testing.assert_allclose(y, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_float32_stays_accurate_far_from_zero(key: random.Key) -> None:
    """A mean of 1000 and a spread of 1 (float32's spacing at 1000 is 6e-5): the output,
    the running variance and the gradients keep float32's relative accuracy (a one-pass
    E[x^2] - E[x]^2 would lose the variance; a plain float32 sum, the mean's last digits)."""
    layer = batch_norm()
    shape = (64, 8, 8, 2)
    x = (1000 + random.normal(key, shape, np.float64)).astype(np.float32)
    dy = draw(key, shape, 17, np.float32)
    params = layer.init(key, shape[1:])
    y, state, saved = layer.forward(params, x, bn_state(layer, shape[1:], np.float32), None)
    out = [np.empty(2, np.float32), np.empty(2, np.float32)]
    dx = layer.backward(params, saved, dy, True, as_grads(params, out))
    assert dx is not None
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    axes = (0, 1, 2)
    xhat = reference_norm(x64, 1.0, 0.0, 1e-5, axes)
    inv_std = 1 / np.sqrt(x64.var(axis=axes) + 1e-5)
    dscale = (dy64 * xhat).sum(axis=axes)
    dx64 = inv_std * (dy64 - dy64.mean(axis=axes) - xhat * dscale / (x.size // 2))
    np.testing.assert_allclose(y, xhat, atol=1e-5)
    np.testing.assert_allclose(dx, dx64, atol=1e-5 * np.abs(dx64).max())
    np.testing.assert_allclose(out[0], dscale, atol=1e-5 * np.abs(dscale).max())
    np.testing.assert_allclose(out[1], dy64.sum(axis=axes), rtol=1e-5, atol=1e-3)
    variance = x64.reshape(-1, 2).var(axis=0, ddof=1)
    np.testing.assert_allclose(state.var, 0.9 + 0.1 * variance, rtol=1e-6)
    np.testing.assert_allclose(state.mean, 0.1 * x64.reshape(-1, 2).mean(axis=0), rtol=1e-6)


def test_a_constant_channel_gives_its_bias(key: random.Key) -> None:
    layer = batch_norm()
    params = bn_params(key, 2)
    x = np.stack([np.full(6, 3.0), np.arange(6.0)], axis=1)
    y, state, saved = layer.forward(params, x, bn_state(layer, (2,), np.float64), None)
    np.testing.assert_allclose(y[:, 0], params.bias[0], rtol=1e-12)
    np.testing.assert_allclose(state.var, [0.9, 0.9 + 0.1 * 3.5])
    dx = layer.backward(
        params,
        saved,
        draw(key, (6, 2), 18),
        True,
        as_grads(params, [np.empty(2), np.empty(2)]),
    )
    assert dx is not None and np.isfinite(dx).all()


# -- float32 stays float32 when a count is large ----------------------------------------------
#
# NumPy 1.x (value-based casting) gives ``float32_array / n`` the dtype float64 when the
# Python int ``n`` needs 32 bits (above 65535): a batch norm over 128 images of 26x26
# pixels averages 86,528 rows. NumPy 2 keeps float32, so these tests guard the NumPy 1.26
# run of the test command (``.venv-compat``): every mean or scale by a count in a layer or
# a loss must keep the input's dtype.

BIG = 70_000  # more than 65,535

KEY = fnn.random.key(0)

LAYERS: list[tuple[str, Callable[[], nn.Layer[Any, Any]], tuple[int, ...]]] = [
    ("batch_norm over many rows", nn.batch_norm, (BIG, 3)),
    ("layer_norm over many features", nn.layer_norm, (2, BIG)),
    ("global_avg_pool over many pixels", nn.global_avg_pool, (2, 280, 250, 1)),
]


@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=[c[0] for c in LAYERS])
def test_layers_keep_float32(
    name: str, make: Callable[[], nn.Layer[Any, Any]], shape: tuple[int, ...]
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


# -- the records ------------------------------------------------------------------------------


def test_scale_and_bias_are_not_weights(key: random.Key) -> None:
    for make in (batch_norm, layer_norm, rms_norm):
        params = make().init(key, (3,), np.float64)
        assert not any(tree.leaves(tree.weight_mask(params)))
        for weights_only, moved in ((True, False), (False, True)):
            opt = optim.adamw(0.1, weight_decay=0.5, weights_only=weights_only)
            after = opt.update(opt.init(params), tree.zeros_like(params))[1]
            assert tree.equal(after, params) is not moved


def test_specs_rebuild_the_layers() -> None:
    layer = batch_norm(momentum=0.8, eps=1e-3)
    assert layer.spec == {"layer": "batch_norm", "momentum": 0.8, "eps": 1e-3}
    assert nn.from_spec(layer.spec).spec == layer.spec
    assert layer_norm().spec == {"layer": "layer_norm", "eps": 1e-5, "bias": True}
    assert rms_norm().spec == {"layer": "rms_norm", "eps": 1e-6}
    assert nn.LAYERS["batch_norm"].types == (BatchNormParams, BatchNormState)
    assert tree.type_name(BatchNormState) == "batch_norm.BatchNormState"
    assert tree.type_name(LayerNormParams) == "layer_norm.LayerNormParams"
    assert tree.type_name(ScaleParams) == "norm.ScaleParams"
    assert tree.TYPES["fnn.nn.BatchNormState"] is BatchNormState  # older 0.1.0 files


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\), got 1\.0.*PyTorch"),
        ({"momentum": -0.1}, ValueError, r"momentum must be in \[0, 1\), got -0\.1"),
        ({"momentum": float("nan")}, ValueError, r"momentum must be in \[0, 1\)"),
        ({"momentum": "0.9"}, TypeError, "batch_norm momentum must be a number, got str"),
        ({"momentum": True}, TypeError, "batch_norm momentum must be a number, got bool"),
        ({"eps": 0.0}, ValueError, r"batch_norm eps must be a finite number > 0, got 0\.0"),
        ({"eps": -1e-5}, ValueError, "batch_norm eps must be a finite number > 0"),
        ({"eps": float("inf")}, ValueError, "batch_norm eps must be a finite number > 0"),
        ({"eps": None}, TypeError, "batch_norm eps must be a number, got NoneType"),
    ],
)
def test_batch_norm_rejects_bad_arguments(kwargs: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        batch_norm(**kwargs)


@pytest.mark.parametrize(
    ("eps", "error"), [(0, ValueError), (float("nan"), ValueError), ("1e-5", TypeError)]
)
def test_norm_layers_reject_bad_eps(eps: Any, error: type) -> None:
    with pytest.raises(error, match="layer_norm eps must be"):
        layer_norm(eps=eps)
    with pytest.raises(error, match="rms_norm eps must be"):
        rms_norm(eps=eps)


def test_batch_norm_rejects_bad_inputs(key: random.Key) -> None:
    layer = batch_norm()
    params = layer.init(key, (4, 3))
    state = bn_state(layer, (4, 3), np.float32)
    x = draw(key, (2, 4, 3), 20, np.float32)
    with pytest.raises(
        ValueError, match=r"at \.scale: the model needs float32 \(2,\), got float32 \(3,\)"
    ):
        layer.apply(params, x[..., :2], state)
    with pytest.raises(ValueError, match=r"in_shape \(\): each example needs a channels axis"):
        layer.apply(params, x[:, 0, 0], state)
    with pytest.raises(TypeError, match="must have dtype float32"):
        layer.apply(params, x.astype(np.float64), state)
    with pytest.raises(TypeError, match="must be a float array"):
        layer.apply(params, x.astype(np.int32), state)
    with pytest.raises(TypeError, match="at the root: expected BatchNormParams, got DenseParams"):
        layer.apply(nn.DenseParams(params.scale, params.bias), x, state)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"this model keeps state"):
        layer.apply(params, x, None)
    with pytest.raises(
        ValueError, match=r"state does not fit .* at \.var: the model needs float32"
    ):
        layer.apply(params, x, BatchNormState(state.mean, np.ones(3, np.float64)))
    with pytest.raises(ValueError, match=r"in_shape \(\): each example needs a channels axis"):
        layer.init(key, ())
    with pytest.raises(TypeError, match="needs in_shape as a tuple of positive ints"):
        layer.shapes((0, 3))


def test_batch_norm_needs_two_values_per_channel_in_training(key: random.Key) -> None:
    layer = batch_norm()
    params = layer.init(key, (3,))
    state = bn_state(layer, (3,), np.float32)
    one = draw(key, (1, 3), 21, np.float32)
    with pytest.raises(ValueError, match=r"at least 2 values per channel .* got input of shape "):
        layer.forward(params, one, state, None)
    with pytest.raises(ValueError, match=r"\(0 per channel\)"):
        layer.forward(params, one[:0], state, None)
    assert layer.apply(params, one, state).shape == (1, 3)  # inference: fine
    # one example with several positions per channel is enough
    images = draw(key, (1, 2, 2, 3), 22, np.float32)
    _, moved, _ = layer.forward(layer.init(key, (2, 2, 3)), images, state, None)
    assert np.isfinite(moved.var).all()


def test_layer_norm_rejects_bad_inputs(key: random.Key) -> None:
    layer = layer_norm()
    params = layer.init(key, (5,))
    x = draw(key, (2, 5), 23, np.float32)
    with pytest.raises(
        ValueError, match=r"at \.scale: the model needs float32 \(4,\), got float32 \(5,\)"
    ):
        layer.apply(params, x[:, :4])
    with pytest.raises(TypeError, match="must have dtype float32"):
        layer.apply(params, x.astype(np.float64))
    with pytest.raises(TypeError, match="this model keeps no state"):
        layer.apply(params, x, bn_state(batch_norm(), (5,), np.float32))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="at the root: expected LayerNormParams, got None"):
        layer.apply(None, x)  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [nn.batch_norm, nn.layer_norm])
def test_norm_layers_need_params_that_agree_with_the_input(
    key: random.Key, make: Callable[[], nn.Layer[Any, Any]]
) -> None:
    layer = make()
    name = "batch_norm" if layer.stateful else "layer_norm"
    params = layer.init(key, (4,))
    state = state_of(layer, (4,))
    x = random.normal(key, (3, 4))
    record = type(params)
    assert name == layer.name
    with pytest.raises(
        ValueError, match=r"at \.bias: the model needs float32 \(4,\), got float32 \(5,\)"
    ):
        layer.apply(record(params.scale, np.zeros(5, np.float32)), x, state)
    with pytest.raises(
        ValueError, match=r"at \.scale: the model needs float32 \(4,\), got float32 \(2, 2\)"
    ):
        layer.apply(record(params.scale.reshape(2, 2), params.bias.reshape(2, 2)), x, state)
    other = make().init(key, (6,))
    with pytest.raises(
        ValueError, match=r"at \.scale: the model needs float32 \(4,\), got float32 \(6,\)"
    ):
        layer.apply(other, x, state_of(make(), (6,)))


def test_batch_norm_refuses_a_state_of_another_width(key: random.Key) -> None:
    layer = nn.batch_norm()
    params = layer.init(key, (4,))
    with pytest.raises(
        ValueError, match=r"state does not fit .* at \.mean: the model needs float32 \(4,\)"
    ):
        layer.apply(params, random.normal(key, (3, 4)), state_of(layer, (5,)))


# -- training ---------------------------------------------------------------------------------


def test_fit_trains_a_model_with_batch_norm() -> None:
    model = nn.serial(nn.dense(8), batch_norm(), nn.relu(), nn.dense(3))
    x, y = well_separated(120)
    final = fnn.fit(
        model,
        losses.softmax_cross_entropy,
        optim.adamw(0.05, weight_decay=0.1, weights_only=True),
        x,
        y,
        key=random.key(5),
        epochs=4,
        batch_size=16,
        validation_split=0.2,
    )
    running = final.model_state[1]
    assert isinstance(running, BatchNormState)
    assert running.mean.dtype == np.float32 and np.abs(running.mean).max() > 0.05
    assert not np.allclose(running.var, 1.0)
    # the optimizer never sees the running statistics: its state holds params and moments
    assert tree.size(final.opt.params) == tree.size(final.params) == 40 + 2 * 8 + 27
    assert tree.size(final.opt.inner) == 2 * tree.size(final.params)
    assert not any(path.endswith((".mean", ".var")) for path in tree.paths(final.opt))
    result = fnn.evaluate(
        model, losses.softmax_cross_entropy, final.params, x, y, model_state=final.model_state
    )
    assert result.accuracy > 0.8
    assert final.history[-1].val_accuracy > 0.8
    with pytest.raises(ValueError, match="keeps state"):
        fnn.evaluate(model, losses.softmax_cross_entropy, final.params, x, y)


# -- against PyTorch --------------------------------------------------------------------------


def to_torch_layout(a: Array) -> Array:
    """Channels last -> channels first: (N, C), (N, L, C) -> (N, C, L), (N, H, W, C) -> NCHW."""
    return np.moveaxis(a, -1, 1) if a.ndim > 2 else a


def from_torch_layout(a: Array) -> Array:
    return np.moveaxis(a, 1, -1) if a.ndim > 2 else a


@pytest.mark.oracle
@pytest.mark.parametrize("shape", [(6, 3), (5, 4, 3), (3, 4, 5, 2)])
def test_batch_norm_agrees_with_pytorch(
    torch: ModuleType, key: random.Key, shape: tuple[int, ...]
) -> None:
    eps, c = 1e-3, shape[-1]
    cls = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
    theirs = cls(c, eps=eps, momentum=0.1, dtype=torch.float64)
    layer = batch_norm(momentum=0.9, eps=eps)
    params = bn_params(key, c)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(np.array(params.scale)))
        theirs.bias.copy_(torch.from_numpy(np.array(params.bias)))
    state = bn_state(layer, shape[1:], np.float64)
    theirs.train()
    for step in range(2):
        x, dy = draw(key, shape, 30 + step), draw(key, shape, 40 + step)
        xt = torch.tensor(to_torch_layout(x), requires_grad=True)
        theirs.zero_grad()
        yt = theirs(xt)
        yt.backward(torch.from_numpy(np.array(to_torch_layout(dy))))
        y, state, saved = layer.forward(params, x, state, None)
        out = [np.empty(c), np.empty(c)]
        dx = layer.backward(params, saved, dy, True, as_grads(params, out))
        assert_close(y, from_torch_layout(yt.detach().numpy()))
        assert_close(dx, from_torch_layout(xt.grad.numpy()))
        assert_close(out[0], theirs.weight.grad.numpy())
        assert_close(out[1], theirs.bias.grad.numpy())
        assert_close(state.mean, theirs.running_mean.numpy(), rtol=1e-12, atol=0.0)
        assert_close(state.var, theirs.running_var.numpy(), rtol=1e-12, atol=0.0)
    theirs.eval()
    x = draw(key, shape, 50)
    with torch.no_grad():
        yt = theirs(torch.from_numpy(np.array(to_torch_layout(x))))
    assert_close(layer.apply(params, x, state), from_torch_layout(yt.numpy()))


@pytest.mark.oracle
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 6)])
def test_layer_norm_agrees_with_pytorch(
    torch: ModuleType, key: random.Key, shape: tuple[int, ...]
) -> None:
    eps, f = 1e-4, shape[-1]
    theirs = torch.nn.LayerNorm(f, eps=eps, dtype=torch.float64)
    layer = layer_norm(eps=eps)
    params = ln_params(key, f)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(np.array(params.scale)))
        theirs.bias.copy_(torch.from_numpy(np.array(params.bias)))
    x, dy = draw(key, shape, 60), draw(key, shape, 61)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    yt.backward(torch.from_numpy(dy))
    y, _, saved = layer.forward(params, x, None, None)
    out = [np.empty(f), np.empty(f)]
    dx = layer.backward(params, saved, dy, True, as_grads(params, out))
    assert_close(y, yt.detach().numpy())
    assert_close(layer.apply(params, x), yt.detach().numpy())
    assert_close(dx, xt.grad.numpy())
    assert_close(out[0], theirs.weight.grad.numpy())
    assert_close(out[1], theirs.bias.grad.numpy())


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["rms_norm", "layer_norm without bias"])
def test_scale_only_norms_agree_with_pytorch(torch: ModuleType, key: random.Key, kind: str) -> None:
    eps, shape = 1e-4, (3, 4, 6)
    if kind == "rms_norm":
        theirs = torch.nn.RMSNorm(6, eps=eps, dtype=torch.float64)
        layer: nn.Layer[ScaleParams, None] = rms_norm(eps=eps)
    else:
        theirs = torch.nn.LayerNorm(6, eps=eps, bias=False, dtype=torch.float64)
        layer = layer_norm(eps=eps, bias=False)
    params = ScaleParams(1 + 0.5 * random.normal(key, (6,), np.float64))
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(np.array(params.scale)))
    x, dy = draw(key, shape, 62), draw(key, shape, 63)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    yt.backward(torch.from_numpy(dy))
    y, _, saved = layer.forward(params, x, None, None)
    out = [np.empty(6)]
    dx = layer.backward(params, saved, dy, True, as_grads(params, out))
    assert_close(y, yt.detach().numpy())
    assert_close(dx, xt.grad.numpy())
    assert_close(out[0], theirs.weight.grad.numpy())


def test_a_model_with_both_layers_saves_and_loads(tmp_path: Any, key: random.Key) -> None:
    model = nn.serial(layer_norm(), nn.dense(6), batch_norm(momentum=0.8), nn.relu(), nn.dense(3))
    x, _ = well_separated(32)
    params = model.init(key, (4,))
    assert model.init_state is not None
    _, state, _ = model.forward(params, x, model.init_state((4,)), None)
    fnn.io.save_model(tmp_path / "model.npz", model, params, in_shape=(4,), model_state=state)
    loaded, loaded_params, loaded_state = fnn.io.load_model(tmp_path / "model.npz")
    assert loaded.spec == model.spec
    assert tree.equal(loaded_params, params) and tree.equal(loaded_state, state)
    assert isinstance(loaded_state[2], BatchNormState)
    np.testing.assert_array_equal(
        loaded.apply(loaded_params, x, loaded_state), model.apply(params, x, state)
    )
