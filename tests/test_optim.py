from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest

import fnn
from fnn import nn, optim, random, tree

Params = Any
Reference = Callable[[Params, Params, int], Params]


def random_tree(key: random.Key, dtype: Any = np.float64) -> Any:
    """A small mixed tree: dense params, a dict and a scalar-shaped leaf."""
    k1, k2, k3, k4 = random.split(key, 4)
    return (
        nn.DenseParams(random.normal(k1, (4, 3), dtype), random.normal(k2, (3,), dtype)),
        None,
        {"gain": random.normal(k3, (), dtype), "table": random.normal(k4, (2, 5), dtype)},
    )


def gradients(key: random.Key, like: Any, steps: int) -> list[Any]:
    """``steps`` float64 trees shaped like ``like``, drawn from ``key``."""
    return [
        tree.unflatten(
            tree.structure(like),
            [
                random.normal(random.fold_in(random.fold_in(key, i), j), np.shape(leaf), np.float64)
                for j, leaf in enumerate(tree.leaves(like))
            ],
        )
        for i in range(steps)
    ]


class Leafwise:
    """A straightforward float64 reference: the published formula per leaf, per step."""

    def __init__(
        self,
        rule: Callable[
            [np.ndarray[Any, Any], np.ndarray[Any, Any], dict[str, Any], int, bool],
            np.ndarray[Any, Any],
        ],
    ):
        self.rule = rule

    def run(self, params: Any, grads: list[Any]) -> Any:
        leaves = [np.array(p, dtype=np.float64) for p in tree.leaves(params)]
        weights = tree.leaves(tree.weight_mask(params))
        states: list[dict[str, Any]] = [{} for _ in leaves]
        for t, g in enumerate(grads, start=1):
            for i, gi in enumerate(tree.leaves(g)):
                leaves[i] = self.rule(
                    leaves[i], np.asarray(gi, np.float64), states[i], t, weights[i]
                )
        return tree.unflatten(tree.structure(params), leaves)


def lr_at(lr: float | optim.Schedule, t: int) -> float:
    return float(lr(t - 1)) if callable(lr) else float(lr)


def ref_sgd(lr: Any, momentum: float = 0.0, nesterov: bool = False) -> Leafwise:
    def rule(p: Any, g: Any, s: dict[str, Any], t: int, is_w: bool) -> Any:
        if momentum:
            s["v"] = momentum * s.get("v", 0.0) + g
            step = g + momentum * s["v"] if nesterov else s["v"]
        else:
            step = g
        return p - lr_at(lr, t) * step

    return Leafwise(rule)


def ref_adagrad(lr: Any, init: float = 0.0, eps: float = 1e-10) -> Leafwise:
    def rule(p: Any, g: Any, s: dict[str, Any], t: int, is_w: bool) -> Any:
        s["G"] = s.get("G", init) + g * g
        return p - lr_at(lr, t) * g / (np.sqrt(s["G"]) + eps)

    return Leafwise(rule)


def ref_rmsprop(lr: Any, rho: float = 0.99, eps: float = 1e-8, momentum: float = 0.0) -> Leafwise:
    def rule(p: Any, g: Any, s: dict[str, Any], t: int, is_w: bool) -> Any:
        s["v"] = rho * s.get("v", 0.0) + (1 - rho) * g * g
        step = g / (np.sqrt(s["v"]) + eps)
        if momentum:
            s["b"] = momentum * s.get("b", 0.0) + step
            step = s["b"]
        return p - lr_at(lr, t) * step

    return Leafwise(rule)


def ref_adam(
    lr: Any,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    wd: float = 0.0,
    weights_only: bool = False,
) -> Leafwise:
    def rule(p: Any, g: Any, s: dict[str, Any], t: int, is_w: bool) -> Any:
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        m_hat = s["m"] / (1 - b1**t)
        v_hat = s["v"] / (1 - b2**t)
        decay = wd * p if (is_w or not weights_only) else 0.0
        return p - lr_at(lr, t) * (m_hat / (np.sqrt(v_hat) + eps) + decay)

    return Leafwise(rule)


SCHEDULE = optim.linear_warmup(optim.cosine_decay(0.05, 30), 5)

