"""Activations and other layers without params or state (their params are ``None``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _checks
from .._types import Array, Shape
from ..random import Key
from ._layer import Declared, Layer
from ._registry import register


def parameterless(
    forward: Callable[[Array], tuple[Array, Any]],
    backward: Callable[[Any, Array], Array],
    *,
    output_shape: Callable[[Shape], Shape] | None = None,
) -> Layer[None, None]:
    """A layer without params or state from two functions of arrays.

    Args:
        forward: ``forward(x) -> (y, residuals)``, for inference and training alike.
        backward: ``backward(residuals, dy) -> dx``.
        output_shape: ``output_shape(in_shape) -> out_shape`` (default: the same shape);
            a ValueError there refuses an input shape.

    The layer computes ``dx`` only when asked. Register its constructor with
    :func:`register` (``activation=True`` for an activation) to name it and to save models
    that use it.

    Returns:
        A ``Layer[None, None]``: no params (``init`` gives ``None``), no state, not stochastic,
        and no ``spec`` until a registered constructor returns it.

    >>> import fnn, numpy as np
    >>> square = fnn.nn.parameterless(lambda x: (x * x, x), lambda x, dy: 2 * x * dy)
    >>> square.apply(None, np.array([[1.0, -3.0]], np.float32))
    array([[1., 9.]], dtype=float32)
    >>> square.init(fnn.random.key(0), (2,)), square.output_shape((2,))
    (None, (2,))
    """

    def declare(in_shape: Shape) -> Declared[None, None]:
        return Declared(in_shape if output_shape is None else output_shape(in_shape))

    def infer(params: None, x: Array, state: None) -> Array:
        return forward(x)[0]

    def train_forward(
        params: None, x: Array, state: None, key: Key | None
    ) -> tuple[Array, None, Any]:
        y, residuals = forward(x)
        return y, None, residuals

    def train_backward(
        params: None, res: Any, dy: Array, need_dx: bool, grads: None
    ) -> Array | None:
        return backward(res, dy) if need_dx else None

    return Layer(declare, infer, train_forward, train_backward)


def _relu_forward(x: Array) -> tuple[Array, Array]:
    y = np.maximum(x, 0)
    return y, y


@register("relu", activation=True)
def relu() -> Layer[None, None]:
    """``y = max(x, 0)``; backward ``dx = dy * (x > 0)`` (zero at the kink).

    Shapes: any ``(batch, ...)``, kept; no params.

    >>> import fnn, numpy as np
    >>> fnn.nn.relu().apply(None, np.array([[-1.0, 0.0, 2.0]], np.float32))
    array([[0., 0., 2.]], dtype=float32)
    """
    return parameterless(_relu_forward, lambda y, dy: np.multiply(dy, y > 0))


@register("leaky_relu", activation=True)
def leaky_relu(negative_slope: float = 0.01) -> Layer[None, None]:
    """``y = x`` where ``x > 0``, else ``negative_slope * x``; backward ``dx = dy`` where
    ``x > 0``, else ``negative_slope * dy``.

    Shapes: any ``(batch, ...)``, kept; no params.

    Args:
        negative_slope: the slope for ``x <= 0``, a finite number.

    Raises:
        TypeError: ``negative_slope`` is not a number.
        ValueError: ``negative_slope`` is not finite.

    >>> import fnn, numpy as np
    >>> fnn.nn.leaky_relu(0.1).apply(None, np.array([[-2.0, 0.0, 3.0]], np.float32))
    array([[-0.2,  0. ,  3. ]], dtype=float32)
    """
    slope = _checks.real(negative_slope, "negative_slope")
    if not math.isfinite(slope):
        raise ValueError(f"leaky_relu needs a finite negative_slope, got {negative_slope}")

    def forward(x: Array) -> tuple[Array, Array]:
        positive = x > 0
        return np.where(positive, x, x * slope), positive

    def backward(positive: Array, dy: Array) -> Array:
        return np.where(positive, dy, dy * slope)

    return parameterless(forward, backward)


def _sigmoid_forward(x: Array) -> tuple[Array, Array]:
    # e = exp(-|x|) never overflows; sigmoid'(x) = e / (1 + e)**2 on both sides.
    e = np.exp(-np.abs(x))
    denom = 1 + e
    y = np.where(x >= 0, 1 / denom, e / denom)
    return y, e / (denom * denom)


@register("sigmoid", activation=True)
def sigmoid() -> Layer[None, None]:
    """``y = 1 / (1 + exp(-x))``, computed without overflow; ``dx = dy * y * (1 - y)``.

    Shapes: any ``(batch, ...)``, kept; no params.

    >>> import fnn, numpy as np
    >>> fnn.nn.sigmoid().apply(None, np.array([[-1e4, 0.0, 1e4]], np.float32))
    array([[0. , 0.5, 1. ]], dtype=float32)
    """
    return parameterless(_sigmoid_forward, lambda slope, dy: dy * slope)


def _tanh_forward(x: Array) -> tuple[Array, Array]:
    y = np.tanh(x)
    return y, y


@register("tanh", activation=True)
def tanh() -> Layer[None, None]:
    """``y = tanh(x)``; ``dx = dy * (1 - y**2)``.

    Shapes: any ``(batch, ...)``, kept; no params.

    >>> import fnn, numpy as np
    >>> fnn.nn.tanh().apply(None, np.array([[-1e4, 0.0, 1e4]], np.float32))
    array([[-1.,  0.,  1.]], dtype=float32)
    """
    return parameterless(_tanh_forward, lambda y, dy: dy * (1 - y * y))


def _softmax_forward(x: Array) -> tuple[Array, Array]:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    return y, y


def _softmax_backward(y: Array, dy: Array) -> Array:
    dx: Array = y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    return dx


@register("softmax", activation=True)
def softmax() -> Layer[None, None]:
    """``y = exp(x) / sum(exp(x))`` over the last axis (shifted by the max: no overflow).

    Backward: ``dx = y * (dy - sum(dy * y))``. For training, prefer logits with
    :func:`fnn.losses.softmax_cross_entropy`; a model ending in ``softmax`` pairs with
    :func:`fnn.losses.categorical_cross_entropy`.

    Shapes: any ``(batch, ..., classes)``, kept; each row along the last axis sums to 1.

    >>> import fnn, numpy as np
    >>> fnn.nn.softmax().apply(None, np.array([[0.0, 0.0], [1e4, 0.0]], np.float32))
    array([[0.5, 0.5],
           [1. , 0. ]], dtype=float32)
    """
    return parameterless(_softmax_forward, _softmax_backward)


def _log_softmax_forward(x: Array) -> tuple[Array, Array]:
    z = x - x.max(axis=-1, keepdims=True)
    y = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return y, y


@register("log_softmax", activation=True)
def log_softmax() -> Layer[None, None]:
    """``y = x - logsumexp(x)`` over the last axis; ``dx = dy - exp(y) * sum(dy)``.

    Shapes: any ``(batch, ..., classes)``, kept; shifted by the max, so large logits
    neither overflow nor give ``log(0)``.

    >>> import fnn, numpy as np
    >>> y = fnn.nn.log_softmax().apply(None, np.array([[0.0, 0.0], [1e4, 0.0]]))  # float64
    >>> np.round(y, 4).tolist()
    [[-0.6931, -0.6931], [0.0, -10000.0]]
    """
    return parameterless(
        _log_softmax_forward,
        lambda y, dy: dy - np.exp(y) * dy.sum(axis=-1, keepdims=True),
    )


@register("identity", activation=True)
def identity() -> Layer[None, None]:
    """``y = x`` (the "linear" activation); ``dx = dy``.

    Shapes: any ``(batch, ...)``, kept; no params.

    >>> import fnn, numpy as np
    >>> fnn.nn.identity().apply(None, np.array([[-1.0, 2.0]], np.float32))
    array([[-1.,  2.]], dtype=float32)
    >>> fnn.nn.activation("linear").spec
    {'layer': 'identity'}
    """
    return parameterless(lambda x: (x, None), lambda res, dy: dy)


@register("flatten")
def flatten() -> Layer[None, None]:
    """Flattens each example: ``(batch, *in_shape) -> (batch, prod(in_shape))``; backward
    reshapes ``dy`` back to the input's shape. No params.

    >>> import fnn, numpy as np
    >>> layer = fnn.nn.flatten()
    >>> layer.output_shape((28, 28, 1)), layer.apply(None, np.zeros((2, 28, 28, 1))).shape
    ((784,), (2, 784))
    """

    def forward(x: Array) -> tuple[Array, Shape]:
        return x.reshape(x.shape[0], math.prod(x.shape[1:])), x.shape

    return parameterless(
        forward,
        lambda shape, dy: dy.reshape(shape),
        output_shape=lambda in_shape: (math.prod(in_shape),),
    )


_GELU_C = math.sqrt(2 / math.pi)
_GELU_A = 0.044715
_GELU_CLIP = 10.0
"""Beyond |x| = 10 the tanh of GELU is exactly +-1 in float32 and float64 (its argument
exceeds 43), so the cubic may use the clipped x: the same values, and no overflow."""

# The forwards below work in place on the temporaries they allocate (never on x): an
# activation's forward runs in inference too, and each fresh temporary costs a pass.


def _gelu_forward(x: Array) -> tuple[Array, Array]:
    # h = (1 + tanh(c (x + a x**3))) / 2, so that y = x h; the cubic is of the clipped x
    # (exact, see _GELU_CLIP). With 1 - tanh**2 = 4 h (1 - h), the slope
    # 0.5 (1 + t) + 0.5 x (1 - t**2) c (1 + 3 a x**2) is h + g h (1 - h), where
    # g = 2 c x (1 + 3 a x**2); beyond the clip h is 0 or 1, so g h (1 - h) is 0.
    xc = np.clip(x, -_GELU_CLIP, _GELU_CLIP)
    x2 = np.square(xc)
    h = x2 * _GELU_A
    h += 1
    h *= xc
    h *= _GELU_C
    np.tanh(h, out=h)
    h += 1
    h *= 0.5
    y = x * h
    g = x2  # x2 is not needed any more: g is built in its place
    g *= 3 * _GELU_A
    g += 1
    g *= xc
    g *= 2 * _GELU_C
    slope = 1 - h
    slope *= h
    slope *= g
    slope += h
    return y, slope


# erf after the method of fdlibm's s_erf.c (Sun Microsystems, 1993), as Go's math/erf.go
# has it: on each range of |x| a rational approximation within one ulp. The coefficients
# are fdlibm's; the code is written for arrays, one range at a time.
_ERX = 8.45062911510467529297e-01  # erf(1) rounded to single precision
_EFX = 1.28379167095512586316e-01  # 2 / sqrt(pi) - 1
_ERF_PP = (  # erf(x) = x + x P(x**2) / Q(x**2) on [0, 0.84375)
    1.28379167095512558561e-01,
    -3.25042107247001499370e-01,
    -2.84817495755985104766e-02,
    -5.77027029648944159157e-03,
    -2.37630166566501626084e-05,
)
_ERF_QQ = (
    1.0,
    3.97917223959155352819e-01,
    6.50222499887672944485e-02,
    5.08130628187576562776e-03,
    1.32494738004321644526e-04,
    -3.96022827877536812320e-06,
)
_ERF_PA = (  # erf(1 + s) = erx + P(s) / Q(s) on [0.84375, 1.25)
    -2.36211856075265944077e-03,
    4.14856118683748331666e-01,
    -3.72207876035701323847e-01,
    3.18346619901161753674e-01,
    -1.10894694282396677476e-01,
    3.54783043256182359371e-02,
    -2.16637559486879084300e-03,
)
_ERF_QA = (
    1.0,
    1.06420880400844228286e-01,
    5.40397917702171048937e-01,
    7.18286544141962662868e-02,
    1.26171219808761642112e-01,
    1.36370839120290507362e-02,
    1.19844998467991074170e-02,
)
_ERF_RA = (  # erfc(x) = exp(-x**2 - 0.5625 + R(s) / S(s)) / x, s = 1 / x**2, on [1.25, 1/0.35)
    -9.86494403484714822705e-03,
    -6.93858572707181764372e-01,
    -1.05586262253232909814e01,
    -6.23753324503260060396e01,
    -1.62396669462573470355e02,
    -1.84605092906711035994e02,
    -8.12874355063065934246e01,
    -9.81432934416914548592e00,
)
_ERF_SA = (
    1.0,
    1.96512716674392571292e01,
    1.37657754143519042600e02,
    4.34565877475229228821e02,
    6.45387271733267880336e02,
    4.29008140027567833386e02,
    1.08635005541779435134e02,
    6.57024977031928170135e00,
    -6.04244152148580987438e-02,
)
_ERF_RB = (  # the same on [1/0.35, 6]; beyond, 1 - erfc(6) rounds to 1
    -9.86494292470009928597e-03,
    -7.99283237680523006574e-01,
    -1.77579549177547519889e01,
    -1.60636384855821916062e02,
    -6.37566443368389627722e02,
    -1.02509513161107724954e03,
    -4.83519191608651397019e02,
)
_ERF_SB = (
    1.0,
    3.03380607434824582924e01,
    3.25792512996573918826e02,
    1.53672958608443695994e03,
    3.19985821950859553908e03,
    2.55305040643316442583e03,
    4.74528541206955367215e02,
    -2.24409524465858183362e01,
)


def _polynomial(z: Array, coefficients: tuple[float, ...]) -> Array:
    """``c[0] + c[1] z + c[2] z**2 + ...`` by Horner's rule."""
    out = np.full_like(z, coefficients[-1])
    for c in coefficients[-2::-1]:
        out *= z
        out += c
    return out


