"""Losses: ``loss(prediction, target) -> (value, gradient w.r.t. the prediction)``.

Each loss returns the batch-mean value as a Python float and its gradient as an array
shaped like the prediction, computed in one pass and stably: logits of +-1e4 neither
overflow nor produce ``log(0)``. Targets are either integer class labels of shape
``(batch,)`` or arrays shaped like the prediction (one-hot or soft targets); both forms
give bit-identical values and gradients for the same classes.

Penalties on parameters (:func:`l2_penalty`) return ``(value, gradient tree)``.

A loss says whether it is a classification loss (its prediction holds class scores, so
accuracy means something) with a ``classification`` attribute, which training reads
through :func:`is_classification`: fnn's losses declare it, and a user declares their
own with :func:`classification_loss`.

>>> import numpy as np
>>> logits = np.array([[2.0, 0.0, -1.0]], np.float32)
>>> value, dlogits = softmax_cross_entropy(logits, np.array([0]))
>>> round(value, 4), dlogits.shape
(0.1698, (1, 3))
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from . import _checks
from . import tree as _tree
from ._types import Array

P = TypeVar("P")

Loss = Callable[[Array, Array], tuple[float, Array]]
"""``loss(prediction, target) -> (batch-mean value, d value / d prediction)``."""

Penalty = Callable[[P], tuple[float, P]]
"""``penalty(params) -> (value, d value / d params)``."""

L = TypeVar("L", bound=Callable[..., Any])

__all__ = [
    "IGNORE",
    "Loss",
    "Penalty",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "classification_loss",
    "counted_rows",
    "is_classification",
    "l2_penalty",
    "mean_squared_error",
    "softmax_cross_entropy",
]

IGNORE = -1
"""The integer target that marks a position without one (a padded position of a
sequence): :func:`softmax_cross_entropy` leaves it out of its mean, as PyTorch's
``ignore_index`` does."""


def counted_rows(y: Array) -> float:
    """How many rows of the targets ``y`` a mean loss counts: ``len(y)``, less the share of
    the positions marked :data:`IGNORE` in integer targets (a row of 5 positions, 2 of
    them ignored, counts as 0.6 of a row). Means over batches (or shards) weighted by it
    are the mean over every counted target, as :func:`fnn.evaluate`, fit's validation and
    :func:`fnn.train_step`'s shards weight them. Exactly ``float(len(y))`` when nothing is
    ignored.

    >>> import numpy as np
    >>> counted_rows(np.array([[3, 1, -1, -1, -1], [2, 5, 5, 1, 3]]))
    1.4
    """
    n = len(y)
    if y.dtype.kind != "i" or y.size == 0:
        return float(n)
    ignored = int(np.count_nonzero(y == IGNORE))
    if not ignored:
        return float(n)
    return (y.size - ignored) / (y.size // n)


_UNWRAP_LIMIT = 100
"""How many wrappers :func:`is_classification` looks through before giving up."""

_DECLARATION = "classification"
"""The attribute by which a loss declares whether it is a classification loss."""


def _declare(loss: L, classification: bool) -> L:
    setattr(loss, _DECLARATION, classification)
    return loss


def classification_loss(loss: L) -> L:
    """Declare ``loss`` a classification loss: its prediction holds class scores
    ``(batch, classes)`` and its targets are integer labels or one-hot rows, so
    :func:`fnn.fit`, :func:`fnn.train_step` and :func:`fnn.evaluate` count accuracy with
    it. Sets ``loss.classification = True`` and returns ``loss`` (use it as a decorator).

    >>> @classification_loss
    ... def smoothed(logits, y):
    ...     return softmax_cross_entropy(logits, 0.9 * y + 0.1 / y.shape[1])
    >>> is_classification(smoothed)
    True

    Raises:
        TypeError: ``loss`` takes no attributes (a bound method, a builtin); pass
            ``accuracy=True`` to ``fit`` instead.
    """
    if not callable(loss):
        raise TypeError(f"classification_loss expected a loss function, got {type(loss).__name__}")
    try:
        return _declare(loss, True)
    except (AttributeError, TypeError):
        raise TypeError(
            f"cannot mark {loss!r} as a classification loss (it takes no attributes); "
            "wrap it in a function, or pass accuracy=True to fnn.fit"
        ) from None


def is_classification(loss: Callable[..., Any]) -> bool | None:
    """Whether ``loss`` is a classification loss, as its ``classification`` attribute
    (a bool) declares; ``functools.partial`` objects and wrappers made with
    ``functools.wraps`` (their ``__wrapped__``) are looked through until one declares.
    None when nothing does (a loss fnn does not know).

    True for :func:`softmax_cross_entropy`, :func:`categorical_cross_entropy` and losses
    marked with :func:`classification_loss`; False for :func:`mean_squared_error` and
    :func:`binary_cross_entropy`.

    >>> is_classification(functools.partial(categorical_cross_entropy, epsilon=1e-6))
    True
    >>> is_classification(mean_squared_error), is_classification(lambda p, t: (0.0, p))
    (False, None)
    """
    for _ in range(_UNWRAP_LIMIT):
        declared = getattr(loss, _DECLARATION, None)
        if isinstance(declared, bool):
            return declared
        wrapped = loss.func if isinstance(loss, functools.partial) else None
        wrapped = wrapped or getattr(loss, "__wrapped__", None)
        if not callable(wrapped):
            return None
        loss = wrapped
    return None


def _prediction(x: Any, what: str, ndim: int | None = 2) -> Array:
    """``x`` checked: a float array with ``ndim`` axes (None: any) and a batch."""
    pred = _checks.float_array(x, what)
    if ndim is not None and pred.ndim != ndim:
        raise ValueError(f"{what} must have shape (batch, classes), got {pred.shape}")
    if pred.shape[0] == 0:
        raise ValueError(f"{what} must hold at least one example, got shape {pred.shape}")
    return pred


def _targets(pred: Array, target: Any, ignore: bool = False) -> Array:
    """Class targets as a float array shaped like ``pred`` (one-hot or soft targets), or
    integer labels of shape ``(batch,)`` (checked to be in range)."""
    if isinstance(target, np.ndarray) and target.dtype.kind in "iu":
        return _checks.labels(target, pred.shape[-1], pred.shape[:-1], ignore=ignore)
    targets = _checks.float_array(target, "one-hot or soft targets")
    if targets.shape != pred.shape:
        raise ValueError(
            f"one-hot or soft targets must have the prediction's shape {pred.shape}, "
            f"got {targets.shape} (integer labels have shape {pred.shape[:-1]})"
        )
    return targets


def softmax_cross_entropy(logits: Array, target: Array) -> tuple[float, Array]:
    """Cross-entropy of ``softmax(logits)`` against class targets, fused and stable: for
    classifiers, one distribution per example; for sequence models, one per position.

    Args:
        logits: ``(batch, classes)`` floats, or ``(batch, ..., classes)`` (a language
            model's ``(batch, time, vocab)``): the last axis holds the class scores.
        target: integer labels of the logits' shape without its last axis (``(batch,)``,
            ``(batch, time)``) in ``[0, classes)``, where ``-1`` (:data:`IGNORE`) marks a
            position with no target (padding): it adds nothing to the value or the
            gradient and the mean is over the other positions. Or one-hot / soft targets
            of the logits' shape (each row a distribution).

    Returns:
        ``(value, dlogits)``: with ``z`` the logits of one position and ``t`` its target,
        ``value`` is the mean over the ``m`` counted positions of
        ``sum_k t_k (logsumexp(z) - z_k)``, and ``dlogits = (softmax(z) * sum_k t_k - t) /
        m`` there (zero at ignored positions), i.e. ``(p - t) / m`` for targets that sum to
        one. ``value`` is a Python float (0.0 when every position is ignored), ``dlogits``
        a new array of the logits' shape and dtype.

    Raises:
        TypeError: ``logits`` or float targets are not float arrays, or labels are
            neither integer nor float.
        ValueError: ``logits`` has fewer than 2 axes or no examples, a label is outside
            ``[0, classes)`` and not -1, or targets have another shape.

    >>> import numpy as np
    >>> logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]], np.float32)
    >>> value, dlogits = softmax_cross_entropy(logits, np.array([0, 2]))
    >>> round(value, 4), dlogits.shape, dlogits.dtype
    (0.6342, (2, 3), dtype('float32'))
    >>> softmax_cross_entropy(np.array([[1e4, -1e4]], np.float32), np.array([1]))  # no overflow
    (20000.0, array([[ 1., -1.]], dtype=float32))
    >>> tokens = np.zeros((2, 4, 3), np.float32)  # (batch, time, vocab)
    >>> value, dlogits = softmax_cross_entropy(tokens, np.array([[0, 1, 2, -1], [1, 1, -1, -1]]))
    >>> round(value, 4), dlogits[0, 3].tolist()  # log(3), over the 5 counted positions
    (1.0986, [0.0, 0.0, 0.0])
    """
    logits = _prediction(logits, "logits", None)
    if logits.ndim < 2:
        raise ValueError(
            f"logits must have shape (batch, classes) or (batch, ..., classes), got {logits.shape}"
        )
    target = _targets(logits, target, ignore=True)
    classes = logits.shape[-1]
    z = logits.reshape(-1, classes)
    rows = z.shape[0]
    z = z - np.maximum.reduce(z, axis=1, keepdims=True)
    grad = np.exp(z)
    s = np.add.reduce(grad, axis=1, keepdims=True)
    lse = np.log(s)
    grad /= s  # softmax
    count = rows
    if target.dtype.kind in "iu":
        labels = target.reshape(-1)
        keep = labels != IGNORE if rows and np.minimum.reduce(labels) == IGNORE else None
        at = np.arange(0, rows * classes, classes)  # flat index of each row's class
        if keep is None:
            at += labels
            value = float(np.add.reduce(lse[:, 0] - z.take(at)))
        else:
            count = int(np.count_nonzero(keep))
            at = at[keep] + labels[keep]
            value = float(np.add.reduce(lse[keep, 0] - z.take(at)))
            grad[~keep] = 0
        grad.put(at, grad.take(at) - 1)
    else:
        t = target.reshape(-1, classes)
        value = float(np.add.reduce(np.sum(t * (lse - z), axis=1)))
        grad *= t.sum(axis=1, keepdims=True)
        grad -= t
    if count:
        value /= count
        grad /= float(count)
    return value, grad.reshape(logits.shape)


_declare(softmax_cross_entropy, classification=True)


def categorical_cross_entropy(
    probs: Array, target: Array, epsilon: float = 1e-7
) -> tuple[float, Array]:
    """Cross-entropy of predicted probabilities (a model ending in ``softmax``).

    Probabilities are clipped to ``[epsilon, 1 - epsilon]`` before the log, as Keras
    does, so ``log(0)`` never happens; the gradient is that of the clipped function
    (zero where clipping is active).

    Args:
        probs: ``(batch, classes)`` probabilities.
        target: integer labels ``(batch,)`` or one-hot / soft targets ``(batch, classes)``.
        epsilon: the clipping margin.

    Returns:
        ``(value, dprobs)``: ``value = -mean_i sum_k t_ik log(clip(p_ik))`` (a Python
        float) and ``dprobs = -t / (clip(p) * batch)`` inside the clipping range, 0
        outside (a new array of the probabilities' shape and dtype).

    Raises:
        TypeError: ``probs`` or float targets are not float arrays, or ``epsilon`` is not
            a number.
        ValueError: ``probs`` is not ``(batch, classes)`` with ``batch >= 1``, a label is
            outside ``[0, classes)``, targets have another shape, or ``epsilon`` is not in
            ``(0, 0.5)``.

    >>> import numpy as np
    >>> probs = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]], np.float32)
    >>> value, dprobs = categorical_cross_entropy(probs, np.array([0, 1]))
    >>> round(value, 4), [[round(g, 4) for g in row] for row in dprobs.tolist()]
    (0.5249, [[-0.7143, 0.0, 0.0], [0.0, -1.0, 0.0]])
    """
    probs = _prediction(probs, "probabilities")
    target = _targets(probs, target)
    batch = probs.shape[0]
    eps = _checks.real(epsilon, "epsilon")
    if not 0.0 < eps < 0.5:
        raise ValueError(f"epsilon must be in (0, 0.5), got {epsilon}")
    clipped = np.clip(probs, eps, 1 - eps)
    inside = (probs >= eps) & (probs <= 1 - eps)
    if target.dtype.kind in "iu":
        rows = np.arange(batch)
        picked = clipped[rows, target]
        value = float(-np.mean(np.log(picked)))
        grad = np.zeros_like(probs)
        grad[rows, target] = -1 / (picked * float(batch))
    else:
        value = float(-np.mean(np.sum(target * np.log(clipped), axis=1)))
        grad = -target / (clipped * float(batch))
    grad = np.where(inside, grad, 0)
    grad += 0  # -0.0 becomes +0.0: integer and one-hot labels agree bit for bit
    return value, grad


_declare(categorical_cross_entropy, classification=True)


def mean_squared_error(pred: Array, target: Array) -> tuple[float, Array]:
    """Mean of ``(pred - target)**2`` over all entries (as PyTorch's ``MSELoss``).

    Args:
        pred: predictions, a float array of any shape with a batch axis of at least one.
        target: float targets of ``pred``'s shape.

    Returns:
        ``(value, dpred)``: ``value`` a Python float, ``dpred = 2 (pred - target) /
        pred.size`` a new array of ``pred``'s shape.

    Raises:
        TypeError: ``pred`` or ``target`` is not a float array.
        ValueError: an empty batch, or ``target`` of another shape.

    >>> import numpy as np
    >>> pred, target = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[1.0, 0.0], [3.0, 3.0]])
    >>> value, dpred = mean_squared_error(pred, target)
    >>> value, dpred.tolist()
    (2.0, [[0.0, 1.0], [0.0, 1.0]])
    """
    pred = _prediction(pred, "predictions", ndim=None)
    _checks.float_array(target, "regression targets")
    if target.shape != pred.shape:
        raise ValueError(
            f"regression targets must have the predictions' shape {pred.shape}, got {target.shape}"
        )
    diff = pred - target
    value = float(np.mean(diff * diff))
    diff *= 2 / diff.size
    return value, diff


_declare(mean_squared_error, classification=False)


_TARGET_SLACK = 1e-6
"""How far outside ``[0, 1]`` a binary target may be: soft targets from float32 arithmetic
land a few ulps beyond 1 (or below 0), where the loss still has its minimum far out."""


def binary_cross_entropy(logits: Array, target: Array) -> tuple[float, Array]:
    """Binary cross-entropy of ``sigmoid(logits)`` against targets in ``[0, 1]``, stable.

    The value per entry is ``max(z, 0) - t z + log(1 + exp(-|z|))``, which never
    overflows; the mean is over all entries.

    Args:
        logits: a float array of any shape with a batch axis of at least one.
        target: float targets in ``[0, 1]`` of the logits' shape.

    Returns:
        ``(value, dlogits)``: ``value`` a Python float, ``dlogits = (sigmoid(z) - t) /
        logits.size`` a new array of the logits' shape.

    Raises:
        TypeError: ``logits`` or ``target`` is not a float array (0/1 integer labels:
            convert them, ``y.astype(np.float32)``).
        ValueError: an empty batch, ``target`` of another shape, or a target outside
            ``[0, 1]`` (by more than 1e-6: float32 rounding) or NaN (the loss has no
            minimum there: a target of 2 drives the logit to infinity).

    >>> import numpy as np
    >>> logits, target = np.array([[0.0, 1e4, -1e4]]), np.array([[1.0, 1.0, 0.0]])
    >>> value, dlogits = binary_cross_entropy(logits, target)
    >>> round(value, 4), np.round(dlogits, 4).tolist()  # log(2) / 3; no overflow
    (0.231, [[-0.1667, 0.0, 0.0]])
    """
    logits = _prediction(logits, "logits", ndim=None)
    if isinstance(target, np.ndarray) and target.dtype.kind in "iub":
        raise TypeError(
            f"binary targets must be a float array in [0, 1], got dtype {target.dtype}; "
            "convert 0/1 labels with y.astype(np.float32)"
        )
    _checks.float_array(target, "binary targets")
    if target.shape != logits.shape:
        raise ValueError(
            f"binary targets must have the logits' shape {logits.shape}, got {target.shape}"
        )
    low, high = (float(np.min(target)), float(np.max(target))) if target.size else (0.0, 0.0)
    if not (low >= -_TARGET_SLACK and high <= 1.0 + _TARGET_SLACK):  # NaN fails both
        bad = low if not low >= 0.0 else high
        raise ValueError(f"binary targets must be in [0, 1], got {bad}")
    e = np.exp(-np.abs(logits))
    value = float(np.mean(np.maximum(logits, 0) - target * logits + np.log1p(e)))
    sig = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
    grad = (sig - target) / float(logits.size)
    return value, grad


_declare(binary_cross_entropy, classification=False)


def l2_penalty(params: P, lam: float) -> tuple[float, P]:
    """The L2 penalty ``(lam / 2) * sum(w**2)`` over the weight leaves of ``params``.

    Weights are the leaves held in fields marked ``weight=True`` (the ``w`` of dense
    layers); biases are not penalised, as in the classic MNIST projects.

    Args:
        params: a tree of float arrays (records declaring their weights with
            ``metadata=fnn.tree.WEIGHT``).
        lam: the penalty's strength, a number >= 0.

    Returns:
        ``(value, grads)``: ``value`` a Python float; ``grads`` is shaped like ``params``
        with ``lam * w`` at the weights and zeros elsewhere (new arrays).

    Raises:
        TypeError: ``lam`` is not a number.
        ValueError: ``lam`` is negative or NaN.

    >>> import fnn, numpy as np
    >>> params = fnn.nn.DenseParams(np.array([[1.0, -2.0], [0.5, 0.0]]), np.ones(2))
    >>> value, grads = l2_penalty(params, 0.1)
    >>> round(value, 4), grads.w.tolist(), grads.b.tolist()  # 0.05 * (1 + 4 + 0.25)
    (0.2625, [[0.1, -0.2], [0.05, 0.0]], [0.0, 0.0])
    """
    lam = _checks.real(lam, "lam")
    if not lam >= 0:
        raise ValueError(f"l2_penalty needs lam >= 0, got {lam}")
    mask = _tree.weight_mask(params)
    value = (
        0.5
        * lam
        * sum(float(np.vdot(w, w)) for w, m in zip(_tree.leaves(params), _tree.leaves(mask)) if m)
    )
    grads: P = _tree.map(lambda w, m: w * lam if m else np.zeros_like(w), params, mask)
    return value, grads
