"""transformer_block and gpt (fnn/nn/_transformer.py): the structure nanoGPT builds, its
init, gradients by finite differences, a whole GPT against a PyTorch float64 GPT written
as nanoGPT writes it (values and every parameter's gradient), and generation."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import losses, nn, random, tree

Array = np.ndarray[Any, Any]

TOL = 1e-6


def ids(key: random.Key, shape: tuple[int, ...], vocab: int) -> Array:
    out: Array = (random.uniform(key, shape, dtype=np.float64) * vocab).astype(np.int64)
    return out


def test_gpt_is_nanogpts_model_and_init(key: random.Key) -> None:
    model = nn.gpt(vocab=65, context=64, layers=4, heads=4, features=128)
    params = model.init(key, (64,))
    # nanoGPT prints 0.80M: its count leaves out the 64 * 128 position vectors
    assert tree.size(params) - 64 * 128 == 795_904
    table, body = params
    positions, *blocks, final = tuple[Any, ...](body)  # the body's entries, untyped
    assert np.std(table.table) == pytest.approx(0.02, rel=0.05)
    assert np.std(positions.table) == pytest.approx(0.02, rel=0.1)
    (attend, mlp) = blocks[0]
    w_out, second = attend[0][1].w_out, mlp[0][3].w
    assert np.std(w_out) == pytest.approx(0.02 / math.sqrt(8), rel=0.1)
    assert np.std(second) == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    assert isinstance(final, nn.ScaleParams)  # no biases anywhere
    assert nn.from_spec(model.spec).spec == model.spec
    assert model.output_shape((64,)) == (64, 65)


@pytest.mark.parametrize("bias", [False, True])
def test_a_block_and_a_small_gpt_pass_finite_differences(key: random.Key, bias: bool) -> None:
    block = nn.transformer_block(8, 2, hidden=12, causal=True, bias=bias)
    params = block.init(key, (5, 8), np.float64)
    x = random.normal(random.fold_in(key, 1), (2, 5, 8), np.float64)
    report = fnn.check_layer(block, params, x)
    assert report.max_rel_error < TOL, str(report)
    model = nn.gpt(vocab=7, context=5, layers=2, heads=2, features=8, bias=bias, tied=not bias)
    gpt_params = model.init(key, (5,), np.float64)
    xs, ys = ids(key, (3, 5), 7), ids(random.fold_in(key, 2), (3, 5), 7)
    report = fnn.check_model(model, losses.softmax_cross_entropy, gpt_params, xs, ys)
    assert report.max_rel_error < TOL, str(report)


def torch_gpt(torch: ModuleType, params: Any, x: Array, heads: int) -> Any:
    """nanoGPT's forward (model.py, bias=False, dropout 0) over torch tensors made from
    fnn's params: h = wte[x] + wpe; per block h += attn(ln_1(h)), h += mlp(ln_2(h));
    logits = ln_f(h) @ wte.T. Returns (logits, the leaf tensors in fnn's flatten order)."""
    leaves = [torch.tensor(np.array(a), requires_grad=True) for a in tree.leaves(params)]
    it = iter(leaves)
    wte, wpe = next(it), next(it)
    f = wte.shape[1]
    t = x.shape[1]
    h = wte[torch.from_numpy(x)] + wpe[:t]
    ln = torch.nn.functional.layer_norm
    for _ in range(len(params[1]) - 2):
        ln1, w_qkv, w_out, ln2, w1, w2 = (next(it) for _ in range(6))
        q, k, v = (ln(h, (f,), ln1, None, 1e-5) @ w_qkv).split(f, dim=2)
        q, k, v = (a.view(x.shape[0], t, heads, f // heads).transpose(1, 2) for a in (q, k, v))
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + y.transpose(1, 2).reshape(x.shape[0], t, f) @ w_out
        h = h + torch.nn.functional.gelu(ln(h, (f,), ln2, None, 1e-5) @ w1) @ w2
    lnf = next(it)
    return ln(h, (f,), lnf, None, 1e-5) @ wte.T, leaves


@pytest.mark.oracle
def test_a_gpt_agrees_with_pytorch(torch: ModuleType, key: random.Key) -> None:
    model = nn.gpt(vocab=11, context=9, layers=2, heads=3, features=12)
    params = model.init(key, (9,), np.float64)
    params = tree.map(
        lambda a: a + 0.05 * random.normal(random.fold_in(key, a.size), a.shape, a.dtype), params
    )  # scales and tables away from their init, so every term matters
    x, y = ids(key, (4, 9), 11), ids(random.fold_in(key, 1), (4, 9), 11)
    value, grads = fnn.value_and_grad(model, losses.softmax_cross_entropy)(params, x, y)
    logits, leaves = torch_gpt(torch, params, x, heads=3)
    np.testing.assert_allclose(
        model.apply(params, x), logits.detach().numpy(), rtol=1e-12, atol=1e-13
    )
    theirs = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), torch.from_numpy(y.ravel()))
    theirs.backward()
    assert value == pytest.approx(theirs.item(), rel=1e-13)
    for path, mine, leaf in zip(tree.paths(grads), tree.leaves(grads), leaves):
        np.testing.assert_allclose(mine, leaf.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=path)


def test_a_gpt_generates_the_same_tokens_cached_or_recomputed(key: random.Key) -> None:
    model = nn.gpt(vocab=13, context=8, layers=2, heads=2, features=16)
    params = model.init(key, (8,))
    prompt = np.array([[3, 1, 4], [1, 5, 9]])
    options: dict[str, Any] = {"key": random.key(7), "context": 8, "temperature": 0.8}
    cached = fnn.generate(model, params, prompt, 30, **options)
    assert cached.shape == (2, 30) and cached.dtype == np.int64
    np.testing.assert_array_equal(cached, fnn.generate(model, params, prompt, 30, **options))
    np.testing.assert_array_equal(
        cached, fnn.generate(model, params, prompt, 30, cached=False, **options)
    )  # the window restarts from its last half three times on the way
    greedy = fnn.generate(
        model, params, prompt[0], 5, key=random.key(0), temperature=0.0, context=8
    )
    first = model.apply(params, prompt[:1])[0, -1].argmax()
    assert greedy[0] == first
    top1 = fnn.generate(model, params, prompt[0], 5, key=random.key(1), top_k=1, context=8)
    np.testing.assert_array_equal(top1, greedy)
    for tiny in (1e-300, 5e-324):  # logits / temperature overflow: still the argmax
        cold = fnn.generate(model, params, prompt[0], 5, key=random.key(2), temperature=tiny)
        np.testing.assert_array_equal(cold, greedy)


@pytest.mark.parametrize(("features", "dtype", "tolerance"), [
    (32, np.float32, 1e-6), (128, np.float32, 1e-6), (128, np.float64, 1e-14),
])  # fmt: skip
def test_a_padded_sequence_of_a_wider_model_gives_what_it_gives_alone_to_rounding(
    features: int, dtype: Any, tolerance: float
) -> None:
    """At these sizes OpenBLAS sums a row of some products (a vocabulary of 65 in the tied
    output, a 512-row weight) in another order when other rows come with it, so the bits
    may differ; the values agree to float rounding (the issue's 1e-6 in float32)."""
    blocks = [nn.transformer_block(features, 4, causal=False) for _ in range(2)]
    body = nn.serial(nn.positional_embedding(24), *blocks, nn.layer_norm())
    model = nn.masked(0, nn.tied(65, features, body))
    params = model.init(random.key(0), (24,), dtype)
    rng = np.random.default_rng(0)
    batch, lengths = rng.integers(1, 65, (12, 24)), [1, 2, 3, 5, 8, 13, 24, 20, 16, 9, 4, 24]
    for row, n in enumerate(lengths):
        batch[row, n:] = 0
    together = model.apply(params, batch)
    for row, n in enumerate(lengths):
        alone = model.apply(params, batch[row : row + 1, :n])[0]
        np.testing.assert_allclose(alone, together[row, :n], rtol=0, atol=tolerance)


def test_a_masked_model_decodes_its_padding_as_its_forward_does(key: random.Key) -> None:
    """Under nn.masked, the cached steps mask the positions holding the pad id (in the
    prompt or drawn) as the whole forward does: the same ids cached or recomputed."""
    body = nn.serial(
        nn.positional_embedding(12), nn.transformer_block(8, 2, causal=True), nn.layer_norm()
    )
    model = nn.masked(0, nn.tied(4, 8, body))
    params = tree.map(lambda a: a * 30, model.init(random.key(0), (12,)))  # sharper draws
    options: dict[str, Any] = {"key": random.key(1), "context": 12, "temperature": 0.7}
    for prompt in ([1, 2, 3], [1, 0, 3], [0, 0, 2]):
        cached = fnn.generate(model, params, np.array(prompt), 20, **options)
        recomputed = fnn.generate(model, params, np.array(prompt), 20, cached=False, **options)
        assert (cached[:-1] == 0).any()  # a pad id drawn, then read by later positions
        np.testing.assert_array_equal(cached, recomputed, err_msg=str(prompt))


def test_generate_refuses_a_layer_that_mixes_positions_without_a_decoder(key: random.Key) -> None:
    body = nn.serial(nn.attention(2, causal=False), nn.layer_norm())  # no decoder: not causal
    model = nn.tied(5, 4, body)
    params = model.init(key, (6,))
    with pytest.raises(ValueError, match=r"a layer mixes positions but has no nn\.Decoder"):
        fnn.generate(model, params, np.array([1, 2, 3]), 4, key=random.key(0))
    padded = nn.masked(0, nn.tied(5, 4, nn.serial(nn.positional_embedding(6), body)))
    with pytest.raises(ValueError, match=r"a layer mixes positions but has no nn\.Decoder"):
        fnn.generate(padded, padded.init(key, (6,)), np.array([1, 2, 3]), 3, key=random.key(0))
    assert fnn.generate(
        model, params, np.array([1, 2, 3]), 4, key=random.key(0), cached=False
    ).shape == (4,)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"length": 0}, ValueError, "length must be >= 1"),
        ({"temperature": -1.0}, ValueError, "temperature must be a finite number >= 0"),
        ({"top_k": 0}, ValueError, "top_k must be >= 1"),
        ({"prompt": np.array([1.0])}, TypeError, "prompt must be an integer array"),
        ({"prompt": np.array([], np.int64)}, ValueError, "prompt must be"),
        ({"prompt": np.array([99])}, ValueError, "outside the vocabulary of 13"),
        # before the last context (8) ids, which the model reads: still checked
        ({"prompt": np.array([-5, *range(1, 10)])}, ValueError, "the id -5 at"),
        (
            {"prompt": np.array([2**64 - 1, 1], np.uint64)},
            ValueError,
            "the id 18446744073709551615",
        ),
    ],
)
def test_generate_refuses_bad_arguments(
    key: random.Key, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    model = nn.gpt(vocab=13, context=8, layers=1, heads=2, features=8)
    params = model.init(key, (8,))
    given: dict[str, Any] = {"prompt": np.array([1]), "length": 3, **options}
    with pytest.raises(error, match=message):
        fnn.generate(
            model, params, given.pop("prompt"), given.pop("length"), key=key, context=8, **given
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_padded_sequence_gives_what_it_gives_alone(key: random.Key, dtype: Any) -> None:
    """Padding reaches the attention through masked(pad_id, model): the valid positions of
    a sequence padded to its batch's length have the bits of the sequence alone."""
    blocks = [nn.transformer_block(8, 2, causal=False) for _ in range(2)]
    body = nn.serial(nn.positional_embedding(7), *blocks, nn.layer_norm())
    model = nn.masked(0, nn.tied(6, 8, body))
    params = model.init(key, (7,), dtype)
    batch = np.array(
        [[3, 1, 4, 1, 5, 0, 0], [2, 5, 3, 5, 4, 1, 2], [5, 2, 0, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0, 0]]
    )
    together = model.apply(params, batch)
    for row, n in ((0, 5), (1, 7), (2, 2), (3, 1)):  # one token alone: one row through dense
        alone = model.apply(params, batch[row : row + 1, :n])
        np.testing.assert_array_equal(together[row, :n], alone[0])
