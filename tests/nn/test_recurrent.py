"""lstm and gru (fnn/nn/_recurrent.py): gradients against finite differences and
PyTorch, PyTorch's initialization, bits on a rerun, save and load, and learning."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import losses, nn, optim, random

Array = np.ndarray[Any, Any]

TOL = 1e-6

MAKERS: dict[str, Callable[..., nn.Layer[Any, Any]]] = {"lstm": nn.lstm, "gru": nn.gru}
GATES = {"lstm": 4, "gru": 3}


def readonly(x: Array) -> Array:
    """A read-only copy: a layer that writes into its input or dy fails loudly."""
    y: Array = np.array(x)
    y.flags.writeable = False
    return y


def sequences(key: random.Key, shape: tuple[int, ...], dtype: Any = np.float64) -> Array:
    """Normal draws of scale 1.5 (from ``fold_in(key, 1000)``: check_layer's probe is
    drawn from ``fold_in(key(0), 1)``), so that the gates leave their linear range."""
    return (1.5 * random.normal(random.fold_in(key, 1000), shape, dtype)).astype(dtype)


def biased(layer: nn.Layer[Any, Any], key: random.Key, in_shape: tuple[int, int]) -> Any:
    """Params of ``layer`` with weights and biases drawn wider than PyTorch's init, so
    every gate and the cell see large and small pre-activations."""
    params = layer.init(key, in_shape, np.float64)
    leaves, treedef = fnn.tree.flatten(params)
    scaled = [2.0 * leaf for leaf in leaves]
    return fnn.tree.unflatten(treedef, scaled)


# -- gradients against finite differences -----------------------------------------------------


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize(
    ("batch", "time", "size", "features"), [(3, 5, 4, 6), (2, 1, 3, 2), (4, 7, 1, 3)]
)
def test_gradients(
    key: random.Key,
    name: str,
    return_sequences: bool,
    batch: int,
    time: int,
    size: int,
    features: int,
) -> None:
    layer = MAKERS[name](features, return_sequences)
    params = biased(layer, key, (time, size))
    x = readonly(sequences(key, (batch, time, size)))
    report = fnn.check_layer(layer, params, x)
    assert report.max_rel_error < TOL, report
    expected = batch * time * size + sum(leaf.size for leaf in fnn.tree.leaves(params))
    assert report.checked == expected  # every entry of the params and the input


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_backward_without_dx_writes_the_same_param_gradients(
    key: random.Key, name: str, return_sequences: bool
) -> None:
    layer = MAKERS[name](4, return_sequences)
    params = biased(layer, key, (6, 3))
    x = readonly(sequences(key, (5, 6, 3)))
    y, _, saved = layer.forward(params, x, None, None)
    dy = readonly(random.normal(random.fold_in(key, 2), y.shape, np.float64))
    with_dx = fnn.tree.buffers_like(params)
    without = fnn.tree.buffers_like(params)
    dx = layer.backward(params, saved, dy, True, with_dx)
    assert dx is not None and dx.shape == x.shape
    assert layer.backward(params, saved, dy, False, without) is None
    assert fnn.tree.equal(with_dx, without)  # and the residuals survived the first call


# -- PyTorch, float64 -------------------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_agrees_with_pytorch(
    torch: ModuleType, key: random.Key, name: str, return_sequences: bool
) -> None:
    batch, time, size, features = 4, 30, 5, 7
    layer = MAKERS[name](features, return_sequences)
    params = biased(layer, key, (time, size))
    x = sequences(key, (batch, time, size))
    y, _, saved = layer.forward(params, x, None, None)
    dy = random.normal(random.fold_in(key, 2), y.shape, np.float64)
    grads = fnn.tree.buffers_like(params)
    dx = layer.backward(params, saved, dy, True, grads)
    assert dx is not None

    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[name]
    rnn = module(size, features, batch_first=True, dtype=torch.float64)
    with torch.no_grad():  # PyTorch's weight_ih_l0 is w_ih.T, weight_hh_l0 is w_hh.T
        rnn.weight_ih_l0.copy_(torch.tensor(params.w_ih.T))
        rnn.weight_hh_l0.copy_(torch.tensor(params.w_hh.T))
        rnn.bias_ih_l0.copy_(torch.tensor(params.b_ih))
        rnn.bias_hh_l0.copy_(torch.tensor(params.b_hh))
    tx = torch.tensor(x, requires_grad=True)
    out, _ = rnn(tx)
    ty = out if return_sequences else out[:, -1]
    ty.backward(torch.tensor(dy))

    def close(actual: Array, desired: Any) -> None:
        np.testing.assert_allclose(actual, desired.detach().numpy(), rtol=1e-10, atol=1e-12)

    close(y, ty)
    close(layer.apply(params, x), ty)
    close(dx, tx.grad)
    close(grads.w_ih, rnn.weight_ih_l0.grad.T)
    close(grads.w_hh, rnn.weight_hh_l0.grad.T)
    close(grads.b_ih, rnn.bias_ih_l0.grad)
    close(grads.b_hh, rnn.bias_hh_l0.grad)


# -- init, spec, arguments --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_pytorch_initialization_shapes_and_records(key: random.Key, name: str) -> None:
    features, gates = 50, GATES[name]
    layer = MAKERS[name](features)
    params = layer.init(key, (9, 3))
    assert isinstance(params, {"lstm": nn.LSTMParams, "gru": nn.GRUParams}[name])
    assert isinstance(params, (nn.LSTMParams, nn.GRUParams))
    assert params.w_ih.shape == (3, gates * features)
    assert params.w_hh.shape == (features, gates * features)
    assert params.b_ih.shape == params.b_hh.shape == (gates * features,)
    bound = 1 / np.sqrt(features)
    for leaf in fnn.tree.leaves(params):
        assert leaf.dtype == np.float32 and not leaf.flags.writeable
        assert np.abs(leaf).max() <= bound and np.abs(leaf).max() > 0.9 * bound
    # each gate's block is drawn apart: no two blocks are alike
    blocks = np.split(params.w_hh, gates, axis=1)
    assert all(not np.array_equal(blocks[0], b) for b in blocks[1:])
    mask = fnn.tree.leaves(fnn.tree.weight_mask(params))
    assert [bool(m) for m in mask] == [True, True, False, False]  # w_ih, w_hh; not biases
    p64 = layer.init(key, (9, 3), np.float64)
    assert fnn.tree.allclose(p64, params, rtol=1e-6, atol=0)  # the same draws
    assert layer.output_shape((9, 3)) == (9, features)
    assert MAKERS[name](features, False).output_shape((9, 3)) == (features,)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_spec_round_trip_and_other_initializers(key: random.Key, name: str) -> None:
    layer = MAKERS[name](4, False, weight_init="glorot_uniform", bias_init="zeros")
    assert layer.spec == {
        "layer": name, "features": 4, "return_sequences": False,
        "weight_init": "glorot_uniform", "bias_init": "zeros",
    }  # fmt: skip
    rebuilt = nn.from_spec(layer.spec)
    params = rebuilt.init(key, (3, 2))
    assert not params.b_ih.any() and not params.b_hh.any()
    assert fnn.tree.equal(params, layer.init(key, (3, 2)))
    assert MAKERS[name](4).spec == {
        "layer": name, "features": 4, "return_sequences": True,
        "weight_init": "pytorch_recurrent", "bias_init": "pytorch_recurrent",
    }  # fmt: skip
    assert nn.initializer("pytorch_recurrent") is nn.pytorch_recurrent


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_bad_arguments_and_inputs(key: random.Key, name: str) -> None:
    make = MAKERS[name]
    with pytest.raises(ValueError, match=f"{name} features must be >= 1"):
        make(0)
    with pytest.raises(TypeError, match=f"{name} return_sequences must be True or False"):
        make(3, 1)
    with pytest.raises(ValueError, match="unknown weight initializer 'uniform'"):
        make(3, weight_init="uniform")
    layer = make(3)
    with pytest.raises(ValueError, match=rf"{name} expects sequences of shape \(time, features\)"):
        layer.init(key, (5,))
    params = layer.init(key, (5, 2))
    with pytest.raises(ValueError, match="do not fit the model"):
        layer.apply(params, np.zeros((1, 5, 3), np.float32))


# -- bits, files, learning --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_float32_reruns_are_bit_identical(key: random.Key, name: str) -> None:
    model = nn.serial(MAKERS[name](16), MAKERS[name](8, False), nn.dense(3))
    params = model.init(key, (12, 5))
    x = random.normal(random.fold_in(key, 1), (6, 12, 5))
    y = np.array([0, 1, 2, 0, 1, 2])
    grad = fnn.value_and_grad(model, losses.softmax_cross_entropy)
    first, again = grad(params, x, y), grad(params, x, y)
    assert fnn.tree.leaves(first[1])[0].dtype == np.float32
    assert first[0] == again[0] and fnn.tree.fingerprint(first) == fnn.tree.fingerprint(again)
    assert model.apply(params, x).tobytes() == model.apply(params, x).tobytes()


def test_a_saved_model_loads_and_predicts_the_same(key: random.Key, tmp_path: Path) -> None:
    model = nn.serial(nn.lstm(6), nn.gru(5, return_sequences=False), nn.dense(3))
    params = model.init(key, (7, 4))
    path = fnn.io.save_model(tmp_path / "m.npz", model, params, in_shape=(7, 4))
    loaded, loaded_params, state = fnn.io.load_model(path)
    assert state is None and loaded.spec == model.spec
    assert isinstance(loaded_params[0], nn.LSTMParams)
    assert isinstance(loaded_params[1], nn.GRUParams)
    x = random.normal(random.fold_in(key, 1), (3, 7, 4))
    np.testing.assert_array_equal(loaded.apply(loaded_params, x), model.apply(params, x))


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_fit_learns_to_remember_the_first_step(name: str) -> None:
    """The label is the sign of the first of 8 random steps: the last hidden state must
    carry it through 7 steps of noise."""
    k1, k2 = random.split(random.key(3))
    x = random.normal(k1, (1000, 8, 1))
    y = (x[:, 0, 0] > 0).astype(np.int64)
    model = nn.serial(MAKERS[name](16, False), nn.dense(2))
    state = fnn.fit(
        model,
        losses.softmax_cross_entropy,
        optim.adam(0.01),
        x,
        y,
        key=k2,
        epochs=8,
        batch_size=32,
        validation_split=0.2,
    )
    assert state.history[0].val_accuracy < 0.7
    assert state.history[-1].val_accuracy > 0.9, state.history


@pytest.mark.parametrize("make", [nn.lstm, nn.gru])
def test_decoding_step_by_step_gives_the_whole_forward(key: random.Key, make: Any) -> None:
    """The decoder carries the states from one position to the next: stepping through a
    sequence gives every position's output of the whole forward."""
    layer = make(6)
    params = layer.init(key, (7, 3), np.float64)
    x = random.normal(random.fold_in(key, 1), (2, 7, 3), np.float64)
    decoder = nn.decoder_of(layer)
    cache = decoder.start(params, 2, 7)
    stepped = np.stack([decoder.step(params, x[:, t], None, cache, t) for t in range(7)], axis=1)
    np.testing.assert_allclose(stepped, layer.apply(params, x), rtol=1e-13, atol=1e-15)
    assert make(6, return_sequences=False).decoder is None  # only its last step: nothing to stream


