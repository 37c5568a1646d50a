"""Token inputs (fnn/nn/_embedding.py): embedding, positions, the tied output and padding
masks; gradients by finite differences, values and gradients against PyTorch in float64,
and token ids through training, inference and model files."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import losses, nn, random, tree
from fnn.nn._embedding import table_gradient
from tests.support import user_layers

Array = np.ndarray[Any, Any]

TOL = 1e-6


def ids(key: random.Key, shape: tuple[int, ...], vocab: int) -> Array:
    out: Array = (random.uniform(key, shape, dtype=np.float64) * vocab).astype(np.int64)
    return out


def tiny_lm(vocab: int = 11, features: int = 6, context: int = 5) -> nn.Layer[Any, Any]:
    body = nn.serial(
        nn.positional_embedding(context),
        nn.dense(features),
        nn.gelu(),
        nn.layer_norm(bias=False),
    )
    return nn.tied(vocab, features, body)


# -- embedding ----------------------------------------------------------------------------------


def test_embedding_looks_up_rows(key: random.Key) -> None:
    layer = nn.embedding(10, 3)
    params = layer.init(key, (4,))
    x = np.array([[1, 2, 2, 9], [0, 0, 5, 3]], np.int32)
    y = layer.apply(params, x)
    assert y.shape == (2, 4, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y, params.table[x])
    assert float(params.table.std()) == pytest.approx(1.0, rel=0.3)  # PyTorch's N(0, 1)


@pytest.mark.parametrize(("n", "vocab"), [(0, 4), (1, 4), (50, 7), (200, 3), (30, 100)])
def test_table_gradient_sums_the_rows_of_each_id(key: random.Key, n: int, vocab: int) -> None:
    where = ids(key, (n,), vocab)
    dy = random.normal(random.fold_in(key, 1), (n, 5), np.float64)
    want = np.zeros((vocab, 5))
    np.add.at(want, where, dy)
    out = np.full((vocab, 5), np.nan)
    table_gradient(where, dy, out)
    np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-15)


def test_embedding_gradient_and_no_input_gradient(key: random.Key) -> None:
    layer = nn.embedding(6, 4)
    params = layer.init(key, (5,), np.float64)
    report = fnn.check_layer(layer, params, ids(key, (3, 5), 6))
    assert report.max_rel_error < TOL, str(report)
    assert report.skipped == "input: integer token ids have no gradient"
    assert "not checked: input: integer token ids have no gradient" in str(report)
    _, _, saved = layer.forward(params, np.zeros((1, 5), np.int64), None, None)
    grads = tree.buffers(tree.structure(params), iter([np.empty((6, 4))]))
    with pytest.raises(TypeError, match="integer token ids, which have no gradient"):
        layer.backward(params, saved, np.zeros((1, 5, 4)), True, grads)


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        (
            np.array([[1, 6]]),
            ValueError,
            r"holds the id 6 at \(0, 1\), outside the vocabulary of 6",
        ),
        (np.array([[-1, 2]]), ValueError, r"holds the id -1 at \(0, 0\)"),
        (np.array([[1.0, 2.0]]), TypeError, "must be integer token ids .* got dtype float64"),
    ],
)
def test_ids_outside_the_vocabulary_are_refused_first(
    key: random.Key, x: Array, error: type[Exception], message: str
) -> None:
    model = tiny_lm(vocab=6, context=2)
    params = model.init(key, (2,))
    with pytest.raises(error, match=message):
        model.apply(params, x)
    with pytest.raises(error, match=message):
        fnn.grad(model, losses.softmax_cross_entropy)(params, x, np.zeros((1, 2), np.int64))
    with pytest.raises(error, match=message):
        fnn.predict(model, params, x)
    with pytest.raises(error, match=message.replace("model input", "check_layer's x")):
        fnn.check_layer(model, params, x)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="embedding vocab must be >= 1, got 0"):
        nn.embedding(0, 3)
    with pytest.raises(TypeError, match="embedding features must be an int"):
        nn.embedding(3, 2.0)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match="positional_embedding has 4 positions, got sequences of 5"
    ):
        nn.positional_embedding(4).init(random.key(0), (5, 3))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, time, features\)"):
        nn.sinusoidal_embedding().output_shape((3,))
    with pytest.raises(ValueError, match=r"base must be a finite number > 1, got 1\.0"):
        nn.sinusoidal_embedding(1.0)
    with pytest.raises(ValueError, match="must keep the embedding's 4 features"):
        nn.tied(5, 4, nn.dense(3)).init(random.key(0), (2,))
    with pytest.raises(TypeError, match="masked needs a layer that takes a mask"):
        nn.masked(0, tiny_lm())
    with pytest.raises(ValueError, match="masked pad_id must be >= 0, got -1"):
        nn.masked(-1, nn.tied(5, 4, user_layers.zero_padding()))


# -- positions --------------------------------------------------------------------------------


@pytest.mark.parametrize("time", [1, 3, 5])
def test_positional_embedding_gradient(key: random.Key, time: int) -> None:
    layer = nn.positional_embedding(5)
    params = nn.PositionalParams(random.normal(key, (5, 3), np.float64))
    x = random.normal(random.fold_in(key, 1), (2, time, 3), np.float64)
    np.testing.assert_array_equal(layer.apply(params, x), x + params.table[:time])
    report = fnn.check_layer(layer, params, x)
    assert report.max_rel_error < TOL, str(report)


def test_sinusoids_follow_the_formula(key: random.Key) -> None:
    layer = nn.sinusoidal_embedding(base=100.0)
    x = random.normal(key, (2, 7, 5), np.float64)
    t, i = np.arange(7)[:, None], np.arange(5)[None, :]
    angle = t / 100.0 ** ((i - i % 2) / 5)
    want = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))
    np.testing.assert_allclose(
        layer.apply(None, x) - x, np.broadcast_to(want, x.shape), rtol=1e-12, atol=1e-15
    )
    report = fnn.check_layer(layer, None, x)
    assert report.max_rel_error < TOL, str(report)


# -- the tied output --------------------------------------------------------------------------


def test_the_tied_model_holds_its_table_once(key: random.Key) -> None:
    model = tiny_lm()
    params = model.init(key, (5,), np.float64)
    assert isinstance(params[0], nn.EmbeddingParams) and params[0].table.shape == (11, 6)
    assert tree.size(params) == 11 * 6 + 5 * 6 + (6 * 6 + 6) + 6
    assert model.output_shape((5,)) == (5, 11)
    x = ids(key, (3, 5), 11)
    h = model.infer(params, x, None)
    assert h.shape == (3, 5, 11)
    report = fnn.check_layer(model, params, x)
    assert report.max_rel_error < TOL, str(report)


def test_the_tied_gradient_is_the_sum_of_both_uses(key: random.Key) -> None:
    """dtable = (the embedding's scatter) + (the output's dlogits.T @ h): checked by
    finite differences on the loss of a whole model too."""
    model = tiny_lm()
    params = model.init(key, (5,), np.float64)
    x, y = ids(key, (4, 5), 11), ids(random.fold_in(key, 1), (4, 5), 11)
    y[0, 3:] = losses.IGNORE
    report = fnn.check_model(model, losses.softmax_cross_entropy, params, x, y)
    assert report.max_rel_error < TOL, str(report)


# -- masks ------------------------------------------------------------------------------------


def test_masked_hands_the_layers_the_positions_that_are_tokens(key: random.Key) -> None:
    model = nn.masked(0, nn.tied(5, 4, user_layers.zero_padding()))
    params = model.init(key, (4,), np.float64)
    x = np.array([[3, 1, 0, 0], [2, 2, 4, 0]])
    out = model.apply(params, x)
    np.testing.assert_array_equal(out[0, 2:], 0)  # padded positions zeroed, then h @ table.T
    assert np.abs(out[0, :2]).min() > 0
    report = fnn.check_layer(model, params, x)
    assert report.max_rel_error < TOL, str(report)
    assert nn.from_spec(model.spec).spec == model.spec


# -- against PyTorch --------------------------------------------------------------------------


@pytest.mark.oracle
def test_embedding_agrees_with_pytorch(torch: ModuleType, key: random.Key) -> None:
    layer = nn.embedding(9, 4)
    params = layer.init(key, (6,), np.float64)
    x = ids(key, (3, 6), 9)
    dy = random.normal(random.fold_in(key, 2), (3, 6, 4), np.float64)
    theirs = torch.nn.Embedding(9, 4, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(np.array(params.table)))
    yt = theirs(torch.from_numpy(x))
    yt.backward(torch.from_numpy(dy))
    y, _, saved = layer.forward(params, x, None, None)
    grads = tree.buffers(tree.structure(params), iter([np.empty((9, 4))]))
    layer.backward(params, saved, dy, False, grads)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_allclose(grads.table, theirs.weight.grad.numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.oracle
def test_a_tied_language_model_agrees_with_pytorch(torch: ModuleType, key: random.Key) -> None:
    """Embedding + learned positions + layer norm without bias + the tied output, as
    nanoGPT writes them (wte, wpe, ln_f, lm_head.weight = wte.weight), values and every
    parameter's gradient of the token-mean cross-entropy."""
    vocab, features, time = 7, 4, 5
    model = nn.tied(
        vocab, features, nn.serial(nn.positional_embedding(time), nn.layer_norm(bias=False))
    )
    params = model.init(key, (time,), np.float64)
    params = tree.map(
        lambda a: a + 0.1 * random.normal(random.fold_in(key, 9), a.shape, a.dtype), params
    )
    x, y = ids(key, (3, time), vocab), ids(random.fold_in(key, 1), (3, time), vocab)
    value, grads = fnn.value_and_grad(model, losses.softmax_cross_entropy)(params, x, y)

    wte = torch.tensor(np.array(params[0].table), requires_grad=True)
    wpe = torch.tensor(np.array(params[1][0].table), requires_grad=True)
    scale = torch.tensor(np.array(params[1][1].scale), requires_grad=True)
    h = wte[torch.from_numpy(x)] + wpe[:time]
    h = torch.nn.functional.layer_norm(h, (features,), scale, None, 1e-5)
    logits = h @ wte.T
    theirs = torch.nn.functional.cross_entropy(
        logits.reshape(-1, vocab), torch.from_numpy(y.reshape(-1))
    )
    theirs.backward()
    assert value == pytest.approx(theirs.item(), rel=1e-13)
    assert wte.grad is not None and wpe.grad is not None and scale.grad is not None
    np.testing.assert_allclose(grads[0].table, wte.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads[1][0].table, wpe.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads[1][1].scale, scale.grad.numpy(), rtol=1e-10, atol=1e-14)


