"""Normalization layers: batch norm (statistics over the batch in training, running
averages in inference) and layer norm (statistics over each example's features).

Batch norm sits in a CNN's hot path, so it works on a ``(rows, channels)`` view of its
input in blocks of about ``_BLOCK`` entries: each block's temporaries stay in cache, the
per-channel vectors are tiled to a block's shape (NumPy's same-shape loops are about
twice as fast as its broadcasting ones), and the column sums are matrix-vector products
accumulated block by block (faster than ``sum(axis=0)``, and closer to the exact sum).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple, overload

import attrs
import numpy as np

from .. import _checks
from .. import tree as _tree
from .._types import Array, Shape
from ..random import Key
from ._dense import as_rows
from ._init import ones
from ._layer import Declared, Layer, param, readonly
from ._registry import register

_BLOCK = 32768
"""Entries per block: a block of the input, the output, a scratch block and the tiled
per-channel vectors (128 KiB each in float32) stay in a core's L2 cache."""


# -- records ---------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class BatchNormParams:
    """Parameters of :func:`batch_norm`: ``scale`` (ones) and ``bias`` (zeros), each
    ``(channels,)``. Neither is a weight: L2 penalties and ``weights_only`` weight decay
    leave them alone."""

    scale: Array = attrs.field(converter=readonly)
    bias: Array = attrs.field(converter=readonly)


@attrs.frozen(eq=False)
class BatchNormState:
    """Model state of :func:`batch_norm`: the running ``mean`` (starts at 0) and the
    running unbiased ``var`` (starts at 1), each ``(channels,)``."""

    mean: Array = attrs.field(converter=readonly)
    var: Array = attrs.field(converter=readonly)


@attrs.frozen(eq=False)
class LayerNormParams:
    """Parameters of :func:`layer_norm`: ``scale`` (ones) and ``bias`` (zeros), each
    ``(features,)``; neither is a weight."""

    scale: Array = attrs.field(converter=readonly)
    bias: Array = attrs.field(converter=readonly)


@attrs.frozen(eq=False)
class ScaleParams:
    """Parameters of :func:`rms_norm` and of :func:`layer_norm` without a bias: ``scale``
    ``(features,)`` (ones); not a weight."""

    scale: Array = attrs.field(converter=readonly)


_tree.register_type(ScaleParams, "norm.ScaleParams")


class _BatchNormSaved(NamedTuple):
    """What batch norm's backward needs: the input as ``(rows, channels)`` (a view, not a
    copy, of a contiguous input), the shift and the rest of the batch mean
    (``mean = shift + delta``, see :func:`_batch_norm_train`) and ``1 / sqrt(var + eps)``."""

    x: Array
    shift: Array
    delta: Array
    inv_std: Array


class _LayerNormSaved(NamedTuple):
    """What layer (and RMS) norm's backward needs: ``xhat`` ``(rows, features)`` and
    ``1 / sqrt(var + eps)`` ``(rows, 1)`` (the mean square's, for RMS norm)."""

    xhat: Array
    inv_std: Array


# -- argument and input checks ---------------------------------------------------------------


def _check_momentum(momentum: Any) -> float:
    value = _checks.real(momentum, "batch_norm momentum")
    if not 0 <= value < 1:
        raise ValueError(
            f"batch_norm momentum must be in [0, 1), got {momentum!r}: it is the weight of the "
            "old running value (PyTorch's momentum=0.1 is momentum=0.9 here)"
        )
    return value


def _check_eps(eps: Any, name: str) -> float:
    value = _checks.real(eps, f"{name} eps")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} eps must be a finite number > 0, got {eps!r}")
    return value


def _last_axis(in_shape: Shape, name: str, what: str) -> int:
    """The size of the last axis of a per-example shape (``channels`` or ``features``)."""
    if not in_shape:
        raise ValueError(
            f"{name} expects inputs of shape (batch, ..., {what}), got in_shape (): "
            f"each example needs a {what} axis"
        )
    return in_shape[-1]


# -- blockwise helpers on (rows, channels) arrays ------------------------------------------------


