"""Training (fnn/train.py): train_step, train_epoch and fit, TrainState, early stopping,
keys and model state per step, reruns and resumes bit for bit, what fit refuses, float64
data and labels, and which losses count accuracy."""

from __future__ import annotations

import functools
import math
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

import fnn
from fnn import callbacks, losses, nn, optim, random, tree
from fnn.inference import evaluate
from fnn.train import (
    EarlyStopping,
    Event,
    NonFiniteLossError,
    TrainState,
    train_epoch,
    train_step,
)
from tests.support import user_layers
from tests.support.data import blobs, separable, well_separated
from tests.support.models import fit_mlp, model, state_of
from tests.support.strict import no_warnings

Array = np.ndarray[Any, Any]


def test_train_step_and_epoch_fold(key: random.Key) -> None:
    x, y = blobs(key)
    m = model()
    opt = optim.adam(0.05)
    state = TrainState(opt.init(m.init(key, (4,))), key, None)
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


def run(seed: int, epochs: int = 3, **options: Any) -> TrainState[Any, Any]:
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


def test_resume_refuses_another_key_or_validation_split() -> None:
    """fit(state=...) continues the state's run or says why it cannot: another key (the
    split, shuffles and dropout derive from it), another split (each epoch trains on
    another count of rows), validation where the run had none, and back."""
    half = run(3, epochs=2)
    x, y = blobs(random.key(99))
    same = {"epochs": 4, "batch_size": 20, "state": half}
    with pytest.raises(
        ValueError, match=r"key=.* is not the key of the state's run.*key=state\.key"
    ):
        fit_mlp(optim.adam(0.01), x, y, key=random.key(4), validation_split=0.2, **same)
    with pytest.raises(ValueError, match=r"trained on 192 examples an epoch, this call on 168"):
        fit_mlp(optim.adam(0.01), x, y, key=random.key(3), validation_split=0.3, **same)
    with pytest.raises(ValueError, match=r"validated after each epoch, this call .* does not"):
        fit_mlp(optim.adam(0.01), x, y, key=random.key(3), **same)
    plain = fit_mlp(optim.adam(0.01), x, y, key=random.key(3), epochs=1, batch_size=20)
    with pytest.raises(ValueError, match=r"run did not validate, this call .* does"):
        fit_mlp(optim.adam(0.01), x, y, key=random.key(3), validation_split=0.2, epochs=2,
                batch_size=20, state=plain)  # fmt: skip


def test_check_finite_allows_nan_only_for_metrics_not_measured(key: random.Key) -> None:
    """A regression without validation data: its history's accuracy and validation
    metrics are NaN (not measured), and pass; NaN or infinity anywhere else does not."""
    x, _ = separable(key)
    state = fnn.fit(
        nn.mlp((2,)), losses.mean_squared_error, optim.sgd(0.01), x, x[:, :2], key=key, epochs=2
    )
    assert all(np.isnan(r.get(name)) for r in state.history for name in fnn.train.UNMEASURED)
    fnn.train.check_finite(state)
    fnn.train.check_finite(tree.map(np.copy, state))  # rebuilt from its leaves, as loaded
    *rest, last = state.params
    w = last.w.copy()
    w[1, 0] = np.nan
    params: Any = (*rest, attrs.evolve(last, w=w))
    with pytest.raises(ValueError, match=rf"^state\.opt\.params\[{len(rest)}\]\.w must hold fin"):
        fnn.train.check_finite(attrs.evolve(state, opt=attrs.evolve(state.opt, params=params)))
    first = state.history[0]
    for field, value in [("val_loss", math.inf), ("loss", math.nan), ("val_accuracy", -math.inf)]:
        changed: dict[str, Any] = {field: value}
        damaged = attrs.evolve(state, history=(attrs.evolve(first, **changed),))
        with pytest.raises(ValueError, match=rf"^checkpoint\.history\[0\]\.{field} must hold"):
            fnn.train.check_finite(damaged, "checkpoint")


