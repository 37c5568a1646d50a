"""The named optimizers, each a short chain of transforms.

Defaults follow PyTorch's ``torch.optim`` (where PyTorch, optax and Keras disagree,
the docstring says so).
"""

from __future__ import annotations

from ._base import Optimizer, chain
from ._schedules import Schedule
from ._transforms import (
    add_decayed_weights,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    trace,
)


def sgd(
    learning_rate: float | Schedule = 0.01, momentum: float = 0.0, nesterov: bool = False
) -> Optimizer:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    ``p = p - lr * g``; with momentum ``v = momentum * v + g`` and ``p = p - lr * v``
    (PyTorch's form; Keras keeps ``lr`` inside ``v``, which differs only when ``lr``
    changes); with ``nesterov``, ``p = p - lr * (g + momentum * v)``.

    For the classic "SGD with momentum and decay" use
    ``sgd(inverse_time_decay(lr, decay), momentum=0.9)``.
    """
    if nesterov and momentum == 0.0:
        raise ValueError("nesterov momentum needs momentum > 0")
    parts = [trace(momentum, nesterov)] if momentum else []
    return chain(*parts, scale_by_learning_rate(learning_rate))


def adagrad(
    learning_rate: float | Schedule = 0.01,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
) -> Optimizer:
    """Adagrad: ``G = G + g**2``, ``p = p - lr * g / (sqrt(G) + eps)``.

    PyTorch's defaults (optax and Keras start ``G`` at 0.1 and use ``eps=1e-7``).
    """
    return chain(
        scale_by_adagrad(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate)
    )


def rmsprop(
    learning_rate: float | Schedule = 0.01,
    rho: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
) -> Optimizer:
    """RMSprop: ``nu = rho nu + (1 - rho) g**2``, ``p = p - lr * g / (sqrt(nu) + eps)``;
    with momentum ``b = momentum * b + g / (sqrt(nu) + eps)`` and ``p = p - lr * b``.

    PyTorch's defaults (Keras and optax use ``rho=0.9``; Keras ``lr=0.001``).
    """
    parts = [scale_by_rms(rho, eps)]
    if momentum:
        parts.append(trace(momentum))
    return chain(*parts, scale_by_learning_rate(learning_rate))


def adam(
    learning_rate: float | Schedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> Optimizer:
    """Adam: ``p = p - lr * mu_hat / (sqrt(nu_hat) + eps)`` (see :func:`scale_by_adam`).

    The defaults of the paper, PyTorch, optax and Keras (Keras uses ``eps=1e-7``).
    """
    return chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(learning_rate))


def adamw(
    learning_rate: float | Schedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    *,
    weights_only: bool = False,
) -> Optimizer:
    """AdamW (Loshchilov & Hutter, 2019), weight decay decoupled from the gradient:
    ``p = p - lr * (mu_hat / (sqrt(nu_hat) + eps) + weight_decay * p)``.

    PyTorch's defaults (``weight_decay=0.01``, every leaf decayed; optax uses 1e-4).
    ``weights_only`` decays only the leaves marked as weights, not biases.
    """
    return chain(
        scale_by_adam(b1, b2, eps),
        add_decayed_weights(weight_decay, weights_only=weights_only),
        scale_by_learning_rate(learning_rate),
    )
