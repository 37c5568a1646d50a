"""Recurrent layers over sequences ``(batch, time, in_features)``: the LSTM and the GRU,
with PyTorch's equations, gate order and initialization, and backpropagation through
time in one hand-derived backward each.

Both layers work time-major inside: the input projections of every step are ONE matrix
product (``x @ w_ih`` over all ``batch * time`` rows), the recurrence is a loop over time
with one ``h @ w_hh`` per step, into buffers allocated once per call; backward gathers
the pre-activation gradients of every step so that ``dw_ih``, ``dw_hh`` and ``dx`` are
again one product each over all steps. The sigmoid gates are computed as
``sigmoid(a) = (1 + tanh(a / 2)) / 2`` (no overflow for any ``a``), with the halving
folded into a copy of the weights (a power of two: exact), so that one ``tanh`` call
covers the four gates of an LSTM step (the r and z gates of a GRU step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeVar

import attrs
import numpy as np
from numpy.typing import DTypeLike

from .. import _checks
from .. import random as _random
from .. import tree as _tree
from .._types import Array, Shape
from ..random import Key
from ._init import Initializer, initializer_of, register_initializer
from ._layer import Declared, Decoder, Layer, param, readonly
from ._registry import register

# -- the initializer ----------------------------------------------------------------------------


@register_initializer("pytorch_recurrent")
def pytorch_recurrent(key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
    """Uniform on ``[-a, a)`` with ``a = 1 / sqrt(fan_out)`` (the last axis): PyTorch's
    initialization of every weight and bias of ``nn.LSTM`` and ``nn.GRU``, ``a = 1 /
    sqrt(hidden_size)``, as :func:`lstm` and :func:`gru` hand their initializers one gate's
    block at a time (``(in, features)``, ``(features, features)`` or ``(features,)``),
    whose last axis is ``features``.

    An :data:`Initializer`: a new array of ``shape`` in ``dtype`` (float32 by default).

    >>> import fnn
    >>> w = fnn.nn.pytorch_recurrent(fnn.random.key(0), (1000, 25))
    >>> w.dtype, bool(abs(w).max() < 0.2), round(float(abs(w).max()), 2)
    (dtype('float32'), True, 0.2)
    """
    a = 1.0 / math.sqrt(shape[-1] if shape and shape[-1] else 1)
    return _random.uniform(key, shape, -a, a, dtype)


def _per_gate(init: Initializer, gates: int) -> Initializer:
    """An initializer of a ``(..., gates * features)`` param that draws each gate's block
    ``(..., features)`` by ``init`` from its own key (``split(key, gates)``)."""

    def draw(key: Key, shape: Shape, dtype: DTypeLike = np.float32) -> Array:
        *rows, width = shape
        blocks = [
            np.asarray(init(k, (*rows, width // gates), dtype), dtype)
            for k in _random.split(key, gates)
        ]
        return np.concatenate(blocks, axis=-1)

    return draw


# -- records ------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class LSTMParams:
    """Parameters of :func:`lstm` with ``H`` features, gates in PyTorch's order (i, f, g,
    o) along the last axis: input weights ``w_ih`` ``(in, 4H)``, recurrent weights
    ``w_hh`` ``(H, 4H)`` (both marked as weights), biases ``b_ih`` and ``b_hh`` ``(4H,)``.

    The matrices multiply from the right (``x @ w_ih``): PyTorch's ``weight_ih_l0`` is
    ``w_ih.T`` and ``weight_hh_l0`` is ``w_hh.T``; ``bias_ih_l0`` and ``bias_hh_l0`` are
    ``b_ih`` and ``b_hh`` as they are.
    """

    w_ih: Array = attrs.field(converter=readonly, metadata=_tree.WEIGHT)
    w_hh: Array = attrs.field(converter=readonly, metadata=_tree.WEIGHT)
    b_ih: Array = attrs.field(converter=readonly)
    b_hh: Array = attrs.field(converter=readonly)


@attrs.frozen(eq=False)
class GRUParams:
    """Parameters of :func:`gru` with ``H`` features, gates in PyTorch's order (r, z, n)
    along the last axis: input weights ``w_ih`` ``(in, 3H)``, recurrent weights ``w_hh``
    ``(H, 3H)`` (both marked as weights), biases ``b_ih`` and ``b_hh`` ``(3H,)``.

    The matrices multiply from the right (``x @ w_ih``): PyTorch's ``weight_ih_l0`` is
    ``w_ih.T`` and ``weight_hh_l0`` is ``w_hh.T``; ``bias_ih_l0`` and ``bias_hh_l0`` are
    ``b_ih`` and ``b_hh`` as they are.
    """

    w_ih: Array = attrs.field(converter=readonly, metadata=_tree.WEIGHT)
    w_hh: Array = attrs.field(converter=readonly, metadata=_tree.WEIGHT)
    b_ih: Array = attrs.field(converter=readonly)
    b_hh: Array = attrs.field(converter=readonly)


class _LSTMSaved(NamedTuple):
    """What the LSTM's backward needs, time-major: the input as ``(time * batch, in)``,
    the hidden and cell states ``(time + 1, batch, H)`` (zeros first), the gates ``(time,
    batch, 4H)`` after their activations, ``tanh(c)`` ``(time, batch, H)`` and the padded
    steps (:func:`_padded_steps`)."""

    x: Array
    h: Array
    c: Array
    gates: Array
    tanh_c: Array
    pads: Array | None

    @property
    def states(self) -> tuple[Array, ...]:
        """The states a step carries: ``(h, c)``."""
        return self.h, self.c


class _GRUSaved(NamedTuple):
    """What the GRU's backward needs, time-major: the input as ``(time * batch, in)``,
    the hidden states ``(time + 1, batch, H)`` (zeros first), the gates (r, z, n)
    ``(time, batch, 3H)`` after their activations, ``h @ w_hn + b_hn`` ``(time, batch,
    H)`` and the padded steps (:func:`_padded_steps`)."""

    x: Array
    h: Array
    gates: Array
    hn: Array
    pads: Array | None

    @property
    def states(self) -> tuple[Array, ...]:
        """The states a step carries: ``(h,)``."""
        return (self.h,)


class _Saved(Protocol):
    """What a recurrent layer's forward keeps: the hidden states ``h`` among the rest, and
    the states a step carries to the next (``states``, each ``(time + 1, batch, H)``)."""

    @property
    def h(self) -> Array: ...

    @property
    def states(self) -> tuple[Array, ...]: ...


P = TypeVar("P", LSTMParams, GRUParams)
S = TypeVar("S", bound=_Saved)


# -- shared pieces ------------------------------------------------------------------------------


def _recurrent_layer(
    name: str,
    gates: int,
    record: type[P],
    run: Callable[[P, Array, tuple[Array, ...] | None, Array | None], S],
    differentiate: Callable[[P, S, Array, bool, P, bool], Array | None],
    features: Any,
    return_sequences: Any,
    weight_init: Any,
    bias_init: Any,
) -> Layer[P, Any]:
    """A recurrent layer of ``gates`` gates: its arguments checked, its params declared
    (``record(w_ih, w_hh, b_ih, b_hh)``), its forward ``run(params, x, initial, mask) ->
    saved`` (whose ``saved.h`` are the hidden states) and its backward
    ``differentiate(params, saved, dy, need_dx, grads, return_sequences)``. The layer is
    :attr:`Layer.masked`: under :func:`fnn.nn.masked` a padded step carries the states
    through unchanged."""
    size = _checks.positive_int(features, f"{name} features")
    sequences = _flag(return_sequences, f"{name} return_sequences")
    width = gates * size
    w = _per_gate(initializer_of(weight_init, "weight_init"), gates)
    b = _per_gate(initializer_of(bias_init, "bias_init"), gates)

    def declare(in_shape: Shape) -> Declared[P, None]:
        if len(in_shape) != 2:
            raise ValueError(
                f"{name} expects sequences of shape (time, features) per example, got {in_shape}"
            )
        time, inputs = in_shape
        params = record(
            param((inputs, width), w), param((size, width), w), param((width,), b),
            param((width,), b)
        )  # fmt: skip
        return Declared((time, size) if sequences else (size,), params)

    def infer(params: P, x: Array, state: None, mask: Array | None = None) -> Array:
        return _sequence_output(run(params, x, None, _mask_of(name, x, mask)).h, sequences)

    def forward(
        params: P, x: Array, state: None, key: Key | None, mask: Array | None = None
    ) -> tuple[Array, None, S]:
        saved = run(params, x, None, _mask_of(name, x, mask))
        return _sequence_output(saved.h, sequences), None, saved

    def backward(params: P, saved: S, dy: Array, need_dx: bool, grads: P) -> Array | None:
        return differentiate(params, saved, dy, need_dx, grads, sequences)

    def start(params: P, batch: int, length: int) -> list[tuple[Array, ...] | None]:
        return [None]  # the states after the last step (None: zeros, before the first)

    def step(
        params: P,
        x: Array,
        state: None,
        cache: list[tuple[Array, ...] | None],
        t: int,
        mask: Array | None = None,
    ) -> Array:
        valid = None if mask is None else mask[:, t : t + 1]  # (batch, 1): this position
        saved = run(params, x[:, np.newaxis], cache[0], valid)
        cache[0] = tuple(kept[-1] for kept in saved.states)
        y: Array = saved.h[-1]
        return y

    decoder = Decoder(start, step) if sequences else None  # the last step alone: no stream
    return Layer(declare, infer, forward, backward, masked=True, decoder=decoder)


def _mask_of(name: str, x: Array, mask: Array | None) -> Array | None:
    """``mask`` (the valid positions, ``(batch, time)`` bool, from :func:`fnn.nn.masked`)
    if it fits ``x`` ``(batch, time, in)``, else a ValueError naming both shapes."""
    if mask is not None and mask.shape != x.shape[:2]:
        raise ValueError(
            f"{name}'s mask must be the valid positions {x.shape[:2]} of its input "
            f"{x.shape}, got a mask of shape {mask.shape} (a layer before it changed the "
            "time axis?)"
        )
    return mask


def _padded_steps(mask: Array | None) -> Array | None:
    """The padded positions of each step, time-major ``(time, batch)`` bool, from the
    valid positions ``mask`` ``(batch, time)``; None when every position is valid (the
    forward and backward then make no extra pass)."""
    if mask is None or mask.all():
        return None
    return np.ascontiguousarray(~mask.T)


def _carry(pads: Array | None, t: int, new: Array, old: Array) -> None:
    """At step ``t``, the padded rows keep their states: ``new[b] = old[b]`` where
    ``pads[t, b]`` (``new``, ``old`` ``(batch, H)``)."""
    if pads is not None and pads[t].any():
        np.copyto(new, old, where=pads[t][:, np.newaxis])


def _held(pads: Array | None, t: int, *gradients: Array) -> tuple[Array, list[Array]] | None:
    """The padded rows of step ``t`` (``(batch,)`` bool) and copies of those rows of
    ``gradients`` (what a padded step passes back unchanged), or None when step ``t`` has
    none."""
    if pads is None or not pads[t].any():
        return None
    return pads[t], [g[pads[t]] for g in gradients]


def _pass_back(held: tuple[Array, list[Array]] | None, *targets: Array) -> None:
    """Back into ``targets`` the padded rows :func:`_held` kept, as a padded step passes its
    states' gradients to the step before it untouched."""
    if held is not None:
        padded, kept = held
        for target, rows in zip(targets, kept):
            target[padded] = rows


