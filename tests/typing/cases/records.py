"""Params records, combinators and datasets, as a user's script meets them.

A line ending ``# E: <code>`` must give exactly that mypy error; every other line must
type-check, ``assert_type`` lines included (tests/typing/test_cases.py)."""

from typing import Any

import attrs
import numpy as np
from typing_extensions import assert_type

import fnn
from fnn import nn
from fnn.nn import Array

key = fnn.random.key(0)
w = np.ones((3, 2), np.float32)
b = np.zeros(2, np.float32)

# -- fnn's records: every field is a required constructor argument -------------------------
nn.DenseParams(w, b)
nn.DenseParams(w)  # E: call-arg
nn.DenseParams()  # E: call-arg
nn.WeightParams()  # E: call-arg
nn.Conv2DParams(w)  # E: call-arg
nn.BatchNormParams(b)  # E: call-arg
nn.BatchNormState(b)  # E: call-arg
nn.LayerNormParams(b)  # E: call-arg
nn.ScaleParams()  # E: call-arg
nn.EmbeddingParams()  # E: call-arg
nn.LSTMParams(w, w, b)  # E: call-arg
nn.GRUParams(w, w, b)  # E: call-arg
nn.PositionalParams()  # E: call-arg
nn.AttentionParams(w, w)  # E: call-arg
nn.AttentionParamsNoBias(w)  # E: call-arg


# -- a user's record, declared as the README says ------------------------------------------
@attrs.frozen(eq=False)
class PReLUParams:
    alpha: Array = attrs.field(converter=nn.readonly, metadata=fnn.tree.WEIGHT)


@attrs.frozen(eq=False)
class Scaled:
    factor: float = attrs.field(metadata=fnn.tree.STATIC)
    w: Array = attrs.field(converter=nn.readonly, metadata=fnn.tree.WEIGHT)
    b: Array  # a plain required field after them: Python accepts it, and so must mypy


PReLUParams(b)
PReLUParams()  # E: call-arg
Scaled(2.0, w, b)
Scaled(2.0, w)  # E: call-arg

# -- a combinator's types: serial, residual and tied over it stay typed --------------------


def forward(run: Any, x: Array) -> Array:
    y: Array = run(1, run(0, x))
    return y


def backward(back: Any, dy: Array, need: bool) -> Array | None:
    dx: Array | None = back(0, back(1, dy, True), need)
    return dx


stateless = nn.combinator([nn.dense(3), nn.dense(3)], forward, backward)
stateful = nn.combinator([nn.dense(3), nn.batch_norm()], forward, backward)
assert_type(stateless, nn.Layer[tuple[object, ...], None])
assert_type(stateful, nn.Layer[tuple[object, ...], tuple[object, ...]])
model = nn.serial(nn.dense(3), stateless)
assert_type(model, nn.Layer[tuple[nn.DenseParams, tuple[object, ...]], None])
assert_type(
    nn.serial(nn.dense(3), stateful),
    nn.Layer[tuple[nn.DenseParams, tuple[object, ...]], tuple[None, tuple[object, ...]]],
)
assert_type(nn.residual(stateless).init_state((3,)), None)
assert_type(nn.tied(10, 3, stateless).init(key, (4,))[0], nn.EmbeddingParams)
other = nn.serial(nn.dense(3), nn.dense(3))
model.apply(other.init(key, (3,)), w)  # E: arg-type

# -- attention: the record its bias gives --------------------------------------------------
assert_type(nn.attention(2).init(key, (4, 8)), nn.AttentionParams)
assert_type(nn.attention(2, bias=True).init(key, (4, 8)), nn.AttentionParams)
assert_type(nn.attention(2, bias=False).init(key, (4, 8)), nn.AttentionParamsNoBias)
print(nn.attention(2).init(key, (4, 8)).b_qkv.shape)
print(nn.attention(2, bias=False).init(key, (4, 8)).b_qkv)  # E: attr-defined


def attention_of(bias: bool) -> nn.Layer[nn.AttentionParams | nn.AttentionParamsNoBias, None]:
    return nn.attention(2, bias=bias)


# -- a registered dataset's class names (README, "fnn.metrics" and "Data") -----------------
info = fnn.data.DATASETS["fashion_mnist"].info
print(info.classes)  # E: union-attr
assert info is not None  # None for a dataset registered without its DataInfo
assert_type(info.classes, tuple[str, ...])
