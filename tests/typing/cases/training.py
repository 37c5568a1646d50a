"""Optimizer states, TrainState, fit's result and load_model, as a user's script meets them.

A line ending ``# E: <code>`` must give exactly that mypy error; every other line must
type-check, ``assert_type`` lines included (tests/typing/test_cases.py)."""

from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import assert_type

import fnn
from fnn import losses, nn, optim

key = fnn.random.key(0)
x = fnn.random.normal(key, (32, 4))
y = np.arange(32) % 3
model = nn.mlp((8, 3))
params = model.init(key, (4,))
Params = tuple[None, nn.DenseParams, None, nn.DenseParams]

# -- optimizers: generic over their moments ------------------------------------------------
adam = optim.adam(1e-3)
sgd = optim.sgd(0.1)
assert_type(adam, optim.Optimizer[tuple[optim.AdamState, optim.EmptyState]])
assert_type(sgd, optim.Optimizer[optim.SGDMoments])
assert_type(
    optim.adamw(), optim.Optimizer[tuple[optim.AdamState, optim.EmptyState, optim.EmptyState]]
)
assert_type(optim.rmsprop(), optim.Optimizer[optim.RMSpropMoments])
assert_type(optim.adagrad(), optim.Optimizer[tuple[optim.AdagradState, optim.EmptyState]])
assert_type(optim.momentum(), optim.Optimizer[optim.SGDMoments])
adam_state = adam.init(params)
sgd_state = sgd.init(params)
assert_type(adam_state, optim.OptState[Params, tuple[optim.AdamState, optim.EmptyState]])
grads = fnn.grad(model, losses.softmax_cross_entropy)(params, x, y)
assert_type(grads, Params)
adam_state, params = adam.update(adam_state, grads)
adam.update(sgd_state, grads)  # E: arg-type
optim.adamw().update(adam_state, grads)  # E: arg-type
adam.update(adam_state, grads[1])  # E: misc
clipped = optim.chain(
    optim.clip_by_global_norm(1.0), optim.scale_by_adam(), optim.scale_by_learning_rate(1e-3)
)
assert_type(clipped, optim.Optimizer[tuple[optim.EmptyState, optim.AdamState, optim.EmptyState]])
anything: optim.Optimizer[Any] = clipped  # a slot for any optimizer takes each
anything = adam

# -- fit, TrainState -----------------------------------------------------------------------
state = fnn.fit(model, losses.softmax_cross_entropy, adam, x, y, key=key, epochs=1)
assert_type(state, fnn.train.TrainState[Params])
assert_type(state.params, Params)
assert_type(state.opt.params, Params)
nn.mlp((16, 8, 3)).apply(state.params, x)  # E: arg-type
nn.mlp((16, 3)).apply(state.params, x)  # the same type, other widths: found at run time
result = fnn.evaluate(model, losses.softmax_cross_entropy, state.params, x, y)
assert_type(result.accuracy, float)

# -- load_model: what a file holds is known at run time only -------------------------------
loaded = fnn.io.load_model(Path("model.npz"))
assert_type(loaded.model, nn.Layer[Any, Any])
assert_type(loaded.params, Any)
assert_type(loaded.state, Any)
model.apply(loaded, x)  # E: arg-type
checked: Params = (
    loaded.params
)  # the user's claim; load_model checked params against the file's model
