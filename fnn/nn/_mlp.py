"""The multilayer perceptron: ``flatten, dense, act, ..., dense``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

from .. import _checks
from ._activations import flatten
from ._dense import DenseParams, dense
from ._layer import Layer
from ._registry import activation as _activation
from ._serial import serial

_DEFAULT_INIT = {"relu": "he_normal", "leaky_relu": "he_normal"}

MLPParams = tuple[DenseParams | None, ...]
"""The params of an :func:`mlp` whose number of layers the type checker cannot count:
``None`` for each flatten and activation, :class:`DenseParams` for each dense layer."""


@overload
def mlp(
    sizes: tuple[int],
    activation: str = "relu",
    *,
    final_activation: None = None,
    weight_init: str | None = None,
) -> Layer[tuple[None, DenseParams], None]: ...


@overload
def mlp(
    sizes: tuple[int, int],
    activation: str = "relu",
    *,
    final_activation: None = None,
    weight_init: str | None = None,
) -> Layer[tuple[None, DenseParams, None, DenseParams], None]: ...


@overload
def mlp(
    sizes: tuple[int, int, int],
    activation: str = "relu",
    *,
    final_activation: None = None,
    weight_init: str | None = None,
) -> Layer[tuple[None, DenseParams, None, DenseParams, None, DenseParams], None]: ...


@overload
def mlp(
    sizes: tuple[int, int, int, int],
    activation: str = "relu",
    *,
    final_activation: None = None,
    weight_init: str | None = None,
) -> Layer[
    tuple[None, DenseParams, None, DenseParams, None, DenseParams, None, DenseParams], None
]: ...


@overload
def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    *,
    final_activation: str | None = None,
    weight_init: str | None = None,
) -> Layer[MLPParams, None]: ...


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    *,
    final_activation: str | None = None,
    weight_init: str | None = None,
) -> Layer[Any, None]:
    """A multilayer perceptron: ``flatten()``, then ``dense(n)`` and ``activation`` per
    hidden size, then ``dense(sizes[-1])`` (and ``final_activation`` if given).

    Args:
        sizes: the output sizes of the dense layers, e.g. ``(128, 64, 10)``; the input
            size comes from ``init``'s ``in_shape``.
        activation: the hidden activation's name (``"relu"``, ``"sigmoid"``, ``"tanh"``,
            ``"leaky_relu"``, ...).
        final_activation: an activation after the last layer; ``None`` (the default)
            leaves logits, for :func:`fnn.losses.softmax_cross_entropy`.
        weight_init: the dense layers' initializer; by default ``"he_normal"`` for ReLU
            activations and ``"glorot_uniform"`` for the others.

    The params are a tuple with ``None`` for each parameterless layer and
    :class:`DenseParams` for each dense layer; the model keeps no state. Their static
    type is that exact tuple for a tuple of 1 to 4 sizes without a final activation
    (``mlp((128, 10))`` is a ``Layer[tuple[None, DenseParams, None, DenseParams],
    None]``), else :data:`MLPParams`.

    >>> import fnn
    >>> model = fnn.nn.mlp((128, 64, 10))
    >>> [type(p).__name__ for p in model.init(fnn.random.key(0), (28, 28))]
    ['NoneType', 'DenseParams', 'NoneType', 'DenseParams', 'NoneType', 'DenseParams']
    """
    sizes = [_checks.positive_int(s, "mlp sizes") for s in sizes]
    if not sizes:
        raise ValueError("mlp needs at least one layer size")
    _activation(activation)  # an unknown name fails even when no hidden layer uses it
    init = weight_init or _DEFAULT_INIT.get(activation, "glorot_uniform")
    layers: list[Layer[Any, Any]] = [flatten()]
    for size in sizes[:-1]:
        layers += [dense(size, weight_init=init), _activation(activation)]
    layers.append(dense(sizes[-1], weight_init=init))
    if final_activation is not None:
        layers.append(_activation(final_activation))
    model: Layer[Any, None] = serial(*layers)
    return model
