"""The benchmark's arithmetic and bookkeeping (examples/benchmarks), without timing anything
and without PyTorch or JAX."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.support.optional import needs_mpi

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


def test_report_names_the_cpu_and_blas_core_beside_every_table(
    bench: dict[str, ModuleType],
) -> None:
    report = bench["report"]
    records = [_record("fnn", t, 0, 0.4, 0.87) for t in (1, 2)]
    records[0]["blas"] = [
        {"user_api": "blas", "internal_api": "openblas", "version": "0.3.30", "architecture": "Zen"}
    ]
    text = report.render(records, 1, {"cpu": "AMD EPYC", "cpus": 2})
    line = "CPU: AMD EPYC (2 CPUs); NumPy's BLAS: openblas 0.3.30, core type Zen"
    assert text.count(line + "\nbatch 128") == 2  # one per table: 1 and 2 threads


def test_report_gives_each_peers_slowdown_beside_a_competing_process(
    bench: dict[str, ModuleType],
) -> None:
    report = bench["report"]
    quiet = [_record("fnn", 1, 0, 0.4, 0.87), _record("torch", 1, 0, 0.5, 0.87)]
    busy = [_record("fnn", 1, 0, 0.6, 0.87), _record("torch", 1, 0, 1.5, 0.87)]
    for r in busy:
        r["busy"] = True
    text = report.render(quiet + busy, 1)
    assert "WITH ONE COMPETING CPU-BOUND PROCESS" in text
    assert "batch 128, 1 thread: fnn 1.50x (0.400 -> 0.600 s); torch 3.00x" in text
    assert "WITH ONE" not in report.render(quiet, 1)


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
    assert not args.busy and parse(["--busy"]).busy
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


# The CNN workload (train_speed.py --model cnn)


def _cnn_record(peer: str, round_: int, seconds: float, accuracy: float) -> Any:
    record = _record(peer, 1, round_, seconds, accuracy)
    record["workload"]["model"] = "cnn"
    return record


def test_cnn_command_line(bench: dict[str, ModuleType]) -> None:
    parse = bench["train_speed"].parse_args
    mlp = parse([])
    assert (mlp.model, mlp.train_size) == ("mlp", 60_000)
    cnn = parse(["--model", "cnn"])
    assert (cnn.model, cnn.train_size, cnn.epochs) == ("cnn", 10_000, 6)
    assert cnn.peers == ["fnn", "torch", "torch-cl", "jax"]
    args = parse(["--model", "cnn", "--train-size", "1280", "--peers", "fnn,torch-cl"])
    assert (args.train_size, args.peers) == (1280, ["fnn", "torch-cl"])
    assert parse(["--train-size", "5000"]).train_size == 5000  # the MLP takes it too
    for bad in (
        ["--model", "cnn", "--peers", "fnn,numpy"],  # the NumPy reference is the MLP's
        ["--model", "cnn", "--peers", "jax-scan"],  # XLA's scan of convolutions: not run
        ["--peers", "fnn,torch-cl"],  # a memory format of images: the CNN's
        ["--model", "cnn", "--train-size", "0"],
        ["--model", "cnn", "--train-size", "60001"],
        ["--model", "resnet"],
    ):
        with pytest.raises(SystemExit):
            parse(bad)


def test_run_peer_command_line(bench: dict[str, ModuleType]) -> None:
    run_peer = bench["run_peer"]
    args = run_peer.parse_args(["torch-cl", "--model", "cnn", "--out", "x.json"])
    assert (args.peer, args.model, args.train_size) == ("torch-cl", "cnn", None)
    args = run_peer.parse_args(["floor", "--train-size", "1280", "--out", "x.json"])
    assert (args.peer, args.model, args.train_size) == ("floor", "mlp", 1280)
    for bad in (["floor", "--model", "cnn"], ["numpy", "--model", "cnn"], ["torch-cl"]):
        with pytest.raises(SystemExit):
            run_peer.parse_args([*bad, "--out", "x.json"])
    assert run_peer.PEER_MODULES["torch-cl"] == "torch"


def test_workload_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    wl = importlib.import_module("workload")
    w = wl.Workload()
    assert (w.model, w.train_size, w.eval_chunk) == ("mlp", 60_000, 10_000)
    cnn = wl.Workload(model="cnn", train_size=wl.DEFAULT_TRAIN_SIZES["cnn"])
    assert (cnn.train_size, cnn.channels, cnn.dense_size, cnn.dropout) == (
        10_000,
        (32, 64),
        128,
        0.5,
    )
    assert cnn.to_json()["model"] == "cnn" and cnn.eval_chunk == 1_000
    for bad in ({"model": "rnn"}, {"train_size": 0}, {"train_size": 60_001}):
        with pytest.raises(ValueError, match=r"model|train_size"):
            wl.Workload(**bad)
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_array_equal(wl.in_chunks(lambda part: 2 * part, x, 4), 2 * x)


def test_cnn_pytorch_is_the_faster_format(bench: dict[str, ModuleType]) -> None:
    report = bench["report"]
    records = [
        *(_cnn_record("fnn", r, 0.5, 0.880) for r in range(3)),
        *(_cnn_record("torch", r, 0.8, 0.872) for r in range(3)),
        *(_cnn_record("torch-cl", r, 0.6, 0.870) for r in range(3)),
        *(_cnn_record("jax", r, 1.2, 0.850) for r in range(3)),
    ]
    assert report.workload_model(records) == "cnn"
    summary = report.summarize(records, skip=1)
    peers = summary[(128, 1)][0]
    assert report.pytorch_peer(peers, "cnn") == "torch-cl"
    assert report.pytorch_peer(peers, "mlp") == "torch"  # the MLP has one format
    checks = report.verdicts(summary, "cnn")
    torch = [v for v in checks if v.what.startswith("fnn/PyTorch (torch-cl")]
    assert [(v.bound, v.aim, v.passed) for v in torch] == [(1.0, False, True), (0.7, True, False)]
    assert torch[0].value == pytest.approx(0.5 / 0.6)
    by_name = {v.what: v for v in checks}
    assert by_name["fnn/jax"].value == pytest.approx(0.5 / 1.2) and by_name["fnn/jax"].passed
    assert by_name["fnn/jax"].bound == 0.5
    assert "fnn/torch" not in by_name and not any("floor" in v.what for v in checks)
    assert by_name["|test acc fnn - torch-cl|"].passed  # 0.010 apart: within 0.02
    assert not by_name["|test acc fnn - jax|"].passed  # 0.030 apart
    text = report.render(records)
    assert "PyTorch = torch-cl (channels_last), the faster memory format" in text
    assert '"PyTorch" is the faster' in text

    # NCHW faster: it counts; fnn at 1.2x it fails the target.
    slow = [_cnn_record("fnn", 0, 0.6, 0.88), _cnn_record("torch", 0, 0.5, 0.88)]
    slow.append(_cnn_record("torch-cl", 0, 0.55, 0.88))
    checks = report.verdicts(report.summarize(slow), "cnn")
    target = next(v for v in checks if v.what.startswith("fnn/PyTorch") and not v.aim)
    assert target.what == "fnn/PyTorch (torch, the faster format)"
    assert target.value == pytest.approx(1.2) and not target.passed
    # One format alone counts as PyTorch.
    alone = report.summarize([_cnn_record("fnn", 0, 0.4, 0.88), _cnn_record("torch", 0, 0.5, 0.88)])
    assert report.pytorch_peer(alone[(128, 1)][0], "cnn") == "torch"


def test_records_of_one_workload(bench: dict[str, ModuleType]) -> None:
    report = bench["report"]
    mlp = [_record("fnn", 1, 0, 0.4, 0.87)]  # records from before the CNN: no "model"
    assert report.workload_model(mlp) == "mlp"
    failed = {"kind": "peer", "peer": "jax", "workload": {"batch_size": 128}, "error": "x"}
    assert report.workload_model([_cnn_record("fnn", 0, 0.4, 0.87), failed]) == "cnn"
    with pytest.raises(ValueError, match="different workloads"):
        report.workload_model([*mlp, _cnn_record("fnn", 0, 0.4, 0.87)])
    # The MLP's targets are as they were.
    records = [*mlp, _record("torch", 1, 0, 0.5, 0.87)]
    checks = {v.what: v for v in report.verdicts(report.summarize(records))}
    assert checks["fnn/torch"].bound == report.TORCH_TARGET == 0.9


def test_memory_check_of_the_cnn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    memory = importlib.import_module("memory")
    assert memory.train_command("fnn", 1) == [
        "fnn",
        "train",
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "1",
    ]
    assert memory.train_command("fnn", 1, "cnn")[-2:] == ["--model", "cnn"]
    assert memory.parse_args([]).model == "mlp"
    assert memory.parse_args(["--model", "cnn"]).model == "cnn"
    assert memory.MARGINS == {"mlp": 100 * memory.MB, "cnn": 500 * memory.MB}
    assert memory.gpt_command("fnn", 2000, "../shared/data") == [
        "fnn", "train", "--model", "gpt", "--steps", "2000", "--data-dir", "../shared/data"
    ]  # fmt: skip
    assert memory.parse_args(["--model", "gpt"]).steps == 2000


@pytest.mark.parametrize(
    ("model", "route", "setting", "threads"),
    [("mlp", "fit", "library", 1), ("cnn", "train_epoch", "glibc default", 2)],
)
def test_page_faults_rows(model: str, route: str, setting: str, threads: int) -> None:
    """A row of page_faults.py, in a process of its own as the benchmark runs it (a few
    images; the counts are not checked here, the test of fnn/_malloc.py does that)."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "page_faults.py"), "--child", model, route, setting,
         str(threads), "256", "1", "1"],
        capture_output=True, text=True, check=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(BENCHMARKS.parents[1])},  # this fnn
    )  # fmt: skip
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert (row["model"], row["route"], row["setting"], row["threads"]) == (
        model, route, setting, threads
    )  # fmt: skip
    assert row["faults_per_step"] >= 0 and row["ms_per_step"] > 0
    assert row["peak_mb"] >= row["rss_before_mb"] > 0


