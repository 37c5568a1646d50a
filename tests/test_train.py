from __future__ import annotations

import io
import math
from typing import Any

import attrs
import numpy as np
import pytest

import fnn
from fnn import callbacks, losses, nn, optim, random, tree
from fnn.inference import evaluate, predict, predict_proba
from fnn.train import (
    EarlyStopping,
    Event,
    NonFiniteLossError,
    TrainState,
    fit,
    train_epoch,
    train_step,
)

Data = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]


def blobs(key: random.Key, n: int = 240, noise: float = 0.8) -> Data:
    """Three overlapping Gaussian blobs in 4-D: float32 x (n, 4), int64 labels."""
    k1, k2 = random.split(key)
    labels = random.permutation(k1, n) % 3
    centres = np.array([[2, 0, 0, 1], [0, 2, 0, -1], [0, 0, 2, 0]], np.float32)
    return centres[labels] + random.normal(k2, (n, 4)) * noise, labels


def model() -> nn.Layer[tuple[Any, ...]]:
    return nn.mlp((16, 3))


def fit_mlp(opt: optim.Optimizer, x: Any, y: Any, **options: Any) -> TrainState[Any]:
    """``fit`` of the test MLP with softmax cross-entropy."""
    return fit(model(), losses.softmax_cross_entropy, opt, x, y, **options)


def test_train_step_and_epoch_fold(key: random.Key) -> None:
    x, y = blobs(key)
    m = model()
    opt = optim.adam(0.05)
    state = TrainState(opt.init(m.init(key, (4,))), key)
    step = train_step(m, losses.softmax_cross_entropy, opt)
    batches = list(fnn.data.batches(key, x, y, 32))
    before = tree.map(np.copy, (state, x, y))
    folded = train_epoch(step, state, batches)
    assert tree.equal((state, x, y), before)  # nothing passed in changed
    manual = state
    for b in batches:
        manual = step(manual, b)
    assert tree.equal(folded, manual)
    assert folded.step == len(batches) == 8
    assert folded.metrics.count == 240
    first = evaluate(m, losses.softmax_cross_entropy, state.params, x, y)
    after = evaluate(m, losses.softmax_cross_entropy, folded.params, x, y)
    assert after.loss < first.loss
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        folded.epoch = 3  # type: ignore[misc]


def test_fit_learns_and_records_history(key: random.Key) -> None:
    x, y = blobs(key)
    state = fit_mlp(
        optim.adam(0.02),
        x,
        y,
        key=key,
        epochs=5,
        batch_size=16,
        validation_split=0.25,
    )
    assert state.epoch == 5 and len(state.history) == 5
    assert [r.epoch for r in state.history] == [0, 1, 2, 3, 4]
    last = state.history[-1]
    assert last.accuracy > 0.85 and last.val_accuracy > 0.8
    assert state.history[0].loss > last.loss
    assert state.step == 5 * math.ceil(180 / 16)


def run(seed: int, epochs: int = 3, **options: Any) -> TrainState[Any]:
    k = random.key(seed)
    x, y = blobs(random.key(99))
    return fit_mlp(
        optim.adam(0.01),
        x,
        y,
        key=k,
        epochs=epochs,
        batch_size=20,
        validation_split=0.2,
        **options,
    )


def test_same_seed_is_bit_identical_and_another_seed_is_not() -> None:
    a, b, c = run(1), run(1), run(2)
    assert tree.equal(a, b)
    assert not tree.equal(a.params, c.params)
    assert a.history[-1].loss != c.history[-1].loss


def test_resume_continues_bit_identically() -> None:
    whole = run(3, epochs=4)
    half = run(3, epochs=2)
    k = random.key(3)
    x, y = blobs(random.key(99))
    resumed = fit_mlp(
        optim.adam(0.01),
        x,
        y,
        key=k,
        epochs=4,
        batch_size=20,
        validation_split=0.2,
        state=tree.map(np.copy, half),  # rebuilt from its leaves, as after loading
    )
    assert tree.equal(resumed, whole)


def test_early_stopping_stops_and_restores_the_best_params(key: random.Key) -> None:
    x, y = blobs(key)
    seen: list[Any] = []

    def remember(event: Event) -> None:
        if event.kind == "epoch_end":
            seen.append(event.state.params)

    stop = EarlyStopping(monitor="val_loss", patience=2, min_delta=10.0)  # nothing improves
    state = fit_mlp(
        optim.adam(0.01),
        x,
        y,
        key=key,
        epochs=20,
        batch_size=32,
        validation_split=0.2,
        early_stopping=stop,
        callbacks=[remember],
    )
    assert state.stopped and state.epoch == 3
    assert state.best is not None and state.best.epoch == 0
    assert tree.equal(state.params, seen[0])
    again = fit_mlp(
        optim.adam(0.01),
        x,
        y,
        key=key,
        epochs=20,
        state=state,
    )
    assert again is state or tree.equal(again, state)


def test_early_stopping_on_training_loss_without_validation(key: random.Key) -> None:
    x, y = blobs(key)
    state = fit_mlp(
        optim.adam(0.01),
        x,
        y,
        key=key,
        epochs=6,
        early_stopping=EarlyStopping(patience=3, restore_best=False),
    )
    assert not state.stopped and state.epoch == 6
    assert state.best is not None and state.best.epoch == 5
    with pytest.raises(ValueError, match="unknown metric 'val_f1'"):
        EarlyStopping(monitor="val_f1")