CASES: list[tuple[str, optim.Optimizer, Leafwise]] = [
    ("sgd", optim.sgd(0.1), ref_sgd(0.1)),
    ("sgd-momentum", optim.sgd(0.1, momentum=0.9), ref_sgd(0.1, 0.9)),
    ("sgd-nesterov", optim.sgd(0.1, momentum=0.9, nesterov=True), ref_sgd(0.1, 0.9, True)),
    (
        "sgd-momentum-decay",
        optim.sgd(optim.inverse_time_decay(0.1, 0.01), momentum=0.5),
        ref_sgd(optim.inverse_time_decay(0.1, 0.01), 0.5),
    ),
    ("adagrad", optim.adagrad(0.1), ref_adagrad(0.1)),
    ("adagrad-init", optim.adagrad(0.1, 0.1, 1e-7), ref_adagrad(0.1, 0.1, 1e-7)),
    ("rmsprop", optim.rmsprop(0.01), ref_rmsprop(0.01)),
    ("rmsprop-momentum", optim.rmsprop(0.01, 0.9, 1e-6, 0.9), ref_rmsprop(0.01, 0.9, 1e-6, 0.9)),
    ("adam", optim.adam(0.01), ref_adam(0.01)),
    ("adam-schedule", optim.adam(SCHEDULE, 0.8, 0.99, 1e-6), ref_adam(SCHEDULE, 0.8, 0.99, 1e-6)),
    ("adamw", optim.adamw(0.01, weight_decay=0.1), ref_adam(0.01, wd=0.1)),
    (
        "adamw-weights-only",
        optim.adamw(SCHEDULE, weight_decay=0.1, weights_only=True),
        ref_adam(SCHEDULE, wd=0.1, weights_only=True),
    ),
]


@pytest.mark.parametrize(("name", "opt", "reference"), CASES, ids=[c[0] for c in CASES])
def test_matches_the_published_formula(
    key: random.Key, name: str, opt: optim.Optimizer, reference: Leafwise
) -> None:
    params = random_tree(key)
    grads = gradients(random.fold_in(key, 1), params, 25)
    state = opt.init(params)
    for g in grads:
        state, new_params = opt.update(state, g)
        assert new_params is state.params
    expected = reference.run(params, grads)
    assert state.step == 25
    assert tree.max_abs_difference(state.params, expected) < 1e-12


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


def least_squares(key: random.Key) -> tuple[Callable[[Any], Any], Any, Callable[[Any], float]]:
    k1, k2 = random.split(key)
    a = random.normal(k1, (50, 4), np.float64)
    y = a @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * random.normal(k2, (50,), np.float64)
    design = np.hstack([a, np.ones((50, 1))])
    optimum = np.linalg.lstsq(design, y, rcond=None)[0]

    def grad(p: Any) -> Any:
        r = a @ p["w"] + p["b"] - y
        return {"w": a.T @ r / 50, "b": np.array(r.mean())}

    def distance(p: Any) -> float:
        return float(np.linalg.norm(np.append(p["w"], p["b"]) - optimum))

    return grad, {"w": np.zeros(4), "b": np.array(0.0)}, distance


def logistic_regression(
    key: random.Key,
) -> tuple[Callable[[Any], Any], Any, Callable[[Any], float]]:
    k1, k2 = random.split(key)
    x = random.normal(k1, (80, 3), np.float64)
    y = (x @ np.array([1.5, -1.0, 0.5]) + random.normal(k2, (80,), np.float64) > 0) * 1.0
    lam = 0.1  # strongly convex with an L2 term

    def full_grad(w: Any) -> Any:
        p = 1 / (1 + np.exp(-(x @ w)))
        return x.T @ (p - y) / 80 + lam * w

    optimum = np.zeros(3)
    for _ in range(50):  # Newton's method: the known optimum
        p = 1 / (1 + np.exp(-(x @ optimum)))
        hessian = (x.T * (p * (1 - p))) @ x / 80 + lam * np.eye(3)
        optimum = optimum - np.linalg.solve(hessian, full_grad(optimum))
    assert np.linalg.norm(full_grad(optimum)) < 1e-12

    return (
        lambda prm: {"w": full_grad(prm["w"])},
        {"w": np.zeros(3)},
        lambda prm: float(np.linalg.norm(prm["w"] - optimum)),
    )