def _erfc_tail(a: Array, r: tuple[float, ...], s: tuple[float, ...]) -> Array:
    """``erfc(a) = exp(-a**2 - 0.5625 + R(1 / a**2) / S(1 / a**2)) / a`` for ``a`` in
    [1.25, 6], with ``a**2`` split as ``z**2 - (z - a)(z + a)`` (``z`` ``a`` cut to its
    high 32 bits, so that ``z**2`` is exact): the exponent loses nothing, and erf is
    correctly rounded more often (99.5% of a grid on [1.25, 2.86) rather than 97.7%)."""
    inv = 1 / (a * a)
    z = (a.view(np.uint64) & np.uint64(0xFFFFFFFF00000000)).view(np.float64)
    big: Array = np.exp(-z * z - 0.5625)
    big *= np.exp((z - a) * (z + a) + _polynomial(inv, r) / _polynomial(inv, s))
    big /= a
    return big


def erf(x: Array) -> Array:
    """The error function ``erf(x) = 2 / sqrt(pi) * integral from 0 to x of exp(-t**2) dt``
    of each entry, in float64 (within one ulp, most entries correctly rounded), for
    NumPy, which has no vectorized erf: fdlibm's rational approximations (``s_erf.c``,
    Sun Microsystems 1993, as Go's ``math/erf.go`` has them) on [0, 0.84375), [0.84375,
    1.25), [1.25, 1 / 0.35) and [1 / 0.35, 6], and 1 beyond.

    Never overflows or divides by zero: ``erf(+-inf) = +-1``, ``erf(-0) = -0``, NaN stays
    NaN; only a subnormal ``x`` underflows, to its subnormal erf (quietly).

    >>> import math, numpy as np
    >>> float(erf(np.array([0.5]))[0]) == math.erf(0.5)
    True
    """
    x64 = np.asarray(x, dtype=np.float64)
    a = np.abs(x64)
    # |x| < 0.84375, most entries: x + x P(x**2) / Q(x**2), taken of every entry cut to
    # that range (the others are overwritten below), so that the common case needs no
    # gather; below 2**-28, x + (2 / sqrt(pi) - 1) x, as fdlibm does (correctly rounded
    # there, where P / Q alone is 1 ulp off for a sixth of the entries).
    t = np.minimum(a, 0.84375)
    with np.errstate(under="ignore"):  # x**2 of a tiny x; a subnormal x's erf
        z = t * t
        y = _polynomial(z, _ERF_PP)
        y /= _polynomial(z, _ERF_QQ)
        y *= t
        y += t
        tiny = a < 2.0**-28
        if tiny.any():
            u = a[tiny]
            y[tiny] = u + _EFX * u
    if (a >= 0.84375).any():
        near1 = (a >= 0.84375) & (a < 1.25)
        s = a[near1] - 1
        y[near1] = _ERX + _polynomial(s, _ERF_PA) / _polynomial(s, _ERF_QA)
        mid = (a >= 1.25) & (a < 1 / 0.35)
        y[mid] = 1 - _erfc_tail(a[mid], _ERF_RA, _ERF_SA)
        far = a >= 1 / 0.35  # NaN is not
        y[far] = 1 - _erfc_tail(np.minimum(a[far], 6.0), _ERF_RB, _ERF_SB)
    y[np.isnan(a)] = np.nan
    out: Array = np.copysign(y, x64)
    return out


