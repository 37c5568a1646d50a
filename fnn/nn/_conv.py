"""Two-dimensional convolution over channels-last images, as matrix products."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import _checks
from .. import tree as _tree
from .._types import Array, Shape
from ..random import Key
from ._init import Initializer, initializer_of
from ._layer import Declared, Layer, param, readonly
from ._pool import Pair, first_max, pair, route_first_max
from ._registry import register

Padding = tuple[Pair, Pair]

_CHUNK_BYTES = 2**21  # the patches and GEMM output of one chunk of a batch (2 MiB)


@attrs.frozen(eq=False)
class Conv2DParams:
    """Parameters of :func:`conv2d`: kernels ``w`` of shape ``(kh, kw, in_channels,
    features)`` (a weight: L2 and weight decay act on it) and biases ``b`` ``(features,)``,
    both read-only."""

    w: Array = attrs.field(converter=readonly, metadata=_tree.WEIGHT)
    b: Array = attrs.field(converter=readonly)


def _explicit_padding(value: Any) -> Padding | None:
    """``((top, bottom), (left, right))`` from explicit pairs, or None for a name."""
    if isinstance(value, str):
        if value not in ("valid", "same"):
            raise ValueError(f"conv2d padding must be 'valid', 'same' or pairs, got {value!r}")
        return None
    try:
        (top, bottom), (left, right) = value
    except (TypeError, ValueError):
        raise TypeError(
            "conv2d padding must be 'valid', 'same' or ((top, bottom), (left, right)), "
            f"got {value!r}"
        ) from None
    sides = []
    for side in (top, bottom, left, right):
        if isinstance(side, bool) or not isinstance(side, (int, np.integer)) or side < 0:
            raise ValueError(f"conv2d padding needs ints >= 0, got {value!r}")
        sides.append(int(side))
    return (sides[0], sides[1]), (sides[2], sides[3])


def _same_padding(size: int, kernel: int, stride: int) -> Pair:
    """TensorFlow's "same": ``ceil(size / stride)`` outputs, the extra row on the far side."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@register("conv2d", types=(Conv2DParams,))
