"""The gradient pipeline (fnn/gradient.py): grad and value_and_grad, keys and model state
in the training forward, and the checkers check_grad, check_layer and check_model."""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np
import pytest

import fnn
from fnn import losses, nn, random, tree
from tests.support import user_layers
from tests.support.data import well_separated
from tests.support.strict import no_warnings

TOL = 1e-6


def test_the_design_contract_example(key: random.Key) -> None:
    k_init, k_data = random.split(key)
    mlp = nn.serial(nn.flatten(), nn.dense(128), nn.relu(), nn.dense(64), nn.relu(), nn.dense(10))
    params = mlp.init(k_init, (28, 28))
    x = random.uniform(k_data, (8, 28, 28))
    logits = mlp.apply(params, x)
    assert logits.shape == (8, 10) and logits.dtype == np.float32
    g = fnn.grad(mlp, losses.softmax_cross_entropy)(params, x, np.arange(8))
    fnn.tree.assert_same_structure(params, g)
    for p, gp in zip(fnn.tree.leaves(params), fnn.tree.leaves(g), strict=True):
        assert p.shape == gp.shape and gp.dtype == np.float32


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "leaky_relu"])
def test_mlp_gradients_in_float64(key: random.Key, activation: str) -> None:
    model = nn.mlp((7, 5, 3), activation)
    params = model.init(key, (2, 3), dtype=np.float64)
    x = random.normal(random.fold_in(key, 1), (4, 2, 3), dtype=np.float64)
    y = np.array([0, 1, 2, 1])
    result = fnn.check_model(model, losses.softmax_cross_entropy, params, x, y)
    assert result.max_rel_error < TOL, str(result)
    assert result.checked == fnn.tree.size(params)


def test_check_grad_reports_where_a_wrong_gradient_is(key: random.Key) -> None:
    model = nn.mlp((4, 3))
    params = model.init(key, (2,), dtype=np.float64)
    x = random.normal(key, (3, 2), dtype=np.float64)
    y = np.array([0, 1, 2])
    vg = fnn.value_and_grad(model, losses.softmax_cross_entropy)
    _, grads = vg(params, x, y)
    wrong_w = grads[3].w.copy()
    wrong_w[2, 1] += 0.5
    broken = (*grads[:3], nn.DenseParams(wrong_w, grads[3].b))
    result = fnn.check_grad(lambda p: vg(p, x, y)[0], broken, params)
    assert result.where == "[3].w[2, 1]"
    assert result.max_rel_error > 0.1
    assert "at [3].w[2, 1]" in str(result)


def test_check_grad_subsets_are_deterministic(key: random.Key) -> None:
    at = random.normal(key, (50,), dtype=np.float64)

    def f(v: Any) -> float:
        return float(np.sum(np.sin(v)))

    a = fnn.check_grad(f, np.cos(at), at, max_entries=10, key=key)
    b = fnn.check_grad(f, np.cos(at), at, max_entries=10, key=key)
    assert a == b and a.checked == 10 and a.max_rel_error < TOL


def test_check_grad_rejects_mismatched_gradients(key: random.Key) -> None:
    with pytest.raises(ValueError, match="do not have the same structure"):
        fnn.check_grad(lambda t: 0.0, (np.ones(2),), (np.ones(2), np.ones(1)))
    with pytest.raises(ValueError, match=r"has shape \(3,\), expected \(2,\)"):
        fnn.check_grad(lambda t: 0.0, np.ones(3), np.ones(2))
    with pytest.raises(TypeError, match="needs float leaves"):
        fnn.check_grad(lambda t: 0.0, np.ones(2), np.arange(2))


def test_value_and_grad_returns_the_loss(key: random.Key) -> None:
    model = nn.mlp((3,))
    params = model.init(key, (2,))
    x = random.normal(key, (4, 2))
    y = np.array([0, 1, 2, 0])
    value, grads = fnn.value_and_grad(model, losses.softmax_cross_entropy)(params, x, y)
    assert value == losses.softmax_cross_entropy(model.apply(params, x), y)[0]
    assert fnn.tree.equal(grads, fnn.grad(model, losses.softmax_cross_entropy)(params, x, y))


def doubled_dense(features: int) -> nn.Layer[nn.DenseParams, None]:
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


def test_check_model_names_paths_in_the_params(key: random.Key) -> None:
    model = nn.mlp((4, 3), "tanh")
    params = model.init(key, (5,), np.float64)
    x = random.normal(key, (4, 5), dtype=np.float64)
    report = fnn.check_model(model, losses.softmax_cross_entropy, params, x, np.array([0, 1, 2, 0]))
    assert report.where.startswith("params[") and report.max_rel_error < 1e-6, report
    assert f" at {report.where} " in str(report)