def test_early_stopping_on_an_accuracy_not_counted_is_refused(key: random.Key) -> None:
    """A regression counts no accuracy (NaN in its history): early stopping on it could
    only stop after ``patience`` epochs, whatever the run did, so it is refused before
    training, naming the monitor and what to monitor instead."""
    x, _ = separable(key)
    for monitor in ("accuracy", "val_accuracy"):
        with pytest.raises(ValueError, match=rf"early stopping monitors {monitor!r}, but .*"):
            fnn.fit(
                nn.mlp((2,)), losses.mean_squared_error, optim.sgd(0.01), x, x[:, :2], key=key,
                epochs=2, validation_split=0.25, early_stopping=EarlyStopping(monitor=monitor),
            )  # fmt: skip


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


def test_a_state_with_the_best_params_restored_is_not_trained_on(
    key: random.Key, tmp_path: Any
) -> None:
    """A run that ran out of epochs with another epoch best returns that epoch's params
    beside the last epoch's moments: fit refuses to train on from such a state (it would
    not continue the run), and the checkpoint saved before the restore continues it
    bit-identically."""
    x, y = blobs(key)

    def run(epochs: int, state: Any = None, hooks: Any = ()) -> Any:
        stop = EarlyStopping(monitor="val_loss", patience=50, min_delta=10.0)  # epoch 0 best
        return fit_mlp(optim.adam(0.01), x, y, key=key, epochs=epochs, batch_size=32,
                       validation_split=0.2, early_stopping=stop, state=state,
                       callbacks=list(hooks))  # fmt: skip

    whole = run(6)
    part = run(3, hooks=[fnn.callbacks.checkpoint(tmp_path)])
    assert not part.stopped and part.best is not None and part.best.epoch == 0
    with pytest.raises(ValueError, match="the state holds the params of its best epoch, 0"):
        run(6, state=part)
    assert run(3, state=part) is part or tree.equal(run(3, state=part), part)  # nothing to do
    assert tree.equal(run(6, state=fnn.load(tmp_path / "last.npz")), whole)
    # params that stopped changing (a learning rate of 0) score the best value again: no
    # restore to refuse
    stop = EarlyStopping(monitor="val_loss", patience=50)
    still = optim.sgd(lambda step: 0.0)  # a schedule at 0
    frozen = fit_mlp(still, x, y, key=key, epochs=3, batch_size=32,
                     validation_split=0.2, early_stopping=stop)  # fmt: skip
    assert frozen.best is not None and frozen.best.epoch == 0
    more = fit_mlp(still, x, y, key=key, epochs=5, batch_size=32,
                   validation_split=0.2, early_stopping=stop, state=frozen)  # fmt: skip
    assert more.epoch == 5


def test_a_restore_is_found_when_the_monitored_accuracy_ties(key: random.Key) -> None:
    """An accuracy on a few validation rows ties across epochs with other params: the
    restored state was taken for params that stopped changing and trained on (epoch 0's
    params beside epoch 2's moments); the validation loss tells them apart."""
    x = random.normal(key, (40, 3)).astype(np.float32)
    y = np.arange(40) % 2
    stop = EarlyStopping("val_accuracy", patience=5, restore_best=True)

    def run(epochs: int, state: Any = None) -> Any:
        return fit_mlp(optim.sgd(0.01), x, y, key=key, epochs=epochs, batch_size=8,
                       validation_data=(x[:4], y[:4]), early_stopping=stop,
                       state=state)  # fmt: skip

    part = run(3)
    accuracies = {m.val_accuracy for m in part.history}
    assert len(accuracies) == 1 and part.best is not None and part.best.epoch == 0  # ties
    with pytest.raises(ValueError, match="the state holds the params of its best epoch, 0"):
        run(6, state=part)


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
    with pytest.raises(TypeError, match="restore_best must be True or False, got 'yes'"):
        EarlyStopping(restore_best="yes")  # type: ignore[arg-type]


def test_a_non_finite_loss_stops_with_the_step_named(key: random.Key) -> None:
    x, y = blobs(key)
    with np.errstate(all="ignore"), pytest.raises(NonFiniteLossError, match=r"at step \d+"):
        fit_mlp(optim.sgd(1e30), x, y, key=key, epochs=3)