def _flag(value: Any, what: str) -> bool:
    """``value`` if it is a bool, else a TypeError naming ``what``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return bool(value)


def _time_major(x: Array) -> Array:
    """``x`` ``(batch, time, in)`` as a new ``(time * batch, in)`` array, step by step."""
    batch, time, size = x.shape
    return np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(time * batch, size)


def _halved(features: int, gates: int, dtype: np.dtype[Any]) -> Array:
    """``(gates * features,)``: 0.5 on the columns of the sigmoid gates, 1 on the last
    tanh gate's (the third: the LSTM's g, the GRU's n)."""
    scale = np.full(gates * features, 0.5, dtype)
    scale[2 * features : 3 * features] = 1
    return scale


def _sigmoid_from_half_tanh(a: Array) -> None:
    """``a = (1 + a) / 2`` in place: ``sigmoid(x)`` from ``a = tanh(x / 2)``."""
    a *= 0.5
    a += 0.5


def _sequence_output(h: Array, return_sequences: bool) -> Array:
    """The layer's output from the hidden states ``(time + 1, batch, H)``: every step's
    ``(batch, time, H)``, or the last one's ``(batch, H)`` (new arrays)."""
    if return_sequences:
        return np.ascontiguousarray(h[1:].transpose(1, 0, 2))
    last: Array = h[-1].copy()
    return last


