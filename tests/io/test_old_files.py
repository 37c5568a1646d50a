"""Files written by fnn before the layer contract changed (commit b6ea0cd, kept in
tests/io/fixtures/): a model file still loads and predicts the same bits, a checkpoint
still loads, and training the same model on the same data today gives that checkpoint's
bits (the layers' arithmetic did not change with their contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import fnn
from fnn import losses, nn, optim

FIXTURES = Path(__file__).parent / "fixtures"


def model() -> nn.Layer[Any, Any]:
    """The model the fixtures were written with: every layer kind of the time, with model
    state (batch norm) and a key (dropout)."""
    return nn.serial(
        nn.reshape((8, 8, 1)),
        nn.conv2d(4, 3, padding="same"),
        nn.batch_norm(),
        nn.relu(),
        nn.max_pool(2),
        nn.residual(nn.serial(nn.conv2d(4, 3, padding="same"), nn.gelu())),
        nn.conv2d(3, 3, pool=2),
        nn.flatten(),
        nn.dense(16, weight_init="glorot_uniform"),
        nn.layer_norm(),
        nn.tanh(),
        nn.dropout(0.25),
        nn.residual(nn.dense(16), nn.dense(16)),
        nn.dense(5),
    )


def test_an_old_model_file_loads_and_predicts_the_same_bits() -> None:
    loaded, params, state = fnn.io.load_model(FIXTURES / "model_b6ea0cd.npz")
    assert fnn.io.load_metadata(FIXTURES / "model_b6ea0cd.npz") == {"written_by": "fnn b6ea0cd"}
    assert fnn.io.load_input_dtype(FIXTURES / "model_b6ea0cd.npz") == np.float32
    x = np.load(FIXTURES / "x.npy")
    proba = fnn.predict_proba(loaded, params, x, model_state=state)
    np.testing.assert_array_equal(proba, np.load(FIXTURES / "proba_b6ea0cd.npy"))


def test_training_today_gives_the_old_checkpoints_bits() -> None:
    old = fnn.io.load(FIXTURES / "checkpoint_b6ea0cd.npz")
    assert isinstance(old, fnn.TrainState)
    key = fnn.random.key(7)
    x = fnn.random.uniform(fnn.random.fold_in(key, 1), (40, 8, 8))
    np.testing.assert_array_equal(x, np.load(FIXTURES / "x.npy"))
    y = (np.arange(40) % 5).astype(np.int64)
    final = fnn.fit(
        model(), losses.softmax_cross_entropy, optim.adam(1e-2), x, y,
        key=key, epochs=2, batch_size=8,
    )  # fmt: skip
    assert fnn.tree.fingerprint(final) == fnn.tree.fingerprint(old)
    assert fnn.tree.fingerprint(final.params) == (
        "6fe8b757cfe0c9060ea611e6f30b4b910dbe298fa258ec90aec3b4b1f0d0bd8d"
    )
