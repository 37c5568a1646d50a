"""Inference: ``evaluate`` (mean loss and accuracy over a dataset), ``predict``,
``predict_proba`` and ``generate`` (token ids drawn from a language model). Nothing here
trains, and only ``generate`` draws (from the key it is given): a stateful model reads its running
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
from . import random as _random
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
from .losses import Loss, counted_rows
from .nn import Layer, check_ids, decoder_of, params_dtype

P = TypeVar("P")
S = TypeVar("S")

__all__ = ["Evaluation", "evaluate", "generate", "predict", "predict_proba"]


@attrs.frozen
class Evaluation:
    """The mean loss and the accuracy (NaN when not tracked) over a dataset."""

    loss: float
    accuracy: float


def evaluate(
    model: Layer[P, S],
    loss: Loss,
    params: P,
    x: Array,
    y: Array,
    batch_size: int = 1024,
    indices: Array | None = None,
    *,
    model_state: S | None = None,
    accuracy: bool | None = None,
    comm: parallel.Communicator | None = None,
) -> Evaluation:
    """The mean ``loss`` and the accuracy of ``model`` over ``(x, y)`` (or over the rows
    ``indices`` of them, gathered chunk by chunk), in chunks of ``batch_size`` rows: the
    data loss only, without any penalty. The chunks' losses are weighted by their
    :func:`fnn.losses.counted_rows` (their rows, less targets marked
    :data:`fnn.losses.IGNORE`), so the loss is the mean over every counted target
    whatever ``batch_size`` is. Inference: a stateful model reads its running statistics
    from ``model_state`` (``train_state.model_state``), nothing is drawn.

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
    if indices is not None:
        indices = _checks.row_indices(indices, len(x), "evaluate's indices")
        if not len(indices):
            raise ValueError("evaluate's indices must name at least one row, got none")
    model.check(params, model_state, x.shape[1:])
    counted = check_accuracy(
        scores(loss, accuracy), y, model.output_shape(x.shape[1:]), "evaluation"
    )
    return evaluate_checked(
        model, loss, params, model_state, x, y, batch_size, indices, counted, comm
    )


