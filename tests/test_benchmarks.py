"""The benchmark's arithmetic and bookkeeping (examples/benchmarks), without timing anything
and without PyTorch or JAX."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "examples" / "benchmarks"
SIZES = (784, 128, 64, 10)


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> dict[str, ModuleType]:
    """The benchmark's modules, imported as ``train_speed.py`` imports them."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    names = ("floor", "report", "run_peer", "train_speed")
    return {name: importlib.import_module(name) for name in names}


def test_step_matmuls_skip_the_input_gradient(bench: dict[str, ModuleType]) -> None:
    products = bench["floor"].step_matmuls(128, SIZES)
    assert [(p.m, p.k, p.n, p.form) for p in products] == [
        (128, 784, 128, "a @ b"),
        (128, 128, 64, "a @ b"),
        (128, 64, 10, "a @ b"),
        (64, 128, 10, "a.T @ b"),
        (128, 10, 64, "a @ b.T"),
        (128, 128, 64, "a.T @ b"),
        (128, 64, 128, "a @ b.T"),
        (784, 128, 128, "a.T @ b"),
    ]
    # forward and dW: 2 * 128 * 109,184 each; dx of layers 2 and 3: 2 * 128 * 8,832
    assert sum(p.flops for p in products) == 58_163_200


def test_adam_traffic_and_epoch_floor(bench: dict[str, ModuleType]) -> None:
    floor = bench["floor"]
    assert floor.n_params(SIZES) == 109_386
    assert floor.adam_bytes(SIZES) == 7 * 4 * 109_386
    assert floor.epoch_batches(60_000, 128) == [(128, 468), (96, 1)]
    assert floor.epoch_batches(60_000, 32) == [(32, 1875)]
    seconds = floor.epoch_floor({128: 1e-3, 96: 0.75e-3}, [(128, 468), (96, 1)], 1e-4)
    assert seconds == pytest.approx(468 * 1.1e-3 + 0.85e-3)


def _record(peer: str, threads: int, round_: int, seconds: float, accuracy: float) -> Any:
    epochs = [5 * seconds] + [seconds] * 4  # a slow first epoch, never counted
    return {
        "kind": "peer",
        "peer": peer,
        "round": round_,
        "workload": {"batch_size": 128, "threads": threads},
        "epoch_seconds": epochs,
        "epoch_cpu_seconds": [threads * s for s in epochs],
        "epoch_machine_busy_seconds": [threads * s for s in epochs],
        "test_accuracy": accuracy,
        "peak_rss_bytes": 300_000_000,
    }


def test_report_medians_ratios_and_verdicts(bench: dict[str, ModuleType]) -> None:
    report = bench["report"]
    records = [_record("fnn", 1, r, 0.4, 0.870 + r / 1000) for r in range(3)] + [
        _record("torch", 1, r, 0.5, 0.868) for r in range(3)
    ]
    records.append(
        {
            "kind": "floor",
            "round": 0,
            "workload": {"batch_size": 128, "threads": 1},
            "floor_epoch_seconds": 0.25,
        }
    )
    summary = report.summarize(records, skip=1)
    peers, floor = summary[(128, 1)]
    assert peers["fnn"].median == 0.4 and peers["torch"].median == 0.5
    assert peers["fnn"].cores == pytest.approx(1.0) and peers["fnn"].others == 0.0
    assert floor.seconds == 0.25
    checks = {v.what: v for v in report.verdicts(summary)}
    assert checks["fnn/torch"].value == pytest.approx(0.8) and checks["fnn/torch"].passed
    assert checks["fnn/floor"].value == pytest.approx(1.6) and checks["fnn/floor"].passed
    assert checks["|test acc fnn - torch|"].passed  # 0.003 apart: within 0.005


def test_accuracy_noise_grows_with_the_spread(bench: dict[str, ModuleType]) -> None:
    report = bench["report"]
    tight = report.summarize([_record("fnn", 1, r, 0.4, 0.87) for r in range(4)])
    wide = report.summarize([_record("torch", 1, r, 0.4, 0.85 + r / 50) for r in range(4)])
    fnn, torch = tight[(128, 1)][0]["fnn"], wide[(128, 1)][0]["torch"]
    assert report.accuracy_tolerance(fnn, fnn) == report.ACCURACY_TOLERANCE
    assert report.accuracy_tolerance(fnn, torch) > report.ACCURACY_TOLERANCE


def test_command_line(bench: dict[str, ModuleType]) -> None:
    parse = bench["train_speed"].parse_args
    args = parse([])
    assert (args.batch_sizes, args.threads, args.epochs) == ([128], [1, 2], 6)
    assert args.peers == ["fnn", "torch", "jax", "jax-scan", "numpy"]
    args = parse(["--batch-sizes", "32,512", "--threads", "1", "--peers", "fnn,jax-scan"])
    assert (args.batch_sizes, args.threads, args.peers) == ([32, 512], [1], ["fnn", "jax-scan"])
    with pytest.raises(SystemExit):
        parse(["--peers", "tensorflow"])
    env = bench["run_peer"].thread_env(1)
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"


def test_numpy_reference_trains_as_fnn_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-place NumPy loop (peer_numpy.py) computes fnn's gradient and Adam update."""
    import numpy as np

    import fnn
    from fnn import losses, nn, optim

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    peer_numpy = importlib.import_module("peer_numpy")
    sizes, batch = (6, 5, 4, 3), 8
    net = peer_numpy._Net(sizes, batch, seed=0)
    model = nn.mlp(sizes[1:])
    _, layout = fnn.tree.ravel(model.init(fnn.random.key(0), (sizes[0],)))
    params = layout.unravel(net.params.copy())
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)

    acts = net.forward(x)
    np.testing.assert_allclose(acts[-1], model.apply(params, x), rtol=1e-5, atol=1e-6)
    net.backward(x, acts, y)
    expected = fnn.grad(model, losses.softmax_cross_entropy)(params, x, y)
    np.testing.assert_allclose(net.grads, layout.ravel(expected), rtol=1e-4, atol=1e-6)

    opt = optim.adam(1e-2)
    state, _ = opt.update(opt.init(params), expected)
    net.adam(1, 1e-2)
    np.testing.assert_allclose(net.params, layout.ravel(state.params), rtol=1e-5, atol=1e-6)
    assert not np.array_equal(net.params, layout.ravel(params))  # the step moved them
