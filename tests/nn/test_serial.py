"""serial (fnn/nn/_serial.py): params and output shapes, nesting, and no input gradient for
the first layer."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

import fnn
from fnn import nn, random, tree

TOL = 1e-6


def test_serial_params_and_output_shape(key: random.Key) -> None:
    model = nn.serial(nn.flatten(), nn.dense(8), nn.relu(), nn.dense(3))
    params = model.init(key, (2, 5))
    assert [type(p).__name__ for p in params] == [
        "NoneType",
        "DenseParams",
        "NoneType",
        "DenseParams",
    ]
    assert model.output_shape((2, 5)) == (3,)
    assert model.apply(params, np.ones((4, 2, 5), np.float32)).shape == (4, 3)


def test_serial_never_computes_the_first_layers_input_gradient(key: random.Key) -> None:
    calls: list[tuple[str, bool]] = []

    def spy(name: str, inner: nn.Layer[Any, Any]) -> nn.Layer[Any, Any]:
        def backward(p: Any, r: Any, dy: Any, need_dx: bool, out: list[Any]) -> Any:
            calls.append((name, need_dx))
            return inner.backward(p, r, dy, need_dx, out)

        return attrs.evolve(inner, backward=backward)

    model = nn.serial(
        spy("flatten", nn.flatten()),
        spy("dense1", nn.dense(4)),
        spy("relu", nn.relu()),
        spy("dense2", nn.dense(2)),
    )
    params = model.init(key, (3,))
    fnn.grad(model, fnn.losses.softmax_cross_entropy)(
        params, np.ones((2, 3), np.float32), np.array([0, 1])
    )
    assert calls == [("dense2", True), ("relu", True), ("dense1", False)]
    calls.clear()
    out, _, res = model.forward(params, np.ones((2, 3), np.float32), None, None)
    flat, layout = tree.ravel(params)
    dx = model.backward(params, res, np.ones_like(out), True, layout.buffers(flat))
    assert dx is not None and dx.shape == (2, 3)
    assert calls[-1] == ("flatten", True)


def test_nested_serial_gradients(key: random.Key) -> None:
    block = nn.serial(nn.dense(4), nn.tanh())
    model = nn.serial(nn.serial(nn.flatten(), nn.identity()), block, nn.dense(3))
    params = model.init(key, (2, 3), dtype=np.float64)
    x = random.normal(random.fold_in(key, 1), (4, 2, 3), dtype=np.float64)
    y = np.array([0, 1, 2, 0])
    result = fnn.check_model(model, fnn.losses.softmax_cross_entropy, params, x, y)
    assert result.max_rel_error < TOL, str(result)
    grads = fnn.grad(model, fnn.losses.softmax_cross_entropy)(params, x, y)
    tree.assert_same_structure(params, grads)
