"""conv2d, max_pool, avg_pool and dropout: gradients by finite differences, agreement with
PyTorch in float64, and what bad input gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import nn, random

TOL = 1e-6

CONV_CASES = [
    # kernel, stride, padding, (h, w), in_channels
    (3, 1, "valid", (7, 6), 3),
    ((3, 2), (2, 1), "same", (7, 8), 2),
    (2, 3, ((1, 0), (2, 1)), (9, 5), 1),
    (1, 1, "valid", (4, 5), 3),
    (4, 2, "same", (5, 7), 2),
]


def as_grads(params: Any, arrays: list[Any]) -> Any:
    """``arrays`` arranged as the writable ``grads`` a layer's backward writes into."""
    return fnn.tree.buffers(fnn.tree.structure(params), iter(arrays))


@pytest.mark.parametrize(("kernel", "stride", "padding", "hw", "channels"), CONV_CASES)
def test_conv2d_gradients(
    key: random.Key, kernel: Any, stride: Any, padding: Any, hw: tuple[int, int], channels: int
) -> None:
    layer = nn.conv2d(4, kernel, stride, padding)
    params = layer.init(key, (*hw, channels), np.float64)
    x = random.normal(random.fold_in(key, 1), (2, *hw, channels), np.float64)
    report = fnn.check_layer(layer, params, x)
    assert report.max_rel_error < TOL, report


FUSED_CASES = [
    # kernel, stride, padding, (h, w), in_channels, pool
    (3, 1, "valid", (9, 8), 1, 2),  # 7x6 outputs: the last row is in no window
    (3, 1, "valid", (7, 6), 3, 2),
    ((3, 2), (2, 1), "same", (7, 8), 2, (2, 3)),
    (2, 1, ((1, 0), (2, 1)), (9, 5), 1, 3),
    (1, 1, "valid", (4, 5), 3, 1),
]


