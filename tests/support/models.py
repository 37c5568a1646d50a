"""The small MLP that the tests of training, inference and callbacks fit, and a layer's
initial state."""

from __future__ import annotations

from typing import Any

from fnn import losses, nn, optim
from fnn.train import TrainState, fit


def model() -> nn.Layer[tuple[Any, ...], Any]:
    return nn.mlp((16, 3))


def fit_mlp(opt: optim.Optimizer[Any], x: Any, y: Any, **options: Any) -> TrainState[Any, Any]:
    """``fit`` of the test MLP with softmax cross-entropy."""
    return fit(model(), losses.softmax_cross_entropy, opt, x, y, **options)


def state_of(layer: nn.Layer[Any, Any], in_shape: tuple[int, ...]) -> Any:
    """The layer's initial state for ``in_shape`` (None for a layer without)."""
    return None if layer.init_state is None else layer.init_state(in_shape)