# -- token ids through the library ------------------------------------------------------------


def copy_task(n: int, time: int, vocab: int) -> tuple[Array, Array]:
    """Sequences whose next token is the current one plus one (mod vocab)."""
    start = np.arange(n)[:, None] % vocab
    x = (start + np.arange(time)[None, :]) % vocab
    return x.astype(np.int64), ((x + 1) % vocab).astype(np.int64)


def test_fit_evaluate_and_predict_take_token_ids(key: random.Key) -> None:
    model = tiny_lm(vocab=7, features=8, context=4)
    x, y = copy_task(64, 4, 7)
    first = fnn.evaluate(model, losses.softmax_cross_entropy, model.init(key, (4,)), x, y)
    final = fnn.fit(
        model, losses.softmax_cross_entropy, fnn.optim.adam(3e-2), x, y,
        key=key, epochs=15, batch_size=16, validation_split=0.25,
    )  # fmt: skip
    assert np.isnan(final.history[-1].accuracy)  # per-position accuracy is not counted
    result = fnn.evaluate(model, losses.softmax_cross_entropy, final.params, x, y)
    assert result.loss < 0.2 * first.loss
    predicted = fnn.predict(model, final.params, x)
    assert predicted.shape == (64, 4) and (predicted == y).mean() > 0.95
    proba = fnn.predict_proba(model, final.params, x[:2])
    np.testing.assert_allclose(proba.sum(axis=-1), 1.0, rtol=1e-5)


