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

from . import _checks
from ._types import Array

__all__ = ["ClassReport", "accuracy", "confusion_matrix", "precision_recall"]


def as_labels(predictions: Any, what: str = "predictions") -> Array:
    """Class labels from labels ``(n,)`` or scores ``(n, classes)`` (their argmax).

    Internal: the conversion :func:`accuracy` and :func:`confusion_matrix` share (``what``
    names the argument in error messages); not in ``__all__``."""
    if isinstance(predictions, np.ndarray) and predictions.ndim == 2:
        if predictions.dtype.kind not in "fiu":
            raise TypeError(f"{what} scores must be numeric, got dtype {predictions.dtype}")
        labels: Array = predictions.argmax(axis=1)
        return labels
    return _checks.int_vector(predictions, what, "integer class labels")


def accuracy(predictions: Array, labels: Array) -> float:
    """The fraction of predictions equal to the labels.

    Args:
        predictions: predicted labels ``(n,)`` or scores ``(n, classes)``.
        labels: true labels ``(n,)`` or one-hot targets ``(n, classes)``.

    Returns:
        ``mean(argmax'd predictions == labels)``, a Python float in ``[0, 1]``.

    Raises:
        TypeError: an argument is not a NumPy array, labels are not integers, or scores
            are not numeric.
        ValueError: labels that are not ``(n,)``, different ``n``, or ``n == 0``.

    >>> import numpy as np
    >>> scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> accuracy(scores, np.array([0, 1, 1]))  # predicted 0, 1, 0
    0.6666666666666666
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

    Args:
        labels: true labels ``(n,)`` or one-hot targets ``(n, classes)``.
        predictions: predicted labels ``(n,)`` or scores ``(n, classes)``.
        num_classes: the matrix's size; defaults to one more than the largest label or
            prediction.

    Returns:
        A new int64 array ``(classes, classes)``: rows are true classes, columns
        predictions; row sums are each class's support.

    Raises:
        TypeError: as :func:`accuracy`; a ``num_classes`` that is not an int.
        ValueError: different ``n``, a negative label, or a label or prediction
            ``>= num_classes``.

    >>> import numpy as np
    >>> confusion_matrix(np.array([0, 1]), np.array([0, 0]), num_classes=3)
    array([[1, 0, 0],
           [1, 0, 0],
           [0, 0, 0]])
    """
    true = as_labels(labels, "labels")
    pred = as_labels(predictions)
    if pred.shape != true.shape:
        raise ValueError(f"predictions have {pred.shape[0]} entries but labels {true.shape[0]}")
    if true.size and min(int(true.min()), int(pred.min())) < 0:
        raise ValueError("labels and predictions must be >= 0")
    largest = max(int(true.max()), int(pred.max())) + 1 if true.size else 0
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
    ):
        raise TypeError(f"num_classes must be an int, got {num_classes!r}")
    n = largest if num_classes is None else int(num_classes)
    if n < largest:
        raise ValueError(f"num_classes is {n} but a label or prediction is {largest - 1}")
    # int64 both (labels checked in range above): unsigned ones would mix into float64
    counts = np.bincount(true.astype(np.int64) * n + pred.astype(np.int64), minlength=n * n)
    matrix: Array = counts.reshape(n, n).astype(np.int64)
    return matrix


@attrs.frozen(eq=False)
class ClassReport:
    """Per-class precision, recall and F1 (arrays of shape ``(classes,)``) and support.

    A class never predicted has precision 0; a class absent from the labels has recall 0.

    Attributes:
        precision: float64 ``(classes,)``, correct predictions of each class over all
            predictions of it.
        recall: float64 ``(classes,)``, correct predictions of each class over its
            examples.
        f1: float64 ``(classes,)``, ``2 precision recall / (precision + recall)`` (0 where
            both are 0).
        support: int64 ``(classes,)``, each class's number of examples.
    """

    precision: Array
    recall: Array
    f1: Array
    support: Array


def precision_recall(matrix: Array) -> ClassReport:
    """Per-class precision, recall and F1 from a confusion matrix (rows: true classes).

    With ``C`` the matrix: ``precision_k = C[k, k] / sum_i C[i, k]``, ``recall_k = C[k, k]
    / sum_j C[k, j]`` (0 where the sum is 0), ``f1_k = 2 p_k r_k / (p_k + r_k)``.

    Args:
        matrix: a square ``(classes, classes)`` array of counts, as
            :func:`confusion_matrix` makes it.

    Returns:
        A :class:`ClassReport` of new arrays.

    Raises:
        ValueError: ``matrix`` is not a square 2-D NumPy array.

    >>> import numpy as np
    >>> report = precision_recall(confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])))
    >>> report.precision.tolist(), report.recall.tolist(), report.support.tolist()
    ([1.0, 1.0, 0.5], [1.0, 0.5, 1.0], [1, 2, 1])
    >>> np.round(report.f1, 4).tolist()
    [1.0, 0.6667, 0.6667]
    """
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
