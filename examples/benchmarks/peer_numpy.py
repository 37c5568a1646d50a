"""The NumPy reference: the same training written as one hand-tuned, in-place NumPy loop.

Not a library and not a target: it shows what NumPy calls alone can reach on this
machine, free of every contract fnn keeps. All buffers (parameters, gradients, Adam's
moments, activations, the batch) are allocated once and overwritten every step; each
batch is gathered into the same buffer (``np.take(..., out=, mode="clip")``, which needs
no temporary); Adam runs its 12 whole-array passes in place, flushing moments below
2**-100 to zero every 16 steps as fnn does (else subnormals slow it down). It runs the
same NumPy operations as fnn's hot path without fnn's contracts (new parameters and a new
optimizer state every step with the old ones untouched, checked inputs, layers composed
as functions): the ratio of fnn to it is what those contracts cost, and the ratio of this
loop to JAX is what NumPy's one-pass-per-operation execution costs against a compiler
that fuses the passes.

The model, initialization (He-normal weights from NumPy's generator seeded with the
workload's seed, zero biases), loss and optimizer are the workload's; the order of each
epoch is ``default_rng(seed + epoch).permutation`` (timed, as every peer's is).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import workload as wl

from fnn.optim._transforms import FLUSH_BELOW, FLUSH_EVERY


def _layer_views(flat: wl.F32, shapes: list[tuple[int, int]]) -> tuple[list[wl.F32], list[wl.F32]]:
    """Each layer's weights ``(in, out)`` and biases ``(out,)`` as views into ``flat``,
    laid out as fnn ravels an MLP's params (w then b, layer after layer)."""
    weights, biases, at = [], [], 0
    for fan_in, fan_out in shapes:
        weights.append(flat[at : at + fan_in * fan_out].reshape(fan_in, fan_out))
        at += fan_in * fan_out
        biases.append(flat[at : at + fan_out])
        at += fan_out
    return weights, biases


class _Net:
    """Every buffer of the loop: flat parameters, gradients and moments (with per-layer
    views), and per-layer activation buffers for a full batch."""

    def __init__(self, sizes: tuple[int, ...], batch: int, seed: int) -> None:
        shapes = [(a, b) for a, b in itertools.pairwise(sizes)]
        n = sum(a * b + b for a, b in shapes)
        self.params = np.zeros(n, np.float32)
        self.grads = np.empty(n, np.float32)
        self.mu = np.zeros(n, np.float32)
        self.nu = np.zeros(n, np.float32)
        self.scratch = np.empty(n, np.float32)
        self.w, self.b = _layer_views(self.params, shapes)
        self.dw, self.db = _layer_views(self.grads, shapes)
        rng = np.random.default_rng(seed)
        for w, (fan_in, fan_out) in zip(self.w, shapes):
            w[...] = rng.standard_normal((fan_in, fan_out), np.float32)
            w *= np.float32(math.sqrt(2.0 / fan_in))
        self.x = np.empty((batch, sizes[0]), np.float32)
        self.h = [np.empty((batch, b), np.float32) for _, b in shapes]
        self.dh = [np.empty((batch, a), np.float32) for a, _ in shapes]

    def forward(self, x: wl.F32) -> list[wl.F32]:
        """Activations of every layer for ``x`` (views of the buffers), logits last."""
        acts, a = [], x
        last = len(self.w) - 1
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            h = np.matmul(a, w, out=self.h[i][: len(x)])
            h += b
            if i < last:
                np.maximum(h, 0, out=h)
            acts.append(h)
            a = h
        return acts

    def backward(self, x: wl.F32, acts: list[wl.F32], labels: wl.I64) -> None:
        """Softmax cross-entropy's gradient, then every layer's, into ``self.grads``."""
        z = acts[-1]
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        z[np.arange(len(x)), labels] -= 1
        z *= np.float32(1 / len(x))
        dy = z
        for i in range(len(self.w) - 1, -1, -1):
            below = x if i == 0 else acts[i - 1]
            np.matmul(below.T, dy, out=self.dw[i])
            np.sum(dy, axis=0, out=self.db[i])
            if i > 0:
                dx = np.matmul(dy, self.w[i].T, out=self.dh[i][: len(x)])
                dx *= below > 0
                dy = dx

    def adam(self, t: int, lr: float, b1: float = 0.9, b2: float = 0.999) -> None:
        """One in-place Adam update (``t`` 1-based), eps 1e-8 outside the square root."""
        g, mu, nu, tmp = self.grads, self.mu, self.nu, self.scratch
        mu *= b1
        np.multiply(g, 1 - b1, out=tmp)
        mu += tmp
        np.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        nu *= b2
        nu += tmp
        if (t - 1) % FLUSH_EVERY == 0:  # fnn's rule, which counts steps from 0
            np.copyto(mu, 0, where=np.abs(mu) < FLUSH_BELOW)
            np.copyto(nu, 0, where=nu < FLUSH_BELOW)
        root_bc2 = math.sqrt(1 - b2**t)
        np.sqrt(nu, out=tmp)
        tmp += 1e-8 * root_bc2
        np.divide(mu, tmp, out=tmp)
        tmp *= lr * root_bc2 / (1 - b1**t)
        self.params -= tmp

    def logits(self, x: wl.F32) -> wl.F32:
        a = x
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            a = a @ w + b
            if i < len(self.w) - 1:
                a = np.maximum(a, 0)
        return a


def run(w: wl.Workload) -> dict[str, Any]:
    d = wl.load_data(w.model, w.train_size)
    net = _Net(w.sizes, w.batch_size, w.seed)
    n, size = len(d.x_train), w.batch_size

    rss = wl.rss_bytes()
    clock = wl.EpochClock()
    t = 0
    for epoch in range(w.epochs):
        with clock:
            order = np.random.default_rng(w.seed + epoch).permutation(n)
            for start in range(0, n, size):
                idx = order[start : start + size]
                x = np.take(d.x_train, idx, axis=0, out=net.x[: len(idx)], mode="clip")
                net.backward(x, net.forward(x), d.y_train[idx])
                t += 1
                net.adam(t, w.lr)

    logits = net.logits(d.x_test)
    return wl.result("numpy", w, clock, logits, d.y_test, {"numpy": np.__version__}, rss)