def padded_targets(key: random.Key) -> tuple[Array, Array]:
    """Sequences whose rows have 4, 1, 0, 3, 2 and 4 targets (the rest IGNORE)."""
    x, y = copy_task(6, 4, 7)
    y = y.copy()
    for row, kept in enumerate([4, 1, 0, 3, 2, 4]):
        y[row, kept:] = losses.IGNORE
    return x, y


def test_the_mean_loss_of_padded_targets_does_not_depend_on_the_chunks(key: random.Key) -> None:
    """evaluate weights each chunk by its counted targets (losses.counted_rows), not its
    rows: the loss over every target at once, whatever the batch size."""
    model = tiny_lm(vocab=7, features=8, context=4)
    params = model.init(key, (4,), np.float64)
    x, y = padded_targets(key)
    assert losses.counted_rows(y) == 14 / 4 and losses.counted_rows(y[:2]) == 5 / 4
    assert losses.counted_rows(y[2:3]) == 0.0 and losses.counted_rows(x) == 6.0
    whole, _ = losses.softmax_cross_entropy(model.apply(params, x), y)
    for batch_size in (1, 2, 4, 6):
        found = fnn.evaluate(model, losses.softmax_cross_entropy, params, x, y, batch_size)
        assert found.loss == pytest.approx(whole, rel=1e-14), batch_size
    nothing = np.full_like(y, losses.IGNORE)
    assert fnn.evaluate(model, losses.softmax_cross_entropy, params, x, nothing, 2).loss == 0.0


