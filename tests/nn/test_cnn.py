"""cnn (fnn/nn/_cnn.py): model files, and same padding through each conv."""

from __future__ import annotations

from pathlib import Path

import pytest

import fnn
from fnn import nn, random


def test_a_cnn_saves_loads_and_predicts_identically(tmp_path: Path, key: random.Key) -> None:
    model = nn.cnn((12, 10), 3, channels=(4, 6), dense_size=8, batch_norm=True)
    assert model.init_state is not None
    params, state = model.init(key, (12, 10)), model.init_state((12, 10))
    x = random.uniform(key, (5, 12, 10))
    fnn.io.save_model(tmp_path / "m.npz", model, params, in_shape=(12, 10), model_state=state)
    loaded, loaded_params, loaded_state = fnn.io.load_model(tmp_path / "m.npz")
    assert loaded.spec == model.spec
    expected = model.apply(params, x, state)
    assert loaded.apply(loaded_params, x, loaded_state).tobytes() == expected.tobytes()


@pytest.mark.parametrize("batch_norm", [False, True])
def test_a_same_padded_cnn_keeps_the_image_size_through_each_conv(batch_norm: bool) -> None:
    model = nn.cnn(padding="same", batch_norm=batch_norm)
    assert model.output_shape((28, 28)) == (10,)
    params = model.init(random.key(0), (28, 28))
    weights = [p.w.shape for p in params if isinstance(p, (nn.Conv2DParams, nn.DenseParams))]
    assert weights == [(3, 3, 1, 32), (3, 3, 32, 64), (7 * 7 * 64, 128), (128, 10)]