_SQRT_HALF = math.sqrt(0.5)
_NORMAL_DENSITY = 1 / math.sqrt(2 * math.pi)
_GELU_EXACT_CLIP = 13.0
"""Beyond |x| = 13 the term x phi(x) of the exact GELU's slope is below 1.2e-36 (and
normal in float32); it is held at its value there, so nothing underflows or overflows."""

_GELU_CHUNK = 1 << 16
"""The exact GELU computes this many entries at a time (1 MiB of float64 temporaries)."""


def _gelu_exact_forward(x: Array) -> tuple[Array, Array]:
    # float32 has a path of its own (_gelu_exact_float32); other dtypes take this one.
    # Phi(x) = (1 + erf(x / sqrt 2)) / 2 (PyTorch's formula), y = x Phi(x); the slope is
    # Phi(x) + x phi(x), phi the standard normal density, of the clipped x. In float64
    # (erf is), rounded to x's dtype, a chunk at a time: the float64 temporaries stay in
    # the cache (a third faster on a batch of GPT activations) and their memory bounded.
    if x.dtype == np.float32:
        return _gelu_exact_float32(x)
    flat = x.reshape(-1)
    y, slope = np.empty_like(flat), np.empty_like(flat)
    for start in range(0, flat.size, _GELU_CHUNK):
        part = slice(start, start + _GELU_CHUNK)
        x64 = flat[part].astype(np.float64)
        cdf = erf(x64 * _SQRT_HALF)
        cdf += 1
        cdf *= 0.5
        np.multiply(x64, cdf, out=y[part], casting="same_kind")
        xc = np.clip(x64, -_GELU_EXACT_CLIP, _GELU_EXACT_CLIP, out=x64)
        density = np.square(xc)
        density *= -0.5
        np.exp(density, out=density)
        density *= _NORMAL_DENSITY
        density *= xc
        np.add(cdf, density, out=slope[part], casting="same_kind")
    return y.reshape(x.shape), slope.reshape(x.shape)


