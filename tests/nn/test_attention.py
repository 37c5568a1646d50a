"""Self-attention (fnn/nn/_attention.py): gradients, PyTorch, masks, padding, cached
decoding, determinism, specs and errors."""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any, Literal, overload

import numpy as np
import pytest

import fnn
from fnn import nn, random, tree
from fnn.nn._attention import AttentionParams, AttentionParamsNoBias, attend_step, attention

Array = np.ndarray[Any, Any]

TOL = 1e-6


def with_mask(layer: nn.Layer[Any, Any], mask: Array | None) -> nn.Layer[Any, Any]:
    """``layer`` with ``mask`` bound: what check_layer (which passes no mask) checks."""
    infer: Any = layer.infer
    forward: Any = layer.forward
    return nn.Layer(
        layer.declare,
        lambda p, x, s: infer(p, x, s, mask),
        lambda p, x, s, k: forward(p, x, s, k, mask),
        layer.backward,
        stochastic=layer.stochastic,
    )


def train(
    layer: nn.Layer[Any, Any], params: Any, x: Array, key: random.Key | None, mask: Array | None
) -> tuple[Array, Any]:
    """The training forward of a masked layer with ``mask``: ``(y, residuals)``."""
    forward: Any = layer.forward
    y, _, saved = forward(params, x, None, key, mask)
    return y, saved


def back(layer: nn.Layer[Any, Any], params: Any, saved: Any, dy: Array) -> tuple[Array, Any]:
    """The layer's backward: ``(dx, grads)``."""
    grads = tree.buffers_like(params)
    dx = layer.backward(params, saved, dy, True, grads)
    assert dx is not None
    return dx, grads


@overload
def random_params(
    key: random.Key, features: int, bias: Literal[True], dtype: Any = ...
) -> AttentionParams: ...


@overload
def random_params(
    key: random.Key, features: int, bias: bool, dtype: Any = ...
) -> AttentionParams | AttentionParamsNoBias: ...


def random_params(
    key: random.Key, features: int, bias: bool, dtype: Any = np.float64
) -> AttentionParams | AttentionParamsNoBias:
    """Params with biases that are not zero, so that every gradient has something to do."""
    ks = random.split(key, 4)
    w_qkv = random.normal(ks[0], (features, 3 * features), dtype, std=0.5)
    w_out = random.normal(ks[1], (features, features), dtype, std=0.5)
    if not bias:
        return AttentionParamsNoBias(w_qkv, w_out)
    b_qkv = random.normal(ks[2], (3 * features,), dtype, std=0.3)
    return AttentionParams(w_qkv, w_out, b_qkv, random.normal(ks[3], (features,), dtype, std=0.3))


def inputs(key: random.Key, shape: tuple[int, ...], dtype: Any = np.float64) -> Array:
    # fold_in(key, 1000): check_layer's probe is drawn from fold_in(key(0), 1)
    return random.normal(random.fold_in(key, 1000), shape, dtype)


def padding_mask(lengths: list[int], time: int, left: bool = False) -> Array:
    """Valid positions: the first (or with ``left``, the last) ``lengths[i]`` of row i."""
    where = np.arange(time)[None, :]
    n = np.array(lengths)[:, None]
    mask: Array = where >= time - n if left else where < n
    return mask


MASKS = {
    "none": None,
    "right": padding_mask([6, 4, 1], 6),
    "left": padding_mask([6, 3, 2], 6, left=True),
    "holes": np.array([[True, False, True, True, False, True]] * 3),
}


# -- gradients --------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask", sorted(MASKS))
@pytest.mark.parametrize("bias", [True, False])
def test_gradients_check(key: random.Key, causal: bool, mask: str, bias: bool) -> None:
    layer = with_mask(attention(2, causal, bias=bias), MASKS[mask])
    params = random_params(key, 4, bias)
    report = fnn.check_layer(layer, params, inputs(key, (3, 6, 4)))
    assert report.max_rel_error < TOL, report


