from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fnn
from fnn import nn, random, tree

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


def test_unknown_initializer_and_bad_sizes() -> None:
    with pytest.raises(ValueError, match="unknown weight initializer 'he'; expected one of"):
        nn.dense(3, weight_init="he")
    with pytest.raises(ValueError, match="dense features must be >= 1, got 0"):
        nn.dense(0)
    with pytest.raises(TypeError, match="dense features must be an int, got float"):
        nn.dense(3.0)  # type: ignore[arg-type]


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


ACTIVATION_CASES = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "identity"]


def away_from_zero(k: random.Key, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """Float64 inputs at least 0.1 away from zero, so no kink lies within the stencil."""
    x = random.normal(k, shape, dtype=np.float64)
    return np.where(x >= 0, x + 0.1, x - 0.1)


@pytest.mark.parametrize("name", ACTIVATION_CASES)
def test_activation_gradients(key: random.Key, name: str) -> None:
    layer = nn.activation(name)
    x = away_from_zero(key, (4, 6))
    result = fnn.check_layer(layer, None, x)
    assert result.max_rel_error < TOL, str(result)


def test_activation_values(key: random.Key) -> None:
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(nn.relu().apply(None, x), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(nn.leaky_relu(0.1).apply(None, x), [[-0.2, 0.0, 3.0]])
    np.testing.assert_allclose(nn.sigmoid().apply(None, x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(nn.tanh().apply(None, x), np.tanh(x))
    sm = nn.softmax().apply(None, x)
    np.testing.assert_allclose(sm, np.exp(x) / np.exp(x).sum())
    np.testing.assert_allclose(nn.log_softmax().apply(None, x), np.log(sm))
    assert nn.identity().apply(None, x) is x
    assert nn.activation("linear").spec == {"layer": "identity"}


def test_activations_are_stable_for_huge_inputs() -> None:
    x = np.array([[-1e4, 0.0, 1e4]], np.float32)
    np.testing.assert_array_equal(nn.sigmoid().apply(None, x), [[0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(nn.softmax().apply(None, x), [[0.0, 0.0, 1.0]])
    assert np.isfinite(nn.log_softmax().apply(None, x)).all()


def test_dense_and_flatten_gradients(key: random.Key) -> None:
    k1, k2 = random.split(key)
    layer = nn.dense(3)
    p = layer.init(k1, (4,), dtype=np.float64)
    result = fnn.check_layer(layer, p, random.normal(k2, (5, 4), dtype=np.float64))
    assert result.max_rel_error < TOL, str(result)
    flat = fnn.check_layer(nn.flatten(), None, random.normal(k2, (2, 3, 4), dtype=np.float64))
    assert flat.max_rel_error < TOL, str(flat)


def test_flatten_shapes(key: random.Key) -> None:
    layer = nn.flatten()
    assert layer.output_shape((28, 28)) == (784,)
    assert layer.apply(None, np.zeros((2, 28, 28), np.float32)).shape == (2, 784)


def test_serial_params_and_output_shape(key: random.Key) -> None:
    model = nn.serial(nn.flatten(), nn.dense(8), nn.relu(), nn.dense(3))
    params = model.init(key, (2, 5))
    assert [type(p).__name__ for p in params] == [
        "NoneType",
        "DenseParams",
        "NoneType",
        "DenseParams",
    ]
    assert model.output_shape((2, 5)) == (3,)
    assert model.apply(params, np.ones((4, 2, 5), np.float32)).shape == (4, 3)


def test_serial_never_computes_the_first_layers_input_gradient(key: random.Key) -> None:
    calls: list[tuple[str, bool]] = []

    def spy(name: str, inner: nn.Layer[Any]) -> nn.Layer[Any]:
        def backward(p: Any, r: Any, dy: Any, need_dx: bool, out: list[Any]) -> Any:
            calls.append((name, need_dx))
            return inner.backward(p, r, dy, need_dx, out)

        return attrs.evolve(inner, backward=backward)

    model = nn.serial(
        spy("flatten", nn.flatten()),
        spy("dense1", nn.dense(4)),
        spy("relu", nn.relu()),
        spy("dense2", nn.dense(2)),
    )
    params = model.init(key, (3,))
    fnn.grad(model, fnn.losses.softmax_cross_entropy)(
        params, np.ones((2, 3), np.float32), np.array([0, 1])
    )
    assert calls == [("dense2", True), ("relu", True), ("dense1", False)]
    calls.clear()
    out, _, res = model.forward(params, np.ones((2, 3), np.float32), None, None)
    flat, layout = tree.ravel(params)
    dx = model.backward(params, res, np.ones_like(out), True, layout.buffers(flat))
    assert dx is not None and dx.shape == (2, 3)
    assert calls[-1] == ("flatten", True)


def test_nested_serial_gradients(key: random.Key) -> None:
    block = nn.serial(nn.dense(4), nn.tanh())
    model = nn.serial(nn.serial(nn.flatten(), nn.identity()), block, nn.dense(3))
    params = model.init(key, (2, 3), dtype=np.float64)
    x = random.normal(random.fold_in(key, 1), (4, 2, 3), dtype=np.float64)
    y = np.array([0, 1, 2, 0])
    result = fnn.check_model(model, fnn.losses.softmax_cross_entropy, params, x, y)
    assert result.max_rel_error < TOL, str(result)
    grads = fnn.grad(model, fnn.losses.softmax_cross_entropy)(params, x, y)
    tree.assert_same_structure(params, grads)


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
    assert spec["layers"][1] == {"layer": "dense", "features": 16, "weight_init": "glorot_uniform"}
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.mlp((3,), "swish")


def test_from_spec_rebuilds_the_same_model(key: random.Key) -> None:
    model = nn.serial(nn.flatten(), nn.dense(4), nn.leaky_relu(0.2), nn.dense(2), nn.softmax())
    assert model.spec is not None
    rebuilt = nn.from_spec(model.spec)
    assert rebuilt.spec == model.spec
    params = model.init(key, (3,))
    x = np.ones((2, 3), np.float32)
    assert rebuilt.apply(params, x).tobytes() == model.apply(params, x).tobytes()


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ({"layer": "os.system"}, ValueError, "unknown layer 'os.system'"),
        ({"layer": "dense"}, ValueError, "misses the key 'features'"),
        ({"layer": "dense", "features": 3, "code": "x"}, ValueError, "unexpected keys"),
        ({"layer": "dense", "features": "3"}, TypeError, "must be an int"),
        ({"layer": "serial", "layers": {"a": 1}}, ValueError, "needs a list for 'layers'"),
        ([1, 2], TypeError, "must be a mapping"),
    ],
)
def test_from_spec_rejects_bad_specs(spec: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        nn.from_spec(spec)


def small_model() -> nn.Layer[tuple[Any, ...]]:
    return nn.serial(nn.flatten(), nn.dense(4), nn.relu(), nn.dense(3))


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        (
            np.ones((2, 5), np.float32),
            ValueError,
            r"examples of shape \(5,\)\), but the params do not fit the model for inputs of "
            r"shape \(5,\): at \[1\]\.w: the model needs float32 \(5, 4\), got float32 \(6, 4\)",
        ),
        (np.ones((2, 6), np.int64), TypeError, "must be a float array .* got dtype int64"),
        (np.array([["a"] * 6] * 2), TypeError, "must be a float array .* got dtype <U1"),
        (np.ones((2, 6), np.float64), TypeError, "must have dtype float32 .* got float64"),
        ([[1.0] * 6], TypeError, "must be a NumPy array, got list"),
        (np.full((2, 6), np.nan, np.float32), ValueError, "finite values, got nan at index"),
    ],
)
def test_bad_inputs_are_rejected(
    key: random.Key, x: Any, error: type[Exception], message: str
) -> None:
    model = small_model()
    params = model.init(key, (6,))
    with pytest.raises(error, match=message):
        model.apply(params, x)
    with pytest.raises(error, match=message):
        fnn.grad(model, fnn.losses.softmax_cross_entropy)(params, x, np.array([0, 1]))


def test_wrong_params_are_rejected(key: random.Key) -> None:
    model = small_model()
    params = model.init(key, (6,))
    x = np.ones((2, 6), np.float32)
    with pytest.raises(TypeError, match="at the root: expected a tuple with 4 children, got 3"):
        model.apply(params[:3], x)
    with pytest.raises(TypeError, match=r"at \[1\]: expected DenseParams, got None"):
        model.apply((None, None, None, None), x)
    with pytest.raises(TypeError, match=r"at \[2\]: expected None, got DenseParams"):
        model.apply((None, params[1], params[1], params[3]), x)
    with pytest.raises(ValueError, match=r"add nn\.flatten"):
        nn.dense(3).init(key, (2, 2))
    with pytest.raises(TypeError, match="float32 or float64"):
        model.init(key, (6,), dtype=np.int32)


def test_apply_and_grad_leave_inputs_bit_identical(key: random.Key) -> None:
    model = small_model()
    params = model.init(key, (6,))
    x = random.normal(key, (5, 6))
    y = np.array([0, 1, 2, 0, 1])
    before = tree.map(np.copy, (params, x, y))
    model.apply(params, x)
    fnn.value_and_grad(model, fnn.losses.softmax_cross_entropy)(params, x, y)
    out, _, res = model.forward(params, x, None, None)
    flat, layout = tree.ravel(params)
    model.backward(params, res, np.ones_like(out), True, layout.buffers(flat))
    assert tree.equal((params, x, y), before)


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
