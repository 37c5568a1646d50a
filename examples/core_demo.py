"""The core in action: a small MLP learns a generated 3-class problem by gradient descent.

Uses only fnn's core (trees, keys, layers, losses, hand-derived gradients): the update
``params - lr * grads`` is written with ``fnn.tree``. Run: ``python examples/core_demo.py``.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

import fnn
from fnn import losses, nn


def make_blobs(key: fnn.random.Key, n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Three Gaussian blobs in 2-D: x of shape (n, 2) float32, labels (n,) int64."""
    k_labels, k_noise = fnn.random.split(key)
    labels = fnn.random.permutation(k_labels, n) % 3
    centres = np.array([[0.0, 2.0], [-1.8, -1.0], [1.8, -1.0]], np.float32)
    return centres[labels] + fnn.random.normal(k_noise, (n, 2)) * 0.7, labels


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    k_train, k_test, k_init = fnn.random.split(fnn.random.key(args.seed), 3)
    x, y = make_blobs(k_train, 600)
    x_test, y_test = make_blobs(k_test, 300)

    model = nn.mlp((32, 3))
    params = model.init(k_init, (2,))
    value_and_grad = fnn.value_and_grad(model, losses.softmax_cross_entropy)
    for step in range(args.steps):
        value, grads = value_and_grad(params, x, y)
        params = fnn.tree.sub(params, fnn.tree.scale(args.lr, grads))
        if step % 100 == 0:
            print(f"step {step:4d}  loss {value:.4f}")
    accuracy = float(np.mean(model.apply(params, x_test).argmax(axis=1) == y_test))
    print(f"test accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