def _input_gradients(
    x: Array, d: Array, w_ih: Array, need_dx: bool, dw_ih: Array, db_ih: Array
) -> Array | None:
    """Writes ``dw_ih = x.T @ d`` and ``db_ih = sum(d)`` over every step's rows (``x``
    ``(time * batch, in)``, ``d`` the pre-activations' gradients ``(time, batch, width)``);
    returns ``dx = d @ w_ih.T`` as ``(batch, time, in)`` when asked for."""
    time, batch, width = d.shape
    flat = d.reshape(time * batch, width)
    np.matmul(x.T, flat, out=dw_ih)
    np.add.reduce(flat, axis=0, out=db_ih)
    if not need_dx:
        return None
    dx = (flat @ w_ih.T).reshape(time, batch, x.shape[1])
    return np.ascontiguousarray(dx.transpose(1, 0, 2))


def _recurrent_gradient(h: Array, d: Array, dw_hh: Array) -> None:
    """Writes ``dw_hh = sum_t h_{t-1}.T @ d_t`` as one product over the steps after the
    first (whose ``h_0`` is zero): ``h`` ``(time + 1, batch, H)``, ``d`` ``(time, batch,
    width)``."""
    time, batch, width = d.shape
    previous = h[1:time].reshape((time - 1) * batch, h.shape[2])
    np.matmul(previous.T, d[1:].reshape((time - 1) * batch, width), out=dw_hh)


