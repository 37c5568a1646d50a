from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import numpy as np
import pytest

import fnn
from fnn import losses, nn, optim, random, tree
from fnn.nn._residual import residual
from tests.support import user_layers
from tests.support.data import well_separated

TOL = 1e-6


def normal64(k: random.Key, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    return random.normal(k, shape, dtype=np.float64)


# -- gradients --------------------------------------------------------------------------------

CASES: dict[str, tuple[nn.Layer[Any, Any], tuple[int, ...]]] = {
    "identity shortcut": (residual(nn.serial(nn.dense(4), nn.tanh())), (4,)),
    "dense shortcut": (
        residual(nn.serial(nn.dense(6), nn.tanh(), nn.dense(3)), shortcut=nn.dense(3)),
        (4,),
    ),
    "serial shortcut": (
        residual(nn.dense(3), shortcut=nn.serial(nn.dense(3), nn.sigmoid())),
        (5,),
    ),
    "parameterless branches": (residual(nn.tanh(), shortcut=nn.sigmoid()), (4,)),
    "in a serial after a dense": (
        nn.serial(nn.dense(4), residual(nn.serial(nn.dense(4), nn.tanh())), nn.dense(2)),
        (3,),
    ),
    "nested residuals": (
        residual(nn.serial(nn.dense(4), residual(nn.serial(nn.dense(4), nn.tanh())))),
        (4,),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_check(key: random.Key, name: str) -> None:
    layer, in_shape = CASES[name]
    k1, k2 = random.split(key)
    params = layer.init(k1, in_shape, np.float64)
    report = fnn.check_layer(layer, params, normal64(k2, (5, *in_shape)))
    assert report.max_rel_error < TOL, report


def test_output_is_the_sum_of_the_branches(key: random.Key) -> None:
    inner, shortcut = nn.serial(nn.dense(6), nn.tanh(), nn.dense(3)), nn.dense(3)
    layer = residual(inner, shortcut=shortcut)
    params = layer.init(key, (4,))
    x = random.normal(random.fold_in(key, 1), (5, 4))
    expected = inner.apply(params[0], x) + shortcut.apply(params[1], x)
    np.testing.assert_array_equal(layer.apply(params, x), expected)
    identity = residual(inner)
    p_inner = identity.init(key, (3,))[0]
    x3 = x[:, :3]
    np.testing.assert_array_equal(
        identity.apply((p_inner, None), x3), inner.apply(p_inner, x3) + x3
    )


def test_params_and_their_types(key: random.Key) -> None:
    plain: nn.Layer[tuple[nn.DenseParams, None], None] = residual(nn.dense(3))
    mapped: nn.Layer[tuple[nn.DenseParams, nn.DenseParams], None] = residual(
        nn.dense(3), shortcut=nn.dense(3)
    )
    p = plain.init(key, (3,))
    assert isinstance(p[0], nn.DenseParams) and p[1] is None
    q = mapped.init(key, (4,))
    assert isinstance(q[0], nn.DenseParams) and isinstance(q[1], nn.DenseParams)
    assert q[0].w.shape == q[1].w.shape == (4, 3)
    assert not np.array_equal(q[0].w, q[1].w)  # the branches draw from different keys
    assert not plain.stateful and plain.init_state((3,)) is None and not plain.stochastic
    assert mapped.shapes((4,)).state is None


def test_backward_without_dx_asks_neither_branch(key: random.Key) -> None:
    calls: list[tuple[str, bool]] = []

    def spy(name: str, inner: nn.Layer[Any, Any]) -> nn.Layer[Any, Any]:
        def backward(p: Any, r: Any, dy: Any, need_dx: bool, out: Any) -> Any:
            calls.append((name, need_dx))
            return inner.backward(p, r, dy, need_dx, out)

        return attrs.evolve(inner, backward=backward)

    layer = residual(spy("layer", nn.dense(3)), shortcut=spy("shortcut", nn.dense(3)))
    params = layer.init(key, (4,))
    x = random.normal(key, (2, 4))
    y, _, res = layer.forward(params, x, None, None)
    flat, layout = tree.ravel(params)
    assert layer.backward(params, res, np.ones_like(y), False, layout.buffers(flat)) is None
    assert calls == [("layer", False), ("shortcut", False)]
    calls.clear()
    model = nn.serial(nn.flatten(), layer)  # fnn.grad never asks for the input's gradient
    fnn.grad(model, losses.softmax_cross_entropy)((None, params), x, np.array([0, 1]))
    assert calls == [("layer", False), ("shortcut", False)]
    calls.clear()
    dx = layer.backward(params, res, np.ones_like(y), True, layout.buffers(flat))
    assert dx is not None and dx.shape == x.shape
    assert calls == [("layer", True), ("shortcut", True)]


# -- state and keys ---------------------------------------------------------------------------


def test_a_stateful_branch_threads_its_state(key: random.Key) -> None:
    center = user_layers.center(momentum=0.5)
    layer = residual(center)
    params = layer.init(key, (3,), np.float64)
    assert layer.init_state is not None
    state = layer.init_state((3,), np.float64)
    assert isinstance(state[0], user_layers.CenterState) and state[1] is None
    x = normal64(random.fold_in(key, 1), (6, 3))
    report = fnn.check_layer(layer, params, x, state=state)
    assert report.max_rel_error < TOL, report
    y, new_state, _ = layer.forward(params, x, state, None)
    y_center, center_state, _ = center.forward(params[0], x, state[0], None)
    np.testing.assert_array_equal(y, y_center + x)
    np.testing.assert_array_equal(new_state[0].mean, center_state.mean)
    assert new_state[1] is None and np.abs(new_state[0].mean).max() > 0
    # inference reads the running mean
    np.testing.assert_array_equal(
        layer.apply(params, x, new_state), center.apply(params[0], x, new_state[0]) + x
    )
    with pytest.raises(ValueError, match="keeps state"):
        layer.apply(params, x)


def test_a_stateful_shortcut_threads_its_state(key: random.Key) -> None:
    layer = residual(nn.dense(3), shortcut=user_layers.center())
    params = layer.init(key, (3,), np.float64)
    assert layer.init_state is not None
    state = layer.init_state((3,), np.float64)
    assert state[0] is None and isinstance(state[1], user_layers.CenterState)
    described = layer.shapes((3,), np.float64)
    tree.assert_same_structure(described.state, state)
    report = fnn.check_layer(layer, params, normal64(key, (5, 3)), state=state)
    assert report.max_rel_error < TOL, report
    with pytest.raises(TypeError, match=r"state does not fit .* expected a tuple, got CenterState"):
        layer.apply(params, normal64(key, (5, 3)), state[1])  # type: ignore[arg-type]


def test_keys_reach_a_stochastic_layer(key: random.Key) -> None:
    mask = user_layers.mask(0.5)
    layer = residual(mask)
    assert layer.stochastic
    params = layer.init(key, (20,))
    x = random.normal(random.fold_in(key, 1), (4, 20), dtype=np.float64)
    a = layer.forward(params, x, None, key)[0]
    b = layer.forward(params, x, None, key)[0]
    c = layer.forward(params, x, None, random.fold_in(key, 7))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a, mask.forward(None, x, None, random.fold_in(key, 0))[0] + x)
    np.testing.assert_array_equal(layer.apply(params, x), 2 * x)  # inference never draws
    report = fnn.check_layer(layer, params, x, key=key)
    assert report.max_rel_error < TOL, report
    with pytest.raises(ValueError, match="needs a key"):
        layer.forward(params, x, None, None)


def test_keys_reach_a_stochastic_shortcut(key: random.Key) -> None:
    mask = user_layers.mask(0.5)
    layer = residual(nn.dense(6), shortcut=mask)
    assert layer.stochastic
    params = layer.init(key, (6,), np.float64)
    x = normal64(random.fold_in(key, 1), (4, 6))
    a = layer.forward(params, x, None, key)[0]
    np.testing.assert_array_equal(a, layer.forward(params, x, None, key)[0])
    assert not np.array_equal(a, layer.forward(params, x, None, random.fold_in(key, 7))[0])
    dense_y = nn.dense(6).apply(params[0], x)
    masked = mask.forward(None, x, None, random.fold_in(key, 1))[0]
    np.testing.assert_array_equal(a, dense_y + masked)
    report = fnn.check_layer(layer, params, x, key=key)
    assert report.max_rel_error < TOL, report


# -- errors -----------------------------------------------------------------------------------


def test_branches_of_different_shapes_are_refused(key: random.Key) -> None:
    message = (
        r"residual's branches give different shapes for inputs of shape \(3,\): the layer "
        r"\(5,\), the shortcut \(3,\); give a shortcut that maps \(3,\) to \(5,\)"
    )
    with pytest.raises(ValueError, match=message):
        residual(nn.dense(5)).init(key, (3,))
    with pytest.raises(ValueError, match=message):
        residual(nn.dense(5)).shapes((3,))
    with pytest.raises(ValueError, match=r"the layer \(5,\), the shortcut \(4,\)"):
        residual(nn.dense(5), shortcut=nn.dense(4)).init(key, (3,))
    # the forward refuses too (params made for another layer)
    layer = residual(nn.dense(5))
    params = (nn.dense(5).init(key, (3,)), None)
    with pytest.raises(ValueError, match=message):
        layer.apply(params, np.ones((2, 3), np.float32))


def test_bad_arguments_and_params_are_refused(key: random.Key) -> None:
    with pytest.raises(TypeError, match="residual expected a Layer as its layer, got int"):
        residual(3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="residual expected a Layer as its shortcut, got str"):
        residual(nn.dense(3), shortcut="dense")  # type: ignore[call-overload]
    layer = residual(nn.dense(3))
    params = layer.init(key, (3,))
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match=r"at the root: expected a tuple, got DenseParams"):
        layer.apply(params[0], x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"at \[1\]: expected None, got DenseParams"):
        layer.apply((params[0], params[0]), x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keeps no state"):
        layer.apply(params, x, (None, None))  # type: ignore[arg-type]


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


# -- specs, files and training ----------------------------------------------------------------


def test_spec_round_trip() -> None:
    for layer in (
        residual(nn.dense(4)),
        residual(nn.serial(nn.dense(4), nn.relu()), shortcut=nn.dense(4)),
        nn.serial(nn.dense(4), residual(user_layers.center()), residual(user_layers.mask(0.1))),
    ):
        assert layer.spec is not None
        rebuilt = nn.from_spec(layer.spec)
        assert rebuilt.spec == layer.spec
        assert rebuilt.shapes((4,)).output == layer.shapes((4,)).output
    assert residual(nn.dense(3)).spec == {
        "layer": "residual",
        "shortcut": None,
        "args": [{"layer": "dense", "features": 3, "weight_init": "he_normal", "bias": True}],
    }
    shortcut = residual(nn.relu(), shortcut=nn.identity()).spec
    assert shortcut is not None and shortcut["shortcut"] == {"layer": "identity"}


def test_save_and_load_a_model_with_residuals(tmp_path: Path, key: random.Key) -> None:
    model = nn.serial(
        nn.flatten(),
        nn.dense(4),
        residual(nn.serial(nn.dense(4), user_layers.center(), nn.tanh())),
        residual(nn.dense(3), shortcut=nn.dense(3)),
    )
    params = model.init(key, (2, 2))
    assert model.init_state is not None
    x = random.normal(random.fold_in(key, 1), (6, 2, 2))
    _, state, _ = model.forward(params, x, model.init_state((2, 2)), None)  # a moved state
    path = fnn.io.save_model(tmp_path / "m.npz", model, params, in_shape=(2, 2), model_state=state)
    loaded, loaded_params, loaded_state = fnn.io.load_model(path)
    assert loaded.spec == model.spec
    assert tree.equal(loaded_params, params) and tree.equal(loaded_state, state)
    np.testing.assert_array_equal(
        loaded.apply(loaded_params, x, loaded_state), model.apply(params, x, state)
    )


def test_fit_trains_a_model_with_residuals() -> None:
    x, y = well_separated(120)
    model = nn.serial(
        nn.dense(8),
        residual(nn.serial(nn.dense(8), user_layers.center(), nn.tanh(), user_layers.mask(0.2))),
        residual(nn.dense(3), shortcut=nn.dense(3)),
    )
    final = fnn.fit(
        model,
        losses.softmax_cross_entropy,
        optim.adam(0.02),
        x,
        y,
        key=random.key(5),
        epochs=4,
        batch_size=16,
        validation_split=0.2,
    )
    assert final.history[-1].loss < final.history[0].loss
    assert final.history[-1].val_accuracy > 0.8, final.history
    running = final.model_state[1][0][1]
    assert isinstance(running, user_layers.CenterState) and np.abs(running.mean).max() > 0.01


# -- PyTorch ----------------------------------------------------------------------------------


@pytest.mark.oracle
def test_agrees_with_pytorch(torch: ModuleType, key: random.Key) -> None:
    layer = residual(nn.serial(nn.dense(5), nn.tanh()), shortcut=nn.dense(5))
    params = layer.init(key, (3,), np.float64)
    x = normal64(random.fold_in(key, 1), (4, 3))
    dy = normal64(random.fold_in(key, 2), (4, 5))
    y, _, res = layer.forward(params, x, None, None)
    flat, layout = tree.ravel(params)
    grads = np.zeros_like(flat)
    dx = layer.backward(params, res, dy, True, layout.buffers(grads))
    g = layout.unravel(grads)

    def linear(p: nn.DenseParams) -> Any:
        lin = torch.nn.Linear(p.w.shape[0], p.w.shape[1], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(p.w.T))
            lin.bias.copy_(torch.tensor(p.b))
        return lin

    inner, short = linear(params[0][0]), linear(params[1])
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.tanh(inner(tx)) + short(tx)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert dx is not None
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    for mine, theirs in ((g[0][0], inner), (g[1], short)):
        np.testing.assert_allclose(mine.w, theirs.weight.grad.numpy().T, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(mine.b, theirs.bias.grad.numpy(), rtol=1e-12, atol=1e-14)


def summed_backward(back: Any, dy: Any, need: bool) -> Any:
    """The backward of a combinator that adds its two children's outputs."""
    first, second = back(0, dy, need), back(1, dy, need)
    return first + second if need else None


def test_a_combinator_that_computes_needs_its_output_shape(key: random.Key) -> None:
    """Without output=, the forward runs on shapes; one that adds its children added the
    shape tuples ((4,) + (4,) = (4, 4)) and fit later blamed a missing flatten."""
    added = nn.combinator(
        [nn.dense(4), nn.dense(4)],
        forward=lambda run, x: run(0, x) + run(1, x),
        backward=summed_backward,
    )
    with pytest.raises(TypeError, match="forward computes with its inputs: pass output="):
        added.init(key, (3,))
    for computing in [
        lambda run, x: np.maximum(run(0, x), run(1, x)),  # NumPy's functions
        lambda run, x: run(1, run(0, x).reshape(len(x), -1)),  # an array's methods
        lambda run, x: run(0, x) if run(0, x) > run(1, x) else run(1, x),  # comparisons
    ]:
        maxout = nn.combinator([nn.dense(4), nn.dense(4)], computing, summed_backward)
        with pytest.raises(TypeError, match="pass output="):
            maxout.init(key, (3,))
    fixed = nn.combinator(
        [nn.dense(4), nn.dense(4)],
        forward=lambda run, x: run(0, x) + run(1, x),
        backward=summed_backward,
        output=lambda run, shape: max(run(0, shape), run(1, shape)),  # both declared
    )
    params = fixed.init(key, (3,))
    assert fixed.apply(params, np.ones((2, 3), np.float32)).shape == (2, 4)