def test_a_non_finite_validation_loss_stops_with_the_epoch_named(
    key: random.Key, tmp_path: Any
) -> None:
    """Validation inputs whose outputs overflow: an inf loss went into the history (and
    the checkpoint died writing it to JSON), a NaN one read as 'not measured'. Now the
    run stops as a diverged one does, before the epoch is recorded."""
    x, y = blobs(key)
    x_val = x[:10].copy()
    x_val[0, 0] = np.float32(3e38)  # finite, but its outputs overflow
    written: list[Any] = []
    with (
        np.errstate(all="ignore"),
        pytest.raises(NonFiniteLossError, match=r"the validation loss after epoch 0 is (inf|nan)"),
    ):
        fit_mlp(optim.sgd(0.01), x, y, key=key, epochs=2, validation_data=(x_val, y[:10]),
                callbacks=[fnn.callbacks.checkpoint(tmp_path), written.append])  # fmt: skip
    assert not (tmp_path / "last.npz").exists()
    assert [e.kind for e in written if e.kind == "epoch_end"] == []


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


# -- train_step is the gradient pipeline and an update ----------------------------------------

OPTIMIZERS: dict[str, optim.Optimizer[Any]] = {
    "sgd": optim.sgd(0.1),
    "momentum": optim.sgd(0.05, momentum=0.9),
    "nesterov": optim.sgd(0.05, momentum=0.9, nesterov=True),
    "adagrad": optim.adagrad(0.1),
    "rmsprop": optim.rmsprop(0.01, momentum=0.5),
    "adam": optim.adam(0.01),
    "adamw": optim.adamw(0.01, weight_decay=0.1, weights_only=True),
    "clipped": optim.chain(optim.clip_by_global_norm(0.5), optim.clip(0.1), optim.adam(0.01)),
    "l2 + sgd": optim.chain(optim.add_l2(0.01), optim.sgd(0.1)),
}


def l2(params: Any) -> tuple[float, Any]:
    return losses.l2_penalty(params, 0.01)


