"""Examples and targets for a model: the checks of a dataset against a model, whether a
batch's accuracy counts, and how (private: what :mod:`fnn.train` and
:mod:`fnn.inference` share).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from . import _checks
from ._types import Array
from .losses import Loss, is_classification
from .nn import Layer, check_ids

Batch = tuple[Array, Array]

Scores = Callable[[Array], bool]
"""``scores(y) -> bool``: whether the accuracy of a batch with targets ``y`` is counted."""


def scores(loss: Loss, accuracy: bool | None) -> Scores:
    """Whether to count a batch's accuracy: as ``accuracy`` says; when it is None, as the
    loss declares (:func:`fnn.losses.is_classification`), and for a loss that declares
    nothing, when the targets are integer class labels ``(batch,)``. Targets of a class
    per position (a language model's ``(batch, time)``) are never counted."""
    if accuracy is None:
        accuracy = is_classification(loss)
    if accuracy is None:
        return _are_labels
    if not isinstance(accuracy, bool):
        raise TypeError(f"accuracy must be True, False or None, got {accuracy!r}")
    return _always if accuracy else _never


def _are_labels(y: Array) -> bool:
    return y.ndim == 1 and y.dtype.kind in "iu"


def _always(y: Array) -> bool:
    return not (y.dtype.kind in "iu" and y.ndim > 1)  # a class per position: not counted


def _never(y: Array) -> bool:
    return False


def check_accuracy(counts: Scores, y: Array, out_shape: tuple[int, ...], what: str) -> bool:
    """Whether accuracy is counted on ``(x, y)`` (checked by :func:`check_data`) for a
    model whose outputs have shape ``out_shape``; a ValueError if it is asked for where it
    means nothing."""
    counted = counts(y)
    fits = len(out_shape) == 1 and (y.ndim == 1 or y.shape[1:] == out_shape)
    if counted and fits and out_shape[0] == 1:  # the argmax of one score is always 0
        raise ValueError(
            "accuracy needs two or more class scores, got model outputs (n, 1): a single "
            "output (a binary model's logit) would count every row as right; pass "
            "accuracy=False and count it as np.mean((logits[:, 0] > 0) == (y[:, 0] > 0.5))"
        )
    if y.dtype.kind in "iu" and len(out_shape) > 1 and y.shape[1:] == out_shape[:-1]:
        return False  # a class per position (a language model): its loss is what counts
    if counted and not fits and counts is _are_labels:
        return False  # integer targets of a model that does not output class scores
    if counted and not fits:
        raise ValueError(
            f"accuracy needs class scores (n, classes) and integer labels (n,) or one-hot "
            f"targets (n, classes), got model outputs (n, {', '.join(map(str, out_shape))}) "
            f"and {what} y of shape {y.shape}; pass accuracy=False"
        )
    return counted


def count_correct(out: Array, y: Array) -> int:
    """How many rows of the class scores ``out`` have their argmax at the label (or the
    one-hot target's argmax) of ``y``."""
    predicted = out.argmax(axis=1)
    labels = y if y.ndim == 1 else y.argmax(axis=1)
    return int(np.count_nonzero(predicted == labels))


def check_inputs(model: Layer[Any, Any], x: Any, what: str) -> Array:
    """``x`` if it is what ``model`` reads: integer token ids in its vocabulary for a
    model that begins with an embedding (:attr:`fnn.nn.Declared.ids`), else finite
    floats ``(n, features...)``.

    Raises:
        TypeError, ValueError: naming what was expected and what came.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a NumPy array, got {type(x).__name__}")
    vocabulary = None
    if x.ndim >= 1:
        try:
            vocabulary = model.declared(x.shape[1:]).ids
        except ValueError as error:  # the layer's own words name shapes inside the model
            raise ValueError(
                f"{what} of shape {x.shape} (examples of shape {x.shape[1:]}) does not fit "
                f"the model: {error}"
            ) from error
    if vocabulary is not None:
        return check_ids(x, vocabulary, what)
    floats = _checks.float_array(x, what)
    if floats.ndim < 2:
        raise ValueError(f"{what} must have shape (n, features...), got {floats.shape}")
    return _checks.finite(floats, what)


def check_data(model: Layer[Any, Any], x: Any, y: Any, what: str) -> None:
    """Check a dataset ``(x, y)`` for ``model``: ``x`` what the model reads
    (:func:`check_inputs`), ``y`` integer labels in range for a model with class outputs
    (per position for a sequence model, ``-1`` where a position has no target), or
    finite float targets shaped like the outputs.

    Raises:
        TypeError, ValueError: naming what was expected and what came (``what`` names the
            data: ``"training"``, ``"validation"``).
    """
    x = check_inputs(model, x, f"{what} x")
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{what} y must be a NumPy array, got {type(y).__name__}")
    if len(y) != len(x):
        raise ValueError(f"{what} x has {len(x)} examples but y has {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{what} data must hold at least one example")
    out_shape = model.output_shape(x.shape[1:])
    if y.dtype.kind in "iu":
        if len(out_shape) == 1:
            _checks.labels(y, out_shape[0], len(x), f"{what} labels")
        elif y.shape[1:] == out_shape[:-1]:  # a class per position of a sequence
            _checks.labels(y, out_shape[-1], y.shape, f"{what} labels", ignore=True)
        elif y.ndim == 1:
            raise ValueError(
                f"{what} labels {y.shape} need class scores (classes,) per example, but the "
                f"model outputs {out_shape}: an image model needs nn.flatten() before its "
                "first dense layer"
            )
    elif y.dtype.kind == "f":
        _checks.finite(y, f"{what} y")
        if y.ndim == 1 and len(out_shape) == 1 and out_shape != (1,):
            raise ValueError(
                f"{what} targets are {y.dtype} labels of shape {y.shape}; pass integer class "
                f"labels (y.astype(np.int64)) or one-hot targets of shape (n, {out_shape[0]})"
            )
        if y.shape[1:] != out_shape:
            raise ValueError(
                f"{what} targets must have shape (n, {', '.join(map(str, out_shape))}) "
                f"to match the model's output, got {y.shape}"
            )
    else:
        raise TypeError(f"{what} y must hold integer labels or float targets, got {y.dtype}")


def as_dtype(x: Array, dtype: np.dtype[Any]) -> Array:
    """Float inputs ``x`` converted to ``dtype`` (``x`` itself when it has it, and token
    ids, which stay integers)."""
    return x if x.dtype == dtype or x.dtype.kind != "f" else x.astype(dtype)


def converted(batches: Iterable[Batch], dtype: np.dtype[Any]) -> Iterable[Batch]:
    """The batches with their inputs converted to ``dtype``, one batch at a time."""
    return ((as_dtype(xb, dtype), yb) for xb, yb in batches)


def chunks(n: int, size: int) -> list[slice]:
    """``n`` rows in consecutive slices of ``size`` (the last one shorter)."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]
