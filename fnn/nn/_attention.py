"""Multi-head self-attention over sequences, and its cached decoding step.

Layout. The scores of one head are kept as ``(keys, queries)``: ``s = k @ (c q)^T`` with
``c = 1 / sqrt(dh)``, the softmax taken over axis -2 (the keys). Three habits make a
position's output the same bits whatever else is in the batch (padding) and whether it is
computed in a whole sequence or one step at a time from a cache (:func:`attend_step`):

- every matrix product is a GEMM over whole rows: with OpenBLAS an entry of the layer's
  ``a @ b`` did not depend on how many rows ``a`` has (checked at 8 to 384 features;
  not so for every shape: with 65 columns, or a 512-row ``b`` beyond 16 rows of ``a``,
  OpenBLAS's kernels sum in another order), and extra keys that get no weight add exact
  zeros. NumPy hands a one-row product to GEMV (another order of summation), so a single
  row is multiplied as two (:func:`_rows_product`);
- the columns of a score product (the queries) are padded to a multiple of
  :data:`_COLUMNS`, so that every query falls in a full tile of the GEMM kernel (the
  narrower kernels of a ragged edge sum in another order);
- the softmax sums over a non-contiguous axis, which NumPy adds in order (a sum along the
  contiguous axis is pairwise, its grouping depending on the length).
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple, overload

import attrs
import numpy as np

from .. import _checks
from .. import random as _random
from .. import tree as _tree
from .._types import Array, Shape
from ..random import Key
from ._dense import rows_product
from ._init import Initializer, initializer_of
from ._layer import Declared, Decoder, Layer, param, params_dtype, readonly
from ._registry import register

_COLUMNS = 16
"""The query columns of a score product are padded to a multiple of this: the widest tile
of OpenBLAS's x86-64 GEMM kernels in float32 and float64 (see the module docstring)."""


@attrs.frozen(eq=False)
class AttentionParams:
    """Parameters of :func:`attention` with ``bias=True``.

    ``w_qkv`` ``(features, 3 * features)`` projects each position to its query, key and
    value (in that order: ``q = x @ w_qkv[:, :f]``, as nanoGPT's ``c_attn``; PyTorch's
    ``in_proj_weight`` is ``w_qkv.T``), ``b_qkv`` ``(3 * features,)`` their biases;
    ``w_out`` ``(features, features)`` and ``b_out`` ``(features,)`` project the heads'
    concatenated outputs. The ``w_*`` are weights (L2 and weight decay act on them).
    """

    w_qkv: Array = attrs.field(converter=readonly, metadata=_tree.WEIGHT)
    w_out: Array = attrs.field(converter=readonly, metadata=_tree.WEIGHT)
    b_qkv: Array = attrs.field(converter=readonly)
    b_out: Array = attrs.field(converter=readonly)


@attrs.frozen(eq=False)
class AttentionParamsNoBias:
    """Parameters of :func:`attention` with ``bias=False``: ``w_qkv`` and ``w_out`` as in
    :class:`AttentionParams`, without biases (GPT-2 style models often drop them)."""

    w_qkv: Array = attrs.field(converter=readonly, metadata=_tree.WEIGHT)
    w_out: Array = attrs.field(converter=readonly, metadata=_tree.WEIGHT)


AnyAttentionParams = AttentionParams | AttentionParamsNoBias
"""The params of an :func:`attention` layer, with or without biases."""


def _biases(params: AnyAttentionParams) -> tuple[Array | None, Array | None]:
    if isinstance(params, AttentionParams):
        return params.b_qkv, params.b_out
    return None, None


def _rows_product(rows: Array, w: Array, b: Array | None) -> Array:
    """``rows @ w + b`` for ``rows`` ``(n, in)``: the same bits for a row whatever ``n``
    is (:func:`fnn.nn._dense.rows_product`)."""
    y = rows_product(rows, w)
    if b is not None:
        y += b
    return y


