"""Activations and flatten (fnn/nn/_activations.py): values, gradients, huge inputs, specs,
GELU (tanh and exact forms), SiLU and ELU against PyTorch, and erf against math.erf."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import losses, nn, random
from fnn.nn._activations import elu, erf, gelu, silu
from tests.support.data import away_from_zero

TOL = 1e-6

ACTIVATION_CASES = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "identity"]


@pytest.mark.parametrize("name", ACTIVATION_CASES)
def test_activation_gradients(key: random.Key, name: str) -> None:
    layer = nn.activation(name)
    x = away_from_zero(key, (4, 6))
    result = fnn.check_layer(layer, None, x)
    assert result.max_rel_error < TOL, str(result)


def test_activation_values(key: random.Key) -> None:
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(nn.relu().apply(None, x), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(nn.leaky_relu(0.1).apply(None, x), [[-0.2, 0.0, 3.0]])
    np.testing.assert_allclose(nn.sigmoid().apply(None, x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(nn.tanh().apply(None, x), np.tanh(x))
    sm = nn.softmax().apply(None, x)
    np.testing.assert_allclose(sm, np.exp(x) / np.exp(x).sum())
    np.testing.assert_allclose(nn.log_softmax().apply(None, x), np.log(sm))
    assert nn.identity().apply(None, x) is x
    assert nn.activation("linear").spec == {"layer": "identity"}


def test_activations_are_stable_for_huge_inputs() -> None:
    x = np.array([[-1e4, 0.0, 1e4]], np.float32)
    np.testing.assert_array_equal(nn.sigmoid().apply(None, x), [[0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(nn.softmax().apply(None, x), [[0.0, 0.0, 1.0]])
    assert np.isfinite(nn.log_softmax().apply(None, x)).all()


def test_flatten_shapes(key: random.Key) -> None:
    layer = nn.flatten()
    assert layer.output_shape((28, 28)) == (784,)
    assert layer.apply(None, np.zeros((2, 28, 28), np.float32)).shape == (2, 784)


# -- GELU (tanh and exact forms), SiLU and ELU -----------------------------------------------

LAYERS: dict[str, nn.Layer[None, None]] = {
    "gelu": gelu(),
    "gelu(exact)": gelu(approximate=False),
    "silu": silu(),
    "elu": elu(),
    "elu(0.5)": elu(0.5),
    "elu(2)": elu(2.0),
}


def wide_away_from_zero(k: random.Key, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """Float64 inputs at least 0.1 away from zero (ELU's kink), spread over [-4, 4] and
    beyond, so both sides and GELU's curved part are exercised."""
    x = 2 * random.normal(k, shape, dtype=np.float64)
    return np.where(x >= 0, x + 0.1, x - 0.1)


def backward(layer: nn.Layer[None, None], x: np.ndarray[Any, Any], dy: np.ndarray[Any, Any]) -> Any:
    y, _, res = layer.forward(None, x, None, None)
    return y, layer.backward(None, res, dy, True, None)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradients_check(key: random.Key, name: str) -> None:
    x = wide_away_from_zero(key, (5, 7))
    report = fnn.check_layer(LAYERS[name], None, x)
    assert report.max_rel_error < TOL, report


def test_values_follow_their_formulas() -> None:
    x = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]])
    c = np.sqrt(2 / np.pi)
    expected_gelu = 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(gelu().apply(None, x), expected_gelu, rtol=1e-15)
    exact = [[0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in row] for row in x]
    np.testing.assert_allclose(gelu(approximate=False).apply(None, x), exact, rtol=1e-15)
    np.testing.assert_allclose(silu().apply(None, x), x / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(
        elu(0.7).apply(None, x), np.where(x > 0, x, 0.7 * (np.exp(x) - 1)), rtol=1e-15
    )


def test_registered_as_activations_with_specs() -> None:
    assert nn.activation("gelu").spec == {"layer": "gelu", "approximate": True}
    assert gelu(approximate=False).spec == {"layer": "gelu", "approximate": False}
    assert nn.activation("silu").spec == {"layer": "silu"}
    assert nn.activation("elu").spec == {"layer": "elu", "alpha": 1.0}
    rebuilt = nn.from_spec({"layer": "elu", "alpha": 0.5})
    x = np.array([[-1.0, 1.0]])
    np.testing.assert_array_equal(rebuilt.apply(None, x), elu(0.5).apply(None, x))


def test_gelu_specs_saved_before_the_exact_form_keep_their_meaning() -> None:
    x = np.array([[-1.0, 0.5, 2.0]])
    old = nn.from_spec({"layer": "gelu"})  # a spec written when gelu took no argument
    np.testing.assert_array_equal(old.apply(None, x), gelu(approximate=True).apply(None, x))
    assert not np.array_equal(old.apply(None, x), gelu(approximate=False).apply(None, x))
    with pytest.raises(TypeError, match=r"gelu's approximate must be True .* got 'tanh'"):
        gelu("tanh")  # type: ignore[arg-type]


def test_elu_slope_keeps_its_digits_in_the_left_tail() -> None:
    """The slope alpha exp(x) below zero, relative to its size (alpha expm1(x) + alpha
    cancelled: 4e-2 off at x = -36, 0 from about -38)."""
    x = np.array([[-1.0, -20.0, -36.0, -50.0, -700.0]])
    y, _, saved = elu(0.5).forward(None, x, None, None)
    dx = elu(0.5).backward(None, saved, np.ones_like(x), True, None)
    assert dx is not None
    np.testing.assert_allclose(dx, 0.5 * np.exp(x), rtol=1e-15)
    np.testing.assert_allclose(y, 0.5 * np.expm1(x), rtol=1e-15)


def test_elu_rejects_a_bad_alpha() -> None:
    with pytest.raises(TypeError, match="elu alpha must be a number, got str"):
        elu("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="elu needs a finite alpha, got inf"):
        elu(float("inf"))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_float32_stays_float32(key: random.Key, name: str) -> None:
    x = random.normal(key, (3, 4))
    y, dx = backward(LAYERS[name], x, np.ones_like(x))
    assert y.dtype == np.float32 and dx.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_an_empty_batch_gives_empty_values_and_gradients(name: str, dtype: Any) -> None:
    x = np.zeros((0, 3), dtype)
    y, dx = backward(LAYERS[name], x, x)
    assert y.shape == dx.shape == (0, 3) and y.dtype == dx.dtype == dtype


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_huge_inputs_give_finite_values_and_gradients(name: str) -> None:
    """np.seterr raises on overflow in every test, so an exp(1e4) or a cube of 3e38 fails
    here."""
    big = float(np.finfo(np.float32).max)
    x = np.array([[-big, -1e4, -100.0, 100.0, 1e4, big]], np.float32)
    layer = LAYERS[name]
    y, dx = backward(layer, x, np.ones_like(x))
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    positive = x > 0
    np.testing.assert_array_equal(y[positive], x[positive])  # y = x on the far right
    np.testing.assert_array_equal(dx[positive], 1.0)
    alpha = {"elu": 1.0, "elu(0.5)": 0.5, "elu(2)": 2.0}.get(name, 0.0)
    # and 0 or -alpha on the far left (silu(-100) is a subnormal -100 exp(-100))
    np.testing.assert_allclose(y[~positive], -alpha, rtol=0, atol=1e-30)
    np.testing.assert_allclose(dx[~positive], 0.0, rtol=0, atol=1e-30)


@pytest.mark.parametrize(("approximate", "clip"), [(True, 10.0), (False, 13.0)])
def test_gelu_is_unchanged_across_its_internal_clip(approximate: bool, clip: float) -> None:
    """The tanh form's cubic is taken of x clipped to [-10, 10], the exact form's x phi(x)
    of x clipped to [-13, 13]; around the clip the values and slopes must run on smoothly
    (y = x beyond, slope 1; y = 0 and slope 0 on the left)."""
    for dtype in (np.float32, np.float64):
        x = np.array([[-clip - 0.5, -clip, -clip + 0.5, clip - 0.5, clip, clip + 0.5]], dtype)
        y, dx = backward(gelu(approximate), x, np.ones_like(x))
        np.testing.assert_allclose(y, np.where(x > 0, x, 0.0), atol=1e-12)
        np.testing.assert_allclose(dx, np.where(x > 0, 1.0, 0.0), atol=1e-12)


def test_erf_is_float64_accurate_on_a_dense_grid() -> None:
    """Against math.erf (the C library's) on [-7, 7] by 1e-5, tiny and huge magnitudes,
    and both sides of each boundary of fdlibm's ranges: within one ulp everywhere, and
    correctly rounded (as the C library is) for most entries of each range."""
    edges = np.array([2.0**-28, 0.84375, 1.25, 1 / 0.35, 6.0])
    grid = np.concatenate(
        [
            np.linspace(-7.0, 7.0, 1_400_001),
            np.geomspace(1e-300, 1e300, 100_001),
            -np.geomspace(1e-300, 1e300, 2_001),
            np.nextafter(edges, 0.0),
            edges,
            np.nextafter(edges, np.inf),
        ]
    )
    expected = np.array([math.erf(v) for v in grid])
    with np.errstate(all="raise"):
        got = erf(grid)
    assert got.dtype == np.float64
    nonzero = expected != 0
    relative = np.abs(got - expected)[nonzero] / np.abs(expected[nonzero])
    assert relative.max() <= 2.3e-16, (relative.max(), grid[nonzero][relative.argmax()])
    a = np.abs(grid)
    for low, high, share in [(0, 2.0**-28, 0.999), (2.0**-28, 0.84375, 0.93), (0.84375, 1.25, 0.95),
                             (1.25, 1 / 0.35, 0.99), (1 / 0.35, np.inf, 0.999)]:  # fmt: skip
        where = (a >= low) & (a < high)
        assert np.mean(got[where] == expected[where]) >= share, (low, high)
    np.testing.assert_array_equal(got[~nonzero], expected[~nonzero])
    special = erf(np.array([np.inf, -np.inf, -0.0, 0.0, 5e-324, np.nan]))
    np.testing.assert_array_equal(special[:5], [1.0, -1.0, -0.0, 0.0, 5e-324])
    assert np.signbit(special[2]) and np.isnan(special[5])
    np.testing.assert_array_equal(erf(np.float32(0.5)), math.erf(np.float32(0.5)))


def test_exact_gelu_in_float32_is_float32_accurate() -> None:
    """The float32 path (its own formula, in float32) against float64 from math.erfc
    (``Phi(x) = erfc(-x / sqrt 2) / 2``, accurate in the left tail too): y within a
    relative 4.5e-7 + 3e-8 x**2 on [-13, 13] and at tiny magnitudes (6.5e-7 for |x| <= 4),
    the slope within 2.5e-7 (relative 1e-6 where |slope| >= 0.1), as
    _gelu_exact_float32's docstring reports; beyond
    -13 the values are under 1e-37 (subnormal); beyond the clip, exactly 0 or x, 0 or 1."""
    tiny = np.geomspace(1e-37, 1.0, 20_001)
    x = np.concatenate(
        [
            np.linspace(-13.0, 13.0, 520_001),
            random.normal(random.key(7), (200_000,), np.float64) * 3,
            tiny,
            -tiny,
        ]
    ).astype(np.float32)
    x = x[np.abs(x) <= 13]
    x64 = x.astype(np.float64)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x64.tolist()])
    exact_y = x64 * cdf
    exact_slope = cdf + x64 * np.exp(-0.5 * x64**2) / math.sqrt(2 * math.pi)
    y, slope = backward(gelu(approximate=False), x[None], np.ones((1, x.size), np.float32))
    assert y.dtype == slope.dtype == np.float32
    zero = x == 0
    assert (y[0][zero] == 0).all() and (slope[0][zero] == 0.5).all()
    relative = np.abs(y[0] - exact_y)[~zero] / np.abs(exact_y[~zero])
    excess = relative / (4.5e-7 + 3e-8 * x64[~zero] ** 2)
    assert excess.max() < 1, (relative[excess.argmax()], x[~zero][excess.argmax()])
    core = np.abs(x[~zero]) <= 4
    assert relative[core].max() < 6.5e-7, relative[core].max()
    error = np.abs(slope[0] - exact_slope)
    assert error.max() < 2.5e-7, (error.max(), x[error.argmax()])
    steep = np.abs(exact_slope) >= 0.1
    assert (error[steep] / np.abs(exact_slope[steep])).max() < 1e-6
    far = np.array([[-1e30, -20.0, -14.5, -14.0, -13.5, 14.5, 20.0, 1e30]], np.float32)
    with np.errstate(all="raise"):
        y, slope = backward(gelu(approximate=False), far, np.ones_like(far))
    assert (np.abs(y[far < 0]) < 1e-37).all() and (np.abs(slope[far < 0]) < 1e-35).all()
    np.testing.assert_array_equal(y[far > 0], far[far > 0])
    np.testing.assert_array_equal(slope[far > 0], 1.0)
    np.testing.assert_array_equal(y[far <= -14.5], 0.0)


