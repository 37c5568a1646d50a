"""The layer record (fnn/nn/_layer.py): what a layer says of itself (shapes without
allocating), model state through forward, the input and params checks, purity."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnn
from fnn import nn, random, tree
from tests.support import user_layers

SAMPLES: dict[str, tuple[nn.Layer[Any, Any], tuple[int, ...]]] = {
    "dense": (nn.dense(5), (3,)),
    "serial": (nn.serial(nn.flatten(), nn.dense(4), nn.relu()), (2, 3)),
    "flatten": (nn.flatten(), (2, 3)),
    "relu": (nn.relu(), (3,)),
    "leaky_relu": (nn.leaky_relu(0.2), (3,)),
    "sigmoid": (nn.sigmoid(), (3,)),
    "tanh": (nn.tanh(), (3,)),
    "softmax": (nn.softmax(), (3,)),
    "log_softmax": (nn.log_softmax(), (3,)),
    "identity": (nn.identity(), (3,)),
    "gelu": (nn.gelu(), (3,)),
    "silu": (nn.silu(), (3,)),
    "elu": (nn.elu(0.5), (3,)),
    "reshape": (nn.reshape((3, -1)), (2, 3)),
    "global_avg_pool": (nn.global_avg_pool(), (4, 3, 2)),
    "residual": (nn.residual(nn.serial(nn.dense(3), nn.relu()), shortcut=nn.dense(3)), (4,)),
    "conv2d": (nn.conv2d(4, (3, 2), 2, "same"), (5, 6, 3)),
    "max_pool": (nn.max_pool(2), (5, 6, 3)),
    "avg_pool": (nn.avg_pool(3, 2), (7, 6, 2)),
    "dropout": (nn.dropout(0.5), (3,)),
    "batch_norm": (nn.batch_norm(), (4, 3)),
    "layer_norm": (nn.layer_norm(), (2, 5)),
    "rms_norm": (nn.rms_norm(), (3, 4)),
    "embedding": (nn.embedding(7, 3), (5,)),
    "positional_embedding": (nn.positional_embedding(6), (4, 3)),
    "sinusoidal_embedding": (nn.sinusoidal_embedding(), (4, 3)),
    "tied": (nn.tied(7, 3, nn.serial(nn.positional_embedding(5), nn.layer_norm())), (5,)),
    "lstm": (nn.lstm(4), (5, 3)),
    "gru": (nn.gru(4, return_sequences=False), (5, 3)),
    "attention": (nn.attention(2, causal=True), (4, 6)),
    "transformer_block": (nn.transformer_block(6, 2, hidden=8, causal=True), (4, 6)),
    "gpt": (nn.gpt(vocab=9, context=5, layers=1, heads=2, features=4), (5,)),
    "test_center": (user_layers.center(), (3,)),
    "test_mask": (user_layers.mask(), (3,)),
    "test_zero_padding": (user_layers.zero_padding(), (4, 3)),
    "masked": (nn.masked(0, nn.tied(7, 3, user_layers.zero_padding())), (5,)),
}


def test_every_registered_layer_has_a_sample_here() -> None:
    """A new layer of fnn's fails here until it is added to SAMPLES (and so to the next
    test). Others register too: register's doctest ("twice"), the README's example."""
    ours = {
        name
        for name, entry in nn.LAYERS.items()
        if entry.make.__module__.startswith(("fnn.", "tests.support.user_layers"))
        and name != "twice"
    }
    assert ours == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_agree_with_init_and_allocate_nothing(
    key: random.Key, name: str, dtype: Any
) -> None:
    layer, in_shape = SAMPLES[name]
    described = layer.shapes(in_shape, dtype)
    params = layer.init(key, in_shape, dtype)
    state = None if layer.init_state is None else layer.init_state(in_shape, dtype)
    for want, have in ((described.params, params), (described.state, state)):
        tree.assert_same_structure(want, have)
        for w, h in zip(tree.leaves(want), tree.leaves(have)):
            assert (w.shape, w.dtype) == (h.shape, h.dtype)
            assert w.strides == (0,) * w.ndim  # a placeholder: no memory behind it
    assert described.output == layer.output_shape(in_shape)
    vocab = layer.declared(in_shape).ids
    x = (
        random.normal(key, (2, *in_shape), dtype)
        if vocab is None
        else np.arange(10).reshape(2, 5) % vocab
    )
    assert layer.apply(params, x, state).shape == (2, *described.output)


def test_shapes_of_a_huge_layer_cost_nothing() -> None:
    described = nn.mlp((2**31, 10)).shapes((2**20,))
    assert described.params[1].w.shape == (2**20, 2**31)
    assert described.params[1].w.nbytes == 4 * 2**51  # what it would take, not what it takes


def test_the_running_statistics_follow_their_formula(key: random.Key) -> None:
    layer = user_layers.center(momentum=0.75)
    params = layer.init(key, (2,))
    x = np.array([[1.0, 2.0], [3.0, 6.0]], np.float32)
    assert layer.init_state is not None
    state = layer.init_state((2,))
    y, state, _ = layer.forward(params, x, state, None)
    np.testing.assert_array_equal(state.mean, 0.25 * np.array([2.0, 4.0], np.float32))
    np.testing.assert_array_equal(y, [[-1.0, -2.0], [1.0, 2.0]])
    np.testing.assert_array_equal(layer.apply(params, x, state), x - state.mean)


def small_model() -> nn.Layer[tuple[Any, ...], Any]:
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


def _running_center() -> nn.Layer[None, Any]:
    """A layer without params that keeps state: a running mean it subtracts."""
    from tests.support.user_layers import CenterState

    def declare(in_shape: tuple[int, ...]) -> nn.Declared[None, Any]:
        return nn.Declared(in_shape, None, CenterState(nn.param(in_shape)))

    def infer(params: None, x: Any, state: Any) -> Any:
        return x - state.mean

    def forward(params: None, x: Any, state: Any, key: Any) -> tuple[Any, Any, None]:
        mean = x.mean(axis=0)
        return x - mean, CenterState(0.9 * state.mean + 0.1 * mean), None

    def backward(params: None, saved: None, dy: Any, need_dx: bool, grads: None) -> Any:
        return dy - dy.mean(axis=0) if need_dx else None

    return nn.Layer(declare, infer, forward, backward, stateful=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_stateful_layer_without_params_runs_in_its_states_dtype(
    key: random.Key, dtype: Any
) -> None:
    """With no params, the state's dtype is the model's: float64 (gradient checks) works,
    where it was refused as 'needs float32'."""
    layer = _running_center()
    state = layer.init_state((3,), dtype)
    x = random.normal(key, (5, 3), dtype)
    assert layer.apply(None, x, state).dtype == dtype
    if dtype == np.float64:
        report = fnn.check_layer(layer, None, x, state=state)
        assert report.max_rel_error < 1e-7, report
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(TypeError, match=f"must have dtype {np.dtype(dtype)}"):
        layer.apply(None, x.astype(other), state)