_ERFCX_T = 1 / (2 * math.sqrt(2))
"""``t = 1 / (1 + |x| / (2 sqrt 2))`` (Numerical Recipes' ``erfcc`` variable for
``erfc(|x| / sqrt 2)``) maps ``|x|`` in ``[0, 14.5]`` into ``(0.163, 1]``."""

_ERFCX_F = (
    0.14104297350529144,
    0.14119176880378276,
    0.12152204777624095,
    0.1014611087050835,
    -0.013590147378730221,
    0.13943506399727787,
    -0.24395002165167107,
    0.1424561663519347,
    -0.029568981688636767,
)
"""``F(t)``, a polynomial in ``t`` such that ``Phi(-|x|) = exp(-x**2 / 2) t F(t)``, i.e.
``F(t) = erfcx(|x| / sqrt 2) / (2 t)`` (``erfcx(a) = exp(a**2) erfc(a)``): fitted to it
(mpmath, 40 digits) at 4,000 Chebyshev nodes of ``t`` for ``|x|`` in ``[0, 14.5]``,
minimizing the largest relative error (Lawson's iteration), which is 4.3e-8."""

_GELU32_CHUNK = 1 << 18
"""The float32 exact GELU computes this many entries at a time, which bounds its five
temporaries (1 MiB each). Each of the ~35 NumPy calls a chunk makes must also last long
enough for threads (``fnn.train_step``'s shards on threads): NumPy lets go of Python's
lock (the GIL) for each call, and when calls last a few microseconds a second thread
rarely gets it in time, so two threads run one after the other. Measured on a 2-core AMD
EPYC, GELUs of 384 x 512 entries on two threads at once: 2.0-2.4 ms a call each with
chunks of 2**15 entries (cache-sized; 0.68-0.77 ms on one thread), 0.76-0.86 ms with
2**18; on one thread, 768 x 512 entries took 1.48 and 1.36 ms (the L2-sized chunks had
no advantage there either)."""