@pytest.mark.parametrize("approximate", [True, False])
def test_gelu_of_float64_extremes_raises_no_floating_point_error(approximate: bool) -> None:
    big = float(np.finfo(np.float64).max)
    x = np.array([[-big, -1e200, -40.0, -1e-9, 0.0, 1e-9, 40.0, 1e200, big]])
    with np.errstate(all="raise"):
        y, dx = backward(gelu(approximate), x, np.ones_like(x))
    np.testing.assert_array_equal(y[x > 1], x[x > 1])
    np.testing.assert_array_equal(y[x < -1], 0.0)
    np.testing.assert_array_equal(dx[x > 1], 1.0)
    np.testing.assert_allclose(dx[x < -1], 0.0, rtol=0, atol=1e-30)
    np.testing.assert_allclose(dx[np.abs(x) < 1], 0.5, rtol=0, atol=1e-8)


def test_mlp_with_gelu_silu_and_elu(key: random.Key) -> None:
    x = random.normal(key, (6, 5), dtype=np.float64)
    y = np.array([0, 1, 2, 0, 1, 2])
    for name in ("gelu", "silu", "elu"):
        model = nn.mlp((8, 3), name)
        assert model.spec is not None and model.spec["layers"][2] == nn.activation(name).spec
        params = model.init(key, (5,), np.float64)
        assert model.apply(params, x).shape == (6, 3)
        report = fnn.check_model(model, losses.softmax_cross_entropy, params, x, y)
        assert report.max_rel_error < TOL, (name, report)
        p32 = model.init(key, (5,))
        assert model.apply(p32, x.astype(np.float32)).dtype == np.float32


# -- PyTorch ----------------------------------------------------------------------------------


def torch_layer(torch: Any, name: str) -> Any:
    return {
        "gelu": lambda: torch.nn.GELU(approximate="tanh"),
        "gelu(exact)": lambda: torch.nn.GELU(),
        "silu": lambda: torch.nn.SiLU(),
        "elu": lambda: torch.nn.ELU(),
        "elu(0.5)": lambda: torch.nn.ELU(alpha=0.5),
        "elu(2)": lambda: torch.nn.ELU(alpha=2.0),
    }[name]()


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_agrees_with_pytorch(torch: ModuleType, key: random.Key, name: str) -> None:
    k1, k2 = random.split(key)
    x = np.concatenate(
        [wide_away_from_zero(k1, (4, 6)), [[-30.0, -8.0, -1e-3, 1e-3, 8.0, 30.0]]], axis=0
    )
    dy = random.normal(k2, x.shape, dtype=np.float64)
    y, dx = backward(LAYERS[name], x, dy)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ty = torch_layer(torch, name)(tx)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-15)
