"""Inference (evaluate, predict, predict_proba; fnn/inference.py): chunked evaluation equals
one big batch, probabilities and labels, and float64 inputs converted to the params'
dtype."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fnn
from fnn import losses, nn, random
from fnn.inference import evaluate, predict, predict_proba
from tests.support.data import blobs, separable
from tests.support.models import model
from tests.support.strict import no_warnings


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


def test_evaluate_on_rows_checks_them(key: random.Key) -> None:
    """evaluate's indices are row numbers, checked as fnn.data.batches checks them: a
    bool mask (which divided the accuracy by the mask's length), a negative index (read
    from the end), none at all (a ZeroDivisionError) are refused."""
    x, y = blobs(key, n=10)
    m = model()
    params = m.init(key, (4,))
    loss = losses.softmax_cross_entropy
    rows = np.arange(5)
    on_rows = evaluate(m, loss, params, x, y, indices=rows)
    assert on_rows == evaluate(m, loss, params, x[:5], y[:5])
    for bad in [rows < 5, np.array([[1, 2]]), np.array([1.0]), [1, 2]]:
        with pytest.raises(TypeError, match="indices must be a 1-D integer array of row"):
            evaluate(m, loss, params, x, y, indices=bad)  # type: ignore[arg-type]
    for bad, got in [(np.array([-1, 2]), -1), (np.array([3, 10]), 10)]:
        with pytest.raises(ValueError, match=rf"in \[0, 10\) for 10 examples, got {got}"):
            evaluate(m, loss, params, x, y, indices=bad)
    with pytest.raises(ValueError, match="must name at least one row"):
        evaluate(m, loss, params, x, y, indices=np.arange(0))


def test_ids_of_the_wrong_rank_name_the_shape_given(key: random.Key) -> None:
    lm = nn.gpt(7, 8, 1, 1, 4)
    params = lm.init(key, (8,))
    with pytest.raises(ValueError, match=r"x of shape \(6,\) \(examples of shape \(\)\)"):
        fnn.predict(lm, params, np.arange(6))


def test_inference_converts_float64_inputs_to_the_params_dtype(key: random.Key) -> None:
    x, y = separable(key)
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


def test_accuracy_of_a_single_output_is_refused(key: random.Key) -> None:
    """The argmax of one score is always 0: every row counted as right (1.0 for any
    labels, flipped ones too)."""
    model = nn.mlp((1,))
    params = model.init(key, (3,))
    x = random.normal(key, (8, 3))
    y = (x[:, :1] > 0).astype(np.float32)
    loss = losses.binary_cross_entropy
    with pytest.raises(
        ValueError, match=r"accuracy needs two or more class scores, got .*\(n, 1\)"
    ):
        evaluate(model, loss, params, x, y, accuracy=True)
    with pytest.raises(ValueError, match="accuracy needs two or more class scores"):
        fnn.fit(model, loss, fnn.optim.sgd(0.1), x, y, key=key, epochs=1, accuracy=True)
    assert math.isnan(evaluate(model, loss, params, x, y).accuracy)  # not counted by default