def _gelu_exact_float32(x: Array) -> tuple[Array, Array]:
    """The exact GELU of a float32 ``x`` and its slope, in float32 from one formula:

    ``Phi(-|x|) = exp(-x**2 / 2) t F(t)`` (``t``, ``F``: :data:`_ERFCX_T`,
    :data:`_ERFCX_F`), accurate relative to its own (small) size, so the left tail keeps
    its digits; ``Phi(x)`` is ``Phi(-|x|)`` where ``x``'s sign bit is set and
    ``1 - Phi(-|x|)`` elsewhere (chosen bit by bit: no branch, no rounding of the tail);
    ``y = x Phi(x)``; slope ``Phi(x) + x phi(x)`` with ``phi(x) = exp(-x**2 / 2) /
    sqrt(2 pi)`` from the same exp. ``exp(-x**2 / 2)`` is NumPy's float32 exp of ``-x**2
    / 2`` rounded to float32, whose rounding costs a relative ``x**2 2**-25`` (3e-8 x**2):
    nothing where GELU's values matter, 4e-6 at ``x = -13`` where ``y`` is 1e-37 (the
    float64 exp this once took made the whole 30% slower). No clip is needed: beyond
    ``|x| = 14.5`` ``exp(-x**2 / 2)`` rounds to 0 in float32 (``x**2`` may overflow to
    inf: its exp is 0 all the same), so there ``Phi`` is exactly 0 or 1, ``y`` is 0 or
    ``x`` and the slope 0 or 1 (finite ``x``; an infinite one gives NaN).

    Against float64 (``math.erfc``) on [-13, 13] by 5e-5, on 200,000 normal draws and on
    magnitudes from 1e-37 to 1 (tests/nn/test_activations.py): ``y`` within a relative
    ``4.5e-7 + 3e-8 x**2`` (6e-7 for ``|x| <= 4``, 1.2e-6 at 6, 4.1e-6 at 13; PyTorch's
    float32 GELU is within 1.5e-7 of it absolute, far larger relative to the left tail),
    the slope within 2.2e-7 absolute, and a relative 9e-7 where ``|slope| >= 0.1`` (near
    its zero at ``x = -0.75``, ``Phi`` and ``x phi`` cancel). Below ``x = -13`` the values
    fall under 1e-37, into float32's subnormals, and lose digits there. 1.4 ms for 768 x
    512 entries on one core of an AMD EPYC, against 1.8 ms with the float64 exp (best of
    several passes each, taking turns in one process; the float64 path takes 12 ms,
    PyTorch's float32 GELU 0.3 ms).
    """
    flat = x.reshape(-1)
    n = flat.size
    y, slope = np.empty_like(flat), np.empty_like(flat)
    m = max(1, min(n, _GELU32_CHUNK))  # an empty x: no chunk, empty results
    buffers = [np.empty(m, np.float32) for _ in range(4)]
    negative = np.empty(m, np.int32)
    one = np.float32(1)
    coefficients = [np.float32(c) for c in _ERFCX_F[::-1]]
    # x**2 overflows for |x| > 1.8e19 and exp(-x**2 / 2) underflows in the far tails: both
    # give the right 0
    with np.errstate(under="ignore", over="ignore"):
        for start in range(0, n, m):
            stop = min(start + m, n)
            k = stop - start  # the chunk's size: m, or fewer at the end
            xs, sign = flat[start:stop], negative[:k]
            ak, hk, ek, pk = (buffer[:k] for buffer in buffers)
            np.multiply(xs, np.float32(-0.5), out=ek)
            ek *= xs
            np.exp(ek, out=ek)  # exp(-x**2 / 2)
            np.abs(xs, out=ak)
            ak *= np.float32(_ERFCX_T)
            ak += one
            np.divide(one, ak, out=ak)  # t
            np.multiply(ak, coefficients[0], out=hk)
            for c in coefficients[1:-1]:
                hk += c
                hk *= ak
            hk += coefficients[-1]
            hk *= ak
            hk *= ek  # Phi(-|x|)
            np.subtract(one, hk, out=pk)  # 1 - Phi(-|x|)
            # Phi(x): the bits of Phi(-|x|) where x's sign bit is set (-1 after the
            # arithmetic shift, all bits set), of 1 - Phi(-|x|) elsewhere (0)
            np.right_shift(xs.view(np.int32), 31, out=sign)
            p_bits, h_bits = pk.view(np.int32), hk.view(np.int32)
            np.bitwise_xor(p_bits, h_bits, out=h_bits)
            h_bits &= sign
            p_bits ^= h_bits
            np.multiply(xs, pk, out=y[start:stop])
            ek *= np.float32(_NORMAL_DENSITY)
            ek *= xs
            np.add(pk, ek, out=slope[start:stop])
    return y.reshape(x.shape), slope.reshape(x.shape)


