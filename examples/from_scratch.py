"""The classic from-scratch MLP: forward and backward written out by hand in NumPy.

The 784-128-64-10 ReLU network with softmax cross-entropy, as every "neural network
from scratch" tutorial writes it: the params are a tuple of ``nn.DenseParams`` records,
``loss_and_grad`` is the whole forward and backward pass. The script checks that
gradient against finite differences (``fnn.check_grad``, float64, away from ReLU
kinks) and against ``fnn.grad(nn.mlp(...), losses.softmax_cross_entropy)``, then
trains with it and ``fnn.optim.adam`` for a couple of epochs.

Run: ``python examples/from_scratch.py`` (``--epochs 5``, ``--dataset mnist``, ...).
"""

from __future__ import annotations

import time
from typing import Any

import _common
import numpy as np

import fnn
from fnn import data, losses, nn, optim

Params = tuple[nn.DenseParams, ...]
SIZES = (784, 128, 64, 10)


def init(key: fnn.random.Key, dtype: Any = np.float32) -> Params:
    """He-normal weights ``N(0, 2 / fan_in)`` and zero biases, one record per layer."""
    keys = fnn.random.split(key, len(SIZES) - 1)
    return tuple(
        nn.DenseParams(fnn.random.normal(k, (m, n), dtype) * (2 / m) ** 0.5, np.zeros(n, dtype))
        for k, m, n in zip(keys, SIZES[:-1], SIZES[1:])
    )


def forward(params: Params, x: _common.Array) -> list[_common.Array]:
    """Every layer's input (images flattened to 784 features) and the logits last."""
    acts = [x.reshape(len(x), -1)]
    for i, p in enumerate(params):
        z = acts[-1] @ p.w + p.b
        acts.append(z if i == len(params) - 1 else np.maximum(z, 0))
    return acts


def cross_entropy(logits: _common.Array, y: _common.Array) -> tuple[float, _common.Array]:
    """Mean softmax cross-entropy and its gradient ``(softmax - one_hot) / batch``."""
    z = logits - logits.max(axis=1, keepdims=True)  # shifted: exp cannot overflow
    e = np.exp(z)
    rows = np.arange(len(y))
    loss = float(np.mean(np.log(e.sum(axis=1)) - z[rows, y]))
    d = e / e.sum(axis=1, keepdims=True)
    d[rows, y] -= 1
    return loss, d / len(y)


def loss_and_grad(params: Params, x: _common.Array, y: _common.Array) -> tuple[float, Params]:
    """The batch's loss and its gradient w.r.t. every param: forward, then backward."""
    acts = forward(params, x)
    loss, d = cross_entropy(acts[-1], y)
    grads = []
    for i in reversed(range(len(params))):
        grads.append(nn.DenseParams(acts[i].T @ d, d.sum(axis=0)))
        if i > 0:  # back through dense i (dx = d @ w.T) and the ReLU before it
            d = (d @ params[i].w.T) * (acts[i] > 0)
    return loss, tuple(reversed(grads))


def as_mlp_params(params: Params) -> tuple[Any, ...]:
    """The same records laid out as ``nn.mlp``'s params: (None, dense, None, dense, ...)."""
    return tuple(node for p in params for node in (None, p))


def check(key: fnn.random.Key, x: _common.Array, y: _common.Array) -> dict[str, float]:
    """Finite differences and fnn's own gradient against ``loss_and_grad``, in float64."""
    params = init(key, np.float64)
    k_pick, k_entries = fnn.random.split(key)
    for attempt in range(100):  # a batch of 4 whose hidden units all sit off the kink
        pick = fnn.random.permutation(fnn.random.fold_in(k_pick, attempt), len(x))[:4]
        xb, yb = x[pick].astype(np.float64), y[pick]
        hidden = zip(forward(params, xb)[:-2], params)
        margin = min(float(np.abs(a @ p.w + p.b).min()) for a, p in hidden)
        if margin > 1e-3:
            break
    else:
        raise RuntimeError("found no batch whose ReLU inputs are all 1e-3 away from 0")
    value, mine = loss_and_grad(params, xb, yb)
    rows, errors = [], []
    for i, layer in enumerate(params):  # 250 entries of each layer, picked by a key

        def f(p: nn.DenseParams, i: int = i) -> float:
            return cross_entropy(forward((*params[:i], p, *params[i + 1 :]), xb)[-1], yb)[0]

        k = fnn.random.fold_in(k_entries, i)
        report = fnn.check_grad(f, mine[i], layer, max_entries=250, key=k)
        errors.append(report.max_rel_error)
        rows.append((f"dense {i}", report.checked, f"{errors[-1]:.2g}", report.where))
    library = fnn.grad(nn.mlp(SIZES[1:]), losses.softmax_cross_entropy)
    theirs = library(as_mlp_params(params), xb, yb)[1::2]
    difference = fnn.tree.max_abs_difference(tuple(theirs), mine)
    worst = max(errors)
    print(f"finite differences (float64; smallest |ReLU input| {margin:.3g}):")
    print(_common.table(("layer", "entries", "max rel error", "where"), rows))
    print(f"fnn.grad(nn.mlp(...)) differs from the hand-written gradient by {difference:.3g}")
    if not (worst < 1e-6 and difference < 1e-12):
        raise RuntimeError("the hand-written gradient is wrong")
    return {"max_rel_error": worst, "vs_fnn_grad": difference, "loss": value}


def accuracy(params: Params, x: _common.Array, y: _common.Array) -> float:
    return float(np.mean(forward(params, x)[-1].argmax(axis=1) == y))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _common.parser(__doc__, epochs=2, out="from_scratch").parse_args(argv)
    ds = _common.setup(args)
    k_check, k_init, k_shuffle = fnn.random.split(fnn.random.key(args.seed), 3)
    figures: dict[str, Any] = check(k_check, ds.x_train, ds.y_train)

    params = init(k_init)
    optimizer = optim.adam(1e-3)
    state = optimizer.init(params)
    rows, losses_per_epoch = [], []
    for epoch in range(args.epochs):
        total, began = 0.0, time.perf_counter()
        batches = data.batches(fnn.random.fold_in(k_shuffle, epoch), ds.x_train, ds.y_train, 128)
        for xb, yb in batches:
            value, grads = loss_and_grad(params, xb, yb)
            state, params = optimizer.update(state, grads)
            total += value * len(yb)
        seconds = f"{time.perf_counter() - began:.1f}"
        losses_per_epoch.append(total / len(ds.y_train))
        test_accuracy = accuracy(params, ds.x_test, ds.y_test)
        rows.append((epoch + 1, losses_per_epoch[-1], test_accuracy, seconds))
    print(_common.table(("epoch", "train loss", "test accuracy", "seconds"), rows))
    return {**figures, "losses": losses_per_epoch, "test_accuracy": rows[-1][2]}


if __name__ == "__main__":
    main()
