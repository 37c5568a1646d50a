"""Inference: ``evaluate`` (mean loss and accuracy over a dataset), ``predict`` and
``predict_proba``. Nothing here trains or draws: a stateful model reads its running
statistics from ``model_state``, and every function works chunk by chunk, converting
each chunk of ``x`` to the params' dtype.

>>> import fnn, numpy as np
>>> model = fnn.nn.mlp((4, 3))
>>> params = model.init(fnn.random.key(0), (2,))
>>> x, y = np.ones((5, 2), np.float32), np.array([0, 1, 2, 0, 1])
>>> fnn.predict(model, params, x).shape
(5,)
>>> result = fnn.evaluate(model, fnn.losses.softmax_cross_entropy, params, x, y)
>>> 0.0 <= result.accuracy <= 1.0
True
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import attrs
import numpy as np

from . import _checks, parallel
from ._supervised import (
    as_dtype,
    check_accuracy,
    check_data,
    check_inputs,
    chunks,
    count_correct,
    scores,
)
from ._types import Array
from .losses import Loss
from .nn import Layer, params_dtype

P = TypeVar("P")

__all__ = ["Evaluation", "evaluate", "predict", "predict_proba"]


@attrs.frozen
class Evaluation:
    """The mean loss and the accuracy (NaN when not tracked) over a dataset."""

    loss: float
    accuracy: float


def evaluate(
    model: Layer[P],
    loss: Loss,
    params: P,
    x: Array,
    y: Array,
    batch_size: int = 1024,
    indices: Array | None = None,
    *,
    model_state: Any = None,
    accuracy: bool | None = None,
    comm: parallel.Communicator | None = None,
) -> Evaluation:
    """The mean ``loss`` and the accuracy of ``model`` over ``(x, y)`` (or over the rows
    ``indices`` of them, gathered chunk by chunk), in chunks of ``batch_size`` rows: the
    data loss only, without any penalty. Inference: a stateful model reads its running
    statistics from ``model_state`` (``train_state.model_state``), nothing is drawn.

    Each chunk of ``x`` is converted to the params' dtype (float64 data for float32
    params, as :func:`fnn.fit` trains them). Accuracy (else NaN) is counted as
    :func:`fnn.train_step` counts it: as ``accuracy`` says, or when it is None for a
    classification loss or integer labels.

    With ``comm`` (:mod:`fnn.parallel`; every process calls ``evaluate`` with the same
    arguments), process ``r`` of ``N`` evaluates chunks ``r, r + N, ...`` and every
    process gets the chunks' sums and adds them in chunk order: the same bits as one
    process, in about ``1 / N`` of the time.

    Raises:
        TypeError, ValueError: bad data, or params or state that do not fit the model.

    >>> import fnn, numpy as np
    >>> model = fnn.nn.mlp((3,))
    >>> params = model.init(fnn.random.key(0), (4,))
    >>> x, y = np.zeros((6, 4), np.float32), np.zeros(6, np.int64)
    >>> fnn.evaluate(model, fnn.losses.softmax_cross_entropy, params, x, y)
    Evaluation(loss=1.0986123085021973, accuracy=1.0)
    """
    batch_size = _checks.positive_int(batch_size, "batch_size")
    check_data(model, x, y, "evaluation")
    model.check(params, model_state, x.shape[1:])
    counted = check_accuracy(
        scores(loss, accuracy), y, model.output_shape(x.shape[1:]), "evaluation"
    )
    return evaluate_checked(
        model, loss, params, model_state, x, y, batch_size, indices, counted, comm
    )


def evaluate_checked(
    model: Layer[P],
    loss: Loss,
    params: P,
    model_state: Any,
    x: Array,
    y: Array,
    batch_size: int,
    indices: Array | None,
    counted: bool,
    comm: parallel.Communicator | None = None,
) -> Evaluation:
    """:func:`evaluate` on data already checked (as :func:`fnn.fit`'s validation is),
    counting accuracy when ``counted``: each chunk's loss sum and correct count (this
    process's chunks with ``comm``), summed in chunk order.

    Internal: what :func:`evaluate` and :func:`fnn.fit`'s validation share; not in
    ``__all__``."""
    dtype = params_dtype(params, x.dtype)
    rank, size = parallel.rank_and_size(comm)
    n = len(x) if indices is None else len(indices)
    parts = chunks(n, batch_size)
    rows: list[Any] = parts if indices is None else [indices[c] for c in parts]
    sums = np.zeros((len(rows), 2))  # per chunk: loss times rows, correct count
    for i in range(rank, len(rows), size):  # a slice is a view; indices gather rows
        xb, yb = as_dtype(x[rows[i]], dtype), y[rows[i]]
        out = model.infer(params, xb, model_state)
        value, _ = loss(out, yb)
        sums[i] = value * len(out), count_correct(out, yb) if counted else 0
    if size > 1:  # one process's number and zeros in each entry: exact sums
        sums = parallel.reduce_shards({rank: [sums]}, size, [True] * size, [sums], comm)[0]
    total, correct = 0.0, 0
    for loss_sum, count in sums.tolist():
        total += loss_sum
        correct += int(count)
    return Evaluation(total / n, correct / n if counted else math.nan)


def _outputs(model: Layer[P], params: P, x: Array, batch_size: int, model_state: Any) -> Array:
    """The model's outputs for ``x``, in chunks of ``batch_size`` rows each converted to
    the params' dtype."""
    batch_size = _checks.positive_int(batch_size, "batch_size")
    x = check_inputs(model, x, "x")
    if len(x) == 0:
        raise ValueError("predict needs at least one example, got an empty x")
    dtype = params_dtype(params, x.dtype)
    parts = [
        model.apply(params, as_dtype(x[part], dtype), model_state)
        for part in chunks(len(x), batch_size)
    ]
    return np.concatenate(parts)


def predict_proba(
    model: Layer[P],
    params: P,
    x: Array,
    batch_size: int = 1024,
    from_logits: bool | None = None,
    *,
    model_state: Any = None,
) -> Array:
    """Class probabilities ``(n, classes)`` (``(n, time, classes)`` for a sequence model:
    a distribution over the last axis at each position).

    ``from_logits`` says whether the model outputs logits (softmax is applied) or
    probabilities already; by default it is true unless the model's last layer is a
    ``softmax``. A stateful model needs its ``model_state``. ``x`` is converted to the
    params' dtype chunk by chunk (as :func:`evaluate` does).

    >>> import fnn, numpy as np
    >>> model = fnn.nn.mlp((3,))
    >>> params = model.init(fnn.random.key(0), (4,))
    >>> fnn.predict_proba(model, params, np.zeros((1, 4), np.float32)).round(3)
    array([[0.333, 0.333, 0.333]], dtype=float32)
    """
    out = _outputs(model, params, x, batch_size, model_state)
    if from_logits is None:
        from_logits = not _ends_in_softmax(model)
    if not from_logits:
        return out
    z: Array = out - out.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def _ends_in_softmax(model: Layer[Any]) -> bool:
    spec = model.spec
    while spec is not None and spec.get("layer") == "serial" and spec.get("layers"):
        spec = spec["layers"][-1]
    return spec is not None and spec.get("layer") == "softmax"


def predict(
    model: Layer[P], params: P, x: Array, batch_size: int = 1024, *, model_state: Any = None
) -> Array:
    """Predicted class labels ``(n,)`` (the argmax of the model's outputs over their last
    axis; ``(n, time)`` for a sequence model); a stateful model
    needs its ``model_state``; ``x`` is converted to the params' dtype chunk by chunk.

    >>> import fnn, numpy as np
    >>> model = fnn.nn.mlp((3,))
    >>> params = model.init(fnn.random.key(0), (4,))
    >>> fnn.predict(model, params, np.zeros((2, 4), np.float32))
    array([0, 0])
    """
    labels: Array = _outputs(model, params, x, batch_size, model_state).argmax(axis=-1)
    return labels
