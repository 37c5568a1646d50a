"""Optimizers as records (fnn/optim/_base.py): Optimizer, chain, OptState, the Transform
contract, updates that never mutate, flat moments, slices of an elementwise rule, and
transforms that break the contract failing at their first update."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest

import fnn
from fnn import losses, nn, optim, random, tree
from tests.optim.references import CASES, gradients, random_tree

ALL = [c[1] for c in CASES] + [optim.chain(optim.clip_by_global_norm(1.0), optim.adam())]


@pytest.mark.parametrize("opt", ALL)
def test_updates_never_mutate_and_keep_float32(key: random.Key, opt: optim.Optimizer[Any]) -> None:
    params = random_tree(key, np.float32)
    g = tree.astype(gradients(key, params, 1)[0], np.float32)
    state = opt.init(params)
    state, _ = opt.update(state, g)
    before = tree.map(np.copy, (params, g, state))
    new_state, new_params = opt.update(state, g)
    assert tree.equal((params, g, state), before)
    for leaf in tree.leaves((new_params, new_state)):
        if isinstance(leaf, np.ndarray):
            assert leaf.dtype == np.float32
            assert not leaf.flags.writeable
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        new_state.step = 0  # type: ignore[misc]


FLAT_CASES = [*(c[1] for c in CASES), optim.chain(optim.clip(0.01), optim.adam(0.01))]


@pytest.mark.parametrize("opt", FLAT_CASES)
def test_grads_as_views_of_one_buffer_give_the_same_bits(
    key: random.Key, opt: optim.Optimizer[Any]
) -> None:
    """Grads as a tree of views into one buffer (what fnn.grad gives) or as separate
    arrays: one result, nothing modified."""
    params = random_tree(key, np.float32)
    grads = [tree.astype(g, np.float32) for g in gradients(key, params, 4)]
    by_tree = by_views = opt.init(params)
    for g in grads:
        previous, before = by_views, tree.map(np.copy, by_views)
        flat, layout = tree.ravel(g)
        flat.flags.writeable = False
        by_tree, _ = opt.update(by_tree, g)
        by_views, _ = opt.update(by_views, layout.unravel(flat))
        assert tree.equal(by_tree, by_views)
        assert tree.equal(previous, before)  # the old state is untouched
        assert np.array_equal(flat, tree.ravel(g)[0])  # and so are the grads
    for leaf in tree.leaves(by_views):
        if isinstance(leaf, np.ndarray):
            assert not leaf.flags.writeable


def test_a_rebuilt_state_continues_bit_identically(key: random.Key) -> None:
    params = random_tree(key, np.float32)
    grads = [tree.astype(g, np.float32) for g in gradients(key, params, 6)]
    opt = optim.adamw(1e-2)
    state = opt.init(params)
    for g in grads[:3]:
        state, _ = opt.update(state, g)
    rebuilt = tree.map(np.copy, state)  # as if loaded from disk: separate arrays
    for g in grads[3:]:
        state, _ = opt.update(state, g)
        rebuilt, _ = opt.update(rebuilt, g)
    assert tree.equal(state, rebuilt)


def test_state_holds_params_step_and_flat_moments(key: random.Key) -> None:
    params = random_tree(key, np.float32)
    opt = optim.adam()
    state = opt.init(params)
    adam_state = state.inner[0]
    assert isinstance(adam_state, optim.AdamState)
    size = tree.size(params)
    assert adam_state.mu.shape == (size,) and adam_state.mu.dtype == np.float32
    assert optim.params(state) is state.params
    assert tree.equal(state.params, params)
    state, _ = opt.update(state, tree.astype(gradients(key, params, 1)[0], np.float32))
    shaped = optim.moment_trees(state)[0]
    tree.assert_same_structure(params, shaped.mu)
    flat_mu, _ = tree.ravel(shaped.mu)
    assert flat_mu.tobytes() == state.inner[0].mu.tobytes()


def test_a_state_with_malformed_moments_is_rejected(key: random.Key) -> None:
    params = random_tree(key, np.float32)
    opt = optim.adam()
    state = opt.init(params)
    broken: optim.OptState[Any, Any] = optim.OptState(
        state.params, 0, (optim.AdamState(np.zeros(3, np.float32), 0.0), optim.EmptyState())
    )
    g = tree.astype(gradients(key, params, 1)[0], np.float32)
    with pytest.raises(ValueError, match=r"scale_by_adam has in the state a moment that is not"):
        opt.update(broken, g)


def test_learning_rate_of_a_state(key: random.Key) -> None:
    opt = optim.sgd(optim.inverse_time_decay(0.1, 1.0))
    params = {"w": np.zeros(2)}
    state = opt.init(params)
    assert opt.learning_rate(state) == 0.1
    state, _ = opt.update(state, {"w": np.ones(2)})
    assert opt.learning_rate(state) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="no learning rate"):
        optim.chain(optim.clip(1.0)).learning_rate(state)


def test_mismatched_grads_are_rejected(key: random.Key) -> None:
    params = random_tree(key, np.float32)
    opt = optim.adam()
    state = opt.init(params)
    g = tree.astype(gradients(key, params, 1)[0], np.float32)
    with pytest.raises(ValueError, match=r"at \[2\]: expected dict keys"):
        opt.update(state, (g[0], None, {"gain": g[2]["gain"]}))
    with pytest.raises(
        ValueError,
        match=r"grads at \[0\]\.w: expected float32 of shape \(4, 3\), got float32 of shape",
    ):
        opt.update(state, (nn.DenseParams(g[0].w.T, g[0].b), None, g[2]))
    with pytest.raises(ValueError, match=r"expected float32 of shape \(4, 3\), got float64"):
        opt.update(state, (tree.astype(g[0], np.float64), None, g[2]))
    with pytest.raises(TypeError, match="expected an OptState"):
        opt.update(params, g)
    with pytest.raises(ValueError, match="this optimizer has 2 transforms but the state holds 1"):
        opt.update(tree.map(np.copy, optim.sgd(0.1).init(params)), g)


def test_training_a_model_with_grad_and_update(key: random.Key) -> None:
    model = nn.mlp((16, 3))
    k1, k2 = random.split(key)
    x = random.normal(k1, (60, 2))
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    params = model.init(k2, (2,))
    grad = fnn.grad(model, fnn.losses.softmax_cross_entropy)
    opt = optim.adam(0.05)
    state = opt.init(params)
    for _ in range(200):
        state, params = opt.update(state, grad(params, x, y))
    accuracy = float(np.mean(model.apply(params, x).argmax(1) == y))
    assert accuracy > 0.95


ELEMENTWISE = [c for c in FLAT_CASES if c.elementwise]


def test_elementwise_names_the_rules_that_may_update_a_slice() -> None:
    assert [type(c).__name__ for c in ELEMENTWISE]  # the cases below are not vacuous
    opts: list[optim.Optimizer[Any]] = [
        optim.sgd(0.1, 0.9, True),
        optim.adam(),
        optim.rmsprop(momentum=0.5),
    ]
    for opt in opts:
        assert opt.elementwise
    assert optim.adagrad().elementwise and optim.chain(optim.clip(1.0), optim.sgd()).elementwise
    assert optim.adamw(weight_decay=0.0).elementwise  # decays nothing
    assert optim.chain(optim.sgd(), optim.freeze({"w": False})).elementwise  # freezes nothing
    others: list[optim.Optimizer[Any]] = [
        optim.adamw(),
        optim.chain(optim.clip_by_global_norm(1.0), optim.adam()),
        optim.chain(optim.add_l2(0.1), optim.sgd()),
        optim.chain(optim.sgd(), optim.freeze({"w": True})),
    ]
    for opt in others:
        assert not opt.elementwise
        state = opt.init({"w": np.zeros(4, np.float32)})
        leaves, treedef = tree.flatten(state.params)
        with pytest.raises(ValueError, match="elementwise transforms"):
            opt.update_span(
                state, np.zeros(2, np.float32), tree.layout_of(leaves, treedef), leaves, (0, 2)
            )


@pytest.mark.parametrize("opt", ELEMENTWISE)
def test_an_elementwise_rule_on_slices_gives_the_bits_of_the_whole(
    key: random.Key, opt: optim.Optimizer[Any]
) -> None:
    """What data-parallel training relies on: each process updates its slice of the flat
    params and moments (slices cutting through leaves here), and the slices put together
    are the whole update, bit for bit, step after step."""
    params = random_tree(key, np.float32)
    grads = [tree.astype(g, np.float32) for g in gradients(key, params, 20)]
    spans = [(0, 5), (5, 5), (5, 13), (13, 26)]  # an empty one too
    whole = pieces = opt.init(params)
    for g in grads:
        whole, _ = opt.update(whole, g)
        leaves, treedef = tree.flatten(pieces.params)
        layout = tree.layout_of(leaves, treedef)
        assert layout.size == spans[-1][1]
        flat_g = layout.ravel(g)
        parts = [
            opt.update_span(pieces, flat_g[lo:hi], layout, leaves, (lo, hi)) for lo, hi in spans
        ]

        def gather(mine: list[Any], parts: Any = parts) -> list[Any]:
            """Every slice put together (what fnn.parallel.gather_spans does)."""
            slices = [[flat, *(m for ms in moments for m in ms)] for flat, moments in parts]
            assert [a.tobytes() for a in mine] == [b.tobytes() for b in slices[2]]
            return [np.concatenate(column) for column in zip(*slices)]

        flat, moments = parts[2]
        new_flat, *new_moments = gather([flat, *(m for ms in moments for m in ms)])
        each = iter(new_moments)
        grouped = [tuple(next(each) for _ in ms) for ms in moments]
        pieces = opt.assemble(layout, new_flat, grouped, pieces.step + 1)
        assert tree.equal(pieces, whole)


def test_a_transform_wrongly_marked_elementwise_fails_on_a_slice(key: random.Key) -> None:
    """A rule that reads the layout gives wrong numbers on a slice: it must not train."""

    def update(u: optim.Updates, params: Any, step: int, layout: tree.Layout) -> optim.Updates:
        return optim.Updates(u.value() * (layout.size / 26.0))

    liar = optim.chain(optim.stateless(update, name="liar", elementwise=True), optim.sgd(0.1))
    params = random_tree(key, np.float32)
    state = liar.init(params)
    leaves, treedef = tree.flatten(state.params)
    layout = tree.layout_of(leaves, treedef)
    liar.update(state, params)  # the whole vector: fine
    with pytest.raises(TypeError, match=r"liar is marked elementwise but read .*\.size"):
        liar.update_span(state, np.zeros(5, np.float32), layout, leaves, (0, 5))


# -- transforms that break the contract -------------------------------------------------------

Array = np.ndarray[Any, Any]


@attrs.frozen(eq=False)
class PairState:
    first: Any
    second: Any


tree.register_type(PairState, "tests.library_hardening.PairState")


def transform(update: Callable[..., Any], moments: int = 2) -> optim.Optimizer[Any]:
    """A chain of a custom transform named ``custom`` (state PairState) and SGD."""

    def init(flat: Array, layout: tree.Layout) -> tuple[Array, ...]:
        return tuple(np.zeros_like(flat) for _ in range(moments))

    return optim.chain(optim.Transform(init, update, PairState, name="custom"), optim.sgd(0.1))


def keep(u: optim.Updates, m: tuple[Array, ...], p: Any, step: int, layout: Any) -> Any:
    return u, m


BAD_TRANSFORMS: list[tuple[str, optim.Optimizer[Any], type[Exception], str]] = [
    (
        "moments of another dtype",
        transform(lambda u, m, p, s, lay: (u, tuple(v.astype(np.float64) for v in m))),
        ValueError,
        r"custom returned a moment that is not a flat float32 array .* got float64",
    ),
    (
        "moments of another shape",
        transform(lambda u, m, p, s, lay: (u, (m[0][None], m[1]))),
        ValueError,
        r"custom returned a moment .* got float32 \(1, ",
    ),
    (
        "too few moments",
        transform(lambda u, m, p, s, lay: (u, m[:1])),
        ValueError,
        r"custom returned 1 moments, expected 2: one per field of its state PairState",
    ),
    (
        "a list of moments",
        transform(lambda u, m, p, s, lay: (u, list(m))),
        TypeError,
        "custom returned a list of moments, expected a tuple",
    ),
    (
        "updates alone",
        transform(lambda u, m, p, s, lay: u),
        TypeError,
        r"custom's update must return \(updates, moments\), got Updates alone",
    ),
    (
        "updates of another dtype",
        transform(lambda u, m, p, s, lay: (optim.Updates(u.array.astype(np.float64)), m)),
        ValueError,
        r"custom returned updates .* got Updates\(float64",
    ),
    (
        "a NumPy scale",
        transform(lambda u, m, p, s, lay: (optim.Updates(u.array, np.float64(0.5)), m)),
        ValueError,
        r"custom returned updates .*Python float scale: got Updates\(float32 \(\d+,\), float64",
    ),
    (
        "an array, not Updates",
        transform(lambda u, m, p, s, lay: (u.array, m)),
        ValueError,
        "custom returned updates that are not Updates .* got ndarray",
    ),
    ("init of too few moments", transform(keep, moments=1), ValueError, "custom init returned 1"),
]


@pytest.mark.parametrize(
    ("optimizer", "error", "message"),
    [case[1:] for case in BAD_TRANSFORMS],
    ids=[case[0] for case in BAD_TRANSFORMS],
)
def test_a_bad_transform_fails_at_its_first_update_naming_it(
    key: random.Key, optimizer: optim.Optimizer[Any], error: type[Exception], message: str
) -> None:
    model = nn.mlp((4, 3))
    params = model.init(key, (5,))
    x, y = random.normal(key, (6, 5)), np.arange(6) % 3
    grads = fnn.grad(model, losses.softmax_cross_entropy)(params, x, y)
    with pytest.raises(error, match=message):
        optimizer.update(optimizer.init(params), grads)
    with pytest.raises(error, match=message):  # the training path checks the same
        fnn.fit(model, losses.softmax_cross_entropy, optimizer, x, y, key=key, epochs=1)


def test_a_good_transform_trains_as_before(key: random.Key) -> None:
    model = nn.mlp((4, 3))
    x, y = random.normal(key, (6, 5)), np.arange(6) % 3
    plain = fnn.fit(model, losses.softmax_cross_entropy, optim.sgd(0.1), x, y, key=key, epochs=2)
    kept = fnn.fit(model, losses.softmax_cross_entropy, transform(keep), x, y, key=key, epochs=2)
    assert tree.fingerprint(plain.params) == tree.fingerprint(kept.params)
