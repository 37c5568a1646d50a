"""The one gradient pipeline, keys and model state in the training forward, layers that
describe themselves, and the registry a user's layer joins (issue 11)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import user_layers

import fnn
from fnn import callbacks, losses, nn, optim, random, tree

OPTIMIZERS = {
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


def blobs(n: int = 96, seed: int = 3) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    k1, k2 = random.split(random.key(seed))
    y = random.permutation(k1, n) % 3
    centres = np.array([[2.0, 0, 0, 1], [0, 2.0, 0, 0], [0, 0, 2.0, -1]], np.float32)
    return centres[y] + random.normal(k2, (n, 4)), y


def l2(params: Any) -> tuple[float, Any]:
    return losses.l2_penalty(params, 0.01)


@pytest.mark.parametrize("penalty", [None, l2], ids=["no penalty", "l2 penalty"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_train_step_is_grad_then_update_bit_for_bit(name: str, penalty: Any) -> None:
    opt = OPTIMIZERS[name]
    model = nn.mlp((16, 8, 3))
    x, y = blobs()
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


def doubled_dense(features: int) -> nn.Layer[nn.DenseParams]:
    """A dense layer whose backward doubles the weight gradient: a wrong derivative."""
    inner = nn.dense(features)

    def backward(
        params: nn.DenseParams, x: Any, dy: Any, need_dx: bool, grads: nn.DenseParams
    ) -> Any:
        dx = inner.backward(params, x, dy, need_dx, grads)
        grads.w[...] *= 2
        return dx

    return attrs.evolve(inner, backward=backward)


def test_a_wrong_derivative_in_the_training_path_fails_the_checks(key: random.Key) -> None:
    layer = doubled_dense(3)
    params = layer.init(key, (4,), np.float64)
    x = random.normal(key, (5, 4), np.float64)
    report = fnn.check_layer(layer, params, x)
    assert report.max_rel_error > 0.3 and report.where.startswith("params.w["), report
    model = nn.serial(nn.flatten(), layer, nn.tanh(), nn.dense(2))
    model_params = model.init(key, (4,), np.float64)
    y = np.array([0, 1, 0, 1, 1])
    found = fnn.check_model(model, losses.softmax_cross_entropy, model_params, x, y)
    assert found.max_rel_error > 0.3 and found.where.startswith("params[1].w["), found
    right = fnn.check_layer(nn.dense(3), params, x)
    assert right.max_rel_error < 1e-6 and right.where.startswith(("params", "input")), right


def test_a_backward_that_leaves_its_buffers_unwritten_is_caught(key: random.Key) -> None:
    inner = nn.dense(3)

    def backward(p: nn.DenseParams, x: Any, dy: Any, need_dx: bool, grads: nn.DenseParams) -> Any:
        np.matmul(x.T, dy, out=grads.w)  # forgets the bias
        return dy @ p.w.T

    layer = attrs.evolve(inner, backward=backward)
    params = layer.init(key, (4,), np.float64)
    with pytest.raises(ValueError, match=r"left entries of grads unwritten .* at params\.b"):
        fnn.check_layer(layer, params, random.normal(key, (5, 4), np.float64))


def test_check_layer_and_check_model_warn_in_float32(key: random.Key) -> None:
    layer = nn.dense(2)
    params = layer.init(key, (3,))
    x = random.normal(key, (4, 3))
    with pytest.warns(UserWarning, match="check_layer in float32: finite differences need"):
        fnn.check_layer(layer, params, x)
    model = nn.mlp((2,))
    with pytest.warns(UserWarning, match="check_model in float32"):
        fnn.check_model(
            model, losses.softmax_cross_entropy, model.init(key, (3,)), x, y=np.zeros(4, np.int64)
        )


def test_check_layer_checks_what_a_layer_says_of_itself(key: random.Key) -> None:
    inner = nn.dense(3)
    wrong = attrs.evolve(inner, declare=nn.dense(4).declare)
    params = inner.init(key, (2,), np.float64)
    with pytest.raises(
        ValueError,
        match=r"declaration does not describe its params at \.w: the model needs float64 "
        r"\(2, 4\), got float64 \(2, 3\)",
    ):
        fnn.check_layer(wrong, params, random.normal(key, (3, 2), np.float64))


# -- layers describe themselves --------------------------------------------------------------

SAMPLES: dict[str, tuple[nn.Layer[Any], tuple[int, ...]]] = {
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
    "test_center": (user_layers.center(), (3,)),
    "test_mask": (user_layers.mask(), (3,)),
}


def test_every_registered_layer_has_a_sample_here() -> None:
    """A new layer of fnn's fails here until it is added to SAMPLES (and so to the next
    test). Others register too: register's doctest ("twice"), the README's example."""
    ours = {
        name
        for name, entry in nn.LAYERS.items()
        if entry.make.__module__.startswith(("fnn.", "user_layers")) and name != "twice"
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
    x = random.normal(key, (2, *in_shape), dtype)
    assert layer.apply(params, x, state).shape == (2, *described.output)


def test_shapes_of_a_huge_layer_cost_nothing() -> None:
    described = nn.mlp((2**31, 10)).shapes((2**20,))
    assert described.params[1].w.shape == (2**20, 2**31)
    assert described.params[1].w.nbytes == 4 * 2**51  # what it would take, not what it takes


# -- model state and keys --------------------------------------------------------------------


def fit(
    epochs: int, state: Any = None, hooks: list[fnn.Callback] | None = None
) -> fnn.TrainState[Any]:
    x, y = blobs(120)
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
    final = fit(3)
    running = final.model_state[2]
    assert isinstance(running, user_layers.CenterState)
    assert running.mean.dtype == np.float32 and np.abs(running.mean).max() > 0.05
    # the optimizer never sees it: not in its state, so no update, decay or clipping
    assert all(leaf is not running.mean for leaf in tree.leaves(final.opt))
    assert tree.size(final.opt.inner) == 2 * tree.size(final.params)
    # inference reads it; forgetting it is an error, not a silent use of zeros
    x, y = blobs(120)
    with pytest.raises(ValueError, match=r"keeps state .* pass its state"):
        model.apply(final.params, x)
    with pytest.raises(ValueError, match="keeps state"):
        fnn.evaluate(model, losses.softmax_cross_entropy, final.params, x, y)
    result = fnn.evaluate(
        model, losses.softmax_cross_entropy, final.params, x, y, model_state=final.model_state
    )
    assert result.accuracy > 0.8
    assert final.history[-1].val_accuracy > 0.8


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


def test_keys_reach_stochastic_layers_per_step(key: random.Key) -> None:
    model = user_layers.model()
    params = model.init(key, (4,))
    x, y = blobs(32)
    assert model.init_state is not None
    state = model.init_state((4,))
    with pytest.raises(TypeError, match=r"draws random numbers in training .* pass key="):
        fnn.grad(model, losses.softmax_cross_entropy)(params, x, y, state=state)
    a = fnn.forward_backward(model, losses.softmax_cross_entropy)(params, x, y, state, key)
    b = fnn.forward_backward(model, losses.softmax_cross_entropy)(params, x, y, state, key)
    c = fnn.forward_backward(model, losses.softmax_cross_entropy)(
        params, x, y, state, random.fold_in(key, 1)
    )
    assert tree.equal(a.grads, b.grads) and not tree.equal(a.grads, c.grads)
    assert fnn.step_key(key, 3) == random.fold_in(random.fold_in(key, 2), 3)
    report = fnn.check_model(
        model,
        losses.softmax_cross_entropy,
        tree.astype(params, np.float64),
        x.astype(np.float64),
        y,
        state=tree.astype(state, np.float64),
        key=key,
    )
    assert report.max_rel_error < 1e-6, report


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
    x, y = blobs(8)
    for _ in range(3):
        state = step(state, (x, y))
    assert seen == [random.fold_in(fnn.step_key(random.key(9), t), 1) for t in range(3)]
    assert len(set(seen)) == 3


def test_runs_with_state_and_keys_are_bit_identical_on_rerun_and_resume(tmp_path: Path) -> None:
    whole = fit(4)
    assert tree.equal(whole, fit(4))
    fit(2, hooks=[callbacks.checkpoint(tmp_path)])
    resumed = fit(4, state=fnn.load(tmp_path / "last.npz"))
    assert tree.equal(resumed, whole)


def test_a_registered_layer_with_state_saves_loads_and_resumes_in_a_new_process(
    tmp_path: Path,
) -> None:
    model = user_layers.model()
    whole = fit(4)
    early = fit(2, hooks=[callbacks.checkpoint(tmp_path)])
    assert model.spec is not None and model.spec["layers"][2] == {
        "layer": "test_center",
        "momentum": 0.9,
    }
    fnn.io.save_model(
        tmp_path / "model.npz", model, early.params, in_shape=(4,), model_state=early.model_state
    )
    x, _ = blobs(120)
    expected = fnn.predict_proba(model, early.params, x, model_state=early.model_state)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", expected)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import numpy as np
        import fnn
        import test_core, user_layers  # the user's code registers its layers

        path = {str(tmp_path)!r}
        model, params, state = fnn.io.load_model(path + "/model.npz")
        probs = fnn.predict_proba(model, params, np.load(path + "/x.npy"), model_state=state)
        assert probs.tobytes() == np.load(path + "/expected.npy").tobytes()
        resumed = test_core.fit(4, state=fnn.load(path + "/last.npz"))
        print(fnn.tree.fingerprint(resumed))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == tree.fingerprint(whole)


def test_an_unregistered_layer_says_how_to_save_it(tmp_path: Path, key: random.Key) -> None:
    plain = nn.parameterless(lambda x: (x, None), lambda r, dy: dy)
    model = nn.serial(nn.dense(2), plain)
    assert model.spec is None
    with pytest.raises(ValueError, match="register it"):
        fnn.io.save_model(tmp_path / "m.npz", model, model.init(key, (3,)), in_shape=(3,))


def test_registering_a_taken_name_or_a_bad_signature_fails() -> None:
    with pytest.raises(ValueError, match="'dense' is already registered"):
        nn.register("dense")(lambda features: nn.dense(features))
    with pytest.raises(ValueError, match=r"cannot take .*layer"):
        nn.register("test_bad")(lambda layer: layer)
    with pytest.raises(ValueError, match="a layer name must be a str"):
        nn.register("")


def test_positional_only_arguments_go_in_args() -> None:
    @nn.register("test_wrap")
    def wrap(layer: nn.Layer[Any], /, times: int = 1) -> nn.Layer[Any]:
        return nn.serial(*[layer] * times)

    made = wrap(nn.relu(), times=2)
    assert made.spec == {"layer": "test_wrap", "times": 2, "args": [{"layer": "relu"}]}
    assert nn.from_spec(made.spec).spec == made.spec
    with pytest.raises(ValueError, match=r"needs 'args', a list of 1 to 1 values, got \[\]"):
        nn.from_spec({"layer": "test_wrap", "times": 2})
    with pytest.raises(ValueError, match=r"unexpected keys \['args'\]"):
        nn.from_spec({"layer": "relu", "args": []})


def test_a_file_names_only_registered_layers(tmp_path: Path, key: random.Key) -> None:
    with pytest.raises(ValueError, match=r"unknown layer 'os\.system'"):
        nn.from_spec({"layer": "os.system"})
    assert nn.from_spec({"layer": "test_center", "momentum": 0.5}).spec == {
        "layer": "test_center",
        "momentum": 0.5,
    }
