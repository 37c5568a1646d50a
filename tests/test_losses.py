"""Losses (fnn/losses.py): values and gradients against references, stability, targets
checked, float32 kept for large batches, and what declares a classification loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnn
from fnn import losses, nn, random, tree
from tests.support.data import uniform

TOL = 1e-6


def reference_softmax_ce(logits: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> float:
    z = logits.astype(np.float64)
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    return float(np.mean(lse - z[np.arange(len(labels)), labels]))


def one_hot(labels: np.ndarray[Any, Any], classes: int) -> np.ndarray[Any, Any]:
    rows: np.ndarray[Any, Any] = np.eye(classes, dtype=np.float64)[labels]
    return rows


def test_softmax_cross_entropy_value_and_gradient(key: random.Key) -> None:
    logits = random.normal(key, (6, 4), dtype=np.float64)
    labels = np.array([0, 1, 2, 3, 0, 1])
    value, grad = losses.softmax_cross_entropy(logits, labels)
    assert value == pytest.approx(reference_softmax_ce(logits, labels), rel=1e-12)
    result = fnn.check_grad(lambda z: losses.softmax_cross_entropy(z, labels)[0], grad, logits)
    assert result.max_rel_error < TOL, str(result)


def test_integer_and_one_hot_labels_agree_bit_for_bit(key: random.Key) -> None:
    for dtype in (np.float32, np.float64):
        logits = random.normal(key, (5, 3), dtype=dtype)
        labels = np.array([2, 0, 1, 1, 0])
        v_int, g_int = losses.softmax_cross_entropy(logits, labels)
        v_hot, g_hot = losses.softmax_cross_entropy(logits, one_hot(labels, 3).astype(dtype))
        assert v_int == v_hot
        assert g_int.dtype == dtype and g_int.tobytes() == g_hot.tobytes()
        probs = nn.softmax().apply(None, logits)
        c_int = losses.categorical_cross_entropy(probs, labels)
        c_hot = losses.categorical_cross_entropy(probs, one_hot(labels, 3).astype(dtype))
        assert c_int[0] == c_hot[0] and c_int[1].tobytes() == c_hot[1].tobytes()


def test_soft_targets_gradient(key: random.Key) -> None:
    logits = random.normal(key, (3, 4), dtype=np.float64)
    targets = random.uniform(random.fold_in(key, 1), (3, 4), dtype=np.float64)
    targets /= targets.sum(1, keepdims=True)
    _, grad = losses.softmax_cross_entropy(logits, targets)
    result = fnn.check_grad(lambda z: losses.softmax_cross_entropy(z, targets)[0], grad, logits)
    assert result.max_rel_error < TOL, str(result)


def test_softmax_cross_entropy_is_stable_for_huge_logits() -> None:
    logits = np.array([[1e4, -1e4], [-1e4, 1e4]], np.float32)
    value, grad = losses.softmax_cross_entropy(logits, np.array([0, 0]))
    assert value == pytest.approx(1e4)  # (0 + 2e4) / 2
    np.testing.assert_array_equal(grad, [[0.0, 0.0], [-0.5, 0.5]])


def test_softmax_then_categorical_cross_entropy_gradient(key: random.Key) -> None:
    model = nn.serial(nn.dense(4), nn.tanh(), nn.dense(3), nn.softmax())
    params = model.init(key, (5,), dtype=np.float64)
    x = random.normal(random.fold_in(key, 1), (4, 5), dtype=np.float64)
    y = np.array([0, 2, 1, 2])
    result = fnn.check_model(model, losses.categorical_cross_entropy, params, x, y)
    assert result.max_rel_error < TOL, str(result)
    value, _ = fnn.value_and_grad(model, losses.categorical_cross_entropy)(params, x, y)
    logits_model = nn.serial(nn.dense(4), nn.tanh(), nn.dense(3))
    same, _ = fnn.value_and_grad(logits_model, losses.softmax_cross_entropy)(params[:3], x, y)
    assert value == pytest.approx(same, rel=1e-10)


def test_categorical_cross_entropy_never_takes_log_zero() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    value, grad = losses.categorical_cross_entropy(probs, np.array([1, 1]))
    assert np.isfinite(value) and value == pytest.approx(-np.log(1e-7) / 2, rel=1e-3)
    assert np.isfinite(grad).all()


def test_mean_squared_error(key: random.Key) -> None:
    pred = random.normal(key, (4, 3), dtype=np.float64)
    target = random.normal(random.fold_in(key, 1), (4, 3), dtype=np.float64)
    value, grad = losses.mean_squared_error(pred, target)
    assert value == pytest.approx(float(np.mean((pred - target) ** 2)), rel=1e-12)
    result = fnn.check_grad(lambda p: losses.mean_squared_error(p, target)[0], grad, pred)
    assert result.max_rel_error < TOL, str(result)


def test_binary_cross_entropy_refuses_targets_outside_0_1() -> None:
    """A target of 2 or -1 has no minimum (the loss falls without bound), NaN gives NaN:
    refused; 0/1 integer labels get a hint that fits labels."""
    logits = np.zeros((2, 2))
    for bad, named in [(2.0, "2.0"), (-1.0, "-1.0"), (np.nan, "nan")]:
        target = np.array([[0.0, 1.0], [0.5, bad]])
        with pytest.raises(ValueError, match=f"binary targets must be in \\[0, 1\\], got {named}"):
            losses.binary_cross_entropy(logits, target)
    rounded = np.array([[0.0, np.nextafter(np.float32(1), np.float32(2))]], np.float32)
    losses.binary_cross_entropy(np.zeros((1, 2), np.float32), rounded)  # float32 rounding
    with pytest.raises(TypeError, match=r"convert 0/1 labels with y.astype\(np.float32\)"):
        losses.binary_cross_entropy(logits, np.array([[0, 1], [1, 0]]))


def test_binary_cross_entropy(key: random.Key) -> None:
    logits = random.normal(key, (5, 2), dtype=np.float64) * 3
    target = random.uniform(random.fold_in(key, 1), (5, 2), dtype=np.float64)
    value, grad = losses.binary_cross_entropy(logits, target)
    p = 1 / (1 + np.exp(-logits))
    expected = -np.mean(target * np.log(p) + (1 - target) * np.log(1 - p))
    assert value == pytest.approx(float(expected), rel=1e-10)
    result = fnn.check_grad(lambda z: losses.binary_cross_entropy(z, target)[0], grad, logits)
    assert result.max_rel_error < TOL, str(result)
    huge = np.array([[1e4, -1e4]], np.float32)
    v, g = losses.binary_cross_entropy(huge, np.array([[0.0, 1.0]], np.float32))
    assert v == pytest.approx(1e4) and np.isfinite(g).all()


def test_l2_penalty_acts_on_weights_only(key: random.Key) -> None:
    model = nn.mlp((3, 2))
    params = model.init(key, (4,), dtype=np.float64)
    value, grads = losses.l2_penalty(params, 0.01)
    weights = [params[1].w, params[3].w]
    assert value == pytest.approx(0.005 * sum(float((w**2).sum()) for w in weights))
    np.testing.assert_array_equal(grads[1].w, 0.01 * params[1].w)
    assert not grads[1].b.any()
    result = fnn.check_grad(lambda p: losses.l2_penalty(p, 0.01)[0], grads, params)
    assert result.max_rel_error < TOL, str(result)
    with pytest.raises(ValueError, match="lam >= 0"):
        losses.l2_penalty(params, -1.0)


def test_penalty_composes_with_the_model_gradient(key: random.Key) -> None:
    model = nn.mlp((5, 3))
    params = model.init(key, (4,), dtype=np.float64)
    x = random.normal(key, (6, 4), dtype=np.float64)
    y = np.arange(6) % 3

    def penalty(p: Any) -> tuple[float, Any]:
        return losses.l2_penalty(p, 0.1)

    result = fnn.check_model(model, losses.softmax_cross_entropy, params, x, y, penalty=penalty)
    assert result.max_rel_error < TOL, str(result)


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        (np.array([0, 3]), ValueError, r"must be in \[0, 3\)( or -1 \(no target\))? for 3 .*got 3"),
        (
            np.array([-2, 0]),
            ValueError,
            r"must be in \[0, 3\)( or -1 \(no target\))? for 3 .*got -2",
        ),
        (np.array([0, 1, 2]), ValueError, r"must have shape \(2,\) to match the batch, got \(3,\)"),
        (np.ones((2, 4)), ValueError, r"must have the prediction's shape \(2, 3\), got \(2, 4\)"),
        (np.array(["a", "b"]), TypeError, "must be a float array"),
        ([0, 1], TypeError, "must be a NumPy array, got list"),
    ],
)
def test_bad_targets(target: Any, error: type[Exception], message: str) -> None:
    logits = np.zeros((2, 3), np.float32)
    for loss in (losses.softmax_cross_entropy, losses.categorical_cross_entropy):
        with pytest.raises(error, match=message):
            loss(logits, target)


def test_only_softmax_cross_entropy_leaves_out_minus_one() -> None:
    logits = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"must be in \[0, 3\) for 3 classes, got -1"):
        losses.categorical_cross_entropy(logits, np.array([-1, 0]))
    value, grad = losses.softmax_cross_entropy(logits, np.array([-1, 0]))
    assert value == pytest.approx(np.log(3)) and not grad[0].any()


def test_sequence_cross_entropy_is_the_mean_over_positions(key: random.Key) -> None:
    logits = random.normal(key, (3, 5, 7))
    labels = (np.arange(15) % 7).reshape(3, 5)
    value, grad = losses.softmax_cross_entropy(logits, labels)
    flat_value, flat_grad = losses.softmax_cross_entropy(logits.reshape(15, 7), labels.ravel())
    assert value == flat_value  # the same bits as 15 examples of a classifier
    np.testing.assert_array_equal(grad, flat_grad.reshape(3, 5, 7))
    one_hot = np.eye(7, dtype=np.float32)[labels]
    soft_value, soft_grad = losses.softmax_cross_entropy(logits, one_hot)
    assert soft_value == pytest.approx(value, rel=1e-6)
    np.testing.assert_allclose(soft_grad, grad, atol=1e-7)


def test_ignored_positions_add_nothing(key: random.Key) -> None:
    logits = random.normal(key, (2, 4, 5), np.float64)
    labels = np.array([[1, 2, -1, -1], [0, -1, 4, 3]])
    value, grad = losses.softmax_cross_entropy(logits, labels)
    kept = labels != -1
    want, want_grad = losses.softmax_cross_entropy(logits[kept], labels[kept])
    assert value == pytest.approx(want, rel=1e-14)
    np.testing.assert_allclose(grad[kept], want_grad, rtol=1e-13)
    assert not grad[~kept].any()
    step = 1e-6
    bumped = logits.copy()
    bumped[1, 2, 4] += step
    numeric = (losses.softmax_cross_entropy(bumped, labels)[0] - value) / step
    assert numeric == pytest.approx(grad[1, 2, 4], rel=1e-4)
    nothing, zero = losses.softmax_cross_entropy(logits, np.full((2, 4), -1))
    assert nothing == 0.0 and not zero.any()


@pytest.mark.oracle
def test_sequence_cross_entropy_agrees_with_pytorch(torch: Any, key: random.Key) -> None:
    logits = random.normal(key, (3, 6, 5), np.float64)
    labels = (np.arange(18) % 5).reshape(3, 6)
    labels[0, 4:] = -1
    labels[2, 1] = -1
    value, grad = losses.softmax_cross_entropy(logits, labels)
    lt = torch.tensor(logits, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(
        lt.reshape(-1, 5), torch.from_numpy(labels.reshape(-1)), ignore_index=-1
    )
    theirs.backward()
    assert value == pytest.approx(theirs.item(), rel=1e-13)
    np.testing.assert_allclose(grad, lt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_bad_predictions() -> None:
    with pytest.raises(ValueError, match=r"shape \(batch, classes\).*got \(3,\)"):
        losses.softmax_cross_entropy(np.zeros(3, np.float32), np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="must be a float array"):
        losses.softmax_cross_entropy(np.zeros((1, 3), np.int64), np.array([0]))
    with pytest.raises(ValueError, match="regression targets must have"):
        losses.mean_squared_error(np.zeros((2, 2)), np.zeros((2, 3)))


def test_losses_leave_inputs_unchanged(key: random.Key) -> None:
    logits = random.normal(key, (4, 3))
    labels = np.array([0, 1, 2, 1])
    before = tree.map(np.copy, (logits, labels))
    losses.softmax_cross_entropy(logits, labels)
    losses.categorical_cross_entropy(np.abs(logits), labels)
    losses.mean_squared_error(logits, logits * 2)
    losses.binary_cross_entropy(logits, np.abs(logits) / 10)
    assert tree.equal((logits, labels), before)


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 5), classes=st.integers(2, 6), seed=st.integers(0, 2**32))
def test_cross_entropy_gradient_property(batch: int, classes: int, seed: int) -> None:
    k = random.key(seed)
    logits = random.normal(k, (batch, classes), dtype=np.float64) * 3
    labels = random.permutation(random.fold_in(k, 1), batch * classes)[:batch] % classes
    value, grad = losses.softmax_cross_entropy(logits, labels)
    assert value == pytest.approx(reference_softmax_ce(logits, labels), rel=1e-10)
    result = fnn.check_grad(lambda z: losses.softmax_cross_entropy(z, labels)[0], grad, logits)
    assert result.max_rel_error < TOL, str(result)


Array = np.ndarray[Any, Any]

BIG = 70_000  # more than 65,535

# -- float32 stays float32 when a count is large ----------------------------------------------
#
# NumPy 1.x (value-based casting) gives ``float32_array / n`` the dtype float64 when the
# Python int ``n`` needs 32 bits (above 65535): a batch norm over 128 images of 26x26
# pixels averages 86,528 rows. NumPy 2 keeps float32, so these tests guard the NumPy 1.26
# run of the test command (``.venv-compat``): every mean or scale by a count in a layer or
# a loss must keep the input's dtype.

LOSSES: list[tuple[str, Callable[..., tuple[float, Array]], Array, Array]] = [
    ("softmax_cross_entropy, labels", losses.softmax_cross_entropy, uniform((BIG, 3), 3),
     np.zeros(BIG, np.int64)),
    ("softmax_cross_entropy, one-hot", losses.softmax_cross_entropy, uniform((BIG, 3), 3),
     np.eye(3, dtype=np.float32)[np.zeros(BIG, np.int64)]),
    ("categorical_cross_entropy, labels", losses.categorical_cross_entropy,
     0.1 + 0.8 * uniform((BIG, 3), 4), np.zeros(BIG, np.int64)),
    ("categorical_cross_entropy, one-hot", losses.categorical_cross_entropy,
     0.1 + 0.8 * uniform((BIG, 3), 4), np.eye(3, dtype=np.float32)[np.zeros(BIG, np.int64)]),
    ("binary_cross_entropy", losses.binary_cross_entropy, uniform((BIG, 1), 5),
     uniform((BIG, 1), 6).round()),
    ("mean_squared_error", losses.mean_squared_error, uniform((BIG, 1), 7),
     uniform((BIG, 1), 8)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "loss", "pred", "target"), LOSSES, ids=[c[0] for c in LOSSES])
def test_losses_keep_float32(
    name: str, loss: Callable[..., tuple[float, Array]], pred: Array, target: Array
) -> None:
    pred = pred.astype(np.float32)
    _, grad = loss(pred, target)
    assert grad.dtype == np.float32


class Loss:
    def value(self, logits: Array, y: Array) -> tuple[float, Array]:
        return losses.softmax_cross_entropy(logits, y)


def test_classification_loss_refuses_what_takes_no_attributes() -> None:
    with pytest.raises(TypeError, match=r"pass accuracy=True to fnn\.fit"):
        losses.classification_loss(Loss().value)