CONVEX = [
    ("sgd", optim.sgd(0.3), 2000),
    ("sgd-momentum", optim.sgd(0.1, momentum=0.9), 1000),
    ("sgd-nesterov", optim.sgd(0.1, momentum=0.9, nesterov=True), 1000),
    ("adagrad", optim.adagrad(0.5), 3000),
    ("rmsprop", optim.rmsprop(optim.cosine_decay(0.01, 3000)), 3000),
    ("adam", optim.adam(optim.cosine_decay(0.05, 3000)), 3000),
    ("adamw", optim.adamw(optim.cosine_decay(0.05, 3000), weight_decay=0.0), 3000),
]


@pytest.mark.parametrize("problem", [least_squares, logistic_regression])
@pytest.mark.parametrize(("name", "opt", "steps"), CONVEX, ids=[c[0] for c in CONVEX])
def test_drives_a_convex_problem_to_its_optimum(
    key: random.Key, problem: Any, name: str, opt: optim.Optimizer, steps: int
) -> None:
    grad, params, distance = problem(key)
    state = opt.init(params)
    for _ in range(steps):
        state, params = opt.update(state, grad(params))
    assert distance(params) < 1e-3, f"{name}: {distance(params)}"


ALL = [c[1] for c in CASES] + [optim.chain(optim.clip_by_global_norm(1.0), optim.adam())]


@pytest.mark.parametrize("opt", ALL)
def test_updates_never_mutate_and_keep_float32(key: random.Key, opt: optim.Optimizer) -> None:
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
    key: random.Key, opt: optim.Optimizer
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
    broken = optim.OptState(
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


def test_bad_params_and_hyperparameters() -> None:
    with pytest.raises(TypeError, match="one floating dtype"):
        optim.adam().init((np.ones(2, np.float32), np.ones(2)))
    with pytest.raises(TypeError, match="expected floating leaves, got int64"):
        optim.sgd().init(np.arange(3))
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: optim.sgd(-0.1), "finite number > 0"),
        (lambda: optim.sgd(float("nan")), "finite number > 0"),
        (lambda: optim.adam(b1=1.0), r"b1 must be in \[0, 1\)"),
        (lambda: optim.adam(eps=0.0), "eps must be a finite number > 0"),
        (lambda: optim.sgd(0.1, nesterov=True), "nesterov momentum needs momentum > 0"),
        (lambda: optim.adamw(weight_decay=-1.0), "weight decay rate"),
        (lambda: optim.clip_by_global_norm(0.0), "max_norm"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()
    with pytest.raises(TypeError, match="a learning rate must be a float or a schedule"):
        optim.sgd("0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="chain expects transforms or optimizers"):
        optim.chain(0.1)  # type: ignore[arg-type]


def test_a_schedule_that_gives_nan_is_caught() -> None:
    opt = optim.sgd(lambda step: math.nan if step > 0 else 0.1)
    state = opt.init({"w": np.zeros(1)})
    state, _ = opt.update(state, {"w": np.ones(1)})
    with pytest.raises(ValueError, match="schedule gave nan at step 1"):
        opt.update(state, {"w": np.ones(1)})


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


ELEMENTWISE = [c for c in FLAT_CASES if c.elementwise]


def test_elementwise_names_the_rules_that_may_update_a_slice() -> None:
    assert [type(c).__name__ for c in ELEMENTWISE]  # the cases below are not vacuous
    for opt in (optim.sgd(0.1, 0.9, True), optim.adam(), optim.rmsprop(momentum=0.5)):
        assert opt.elementwise
    assert optim.adagrad().elementwise and optim.chain(optim.clip(1.0), optim.sgd()).elementwise
    assert optim.adamw(weight_decay=0.0).elementwise  # decays nothing
    assert optim.chain(optim.sgd(), optim.freeze({"w": False})).elementwise  # freezes nothing
    for opt in (
        optim.adamw(),
        optim.chain(optim.clip_by_global_norm(1.0), optim.adam()),
        optim.chain(optim.add_l2(0.1), optim.sgd()),
        optim.chain(optim.sgd(), optim.freeze({"w": True})),
    ):
        assert not opt.elementwise
        state = opt.init({"w": np.zeros(4, np.float32)})
        leaves, treedef = tree.flatten(state.params)
        with pytest.raises(ValueError, match="elementwise transforms"):
            opt.update_span(
                state, np.zeros(2, np.float32), tree.layout_of(leaves, treedef), leaves, (0, 2)
            )


@pytest.mark.parametrize("opt", ELEMENTWISE)
def test_an_elementwise_rule_on_slices_gives_the_bits_of_the_whole(
    key: random.Key, opt: optim.Optimizer
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
