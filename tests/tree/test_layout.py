"""Flat layouts (fnn/tree/_layout.py): ravel into one buffer, unravel into read-only views."""

from __future__ import annotations

import numpy as np
import pytest

from fnn import tree
from tests.tree.samples import Pair


def test_ravel_and_unravel() -> None:
    t = (Pair(np.arange(6.0).reshape(2, 3), np.ones(3)), None)
    flat, layout = tree.ravel(t)
    np.testing.assert_array_equal(flat[:6], np.arange(6.0))
    assert layout.size == 9
    flat.flags.writeable = False
    back = layout.unravel(flat)
    assert tree.equal(back, t)
    assert back[0].w.base is flat  # views, not copies
    with pytest.raises(ValueError, match="read-only"):
        back[0].w[0, 0] = 1.0
    np.testing.assert_array_equal(layout.ravel(t), flat)
    bad = (Pair(np.ones((3, 2)), np.ones(3)), None)
    with pytest.raises(ValueError, match=r"at \[0\]\.w: expected float64 of shape \(2, 3\)"):
        layout.ravel(bad)


def test_ravel_rejects_mixed_and_integer_dtypes() -> None:
    with pytest.raises(TypeError, match="one floating dtype, got float32, float64"):
        tree.ravel((np.ones(1, np.float32), np.ones(1)))
    with pytest.raises(TypeError, match="expected floating leaves, got int64"):
        tree.ravel((np.ones(1, np.int64),))
