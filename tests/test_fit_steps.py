"""fit_steps (fnn/train/_fit.py): training by updates on batches drawn from keys, with a
validation every interval; reruns and resumes bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnn
from fnn import losses, nn, optim, random, tree

Array = np.ndarray[Any, Any]

TEXT = (np.arange(300) * 7 % 11).astype(np.int64)  # a periodic "text" of 11 ids
CONTEXT = 6


def sample(key: random.Key, batch: int = 4) -> tuple[Array, Array]:
    """Windows of CONTEXT + 1 ids at offsets drawn from ``key``."""
    starts = (random.uniform(key, (batch,), dtype=np.float64) * (len(TEXT) - CONTEXT - 1)).astype(
        np.int64
    )
    windows = TEXT[starts[:, None] + np.arange(CONTEXT + 1)]
    return windows[:, :-1], windows[:, 1:]


def validation() -> tuple[Array, Array]:
    n = (len(TEXT) - 1) // CONTEXT
    windows = np.stack([TEXT[i * CONTEXT : i * CONTEXT + CONTEXT + 1] for i in range(n)])
    return windows[:, :-1], windows[:, 1:]


def model() -> nn.Layer[Any, Any]:
    body = nn.serial(nn.positional_embedding(CONTEXT), nn.dense(16), nn.gelu(), nn.layer_norm())
    return nn.tied(11, 16, body)


def run(steps: int = 30, every: int | None = 10, **options: Any) -> fnn.TrainState[Any, Any]:
    return fnn.fit_steps(
        model(),
        losses.softmax_cross_entropy,
        options.pop("optimizer", optim.adamw(1e-2, weight_decay=0.1, weights_only=True)),
        sample,
        key=random.key(3),
        steps=steps,
        eval_every=every,
        validation_data=validation(),
        **options,
    )


def test_training_by_steps_learns_and_records_each_interval() -> None:
    events: list[fnn.train.Event] = []
    final = run(steps=25, every=10, callbacks=[events.append])
    assert final.step == 25 and final.epoch == 3
    assert [r.epoch for r in final.history] == [0, 1, 2]
    assert final.history[-1].val_loss < 0.5 * final.history[0].val_loss
    assert np.isnan(final.history[-1].accuracy)
    ends = [e for e in events if e.kind == "epoch_end"]
    assert [e.batches for e in ends] == [10, 10, 5]  # the last interval is shorter
    assert sum(e.kind == "batch_end" for e in events) == 25
    assert final.history[-1].val_loss == pytest.approx(
        fnn.evaluate(model(), losses.softmax_cross_entropy, final.params, *validation()).loss,
        rel=1e-6,
    )


def test_a_run_reruns_and_resumes_bit_for_bit() -> None:
    whole = run(steps=30)
    assert tree.equal(run(steps=30).params, whole.params)
    first = run(steps=10)
    resumed = run(steps=30, state=first)
    assert tree.equal(resumed.params, whole.params)
    assert repr(resumed.history) == repr(whole.history)  # NaN accuracies compare as text


def test_each_update_draws_its_own_batch() -> None:
    seen: list[Array] = []

    def recording(key: random.Key) -> tuple[Array, Array]:
        x, y = sample(key)
        seen.append(x)
        return x, y

    fnn.fit_steps(
        model(), losses.softmax_cross_entropy, optim.sgd(0.1), recording,
        key=random.key(3), steps=3,
    )  # fmt: skip
    first, *updates = seen  # the first batch is drawn once more to learn the shapes
    np.testing.assert_array_equal(first, updates[0])
    assert not np.array_equal(updates[0], updates[1])


@pytest.mark.filterwarnings("ignore:train_step computes 2 shards at once")
def test_the_bits_do_not_depend_on_threads() -> None:
    two = run(steps=10, shards=2, threads=2)
    assert tree.equal(two.params, run(steps=10, shards=2, threads=1).params)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"steps": 0}, ValueError, "steps must be >= 1, got 0"),
        ({"every": 0}, ValueError, "eval_every must be >= 1, got 0"),
        ({"eval_batch_size": 1.5}, TypeError, "eval_batch_size must be an int"),
    ],
)
def test_bad_arguments(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        run(**options)


def test_a_finished_run_with_a_short_last_interval_is_its_own_result() -> None:
    """25 updates in intervals of 10 end on a short one: passed back, the finished state
    is returned as it is (it was refused: '25 updates in 3 intervals ... cannot
    continue')."""
    final = run(steps=25, every=10)
    again = run(steps=25, every=10, state=final)
    assert again.step == 25 and tree.equal(again.params, final.params)


def test_a_state_between_intervals_is_refused() -> None:
    state = run(steps=7, every=None)
    with pytest.raises(ValueError, match="has made 7 updates in 1 intervals"):
        run(steps=30, every=10, state=state)


def test_a_batch_the_model_cannot_take_is_refused_first() -> None:
    with pytest.raises(TypeError, match="x must be integer token ids"):
        fnn.fit_steps(
            model(), losses.softmax_cross_entropy, optim.sgd(0.1),
            lambda key: (np.zeros((2, CONTEXT)), np.zeros((2, CONTEXT), np.int64)),
            key=random.key(0), steps=2,
        )  # fmt: skip


def test_every_batch_of_ids_is_checked_against_the_vocabulary() -> None:
    """A batch drawn late may hold an id out of range: refused, naming it, not wrapped."""

    def late_bad(key: random.Key) -> tuple[Array, Array]:
        x, y = sample(key)
        if key == fnn.random.fold_in(fnn.random.fold_in(random.key(3), 0), 5):
            x = x.copy()
            x[1, 2] = -1
        return x, y

    with pytest.raises(ValueError, match=r"holds the id -1 at \(1, 2\), outside the vocabulary"):
        fnn.fit_steps(
            model(), losses.softmax_cross_entropy, optim.sgd(0.1), late_bad,
            key=random.key(3), steps=8,
        )  # fmt: skip


def test_validation_and_samples_of_the_wrong_form_are_refused_before_training() -> None:
    """A validation triple, or a sample not returning a pair, failed with Python's own
    unpacking messages (validation examples the params do not fit: tests/test_train.py)."""
    x_val, y_val = validation()

    def steps(validation_data: Any) -> Any:
        return fnn.fit_steps(model(), losses.softmax_cross_entropy, optim.sgd(0.1), sample,
                             key=random.key(3), steps=4, eval_every=2,
                             validation_data=validation_data)  # fmt: skip

    with pytest.raises(TypeError, match=r"validation_data must be a pair .* got a tuple of 3"):
        steps((x_val, y_val, y_val))
    triple: Any = lambda k: (*sample(k), None)  # noqa: E731
    with pytest.raises(
        TypeError, match=r"sample.s batch must be a pair \(x, y\), got a tuple of 3"
    ):
        fnn.fit_steps(model(), losses.softmax_cross_entropy, optim.sgd(0.1),
                      triple, key=random.key(3), steps=2)  # fmt: skip
