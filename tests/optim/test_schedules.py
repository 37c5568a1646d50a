from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fnn import optim


def test_constant_and_inverse_time_decay() -> None:
    assert [optim.constant(0.1)(t) for t in (0, 100)] == [0.1, 0.1]
    s = optim.inverse_time_decay(0.1, 0.01)
    assert [s(t) for t in (0, 100)] == [0.1, 0.1 / 2]


def test_exponential_and_step_decay() -> None:
    s = optim.exponential_decay(1.0, 0.5, 10)
    assert s(0) == 1.0 and s(10) == 0.5 and s(5) == pytest.approx(math.sqrt(0.5))
    stairs = optim.exponential_decay(1.0, 0.5, 10, staircase=True)
    assert [stairs(t) for t in (9, 10, 25)] == [1.0, 0.5, 0.25]
    assert optim.step_decay(0.1, 0.1, 30)(60) == pytest.approx(0.001)


def test_piecewise_constant() -> None:
    s = optim.piecewise_constant([10, 20], [0.1, 0.01, 0.001])
    assert [s(t) for t in (0, 9, 10, 19, 20, 1000)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    with pytest.raises(ValueError, match=r"len\(values\) == len\(boundaries\) \+ 1"):
        optim.piecewise_constant([10], [0.1])
    with pytest.raises(ValueError, match="increase strictly"):
        optim.piecewise_constant([10, 10], [0.1, 0.2, 0.3])


def test_cosine_decay() -> None:
    s = optim.cosine_decay(1.0, 100, final=0.1)
    assert s(0) == 1.0
    assert s(50) == pytest.approx(0.55)
    assert s(100) == pytest.approx(0.1) and s(1000) == pytest.approx(0.1)


def nanogpt_get_lr(it: int) -> float:
    """nanoGPT's train.py get_lr with its Shakespeare recipe, as written there."""
    learning_rate, warmup_iters, lr_decay_iters, min_lr = 1e-3, 100, 2000, 1e-4
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def test_warmup_cosine_is_nanogpts_get_lr() -> None:
    s = optim.warmup_cosine(1e-3, 100, 2000, final=1e-4)
    assert [s(t) for t in range(2500)] == [nanogpt_get_lr(t) for t in range(2500)]
    no_warmup = optim.warmup_cosine(1.0, 0, 4)
    assert [no_warmup(t) for t in range(6)] == pytest.approx(
        [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0], abs=1e-4
    )


def test_linear_warmup_composes_with_any_schedule() -> None:
    s = optim.linear_warmup(optim.inverse_time_decay(1.0, 1.0), 4, start=0.2)
    assert [s(t) for t in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert [s(t) for t in (4, 5)] == [1.0, 0.5]
    assert optim.linear_warmup(0.5, 2)(1) == 0.25


def test_every_optimizer_accepts_a_schedule() -> None:
    schedule = optim.exponential_decay(0.1, 0.5, 1)
    params = {"w": np.zeros(2)}
    makers: list[Callable[..., optim.Optimizer[Any]]]
    makers = [optim.sgd, optim.adagrad, optim.rmsprop, optim.adam, optim.adamw]
    for make in makers:
        opt = make(schedule)
        state = opt.init(params)
        state, _ = opt.update(state, {"w": np.ones(2)})
        assert opt.learning_rate(state) == 0.05


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.exponential_decay(0.1, 0.0, 10),
        lambda: optim.exponential_decay(0.1, 0.5, 0),
        lambda: optim.inverse_time_decay(0.1, -1.0),
        lambda: optim.cosine_decay(float("inf"), 10),
        lambda: optim.linear_warmup(0.1, 0),
        lambda: optim.warmup_cosine(0.1, -1, 10),
        lambda: optim.warmup_cosine(0.1, 10, 10),
        lambda: optim.warmup_cosine(float("nan"), 1, 10),
    ],
)
def test_bad_schedule_arguments(make: object) -> None:
    with pytest.raises(ValueError, match="must be"):
        make()  # type: ignore[operator]