def conv2d(
    features: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: str | Sequence[Sequence[int]] = "valid",
    *,
    weight_init: str | Initializer = "he_normal",
    pool: int | Sequence[int] = 1,
) -> Layer[Conv2DParams, None]:
    """A 2-D convolution (cross-correlation, as PyTorch and JAX compute it) of channels-last
    images: ``z[n, i, j, f] = b[f] + sum_{p, q, c} x_pad[n, i sh + p, j sw + q, c]
    w[p, q, c, f]``, optionally max-pooled in the same layer.

    Args:
        features: the number of output channels.
        kernel_size: ``kh`` and ``kw``, an int or a pair.
        stride: ``sh`` and ``sw``, an int or a pair.
        padding: ``"valid"`` (none), ``"same"`` (TensorFlow's: ``ceil(size / stride)``
            outputs, zeros split evenly with the odd one after; PyTorch's ``"same"`` for
            stride 1 and odd kernels) or explicit ``((top, bottom), (left, right))``.
        weight_init: an initializer name or function ``(key, (kh, kw, in_channels,
            features), dtype) -> array``; the named ones see the kernels as a ``(kh * kw *
            in_channels, features)`` matrix (so ``fan_in = kh kw in_channels``, as for
            PyTorch and Keras); biases start at zero.
        pool: ``ph`` and ``pw`` (an int or a pair): the output is ``z`` max-pooled over
            ``ph x pw`` windows that tile it ("valid"), exactly as ``conv2d`` followed by
            ``max_pool(pool)`` (the same values, and gradients sent to each window's first
            maximum), but faster: the outputs no window covers are never computed, and
            the pooling reads contiguous blocks. The default, 1, does not pool.

    Shapes: ``x (batch, h, w, in_channels) -> y (batch, oh // ph, ow // pw, features)``
    with ``oh = (h + top + bottom - kh) // sh + 1`` (and ``ow`` alike); params ``w``
    ``(kh, kw, in_channels, features)`` and ``b`` ``(features,)``.

    Computed as matrix products, a chunk of the batch at a time (chunks of about 2 MiB of
    patches and outputs, fixed by the shapes, so the results do not depend on anything
    else): the chunk's patches are gathered into a buffer ``(chunk * outputs, kh * kw *
    in_channels + 1)`` (strided window views, one copy per kernel row and pooling offset;
    the last column is ones, for the bias), then one GEMM with the kernels and the bias.
    The rows come grouped by their offset in the pooling window, so pooling is a maximum
    over ``ph * pw`` contiguous blocks. Backward: the gradient goes back to each window's
    first maximum, ``[dw; db] += patches.T @ dz`` (one GEMM a chunk) and, only when asked,
    ``dx`` from one GEMM of ``dz`` with each kernel offset's ``w[p, q].T``, added back
    over the kernel offsets.

    >>> import fnn, numpy as np
    >>> layer = fnn.nn.conv2d(8, 3, padding="same")
    >>> p = layer.init(fnn.random.key(0), (28, 28, 1))
    >>> p.w.shape, layer.apply(p, np.ones((2, 28, 28, 1), np.float32)).shape
    ((3, 3, 1, 8), (2, 28, 28, 8))
    >>> fnn.nn.conv2d(8, 3, pool=2).output_shape((28, 28, 1))
    (13, 13, 8)
    """
    features = _checks.positive_int(features, "conv2d features")
    kh, kw = pair(kernel_size, "conv2d", "kernel_size")
    sh, sw = pair(stride, "conv2d", "stride")
    ph, pw = pair(pool, "conv2d", "pool")
    explicit = _explicit_padding(padding)
    init_w = initializer_of(weight_init, "weight_init")
    # Pooling offset (a, b) of a window holds the convolution outputs (ph I + a, pw J + b):
    # their patches start at rows (ph I + a) sh and columns (pw J + b) sw of the input.
    offsets = [(a, b) for a in range(ph) for b in range(pw)]  # row by row: the max's order

    def geometry(in_shape: Shape) -> tuple[int, Padding, Shape]:
        """Input channels, padding and the output shape for ``in_shape``."""
        shape = in_shape
        if len(shape) != 3:
            raise ValueError(
                f"conv2d expects inputs of shape (height, width, channels) per example, got "
                f"{shape}; add nn.reshape(({', '.join(map(str, shape))}, 1)) for one channel"
            )
        h, w, c = shape
        pad = explicit or (
            ((0, 0), (0, 0))
            if padding == "valid"
            else (_same_padding(h, kh, sh), _same_padding(w, kw, sw))
        )
        hp, wp = h + sum(pad[0]), w + sum(pad[1])
        if hp < kh or wp < kw:
            raise ValueError(
                f"conv2d's {kh}x{kw} kernel does not fit an input of {h}x{w} padded to {hp}x{wp}"
            )
        oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
        if oh < ph or ow < pw:
            raise ValueError(f"conv2d's {ph}x{pw} pool does not fit its {oh}x{ow} outputs")
        return c, pad, (oh // ph, ow // pw, features)

    def declare(in_shape: Shape) -> Declared[Conv2DParams, None]:
        c, _, out = geometry(in_shape)
        w, b = param((kh, kw, c, features), init_w), param((features,))
        return Declared(out, Conv2DParams(w, b))

    def checked(x: Array) -> tuple[Shape, Padding, Shape]:
        """The input's shape, its padding and the output shape ``(n, oh', ow', features)``."""
        _, pad, (out_h, out_w, _) = geometry(x.shape[1:])
        return x.shape, pad, (x.shape[0], out_h, out_w, features)

    def chunks(out: Shape, c: int, itemsize: int) -> list[slice]:
        """The batch in chunks of about equal size whose patches and outputs take about
        ``_CHUNK_BYTES``: each chunk's GEMM output is pooled, and its gradient used, while
        it is still in the core's cache (measured 10% off a CNN's step here). The chunks
        depend only on the shapes, so the sums over them come in one order."""
        n, out_h, out_w, _ = out
        if n == 0:
            return [slice(0, 0)]
        per_sample = len(offsets) * out_h * out_w * (kh * kw * c + 1 + features) * itemsize
        count = -(-n // max(1, _CHUNK_BYTES // per_sample))
        size = -(-n // count)
        return [slice(start, min(start + size, n)) for start in range(0, n, size)]

    def patches(x: Array, out: Shape) -> Array:
        """The patch matrix ``(ph * pw * m * oh' * ow', kh * kw * c + 1)`` of the padded
        chunk ``x`` of ``m`` samples: rows grouped by pooling offset, then sample and
        output position; columns by kernel offset and channel; the last column ones (for
        the bias). A one-channel input is gathered as the transpose (and a transposed
        view returned): copied row by row, its rows of ``kh * kw`` single values took 3x
        longer here."""
        m, (_, out_h, out_w, _), c = len(x), out, x.shape[3]
        k = kh * kw * c
        rows = ph * pw * m * out_h * out_w
        # Entry (a, b, n, i, j, p, q, ch) of the patches is x[n, (ph i + a) sh + p,
        # (pw j + b) sw + q, ch]: one strided view of x, copied in one call.
        s0, s1, s2, s3 = x.strides
        shape = (ph, pw, m, out_h, out_w)
        steps = (sh * s1, sw * s2, s0, ph * sh * s1, pw * sw * s2)
        if c == 1:
            cols_t = np.empty((k + 1, rows), x.dtype)
            cols_t[k] = 1
            view = as_strided(x, (kh, kw, *shape), (s1, s2, *steps), writeable=False)
            np.copyto(cols_t[:k].reshape(kh, kw, *shape), view)
            transposed: Array = cols_t.T
            return transposed
        cols = np.empty((rows, k + 1), x.dtype)
        cols[:, k] = 1
        view = as_strided(x, (*shape, kh, kw, c), (*steps, s1, s2, s3), writeable=False)
        np.copyto(cols[:, :k].reshape(*shape, kh, kw, c), view)
        return cols

    def kernels(params: Conv2DParams) -> Array:
        """The kernels as a ``(kh * kw * c + 1, features)`` matrix, the biases last."""
        return np.concatenate([params.w.reshape(-1, features), params.b[None]])

    def padded(x: Array, pad: Padding) -> Array:
        return x if pad == ((0, 0), (0, 0)) else np.pad(x, ((0, 0), *pad, (0, 0)))

    def infer(params: Conv2DParams, x: Array, state: None) -> Array:
        _, pad, out = checked(x)
        x, matrix = padded(x, pad), kernels(params)
        y = np.empty(out, x.dtype)
        for part in chunks(out, x.shape[3], x.itemsize):
            z = patches(x[part], out) @ matrix  # the one GEMM, bias included
            blocks = z.reshape(len(offsets), -1, *out[1:])
            np.maximum.reduce(blocks, axis=0, out=y[part])
        return y

    def forward(
        params: Conv2DParams, x: Array, state: None, key: Key | None
    ) -> tuple[Array, None, tuple[list[Array], list[list[Array]], list[slice], Shape]]:
        in_shape, pad, out = checked(x)
        x, matrix = padded(x, pad), kernels(params)
        y = np.empty(out, x.dtype)
        parts = chunks(out, x.shape[3], x.itemsize)
        kept, wins = [], []
        for part in parts:
            cols = patches(x[part], out)
            z = cols @ matrix  # the one GEMM of the chunk, bias included
            _, won = first_max(list(z.reshape(len(offsets), -1, *out[1:])), out=y[part])
            kept.append(cols)
            wins.append(won)
        return y, None, (kept, wins, parts, in_shape)

    def backward(
        params: Conv2DParams,
        residuals: tuple[list[Array], list[list[Array]], list[slice], Shape],
        dy: Array,
        need_dx: bool,
        grads: Conv2DParams,
    ) -> Array | None:
        kept, wins, parts, in_shape = residuals
        n, h, w, c = in_shape
        _, ((top, bottom), (left, right)), (out_h, out_w, _) = geometry((h, w, c))
        w_stack = params.w.reshape(kh * kw, c, features).transpose(0, 2, 1)  # (p q, f, c)
        dx = np.zeros((n, top + h + bottom, left + w + right, c), dy.dtype) if need_dx else None
        rows, columns = sh * ph * out_h, sw * pw * out_w  # the span of the outputs' patches
        both = np.zeros((kh * kw * c + 1, features), dy.dtype)  # [dw; db], summed by chunk
        for cols, won, part in zip(kept, wins, parts):
            chunk = dy[part]
            dz = np.empty((len(offsets), *chunk.shape), dy.dtype)
            route_first_max(chunk, won, list(dz))  # the pooling's gradient
            both += cols.T @ dz.reshape(-1, features)
            if dx is None:
                continue
            # dx: the rows of dz in output order (m, u, v) (u = ph i + a, v = pw j + b), one
            # GEMM per kernel offset (p, q) giving its (m, u, v, c) share, added to the
            # input rows u sh + p and columns v sw + q. Measured faster here than one GEMM
            # into the patches' layout and an add per pooling and kernel offset: these
            # adds run along whole rows of the image (v and c in one stride when sw = 1).
            m = len(chunk)
            dz_out = dz.reshape(ph, pw, m, out_h, out_w, features).transpose(2, 3, 0, 4, 1, 5)
            shares = np.matmul(np.ascontiguousarray(dz_out).reshape(-1, features), w_stack)
            shares = shares.reshape(kh, kw, m, ph * out_h, pw * out_w, c)
            target = dx[part]
            for p in range(kh):
                for q in range(kw):
                    target[:, p : p + rows : sh, q : q + columns : sw] += shares[p, q]
        grads.w.reshape(-1, features)[...] = both[:-1]
        grads.b[...] = both[-1]
        if dx is None:
            return None
        result: Array = dx[:, top : top + h, left : left + w]
        return result

    return Layer(declare, infer, forward, backward)