def _scale_adding_into_its_gradient() -> nn.Layer[Any, None]:
    """``y = x * s`` whose backward adds into its gradient buffer (``+=``) instead of
    writing it: a mistake that training turns into whatever memory held."""

    def declare(in_shape: tuple[int, ...]) -> nn.Declared[Any, None]:
        return nn.Declared(in_shape, nn.ScaleParams(nn.param(in_shape, nn.ones)))

    def infer(params: Any, x: Any, state: None) -> Any:
        return x * params.scale

    def forward(params: Any, x: Any, state: None, key: Any) -> tuple[Any, None, Any]:
        return infer(params, x, state), None, x

    def backward(params: Any, x: Any, dy: Any, need_dx: bool, grads: Any) -> Any:
        grads.scale[...] += np.sum(x * dy, axis=0)  # the mistake
        return dy * params.scale if need_dx else None

    return nn.Layer(declare, infer, forward, backward)


def test_check_model_finds_a_gradient_entry_left_unwritten(key: random.Key) -> None:
    """check_model starts the flat gradient as NaN, as check_layer does: a backward that
    reads its buffer before writing it is refused every time (it passed or failed by
    what np.empty held)."""
    model = nn.serial(nn.dense(4), _scale_adding_into_its_gradient(), nn.dense(3))
    params = model.init(key, (5,), np.float64)
    x = random.normal(key, (6, 5), dtype=np.float64)
    for _ in range(3):
        with pytest.raises(ValueError, match=r"unwritten \(still NaN\) at params\[1\]\.scale"):
            fnn.check_model(model, losses.softmax_cross_entropy, params, x, np.arange(6) % 3)


def _identity_with(forward_out: Any = None, dx: Any = None) -> nn.Layer[None, None]:
    """An identity layer whose forward returns ``forward_out(x)`` and whose backward
    returns ``dx(dy)`` when given (the mistakes a user's layer can make)."""

    def declare(in_shape: tuple[int, ...]) -> nn.Declared[None, None]:
        return nn.Declared(in_shape, None)

    def forward(params: None, x: Any, state: None, key: Any) -> Any:
        return (x, None, None) if forward_out is None else forward_out(x)

    def backward(params: None, saved: None, dy: Any, need_dx: bool, grads: None) -> Any:
        return dy if dx is None else dx(dy)

    return nn.Layer(declare, lambda p, x, s: x, forward, backward)


@pytest.mark.parametrize(
    ("layer", "error", "message"),
    [
        (_identity_with(lambda x: (x, None)), TypeError, "forward must return .* got a tuple of 2"),
        (_identity_with(lambda x: 1.0), TypeError, "forward must return .* got float"),
        (_identity_with(dx=lambda dy: dy[:1]), ValueError, r"of shape \(6, 4\), got an array"),
        (_identity_with(dx=lambda dy: 0.0), ValueError, r"of shape \(6, 4\), got float"),
    ],
)
def test_a_child_that_breaks_the_layer_contract_is_named(
    key: random.Key, layer: nn.Layer[None, None], error: type[Exception], message: str
) -> None:
    """A layer's wrong forward or backward is named where it happens (layer 1 of the
    serial), not found later as a matmul error inside its neighbour, or not at all (a
    broadcastable dx of one row passed silently through an elementwise layer)."""
    model = nn.serial(nn.dense(4), layer, nn.tanh(), nn.dense(3))
    params = model.init(key, (5,))
    x = random.normal(key, (6, 5))
    grad = fnn.grad(model, losses.softmax_cross_entropy)
    with pytest.raises(error, match=f"layer 1 \\(a layer without a registered name\\) .*{message}"):
        grad(params, x, np.arange(6) % 3)


def test_a_loss_that_breaks_its_contract_is_named(key: random.Key) -> None:
    model = nn.mlp((3,))
    params = model.init(key, (5,))
    x, y = random.normal(key, (6, 5)), np.arange(6) % 3

    def one_row(out: Any, y: Any) -> Any:
        value, d = losses.softmax_cross_entropy(out, y)
        return value, d[:1]

    def three(out: Any, y: Any) -> Any:
        return (*losses.softmax_cross_entropy(out, y), None)

    with pytest.raises(ValueError, match=r"the loss one_row returned a gradient of shape \(1, 3\)"):
        fnn.grad(model, one_row)(params, x, y)
    with pytest.raises(
        TypeError,
        match=r"the loss three's result must be a pair \(value, dprediction\), got a tuple of 3",
    ):
        fnn.grad(model, three)(params, x, y)

    class Pair(NamedTuple):
        value: float
        grad: Any

    def named(out: Any, y: Any) -> Any:
        return Pair(*losses.softmax_cross_entropy(out, y))

    whole = fnn.grad(model, losses.softmax_cross_entropy)(params, x, y)
    assert tree.equal(fnn.grad(model, named)(params, x, y), whole)  # a NamedTuple is a pair


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


def test_keys_reach_stochastic_layers_per_step(key: random.Key) -> None:
    model = user_layers.model()
    params = model.init(key, (4,))
    x, y = well_separated(32)
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
