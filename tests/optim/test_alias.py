"""The named optimizers (fnn/optim/_alias.py): the published formulas, convex problems
driven to their optimum, and bad hyperparameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fnn import optim, random, tree
from tests.optim.references import CASES, Leafwise, gradients, random_tree


@pytest.mark.parametrize(("name", "opt", "reference"), CASES, ids=[c[0] for c in CASES])
def test_matches_the_published_formula(
    key: random.Key, name: str, opt: optim.Optimizer[Any], reference: Leafwise
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
    key: random.Key, problem: Any, name: str, opt: optim.Optimizer[Any], steps: int
) -> None:
    grad, params, distance = problem(key)
    state = opt.init(params)
    for _ in range(steps):
        state, params = opt.update(state, grad(params))
    assert distance(params) < 1e-3, f"{name}: {distance(params)}"


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
        optim.chain(0.1)  # type: ignore[call-overload]