def test_a_non_finite_loss_stops_with_the_step_named(key: random.Key) -> None:
    x, y = blobs(key)
    with np.errstate(all="ignore"), pytest.raises(NonFiniteLossError, match=r"at step \d+"):
        fit_mlp(optim.sgd(1e30), x, y, key=key, epochs=3)


def test_callbacks_see_every_event_in_order(key: random.Key) -> None:
    x, y = blobs(key, n=50)
    kinds: list[tuple[str, int, int]] = []
    fit_mlp(
        optim.sgd(0.1),
        x,
        y,
        key=key,
        epochs=2,
        batch_size=20,
        callbacks=[lambda e: kinds.append((e.kind, e.epoch, e.batch))],
    )
    expected = [("train_begin", 0, 0)]
    for epoch in range(2):
        expected += [("epoch_begin", epoch, 0)]
        expected += [("batch_end", epoch, b) for b in (1, 2, 3)]
        expected += [("epoch_end", epoch, 3)]
    expected += [("train_end", 2, 0)]
    assert kinds == expected


@pytest.mark.parametrize("use_tqdm", [False, True])
def test_progress_bar_shows_loss_accuracy_and_speed(key: random.Key, use_tqdm: bool) -> None:
    x, y = blobs(key, n=64)
    out = io.StringIO()
    fit_mlp(
        optim.sgd(0.1),
        x,
        y,
        key=key,
        epochs=2,
        batch_size=16,
        validation_split=0.25,
        callbacks=[callbacks.progress_bar(stream=out, use_tqdm=use_tqdm, min_interval=0.0)],
    )
    text = out.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text
    assert "loss" in text and "acc" in text and "val_loss" in text
    if not use_tqdm:
        assert "samples/s" in text and "3/3" in text


def test_log_epochs_writes_one_line_per_epoch(key: random.Key) -> None:
    x, y = blobs(key, n=40)
    lines: list[str] = []
    fit_mlp(
        optim.sgd(0.1),
        x,
        y,
        key=key,
        epochs=3,
        callbacks=[callbacks.log_epochs(lines.append)],
    )
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3 loss ") and " acc " in lines[0]


def test_predict_and_predict_proba(key: random.Key) -> None:
    x, _ = blobs(key, n=30)
    logits_model = model()
    params = logits_model.init(key, (4,))
    probs = predict_proba(logits_model, params, x, batch_size=7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    labels = predict(logits_model, params, x, batch_size=7)
    np.testing.assert_array_equal(labels, logits_model.apply(params, x).argmax(axis=1))
    np.testing.assert_array_equal(labels, probs.argmax(axis=1))
    softmax_model = nn.mlp((16, 3), final_activation="softmax")
    direct = predict_proba(softmax_model, (*params, None), x)
    np.testing.assert_array_equal(direct, softmax_model.apply((*params, None), x))


def test_evaluate_matches_one_big_batch(key: random.Key) -> None:
    x, y = blobs(key, n=50)
    m = model()
    params = m.init(key, (4,), dtype=np.float64)
    x64 = x.astype(np.float64)
    result = evaluate(m, losses.softmax_cross_entropy, params, x64, y, batch_size=7)
    whole, _ = losses.softmax_cross_entropy(m.apply(params, x64), y)
    assert result.loss == pytest.approx(whole, rel=1e-12)
    assert result.accuracy == fnn.metrics.accuracy(m.apply(params, x64), y)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"x": "nan"}, ValueError, "training x must hold finite values"),
        ({"y": "out of range"}, ValueError, r"training labels must be in \[0, 3\)"),
        ({"y": "short"}, ValueError, "training x has 60 examples but y has 59"),
        ({"x": "int"}, TypeError, "must be a float array"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"validation_split": 1.5}, ValueError, r"validation_split must be in \[0, 1\)"),
        ({"key": 0}, TypeError, "key must be an fnn.random.Key"),
    ],
)
def test_fit_rejects_bad_input(
    key: random.Key, change: dict[str, Any], error: type[Exception], message: str
) -> None:
    x, y = blobs(key, n=60)
    options: dict[str, Any] = {"key": key, "epochs": 1, "batch_size": 8}
    if change.get("x") == "nan":
        x = x.copy()
        x[5, 2] = np.nan
    elif change.get("x") == "int":
        x = x.astype(np.int64)
    elif change.get("y") == "out of range":
        y = y.copy()
        y[3] = 3
    elif change.get("y") == "short":
        y = y[:-1]
    else:
        options.update(change)
    with pytest.raises(error, match=message):
        fit_mlp(optim.sgd(0.1), x, y, **options)


def test_epoch_times_and_history_table(key: random.Key) -> None:
    x, y = blobs(key, n=40)
    times = callbacks.EpochTimes()
    assert math.isnan(times.mean)
    state = fit_mlp(optim.sgd(0.1), x, y, key=key, epochs=2, callbacks=[times])
    assert sorted(times.seconds) == [0, 1] and times.mean > 0
    table = callbacks.history_table(state.history, times.seconds).splitlines()
    assert table[0].split() == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    assert len(table) == 3 and table[1].split()[0] == "1" and table[1].split()[3] == "-"
    assert callbacks.history_table(state.history).splitlines()[2].split()[-1] == "-"