def _block_rows(rows: int, channels: int) -> int:
    """The number of rows in a block of about ``_BLOCK`` entries (at least one)."""
    return max(1, min(rows, _BLOCK // channels))


def _blocks(rows: int, step: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks of ``step`` rows covering ``rows``."""
    for start in range(0, rows, step):
        yield start, min(start + step, rows)


def _tile(v: Array, step: int, rows: int) -> Array:
    """``v`` ``(channels,)`` as a block for the blocks of ``step`` of ``rows`` rows: a
    contiguous ``(step, channels)`` copy when several blocks reuse it, else the
    ``(1, channels)`` view that broadcasts (for a single block a copy would cost as much
    as the operation it speeds up). Blocks slice it as ``tiled[:m]``."""
    if rows <= step:
        return v[np.newaxis]
    out: Array = np.broadcast_to(v, (step, v.shape[0])).copy()
    return out


def _column_sums(a: Array, step: int) -> Array:
    """``sum(a, axis=0)`` for ``a`` ``(rows, channels)``, one matrix-vector product per block.

    >>> _column_sums(np.arange(6.0).reshape(3, 2), 2)
    array([6., 9.])
    """
    ones = np.ones(min(step, a.shape[0]), a.dtype)
    total = np.zeros(a.shape[1], a.dtype)
    for i, j in _blocks(a.shape[0], step):
        total += ones[: j - i] @ a[i:j]
    return total


def _batch_norm_train(
    x: Array, scale: Array, bias: Array, eps: float
) -> tuple[Array, Array, Array, Array, Array]:
    """The training forward on ``x`` ``(rows, channels)``:
    ``(y, shift, delta, var, inv_std)``, the batch mean being ``shift + delta``.

    ``y = (x - mean) * (scale * inv_std) + bias`` with ``inv_std = 1 / sqrt(var + eps)``
    and ``var`` the biased batch variance. A first pass gives ``shift``, the mean up to
    the round-off of a long sum; the second works on ``x - shift`` (nearly exact, as
    ``x`` is near ``shift``): ``delta = mean(x - shift)`` (tiny) and
    ``var = mean((x - shift)**2) - delta**2`` (no cancellation, as ``delta**2 << var``),
    so a large mean costs no accuracy. The third scales ``x - shift`` in place:
    ``y = (x - shift) * k + (bias - delta * k)``, ``k = scale * inv_std``.
    """
    rows, channels = x.shape
    step = _block_rows(rows, channels)
    shift = _column_sums(x, step) / float(rows)
    shift_t = _tile(shift, step, rows)
    ones = np.ones(step, x.dtype)
    scratch = np.empty((step, channels), x.dtype)
    sums = np.zeros(channels, x.dtype)
    squares = np.zeros(channels, x.dtype)
    y = np.empty_like(x)
    for i, j in _blocks(rows, step):
        yb, sb = y[i:j], scratch[: j - i]
        np.subtract(x[i:j], shift_t[: j - i], out=yb)  # y holds x - shift until scaled
        sums += ones[: j - i] @ yb
        np.multiply(yb, yb, out=sb)
        squares += ones[: j - i] @ sb
    delta = sums / float(rows)
    var = np.maximum(squares / float(rows) - delta * delta, 0)
    inv_std = 1 / np.sqrt(var + eps)
    k = scale * inv_std
    k_t, offset_t = _tile(k, step, rows), _tile(bias - delta * k, step, rows)
    for i, j in _blocks(rows, step):
        yb = y[i:j]
        yb *= k_t[: j - i]
        yb += offset_t[: j - i]
    return y, shift, delta, var, inv_std


def _batch_norm_infer(x: Array, mean: Array, k: Array, bias: Array) -> Array:
    """``y = (x - mean) * k + bias`` per channel for ``x`` ``(rows, channels)``."""
    rows, channels = x.shape
    step = _block_rows(rows, channels)
    mean_t, k_t, bias_t = (_tile(v, step, rows) for v in (mean, k, bias))
    y = np.empty_like(x)
    for i, j in _blocks(rows, step):
        yb = y[i:j]
        np.subtract(x[i:j], mean_t[: j - i], out=yb)
        yb *= k_t[: j - i]
        yb += bias_t[: j - i]
    return y


def _batch_norm_backward(
    saved: _BatchNormSaved,
    scale: Array,
    dy: Array,
    need_dx: bool,
    dscale: Array,
    dbias: Array,
) -> Array | None:
    """Writes ``dscale``, ``dbias`` ``(channels,)``; returns ``dx`` ``(rows, channels)``.

    With ``xc = x - mean``, ``k = scale * inv_std`` and ``n`` rows:
    ``dbias = sum(dy)``, ``dscale = inv_std * sum(dy * xc)`` and
    ``dx = k * (dy - dbias / n) - xc * c`` with ``c = k * inv_std * dscale / n``, all
    computed on ``x - shift`` (``xc = (x - shift) - delta``) as the forward was:
    ``sum(dy * xc) = sum(dy * (x - shift)) - delta * dbias`` and
    ``dx = k * dy - (x - shift) * c - (k * dbias / n - delta * c)``.
    """
    x, shift, delta, inv_std = saved
    rows, channels = x.shape
    step = _block_rows(rows, channels)
    shift_t = _tile(shift, step, rows)
    ones = np.ones(step, x.dtype)
    scratch = np.empty((step, channels), x.dtype)
    sum_dy = np.zeros(channels, x.dtype)
    sum_dy_xs = np.zeros(channels, x.dtype)
    for i, j in _blocks(rows, step):
        sb, dyb = scratch[: j - i], dy[i:j]
        sum_dy += ones[: j - i] @ dyb
        np.subtract(x[i:j], shift_t[: j - i], out=sb)
        sb *= dyb
        sum_dy_xs += ones[: j - i] @ sb
    np.multiply(sum_dy_xs - delta * sum_dy, inv_std, out=dscale)
    dbias[...] = sum_dy
    if not need_dx:
        return None
    k = scale * inv_std
    c = k * inv_std * dscale / float(rows)
    k_t, c_t = _tile(k, step, rows), _tile(c, step, rows)
    offset_t = _tile(k * sum_dy / float(rows) - delta * c, step, rows)
    dx = np.empty_like(x)
    for i, j in _blocks(rows, step):
        m, sb, dxb = j - i, scratch[: j - i], dx[i:j]
        np.subtract(x[i:j], shift_t[:m], out=sb)
        sb *= c_t[:m]
        sb += offset_t[:m]
        np.multiply(dy[i:j], k_t[:m], out=dxb)
        dxb -= sb
    return dx


# -- batch norm ------------------------------------------------------------------------------


@register("batch_norm", types=(BatchNormParams, BatchNormState))
def batch_norm(momentum: float = 0.9, eps: float = 1e-5) -> Layer[BatchNormParams, BatchNormState]:
    """Batch normalization (Ioffe & Szegedy, 2015) over every axis but the last.

    Inputs are ``(batch, features)`` or ``(batch, h, w, channels)`` (any rank >= 2, the
    channels last); the output has the input's shape. With ``mean`` and ``var`` per
    channel, ``y = scale * (x - mean) / sqrt(var + eps) + bias``:

    * training (``forward``): the batch's mean and biased variance over the
      ``n = x.size / channels`` values of each channel, and the running statistics move
      towards the batch's: ``running = momentum * running + (1 - momentum) * batch``, the
      variance taken unbiased (``n / (n - 1)`` times the biased one), as PyTorch does
      (whose ``momentum=0.1`` is this ``momentum=0.9``);
    * inference (``infer``, ``apply(params, x, state)``): the running mean and variance.

    Args:
        momentum: the weight of the old running value, in ``[0, 1)``.
        eps: added to the variance, a finite number > 0.

    Params: :class:`BatchNormParams` ``scale`` (ones), ``bias`` (zeros), each
    ``(channels,)``; neither is a weight. State: :class:`BatchNormState` ``mean`` (zeros),
    ``var`` (ones). The layer has no configured width: params, state and the input's last
    axis must agree (a ValueError names what differs). Training needs ``n >= 2`` values
    per channel (a batch of one example of shape ``(features,)`` gives none to estimate a
    variance from).

    Backward, with ``xhat = (x - mean) / sqrt(var + eps)`` and sums over the ``n``
    values of a channel: ``dbias = sum(dy)``, ``dscale = sum(dy * xhat)``,
    ``dx = scale / sqrt(var + eps) * (dy - dbias / n - xhat * dscale / n)``.

    >>> import fnn, numpy as np
    >>> layer = batch_norm()
    >>> params, state = layer.init(fnn.random.key(0), (2,)), layer.init_state((2,))
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]], np.float32)
    >>> y, state, _ = layer.forward(params, x, state, None)
    >>> np.round(y, 3)
    array([[-1., -1.],
           [ 1.,  1.]], dtype=float32)
    >>> state.mean, state.var
    (array([0.2, 2. ], dtype=float32), array([ 1.1, 20.9], dtype=float32))
    """
    momentum = _check_momentum(momentum)
    eps = _check_eps(eps, "batch_norm")

    def declare(in_shape: Shape) -> Declared[BatchNormParams, BatchNormState]:
        c = _last_axis(in_shape, "batch_norm", "channels")
        per_example = math.prod(in_shape[:-1])  # the values of a channel in one example
        return Declared(
            in_shape,
            BatchNormParams(param((c,), ones), param((c,))),
            BatchNormState(param((c,)), param((c,), ones)),
            min_batch=-(-2 // per_example),
        )

    def infer(params: BatchNormParams, x: Array, state: BatchNormState) -> Array:
        x2 = as_rows(x)
        k = params.scale / np.sqrt(state.var + eps)
        return _batch_norm_infer(x2, state.mean, k, params.bias).reshape(x.shape)

    def forward(
        params: BatchNormParams, x: Array, state: BatchNormState, key: Key | None
    ) -> tuple[Array, BatchNormState, _BatchNormSaved]:
        x2 = as_rows(x)
        n = x2.shape[0]
        if n < 2:
            raise ValueError(
                f"batch_norm in training needs at least 2 values per channel to estimate "
                f"the variance (unbiased: n / (n - 1)), got input of shape {x.shape} "
                f"({n} per channel); use a larger batch"
            )
        y, shift, delta, var, inv_std = _batch_norm_train(x2, params.scale, params.bias, eps)
        moved = BatchNormState(
            momentum * state.mean + (1 - momentum) * (shift + delta),
            momentum * state.var + (1 - momentum) * (var * (n / (n - 1))),
        )
        return y.reshape(x.shape), moved, _BatchNormSaved(x2, shift, delta, inv_std)

    def backward(
        params: BatchNormParams,
        saved: _BatchNormSaved,
        dy: Array,
        need_dx: bool,
        grads: BatchNormParams,
    ) -> Array | None:
        x = saved.x
        dx = _batch_norm_backward(
            saved, params.scale, dy.reshape(x.shape), need_dx, grads.scale, grads.bias
        )
        return None if dx is None else dx.reshape(dy.shape)

    return Layer(declare, infer, forward, backward, stateful=True)


# -- layer norm and RMS norm -------------------------------------------------------------------


@overload
def layer_norm(
    eps: float = 1e-5, *, bias: Literal[True] = True
) -> Layer[LayerNormParams, None]: ...


@overload
def layer_norm(eps: float = 1e-5, *, bias: Literal[False]) -> Layer[ScaleParams, None]: ...


@overload
def layer_norm(
    eps: float = 1e-5, *, bias: bool = True
) -> Layer[LayerNormParams, None] | Layer[ScaleParams, None]: ...


@register("layer_norm", types=(LayerNormParams,))
def layer_norm(eps: float = 1e-5, *, bias: bool = True) -> Layer[Any, Any]:
    """Layer normalization (Ba et al., 2016): each example's values along the last axis
    normalized with their own mean and biased variance, the same in training and
    inference (no state):
    ``y = scale * (x - mean) / sqrt(var + eps) + bias``.

    Inputs are ``(batch, ..., features)`` (any rank >= 2: a sequence's every position is
    normalized on its own); the output has their shape.

    Args:
        eps: added to the variance, a finite number > 0.
        bias: whether there is a ``bias`` (``False``: ``y = scale * xhat``, as GPT-2
            without biases and nanoGPT's ``bias=False``).

    Params: :class:`LayerNormParams` ``scale`` (ones), ``bias`` (zeros), each
    ``(features,)``, or :class:`ScaleParams` ``scale`` without a bias; neither is a
    weight. They must agree with the input's last axis (a ValueError names both
    otherwise).

    Backward, with ``xhat = (x - mean) / sqrt(var + eps)``, ``g = dy * scale`` and means
    over the last axis: ``dscale = sum(dy * xhat)``, ``dbias = sum(dy)`` over all other
    axes, ``dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)``.

    >>> import fnn, numpy as np
    >>> layer = layer_norm()
    >>> params = layer.init(fnn.random.key(0), (3,))
    >>> np.round(layer.apply(params, np.array([[1.0, 2.0, 3.0]], np.float32)), 3)
    array([[-1.225,  0.   ,  1.225]], dtype=float32)
    """
    return _normalization("layer_norm", _check_eps(eps, "layer_norm"), True, bias)


@register("rms_norm", types=(ScaleParams,))
def rms_norm(eps: float = 1e-6) -> Layer[ScaleParams, None]:
    """Root-mean-square normalization (Zhang & Sennrich, 2019): each example's values
    along the last axis divided by their root mean square, then scaled, with no centering
    and no bias: ``y = scale * x / sqrt(mean(x**2) + eps)``, the same in training and
    inference.

    Inputs are ``(batch, ..., features)`` (any rank >= 2); the output has their shape.

    Args:
        eps: added to the mean square, a finite number > 0.

    Params: :class:`ScaleParams` ``scale`` ``(features,)`` (ones); not a weight.

    Backward, with ``r = 1 / sqrt(mean(x**2) + eps)``, ``xhat = x * r``, ``g = dy * scale``
    and means over the last axis: ``dscale = sum(dy * xhat)`` over all other axes,
    ``dx = r * (g - xhat * mean(g * xhat))``.

    >>> import fnn, numpy as np
    >>> layer = rms_norm()
    >>> params = layer.init(fnn.random.key(0), (2,))
    >>> np.round(layer.apply(params, np.array([[3.0, 4.0]], np.float32)), 3)
    array([[0.849, 1.131]], dtype=float32)
    """
    return _normalization("rms_norm", _check_eps(eps, "rms_norm"), False, False)


def _normalization(name: str, eps: float, center: bool, bias: bool) -> Layer[Any, Any]:
    """Layer norm (``center``) or RMS norm over the last axis, with or without a bias."""
    if not isinstance(bias, bool):
        raise TypeError(f"{name} bias must be True or False, got {bias!r}")

    def declare(in_shape: Shape) -> Declared[Any, None]:
        f = _last_axis(in_shape, name, "features")
        scale = param((f,), ones)
        return Declared(
            in_shape, LayerNormParams(scale, param((f,))) if bias else ScaleParams(scale)
        )

    def forward(
        params: Any, x: Array, state: None, key: Key | None
    ) -> tuple[Array, None, _LayerNormSaved]:
        x2 = as_rows(x)
        features = x2.shape[1]
        # np.add.reduce / n is x2.mean's arithmetic, bit for bit, without its Python layers
        xhat = (
            x2 - np.add.reduce(x2, axis=1, keepdims=True) / float(features) if center else x2.copy()
        )
        var = np.einsum("ij,ij->i", xhat, xhat)[:, None] / float(features)
        inv_std = 1 / np.sqrt(var + eps)
        xhat *= inv_std
        y = xhat * params.scale
        if bias:
            y += params.bias
        return y.reshape(x.shape), None, _LayerNormSaved(xhat, inv_std)

    def infer(params: Any, x: Array, state: None) -> Array:
        return forward(params, x, state, None)[0]

    def backward(
        params: Any, saved: _LayerNormSaved, dy: Array, need_dx: bool, grads: Any
    ) -> Array | None:
        xhat, inv_std = saved
        dy2 = dy.reshape(xhat.shape)
        step = _block_rows(*xhat.shape)
        np.copyto(grads.scale, _column_sums(dy2 * xhat, step))
        if bias:
            np.copyto(grads.bias, _column_sums(dy2, step))
        if not need_dx:
            return None
        g: Array = dy2 * params.scale
        features = xhat.shape[1]
        mean_gx = np.einsum("ij,ij->i", g, xhat)[:, None] / float(features)
        if center:
            g -= np.add.reduce(g, axis=1, keepdims=True) / float(features)
        g -= xhat * mean_gx
        g *= inv_std
        return g.reshape(dy.shape)

    return Layer(declare, infer, forward, backward)