# -- padding: nn.masked -----------------------------------------------------------------------

# valid positions (batch 3, time 6): full, right-padded, left-padded, and a hole mid-way
PADDING = np.array(
    [
        [True] * 6,
        [True] * 4 + [False] * 2,
        [False] * 3 + [True] * 3,
    ]
)
HOLE = np.array([[True, True, False, False, True, True], [True] * 6, [False] * 6])


def masked_train(layer: nn.Layer[Any, Any], params: Any, x: Array, mask: Array) -> Any:
    forward: Any = layer.forward
    return forward(params, x, None, None, mask)


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("mask", [PADDING, HOLE], ids=["padding", "hole"])
def test_masked_gradients(key: random.Key, name: str, return_sequences: bool, mask: Array) -> None:
    """A padded step keeps its row's states: backward through it passes the states'
    gradients on untouched and gives it no input gradient (finite differences)."""
    layer = MAKERS[name](4, return_sequences)
    params = biased(layer, key, (6, 3))
    x = readonly(sequences(key, (3, 6, 3)))
    report = fnn.check_layer(layer, params, x, mask=mask)
    assert report.max_rel_error < TOL, report
    y, _, saved = masked_train(layer, params, x, mask)
    dy = random.normal(random.fold_in(key, 2), y.shape, np.float64)
    dx = layer.backward(params, saved, dy, True, fnn.tree.buffers_like(params))
    assert dx is not None
    np.testing.assert_array_equal(dx[~mask], 0.0)  # a padded input reaches nothing
    assert np.abs(dx[mask]).min() > 0


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_a_padded_sequence_gives_what_it_gives_alone(
    key: random.Key, name: str, return_sequences: bool
) -> None:
    """Under nn.masked a sequence padded on the right or on the left gives, at its own
    positions and as its last state, what it gives alone; without the mask the padding
    would run through the states."""
    body = nn.serial(nn.embedding(7, 5), MAKERS[name](4, return_sequences), nn.dense(2))
    model = nn.masked(0, body)
    params = fnn.tree.map(lambda a: a.astype(np.float64), model.init(key, (6,)))
    alone_ids = np.array([[3, 1, 4, 6]])
    batch = np.array([[3, 1, 4, 6, 0, 0], [0, 0, 3, 1, 4, 6], [5, 2, 6, 1, 1, 2]])
    alone = model.apply(params, alone_ids)
    out = model.apply(params, batch)
    if return_sequences:
        np.testing.assert_allclose(out[0, :4], alone[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(out[1, 2:], alone[0], rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_allclose(out[:2], np.concatenate([alone, alone]), rtol=1e-12)
        assert not np.allclose(body.apply(params, batch)[:2], out[:2])  # the mask matters


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_masked_agrees_with_pytorch_packed_sequences(
    torch: ModuleType, key: random.Key, name: str
) -> None:
    """Right padding against PyTorch's packed sequences (pack_padded_sequence): every
    valid output, the last valid state, and every gradient."""
    lengths = [6, 4, 1]
    mask = np.arange(6) < np.array(lengths)[:, None]
    layer = MAKERS[name](5)
    last = MAKERS[name](5, return_sequences=False)
    params = biased(layer, key, (6, 3))
    x = sequences(key, (3, 6, 3))
    y, _, saved = masked_train(layer, params, x, mask)
    dy = random.normal(random.fold_in(key, 2), y.shape, np.float64) * mask[..., None]
    grads = fnn.tree.buffers_like(params)
    dx = layer.backward(params, saved, dy, True, grads)
    assert dx is not None

    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[name]
    rnn = module(3, 5, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(params.w_ih.T))
        rnn.weight_hh_l0.copy_(torch.tensor(params.w_hh.T))
        rnn.bias_ih_l0.copy_(torch.tensor(params.b_ih))
        rnn.bias_hh_l0.copy_(torch.tensor(params.b_hh))
    tx = torch.tensor(x, requires_grad=True)
    utils = torch.nn.utils.rnn
    packed = utils.pack_padded_sequence(tx, lengths, batch_first=True, enforce_sorted=False)
    out, state = rnn(packed)
    padded, _ = utils.pad_packed_sequence(out, batch_first=True, total_length=6)
    padded.backward(torch.tensor(dy))
    h_n = state[0] if name == "lstm" else state

    def close(actual: Array, desired: Any) -> None:
        np.testing.assert_allclose(actual, desired.detach().numpy(), rtol=1e-10, atol=1e-12)

    close(y[mask], padded[torch.tensor(mask)])
    close(masked_train(last, params, x, mask)[0], h_n[0])
    close(dx, tx.grad)
    close(grads.w_ih, rnn.weight_ih_l0.grad.T)
    close(grads.w_hh, rnn.weight_hh_l0.grad.T)
    close(grads.b_ih, rnn.bias_ih_l0.grad)
    close(grads.b_hh, rnn.bias_hh_l0.grad)


@pytest.mark.parametrize("make", [nn.lstm, nn.gru])
def test_decoding_with_a_mask_gives_the_masked_forward(key: random.Key, make: Any) -> None:
    """The decoder's step takes the valid positions as the forward does: a padded
    position keeps the states, stepped or whole."""
    layer = make(6)
    params = layer.init(key, (6, 3), np.float64)
    x = random.normal(random.fold_in(key, 1), (3, 6, 3), np.float64)
    decoder = nn.decoder_of(layer)
    cache = decoder.start(params, 3, 6)
    step: Any = decoder.step
    stepped = np.stack([step(params, x[:, t], None, cache, t, HOLE) for t in range(6)], axis=1)
    whole = layer.apply(params, x, mask=HOLE)
    np.testing.assert_allclose(stepped, whole, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(whole[2], 0.0)  # nothing valid: the zero state throughout


@pytest.mark.parametrize("make", [nn.lstm, nn.gru])
def test_a_mask_that_does_not_fit_is_refused(key: random.Key, make: Any) -> None:
    layer = make(4)
    params = layer.init(key, (6, 3))
    x = np.zeros((3, 6, 3), np.float32)
    infer: Any = layer.infer
    with pytest.raises(ValueError, match=r"mask must be the valid positions \(3, 6\)"):
        infer(params, x, None, np.ones((3, 5), bool))
