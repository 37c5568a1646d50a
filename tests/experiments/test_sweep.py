"""``fnn.sweep`` (fnn/experiments/_sweep.py): a Python training function over a grid and
seeds on worker processes, each run's record in its own directory, typed configs, a
rerun that skips finished runs, and its errors."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

import fnn
from fnn.experiments import SweepError, WorkerDiedError


def train(config: dict[str, float], seed: int) -> dict[str, Any]:
    """A tiny fit of the MLP on four points: the record fnn train would write, in part."""
    x, y = np.eye(4, dtype=np.float32), np.arange(4)
    state = fnn.fit(fnn.nn.mlp((4,)), fnn.losses.softmax_cross_entropy,
                    fnn.optim.sgd(config["lr"]), x, y, key=fnn.random.key(seed),
                    epochs=2)  # fmt: skip
    result = fnn.evaluate(fnn.nn.mlp((4,)), fnn.losses.softmax_cross_entropy, state.params, x, y)
    return {
        "test": {"accuracy": result.accuracy, "loss": result.loss},
        "epochs": [attrs.asdict(r) for r in state.history],
        "params_sha256": fnn.tree.fingerprint(state.params),
    }


def test_runs_on_workers_give_the_bits_of_each_run_alone(tmp_path: Path) -> None:
    runs = fnn.sweep(train, {"lr": [0.1, 0.5]}, [0, 1, 2], out=tmp_path / "s", workers=2)
    assert [(r.config["lr"], r.seed) for r in runs] == [
        (0.1, 0), (0.1, 1), (0.1, 2), (0.5, 0), (0.5, 1), (0.5, 2)
    ]  # fmt: skip
    for r in runs:
        alone = train(r.config, r.seed)
        assert r.record["params_sha256"] == alone["params_sha256"]
        assert r.directory == tmp_path / "s" / f"lr={r.config['lr']},seed={r.seed}"
        on_disk = json.loads((r.directory / "run.json").read_text())
        assert on_disk == r.record and on_disk["config"] == {"lr": r.config["lr"]}
        assert on_disk["epochs"][0]["val_loss"] is None  # NaN is written null
        assert on_disk["timing"]["wall_seconds"] > 0
    assert len({r.record["params_sha256"] for r in runs}) == 6


@attrs.frozen
class Setting:
    lr: float
    width: int


def test_configs_of_any_type_and_a_rerun_skips_finished_runs(tmp_path: Path) -> None:
    calls: list[int] = []

    def fn(config: Setting, seed: int) -> dict[str, Any]:
        calls.append(seed)
        return {"test": {"accuracy": config.lr * seed, "loss": float(config.width)}}

    settings = [Setting(0.1, 8), Setting(0.2, 16)]
    runs = fnn.sweep(fn, settings, [0, 1], out=tmp_path, workers=1)
    typed: list[Setting] = [r.config for r in runs]  # the type flows to the records
    assert typed == [settings[0], settings[0], settings[1], settings[1]]
    assert runs[3].record["config"] == {"lr": 0.2, "width": 16}
    (runs[1].directory / "run.json").unlink()  # as if killed before it ended
    again = fnn.sweep(fn, settings, [0, 1], out=tmp_path, workers=1)
    assert calls == [0, 1, 0, 1, 1]

    def timeless(run: fnn.experiments.Run[Setting]) -> dict[str, Any]:
        return {k: v for k, v in run.record.items() if k != "timing"}

    assert [timeless(r) for r in again] == [timeless(r) for r in runs]
    assert again[0].record == runs[0].record  # not run again: its record as it was


def test_errors(tmp_path: Path) -> None:
    def fails(config: dict[str, int], seed: int) -> dict[str, Any]:
        if config["n"] == 2:
            raise ValueError("no good")
        return {}

    with pytest.raises(SweepError, match=r"^run n=2,seed=0 failed: ValueError: no good$"):
        fnn.sweep(fails, {"n": [1, 2, 3]}, [0], out=tmp_path / "a", workers=2)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "n=1,seed=0", "n=3,seed=0", "sweep.json"
    ]  # fmt: skip
    with pytest.raises(SweepError, match="holds another sweep"):
        fnn.sweep(fails, {"n": [1]}, [0], out=tmp_path / "a", workers=1)
    with pytest.raises(TypeError, match="is not JSON data"):
        fnn.sweep(lambda c, s: {"x": object()}, {"n": [1]}, [0], out=tmp_path / "b", workers=1)
    with pytest.raises(ValueError, match="holds a value twice"):
        fnn.sweep(fails, {"n": [1, 1]}, [0], out=tmp_path / "c")
    with pytest.raises(ValueError, match="needs settings and seeds"):
        fnn.sweep(fails, {"n": [1]}, [], out=tmp_path / "c")


def test_a_worker_killed_keeps_finished_runs(tmp_path: Path) -> None:
    def fn(config: dict[str, int], seed: int) -> dict[str, Any]:
        if config["n"] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"n": config["n"]}

    with pytest.raises(WorkerDiedError, match="a worker process died"):
        fnn.sweep(fn, {"n": [1, 2, 3]}, [0], out=tmp_path, workers=2)
    assert (tmp_path / "n=1,seed=0" / "run.json").is_file()
    assert not (tmp_path / "n=3,seed=0").exists()


def test_seeds_and_grids_parse() -> None:
    assert fnn.experiments.parse_seeds("0-2,7,1") == (0, 1, 2, 7)
    for bad in ("", "1-", "a", "5-2", "-1"):
        with pytest.raises(ValueError, match="expected"):
            fnn.experiments.parse_seeds(bad)
    assert fnn.experiments.run_name({"hidden": (128, 64), "p": "a/b"}, 3) == (
        "hidden=128+64,p=a_b,seed=3"
    )
