"""The named optimizers' published update rules written leaf by leaf in float64, and the
random trees and gradients the optim tests run them on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fnn import nn, optim, random, tree

Params = Any

Reference = Callable[[Params, Params, int], Params]


def random_tree(key: random.Key, dtype: Any = np.float64) -> Any:
    """A small mixed tree: dense params, a dict and a scalar-shaped leaf."""
    k1, k2, k3, k4 = random.split(key, 4)
    return (
        nn.DenseParams(random.normal(k1, (4, 3), dtype), random.normal(k2, (3,), dtype)),
        None,
        {"gain": random.normal(k3, (), dtype), "table": random.normal(k4, (2, 5), dtype)},
    )


def gradients(key: random.Key, like: Any, steps: int) -> list[Any]:
    """``steps`` float64 trees shaped like ``like``, drawn from ``key``."""
    return [
        tree.unflatten(
            tree.structure(like),
            [
                random.normal(random.fold_in(random.fold_in(key, i), j), np.shape(leaf), np.float64)
                for j, leaf in enumerate(tree.leaves(like))
            ],
        )
        for i in range(steps)
    ]


class Leafwise:
    """A straightforward float64 reference: the published formula per leaf, per step."""

    def __init__(
        self,
        rule: Callable[
            [np.ndarray[Any, Any], np.ndarray[Any, Any], dict[str, Any], int, bool],
            np.ndarray[Any, Any],
        ],
    ):
        self.rule = rule

    def run(self, params: Any, grads: list[Any]) -> Any:
        leaves = [np.array(p, dtype=np.float64) for p in tree.leaves(params)]
        weights = tree.leaves(tree.weight_mask(params))
        states: list[dict[str, Any]] = [{} for _ in leaves]
        for t, g in enumerate(grads, start=1):
            for i, gi in enumerate(tree.leaves(g)):
                leaves[i] = self.rule(
                    leaves[i], np.asarray(gi, np.float64), states[i], t, weights[i]
                )
        return tree.unflatten(tree.structure(params), leaves)


def lr_at(lr: float | optim.Schedule, t: int) -> float:
    return float(lr(t - 1)) if callable(lr) else float(lr)


def ref_sgd(lr: Any, momentum: float = 0.0, nesterov: bool = False) -> Leafwise:
    def rule(p: Any, g: Any, s: dict[str, Any], t: int, is_w: bool) -> Any:
        if momentum:
            s["v"] = momentum * s.get("v", 0.0) + g
            step = g + momentum * s["v"] if nesterov else s["v"]
        else:
            step = g
        return p - lr_at(lr, t) * step

    return Leafwise(rule)


def ref_adagrad(lr: Any, init: float = 0.0, eps: float = 1e-10) -> Leafwise:
    def rule(p: Any, g: Any, s: dict[str, Any], t: int, is_w: bool) -> Any:
        s["G"] = s.get("G", init) + g * g
        return p - lr_at(lr, t) * g / (np.sqrt(s["G"]) + eps)

    return Leafwise(rule)


def ref_rmsprop(lr: Any, rho: float = 0.99, eps: float = 1e-8, momentum: float = 0.0) -> Leafwise:
    def rule(p: Any, g: Any, s: dict[str, Any], t: int, is_w: bool) -> Any:
        s["v"] = rho * s.get("v", 0.0) + (1 - rho) * g * g
        step = g / (np.sqrt(s["v"]) + eps)
        if momentum:
            s["b"] = momentum * s.get("b", 0.0) + step
            step = s["b"]
        return p - lr_at(lr, t) * step

    return Leafwise(rule)


def ref_adam(
    lr: Any,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    wd: float = 0.0,
    weights_only: bool = False,
) -> Leafwise:
    def rule(p: Any, g: Any, s: dict[str, Any], t: int, is_w: bool) -> Any:
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        m_hat = s["m"] / (1 - b1**t)
        v_hat = s["v"] / (1 - b2**t)
        decay = wd * p if (is_w or not weights_only) else 0.0
        return p - lr_at(lr, t) * (m_hat / (np.sqrt(v_hat) + eps) + decay)

    return Leafwise(rule)


SCHEDULE = optim.linear_warmup(optim.cosine_decay(0.05, 30), 5)

CASES: list[tuple[str, optim.Optimizer[Any], Leafwise]] = [
    ("sgd", optim.sgd(0.1), ref_sgd(0.1)),
    ("sgd-momentum", optim.sgd(0.1, momentum=0.9), ref_sgd(0.1, 0.9)),
    ("sgd-nesterov", optim.sgd(0.1, momentum=0.9, nesterov=True), ref_sgd(0.1, 0.9, True)),
    (
        "sgd-momentum-decay",
        optim.sgd(optim.inverse_time_decay(0.1, 0.01), momentum=0.5),
        ref_sgd(optim.inverse_time_decay(0.1, 0.01), 0.5),
    ),
    ("adagrad", optim.adagrad(0.1), ref_adagrad(0.1)),
    ("adagrad-init", optim.adagrad(0.1, 0.1, 1e-7), ref_adagrad(0.1, 0.1, 1e-7)),
    ("rmsprop", optim.rmsprop(0.01), ref_rmsprop(0.01)),
    ("rmsprop-momentum", optim.rmsprop(0.01, 0.9, 1e-6, 0.9), ref_rmsprop(0.01, 0.9, 1e-6, 0.9)),
    ("adam", optim.adam(0.01), ref_adam(0.01)),
    ("adam-schedule", optim.adam(SCHEDULE, 0.8, 0.99, 1e-6), ref_adam(SCHEDULE, 0.8, 0.99, 1e-6)),
    ("adamw", optim.adamw(0.01, weight_decay=0.1), ref_adam(0.01, wd=0.1)),
    (
        "adamw-weights-only",
        optim.adamw(SCHEDULE, weight_decay=0.1, weights_only=True),
        ref_adam(SCHEDULE, wd=0.1, weights_only=True),
    ),
]