@pytest.mark.parametrize("penalty", [None, l2], ids=["no penalty", "l2 penalty"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_train_step_is_grad_then_update_bit_for_bit(name: str, penalty: Any) -> None:
    opt = OPTIMIZERS[name]
    model = nn.mlp((16, 8, 3))
    x, y = well_separated()
    params = model.init(random.key(0), (4,))
    step = fnn.train_step(model, losses.softmax_cross_entropy, opt, penalty)
    grad = fnn.grad(model, losses.softmax_cross_entropy, penalty)
    by_step = fnn.train_state(opt, params, random.key(1))
    by_hand = opt.init(params)
    for start in range(0, 96, 32):
        batch = (x[start : start + 32], y[start : start + 32])
        by_step = step(by_step, batch)
        by_hand, _ = opt.update(by_hand, grad(by_hand.params, *batch))
        assert tree.equal(by_step.opt, by_hand)


# -- model state and keys ---------------------------------------------------------------------


def fit_user_model(
    epochs: int, state: Any = None, hooks: list[fnn.Callback] | None = None
) -> fnn.TrainState[Any, Any]:
    x, y = well_separated(120)
    return fnn.fit(
        user_layers.model(),
        losses.softmax_cross_entropy,
        optim.adamw(0.05, weight_decay=0.1),
        x,
        y,
        key=random.key(5),
        epochs=epochs,
        batch_size=16,
        validation_split=0.2,
        state=state,
        callbacks=hooks or [],
    )


def test_model_state_is_trained_apart_from_the_params() -> None:
    model = user_layers.model()
    final = fit_user_model(3)
    running = final.model_state[2]
    assert isinstance(running, user_layers.CenterState)
    assert running.mean.dtype == np.float32 and np.abs(running.mean).max() > 0.05
    # the optimizer never sees it: not in its state, so no update, decay or clipping
    assert all(leaf is not running.mean for leaf in tree.leaves(final.opt))
    assert tree.size(final.opt.inner) == 2 * tree.size(final.params)
    # inference reads it; forgetting it is an error, not a silent use of zeros
    x, y = well_separated(120)
    with pytest.raises(ValueError, match=r"keeps state .* pass its state"):
        model.apply(final.params, x)
    with pytest.raises(ValueError, match="keeps state"):
        fnn.evaluate(model, losses.softmax_cross_entropy, final.params, x, y)
    result = fnn.evaluate(
        model, losses.softmax_cross_entropy, final.params, x, y, model_state=final.model_state
    )
    assert result.accuracy > 0.8
    assert final.history[-1].val_accuracy > 0.8


def test_train_step_hands_each_step_its_own_key(key: random.Key) -> None:
    """The key of update t is fold_in(fold_in(run key, 2), t), and serial hands layer i
    fold_in(that, i): a mask depends on (seed, step) and nothing else."""
    seen: list[random.Key | None] = []
    inner = user_layers.mask(0.5)

    def forward(p: None, x: Any, s: None, k: random.Key | None) -> Any:
        seen.append(k)
        return inner.forward(p, x, s, k)

    spy = attrs.evolve(inner, forward=forward)
    model = nn.serial(nn.dense(3), spy)
    opt = optim.sgd(0.1)
    step = fnn.train_step(model, losses.softmax_cross_entropy, opt)
    state = fnn.train_state(opt, model.init(key, (4,)), random.key(9))
    x, y = well_separated(8)
    for _ in range(3):
        state = step(state, (x, y))
    assert seen == [random.fold_in(fnn.step_key(random.key(9), t), 1) for t in range(3)]
    assert len(set(seen)) == 3


def test_runs_with_state_and_keys_are_bit_identical_on_rerun_and_resume(tmp_path: Path) -> None:
    whole = fit_user_model(4)
    assert tree.equal(whole, fit_user_model(4))
    fit_user_model(2, hooks=[callbacks.checkpoint(tmp_path)])
    resumed = fit_user_model(4, state=fnn.load(tmp_path / "last.npz"))
    assert tree.equal(resumed, whole)


def test_a_registered_layer_with_state_saves_loads_and_resumes_in_a_new_process(
    tmp_path: Path,
) -> None:
    model = user_layers.model()
    whole = fit_user_model(4)
    early = fit_user_model(2, hooks=[callbacks.checkpoint(tmp_path)])
    assert model.spec is not None and model.spec["layers"][2] == {
        "layer": "test_center",
        "momentum": 0.9,
    }
    fnn.io.save_model(
        tmp_path / "model.npz", model, early.params, in_shape=(4,), model_state=early.model_state
    )
    x, _ = well_separated(120)
    expected = fnn.predict_proba(model, early.params, x, model_state=early.model_state)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", expected)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        import numpy as np
        import fnn
        from tests import test_train
        from tests.support import user_layers  # the user's code registers its layers

        path = {str(tmp_path)!r}
        model, params, state = fnn.io.load_model(path + "/model.npz")
        probs = fnn.predict_proba(model, params, np.load(path + "/x.npy"), model_state=state)
        assert probs.tobytes() == np.load(path + "/expected.npy").tobytes()
        resumed = test_train.fit_user_model(4, state=fnn.load(path + "/last.npz"))
        print(fnn.tree.fingerprint(resumed))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == tree.fingerprint(whole)


# -- params of another model ------------------------------------------------------------------


def fit_once(model: nn.Layer[Any, Any], x: Array, y: Array, key: random.Key, **options: Any) -> Any:
    """``fit`` for one epoch of SGD on the cross-entropy, with ``options`` (what the tests
    below give it to be refused or warned about)."""
    return fnn.fit(
        model, losses.softmax_cross_entropy, optim.sgd(0.1), x, y, key=key, epochs=1, **options
    )


def test_fit_refuses_params_of_another_width_before_training(key: random.Key) -> None:
    x, y = separable(key)
    events: list[str] = []
    with pytest.raises(
        ValueError,
        match=r"fit's params do not fit the model for inputs of shape \(6,\): at \[1\]\.w: "
        r"the model needs float32 \(6, 64\), got float32 \(6, 32\)",
    ):
        fit_once(
            nn.mlp((64, 3)),
            x,
            y,
            key,
            params=nn.mlp((32, 3)).init(key, (6,)),
            callbacks=[lambda event: events.append(event.kind)],
        )
    assert events == []  # refused before train_begin


def test_fit_refuses_a_state_of_another_model(key: random.Key) -> None:
    x, y = separable(key)
    opt = optim.adam(1e-3)
    small = fnn.fit(nn.mlp((32, 3)), losses.softmax_cross_entropy, opt, x, y, key=key, epochs=1)
    with pytest.raises(ValueError, match=r"the state's params do not fit the model .*\[1\]\.w"):
        fnn.fit(
            nn.mlp((64, 3)), losses.softmax_cross_entropy, opt, x, y, key=key, epochs=2, state=small
        )


def test_fit_refuses_a_model_state_of_another_width(key: random.Key) -> None:
    x, y = separable(key)
    model = nn.serial(nn.dense(8), nn.batch_norm(), nn.relu(), nn.dense(3))
    wrong = state_of(nn.serial(nn.dense(5), nn.batch_norm(), nn.relu(), nn.dense(3)), (6,))
    with pytest.raises(
        ValueError,
        match=r"fit's state does not fit .*at \[1\]\.mean: the model needs float32 \(8,\)",
    ):
        fit_once(model, x, y, key, model_state=wrong)


def test_fit_refuses_params_of_mixed_dtypes(key: random.Key) -> None:
    x, y = separable(key)
    model = nn.mlp((8, 3))
    p = model.init(key, (6,))
    mixed = (*p[:3], nn.DenseParams(p[3].w, p[3].b.astype(np.float64)))
    with pytest.raises(
        ValueError, match=r"at \[3\]\.b: the model needs float32 \(3,\), got float64"
    ):
        fit_once(model, x, y, key, params=mixed)


# -- float64 data -----------------------------------------------------------------------------


def fit_blobs(x: Array, y: Array, key: random.Key, **options: Any) -> fnn.TrainState[Any, Any]:
    return fnn.fit(
        nn.mlp((16, 3)),
        losses.softmax_cross_entropy,
        optim.adam(1e-2),
        x,
        y,
        key=key,
        epochs=2,
        batch_size=16,
        **options,
    )


def test_fit_trains_float32_on_float64_data_and_says_so_once(key: random.Key) -> None:
    x, y = separable(key)
    x64 = x.astype(np.float64)
    with pytest.warns(UserWarning, match=r"x is float64 but the params are float32") as record:
        state = fit_blobs(x64, y, key, validation_split=0.25)
    assert len(record) == 1 and "dtype=np.float64" in str(record[0].message)
    assert {leaf.dtype for leaf in tree.leaves(state.params)} == {np.dtype(np.float32)}
    # each batch converted: the same bits as training on the converted data
    with no_warnings():
        same = fit_blobs(x, y, key, validation_split=0.25)
    assert tree.fingerprint(state) == tree.fingerprint(same)


def test_fit_trains_float64_when_asked(key: random.Key) -> None:
    x, y = separable(key)
    x64 = x.astype(np.float64)
    with no_warnings():
        asked = fit_blobs(x64, y, key, dtype=np.float64)
        given = fit_blobs(x64, y, key, params=nn.mlp((16, 3)).init(key, (6,), np.float64))
        widened = fit_blobs(x, y, key, dtype=np.float64)  # float32 data, converted up
    for state in (asked, given, widened):
        assert {leaf.dtype for leaf in tree.leaves(state.params)} == {np.dtype(np.float64)}
    assert tree.fingerprint(asked.params) == tree.fingerprint(widened.params)
    with pytest.raises(ValueError, match=r"dtype=float64 was asked for, but the params given"):
        fit_blobs(x64, y, key, dtype=np.float64, params=nn.mlp((16, 3)).init(key, (6,)))
    with pytest.raises(TypeError, match="parameters must be float32 or float64"):
        fit_blobs(x, y, key, dtype=np.float16)


def test_fit_warns_for_float64_validation_data(key: random.Key) -> None:
    x, y = separable(key)
    with pytest.warns(UserWarning, match=r"fit: validation x is float64 but the params are"):
        state = fit_blobs(x[:90], y[:90], key, validation_data=(x[90:].astype(np.float64), y[90:]))
    with no_warnings():
        same = fit_blobs(x[:90], y[:90], key, validation_data=(x[90:], y[90:]))
    assert tree.fingerprint(state) == tree.fingerprint(same)


def test_fit_converts_batch_by_batch_without_copying_the_dataset(key: random.Key) -> None:
    x = random.normal(key, (20_000, 100), dtype=np.float64)
    y = (np.arange(len(x)) % 3).astype(np.int64)
    model = nn.mlp((3,))
    tracemalloc.start()
    try:
        with pytest.warns(UserWarning, match="x is float64"):
            fit_once(model, x, y, key, batch_size=256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes / 8, (peak, x.nbytes)  # a float32 copy would be x.nbytes / 2


# -- float labels -----------------------------------------------------------------------------


def test_float_labels_are_told_to_be_integers(key: random.Key) -> None:
    x = random.normal(key, (512, 6))
    y = (np.arange(512) % 10).astype(np.float64)
    message = (
        r"training targets are float64 labels of shape \(512,\); pass integer class labels "
        r"\(y\.astype\(np\.int64\)\) or one-hot targets of shape \(n, 10\)"
    )
    with pytest.raises(ValueError, match=message):
        fnn.fit(
            nn.mlp((10,)), losses.softmax_cross_entropy, optim.sgd(0.1), x, y, key=key, epochs=1
        )
    params = nn.mlp((10,)).init(key, (6,))
    with pytest.raises(ValueError, match=r"evaluation targets are float64 labels"):
        fnn.evaluate(nn.mlp((10,)), losses.softmax_cross_entropy, params, x, y)


def test_a_one_output_regression_keeps_its_shape_message(key: random.Key) -> None:
    x = random.normal(key, (8, 6))
    with pytest.raises(ValueError, match=r"targets must have shape \(n, 1\)"):
        fnn.fit(
            nn.mlp((1,)), losses.mean_squared_error, optim.sgd(0.1), x, x[:, 0], key=key, epochs=1
        )


# -- accuracy ---------------------------------------------------------------------------------


def my_loss(logits: Array, y: Array) -> tuple[float, Array]:
    return losses.softmax_cross_entropy(logits, y)


@functools.wraps(losses.softmax_cross_entropy)
def wrapped_loss(logits: Array, y: Array) -> tuple[float, Array]:
    return losses.softmax_cross_entropy(logits, y)


def one_hot(y: Array) -> Array:
    return np.eye(3, dtype=np.float32)[y]


DECLARED: dict[str, Callable[[], losses.Loss]] = {
    "partial": lambda: functools.partial(losses.softmax_cross_entropy),
    "functools.wraps": lambda: wrapped_loss,
    "classification_loss": lambda: losses.classification_loss(functools.partial(my_loss)),
}


@pytest.mark.parametrize("how", list(DECLARED))
def test_declared_classification_losses_track_accuracy_even_with_one_hot_targets(
    key: random.Key, how: str
) -> None:
    loss = DECLARED[how]()
    x, y = separable(key)
    expected = fit_blobs(x, y, key, validation_split=0.25)
    assert losses.is_classification(loss) is True
    for targets in (y, one_hot(y)):
        state = fnn.fit(
            nn.mlp((16, 3)),
            loss,
            optim.adam(1e-2),
            x,
            targets,
            key=key,
            epochs=2,
            batch_size=16,
            validation_split=0.25,
        )
        assert [attrs.astuple(r) for r in state.history] == [
            attrs.astuple(r) for r in expected.history
        ]


def test_accuracy_of_an_unknown_loss_follows_the_targets_or_the_argument(key: random.Key) -> None:
    x, y = separable(key)
    assert losses.is_classification(my_loss) is None
    labels = fnn.fit(nn.mlp((3,)), my_loss, optim.sgd(0.1), x, y, key=key, epochs=1)
    assert 0 < labels.history[0].accuracy <= 1
    onehot = fnn.fit(nn.mlp((3,)), my_loss, optim.sgd(0.1), x, one_hot(y), key=key, epochs=1)
    assert np.isnan(onehot.history[0].accuracy)
    asked = fnn.fit(
        nn.mlp((3,)), my_loss, optim.sgd(0.1), x, one_hot(y), key=key, epochs=1, accuracy=True
    )
    assert asked.history[0].accuracy == labels.history[0].accuracy
    off = fit_once(nn.mlp((3,)), x, y, key, accuracy=False)
    assert np.isnan(off.history[0].accuracy) and off.history[0].loss == labels.history[0].loss


def test_regression_losses_do_not_track_accuracy(key: random.Key) -> None:
    x, _ = separable(key)
    state = fnn.fit(
        nn.mlp((2,)), losses.mean_squared_error, optim.sgd(0.01), x, x[:, :2], key=key, epochs=1
    )
    assert np.isnan(state.history[0].accuracy)
    with pytest.raises(
        ValueError, match=r"accuracy needs class scores .*model outputs \(n, 4, 1\)"
    ):
        fnn.fit(
            nn.serial(nn.dense(4), nn.reshape((4, 1))),
            losses.mean_squared_error,
            optim.sgd(0.01),
            x,
            x[:, :4, None],
            key=key,
            epochs=1,
            accuracy=True,
        )


def test_train_step_and_evaluate_count_accuracy_for_a_partial(key: random.Key) -> None:
    x, y = separable(key)
    model = nn.mlp((3,))
    loss = functools.partial(losses.softmax_cross_entropy)
    opt = optim.sgd(0.1)
    state = fnn.train_step(model, loss, opt)(
        fnn.train_state(opt, model.init(key, (6,)), key), (x, y)
    )
    assert state.metrics.scored == len(x)
    params = state.params
    assert fnn.evaluate(model, loss, params, x, one_hot(y)) == fnn.evaluate(
        model, losses.softmax_cross_entropy, params, x, y
    )
    assert np.isnan(fnn.evaluate(model, loss, params, x, y, accuracy=False).accuracy)
    with pytest.raises(TypeError, match="accuracy must be True, False or None"):
        fnn.train_step(model, loss, opt, accuracy="yes")  # type: ignore[arg-type]


def test_fit_refuses_batches_too_small_for_batch_norm_before_training(key: random.Key) -> None:
    x = random.normal(key, (9, 3))
    y = np.arange(9) % 2
    model = nn.serial(nn.dense(4), nn.batch_norm(), nn.relu(), nn.dense(2))
    events: list[str] = []
    last = "the last batch of each epoch has 1 rows, but the model needs at least 2 rows"
    with pytest.raises(ValueError, match=last + r" per batch in training .*drop_last=True"):
        fnn.fit(model, losses.softmax_cross_entropy, optim.sgd(0.1), x, y, key=key, epochs=1,
                batch_size=4, callbacks=[lambda e: events.append(e.kind)])  # fmt: skip
    assert events == []  # before train_begin
    with pytest.raises(ValueError, match=r"each batch has 4 rows in 4 shards") as info:
        fnn.fit(model, losses.softmax_cross_entropy, optim.sgd(0.1), x[:8], y[:8], key=key,
                epochs=1, batch_size=4, shards=4)  # fmt: skip
    assert "drop_last" not in str(info.value)  # it would not help: every batch is short
    with pytest.raises(ValueError, match=r"each batch has 1 rows") as info:
        fnn.fit(model, losses.softmax_cross_entropy, optim.sgd(0.1), x[:1], y[:1], key=key,
                epochs=1)  # fmt: skip
    assert "drop_last" not in str(info.value)
    with pytest.raises(ValueError, match=r"drop_last=True leaves no batch of batch_size=64"):
        fnn.fit(model, losses.softmax_cross_entropy, optim.sgd(0.1), x, y, key=key, epochs=1,
                batch_size=64, drop_last=True)  # fmt: skip
    done = fnn.fit(model, losses.softmax_cross_entropy, optim.sgd(0.1), x, y, key=key, epochs=1,
                   batch_size=4, drop_last=True)  # fmt: skip
    assert done.step == 2
    images = nn.serial(nn.conv2d(2, 1), nn.batch_norm(), nn.flatten(), nn.dense(2))
    x_img = random.normal(key, (5, 3, 3, 1))  # one image holds 9 values per channel
    fnn.fit(images, losses.softmax_cross_entropy, optim.sgd(0.1), x_img, y[:5], key=key,
            epochs=1, batch_size=4)  # fmt: skip


def test_a_loss_that_grows_a_millionfold_ends_the_run_as_diverged(key: random.Key) -> None:
    x = random.uniform(key, (256, 20))
    y = (x[:, 0] > 0.5).astype(np.int64)
    model = nn.mlp((64, 64, 2))
    with pytest.raises(NonFiniteLossError, match=r"the loss grew to .* at step \d+ \(epoch 0\), "
                       r"more than 1e\+06 times the .* of this run's first step"):  # fmt: skip
        fnn.fit(model, losses.softmax_cross_entropy, optim.adam(1e3), x, y, key=key, epochs=3)
    kept = fnn.fit(model, losses.softmax_cross_entropy, optim.adam(1e3), x, y, key=key, epochs=1,
                   divergence=None)  # fmt: skip
    assert kept.history[0].loss > 1e6
    calm = fnn.fit(model, losses.softmax_cross_entropy, optim.adam(1e-2), x, y, key=key, epochs=3)
    assert calm.history[-1].loss < calm.history[0].loss


def test_validation_data_the_params_do_not_fit_is_refused_before_training(
    key: random.Key,
) -> None:
    """Validation examples of another shape than training's: refused before any update
    (it failed after a whole epoch, inside a matmul)."""
    x, y = blobs(key)
    events: list[Any] = []
    with pytest.raises(ValueError, match="validation x's examples: the params do not fit"):
        fit_mlp(optim.sgd(0.1), x, y, key=key, epochs=2, validation_data=(x[:, :-1], y),
                callbacks=[events.append])  # fmt: skip
    assert events == []


def test_callbacks_of_the_wrong_form_are_named(key: random.Key) -> None:
    x, y = blobs(key, n=20)
    for given, message in [
        ([fnn.callbacks.EpochTimes], r"callbacks\[0\] is the class EpochTimes, not a callback"),
        (print, "callbacks must be a list of callbacks, got builtin_function_or_method"),
        ([3], r"callbacks\[0\] must be a function of an Event, got int"),
    ]:
        with pytest.raises(TypeError, match=message):
            fit_mlp(optim.sgd(0.1), x, y, key=key, epochs=1, callbacks=given)


def test_fit_steps_counts_batches_of_varying_sizes_and_warns_of_narrowing(
    key: random.Key,
) -> None:
    """The batches done in an interval are the updates made (rows over the first batch's
    size gave 16/4 for batches of 4 and 8); float64 batches for float32 params warn, as
    fit's do."""
    x, y = blobs(key, n=40)
    sizes = [4, 8, 4, 8]

    def sample(k: random.Key) -> tuple[Any, Any]:
        n = sizes[int(random.uniform(k, (), dtype=np.float64) * 4)]
        return x[:n].astype(np.float64), y[:n]

    events: list[Any] = []
    with pytest.warns(UserWarning, match="float64"):
        fnn.fit_steps(nn.mlp((3,)), losses.softmax_cross_entropy, optim.sgd(0.1), sample,
                      key=key, steps=4, eval_every=4, callbacks=[events.append])  # fmt: skip
    assert [e.batch for e in events if e.kind == "batch_end"] == [1, 2, 3, 4]


def test_running_statistics_that_move_under_frozen_params_are_no_restore(
    key: random.Key,
) -> None:
    """Batch norm recalibrated with every param frozen: the params equal the best
    epoch's while the running statistics, and so the scores, change. No restore happened
    (restore_best=False), so resuming continues; it was refused."""
    x = random.uniform(key, (200, 6))
    y = np.arange(200) % 3
    x[np.arange(200), y] += 1.0
    bn = nn.serial(nn.dense(8), nn.batch_norm(), nn.relu(), nn.dense(3))
    frozen = tree.map(lambda a: np.bool_(True), bn.init(key, (6,)))
    opt = optim.chain(optim.sgd(0.1), optim.freeze(frozen))
    stop = EarlyStopping(monitor="val_accuracy", patience=10, restore_best=False)

    def run(epochs: int, state: Any = None) -> Any:
        return fnn.fit(bn, losses.softmax_cross_entropy, opt, x, y, key=key, epochs=epochs,
                       batch_size=20, validation_split=0.2, early_stopping=stop,
                       state=state)  # fmt: skip

    assert run(5, state=run(3)).epoch == 5
