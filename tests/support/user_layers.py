"""Two layers written the way a user writes one, registered under test names: one with
model state (running statistics) and one that draws from the training key. The tests
import this module in a fresh process too, as a user's code would be imported there."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

import fnn
from fnn import nn
from fnn.nn import Array, Shape


@attrs.frozen(eq=False)
class CenterParams:
    """A per-feature gain."""

    scale: Array = attrs.field(converter=nn.readonly, metadata=fnn.tree.WEIGHT)


@attrs.frozen(eq=False)
class CenterState:
    """The running mean of the inputs."""

    mean: Array = attrs.field(converter=nn.readonly)


@nn.register("test_center", types=(CenterParams, CenterState))
def center(momentum: float = 0.9) -> nn.Layer[CenterParams, CenterState]:
    """``y = scale * (x - mean)``: the batch mean in training (the running mean moves
    towards it), the running mean in inference. Inputs ``(batch, features)``."""

    def declare(in_shape: Shape) -> nn.Declared[CenterParams, CenterState]:
        (n,) = in_shape
        return nn.Declared((n,), CenterParams(nn.param((n,), nn.ones)), CenterState(nn.param((n,))))

    def infer(params: CenterParams, x: Array, state: CenterState) -> Array:
        out: Array = params.scale * (x - state.mean)
        return out

    def forward(
        params: CenterParams, x: Array, state: CenterState, key: fnn.random.Key | None
    ) -> tuple[Array, CenterState, Array]:
        centered = x - x.mean(axis=0)
        moved = momentum * state.mean + (1 - momentum) * x.mean(axis=0)
        return params.scale * centered, CenterState(moved.astype(x.dtype)), centered

    def backward(
        params: CenterParams, centered: Array, dy: Array, need_dx: bool, grads: CenterParams
    ) -> Array | None:
        np.sum(dy * centered, axis=0, out=grads.scale)
        if not need_dx:
            return None
        scaled: Array = params.scale * dy
        dx: Array = scaled - scaled.mean(axis=0)
        return dx

    return nn.Layer(declare, infer, forward, backward, stateful=True)


@nn.register("test_mask")
def mask(rate: float = 0.5) -> nn.Layer[None, None]:
    """Training: keep each entry with probability ``1 - rate`` (no rescaling); inference:
    the identity. The mask comes from the key of the training forward."""

    def declare(in_shape: Shape) -> nn.Declared[None, None]:
        return nn.Declared(in_shape)

    def infer(params: None, x: Array, state: None) -> Array:
        return x

    def forward(
        params: None, x: Array, state: None, key: fnn.random.Key | None
    ) -> tuple[Array, None, Array]:
        if key is None:
            raise ValueError("mask needs a key in training")
        keep = fnn.random.bernoulli(key, 1 - rate, x.shape)
        return np.where(keep, x, 0), None, keep

    def backward(params: None, keep: Array, dy: Array, need_dx: bool, grads: None) -> Array | None:
        return np.where(keep, dy, 0) if need_dx else None

    return nn.Layer(declare, infer, forward, backward, stochastic=True)


@nn.register("test_zero_padding")
def zero_padding() -> nn.Layer[None, None]:
    """A masked layer: the vectors at padded positions of ``(batch, time, features)`` set
    to zero (the mask ``(batch, time)`` is True where a position is a token)."""

    def declare(in_shape: Shape) -> nn.Declared[None, None]:
        return nn.Declared(in_shape)

    def infer(params: None, x: Array, state: None, mask: Array | None = None) -> Array:
        return x if mask is None else x * mask[..., None]

    def forward(
        params: None,
        x: Array,
        state: None,
        key: fnn.random.Key | None,
        mask: Array | None = None,
    ) -> tuple[Array, None, Array | None]:
        return infer(params, x, state, mask), None, mask

    def backward(
        params: None, mask: Array | None, dy: Array, need_dx: bool, grads: None
    ) -> Array | None:
        if not need_dx:
            return None
        return dy if mask is None else dy * mask[..., None]

    return nn.Layer(declare, infer, forward, backward, masked=True)


def model() -> nn.Layer[tuple[Any, ...], Any]:
    """flatten, dense(8), center, relu, mask, dense(3): state and a key in one model."""
    return nn.serial(nn.flatten(), nn.dense(8), center(), nn.relu(), mask(0.25), nn.dense(3))