def evaluate_checked(
    model: Layer[P, S],
    loss: Loss,
    params: P,
    model_state: S | None,
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
    state: S = model.check_state(model_state)  # checked by evaluate and fit already
    dtype = params_dtype(params, x.dtype)
    rank, size = parallel.rank_and_size(comm)
    n = len(x) if indices is None else len(indices)
    parts = chunks(n, batch_size)
    rows: list[Any] = parts if indices is None else [indices[c] for c in parts]
    # per chunk: its loss times its counted rows, its correct count, its counted rows
    # (losses.counted_rows: the rows, less positions without a target)
    sums = np.zeros((len(rows), 3))
    for i in range(rank, len(rows), size):  # a slice is a view; indices gather rows
        xb, yb = as_dtype(x[rows[i]], dtype), y[rows[i]]
        out = model.infer(params, xb, state)
        value, _ = loss(out, yb)
        weight = counted_rows(yb)
        sums[i] = value * weight, count_correct(out, yb) if counted else 0, weight
    if size > 1:  # one process's number and zeros in each entry: exact sums
        sums = parallel.reduce_shards({rank: [sums]}, size, [True] * size, [sums], comm)[0]
    total, correct, weights = 0.0, 0, 0.0
    for loss_sum, count, weight in sums.tolist():
        total += loss_sum
        correct += int(count)
        weights += weight
    # 0 when no target counts (a loss's value then), as the chunks' losses are
    return Evaluation(total / weights if weights else 0.0, correct / n if counted else math.nan)


def _outputs(
    model: Layer[P, S], params: P, x: Array, batch_size: int, model_state: S | None
) -> Array:
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
    model: Layer[P, S],
    params: P,
    x: Array,
    batch_size: int = 1024,
    from_logits: bool | None = None,
    *,
    model_state: S | None = None,
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


def _ends_in_softmax(model: Layer[Any, Any]) -> bool:
    spec = model.spec
    while spec is not None and spec.get("layer") == "serial" and spec.get("layers"):
        spec = spec["layers"][-1]
    return spec is not None and spec.get("layer") == "softmax"


def predict(
    model: Layer[P, S], params: P, x: Array, batch_size: int = 1024, *, model_state: S | None = None
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


def generate(
    model: Layer[P, S],
    params: P,
    prompt: Array,
    length: int,
    *,
    key: _random.Key,
    context: int | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    model_state: S | None = None,
    cached: bool = True,
) -> Array:
    """``length`` new token ids drawn one after another from a language model's
    predictions (a model from ids ``(batch, time)`` to logits ``(batch, time, vocab)``,
    such as :func:`fnn.nn.gpt`), each from the distribution at the last position.

    With ``cached`` (the default), each new token costs one position: the prompt goes
    through the layers' :class:`~fnn.nn.Decoder`\\ s once, filling their caches (an
    attention's keys and values), and each drawn token goes through them alone. The
    model sees at most ``context`` positions: when a new token finds the window full,
    the window restarts from the last ``context // 2`` tokens (their positions
    recomputed once), so the cost stays one position per token on average. With
    ``cached=False`` the whole window is recomputed for every token (what the caches
    save; the same tokens, as the tests check). Before drawing, the stepped prompt's
    last logits are compared with the whole forward's: a layer that mixes positions but
    has no decoder is refused, not trusted.

    Drawing: the logits divided by ``temperature`` (0: always the most likely token), cut
    to the ``top_k`` most likely (None: all), then a softmax; token ``i`` is drawn with
    ``fold_in(key, i)``: the same key, the same tokens.

    Args:
        model, params, model_state: the language model (in inference).
        prompt: the ids to continue, ``(n,)`` or a batch ``(batch, n)``, ``n >= 1``.
        length: how many ids to draw, an int >= 1.
        key: an :class:`fnn.random.Key`.
        context: the most positions the model takes (a GPT's ``context``); None: no
            limit (a recurrent model).
        temperature: a finite number >= 0 (default 1).
        top_k: keep the ``top_k`` largest logits, an int >= 1, or None.
        cached: decode one position at a time (default) or recompute every window.

    Returns:
        The new ids, ``(length,)`` (or ``(batch, length)``), int64.

    Raises:
        TypeError, ValueError: bad arguments; ids outside the model's vocabulary; a model
            whose stepped outputs differ from its forward's.

    >>> import fnn, numpy as np
    >>> model = fnn.nn.gpt(vocab=5, context=8, layers=1, heads=2, features=8)
    >>> params = model.init(fnn.random.key(0), (8,))
    >>> out = fnn.generate(model, params, np.array([1, 2]), 20, key=fnn.random.key(1), context=8)
    >>> out.shape, bool((out == fnn.generate(model, params, np.array([1, 2]), 20,
    ...     key=fnn.random.key(1), context=8, cached=False)).all())
    ((20,), True)
    """
    count = _checks.positive_int(length, "length")
    if not isinstance(key, _random.Key):
        raise TypeError(f"key must be an fnn.random.Key, got {type(key).__name__}")
    tokens = _prompt(prompt)
    window = (
        count + tokens.shape[1] if context is None else _checks.positive_int(context, "context")
    )
    heat = _checks.real(temperature, "temperature")
    if not (math.isfinite(heat) and heat >= 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    k = None if top_k is None else _checks.positive_int(top_k, "top_k")
    batch, n = tokens.shape
    vocabulary = model.declared((min(n, window),)).ids
    if vocabulary is not None:  # the whole prompt, in its own dtype (2**64 - 1 is not -1)
        check_ids(tokens, vocabulary, "prompt")
    tokens = tokens.astype(np.int64)
    model.check_inputs(params, tokens[:, -min(n, window) :], model_state)
    state: S = model.check_state(model_state)  # checked with the inputs above
    decoder = decoder_of(model)
    keep = max(window // 2, 1)
    out = np.empty((batch, n + count), np.int64)
    out[:, :n] = tokens
    start = max(0, n - window)

    def last_logits(stop: int) -> tuple[Array, Any]:
        """The logits at position ``stop - 1`` of the window ``start:stop``, and the cache
        filled by stepping through it (when ``cached``)."""
        if not cached:
            return model.infer(params, out[:, start:stop], state)[:, -1], None
        cache = decoder.start(params, batch, window)
        for t in range(stop - start):
            logits = decoder.step(params, out[:, start + t], state, cache, t)
        return logits, cache

    logits, cache = last_logits(n)
    whole = model.infer(params, out[:, start:n], state)[:, -1]
    if not np.allclose(logits, whole, rtol=1e-4, atol=1e-4 * float(np.abs(whole).max())):
        raise ValueError(
            "generate: stepping the prompt one position at a time does not give the whole "
            "forward's outputs: a layer mixes positions but has no nn.Decoder, or its "
            "decoder's step does not reproduce its forward (pass cached=False, or give the "
            "layer a decoder that does)"
        )
    for i in range(count):
        at = n + i
        out[:, at] = _draw(logits, _random.fold_in(key, i), heat, k)
        if i == count - 1:
            break
        if at + 1 - start > window:  # the new token finds the window full
            start = at + 1 - keep
            logits, cache = last_logits(at + 1)
        elif cached:
            logits = decoder.step(params, out[:, at], state, cache, at - start)
        else:
            logits = model.infer(params, out[:, start : at + 1], state)[:, -1]
    new = out[:, n:]
    return new[0] if prompt.ndim == 1 else new


def _prompt(prompt: Any) -> Array:
    """A prompt of ids as ``(batch, n)``, ``n >= 1``, in its own integer dtype."""
    if not isinstance(prompt, np.ndarray) or prompt.dtype.kind not in "iu":
        got = f"dtype {prompt.dtype}" if isinstance(prompt, np.ndarray) else type(prompt).__name__
        raise TypeError(f"prompt must be an integer array of token ids, got {got}")
    if prompt.ndim not in (1, 2) or prompt.shape[-1] == 0 or prompt.size == 0:
        raise ValueError(f"prompt must be (n,) or (batch, n) ids with n >= 1, got {prompt.shape}")
    ids: Array = np.atleast_2d(prompt)
    return ids


def _draw(logits: Array, key: _random.Key, temperature: float, top_k: int | None) -> Array:
    """One id per row of ``logits`` ``(batch, vocab)``: the argmax at temperature 0, else a
    draw from ``softmax(logits / temperature)`` cut to the ``top_k`` largest."""
    if temperature == 0:
        picked: Array = logits.argmax(axis=-1)
        return picked
    # shifted by the row's max before the division: at a tiny temperature the others go
    # to -inf (weight 0) and the max stays 0, where logits / temperature would overflow
    # to inf and inf - inf give NaN
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    with np.errstate(over="ignore"):
        z /= temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = np.partition(z, -top_k, axis=-1)[:, -top_k, np.newaxis]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z)
    cumulative = np.cumsum(p, axis=-1)
    u = _random.uniform(key, (len(z), 1), dtype=np.float64) * cumulative[:, -1:]
    chosen: Array = np.minimum((cumulative <= u).sum(axis=-1), z.shape[-1] - 1)
    return chosen
