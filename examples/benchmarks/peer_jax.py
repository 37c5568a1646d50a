"""The JAX peers: ``jax`` jits one training step; ``jax-scan`` jits a whole epoch.

Both share the model, the loss and Adam written in ``jax.numpy`` (PyTorch's Adam: ``eps``
outside the square root of the bias-corrected second moment; XLA fuses it into the step).

* ``jax``: the step ``(state, x, y, idx) -> state`` is ``jax.jit``-ed with the state
  donated; the data stays on the device and the step gathers its batch (``x[idx]``)
  itself. Each epoch draws a NumPy permutation (timed, as every peer's) and calls the
  step once per batch; the epoch ends when the state is ready (``block_until_ready``).
* ``jax-scan``: one jitted call per epoch: ``jax.random.permutation``, then
  ``lax.scan`` of the same step over the full batches, then the step once more on the
  smaller last batch, if any.

The first epoch includes compilation (the driver skips it). JAX is imported inside
:func:`run` (it is not a dependency of fnn; mypy sees it as ``Any``). XLA_FLAGS'
thread settings do not bind XLA's CPU thread pool in current jaxlib, which sizes it from
the CPU affinity mask: the driver pins one-thread runs to one CPU.

The CNN workload has the same structure (the same state-donating jitted step over the
device's data, the same epoch loop) with the model written in ``jax.lax``:
``conv_general_dilated`` on NHWC images and HWIO kernels ("VALID"), ReLU,
``reduce_window`` max-pooling (2x2, stride 2), flatten, the dense layers, and dropout in
training from a ``jax.random`` key the state carries and splits at every step; Adam is
optax's ``adam(lr)`` (PyTorch's Adam too), its update fused into the jitted step. Only
``jax`` runs it: ``run(w, scan=True)`` works, but XLA's CPU backend runs these
convolutions about 15x slower inside ``lax.scan`` than in the jitted step, so
``run_peer.py`` does not offer ``jax-scan`` for the CNN.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import workload as wl

B1, B2, EPS = 0.9, 0.999, 1e-8


def _logits(jax: Any, params: Any, x: Any) -> Any:
    """The MLP's output: ReLU after every layer but the last."""
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def _step(jax: Any, jnp: Any, lr: float) -> Callable[[Any, Any, Any, Any], Any]:
    """The training step on state ``(params, mu, nu, t)``; ``params`` is a list of
    ``(w, b)`` pairs."""

    def loss(params: Any, x: Any, y: Any) -> Any:
        log_p = jax.nn.log_softmax(_logits(jax, params, x))
        return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))

    def step(state: Any, x: Any, y: Any, idx: Any) -> Any:
        params, mu, nu, t = state
        grads = jax.grad(loss)(params, x[idx], y[idx])
        t = t + 1
        tree_map = jax.tree_util.tree_map
        mu = tree_map(lambda m, g: B1 * m + (1 - B1) * g, mu, grads)
        nu = tree_map(lambda v, g: B2 * v + (1 - B2) * g * g, nu, grads)
        bc1, bc2 = 1 - B1**t, 1 - B2**t
        params = tree_map(
            lambda p, m, v: p - lr * (m / bc1) / (jnp.sqrt(v / bc2) + EPS), params, mu, nu
        )
        return params, mu, nu, t

    return step