@pytest.mark.parametrize(("model", "shards"), [("mlp", 1), ("cnn", 1), ("mlp", 2)])
def test_fnn_peer_trains_each_workload(
    monkeypatch: pytest.MonkeyPatch, model: str, shards: int
) -> None:
    """The fnn peer end to end, in-process, on a few synthetic images."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    wl = importlib.import_module("workload")
    peer_fnn = importlib.import_module("peer_fnn")
    shape = (784,) if model == "mlp" else (28, 28)
    rng = np.random.default_rng(0)

    def load_data(model_: str, train_size: int) -> Any:
        assert (model_, train_size) == (model, 192)
        return wl.Data(
            rng.random((train_size, *shape), dtype=np.float32),
            rng.integers(0, 10, train_size),
            rng.random((40, *shape), dtype=np.float32),
            rng.integers(0, 10, 40),
        )

    monkeypatch.setattr(wl, "load_data", load_data)
    w = wl.Workload(batch_size=64, epochs=2, model=model, train_size=192)
    record = peer_fnn.run(w, shards)
    assert record["peer"] == "fnn" and record["workload"]["model"] == model
    assert (record["shards"], record["processes"]) == (shards, 1)
    assert record["built_with"] in (("nn.mlp",) if model == "mlp" else ("nn.cnn", "nn.serial"))
    assert len(record["epoch_seconds"]) == 2 and 0.0 <= record["test_accuracy"] <= 1.0
    assert np.isfinite(record["test_loss"])


@pytest.mark.parametrize("exported", [True, False])
def test_fnn_cnn_is_the_workloads_network(monkeypatch: pytest.MonkeyPatch, exported: bool) -> None:
    """The fnn peer's CNN, from ``nn.cnn()`` when fnn exports it or else from the layers."""
    import fnn

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    wl = importlib.import_module("workload")
    peer_fnn = importlib.import_module("peer_fnn")
    if exported and not hasattr(fnn.nn, "cnn"):
        pytest.skip("fnn.nn.cnn is not exported")
    monkeypatch.setattr(peer_fnn, "_has_cnn", lambda: exported)
    model, in_shape = peer_fnn.build_model(wl.Workload(model="cnn"))
    assert in_shape == (28, 28) and model.stochastic
    params = model.init(fnn.random.key(0), in_shape)
    flat, _ = fnn.tree.ravel(params)
    # conv 3*3*1*32 + 32, conv 3*3*32*64 + 64, dense 1600*128 + 128, dense 128*10 + 10
    assert flat.size == 320 + 18_496 + 204_928 + 1_290
    x = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    assert model.apply(params, x).shape == (3, 10)
    if exported:  # the same network as the layers build: the same params and outputs
        monkeypatch.setattr(peer_fnn, "_has_cnn", lambda: False)
        layers, _ = peer_fnn.build_model(wl.Workload(model="cnn"))
        same = layers.init(fnn.random.key(0), in_shape)
        np.testing.assert_array_equal(fnn.tree.ravel(same)[0], flat)
        np.testing.assert_array_equal(layers.apply(same, x), model.apply(params, x))