# -- LSTM ---------------------------------------------------------------------------------------


def _lstm_forward(
    params: LSTMParams,
    x: Array,
    initial: tuple[Array, ...] | None = None,
    mask: Array | None = None,
) -> _LSTMSaved:
    """The LSTM over ``x`` ``(batch, time, in)``, from zero states (or ``initial``'s ``(h,
    c)``, for decoding; backward assumes zeros): what backward needs (the outputs are its
    hidden states). Where ``mask`` ``(batch, time)`` is False (padding) a step keeps its
    row's ``h`` and ``c``."""
    batch, time, _ = x.shape
    size = params.w_hh.shape[0]
    dtype = params.w_hh.dtype
    scale = _halved(size, 4, dtype)  # the i, f, o columns halved: sigmoid via tanh
    pads = _padded_steps(mask)
    xt = _time_major(x)
    gates = np.matmul(xt, params.w_ih * scale).reshape(time, batch, 4 * size)
    gates += (params.b_ih + params.b_hh) * scale
    w_hh = params.w_hh * scale
    h = np.empty((time + 1, batch, size), dtype)
    c = np.empty((time + 1, batch, size), dtype)
    h[0], c[0] = (0, 0) if initial is None else initial
    tanh_c = np.empty((time, batch, size), dtype)
    step = np.empty((batch, 4 * size), dtype)
    scratch = np.empty((batch, size), dtype)
    for t in range(time):
        a = gates[t]
        if t or initial is not None:
            np.matmul(h[t], w_hh, out=step)
            a += step
        np.tanh(a, out=a)
        _sigmoid_from_half_tanh(a[:, : 2 * size])
        _sigmoid_from_half_tanh(a[:, 3 * size :])
        i, f, g, o = a[:, :size], a[:, size : 2 * size], a[:, 2 * size : 3 * size], a[:, 3 * size :]
        np.multiply(f, c[t], out=c[t + 1])
        np.multiply(i, g, out=scratch)
        c[t + 1] += scratch
        np.tanh(c[t + 1], out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=h[t + 1])
        _carry(pads, t, c[t + 1], c[t])
        _carry(pads, t, h[t + 1], h[t])
    return _LSTMSaved(xt, h, c, gates, tanh_c, pads)