@pytest.mark.parametrize("causal", [False, True])
def test_gradients_check_with_dropout_at_a_fixed_key(key: random.Key, causal: bool) -> None:
    layer = with_mask(attention(2, causal, dropout=0.3), MASKS["right"])
    assert layer.stochastic
    params = random_params(key, 4, True)
    report = fnn.check_layer(layer, params, inputs(key, (3, 6, 4)), key=random.key(5))
    assert report.max_rel_error < TOL, report


def test_dropout_draws_from_the_key_and_is_off_in_inference(key: random.Key) -> None:
    layer, params = attention(2, dropout=0.5), random_params(key, 4, True)
    x = inputs(key, (2, 5, 4))
    a = layer.forward(params, x, None, random.key(1))[0]
    b = layer.forward(params, x, None, random.key(1))[0]
    c = layer.forward(params, x, None, random.key(2))[0]
    assert a.tobytes() == b.tobytes() and not np.array_equal(a, c)
    np.testing.assert_array_equal(layer.apply(params, x), attention(2).apply(params, x))
    assert not attention(2).stochastic and not attention(2, dropout=0.0).stochastic
    with pytest.raises(TypeError, match=r"attention with dropout needs an fnn\.random\.Key"):
        layer.forward(params, x, None, None)


# -- against PyTorch --------------------------------------------------------------------------


def torch_attention(
    torch: ModuleType, params: Any, heads: int, x: Array, causal: bool, mask: Array | None
) -> tuple[Any, list[Any], Any]:
    """The layer written with PyTorch from fnn's params: ``(y, [param tensors], x)``."""
    t = {name: torch.tensor(np.array(getattr(params, name)), requires_grad=True) for name in (
        "w_qkv", "w_out", *(("b_qkv", "b_out") if isinstance(params, AttentionParams) else ())
    )}  # fmt: skip
    xt = torch.tensor(x, requires_grad=True)
    batch, time, f = x.shape
    qkv = xt @ t["w_qkv"] + t.get("b_qkv", 0)
    q, k, v = (
        part.reshape(batch, time, heads, f // heads).transpose(1, 2)
        for part in qkv.split(f, dim=-1)
    )
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if mask is None:
        o = sdpa(q, k, v, is_causal=causal)
    else:
        allowed = torch.tensor(mask)[:, None, None, :]
        if causal:
            allowed = allowed & torch.ones(time, time, dtype=torch.bool).tril()
        o = sdpa(q, k, v, attn_mask=allowed)
    y = o.transpose(1, 2).reshape(batch, time, f) @ t["w_out"] + t.get("b_out", 0)
    return y, list(t.values()), xt


@pytest.mark.oracle
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask", ["none", "right", "left"])
@pytest.mark.parametrize("bias", [True, False])
def test_agrees_with_pytorch(
    torch: ModuleType, key: random.Key, causal: bool, mask: str, bias: bool
) -> None:
    heads, shape = 2, (3, 6, 8)
    layer, params = attention(heads, causal, bias=bias), random_params(key, 8, bias)
    x, dy = inputs(key, shape), random.normal(random.key(7), shape, np.float64)
    y, saved = train(layer, params, x, None, MASKS[mask])
    dx, grads = back(layer, params, saved, dy)
    yt, tensors, xt = torch_attention(torch, params, heads, x, causal, MASKS[mask])
    yt.backward(torch.tensor(dy))
    diffs = [np.abs(y - yt.detach().numpy()).max(), np.abs(dx - xt.grad.numpy()).max()]
    for ours, theirs in zip(tree.leaves(grads), tensors):
        diffs.append(np.abs(ours - theirs.grad.numpy()).max())
    assert max(diffs) < 1e-12, diffs


# -- a query that sees no key -----------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_a_fully_masked_row_is_zeros_with_zero_gradients(
    key: random.Key, bias: bool, dropout: float
) -> None:
    """Left padding under a causal mask: queries 0 and 1 of sequence 1 see only padding
    keys, and row 2 is all padding. Their attention output is zeros (``y`` is ``b_out``),
    and the padding positions get no gradient at all."""
    layer = attention(2, causal=True, dropout=dropout, bias=bias)
    params, x = random_params(key, 4, bias), inputs(key, (3, 5, 4))
    mask = np.array([[True] * 5, [False, False, True, True, True], [False] * 5])
    empty = np.array([[False] * 5, [True, True, False, False, False], [True] * 5])
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        y, saved = train(layer, params, x, random.key(3), mask)
        dx, grads = back(layer, params, saved, np.ones_like(y))
        inferred = layer.apply(params, x, mask=mask)
    b_out = params.b_out if isinstance(params, AttentionParams) else np.zeros(4)
    np.testing.assert_array_equal(y[empty], np.broadcast_to(b_out, (int(empty.sum()), 4)))
    np.testing.assert_array_equal(inferred[empty], y[empty])
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    assert all(np.isfinite(g).all() for g in tree.leaves(grads))
    np.testing.assert_array_equal(dx[~mask], 0.0)  # padding: never attended, nothing seen
    assert np.abs(dx[mask]).min() > 0


