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
assert_type(state, fnn.train.TrainState[Params, None])
assert_type(state.params, Params)
assert_type(state.opt.params, Params)
assert_type(state.model_state, None)
nn.mlp((16, 8, 3)).apply(state.params, x)  # E: arg-type
nn.mlp((16, 3)).apply(state.params, x)  # the same type, other widths: found at run time
result = fnn.evaluate(model, losses.softmax_cross_entropy, state.params, x, y)
assert_type(result.accuracy, float)

# -- TrainState[P, S]: the model state's type flows from the model -----------------------
ce = losses.softmax_cross_entropy
bn = nn.serial(nn.dense(8), nn.batch_norm(), nn.relu(), nn.dense(3))
BNParams = tuple[nn.DenseParams, nn.BatchNormParams, None, nn.DenseParams]
BNState = tuple[None, nn.BatchNormState, None, None]
bn_state = fnn.fit(bn, ce, adam, x, y, key=key, epochs=1)
assert_type(bn_state, fnn.train.TrainState[BNParams, BNState])
assert_type(bn_state.model_state, BNState)
assert_type(bn_state.model_state[1].mean, nn.Array)
if bn_state.best is not None:
    assert_type(bn_state.best.model_state, BNState)
bn_params = bn.init(key, (4,))
bn_step = fnn.train_step(bn, ce, adam)
assert_type(bn_step, fnn.train.Step[BNParams, BNState])
started = fnn.train_state(adam, bn_params, key, bn.init_state((4,)))
assert_type(started, fnn.train.TrainState[BNParams, BNState])
assert_type(bn_step(started, (x, y)), fnn.train.TrainState[BNParams, BNState])
assert_type(fnn.train_epoch(bn_step, started, [(x, y)]), fnn.train.TrainState[BNParams, BNState])
stateless = fnn.train_state(adam, bn_params, key)  # the model state left out
assert_type(stateless, fnn.train.TrainState[BNParams, None])
bn_step(stateless, (x, y))  # E: arg-type
fnn.fit(bn, ce, adam, x, y, key=key, epochs=2, state=started)
fnn.fit(model, ce, adam, x, y, key=key, epochs=2, state=bn_state)  # E: misc
fnn.fit(bn, ce, adam, x, y, key=key, epochs=2, model_state=bn_state.model_state)
lone = nn.batch_norm().init_state((8,))  # another model's state
fnn.fit(bn, ce, adam, x, y, key=key, epochs=2, model_state=lone)  # E: misc
windows = fnn.fit_steps(bn, ce, adam, lambda k: (x, y), key=key, steps=2, state=started)
assert_type(windows, fnn.train.TrainState[BNParams, BNState])
fnn.train_epoch(fnn.train_step(model, ce, adam), started, [])  # E: arg-type
fnn.evaluate(bn, ce, bn_state.params, x, y, model_state=bn_state.model_state)
fnn.predict(bn, bn_state.params, x, model_state=lone)  # E: misc
fnn.predict_proba(bn, bn_state.params, x, model_state=bn_state.model_state)

# -- load_model: what a file holds is known at run time only -------------------------------
loaded = fnn.io.load_model(Path("model.npz"))
assert_type(loaded.model, nn.Layer[Any, Any])
assert_type(loaded.params, Any)
assert_type(loaded.state, Any)
model.apply(loaded, x)  # E: arg-type
checked: Params = (
    loaded.params
)  # the user's claim; load_model checked params against the file's model