def _lstm_backward(
    params: LSTMParams,
    saved: _LSTMSaved,
    dy: Array,
    need_dx: bool,
    grads: LSTMParams,
    return_sequences: bool,
) -> Array | None:
    """Backpropagation through time; writes ``grads``, returns ``dx`` when asked for.

    Per step, from the last, with ``dh`` and ``dc`` the gradients w.r.t. ``h_t`` and
    ``c_t`` (``dh`` gathers ``dy_t`` and what step ``t + 1`` sends back): ``do = dh *
    tanh(c_t)``, ``dc += dh * o * (1 - tanh(c_t)**2)``, ``di = dc * g``, ``df = dc *
    c_{t-1}``, ``dg = dc * i``; each times its activation's slope (``s (1 - s)``,
    ``1 - g**2``) is ``d_t``, the gradient w.r.t. the step's pre-activations; then ``dc
    = dc * f`` and ``dh = d_t @ w_hh.T`` go to step ``t - 1``. After the loop: ``dw_ih =
    x.T @ d``, ``dw_hh = h_prev.T @ d`` (every step's rows at once), ``db_ih = db_hh =
    sum(d)``, ``dx = d @ w_ih.T``. A padded step (it kept its row's states) has ``d_t =
    0`` there and passes ``dh`` and ``dc`` to the step before it as they are.
    """
    x, h, c, gates, tanh_c, pads = saved
    time, batch, width = gates.shape
    size = width // 4
    w_hh_t = np.ascontiguousarray(params.w_hh.T)  # a C-ordered operand: faster products
    d = np.empty_like(gates)
    slope = np.empty((batch, width), gates.dtype)
    scratch = np.empty((batch, size), gates.dtype)
    dc = np.zeros((batch, size), gates.dtype)
    dh = np.zeros((batch, size), gates.dtype) if return_sequences else dy.copy()
    for t in range(time - 1, -1, -1):
        if return_sequences:
            dh += dy[:, t]
        held = _held(pads, t, dh, dc)
        a, da = gates[t], d[t]
        i, f, g, o = a[:, :size], a[:, size : 2 * size], a[:, 2 * size : 3 * size], a[:, 3 * size :]
        np.subtract(1, a, out=slope)
        slope *= a  # s (1 - s) for the sigmoid gates; the g columns are set below
        np.multiply(g, g, out=slope[:, 2 * size : 3 * size])
        np.subtract(1, slope[:, 2 * size : 3 * size], out=slope[:, 2 * size : 3 * size])
        np.multiply(tanh_c[t], tanh_c[t], out=scratch)
        np.subtract(1, scratch, out=scratch)
        scratch *= o
        scratch *= dh
        dc += scratch
        np.multiply(dc, g, out=da[:, :size])
        np.multiply(dc, c[t], out=da[:, size : 2 * size])
        np.multiply(dc, i, out=da[:, 2 * size : 3 * size])
        np.multiply(dh, tanh_c[t], out=da[:, 3 * size :])
        da *= slope
        if held is not None:
            da[held[0]] = 0  # a padded step's pre-activations reach nothing
        if t:
            dc *= f
            np.matmul(da, w_hh_t, out=dh)
            _pass_back(held, dh, dc)
    _recurrent_gradient(h, d, grads.w_hh)
    dx = _input_gradients(x, d, params.w_ih, need_dx, grads.w_ih, grads.b_ih)
    grads.b_hh[...] = grads.b_ih
    return dx