def test_parallel_scaling_model(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    parallel_speed = importlib.import_module("parallel_speed")
    assert parallel_speed.main(["--table", "--level-us", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split(" | ") for line in lines if line[:3].strip("| ").isdigit()]
    assert [int(row[0].strip("| ")) for row in rows] == [1, 2, 4, 8, 16, 32, 64]
    processes = [2**k for k in range(7)]
    talk = [float(row[4]) for row in rows]  # 4 (1 - 1/N) levels of 50 us, in ms
    assert talk == pytest.approx([0.2 * (1 - 1 / n) for n in processes], abs=1e-3)
    update = [float(row[3]) for row in rows]  # Adam shared out: 1/N per process
    assert update[1:] == pytest.approx([update[0] / n for n in processes[1:]], abs=1e-3)
    assert float(rows[0][6]) == 1.0


@pytest.mark.skipif(
    shutil.which("mpirun") is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs mpirun and mpi4py",
)
def test_parallel_reduction_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    parallel_speed = importlib.import_module("parallel_speed")
    times = parallel_speed.reduction_seconds(2, 1000, repeats=20)
    assert set(times) == {"reduce_shards", "allreduce", "scatter_gather"}
    assert all(0 < seconds < 1 for seconds in times.values())


def test_cnn_split_finds_every_gemm_of_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GEMMs cnn_split.py times are the step's: their FLOPs are the network's, counted
    by hand (fused pooling computes only the outputs a window covers; the first conv's
    input gradient is never computed; biases ride as a column of ones)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    cnn_split = importlib.import_module("cnn_split")
    import fnn
    from fnn import nn

    model = nn.cnn()
    key = fnn.random.key(0)
    params = model.init(key, (28, 28))
    gemms = cnn_split.step_gemms(model, params, fnn.random.uniform(key, (128, 28, 28)), key)
    conv1 = 2 * (128 * 26 * 26) * (9 + 1) * 32  # forward; the weight gradient the same
    conv2 = 2 * (128 * 10 * 10) * (9 * 32 + 1) * 64  # 5x5 windows of 2x2 cover 10x10
    conv2_dx = 2 * (128 * 10 * 10) * 64 * (9 * 32)
    dense = 3 * 2 * 128 * (1600 * 128 + 128 * 10)  # forward, weights, input
    total = sum(cnn_split.flops(a, b) for _, a, b in gemms)
    assert total == 2 * conv1 + 2 * conv2 + conv2_dx + dense == 1_687_879_680
    assert not [name for name, _, _ in gemms if name.startswith("conv2d[1] dx")]


def test_gpt_generation_draws_the_same_characters_both_ways(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The generation benchmark on a tiny GPT's model file: both ways, the same ids."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    generation = importlib.import_module("gpt_generation")
    import fnn

    model = fnn.nn.gpt(vocab=9, context=8, layers=1, heads=2, features=8)
    path = fnn.io.save_model(
        tmp_path / "m.npz", model, model.init(fnn.random.key(0), (8,)), in_shape=(8,)
    )
    assert generation.main(["--run", str(path), "--length", "20", "--rounds", "1"]) == 0
    printed = capsys.readouterr().out
    assert "context 8, vocab 9" in printed and "the same characters both ways: True" in printed


# -- gpt_speed.py ------------------------------------------------------------------------------

TINY_TEXT = "".join(f"to be or not to be, line {i}: that is the question.\n" for i in range(60))


@pytest.fixture
def gpt_speed(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("gpt_speed")


def test_gpt_speed_times_every_product_of_the_step(gpt_speed: ModuleType) -> None:
    """The products gpt_speed.py times are the GPT step's, counted by hand: per block the
    fused projection, the attention's output and the MLP's two layers (forward, weight
    and input gradients), the attention's six stacked products per head; the tied
    output's three."""
    products = gpt_speed.step_products()
    dense = 3 * 2 * 768 * 128 * (3 * 128 + 128 + 512 + 512)
    attention = 6 * 2 * (12 * 4) * 64 * 32 * 64
    tied = 3 * 2 * 768 * 128 * 65
    assert sum(p.flops for p in products) == 4 * (dense + attention) + tied == 3_964_207_104
    assert len(products) == 4 * 18 + 3


def test_gpt_speed_trains_fnn_on_the_windows_it_is_given(
    gpt_speed: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fnn run in-process, a few steps of the recipe's model on a tiny text; its step
    split with the timing stubbed out (one call each)."""
    text = tmp_path / "tiny.txt"
    text.write_text(TINY_TEXT)
    peer = importlib.import_module("peer_torch_gpt")
    train = peer.load_text(text).train
    offsets = np.random.default_rng(0).integers(0, len(train) - 64, (3, 2))
    monkeypatch.setattr(gpt_speed, "best_seconds", lambda run, **_: (run(), 1e-3)[1])
    record = gpt_speed.run_fnn(3, 1, 1, 0, text, offsets)
    assert len(record["step_seconds"]) == len(record["losses"]) == 3
    assert np.isfinite(record["losses"]).all() and np.isfinite(record["val_loss"])
    assert record["n_params"] == 804_096 - 128 * (65 - len(set(TINY_TEXT)))
    split = record["split"]
    assert split["product_seconds"] == pytest.approx(1e-3 * (4 * 18 + 3))
    assert split["rest_seconds"] == split["step_seconds"] - split["product_seconds"]
    x, y = gpt_speed.windows(peer.load_text(text), offsets, 2)
    assert x.shape == y.shape == (2, 64) and (x[:, 1:] == y[:, :-1]).all()


def test_gpt_speed_report(gpt_speed: ModuleType) -> None:
    def record(peer: str, threads: int, ms: float) -> dict[str, Any]:
        times = [1.0] * 10 + [ms / 1000] * 30  # a slow start, left out of the median
        return {"peer": peer, "threads": threads, "step_seconds": times, "losses": [3.0, 2.5],
                "val_loss": 2.6}  # fmt: skip

    records = [record("fnn", 1, 60.0), record("torch", 1, 50.0), record("fnn", 2, 45.0)]
    records += [record("fnn-shards", 2, 36.0), record("torch", 2, 40.0)]
    records[0]["split"] = {"step_seconds": 0.06, "product_seconds": 0.04, "flops": 4e9}
    summary = gpt_speed.summarize(records)
    assert summary[1]["fnn"]["median_ms"] == pytest.approx(60.0)
    text = gpt_speed.report(summary)
    assert "fnn/torch   1.20 (fnn); by p10 1.20" in text
    assert "fnn/torch   0.90 (fnn-shards); by p10 0.90" in text
    assert "nanoGPT" not in text  # a ratio only against a peer that ran
    bursts = {"step_seconds": [1.0] * 10 + [ms / 1000 for ms in range(30, 0, -1)]}
    assert gpt_speed.tenth_ms(bursts) == pytest.approx(3.0)  # the 3rd fastest of 30
    assert gpt_speed.median_ms(bursts) == pytest.approx(15.5)
    with_nanogpt = gpt_speed.report(gpt_speed.summarize([*records, record("nanogpt", 1, 75.0)]))
    assert "fnn/torch   1.20 (fnn); by p10 1.20\n  fnn/nanoGPT 0.80 (fnn)" in with_nanogpt
    assert "matrix products 40.0 ms (67%; 4.00 GFLOP at 100 GFLOP/s) + the rest 20.0 ms" in text
    args = gpt_speed.parse_args([])
    assert (args.steps, args.threads, args.rounds) == (200, [1, 2], 1)
    assert gpt_speed.runs(args) == [(1, "fnn"), (1, "torch"), (1, "nanogpt"), (2, "fnn"),
                                    (2, "fnn-shards"), (2, "fnn-mpi"), (2, "torch"),
                                    (2, "nanogpt")]  # fmt: skip
    # fnn on processes: a ratio line of its own, after the faster of the threaded runs'
    on_processes = gpt_speed.report(gpt_speed.summarize([*records, record("fnn-mpi", 2, 32.0)]))
    assert (
        "fnn/torch   0.90 (fnn-shards); by p10 0.90\n  fnn/torch   0.80 (fnn-mpi); by p10 0.80"
    ) in on_processes
    with pytest.raises(SystemExit):
        gpt_speed.parse_args(["--peers", "jax"])
    # with CPU times (a busy machine: wall time above CPU time), they are shown beside
    for r, cpu_ms in zip(records, [55.0, 50.0, 80.0, 70.0, 75.0]):
        r["step_cpu_seconds"] = [1.0] * 10 + [cpu_ms / 1000] * 30
    text = gpt_speed.report(gpt_speed.summarize(records))
    assert "60.0 ms/step (rounds: 60.0; p10 60.0), CPU 55.0 ms/step;" in text
    assert "fnn/torch   1.20 (fnn); in CPU time 1.10" in text
    assert "fnn/torch   0.90 (fnn-shards); in CPU time 0.93" in text


@pytest.mark.oracle
def test_nanogpt_peer_is_the_lean_peers_model_as_modules(
    torch: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """peer_nanogpt.py's modules (nanoGPT's model) hold the lean peer's parameters under
    the same names and give its logits bit for bit; the optimizer groups are nanoGPT's
    (decay on the matrices, no fused flag); a short run of its loop trains."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    lean, nano = (importlib.import_module(m) for m in ("peer_torch_gpt", "peer_nanogpt"))
    torch.manual_seed(0)
    model = nano.build_model(torch, 65)
    params = dict(model.named_parameters())
    assert list(params) == list(lean.init_params(torch, 65))
    assert sum(int(p.numel()) for p in params.values()) == 804_096
    assert model.lm_head.weight is model.transformer.wte.weight  # tied
    idx = torch.randint(65, (3, 64))
    logits, loss = model(idx, idx)
    assert torch.equal(logits, lean.forward(torch, params, idx))
    assert torch.equal(loss, lean.loss_fn(torch, params, idx, idx))
    opt = nano.configure_optimizer(torch, model)
    assert [len(g["params"]) for g in opt.param_groups] == [2 + 4 * 4, 4 * 2 + 1]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert not opt.defaults.get("fused")
    text = tmp_path / "tiny.txt"
    text.write_text(TINY_TEXT)
    train = lean.load_text(text).train
    offsets = np.random.default_rng(0).integers(0, len(train) - 64, (4, 2))
    result = nano.train(4, 1, 0, text, offsets)
    assert len(result.losses) == len(result.step_seconds) == 4
    assert np.isfinite(result.losses).all() and np.isfinite(result.val_loss)


def test_gpt_speed_command_runs_its_peers_in_processes(
    gpt_speed: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end, fnn alone (PyTorch is no dependency of the tests): a child process per
    run, the same windows, the printed summary and the JSON records."""
    text = tmp_path / "tiny.txt"
    text.write_text(TINY_TEXT)
    out = tmp_path / "gpt.json"
    argv = ["--steps", "2", "--threads", "1,2", "--peers", "fnn,fnn-shards", "--no-split"]
    assert gpt_speed.main([*argv, "--text", str(text), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 thread(s):" in printed and "fnn-shards" in printed and "CPU: " in printed
    import json

    records = json.loads(out.read_text())["records"]
    assert all(len(r["step_cpu_seconds"]) == 2 for r in records)
    assert [(r["peer"], r["threads"]) for r in records] == [
        ("fnn", 1), ("fnn", 2), ("fnn-shards", 2)
    ]  # fmt: skip
    # the same windows and weights (one BLAS thread or two: the same sums, up to round-off)
    np.testing.assert_allclose(records[0]["losses"], records[1]["losses"], rtol=1e-5)


def test_gpt_speed_leaves_fnn_on_processes_out_without_mpi(
    gpt_speed: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without mpirun (or mpi4py) the fnn-mpi peer is left out, with a note saying why,
    and the others run."""
    text = tmp_path / "tiny.txt"
    text.write_text(TINY_TEXT)
    out = tmp_path / "gpt.json"
    monkeypatch.setattr(gpt_speed, "can_run_processes", lambda: "no mpirun (stand-in)")
    argv = ["--steps", "2", "--threads", "2", "--peers", "fnn,fnn-mpi", "--no-split"]
    assert gpt_speed.main([*argv, "--text", str(text), "--json", str(out)]) == 0
    assert "note: fnn-mpi left out: no mpirun (stand-in)" in capsys.readouterr().out
    records = json.loads(out.read_text())["records"]
    assert [(r["peer"], r["threads"]) for r in records] == [("fnn", 2)]
    # with MPI but fewer CPUs than processes: left out at that thread count only
    monkeypatch.setattr(gpt_speed, "can_run_processes", lambda: None)
    monkeypatch.setattr(gpt_speed, "cores", lambda: 1)
    assert gpt_speed.main([*argv, "--text", str(text), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "note: fnn-mpi left out at 2 thread(s): more processes than the 1 CPUs" in printed
    records = json.loads(out.read_text())["records"]
    assert [(r["peer"], r["threads"]) for r in records] == [("fnn", 2)]


@needs_mpi
@pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity") else True,
    reason="needs 2 CPUs (one process bound to each)",
)
def test_gpt_speed_runs_fnn_on_processes_with_the_bits_of_threads(
    gpt_speed: ModuleType, tmp_path: Path
) -> None:
    """fnn-mpi end to end: mpirun -n 2, one shard a process, the first process's record;
    the same shards as fnn-shards, so the same losses, bit for bit."""
    text = tmp_path / "tiny.txt"
    text.write_text(TINY_TEXT)
    out = tmp_path / "gpt.json"
    argv = ["--steps", "3", "--threads", "2", "--peers", "fnn-shards,fnn-mpi", "--no-split"]
    assert gpt_speed.main([*argv, "--text", str(text), "--json", str(out)]) == 0
    threads, processes = json.loads(out.read_text())["records"]
    assert (threads["peer"], processes["peer"]) == ("fnn-shards", "fnn-mpi")
    assert (threads["processes"], processes["processes"]) == (1, 2)
    assert processes["losses"] == threads["losses"] and len(processes["losses"]) == 3
    assert processes["val_loss"] == threads["val_loss"]
    assert len(processes["step_cpu_seconds"]) == len(processes["step_seconds"]) == 3


def test_sweep_speed_measures_both_ways_on_a_tiny_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sweep benchmark end to end on 2 tiny runs (nothing timed is checked but its
    bookkeeping: both ways ran, the bits agree, the report has every line)."""
    from tests.test_cli import write_own_data

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sweep_speed = importlib.import_module("sweep_speed")
    own = write_own_data(tmp_path / "own")
    figures = tmp_path / "figures.json"
    args = ["--runs", "2", "--epochs", "1", "--json", str(figures), "--", "--data", str(own)]
    assert sweep_speed.main(args) == 0
    (found,) = json.loads(figures.read_text())
    assert found["runs"] == 2 and len(found["run_seconds"]) == 2 and found["same_bits"]
    assert found["ratio"] == pytest.approx(found["sweep_seconds"] / found["one_by_one_seconds"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "round 1:" and lines[5].startswith("ratio ")
    assert found["sweep_cpu_seconds"] > 0 and found["one_by_one_cpu_seconds"] > 0
    assert "the pool's own cost per run" in lines[6] and lines[-1].startswith("median of 1 ")
    assert sweep_speed.run_seconds("[1/2] seed=0: trained, test accuracy 0.5000 (1.25 s)\n") == [
        1.25
    ]


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        ("parallel_speed", ["--processes", "0"], "--processes must be >= 1, got 0"),
        ("parallel_speed", ["--table", "--level-us", "-1"], "--level-us must be >= 0"),
        ("cnn_split", ["--threads", "0"], "--threads expects counts >= 1"),
        ("page_faults", ["--threads", "x"], "--threads expects integers like 1,2"),
        ("gpt_generation", ["--rounds", "0"], "--length and --rounds must be >= 1"),
        ("gpt_generation", ["--run", "no/such/run"], "no such run directory or model file"),
    ],
)
def test_bad_options_are_one_line_usage_errors(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    script: str,
    argv: list[str],
    message: str,
) -> None:
    """A bad count is refused before anything runs (0 processes ran mpirun on every slot
    and printed 'x0' rows; 0 threads let OpenBLAS take its default)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    with pytest.raises(SystemExit) as info:
        importlib.import_module(script).main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_report_says_how_it_is_used(
    bench: dict[str, ModuleType], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert bench["report"].main(["--help"]) == 0
    assert "usage: python report.py out.json" in capsys.readouterr().err
    assert bench["report"].main([str(tmp_path / "none.json")]) == 2
    assert "none.json" in capsys.readouterr().err
