"""conv2d (fnn/nn/_conv.py): gradients by finite differences, the fused pooling, chunks,
strided inputs, agreement with PyTorch in float64, and what bad input gets."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import nn, random
from tests.nn.images import _pair, nchw, nhwc

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
    layer: nn.Layer[Any, Any], params: Any, x: np.ndarray[Any, Any], dy_key: random.Key
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


@pytest.mark.parametrize(
    ("other", "got"),
    [
        (nn.conv2d(8, 5), r"got float32 \(5, 5, 1, 8\)"),  # another kernel size
        (nn.conv2d(16, 3), r"got float32 \(3, 3, 1, 16\)"),  # another width
        (nn.conv2d(8, (3, 5)), r"got float32 \(3, 5, 1, 8\)"),
    ],
)
def test_conv2d_refuses_params_of_another_kernel_size_or_width(
    key: random.Key, other: nn.Layer[Any, Any], got: str
) -> None:
    layer = nn.conv2d(8, 3, padding="same")
    x = np.ones((2, 7, 7, 1), np.float32)
    with pytest.raises(ValueError, match=r"at \.w: the model needs float32 \(3, 3, 1, 8\)") as info:
        layer.apply(other.init(key, (7, 7, 1)), x)
    assert info.match(got)


# -- PyTorch, float64 -------------------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize(("kernel", "stride", "padding", "hw", "channels"), CONV_CASES)
def test_conv2d_agrees_with_pytorch(
    torch: ModuleType,
    key: random.Key,
    kernel: Any,
    stride: Any,
    padding: Any,
    hw: tuple[int, int],
    channels: int,
) -> None:
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


def _padding_of(layer: nn.Layer[Any, Any], in_shape: tuple[int, ...]) -> Any:
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
