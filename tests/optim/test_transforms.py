"""Gradient transforms (fnn/optim/_transforms.py): L2, clipping, freezing, momentum fed by
scaled updates, and learning-rate schedules that go wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fnn import nn, optim, random, tree
from fnn.optim._transforms import flush_tiny
from tests.optim.references import gradients, random_tree


def test_l2_and_clipping_transforms_match_their_formulas(key: random.Key) -> None:
    params = random_tree(key)
    grads = gradients(random.fold_in(key, 1), params, 20)
    opt = optim.chain(optim.add_l2(0.1), optim.clip_by_global_norm(1.5), optim.sgd(0.1))
    state = opt.init(params)
    expected = params
    weights = tree.weight_mask(params)
    for g in grads:
        state, _ = opt.update(state, g)
        with_l2 = tree.map(lambda gi, p, w: gi + 0.1 * p if w else gi, g, expected, weights)
        norm = tree.global_norm(with_l2)
        clipped = tree.scale(min(1.0, 1.5 / norm), with_l2)
        expected = tree.map(lambda p, c: p - 0.1 * c, expected, clipped)
    assert tree.max_abs_difference(state.params, expected) < 1e-12

    by_value = optim.chain(optim.clip(0.5), optim.sgd(1.0))
    state = by_value.init(params)
    state, new = by_value.update(state, grads[0])
    expected = tree.map(lambda p, gi: p - np.clip(gi, -0.5, 0.5), params, grads[0])
    assert tree.max_abs_difference(new, expected) < 1e-15


def test_l2_on_all_leaves(key: random.Key) -> None:
    params = random_tree(key)
    g = gradients(key, params, 1)[0]
    opt = optim.chain(optim.add_l2(0.2, weights_only=False), optim.sgd(1.0))
    _, new = opt.update(opt.init(params), g)
    expected = tree.map(lambda p, gi: p - (gi + 0.2 * p), params, g)
    assert tree.max_abs_difference(new, expected) < 1e-15


def test_freeze_keeps_masked_leaves_fixed(key: random.Key) -> None:
    params = random_tree(key)
    flags = nn.DenseParams(np.array(True), np.array(False))
    mask = (flags, None, {"gain": False, "table": True})
    opt = optim.chain(optim.adamw(0.1), optim.freeze(mask))
    state = opt.init(params)
    for g in gradients(key, params, 5):
        state, new = opt.update(state, g)
    assert new[0].w.tobytes() == params[0].w.tobytes()
    assert new[2]["table"].tobytes() == params[2]["table"].tobytes()
    assert new[0].b.tobytes() != params[0].b.tobytes()
    with pytest.raises(ValueError, match="freeze mask does not match"):
        optim.chain(optim.sgd(0.1), optim.freeze((True,))).init(params)


def test_scaled_owned_updates_feed_momentum_exactly(key: random.Key) -> None:
    """Clipping hands a scaled scratch buffer to Nesterov momentum, which reads it twice."""
    params = random_tree(key)
    grads = gradients(random.fold_in(key, 1), params, 10)
    opt = optim.chain(
        optim.add_l2(0.1, weights_only=False),
        optim.clip_by_global_norm(0.5),
        optim.sgd(0.1, momentum=0.9, nesterov=True),
    )
    state = opt.init(params)
    expected, velocity = params, tree.zeros_like(params)
    for g in grads:
        state, _ = opt.update(state, g)
        with_l2 = tree.map(lambda gi, p: gi + 0.1 * p, g, expected)
        clipped = tree.scale(min(1.0, 0.5 / tree.global_norm(with_l2)), with_l2)
        velocity = tree.map(lambda v, c: 0.9 * v + c, velocity, clipped)
        step = tree.map(lambda c, v: c + 0.9 * v, clipped, velocity)
        expected = tree.map(lambda p, s: p - 0.1 * s, expected, step)
    assert tree.max_abs_difference(state.params, expected) < 1e-12


def test_a_schedule_that_gives_nan_is_caught() -> None:
    opt = optim.sgd(lambda step: math.nan if step > 0 else 0.1)
    state = opt.init({"w": np.zeros(1)})
    state, _ = opt.update(state, {"w": np.ones(1)})
    with pytest.raises(ValueError, match="schedule gave nan at step 1"):
        opt.update(state, {"w": np.ones(1)})


def test_tiny_moments_are_swept_every_16_steps_after_the_first() -> None:
    """flush_tiny zeroes entries below 2**-100 at steps 16, 32, ... (not at the first,
    whose tiny second moments come from tiny gradients, not from decay)."""
    tiny = np.array([1e-35, 1e-20, -1e-33])
    for step, swept in ((0, False), (15, False), (16, True), (17, False), (32, True)):
        found = flush_tiny(tiny.copy(), step)
        expected = np.array([0.0, 1e-20, 0.0]) if swept else tiny
        np.testing.assert_array_equal(found, expected, err_msg=str(step))


def test_adams_first_update_of_a_tiny_gradient_is_the_papers() -> None:
    """With g = eps = 1e-16 the first direction is g / (|g| + eps) = 0.5 (PyTorch's too):
    the first step's second moment, 1e-32, is not swept to zero."""
    opt = optim.adam(1.0, eps=1e-16)
    _, params = opt.update(opt.init({"w": np.zeros(1)}), {"w": np.array([1e-16])})
    assert params["w"][0] == pytest.approx(-0.5, rel=1e-12)


def test_freeze_refuses_a_mask_of_entries_naming_the_array() -> None:
    """One flag per params array: a bool array of entries got NumPy's 'truth value of an
    array ... is ambiguous'."""
    params = nn.mlp((4, 2)).init(random.key(0), (3,))
    per_entry = tree.map(lambda leaf: np.zeros(leaf.shape, bool), params)
    with pytest.raises(
        TypeError, match=r"one flag \(a bool\) per params array, got \(3, 4\) entries at \[1\]\.w"
    ):
        optim.freeze(per_entry)
    one_entry = tree.map(lambda leaf: np.array([True]), params)
    opt = optim.chain(optim.sgd(0.1), optim.freeze(one_entry))
    _, moved = opt.update(opt.init(params), params)
    assert tree.equal(moved, params)
