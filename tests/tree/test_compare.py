"""fnn.tree's comparisons (fnn/tree/_compare.py): bitwise equality, closeness, fingerprints."""

from __future__ import annotations

import numpy as np

from fnn import tree


def test_equal_is_bitwise_and_allclose_is_not() -> None:
    a = (np.array([1.0, 2.0]),)
    assert tree.equal(a, (np.array([1.0, 2.0]),))
    assert not tree.equal(a, (np.array([1.0, 2.0], np.float32),))
    assert not tree.equal(a, (np.array([1.0, 2.0 + 1e-12]),))
    assert tree.allclose(a, (np.array([1.0, 2.0 + 1e-12]),))
    assert not tree.equal(a, [np.array([1.0, 2.0])])
    assert tree.max_abs_difference(a, (np.array([1.0, 2.5]),)) == 0.5


def test_fingerprint_tracks_bits_shapes_dtypes_and_structure() -> None:
    a = (np.arange(4.0), {"k": np.ones(2, np.float32)})
    assert tree.fingerprint(a) == tree.fingerprint(tree.map(np.copy, a))
    assert len(tree.fingerprint(a)) == 64
    changed = (
        np.arange(4.0),
        {"k": np.array([1.0, np.nextafter(np.float32(1), np.float32(2))], np.float32)},
    )
    others = [
        changed,
        (np.arange(4.0).reshape(2, 2), {"k": np.ones(2, np.float32)}),
        (np.arange(4.0), {"k": np.ones(2, np.float64)}),
        [np.arange(4.0), {"k": np.ones(2, np.float32)}],
    ]
    assert len({tree.fingerprint(t) for t in [a, *others]}) == 5