def small_integers(key: random.Key, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """Values in {-2, ..., 2}: every sum of their products is exact in float64, whatever
    its order, and convolution outputs tie often."""
    values: np.ndarray[Any, Any] = np.floor(random.uniform(key, shape, dtype=np.float64) * 5)
    return values - 2


def conv_pass(
    layer: nn.Layer[Any], params: Any, x: np.ndarray[Any, Any], dy_key: random.Key
) -> tuple[np.ndarray[Any, Any], ...]:
    """The output, input gradient and parameter gradients for a small-integer ``dy``."""
    y, _, residuals = layer.forward(params, x, None, None)
    leaves, treedef = fnn.tree.flatten(params)
    grads = [np.empty_like(leaf) for leaf in leaves]
    dy = small_integers(dy_key, y.shape)
    dx = layer.backward(params, residuals, dy, True, fnn.tree.buffers(treedef, iter(grads)))
    assert dx is not None
    return (y, dx, *grads)


def first_max_pool(
    z: np.ndarray[Any, Any], pool: tuple[int, int], dy: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A loop over windows: each window's maximum, and ``dy`` sent to its first maximum in
    row-major order (``np.argmax``'s first occurrence), the reference for ties."""
    ph, pw = pool
    n, oh, ow, c = dy.shape
    y, dz = np.empty_like(dy), np.zeros_like(z)
    for i, j, k, f in np.ndindex(n, oh, ow, c):
        window = z[i, j * ph : (j + 1) * ph, k * pw : (k + 1) * pw, f]
        r, s = divmod(int(np.argmax(window)), pw)
        y[i, j, k, f] = window[r, s]
        dz[i, j * ph + r, k * pw + s, f] = dy[i, j, k, f]
    return y, dz


@pytest.mark.parametrize(("kernel", "stride", "padding", "hw", "channels", "pool"), FUSED_CASES)
def test_pooled_conv2d_is_conv2d_then_max_pool(
    key: random.Key, kernel: Any, stride: Any, padding: Any, hw: Any, channels: int, pool: Any
) -> None:
    """conv2d(..., pool=k) against conv2d then a loop over the pooling windows: the same
    outputs and gradients, ties (small integers) sent to each window's first maximum."""
    fused = nn.conv2d(4, kernel, stride, padding, pool=pool)
    plain = nn.conv2d(4, kernel, stride, padding)
    params = fused.init(key, (*hw, channels), np.float64)
    params = nn.Conv2DParams(
        small_integers(key, params.w.shape), small_integers(random.fold_in(key, 1), (4,))
    )
    x = small_integers(random.fold_in(key, 2), (3, *hw, channels))
    y, dx, dw, db = conv_pass(fused, params, x, random.fold_in(key, 3))
    z, _, residuals = plain.forward(params, x, None, None)
    y_ref, dz = first_max_pool(z, _pair(pool), small_integers(random.fold_in(key, 3), y.shape))
    dw_ref, db_ref = np.empty_like(dw), np.empty_like(db)
    dx_ref = plain.backward(
        params,
        residuals,
        dz,
        True,
        as_grads(params, [dw_ref, db_ref]),
    )
    assert dx_ref is not None
    assert np.array_equal(y, y_ref) and np.array_equal(dx, dx_ref)
    assert np.array_equal(dw, dw_ref) and np.array_equal(db, db_ref)
    assert np.array_equal(fused.apply(params, x), y_ref)
    report = fnn.check_layer(fused, fused.init(key, (*hw, channels), np.float64), x + 0.1 * x**2)
    assert report.max_rel_error < TOL, report


def test_conv2d_gives_the_same_results_in_any_number_of_chunks(
    key: random.Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is convolved in chunks sized by its shapes; one sample a chunk gives the same
    outputs and gradients (exact sums of small integers)."""
    import fnn.nn._conv as conv_module

    for layer, in_shape in ((nn.conv2d(6, 3, pool=2), (10, 9, 1)), (nn.conv2d(5, 3), (6, 7, 4))):
        params = layer.init(key, in_shape, np.float64)
        params = nn.Conv2DParams(small_integers(key, params.w.shape), params.b + 1)
        x = small_integers(random.fold_in(key, 1), (7, *in_shape))
        whole = conv_pass(layer, params, x, random.fold_in(key, 2))
        monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 1)
        apart = conv_pass(layer, params, x, random.fold_in(key, 2))
        monkeypatch.undo()
        for a, b in zip(whole, apart):
            assert np.array_equal(a, b)
        assert np.array_equal(layer.apply(params, x), whole[0])


def test_conv2d_reads_strided_and_reversed_inputs(key: random.Key) -> None:
    layer = nn.conv2d(3, (2, 3), pool=2)  # "valid": no padded copy of the input
    params = layer.init(key, (6, 9, 2), np.float64)
    big = random.normal(random.fold_in(key, 1), (8, 13, 9, 4), np.float64)
    x = big[::-2, 1::2, ::-1][..., 1:3]  # every stride negative or not one
    assert not x.flags.c_contiguous
    expected = layer.apply(params, np.ascontiguousarray(x))
    assert np.array_equal(layer.apply(params, x), expected)
    y, _, _ = layer.forward(params, x, None, None)
    assert np.array_equal(y, expected)


def pool_input(key: random.Key, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """Distinct values (no ties inside a window, so max has one gradient)."""
    x = random.permutation(key, int(np.prod(shape))).reshape(shape).astype(np.float64)
    return x / x.size + random.uniform(random.fold_in(key, 1), shape, dtype=np.float64) * 1e-3


POOL_CASES = [(2, None, (6, 7)), (3, None, (7, 8)), ((2, 3), None, (5, 7)), (3, 2, (7, 8)),
              ((2, 2), (1, 2), (5, 6)), (1, None, (3, 4))]  # fmt: skip


@pytest.mark.parametrize("make", [nn.max_pool, nn.avg_pool])
@pytest.mark.parametrize(("window", "stride", "hw"), POOL_CASES)
def test_pool_gradients(key: random.Key, make: Any, window: Any, stride: Any, hw: Any) -> None:
    layer = make(window, stride)
    x = pool_input(key, (2, *hw, 3))
    report = fnn.check_layer(layer, None, x)
    assert report.max_rel_error < TOL, report


def test_max_pool_gives_a_tied_window_gradient_to_its_first_maximum() -> None:
    x = np.zeros((1, 4, 4, 1))
    x[0, 0, 3, 0] = x[0, 1, 2, 0] = 1.0  # a tie in the window at rows 0-1, columns 2-3
    for layer in (nn.max_pool(2), nn.max_pool(2, 1)):
        y, _, residuals = layer.forward(None, x, None, None)
        dx = layer.backward(None, residuals, np.ones_like(y), True, None)
        assert dx is not None and dx.sum() == y.size  # every output's gradient goes once
    tiled = nn.max_pool(2)
    y, _, residuals = tiled.forward(None, x, None, None)
    dx = tiled.backward(None, residuals, np.ones_like(y), True, None)
    assert dx is not None
    np.testing.assert_array_equal(
        dx[0, :, :, 0], [[1, 0, 0, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    )


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


@pytest.mark.parametrize(
    ("make", "x_shape", "error", "message"),
    [
        (lambda: nn.conv2d(4, 3), (2, 5, 5), ValueError, r"add nn\.reshape\(\(5, 5, 1\)\)"),
        (lambda: nn.conv2d(4, 3), (2, 5, 5, 2), ValueError, r"needs float32 \(3, 3, 2, 4\), got "),
        (lambda: nn.conv2d(4, 9), (2, 5, 5, 1), ValueError, "kernel does not fit"),
        (lambda: nn.max_pool(7), (2, 5, 5, 1), ValueError, "window does not fit an input of 5x5"),
    ],
)
def test_bad_inputs(make: Any, x_shape: Any, error: type[Exception], message: str) -> None:
    layer = make()
    # the layer's own params (a 9x9 kernel's for conv2d(4, 9)): conv2d refuses another's
    params = layer.init(random.key(0), (9, 9, 1)) if "conv" in str(layer.spec) else None
    with pytest.raises(error, match=message):
        layer.apply(params, np.ones(x_shape, np.float32))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: nn.conv2d(0, 3), ValueError, "conv2d features must be >= 1"),
        (lambda: nn.conv2d(4, (3, 3, 3)), TypeError, "kernel_size must be an int or a pair"),
        (lambda: nn.conv2d(4, 3, padding="full"), ValueError, "'valid', 'same' or pairs"),
        (lambda: nn.conv2d(4, 3, padding=((1, -1), (0, 0))), ValueError, "ints >= 0"),
        (lambda: nn.max_pool(0), ValueError, "max_pool window must be >= 1"),
        (lambda: nn.avg_pool(2, "a"), TypeError, "avg_pool stride must be an int or a pair"),  # type: ignore[arg-type]
        (lambda: nn.cnn(padding="full"), ValueError, 'cnn padding must be "valid" or "same"'),
    ],
)
def test_bad_arguments(make: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


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
    weights = [p.w.shape for p in params if hasattr(p, "w")]
    assert weights == [(3, 3, 1, 32), (3, 3, 32, 64), (7 * 7 * 64, 128), (128, 10)]


# -- PyTorch, float64 ---------------------------------------------------------------------


def nchw(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def nhwc(x: Any) -> np.ndarray[Any, Any]:
    out: np.ndarray[Any, Any] = np.asarray(x.detach().numpy()).transpose(0, 2, 3, 1)
    return out


@pytest.mark.parametrize(("kernel", "stride", "padding", "hw", "channels"), CONV_CASES)
def test_conv2d_agrees_with_pytorch(
    key: random.Key, kernel: Any, stride: Any, padding: Any, hw: tuple[int, int], channels: int
) -> None:
    torch = pytest.importorskip("torch")
    layer = nn.conv2d(5, kernel, stride, padding)
    params = layer.init(key, (*hw, channels), np.float64)
    params = nn.Conv2DParams(params.w, random.normal(key, (5,), np.float64))
    x = random.normal(random.fold_in(key, 1), (3, *hw, channels), np.float64)
    y, _, residuals = layer.forward(params, x, None, None)
    dy = random.normal(random.fold_in(key, 2), y.shape, np.float64)
    dw, db = np.empty_like(params.w), np.empty_like(params.b)
    dx = layer.backward(params, residuals, dy, True, as_grads(params, [dw, db]))
    assert dx is not None

    tx = torch.tensor(nchw(x), requires_grad=True)
    tw = torch.tensor(params.w.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    tb = torch.tensor(params.b, requires_grad=True)
    (top, bottom), (left, right) = _padding_of(layer, x.shape[1:])
    padded = torch.nn.functional.pad(tx, (left, right, top, bottom))
    ty = torch.nn.functional.conv2d(padded, tw, tb, stride=_pair(stride))
    ty.backward(torch.tensor(nchw(dy)))
    np.testing.assert_allclose(y, nhwc(ty), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, nhwc(tx.grad), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, tw.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-12, atol=1e-12)


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _padding_of(layer: nn.Layer[Any], in_shape: tuple[int, ...]) -> Any:
    """The padding conv2d used, from its output shape and its spec."""
    spec = layer.spec
    assert spec is not None
    padding = spec["padding"]
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding != "same":
        return tuple(tuple(p) for p in padding)
    (kh, kw), (sh, sw) = _pair(spec["kernel_size"]), _pair(spec["stride"])
    pads = []
    for size, k, s in ((in_shape[0], kh, sh), (in_shape[1], kw, sw)):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("window", "stride", "hw"), POOL_CASES)
def test_pools_agree_with_pytorch(
    key: random.Key, kind: str, window: Any, stride: Any, hw: Any
) -> None:
    torch = pytest.importorskip("torch")
    layer = (nn.max_pool if kind == "max" else nn.avg_pool)(window, stride)
    x = pool_input(key, (3, *hw, 2))
    y, _, residuals = layer.forward(None, x, None, None)
    dy = random.normal(key, y.shape, np.float64)
    dx = layer.backward(None, residuals, dy, True, None)
    assert dx is not None
    pool = torch.nn.MaxPool2d if kind == "max" else torch.nn.AvgPool2d
    tx = torch.tensor(nchw(x), requires_grad=True)
    ty = pool(_pair(window), _pair(stride if stride is not None else window))(tx)
    ty.backward(torch.tensor(nchw(dy)))
    np.testing.assert_allclose(y, nhwc(ty), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dx, nhwc(tx.grad), rtol=1e-12, atol=1e-15)


def test_dropout_agrees_with_pytorch_in_distribution(key: random.Key) -> None:
    torch = pytest.importorskip("torch")
    x = np.ones((200, 100))
    ours = nn.dropout(0.3).forward(None, x, None, key)[0]
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout(torch.tensor(x), 0.3, training=True).numpy()
    for y in (ours, theirs):
        assert abs((y == 0).mean() - 0.3) < 0.01  # 20,000 draws: sd 0.0032
        assert set(np.unique(y)) == {0.0, 1 / 0.7}


def test_relu_and_max_pool_commute_values_and_gradients(key: random.Key) -> None:
    """What lets the CNN recipe pool before its ReLU: the same outputs and gradients, ties
    and windows with nothing above zero included."""
    x = np.round(random.normal(key, (3, 6, 8, 2), np.float64), 1)  # many ties
    x[0, :2, :2] = -1.0  # a window with nothing above zero
    dy = random.normal(random.fold_in(key, 1), (3, 3, 4, 2), np.float64)
    results = []
    for model in (nn.serial(nn.relu(), nn.max_pool(2)), nn.serial(nn.max_pool(2), nn.relu())):
        y, _, residuals = model.forward((None, None), x, None, None)
        results.append((y, model.backward((None, None), residuals, dy, True, (None, None))))
    (y1, dx1), (y2, dx2) = results
    assert y1.tobytes() == y2.tobytes()
    assert dx1 is not None and dx2 is not None and np.array_equal(dx1, dx2)
