from __future__ import annotations

import numpy as np
import pytest

from fnn import metrics


def test_accuracy_from_labels_scores_and_one_hot() -> None:
    y = np.array([0, 1, 2, 2])
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.0, 0.1, 0.9]])
    assert metrics.accuracy(scores, y) == 0.75
    assert metrics.accuracy(np.array([0, 1, 0, 2]), np.eye(3, dtype=np.float32)[y]) == 0.75


def test_confusion_matrix_and_report() -> None:
    y = np.array([0, 0, 1, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0, 1])
    cm = metrics.confusion_matrix(y, p, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [1, 2, 0], [0, 1, 0]])
    assert cm.sum() == len(y) and cm.dtype == np.int64
    report = metrics.precision_recall(cm)
    np.testing.assert_allclose(report.precision, [0.5, 0.5, 0.0])
    np.testing.assert_allclose(report.recall, [0.5, 2 / 3, 0.0])
    np.testing.assert_allclose(report.f1, [0.5, 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), 0.0])
    np.testing.assert_array_equal(report.support, [2, 3, 1])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="4 entries but labels 3"):
        metrics.accuracy(np.zeros(4, np.int64), np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="integer class labels"):
        metrics.confusion_matrix(np.zeros(2), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="num_classes is 2 but a label or prediction is 2"):
        metrics.confusion_matrix(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="square confusion matrix"):
        metrics.precision_recall(np.zeros((2, 3)))


def test_confusion_matrix_of_unsigned_labels_and_a_bad_class_count() -> None:
    labels = np.array([0, 1], np.uint64)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(labels, np.array([1, 1], np.uint64)), [[0, 1], [0, 1]]
    )
    with pytest.raises(TypeError, match=r"num_classes must be an int, got 2\.7"):
        metrics.confusion_matrix(labels, labels, num_classes=2.7)  # type: ignore[arg-type]