@register("lstm", types=(LSTMParams,))
def lstm(
    features: int,
    return_sequences: bool = True,
    *,
    weight_init: str | Initializer = "pytorch_recurrent",
    bias_init: str | Initializer = "pytorch_recurrent",
) -> Layer[LSTMParams, None]:
    """A long short-term memory layer (Hochreiter & Schmidhuber, 1997) with ``features``
    hidden units, PyTorch's ``nn.LSTM(in, features, batch_first=True)``.

    From ``h_0 = c_0 = 0``, for each step ``t`` of ``x`` ``(batch, time, in)``, the gates
    in PyTorch's order (i, f, g, o)::

        i = sigmoid(x_t @ w_ii + b_ii + h_{t-1} @ w_hi + b_hi)
        f = sigmoid(x_t @ w_if + b_if + h_{t-1} @ w_hf + b_hf)
        g = tanh(x_t @ w_ig + b_ig + h_{t-1} @ w_hg + b_hg)
        o = sigmoid(x_t @ w_io + b_io + h_{t-1} @ w_ho + b_ho)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    where ``w_ii`` ... ``w_io`` are the column blocks of :class:`LSTMParams`' ``w_ih``
    ``(in, 4 * features)`` (``w_hi`` ... of ``w_hh``, ``b_ii`` ... of ``b_ih``, ``b_hi``
    ... of ``b_hh``). PyTorch's ``weight_ih_l0`` is ``w_ih.T``, its ``weight_hh_l0``
    ``w_hh.T``; its biases are ``b_ih`` and ``b_hh``.

    Args:
        features: the number of hidden units ``H``.
        return_sequences: True (the default): the output is every step's ``h_t``,
            ``(batch, time, H)``; False: the last one, ``h_time`` ``(batch, H)``.
        weight_init: the initializer of ``w_ih`` and ``w_hh``, a registered name
            (``"pytorch_recurrent"``, the default: uniform on ``[-1/sqrt(H),
            1/sqrt(H))``, PyTorch's, or any of :data:`INITIALIZERS`) or a function
            ``(key, shape, dtype)`` (the layer then has no spec, and a model using it
            cannot be saved with :func:`fnn.io.save_model`). It is handed one gate's block
            at a time, ``(in, H)`` and ``(H, H)``.
        bias_init: the same for ``b_ih`` and ``b_hh``, one gate's ``(H,)`` at a time
            (``"zeros"`` for zero biases).

    Shapes: ``x (batch, time, in) -> (batch, time, H)`` or ``(batch, H)``; params
    ``w_ih (in, 4H)``, ``w_hh (H, 4H)``, ``b_ih (4H,)``, ``b_hh (4H,)``.

    Padding: the layer takes a mask (:attr:`Layer.masked`; :func:`fnn.nn.masked` hands it
    the positions that are not padding). At a padded step a row keeps its ``h`` and
    ``c`` (its output there is the state it carries), as PyTorch's packed sequences
    skip it: a sequence padded on the right or the left gives at its own steps, and as
    its last state (``return_sequences=False``), what it gives alone, and a padded
    input gets a zero gradient.

    The input projections of all steps are one product ``x @ w_ih``; backpropagation
    through time (one backward, see the module) makes ``dw_ih``, ``dw_hh`` and ``dx`` one
    product each over all steps. Memory: the forward (inference too) makes about ``7 *
    batch * time * H`` numbers, which training keeps for backward; backward adds ``4 *
    batch * time * H``.

    >>> import fnn, numpy as np
    >>> layer = fnn.nn.lstm(5)
    >>> p = layer.init(fnn.random.key(0), (7, 3))  # sequences of 7 steps of 3 features
    >>> p.w_ih.shape, p.w_hh.shape, p.b_ih.shape
    ((3, 20), (5, 20), (20,))
    >>> layer.apply(p, np.ones((2, 7, 3), np.float32)).shape
    (2, 7, 5)
    >>> fnn.nn.lstm(5, return_sequences=False).apply(p, np.ones((2, 7, 3), np.float32)).shape
    (2, 5)
    """
    return _recurrent_layer(
        "lstm", 4, LSTMParams, _lstm_forward, _lstm_backward, features, return_sequences,
        weight_init, bias_init,
    )  # fmt: skip


# -- GRU ----------------------------------------------------------------------------------------