@register("gelu", activation=True)
def gelu(approximate: bool = True) -> Layer[None, None]:
    """The GELU (Hendrycks & Gimpel, 2016), ``y = x Phi(x)``, ``Phi`` the standard
    normal distribution function.

    - ``approximate=True`` (the default, which models saved before the exact form keep):
      the tanh form, PyTorch's ``GELU(approximate="tanh")`` and GPT-2's,
      ``y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))``, in the input's dtype. The
      forward keeps the slope ``0.5 (1 + t) + 0.5 x (1 - t**2) sqrt(2/pi) (1 + 3 *
      0.044715 x**2)`` (``t`` the tanh) as its residual. The cubic is taken of ``x``
      clipped to ``[-10, 10]``, beyond which the tanh is exactly +-1 anyway.
    - ``approximate=False``: the exact form, PyTorch's default ``GELU()``,
      ``y = 0.5 x (1 + erf(x / sqrt 2))``; the slope
      ``Phi(x) + x exp(-x**2 / 2) / sqrt(2 pi)`` is its residual. In float64 (and any
      dtype but float32) computed with fdlibm's erf (:func:`erf`; NumPy has none) and
      rounded to the input's dtype, the second term of the slope taken of ``x`` clipped to
      ``[-13, 13]`` (beyond, below 1.2e-36). In float32, computed in float32 from one
      formula for ``Phi(-|x|)``, accurate relative to its size in the left tail too: ``y``
      within a relative ``4.5e-7 + 3e-8 x**2`` of the float64 value (6e-7 for ``|x| <=
      4``) and the slope within 2.2e-7, 6x faster (the measurements:
      ``_gelu_exact_float32``).

    Shapes: any ``(batch, ...)``, kept. Backward is one pass: ``dx = dy * slope``. No
    overflow for any finite ``x``; ``y = x`` (or 0) far from zero.

    Args:
        approximate: True for the tanh form, False for the exact (erf) form.

    Raises:
        TypeError: ``approximate`` is not a bool (PyTorch's ``"tanh"``/``"none"`` are
            ``True``/``False`` here).

    >>> import fnn, numpy as np
    >>> fnn.nn.activation("gelu").apply(None, np.array([[-1e4, 0.0, 1e4]], np.float32))
    array([[   -0.,     0., 10000.]], dtype=float32)
    >>> gelu(approximate=False).apply(None, np.array([[-1.0, 1.0]]))  # -Phi(-1), Phi(1)
    array([[-0.15865525,  0.84134475]])
    """
    if not isinstance(approximate, (bool, np.bool_)):
        raise TypeError(
            "gelu's approximate must be True (the tanh form) or False (the exact erf form), "
            f"got {approximate!r}"
        )
    forward = _gelu_forward if approximate else _gelu_exact_forward
    return parameterless(forward, lambda slope, dy: dy * slope)