def test_a_masked_row_passes_nothing_to_the_params(key: random.Key) -> None:
    """The gradient of a batch whose extra row is all padding, with dy zero at the
    padding positions, is the gradient of the batch without that row."""
    layer, params = attention(2, causal=True), random_params(key, 4, True)
    x = inputs(key, (2, 5, 4))
    mask = np.array([[True] * 5, [False] * 5])
    dy = random.normal(random.key(4), x.shape, np.float64)
    dy[1] = 0

    def gradient(x: Array, dy: Array, mask: Array | None) -> Any:
        return back(layer, params, train(layer, params, x, None, mask)[1], dy)[1]

    both, alone = gradient(x, dy, mask), gradient(x[:1], dy[:1], None)
    assert tree.allclose(both, alone, rtol=1e-13, atol=1e-15)


# -- padding, cached decoding, determinism ----------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("time", "features", "heads"), [(7, 8, 2), (40, 48, 4), (64, 128, 4)])
def test_padding_changes_no_bit_of_the_valid_positions(
    key: random.Key, dtype: Any, causal: bool, time: int, features: int, heads: int
) -> None:
    layer, params = attention(heads, causal), random_params(key, features, True, dtype)
    n = time - 5
    alone = inputs(key, (1, n, features), dtype)
    expected = layer.apply(params, alone)[0]
    noise = inputs(random.key(9), (3, time, features), dtype)
    for start in (0, 2, 5):  # right padding, both sides, left padding
        x = noise.copy()
        x[1, start : start + n] = alone[0]
        mask = np.ones((3, time), bool)
        mask[1] = False
        mask[1, start : start + n] = True
        y = layer.apply(params, x, mask=mask)
        np.testing.assert_array_equal(y[1, start : start + n], expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(("time", "features", "heads"), [(9, 8, 2), (64, 128, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_cached_decoding_gives_the_bits_of_the_full_forward(
    key: random.Key, dtype: Any, batch: int, time: int, features: int, heads: int, bias: bool
) -> None:
    layer, params = (
        attention(heads, causal=True, bias=bias),
        random_params(key, features, bias, dtype),
    )
    x = inputs(key, (batch, time, features), dtype)
    full = layer.apply(params, x)
    keys = np.zeros((batch, heads, time + 3, features // heads), dtype)
    values = np.zeros_like(keys)
    steps = [attend_step(params, heads, x[:, i], keys, values, i) for i in range(time)]
    np.testing.assert_array_equal(np.stack(steps, axis=1), full)
    assert all(s.dtype == dtype for s in steps)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cached_decoding_of_left_padded_prompts(key: random.Key, dtype: Any) -> None:
    heads, time, features = 2, 10, 8
    layer, params = attention(heads, causal=True), random_params(key, features, True, dtype)
    x = inputs(key, (3, time, features), dtype)
    mask = padding_mask([10, 6, 1], time, left=True)
    full = layer.apply(params, x, mask=mask)
    keys = np.zeros((3, heads, time, features // heads), dtype)
    values = np.zeros_like(keys)
    steps = [attend_step(params, heads, x[:, i], keys, values, i, mask) for i in range(time)]
    np.testing.assert_array_equal(np.stack(steps, axis=1), full)


def test_a_causal_layer_decodes_and_a_language_model_generates(key: random.Key) -> None:
    """The decoder's steps are the bits of the whole forward; fnn.generate draws the same
    tokens with the caches as by recomputing each window (the window restarting too)."""
    layer, params = attention(2, causal=True), random_params(key, 8, True, np.float32)
    assert attention(2).decoder is None  # a position sees the later ones: no stepping
    assert layer.decoder is not None
    x = inputs(key, (2, 7, 8), np.float32)
    cache = layer.decoder.start(params, 2, 7)
    steps = [layer.decoder.step(params, x[:, t], None, cache, t) for t in range(7)]
    np.testing.assert_array_equal(np.stack(steps, axis=1), layer.apply(params, x))
    model = nn.serial(
        nn.embedding(11, 8), nn.positional_embedding(8), attention(2, causal=True),
        nn.layer_norm(), nn.dense(11),
    )  # fmt: skip
    lm = model.init(key, (8,))
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    drawn = [
        fnn.generate(model, lm, prompt, 20, key=random.key(3), context=8, cached=cached)
        for cached in (True, False)
    ]
    np.testing.assert_array_equal(drawn[0], drawn[1])
    assert drawn[0].shape == (2, 20)


def test_reruns_give_the_same_bits(key: random.Key) -> None:
    layer = attention(4, causal=True, dropout=0.1, bias=False)
    params = random_params(key, 32, False, np.float32)
    x = inputs(key, (4, 16, 32), np.float32)
    mask = padding_mask([16, 9, 3, 12], 16)

    def run() -> bytes:
        y, saved = train(layer, params, x, random.key(2), mask)
        dx, grads = back(layer, params, saved, np.ones_like(y))
        return y.tobytes() + dx.tobytes() + b"".join(g.tobytes() for g in tree.leaves(grads))

    assert run() == run()


# -- the layer record, specs, initializers, errors --------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_params_shapes_dtypes_and_records(key: random.Key, dtype: Any) -> None:
    p = attention(3).init(key, (5, 12), dtype)
    assert isinstance(p, AttentionParams)
    assert (p.w_qkv.shape, p.w_out.shape, p.b_qkv.shape, p.b_out.shape) == (
        (12, 36), (12, 12), (36,), (12,)
    )  # fmt: skip
    assert all(leaf.dtype == dtype for leaf in tree.leaves(p))
    q = attention(3, bias=False).init(key, (5, 12), dtype)
    assert isinstance(q, AttentionParamsNoBias) and tree.num_leaves(q) == 2
    np.testing.assert_array_equal(q.w_qkv, p.w_qkv)  # the same draws with or without biases
    y = attention(3).apply(p, inputs(key, (2, 5, 12), dtype))
    assert y.dtype == dtype and y.shape == (2, 5, 12)


def test_spec_registry_and_files(key: random.Key, tmp_path: Any) -> None:
    layer = attention(
        4, causal=True, dropout=0.1, bias=False, weight_init="normal(0.02)", out_init="normal(0.01)"
    )
    assert layer.spec == {
        "layer": "attention", "heads": 4, "causal": True, "dropout": 0.1, "bias": False,
        "weight_init": "normal(0.02)", "out_init": "normal(0.01)",
    }  # fmt: skip
    assert nn.from_spec(layer.spec).spec == layer.spec
    assert nn.LAYERS["attention"].types == (AttentionParams, AttentionParamsNoBias)
    for bias in (True, False):
        model = nn.serial(attention(2, causal=True, bias=bias), nn.layer_norm())
        params = model.init(key, (6, 8))
        fnn.io.save_model(tmp_path / f"m{bias}.npz", model, params, in_shape=(6, 8))
        loaded, loaded_params, _ = fnn.io.load_model(tmp_path / f"m{bias}.npz")
        assert loaded.spec == model.spec and tree.equal(loaded_params, params)


def test_a_combinator_hands_its_mask_to_attention(key: random.Key) -> None:
    model = nn.serial(attention(2, causal=True), nn.layer_norm())
    assert model.masked
    params = model.init(key, (6, 4), np.float64)
    x, mask = inputs(key, (3, 6, 4)), MASKS["left"]
    direct = nn.layer_norm().apply(
        params[1], attention(2, causal=True).apply(params[0], x, mask=mask)
    )
    np.testing.assert_array_equal(model.apply(params, x, mask=mask), direct)


def test_initializers(key: random.Key) -> None:
    gpt2 = attention(2, weight_init="normal(0.02)", out_init=f"normal({0.02 / np.sqrt(2 * 12)})")
    p = gpt2.init(key, (4, 200), np.float64)
    assert abs(float(p.w_qkv.std()) - 0.02) < 0.001
    assert abs(float(p.w_out.std()) - 0.02 / np.sqrt(24)) < 0.0003
    q = attention(2, out_init="zeros").init(key, (4, 200), np.float64)
    a = np.sqrt(6 / (200 + 600))  # glorot_uniform of (200, 600), as PyTorch's in_proj_weight
    assert (q.w_out == 0).all() and 0.95 * a < np.abs(q.w_qkv).max() < a


def test_errors(key: random.Key) -> None:
    with pytest.raises(ValueError, match="attention: 6 features do not split into 4 heads"):
        attention(4).init(key, (3, 6))
    with pytest.raises(ValueError, match=r"shape \(time, features\) per example, got \(6,\)"):
        attention(2).init(key, (6,))
    with pytest.raises(ValueError, match=r"normal\(\.\.\.\) needs a number"):
        attention(2, out_init="normal(x)")
    with pytest.raises(ValueError, match=r"attention dropout must be in \[0, 1\)"):
        attention(2, dropout=1.0)
    with pytest.raises(TypeError, match="attention causal must be True or False, got 1"):
        attention(2, causal=1)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="attention heads must be >= 1"):
        attention(0)


def test_attend_step_checks_its_arguments(key: random.Key) -> None:
    params = attention(2).init(key, (4, 6))
    x, cache = np.zeros((1, 6), np.float32), np.zeros((1, 2, 4, 3), np.float32)
    other = np.zeros((1, 2, 4, 3), np.float32)
    with pytest.raises(TypeError, match="attend_step needs an attention layer's params"):
        attend_step(nn.dense(2).init(key, (3,)), 2, x, cache, other, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"length must be in \[0, 4\), got 4"):
        attend_step(params, 2, x, cache, other, 4)
    with pytest.raises(ValueError, match=r"keys must be \(batch, heads, max_length, dh\)"):
        attend_step(params, 2, x, np.zeros((1, 3, 4, 2), np.float32), other, 0)
    with pytest.raises(TypeError, match="must have dtype float32"):
        attend_step(params, 2, x.astype(np.float64), cache, other, 0)
    frozen = cache.copy()
    frozen.flags.writeable = False
    with pytest.raises(TypeError, match="attend_step writes into keys: it must be writable"):
        attend_step(params, 2, x, frozen, other, 0)
    with pytest.raises(TypeError, match=r"mask must be a bool array \(1, 4\)"):
        attend_step(params, 2, x, cache, other, 0, np.ones((1, 3), bool))
    with pytest.raises(ValueError, match=r"x_new must be \(batch, 6\), got \(1, 5\)"):
        attend_step(params, 2, np.zeros((1, 5), np.float32), cache, other, 0)
