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


def run(w: wl.Workload, scan: bool) -> dict[str, Any]:
    jax: Any = importlib.import_module("jax")
    jnp: Any = importlib.import_module("jax.numpy")

    d = wl.load_data()
    x, y = jnp.asarray(d.x_train), jnp.asarray(d.y_train.astype(np.int32))
    key = jax.random.key(w.seed)
    k_init, k_data = jax.random.split(key)
    params = []
    for k, fan_in, fan_out in zip(jax.random.split(k_init, len(w.sizes) - 1), w.sizes, w.sizes[1:]):
        weight = jax.random.normal(k, (fan_in, fan_out), jnp.float32) * math.sqrt(2.0 / fan_in)
        params.append((weight, jnp.zeros(fan_out, jnp.float32)))
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = (params, zeros, jax.tree_util.tree_map(jnp.zeros_like, params), jnp.float32(0))
    step = _step(jax, jnp, w.lr)
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

    logits = np.asarray(jax.jit(lambda p, x: _logits(jax, p, x))(state[0], d.x_test))
    versions = {
        "jax": str(jax.__version__),
        "jaxlib": str(importlib.import_module("jaxlib").__version__),
    }
    return wl.result("jax-scan" if scan else "jax", w, clock, logits, d.y_test, versions, rss)