def _cnn_logits(jax: Any, params: Any, x: Any, key: Any = None, rate: float = 0.0) -> Any:
    """The CNN's output for images ``x`` ``(n, 28, 28)``: per conv block a "VALID" conv
    (NHWC, HWIO), ReLU and 2x2 max-pool; flatten, dense, ReLU, dropout (when ``key`` is
    given and ``rate > 0``), dense. ``params`` is a list of ``(w, b)`` pairs."""
    lax = jax.lax
    h = x[..., None]
    *convs, (w1, b1), (w2, b2) = params
    for w, b in convs:
        h = lax.conv_general_dilated(
            h, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        h = jax.nn.relu(h + b)
        h = lax.reduce_window(h, -float("inf"), lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    h = jax.nn.relu(h.reshape(h.shape[0], -1) @ w1 + b1)
    if key is not None and rate > 0:
        keep = jax.random.bernoulli(key, 1.0 - rate, h.shape)
        h = jax.numpy.where(keep, h / (1.0 - rate), 0.0)
    return h @ w2 + b2


def _cnn_init(jax: Any, jnp: Any, key: Any, w: wl.Workload) -> list[tuple[Any, Any]]:
    """He-normal weights (std ``sqrt(2 / fan_in)``, ``fan_in = 3 * 3 * in_channels`` for
    the kernels), zero biases."""
    shapes: list[tuple[int, ...]] = []
    height, width = wl.IMAGE_SHAPE
    channels = 1
    for features in w.channels:
        shapes.append((3, 3, channels, features))
        channels, height, width = features, (height - 2) // 2, (width - 2) // 2
    shapes += [(channels * height * width, w.dense_size), (w.dense_size, 10)]
    params = []
    for k, shape in zip(jax.random.split(key, len(shapes)), shapes):
        fan_in = math.prod(shape[:-1])
        weight = jax.random.normal(k, shape, jnp.float32) * math.sqrt(2.0 / fan_in)
        params.append((weight, jnp.zeros(shape[-1], jnp.float32)))
    return params


def _cnn_step(jax: Any, jnp: Any, tx: Any, rate: float) -> Callable[[Any, Any, Any, Any], Any]:
    """The CNN's training step on state ``(params, opt_state, key)``: a fresh dropout key
    split off the state's at every step, optax's update applied to the params."""
    apply_updates = importlib.import_module("optax").apply_updates

    def loss(params: Any, x: Any, y: Any, key: Any) -> Any:
        log_p = jax.nn.log_softmax(_cnn_logits(jax, params, x, key, rate))
        return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))

    def step(state: Any, x: Any, y: Any, idx: Any) -> Any:
        params, opt_state, key = state
        key, dropout_key = jax.random.split(key)
        grads = jax.grad(loss)(params, x[idx], y[idx], dropout_key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return apply_updates(params, updates), opt_state, key

    return step


def run(w: wl.Workload, scan: bool) -> dict[str, Any]:
    jax: Any = importlib.import_module("jax")
    jnp: Any = importlib.import_module("jax.numpy")

    d = wl.load_data(w.model, w.train_size)
    x, y = jnp.asarray(d.x_train), jnp.asarray(d.y_train.astype(np.int32))
    key = jax.random.key(w.seed)
    versions = {
        "jax": str(jax.__version__),
        "jaxlib": str(importlib.import_module("jaxlib").__version__),
    }
    if w.model == "mlp":
        k_init, k_data = jax.random.split(key)
        params: list[tuple[Any, Any]] = []
        splits = jax.random.split(k_init, len(w.sizes) - 1)
        for k, fan_in, fan_out in zip(splits, w.sizes, w.sizes[1:]):
            weight = jax.random.normal(k, (fan_in, fan_out), jnp.float32) * math.sqrt(2.0 / fan_in)
            params.append((weight, jnp.zeros(fan_out, jnp.float32)))
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        state: Any = (params, zeros, jax.tree_util.tree_map(jnp.zeros_like, params), jnp.float32(0))
        step = _step(jax, jnp, w.lr)

        def logits_of(p: Any, x: Any) -> Any:
            return _logits(jax, p, x)

    else:
        optax: Any = importlib.import_module("optax")
        k_init, k_data, k_dropout = jax.random.split(key, 3)
        params = _cnn_init(jax, jnp, k_init, w)
        tx = optax.adam(w.lr)
        state = (params, tx.init(params), k_dropout)
        step = _cnn_step(jax, jnp, tx, w.dropout)

        def logits_of(p: Any, x: Any) -> Any:
            return _cnn_logits(jax, p, x)

        versions["optax"] = str(optax.__version__)
    n, size = len(d.x_train), w.batch_size
    full = n // size

    def epoch(state: Any, x: Any, y: Any, key: Any) -> Any:
        order = jax.random.permutation(key, n)
        batches = order[: full * size].reshape(full, size)
        state, _ = jax.lax.scan(lambda s, idx: (step(s, x, y, idx), None), state, batches)
        if full * size < n:
            state = step(state, x, y, order[full * size :])
        return state

    jit_step = jax.jit(step, donate_argnums=0)
    jit_epoch = jax.jit(epoch, donate_argnums=0)
    rng = np.random.default_rng(w.seed)

    rss = wl.rss_bytes()
    clock = wl.EpochClock()
    for e in range(w.epochs):
        with clock:
            if scan:
                state = jit_epoch(state, x, y, jax.random.fold_in(k_data, e))
            else:
                order = rng.permutation(n).astype(np.int32)
                for start in range(0, n, size):
                    state = jit_step(state, x, y, order[start : start + size])
            jax.block_until_ready(state)

    jit_logits = jax.jit(logits_of)
    logits = wl.in_chunks(lambda xs: jit_logits(state[0], xs), d.x_test, w.eval_chunk)
    return wl.result("jax-scan" if scan else "jax", w, clock, logits, d.y_test, versions, rss)
