"""Mini-batches: a deterministic, shuffled pass over ``(x, y)`` driven by a key."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np

from .. import _checks
from .. import random as _random
from .._types import Array
from ._prep import check_pair


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """The number of batches :func:`batches` yields for ``n`` examples.

    ``ceil(n / batch_size)``, or ``n // batch_size`` with ``drop_last``.

    >>> num_batches(60000, 128), num_batches(60000, 128, drop_last=True)
    (469, 468)
    """
    count = _checks.positive_int(n, "n", least=0)
    size = _checks.positive_int(batch_size, "batch_size")
    return count // size if drop_last else -(-count // size)


def batches(
    key: _random.Key | None,
    x: Array,
    y: Array,
    batch_size: int,
    shuffle: bool = True,
    drop_last: bool = False,
    indices: Array | None = None,
) -> Iterator[tuple[Array, Array]]:
    """Iterate over ``(x_batch, y_batch)`` pairs, in an order drawn from ``key``.

    The order is ``fnn.random.permutation(key, n)``: the same key gives the same
    batches. Derive one key per epoch (``fnn.random.fold_in(key, epoch)``) for a new
    order each epoch. Each batch gathers its rows straight from ``x`` and ``y``; nothing
    copies the whole dataset.

    Args:
        key: an :class:`fnn.random.Key`; may be ``None`` only when ``shuffle`` is false.
        x: examples, ``(n, ...)``, any dtype.
        y: labels or targets, ``(n, ...)``.
        batch_size: examples per batch, an int >= 1.
        shuffle: draw the order from ``key``; if false, keep the stored order.
        drop_last: skip the last batch when it is smaller than ``batch_size``.
        indices: iterate over these rows only (a 1-D integer array, e.g. the training
            part of a split from :func:`split_indices`), in the order
            ``indices[permutation(key, len(indices))]``; nothing is copied.

    Yields:
        ``(x[idx], y[idx])`` for consecutive slices ``idx`` of the order: arrays of
        shapes ``(b, ...)``, new for every batch (a consumer may keep them, and they
        share no memory with ``x``, ``y`` or each other). ``b = batch_size`` except for
        the last batch, which is smaller unless ``drop_last``.

    The checks here are O(1) (types, lengths, batch size); finite values are the
    caller's to check, once, not per epoch.

    >>> import fnn, numpy as np
    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [yb.tolist() for _, yb in batches(None, x, y, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    >>> k = fnn.random.key(0)
    >>> [b.tolist() for _, b in batches(k, x, y, 2)] == [b.tolist() for _, b in batches(k, x, y, 2)]
    True
    """
    x, y = check_pair(x, y)
    size = _checks.positive_int(batch_size, "batch_size")
    if not isinstance(shuffle, bool):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    if not isinstance(drop_last, bool):
        raise TypeError(f"drop_last must be True or False, got {drop_last!r}")
    if shuffle and not isinstance(key, _random.Key):
        raise TypeError(
            f"batches needs an fnn.random.Key to shuffle, got {key!r}; pass "
            "fnn.random.key(seed) or shuffle=False"
        )
    if indices is not None:
        indices = _checks.row_indices(indices, x.shape[0])
    n = x.shape[0] if indices is None else len(indices)
    stop = n - n % size if drop_last else n
    if not shuffle:
        return _in_order(x, y, size, stop, indices)
    assert key is not None
    return _shuffled(key, x, y, size, stop, indices)


def _in_order(
    x: Array, y: Array, size: int, stop: int, indices: Array | None
) -> Iterator[tuple[Array, Array]]:
    if indices is not None:
        take_x, take_y = _gather(x), _gather(y)
        for start in range(0, stop, size):
            idx = indices[start : start + size]
            yield take_x(idx), take_y(idx)
        return
    for start in range(0, stop, size):
        yield x[start : start + size].copy(), y[start : start + size].copy()


def _gather(a: Array) -> Callable[[Array], Array]:
    """The fastest row gather for ``a``: ``np.take`` on rows, fancy indexing for 1-D."""
    if a.ndim == 1:
        return a.__getitem__
    take: Callable[[Array], Array] = functools.partial(np.take, a, axis=0)
    return take


def _shuffled(
    key: _random.Key, x: Array, y: Array, size: int, stop: int, indices: Array | None
) -> Iterator[tuple[Array, Array]]:
    if indices is None:
        order = _random.permutation(key, x.shape[0])
    else:
        order = indices[_random.permutation(key, len(indices))]
    take_x, take_y = _gather(x), _gather(y)
    for start in range(0, stop, size):
        idx = order[start : start + size]
        yield take_x(idx), take_y(idx)