def _silu_forward(x: Array) -> tuple[Array, Array]:
    # With e = exp(-|x|) and d = 1 + e (no overflow, no branch): sigmoid(x) =
    # exp(min(x, 0)) / d (1 / d for x >= 0, e / d below), sigmoid'(x) = e / d**2, and the
    # slope of x sigmoid(x) is sigmoid(x) + x sigmoid'(x).
    e = np.exp(-np.abs(x))
    d = 1 + e
    s = np.exp(np.minimum(x, 0))
    s /= d
    d *= d
    slope = e / d
    slope *= x
    slope += s
    return x * s, slope


@register("silu", activation=True)
def silu() -> Layer[None, None]:
    """The SiLU (swish): ``y = x * sigmoid(x)``, computed without overflow.

    Shapes: any ``(batch, ...)``, kept. The forward keeps the slope
    ``sigmoid(x) + x sigmoid(x) (1 - sigmoid(x))`` as its residual, so backward is one
    pass: ``dx = dy * slope``.

    >>> import fnn, numpy as np
    >>> fnn.nn.activation("silu").apply(None, np.array([[-1e4, 0.0, 1e4]], np.float32))
    array([[   -0.,     0., 10000.]], dtype=float32)
    """
    return parameterless(_silu_forward, lambda slope, dy: dy * slope)


