"""Issue 14, the library part: layers refuse another model's params, fit trains float32
unless asked, gradient checks say what they check, transforms fail at their first bad
update, float labels get a useful message, and accuracy follows the loss's declaration."""

from __future__ import annotations

import contextlib
import functools
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import numpy as np
import pytest

import fnn
from fnn import losses, nn, optim, random, tree

Array = np.ndarray[Any, Any]


def blobs(key: random.Key, n: int = 120, features: int = 6) -> tuple[Array, Array]:
    """Three separable classes: float32 x ``(n, features)``, int64 labels ``(n,)``."""
    labels = random.permutation(key, n) % 3
    x = random.normal(random.fold_in(key, 1), (n, features)) * 0.5
    x[np.arange(n), labels] += 2.0
    return x, labels.astype(np.int64)


def state_of(layer: nn.Layer[Any], in_shape: tuple[int, ...]) -> Any:
    """The layer's initial state for ``in_shape`` (None for a layer without)."""
    return None if layer.init_state is None else layer.init_state(in_shape)


@contextlib.contextmanager
def no_warnings() -> Iterator[None]:
    """A context in which any warning fails the test, whatever the filters outside."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# -- 1. params of another model ---------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("other", "got"),
    [
        (nn.conv2d(8, 5), r"got float32 \(5, 5, 1, 8\)"),  # another kernel size
        (nn.conv2d(16, 3), r"got float32 \(3, 3, 1, 16\)"),  # another width
        (nn.conv2d(8, (3, 5)), r"got float32 \(3, 5, 1, 8\)"),
    ],
)
def test_conv2d_refuses_params_of_another_kernel_size_or_width(
    key: random.Key, other: nn.Layer[Any], got: str
) -> None:
    layer = nn.conv2d(8, 3, padding="same")
    x = np.ones((2, 7, 7, 1), np.float32)
    with pytest.raises(ValueError, match=r"at \.w: the model needs float32 \(3, 3, 1, 8\)") as info:
        layer.apply(other.init(key, (7, 7, 1)), x)
    assert info.match(got)


@pytest.mark.parametrize("make", [nn.batch_norm, nn.layer_norm])
def test_norm_layers_need_params_that_agree_with_the_input(
    key: random.Key, make: Callable[[], nn.Layer[Any]]
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
        ValueError, match=r"state do not fit .* at \.mean: the model needs float32 \(4,\)"
    ):
        layer.apply(params, random.normal(key, (3, 4)), state_of(layer, (5,)))


def test_combinators_check_through_their_children(key: random.Key) -> None:
    block = nn.residual(nn.serial(nn.dense(8), nn.relu(), nn.dense(4)), nn.dense(4))
    other = nn.residual(nn.serial(nn.dense(16), nn.relu(), nn.dense(4)), nn.dense(4))
    x = random.normal(key, (2, 6))
    assert block.apply(block.init(key, (6,)), x).shape == (2, 4)
    with pytest.raises(
        ValueError,
        match=r"at \[0\]\[0\]\.w: the model needs float32 \(6, 8\), got float32 \(6, 16\)",
    ):
        block.apply(other.init(key, (6,)), x)


def fit_once(model: nn.Layer[Any], x: Array, y: Array, key: random.Key, **options: Any) -> Any:
    """``fit`` for one epoch of SGD on the cross-entropy, with ``options`` (what the tests
    below give it to be refused or warned about)."""
    return fnn.fit(
        model, losses.softmax_cross_entropy, optim.sgd(0.1), x, y, key=key, epochs=1, **options
    )


def test_fit_refuses_params_of_another_width_before_training(key: random.Key) -> None:
    x, y = blobs(key)
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
    x, y = blobs(key)
    opt = optim.adam(1e-3)
    small = fnn.fit(nn.mlp((32, 3)), losses.softmax_cross_entropy, opt, x, y, key=key, epochs=1)
    with pytest.raises(ValueError, match=r"the state's params do not fit the model .*\[1\]\.w"):
        fnn.fit(
            nn.mlp((64, 3)), losses.softmax_cross_entropy, opt, x, y, key=key, epochs=2, state=small
        )


def test_fit_refuses_a_model_state_of_another_width(key: random.Key) -> None:
    x, y = blobs(key)
    model = nn.serial(nn.dense(8), nn.batch_norm(), nn.relu(), nn.dense(3))
    wrong = state_of(nn.serial(nn.dense(5), nn.batch_norm(), nn.relu(), nn.dense(3)), (6,))
    with pytest.raises(
        ValueError, match=r"fit's state do not fit .*at \[1\]\.mean: the model needs float32 \(8,\)"
    ):
        fit_once(model, x, y, key, model_state=wrong)


def test_fit_refuses_params_of_mixed_dtypes(key: random.Key) -> None:
    x, y = blobs(key)
    model = nn.mlp((8, 3))
    p = model.init(key, (6,))
    mixed = (*p[:3], nn.DenseParams(p[3].w, p[3].b.astype(np.float64)))
    with pytest.raises(
        ValueError, match=r"at \[3\]\.b: the model needs float32 \(3,\), got float64"
    ):
        fit_once(model, x, y, key, params=mixed)


# -- 2. float64 data --------------------------------------------------------------------------


def fit_blobs(x: Array, y: Array, key: random.Key, **options: Any) -> fnn.TrainState[Any]:
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
    x, y = blobs(key)
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
    x, y = blobs(key)
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
    x, y = blobs(key)
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


def test_inference_converts_float64_inputs_to_the_params_dtype(key: random.Key) -> None:
    x, y = blobs(key)
    model = nn.mlp((16, 3))
    params = model.init(key, (6,))
    x64 = x.astype(np.float64)
    loss = losses.softmax_cross_entropy
    with no_warnings():
        assert fnn.evaluate(model, loss, params, x64, y) == fnn.evaluate(model, loss, params, x, y)
        assert fnn.predict_proba(model, params, x64).tobytes() == (
            fnn.predict_proba(model, params, x).tobytes()
        )
        np.testing.assert_array_equal(
            fnn.predict(model, params, x64), fnn.predict(model, params, x)
        )
    with pytest.raises(TypeError, match="must have dtype float32"):
        model.apply(params, x64)  # the layer itself stays strict


# -- 3. gradient checks -----------------------------------------------------------------------


def test_check_model_names_paths_in_the_params(key: random.Key) -> None:
    model = nn.mlp((4, 3), "tanh")
    params = model.init(key, (5,), np.float64)
    x = random.normal(key, (4, 5), dtype=np.float64)
    report = fnn.check_model(model, losses.softmax_cross_entropy, params, x, np.array([0, 1, 2, 0]))
    assert report.where.startswith("params[") and report.max_rel_error < 1e-6, report
    assert f" at {report.where} " in str(report)


def test_check_grad_puts_a_name_before_its_paths() -> None:
    at = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    wrong = np.cos(at)
    wrong[1, 2] += 1.0
    report = fnn.check_grad(lambda v: float(np.sum(np.sin(v))), wrong, at, name="input")
    assert report.where == "input[1, 2]" and "at input[1, 2]" in str(report)


def test_gradient_checks_warn_in_float32(key: random.Key) -> None:
    model, layer = nn.mlp((4, 3)), nn.dense(3)
    p64, lp64 = model.init(key, (5,), np.float64), layer.init(key, (5,), np.float64)
    x64 = random.normal(key, (4, 5), dtype=np.float64)
    p32, lp32, x32 = (
        tree.astype(p64, np.float32),
        tree.astype(lp64, np.float32),
        x64.astype(np.float32),
    )
    y = np.array([0, 1, 2, 0])
    loss = losses.softmax_cross_entropy
    with pytest.warns(
        UserWarning, match="check_model in float32: finite differences need float64"
    ) as record:
        fnn.check_model(model, loss, p32, x32, y)
    assert "dtype=np.float64" in str(record[0].message)
    with pytest.warns(UserWarning, match="check_layer in float32"):
        fnn.check_layer(layer, lp32, x32)
    with no_warnings():
        fnn.check_model(model, loss, p64, x64, y)
        fnn.check_layer(layer, lp64, x64)


# -- 4. gradient transforms -------------------------------------------------------------------


@attrs.frozen(eq=False)
class PairState:
    first: Any
    second: Any


tree.register_type(PairState, "tests.library_hardening.PairState")


def transform(update: Callable[..., Any], moments: int = 2) -> optim.Optimizer:
    """A chain of a custom transform named ``custom`` (state PairState) and SGD."""

    def init(flat: Array, layout: tree.Layout) -> tuple[Array, ...]:
        return tuple(np.zeros_like(flat) for _ in range(moments))

    return optim.chain(optim.Transform(init, update, PairState, name="custom"), optim.sgd(0.1))


def keep(u: optim.Updates, m: tuple[Array, ...], p: Any, step: int, layout: Any) -> Any:
    return u, m


BAD_TRANSFORMS: list[tuple[str, optim.Optimizer, type[Exception], str]] = [
    (
        "moments of another dtype",
        transform(lambda u, m, p, s, lay: (u, tuple(v.astype(np.float64) for v in m))),
        ValueError,
        r"custom returned a moment that is not a flat float32 array .* got float64",
    ),
    (
        "moments of another shape",
        transform(lambda u, m, p, s, lay: (u, (m[0][None], m[1]))),
        ValueError,
        r"custom returned a moment .* got float32 \(1, ",
    ),
    (
        "too few moments",
        transform(lambda u, m, p, s, lay: (u, m[:1])),
        ValueError,
        r"custom returned 1 moments, expected 2: one per field of its state PairState",
    ),
    (
        "a list of moments",
        transform(lambda u, m, p, s, lay: (u, list(m))),
        TypeError,
        "custom returned a list of moments, expected a tuple",
    ),
    (
        "updates alone",
        transform(lambda u, m, p, s, lay: u),
        TypeError,
        r"custom's update must return \(updates, moments\), got Updates alone",
    ),
    (
        "updates of another dtype",
        transform(lambda u, m, p, s, lay: (optim.Updates(u.array.astype(np.float64)), m)),
        ValueError,
        r"custom returned updates .* got Updates\(float64",
    ),
    (
        "a NumPy scale",
        transform(lambda u, m, p, s, lay: (optim.Updates(u.array, np.float64(0.5)), m)),
        ValueError,
        r"custom returned updates .*Python float scale: got Updates\(float32 \(\d+,\), float64",
    ),
    (
        "an array, not Updates",
        transform(lambda u, m, p, s, lay: (u.array, m)),
        ValueError,
        "custom returned updates that are not Updates .* got ndarray",
    ),
    ("init of too few moments", transform(keep, moments=1), ValueError, "custom init returned 1"),
]


@pytest.mark.parametrize(
    ("optimizer", "error", "message"),
    [case[1:] for case in BAD_TRANSFORMS],
    ids=[case[0] for case in BAD_TRANSFORMS],
)
def test_a_bad_transform_fails_at_its_first_update_naming_it(
    key: random.Key, optimizer: optim.Optimizer, error: type[Exception], message: str
) -> None:
    model = nn.mlp((4, 3))
    params = model.init(key, (5,))
    x, y = random.normal(key, (6, 5)), np.arange(6) % 3
    grads = fnn.grad(model, losses.softmax_cross_entropy)(params, x, y)
    with pytest.raises(error, match=message):
        optimizer.update(optimizer.init(params), grads)
    with pytest.raises(error, match=message):  # the training path checks the same
        fnn.fit(model, losses.softmax_cross_entropy, optimizer, x, y, key=key, epochs=1)


def test_a_good_transform_trains_as_before(key: random.Key) -> None:
    model = nn.mlp((4, 3))
    x, y = random.normal(key, (6, 5)), np.arange(6) % 3
    plain = fnn.fit(model, losses.softmax_cross_entropy, optim.sgd(0.1), x, y, key=key, epochs=2)
    kept = fnn.fit(model, losses.softmax_cross_entropy, transform(keep), x, y, key=key, epochs=2)
    assert tree.fingerprint(plain.params) == tree.fingerprint(kept.params)


# -- 5. float labels --------------------------------------------------------------------------


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


# -- 6. accuracy ------------------------------------------------------------------------------


class Loss:
    def value(self, logits: Array, y: Array) -> tuple[float, Array]:
        return losses.softmax_cross_entropy(logits, y)


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
    x, y = blobs(key)
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
    x, y = blobs(key)
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
    x, _ = blobs(key)
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
    x, y = blobs(key)
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


def test_classification_loss_refuses_what_takes_no_attributes() -> None:
    with pytest.raises(TypeError, match=r"pass accuracy=True to fnn\.fit"):
        losses.classification_loss(Loss().value)
