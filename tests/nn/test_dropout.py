"""dropout (fnn/nn/_pool.py): masks from the training key, scaling, the identity in
inference, and the distribution of PyTorch's."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

import fnn
from fnn import nn, random

TOL = 1e-6


def test_dropout_masks_scale_and_pass_through(key: random.Key) -> None:
    layer = nn.dropout(0.25)
    x = np.ones((400, 50), np.float32)
    y, _, _ = layer.forward(None, x, None, key)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01  # 20,000 draws: sd 0.003
    np.testing.assert_array_equal(y[kept], np.float32(1 / 0.75))
    again, _, _ = layer.forward(None, x, None, key)
    other, _, _ = layer.forward(None, x, None, random.fold_in(key, 1))
    assert again.tobytes() == y.tobytes() and other.tobytes() != y.tobytes()
    assert layer.apply(None, x) is x  # inference: the identity, nothing drawn
    report = fnn.check_layer(layer, None, random.normal(key, (3, 4), np.float64), key=key)
    assert report.max_rel_error < TOL, report
    with pytest.raises(TypeError, match=r"needs an fnn\.random\.Key"):
        layer.forward(None, x, None, None)
    with pytest.raises(ValueError, match=r"dropout rate must be in \[0, 1\), got 1"):
        nn.dropout(1)
    zero = nn.dropout(0.0)
    assert zero.forward(None, x, None, key)[0].tobytes() == x.tobytes()


@pytest.mark.oracle
def test_dropout_agrees_with_pytorch_in_distribution(torch: ModuleType, key: random.Key) -> None:
    x = np.ones((200, 100))
    ours = nn.dropout(0.3).forward(None, x, None, key)[0]
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout(torch.tensor(x), 0.3, training=True).numpy()
    for y in (ours, theirs):
        assert abs((y == 0).mean() - 0.3) < 0.01  # 20,000 draws: sd 0.0032
        assert set(np.unique(y)) == {0.0, 1 / 0.7}
