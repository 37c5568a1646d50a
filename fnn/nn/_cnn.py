"""A small convolutional network for MNIST-sized images: two conv blocks, then dense."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

from .. import _checks
from ._activations import flatten, relu
from ._conv import Conv2DParams, conv2d
from ._dense import DenseParams, dense
from ._layer import Layer
from ._norm import BatchNormParams, BatchNormState
from ._norm import batch_norm as _batch_norm
from ._pool import dropout as _dropout
from ._pool import max_pool
from ._serial import serial
from ._shape_layers import reshape

CNNParams = tuple[Conv2DParams | DenseParams | BatchNormParams | None, ...]
"""The params of a :func:`cnn`: one entry per layer, whose number depends on the
arguments (a channel axis to add, the conv blocks, batch norm, dropout)."""

CNNState = tuple[BatchNormState | None, ...]
"""The state of a :func:`cnn` with batch norm (one entry per layer); without, ``None``."""


@overload
def cnn(
    image_shape: Sequence[int] = (28, 28),
    classes: int = 10,
    *,
    channels: Sequence[int] = (32, 64),
    dense_size: int = 128,
    dropout: float = 0.5,
    batch_norm: Literal[False] = False,
    padding: str = "valid",
) -> Layer[CNNParams, None]: ...


@overload
def cnn(
    image_shape: Sequence[int] = (28, 28),
    classes: int = 10,
    *,
    channels: Sequence[int] = (32, 64),
    dense_size: int = 128,
    dropout: float = 0.5,
    batch_norm: Literal[True],
    padding: str = "valid",
) -> Layer[CNNParams, CNNState]: ...


@overload
def cnn(
    image_shape: Sequence[int] = (28, 28),
    classes: int = 10,
    *,
    channels: Sequence[int] = (32, 64),
    dense_size: int = 128,
    dropout: float = 0.5,
    batch_norm: bool,
    padding: str = "valid",
) -> Layer[CNNParams, CNNState | None]: ...


def cnn(
    image_shape: Sequence[int] = (28, 28),
    classes: int = 10,
    *,
    channels: Sequence[int] = (32, 64),
    dense_size: int = 128,
    dropout: float = 0.5,
    batch_norm: bool = False,
    padding: str = "valid",
) -> Layer[Any, Any]:
    """The classic small CNN: per entry of ``channels``, a 3x3 ``conv2d`` (``padding``), a
    ReLU and a 2x2 ``max_pool``; then ``flatten``, ``dense(dense_size)``, ReLU,
    ``dropout(dropout)`` and ``dense(classes)`` (logits).

    ReLU and max-pooling commute, values and gradients alike (both keep the window's first
    maximum; a window with nothing above zero gives zero either way), so each block pools
    first, inside the convolution (``conv2d(..., pool=2)``: the same values and gradients
    as ``conv2d`` then ``max_pool(2)``, computed faster), then applies the ReLU to a quarter
    of the values. With batch norm, which does not commute with pooling, a block is
    ``conv2d``, ``batch_norm``, ``max_pool(2)``, ReLU.

    Args:
        image_shape: ``(height, width)`` of single-channel images (a ``reshape`` adds the
            channel axis) or ``(height, width, channels)``.
        classes: the number of outputs.
        channels: the features of each conv block (``(32, 64)``: conv 32, conv 64).
        dense_size: the width of the hidden dense layer.
        dropout: the dropout rate before the last layer (0 for none).
        batch_norm: put a ``batch_norm`` after each conv and the hidden dense layer,
            before its ReLU.
        padding: the convolutions' padding, ``"valid"`` (none) or ``"same"`` (the output
            as large as the input: more of each image's border seen, more to compute).

    For 28x28 images, "valid": ``(28, 28) -> (28, 28, 1) -> conv 26x26x32 -> pool
    13x13x32 -> conv 11x11x64 -> pool 5x5x64 -> 1600 -> 128 -> 10``; "same": ``conv
    28x28x32 -> pool 14x14x32 -> conv 14x14x64 -> pool 7x7x64 -> 3136 -> 128 -> 10``.

    Params: :data:`CNNParams`; state: :data:`CNNState` with batch norm, else None.

    >>> import fnn
    >>> model = fnn.nn.cnn()
    >>> model.output_shape((28, 28))
    (10,)
    """
    shape = tuple(_checks.positive_int(d, "cnn image_shape") for d in image_shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"cnn needs image_shape (height, width[, channels]), got {shape}")
    if padding not in ("valid", "same"):
        raise ValueError(f'cnn padding must be "valid" or "same", got {padding!r}')
    layers: list[Layer[Any, Any]] = [reshape((*shape, 1))] if len(shape) == 2 else []
    for features in channels:
        width = _checks.positive_int(features, "cnn channels")
        if batch_norm:
            layers += [conv2d(width, 3, padding=padding), _batch_norm(), max_pool(2), relu()]
        else:
            layers += [conv2d(width, 3, padding=padding, pool=2), relu()]
    layers += [flatten(), dense(_checks.positive_int(dense_size, "cnn dense_size"))]
    layers += [_batch_norm()] if batch_norm else []
    layers.append(relu())
    layers += [_dropout(dropout)] if dropout else []
    layers.append(dense(_checks.positive_int(classes, "cnn classes")))
    model: Layer[Any, Any] = serial(*layers)
    return model
