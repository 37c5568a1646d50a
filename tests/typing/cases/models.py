"""Params and state of fnn's models, as a user's script meets them.

A line ending ``# E: <code>`` must give exactly that mypy error; every other line must
type-check, ``assert_type`` lines included (tests/typing/test_cases.py)."""

from typing import Any, TypeVar

from typing_extensions import assert_type

import fnn
from fnn import nn

key = fnn.random.key(0)
x = fnn.random.normal(key, (4, 28, 28))
P = TypeVar("P")
S = TypeVar("S")

# -- mlp: the exact tuple for 1 to 4 sizes, MLPParams otherwise ----------------------------
mlp2 = nn.mlp((64, 10))
mlp3 = nn.mlp((128, 64, 10))
p2 = mlp2.init(key, (28, 28))
p3 = mlp3.init(key, (28, 28))
assert_type(p3, tuple[None, nn.DenseParams, None, nn.DenseParams, None, nn.DenseParams])
assert_type(mlp3.init_state((28, 28)), None)
assert_type(nn.mlp([128, 64, 10]).init(key, (28, 28)), tuple[nn.DenseParams | None, ...])
mlp2.apply(p2, x)
mlp2.apply(p3, x)  # E: arg-type
print(p3[1].w.shape)
print(p3[0].w)  # E: attr-defined

# -- cnn: one entry per layer (their number depends on the arguments) ----------------------
small_cnn = nn.cnn()
cnn_params = small_cnn.init(key, (28, 28))
assert_type(cnn_params, tuple[nn.Conv2DParams | nn.DenseParams | nn.BatchNormParams | None, ...])
assert_type(small_cnn.init_state((28, 28)), None)
bn_cnn = nn.cnn(batch_norm=True)
assert_type(bn_cnn.init_state((28, 28)), tuple[nn.BatchNormState | None, ...])
small_cnn.apply(cnn_params, x)
mlp3.apply(cnn_params, x)  # E: arg-type
small_cnn.apply(cnn_params, x, bn_cnn.init_state((28, 28)))  # E: arg-type

# -- serial: exact params and state for up to 16 layers ------------------------------------
ten = nn.serial(
    nn.flatten(), nn.dense(64), nn.relu(), nn.dense(64), nn.relu(),
    nn.dense(64), nn.relu(), nn.dense(32), nn.relu(), nn.dense(10),
)  # fmt: skip
p10 = ten.init(key, (28, 28))
D = nn.DenseParams
assert_type(p10, tuple[None, D, None, D, None, D, None, D, None, D])
other_ten = nn.serial(
    nn.flatten(), nn.relu(), nn.dense(64), nn.relu(), nn.dense(64),
    nn.dense(64), nn.relu(), nn.dense(32), nn.relu(), nn.dense(10),
)  # fmt: skip
other_ten.apply(p10, x)  # E: arg-type
assert_type(
    nn.serial(ten, ten).init(key, (28, 28))[1], tuple[None, D, None, D, None, D, None, D, None, D]
)

# -- model state: typed like params, None for a model without ------------------------------
with_bn = nn.serial(nn.flatten(), nn.dense(16), nn.batch_norm(), nn.relu(), nn.dense(10))
bn_params = with_bn.init(key, (28, 28))
bn_state = with_bn.init_state((28, 28))
assert_type(bn_state, tuple[None, None, nn.BatchNormState, None, None])
assert_type(nn.dense(3).init_state((2,)), None)
assert_type(nn.batch_norm().init_state((2,)), nn.BatchNormState)
with_bn.apply(bn_params, x, bn_state)
mlp3.apply(p3, x, bn_state)  # E: arg-type
with_bn.apply(bn_params, x, (None, None, None, None, None))  # E: arg-type
assert_type(nn.residual(nn.batch_norm()).init_state((3,)), tuple[nn.BatchNormState, None])


def initial(model: nn.Layer[P, S], in_shape: tuple[int, ...]) -> tuple[P, S]:
    """Generic code: every layer has init and init_state, stateful or not (no branch)."""
    return model.init(key, in_shape), model.init_state(in_shape)


assert_type(initial(mlp2, (28, 28)), tuple[tuple[None, D, None, D], None])
assert_type(initial(nn.batch_norm(), (3,))[1], nn.BatchNormState)

# -- sequence models -----------------------------------------------------------------------
ids_model = nn.embedding(65, 32)
assert_type(ids_model.init(key, (16,)), nn.EmbeddingParams)
assert_type(nn.lstm(32).init(key, (16, 8)), nn.LSTMParams)
assert_type(nn.gru(32).init(key, (16, 8)), nn.GRUParams)
assert_type(nn.lstm(32).init_state((16, 8)), None)
block = nn.transformer_block(32, 4, causal=True)
assert_type(block.init(key, (16, 32)), nn.BlockParams)
gpt = nn.gpt(vocab=65, context=16, layers=2, heads=2, features=32)
gpt_params = gpt.init(key, (16,))
assert_type(gpt_params, nn.TiedGPTParams)
assert_type(gpt_params[0], nn.EmbeddingParams)
assert_type(nn.gpt(65, 16, 2, 2, 32, tied=False).init(key, (16,)), nn.GPTParams)
assert_type(gpt.init_state((16,)), None)
nn.gpt(65, 16, 2, 2, 32, tied=False).apply(gpt_params, x)  # E: arg-type
block.apply(gpt_params, x)  # E: arg-type
tied_lstm = nn.tied(65, 32, nn.lstm(32))
assert_type(tied_lstm.init(key, (16,)), tuple[nn.EmbeddingParams, nn.LSTMParams])

# -- a layer's own dtype: what nn.param takes ----------------------------------------------


def declared(dtype: object) -> Any:
    return nn.param((3,), nn.zeros, dtype)  # E: arg-type