@register("elu", activation=True)
def elu(alpha: float = 1.0) -> Layer[None, None]:
    """The ELU: ``y = x`` where ``x > 0``, else ``alpha (exp(x) - 1)`` (PyTorch's ``ELU``).

    Shapes: any ``(batch, ...)``, kept. ``exp`` is only taken of ``min(x, 0)`` (``y`` as
    ``expm1``, exact near 0), so nothing overflows. The forward keeps the slope, ``1``
    where ``x > 0`` and ``alpha exp(x)`` elsewhere (accurate relative to its size far
    into the left tail), so backward is one pass: ``dx = dy * slope``.

    Args:
        alpha: the value ``y`` tends to as ``x -> -inf`` is ``-alpha``; a finite number.

    >>> import fnn, numpy as np
    >>> elu(0.5).apply(None, np.array([[-1e4, 0.0, 2.0]], np.float32))
    array([[-0.5,  0. ,  2. ]], dtype=float32)
    """
    a = _checks.real(alpha, "elu alpha")
    if not math.isfinite(a):
        raise ValueError(f"elu needs a finite alpha, got {alpha}")

    def forward(x: Array) -> tuple[Array, Array]:
        # Branch-free: neg = alpha expm1(min(x, 0)) is 0 where x > 0, so
        # y = max(x, 0) + neg; the slope is 1 there and alpha exp(x) elsewhere, taken as
        # such (neg + alpha would cancel: no digits left below x = -17 in float64)
        positive = x > 0
        neg = np.minimum(x, 0)
        slope = np.exp(neg)
        slope *= a
        np.expm1(neg, out=neg)
        neg *= a
        y = np.maximum(x, 0)
        y += neg
        slope *= ~positive
        slope += positive
        return y, slope

    return parameterless(forward, lambda slope, dy: dy * slope)
