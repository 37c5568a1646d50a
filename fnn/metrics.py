"""Classification metrics on class labels: accuracy, confusion matrix, precision, recall.

Labels are integer arrays of shape ``(n,)``; where a function accepts predictions it
also takes scores ``(n, classes)`` (logits or probabilities) and uses their argmax.

>>> import numpy as np
>>> y_true = np.array([0, 1, 1, 2])
>>> y_pred = np.array([0, 1, 2, 2])
>>> accuracy(y_pred, y_true)
0.75
>>> confusion_matrix(y_true, y_pred, 3).tolist()
[[1, 0, 0], [0, 1, 1], [0, 0, 1]]
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from ._types import Array

__all__ = ["ClassReport", "accuracy", "confusion_matrix", "precision_recall"]


def _labels(y: Any, what: str) -> Array:
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{what} must be a NumPy array, got {type(y).__name__}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integer class labels, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"{what} must have shape (n,), got {y.shape}")
    return y


def as_labels(predictions: Any, what: str = "predictions") -> Array:
    """Class labels from labels ``(n,)`` or scores ``(n, classes)`` (their argmax).

    Internal: the conversion :func:`accuracy` and :func:`confusion_matrix` share (``what``
    names the argument in error messages); not in ``__all__``."""
    if isinstance(predictions, np.ndarray) and predictions.ndim == 2:
        if predictions.dtype.kind not in "fiu":
            raise TypeError(f"{what} scores must be numeric, got dtype {predictions.dtype}")
        labels: Array = predictions.argmax(axis=1)
        return labels
    return _labels(predictions, what)


def accuracy(predictions: Array, labels: Array) -> float:
    """The fraction of predictions equal to the labels.

    Args:
        predictions: predicted labels ``(n,)`` or scores ``(n, classes)``.
        labels: true labels ``(n,)`` or one-hot targets ``(n, classes)``.
    """
    pred = as_labels(predictions)
    true = as_labels(labels, "labels")
    if pred.shape != true.shape:
        raise ValueError(f"predictions have {pred.shape[0]} entries but labels {true.shape[0]}")
    if pred.size == 0:
        raise ValueError("accuracy needs at least one example")
    return float(np.mean(pred == true))


def confusion_matrix(labels: Array, predictions: Array, num_classes: int | None = None) -> Array:
    """The ``(classes, classes)`` int64 matrix whose entry ``[i, j]`` counts examples of
    true class ``i`` predicted as ``j``.

    ``num_classes`` defaults to one more than the largest label or prediction.
    """
    true = as_labels(labels, "labels")
    pred = as_labels(predictions)
    if pred.shape != true.shape:
        raise ValueError(f"predictions have {pred.shape[0]} entries but labels {true.shape[0]}")
    if true.size and min(int(true.min()), int(pred.min())) < 0:
        raise ValueError("labels and predictions must be >= 0")
    largest = max(int(true.max()), int(pred.max())) + 1 if true.size else 0
    n = largest if num_classes is None else int(num_classes)
    if n < largest:
        raise ValueError(f"num_classes is {n} but a label or prediction is {largest - 1}")
    counts = np.bincount(true.astype(np.int64) * n + pred, minlength=n * n)
    matrix: Array = counts.reshape(n, n).astype(np.int64)
    return matrix


@attrs.frozen(eq=False)
class ClassReport:
    """Per-class precision, recall and F1 (arrays of shape ``(classes,)``) and support.

    A class never predicted has precision 0; a class absent from the labels has recall 0.
    """

    precision: Array
    recall: Array
    f1: Array
    support: Array


def precision_recall(matrix: Array) -> ClassReport:
    """Per-class precision, recall and F1 from a confusion matrix (rows: true classes)."""
    if not isinstance(matrix, np.ndarray) or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        shape = getattr(matrix, "shape", type(matrix).__name__)
        raise ValueError(f"expected a square confusion matrix, got {shape}")
    cm = matrix.astype(np.float64)
    hits = np.diag(cm)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return ClassReport(precision, recall, f1, matrix.sum(axis=1).astype(np.int64))
