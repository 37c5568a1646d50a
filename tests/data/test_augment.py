"""Data augmentation: random_flip, random_shift and augmentation against loop references,
their keys, their errors, and augmented training (train_step and fit) rerun and resumed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnn
from fnn import data, losses, nn, optim, random

Array = np.ndarray[Any, Any]

KEY = random.key(7)


def bad(value: Any) -> Any:
    """``value`` typed as Any: the calls below are wrong on purpose."""
    return value


def images(shape: tuple[int, ...], dtype: Any = np.float32) -> Array:
    return np.arange(np.prod(shape)).reshape(shape).astype(dtype)


@pytest.mark.parametrize("shape", [(50, 5, 7), (50, 5, 7, 3)])
def test_random_flip_mirrors_exactly_the_drawn_images(shape: tuple[int, ...]) -> None:
    x = images(shape)
    before = x.copy()
    out = data.random_flip(KEY, x)
    drawn = random.bernoulli(KEY, 0.5, shape[0])
    assert 0 < drawn.sum() < shape[0]
    for i in range(shape[0]):
        expected = x[i, :, ::-1] if drawn[i] else x[i]
        assert np.array_equal(out[i], expected)
    assert out.dtype == x.dtype and out.shape == x.shape
    assert np.array_equal(x, before)  # the input is not modified
    assert data.random_flip(KEY, x).tobytes() == out.tobytes()
    assert data.random_flip(random.key(8), x).tobytes() != out.tobytes()


def test_random_flip_flips_about_half() -> None:
    x = images((4000, 1, 2))
    flipped = (data.random_flip(KEY, x)[:, 0, 0] != x[:, 0, 0]).sum()
    assert abs(flipped - 2000) < 4 * np.sqrt(1000)  # 4 standard deviations


def shift_by_loop(x: Array, dy: Array, dx: Array) -> Array:
    """``out[i, r, c] = x[i, r - dy, c - dx]`` where that pixel exists, else zero."""
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    for i in range(len(x)):
        for r in range(h):
            for c in range(w):
                if 0 <= r - dy[i] < h and 0 <= c - dx[i] < w:
                    out[i, r, c] = x[i, r - dy[i], c - dx[i]]
    return out


@pytest.mark.parametrize(
    ("shape", "max_shift", "dtype"),
    [((40, 6, 5), 2, np.float32), ((30, 4, 7, 2), 1, np.float64), ((80, 3, 3), 4, np.uint8)],
)
def test_random_shift_matches_a_loop(shape: tuple[int, ...], max_shift: int, dtype: Any) -> None:
    x = images(shape, dtype) + 1  # no zero pixels: the fill shows
    before = x.copy()
    out = data.random_shift(KEY, x, max_shift)
    dy, dx = random.generator(KEY).integers(-max_shift, max_shift + 1, size=(2, shape[0]))
    every = set(range(-max_shift, max_shift + 1))
    assert set(dy.tolist()) == set(dx.tolist()) == every  # every shift drawn
    assert out.dtype == x.dtype and out.flags.c_contiguous
    assert np.array_equal(out, shift_by_loop(x, dy, dx))
    assert np.array_equal(x, before)
    assert data.random_shift(KEY, x, max_shift).tobytes() == out.tobytes()


def test_augmentation_keys_each_transform_with_its_position() -> None:
    x = images((20, 6, 6))
    both = data.augmentation(data.random_flip, data.random_shift)(KEY, x)
    flipped = data.random_flip(random.fold_in(KEY, 0), x)
    assert np.array_equal(both, data.random_shift(random.fold_in(KEY, 1), flipped))
    assert np.array_equal(data.augmentation()(KEY, x), x)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: data.random_flip(KEY, bad([[1.0]])), TypeError, "expects a NumPy array"),
        (lambda: data.random_flip(KEY, np.zeros((2, 3))), ValueError, r"\(n, height, width\)"),
        (lambda: data.random_shift(KEY, np.zeros((2, 3, 3, 1, 1))), ValueError, "got shape"),
        (lambda: data.random_shift(KEY, np.zeros((2, 3, 3)), 0), ValueError, "max_shift"),
        (lambda: data.augmentation(bad(3)), TypeError, "expects functions"),
        (
            lambda: fnn.fit(nn.mlp((2,)), losses.softmax_cross_entropy, optim.sgd(0.1),
                            np.zeros((4, 3), np.float32), np.zeros(4, np.int64), key=KEY,
                            epochs=1, augment=bad(3)),
            TypeError,
            "augment must be a function",
        ),
    ],
)  # fmt: skip
def test_bad_input(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


MODEL = nn.serial(nn.reshape((6, 6, 1)), nn.conv2d(3, 3), nn.relu(), nn.flatten(), nn.dense(4))

X = random.uniform(KEY, (48, 6, 6))

Y = random.permutation(KEY, 48) % 4

AUGMENT = data.augmentation(data.random_flip, data.random_shift)


def test_an_augmented_step_trains_on_the_augmented_batch() -> None:
    opt = optim.adam(1e-2)
    state = fnn.train_state(opt, MODEL.init(KEY, (6, 6)), KEY)
    state = fnn.train_step(MODEL, losses.softmax_cross_entropy, opt)(state, (X[:8], Y[:8]))
    augmented = fnn.train_step(MODEL, losses.softmax_cross_entropy, opt, augment=AUGMENT)
    plain = fnn.train_step(MODEL, losses.softmax_cross_entropy, opt)
    x = X[8:16]
    moved = AUGMENT(fnn.augment_key(KEY, 1), x)
    assert not np.array_equal(moved, x)
    got = augmented(state, (x, Y[8:16]))
    want = plain(state, (moved, Y[8:16]))
    assert fnn.tree.equal(got.params, want.params)
    assert not fnn.tree.equal(got.params, plain(state, (x, Y[8:16])).params)


def test_augmented_fit_reruns_and_resumes_bit_identically() -> None:
    def fit(epochs: int, state: Any = None) -> Any:
        return fnn.fit(MODEL, losses.softmax_cross_entropy, optim.adam(1e-2), X, Y, key=KEY,
                       epochs=epochs, batch_size=16, augment=AUGMENT, state=state)  # fmt: skip

    whole = fit(3)
    assert fnn.tree.equal(fit(3).params, whole.params)
    assert fnn.tree.equal(fit(3, fit(1)).params, whole.params)
    unaugmented = fnn.fit(MODEL, losses.softmax_cross_entropy, optim.adam(1e-2), X, Y, key=KEY,
                          epochs=3, batch_size=16)  # fmt: skip
    assert not fnn.tree.equal(unaugmented.params, whole.params)