def _gru_forward(
    params: GRUParams,
    x: Array,
    initial: tuple[Array, ...] | None = None,
    mask: Array | None = None,
) -> _GRUSaved:
    """The GRU over ``x`` ``(batch, time, in)``, from a zero state (or ``initial``'s
    ``(h,)``, for decoding; backward assumes zeros): what backward needs (the outputs are
    its hidden states). Where ``mask`` ``(batch, time)`` is False (padding) a step keeps
    its row's ``h``."""
    batch, time, _ = x.shape
    size = params.w_hh.shape[0]
    dtype = params.w_hh.dtype
    scale = _halved(size, 3, dtype)  # the r, z columns halved: sigmoid via tanh
    pads = _padded_steps(mask)
    xt = _time_major(x)
    gates = np.matmul(xt, params.w_ih * scale).reshape(time, batch, 3 * size)
    bias: Array = params.b_ih * scale
    bias[: 2 * size] += params.b_hh[: 2 * size] * 0.5  # b_hn stays inside r * (...)
    gates += bias
    w_hh = params.w_hh * scale
    b_hn = params.b_hh[2 * size :]
    h = np.empty((time + 1, batch, size), dtype)
    h[0] = 0 if initial is None else initial[0]
    hn = np.empty((time, batch, size), dtype)
    step = np.empty((batch, 3 * size), dtype)
    scratch = np.empty((batch, size), dtype)
    for t in range(time):
        a = gates[t]
        rz, n = a[:, : 2 * size], a[:, 2 * size :]
        if t or initial is not None:
            np.matmul(h[t], w_hh, out=step)
            rz += step[:, : 2 * size]
            np.add(step[:, 2 * size :], b_hn, out=hn[t])
        else:
            hn[t] = b_hn
        np.tanh(rz, out=rz)
        _sigmoid_from_half_tanh(rz)
        r, z = a[:, :size], a[:, size : 2 * size]
        np.multiply(r, hn[t], out=scratch)
        n += scratch
        np.tanh(n, out=n)
        np.subtract(h[t], n, out=scratch)  # h_t = n + z * (h_{t-1} - n)
        scratch *= z
        np.add(n, scratch, out=h[t + 1])
        _carry(pads, t, h[t + 1], h[t])
    return _GRUSaved(xt, h, gates, hn, pads)


def _gru_backward(
    params: GRUParams,
    saved: _GRUSaved,
    dy: Array,
    need_dx: bool,
    grads: GRUParams,
    return_sequences: bool,
) -> Array | None:
    """Backpropagation through time; writes ``grads``, returns ``dx`` when asked for.

    Per step, from the last, with ``dh`` the gradient w.r.t. ``h_t`` (``dy_t`` and what
    step ``t + 1`` sends back) and ``hn = h_{t-1} @ w_hn + b_hn``: ``dn = dh * (1 - z) *
    (1 - n**2)``, ``dz = dh * (h_{t-1} - n) * z (1 - z)``, ``dr = dn * hn * r (1 - r)``
    are the gradients w.r.t. the step's input pre-activations ``dx_t = (dr, dz, dn)`` and
    ``dh_t = (dr, dz, dn * r)`` w.r.t. its recurrent ones ``h_{t-1} @ w_hh + b_hh``; then
    ``dh = dh * z + dh_t @ w_hh.T`` goes to step ``t - 1``. After the loop: ``dw_ih = x.T
    @ dx_all``, ``db_ih = sum(dx_all)``, ``dw_hh = h_prev.T @ dh_all``, ``db_hh =
    sum(dh_all)`` (every step's rows at once), ``dx = dx_all @ w_ih.T``. A padded step
    (it kept its row's state) has zero pre-activation gradients there and passes ``dh``
    to the step before it as it is.
    """
    x, h, gates, hn, pads = saved
    time, batch, width = gates.shape
    size = width // 3
    w_hh_t = np.ascontiguousarray(params.w_hh.T)  # a C-ordered operand: faster products
    d_in = np.empty_like(gates)
    d_rec = np.empty_like(gates)
    scratch = np.empty((batch, size), gates.dtype)
    dh = np.zeros((batch, size), gates.dtype) if return_sequences else dy.copy()
    for t in range(time - 1, -1, -1):
        if return_sequences:
            dh += dy[:, t]
        held = _held(pads, t, dh)
        a, da, dr_ = gates[t], d_in[t], d_rec[t]
        r, z, n = a[:, :size], a[:, size : 2 * size], a[:, 2 * size :]
        dr, dz, dn = da[:, :size], da[:, size : 2 * size], da[:, 2 * size :]
        np.multiply(n, n, out=scratch)
        np.subtract(1, scratch, out=scratch)
        np.subtract(1, z, out=dn)
        dn *= scratch
        dn *= dh
        np.subtract(h[t], n, out=dz)
        dz *= dh
        np.subtract(1, z, out=scratch)
        scratch *= z
        dz *= scratch
        np.multiply(dn, r, out=dr_[:, 2 * size :])
        np.multiply(dn, hn[t], out=dr)
        np.subtract(1, r, out=scratch)
        scratch *= r
        dr *= scratch
        dr_[:, : 2 * size] = da[:, : 2 * size]
        if held is not None:
            da[held[0]] = 0  # a padded step's pre-activations reach nothing
            dr_[held[0]] = 0
        if t:
            dh *= z
            np.matmul(dr_, w_hh_t, out=scratch)
            dh += scratch
            _pass_back(held, dh)
    _recurrent_gradient(h, d_rec, grads.w_hh)
    np.add.reduce(d_rec.reshape(time * batch, width), axis=0, out=grads.b_hh)
    return _input_gradients(x, d_in, params.w_ih, need_dx, grads.w_ih, grads.b_ih)