def _columns(t: int) -> int:
    """``t`` query columns rounded up to a multiple of :data:`_COLUMNS`."""
    return -(-t // _COLUMNS) * _COLUMNS


def _softmax_keys(s: Array, causal: Array | None, blocked: Array | None, guard: bool) -> Array:
    """The softmax over axis -2 (the keys) of scores ``(..., keys, queries)``, in place:
    ``causal`` (0, or -inf for no weight, broadcasting to ``s``) is added to the scores,
    ``blocked`` entries (a bool array broadcasting to ``s``) get no weight, and with
    ``guard`` a query whose every key is blocked gets zeros (never NaN: its max is taken
    as 0, so its scores stay -inf and their exp 0, and its total of 0 is divided as 1)."""
    if causal is not None:
        s += causal  # one add; a score plus 0 is the score
    if blocked is not None:
        np.copyto(s, -np.inf, where=blocked)
    top = s.max(axis=-2, keepdims=True)
    if guard:
        np.copyto(top, 0.0, where=np.isneginf(top))
    s -= top
    np.exp(s, out=s)
    total = np.add.reduce(s, axis=-2, keepdims=True)
    if guard:
        np.copyto(total, 1.0, where=total == 0)
    s /= total
    return s


def _causal(t: int, columns: int, dtype: np.dtype[Any]) -> Array:
    """``(1, 1, t, columns)``, added to the scores ``(keys, queries)``: -inf for the keys
    after the query, 0 elsewhere (an add costs half a masked copy)."""
    later = np.arange(t)[:, None] > np.arange(columns)
    return np.where(later, -np.inf, 0.0).astype(dtype)[None, None]


def _blocked(mask: Array | None) -> Array | None:
    """Which scores ``(keys, queries)`` get no weight for being at padding keys (``mask``
    False), broadcasting to ``(batch, heads, t, columns)``."""
    return None if mask is None else ~mask[:, None, :, None]


class AttentionCache(NamedTuple):
    """The keys and values of the positions decoded so far, each ``(batch, heads,
    max_length, features // heads)``: what an :func:`attention` layer's decoder keeps
    (``layer.decoder.start(params, batch, max_length)`` makes an empty one) and
    :func:`attend_step` writes into."""

    keys: Array
    values: Array


class _Saved(NamedTuple):
    """What :func:`attention`'s backward needs from its forward."""

    x: Array  # (batch * time, features)
    qkv: Array  # (batch, time, 3, heads, dh)
    p: Array  # (batch, heads, time, columns): the probabilities, (keys, queries)
    dropped: Array | None  # p[..., :time] * kept, with dropout
    kept: Array | None  # the dropout mask over 1 - rate (keys, queries), or None
    merged: Array  # (batch * time, features): the heads' outputs side by side


def _attend(
    params: AnyAttentionParams,
    heads: int,
    causal: bool,
    x: Array,
    mask: Array | None,
    drop: tuple[Key, float] | None,
) -> tuple[Array, _Saved]:
    """The layer's forward (``drop``: the key and the rate of dropout, in training)."""
    b_qkv, b_out = _biases(params)
    batch, t, f = x.shape
    dh = f // heads
    x2 = x.reshape(batch * t, f)
    qkv = _rows_product(x2, params.w_qkv, b_qkv).reshape(batch, t, 3, heads, dh)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (batch, heads, t, dh)
    columns = _columns(t)
    scaled_qt = np.empty((batch, heads, dh, columns), x.dtype)
    np.multiply(q.transpose(0, 1, 3, 2), x.dtype.type(1 / math.sqrt(dh)), out=scaled_qt[..., :t])
    scaled_qt[..., t:] = 0
    p = _softmax_keys(
        np.matmul(k, scaled_qt),
        _causal(t, columns, x.dtype) if causal else None,
        _blocked(mask),
        guard=mask is not None,
    )
    dropped = kept = None
    weights = p[..., :t]
    if drop is not None:
        key, rate = drop
        kept = _random.bernoulli(key, 1.0 - rate, weights.shape).astype(x.dtype)
        kept /= 1.0 - rate
        weights = dropped = weights * kept
    merged = np.empty((batch, t, heads, dh), x.dtype)
    np.matmul(weights.swapaxes(-1, -2), v, out=merged.transpose(0, 2, 1, 3))
    merged2 = merged.reshape(batch * t, f)
    y = _rows_product(merged2, params.w_out, b_out).reshape(batch, t, f)
    return y, _Saved(x2, qkv, p, dropped, kept, merged2)


def _backward(
    params: AnyAttentionParams,
    heads: int,
    saved: _Saved,
    dy: Array,
    need_dx: bool,
    grads: AnyAttentionParams,
) -> Array | None:
    x2, qkv, p, dropped, kept, merged = saved
    batch, t, f = dy.shape
    dh = f // heads
    c = dy.dtype.type(1 / math.sqrt(dh))
    dy2 = dy.reshape(batch * t, f)
    np.matmul(merged.T, dy2, out=grads.w_out)
    dmerged = dy2 @ params.w_out.T
    # D = sum over keys of dP * p (the softmax's backward) = do . o, per head and query
    rows = (batch * t, heads, dh)
    d = np.einsum("rhd,rhd->rh", dmerged.reshape(rows), merged.reshape(rows)).reshape(
        batch, t, heads
    )
    d = (d.transpose(0, 2, 1) * c)[:, :, None, :]  # c D, (batch, heads, 1, t)
    do = dmerged.reshape(batch, t, heads, dh).transpose(0, 2, 1, 3)  # (batch, heads, t, dh)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    dqkv = np.empty((batch, t, 3, heads, dh), dy.dtype)
    dq, dk, dv = (dqkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    weights = p[..., :t]
    np.matmul(weights if dropped is None else dropped, do, out=dv)
    # c = 1 / sqrt(dh) goes in with dO's transposed copy (c dO^T, one pass either way),
    # so the product below is c dP and what follows c dS: dk and dq need no scaling
    scaled_dot = np.empty((batch, heads, dh, t), dy.dtype)  # contiguous: a faster product
    np.multiply(do.swapaxes(-1, -2), c, out=scaled_dot)
    ds = np.matmul(v, scaled_dot)  # c dP, (keys, queries)
    if kept is not None:
        ds *= kept
    ds -= d
    ds *= weights  # the scores' gradient (times c): p (dP - D); zero where p is
    np.matmul(ds, q, out=dk)
    np.matmul(ds.swapaxes(-1, -2), k, out=dq)
    dqkv2 = dqkv.reshape(batch * t, 3 * f)
    np.matmul(x2.T, dqkv2, out=grads.w_qkv)
    if isinstance(grads, AttentionParams):
        np.add.reduce(dqkv2, axis=0, out=grads.b_qkv)
        np.add.reduce(dy2, axis=0, out=grads.b_out)
    return (dqkv2 @ params.w_qkv.T).reshape(batch, t, f) if need_dx else None


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"attention {what} must be True or False, got {value!r}")
    return bool(value)


@overload
def attention(
    heads: int,
    causal: bool = ...,
    dropout: float = ...,
    *,
    bias: Literal[True] = True,
    weight_init: str | Initializer = ...,
    out_init: str | Initializer | None = ...,
) -> Layer[AttentionParams, None]: ...


@overload
def attention(
    heads: int,
    causal: bool = ...,
    dropout: float = ...,
    *,
    bias: Literal[False],
    weight_init: str | Initializer = ...,
    out_init: str | Initializer | None = ...,
) -> Layer[AttentionParamsNoBias, None]: ...


@overload
def attention(
    heads: int,
    causal: bool = ...,
    dropout: float = ...,
    *,
    bias: bool = True,
    weight_init: str | Initializer = ...,
    out_init: str | Initializer | None = ...,
) -> Layer[AnyAttentionParams, None]: ...


@register("attention", types=(AttentionParams, AttentionParamsNoBias))
def attention(
    heads: int,
    causal: bool = False,
    dropout: float = 0.0,
    *,
    bias: bool = True,
    weight_init: str | Initializer = "glorot_uniform",
    out_init: str | Initializer | None = None,
) -> Layer[Any, None]:
    """Multi-head self-attention (Vaswani et al., 2017) over sequences ``(batch, time,
    features)``, ``features`` divisible by ``heads``.

    Each position's ``q, k, v = split(x @ w_qkv + b_qkv)``, each split into ``heads``
    heads of ``dh = features // heads``; per head ``o = softmax(q k^T / sqrt(dh) + M) v``
    (the softmax over the keys, max-shifted, ``M`` -inf where a key is masked);
    ``y = concat(o) @ w_out + b_out``. Masks are data: with ``causal`` a query sees no
    later key; the ``mask`` handed to ``apply(params, x, mask=mask)`` (or by a
    combinator), a bool ``(batch, time)`` array, marks the valid positions, and a padding
    key gets no weight from any query. A query that sees no key at all (left padding
    under ``causal``, an all-padding row) gets zero weights: its ``o`` is zeros (``y`` is
    ``b_out``) and it passes no gradient to the scores, never NaN.

    Dropout (training only, the mask from the forward's key) zeroes attention weights
    with probability ``dropout`` and scales the others by ``1 / (1 - dropout)``, as
    PyTorch's ``scaled_dot_product_attention(dropout_p=...)``; the layer is ``stochastic``
    only when ``dropout > 0``.

    A causal layer decodes one position at a time (its :class:`Decoder`, which
    :func:`fnn.generate` runs): the cache is an :class:`AttentionCache` of the keys and
    values so far, and each step is :func:`attend_step`. A non-causal layer has no
    decoder (every position sees the later ones).

    A position's output is the same bits in float32 and float64 whatever pads it in its
    batch, and the same bits as :func:`attend_step` computes from a cache (with NumPy's
    OpenBLAS; see this module's docstring for what that rests on).

    Args:
        heads: the number of heads, dividing ``features``.
        causal: mask the keys after each query (a decoder, GPT).
        dropout: the rate of dropout on the attention weights, in ``[0, 1)``.
        bias: whether the projections have biases (``b_qkv``, ``b_out``, zeros at first).
        weight_init: the initializer of ``w_qkv`` (and of ``w_out`` by default): a
            registered name (``"glorot_uniform"``, the default, which PyTorch's
            ``MultiheadAttention`` gives ``in_proj_weight``), ``"normal(<std>)"``
            (GPT-2's ``"normal(0.02)"``), or a function (a spec can name fnn's, as
            ``nn.normal(0.02)``; one of your own leaves the layer without a spec).
        out_init: the initializer of ``w_out``, likewise; None: ``weight_init``. GPT-2
            scales the projections into the residual stream to ``0.02 / sqrt(2 *
            layers)``: ``out_init=f"normal({0.02 / math.sqrt(2 * layers)})"``.

    Shapes: ``x (batch, time, features) -> y (batch, time, features)``; params
    :class:`AttentionParams` (``bias=True``) or :class:`AttentionParamsNoBias`.

    Backward, per head, with ``P`` the weights (dropped: ``P'``) and ``dO`` the gradient
    of ``o``: ``dv = P'^T dO``, ``dP = dO v^T`` (times the dropout mask), ``dS = P (dP -
    D)`` with ``D = sum(dO * o)`` per query, ``dq = dS k / sqrt(dh)``, ``dk = dS^T q /
    sqrt(dh)``; then the projections' gradients as for :func:`dense`.

    Raises:
        TypeError: ``heads`` not an int, ``causal`` or ``bias`` not a bool, an
            initializer neither a name nor a function; (training forward) no key with
            dropout.
        ValueError: ``heads < 1``, ``dropout`` outside ``[0, 1)``, an unknown
            initializer name; (from ``init`` and the checked calls) inputs not ``(time,
            features)`` per example, or ``features`` not divisible by ``heads``.

    >>> import fnn, numpy as np
    >>> layer = fnn.nn.attention(2, causal=True)
    >>> params = layer.init(fnn.random.key(0), (5, 8))
    >>> params.w_qkv.shape, params.w_out.shape
    ((8, 24), (8, 8))
    >>> x = fnn.random.normal(fnn.random.key(1), (3, 5, 8))
    >>> layer.apply(params, x).shape
    (3, 5, 8)
    >>> mask = np.array([[True] * 5, [True] * 3 + [False] * 2, [False] * 2 + [True] * 3])
    >>> y = layer.apply(params, x, mask=mask)
    >>> bool(np.isfinite(y).all()), bool((y[2, :2] == 0).all())  # nothing to see: zeros
    (True, True)
    """
    h = _checks.positive_int(heads, "attention heads")
    is_causal = _flag(causal, "causal")
    rate = _checks.fraction(dropout, "attention dropout")
    has_bias = _flag(bias, "bias")
    init_w = initializer_of(weight_init, "weight_init")
    init_out = init_w if out_init is None else initializer_of(out_init, "out_init")

    def declare(in_shape: Shape) -> Declared[AnyAttentionParams, None]:
        if len(in_shape) != 2:
            raise ValueError(
                f"attention expects inputs of shape (time, features) per example, got {in_shape}"
            )
        f = in_shape[1]
        if f % h:
            raise ValueError(f"attention: {f} features do not split into {h} heads")
        w_qkv, w_out = param((f, 3 * f), init_w), param((f, f), init_out)
        found: AnyAttentionParams = (
            AttentionParams(w_qkv, w_out, param((3 * f,)), param((f,)))
            if has_bias
            else AttentionParamsNoBias(w_qkv, w_out)
        )
        return Declared(in_shape, found)

    def infer(
        params: AnyAttentionParams, x: Array, state: None, mask: Array | None = None
    ) -> Array:
        return _attend(params, h, is_causal, x, mask, None)[0]

    def forward(
        params: AnyAttentionParams,
        x: Array,
        state: None,
        key: Key | None,
        mask: Array | None = None,
    ) -> tuple[Array, None, _Saved]:
        drop = None
        if rate > 0:
            if not isinstance(key, Key):
                raise TypeError(
                    f"attention with dropout needs an fnn.random.Key in training, got {key!r}"
                )
            drop = (key, rate)
        y, saved = _attend(params, h, is_causal, x, mask, drop)
        return y, None, saved

    def backward(
        params: AnyAttentionParams,
        saved: _Saved,
        dy: Array,
        need_dx: bool,
        grads: AnyAttentionParams,
    ) -> Array | None:
        return _backward(params, h, saved, dy, need_dx, grads)

    def start(params: AnyAttentionParams, batch: int, length: int) -> AttentionCache:
        f = params.w_qkv.shape[0]
        shape = (batch, h, length, f // h)
        dtype = params_dtype(params)
        return AttentionCache(np.zeros(shape, dtype), np.zeros(shape, dtype))

    def step(
        params: AnyAttentionParams,
        x: Array,
        state: None,
        cache: AttentionCache,
        t: int,
        mask: Array | None = None,
    ) -> Array:
        return attend_step(params, h, x, cache.keys, cache.values, t, mask)

    decoder = Decoder(start, step) if is_causal else None
    return Layer(
        declare, infer, forward, backward, stochastic=rate > 0, masked=True, decoder=decoder
    )


def attend_step(
    params: AnyAttentionParams,
    heads: int,
    x_new: Array,
    keys: Array,
    values: Array,
    length: int,
    mask: Array | None = None,
) -> Array:
    """One step of cached decoding through a causal :func:`attention` layer: the output
    at position ``length`` from its input ``x_new`` and the keys and values of the
    positions before it, which are in the cache.

    The new position's key and value are written into ``keys[:, :, length]`` and
    ``values[:, :, length]`` (the caller owns the buffers and nothing else changes them);
    it then attends to positions ``0 .. length``. Run it for ``length = 0, 1, ...``: each
    result is the bits of the full causal forward's row at that position (with NumPy's
    OpenBLAS), without recomputing the earlier positions. Inference: no dropout. It is
    the step of a causal layer's :class:`Decoder` (``layer.decoder``), which keeps the
    buffers in an :class:`AttentionCache`.

    Args:
        params: the layer's :class:`AttentionParams` or :class:`AttentionParamsNoBias`.
        heads: the layer's number of heads.
        x_new: ``(batch, features)``, the new position's input, of the params' dtype.
        keys, values: the cache, ``(batch, heads, max_length, features // heads)`` of the
            params' dtype, e.g. ``np.zeros(...)`` or ``layer.decoder.start(params, batch,
            max_length)``'s; writable.
        length: how many positions the cache holds, ``0 <= length < max_length``.
        mask: the valid positions ``(batch, max_length)`` (bool), as the layer's mask:
            keys at ``False`` get no weight (left-padded prompts); None: all valid.

    Returns:
        ``(batch, features)``, the layer's output at position ``length``.

    Raises:
        TypeError: params that are not an attention layer's, arrays of another kind or
            dtype, a read-only cache.
        ValueError: shapes that do not agree, ``length`` outside ``[0, max_length)``,
            NaN or Inf in ``x_new``.

    >>> import fnn, numpy as np
    >>> layer = fnn.nn.attention(2, causal=True)
    >>> params = layer.init(fnn.random.key(0), (4, 6))
    >>> x = fnn.random.normal(fnn.random.key(1), (1, 4, 6))
    >>> keys, values = np.zeros((1, 2, 4, 3), np.float32), np.zeros((1, 2, 4, 3), np.float32)
    >>> steps = [fnn.nn.attend_step(params, 2, x[:, i], keys, values, i) for i in range(4)]
    >>> bool((np.stack(steps, axis=1) == layer.apply(params, x)).all())
    True
    """
    if not isinstance(params, (AttentionParams, AttentionParamsNoBias)):
        raise TypeError(
            f"attend_step needs an attention layer's params, got {type(params).__name__}"
        )
    h = _checks.positive_int(heads, "attend_step heads")
    dtype = params_dtype(params)
    f = params.w_qkv.shape[0]
    if f % h:
        raise ValueError(f"attend_step: {f} features do not split into {h} heads")
    x_new = _checks.finite(_checks.float_array(x_new, "attend_step's x_new", dtype), "x_new")
    if x_new.ndim != 2 or x_new.shape[1] != f:
        raise ValueError(f"attend_step's x_new must be (batch, {f}), got {x_new.shape}")
    batch, dh = x_new.shape[0], f // h
    for name, cache in (("keys", keys), ("values", values)):
        _checks.float_array(cache, f"attend_step's {name}", dtype)
        if cache.ndim != 4 or cache.shape[:2] != (batch, h) or cache.shape[3] != dh:
            raise ValueError(
                f"attend_step's {name} must be (batch, heads, max_length, dh) = ({batch}, "
                f"{h}, max_length, {dh}), got {cache.shape}"
            )
        if not cache.flags.writeable:
            raise TypeError(f"attend_step writes into {name}: it must be writable")
    if keys.shape != values.shape:
        raise ValueError(f"attend_step: keys {keys.shape} and values {values.shape} differ")
    limit = keys.shape[2]
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)):
        raise TypeError(f"attend_step's length must be an int, got {type(length).__name__}")
    if not 0 <= length < limit:
        raise ValueError(f"attend_step's length must be in [0, {limit}), got {length}")
    if mask is not None and not (
        isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == (batch, limit)
    ):
        got = f"{mask.dtype} {mask.shape}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(f"attend_step's mask must be a bool array ({batch}, {limit}), got {got}")

    b_qkv, b_out = _biases(params)
    qkv = _rows_product(x_new, params.w_qkv, b_qkv).reshape(batch, 3, h, dh)
    keys[:, :, length] = qkv[:, 1]
    values[:, :, length] = qkv[:, 2]
    seen = int(length) + 1
    scaled_qt = np.zeros((batch, h, dh, _COLUMNS), dtype)
    np.multiply(qkv[:, 0], dtype.type(1 / math.sqrt(dh)), out=scaled_qt[..., 0])
    blocked = None if mask is None else ~mask[:, None, :seen, None]
    p = _softmax_keys(
        np.matmul(keys[:, :, :seen], scaled_qt), None, blocked, guard=mask is not None
    )
    o = np.matmul(p[..., :2].swapaxes(-1, -2), values[:, :, :seen])[:, :, 0]
    return _rows_product(o.reshape(batch, f), params.w_out, b_out)