def test_shards_of_padded_targets_take_the_batchs_gradient(key: random.Key) -> None:
    """Each shard's loss and gradient weigh by its share of the counted targets, so a
    sharded step follows the gradient of the whole batch's mean over them."""
    model = tiny_lm(vocab=7, features=8, context=4)
    params = model.init(key, (4,), np.float64)
    x, y = padded_targets(key)
    opt = fnn.optim.sgd(1.0)
    after = []
    for shards in (1, 2, 3):
        step = fnn.train_step(model, losses.softmax_cross_entropy, opt, shards=shards)
        state = step(fnn.train_state(opt, params, key), (x, y))
        after.append(state.opt.params)
    for params_after in after[1:]:
        for mine, whole in zip(tree.leaves(params_after), tree.leaves(after[0])):
            np.testing.assert_allclose(mine, whole, rtol=1e-12, atol=1e-14)


def test_training_on_token_ids_reruns_bit_for_bit(key: random.Key) -> None:
    model = tiny_lm(vocab=7, features=8, context=4)
    x, y = copy_task(40, 4, 7)

    def run() -> Any:
        return fnn.fit(
            model, losses.softmax_cross_entropy, fnn.optim.adamw(1e-2), x, y,
            key=key, epochs=2, batch_size=8, shards=2,
        ).params  # fmt: skip

    assert tree.equal(run(), run())


def test_sequence_labels_are_checked_against_the_vocabulary(key: random.Key) -> None:
    model = tiny_lm(vocab=7, features=8, context=4)
    x, y = copy_task(8, 4, 7)
    y[2, 1] = 7
    with pytest.raises(ValueError, match=r"training labels must be in \[0, 7\) or -1"):
        fnn.fit(model, losses.softmax_cross_entropy, fnn.optim.sgd(0.1), x, y, key=key, epochs=1)
    with pytest.raises(TypeError, match="training x must be integer token ids"):
        fnn.fit(
            model, losses.softmax_cross_entropy, fnn.optim.sgd(0.1), x * 1.0, y, key=key, epochs=1
        )


def test_a_model_file_records_that_it_reads_token_ids(tmp_path: Path, key: random.Key) -> None:
    model = tiny_lm()
    params = model.init(key, (5,))
    path = fnn.io.save_model(tmp_path / "lm.npz", model, params, in_shape=(5,))
    assert fnn.io.load_input_dtype(path) == np.int64
    loaded, loaded_params, _ = fnn.io.load_model(path)
    x = ids(key, (2, 5), 11)
    np.testing.assert_array_equal(loaded.apply(loaded_params, x), model.apply(params, x))
    mlp = nn.mlp((3,))
    floats = fnn.io.save_model(tmp_path / "mlp.npz", mlp, mlp.init(key, (2,)), in_shape=(2,))
    assert fnn.io.load_input_dtype(floats) == np.float32