@register("gru", types=(GRUParams,))
def gru(
    features: int,
    return_sequences: bool = True,
    *,
    weight_init: str | Initializer = "pytorch_recurrent",
    bias_init: str | Initializer = "pytorch_recurrent",
) -> Layer[GRUParams, None]:
    """A gated recurrent unit layer (Cho et al., 2014) with ``features`` hidden units,
    PyTorch's ``nn.GRU(in, features, batch_first=True)``.

    From ``h_0 = 0``, for each step ``t`` of ``x`` ``(batch, time, in)``, the gates in
    PyTorch's order (r, z, n)::

        r = sigmoid(x_t @ w_ir + b_ir + h_{t-1} @ w_hr + b_hr)
        z = sigmoid(x_t @ w_iz + b_iz + h_{t-1} @ w_hz + b_hz)
        n = tanh(x_t @ w_in + b_in + r * (h_{t-1} @ w_hn + b_hn))
        h_t = (1 - z) * n + z * h_{t-1}

    where ``w_ir``, ``w_iz``, ``w_in`` are the column blocks of :class:`GRUParams`'
    ``w_ih`` ``(in, 3 * features)`` (``w_hr`` ... of ``w_hh``, ``b_ir`` ... of ``b_ih``,
    ``b_hr`` ... of ``b_hh``). PyTorch's ``weight_ih_l0`` is ``w_ih.T``, its
    ``weight_hh_l0`` ``w_hh.T``; its biases are ``b_ih`` and ``b_hh``.

    Arguments, defaults, padding and costs as :func:`lstm`'s (a padded step keeps ``h``),
    with three gates where it has four:
    params ``w_ih (in, 3H)``, ``w_hh (H, 3H)``, ``b_ih (3H,)``, ``b_hh (3H,)``; the
    forward makes about ``5 * batch * time * H`` numbers and backward ``6 * batch * time *
    H``.

    >>> import fnn, numpy as np
    >>> layer = fnn.nn.gru(5, return_sequences=False)
    >>> p = layer.init(fnn.random.key(0), (7, 3))  # sequences of 7 steps of 3 features
    >>> p.w_ih.shape, p.w_hh.shape, p.b_hh.shape
    ((3, 15), (5, 15), (15,))
    >>> layer.apply(p, np.ones((2, 7, 3), np.float32)).shape
    (2, 5)
    """
    return _recurrent_layer(
        "gru", 3, GRUParams, _gru_forward, _gru_backward, features, return_sequences,
        weight_init, bias_init,
    )  # fmt: skip
