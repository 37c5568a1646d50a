"""``fnn replay RUN`` (fnn/cli/_replay.py): a run replayed in a fresh process is
bit-identical, through its resumes and extensions too; a replay under another thread or
shard count names the first epoch that differs and the conditions that differ, never a
false success; data whose checksum changed are refused before anything is trained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
from fnn.cli import _replay
from tests.cli.test_text import text
from tests.cli.test_text import train as train_text
from tests.test_cli import error_of, fake_data, resume, run, train, write_own_data

__all__ = ["fake_data", "text"]  # the fixtures: synthetic named datasets, a small text

CHILD = Path(__file__).with_name("child.py")


def replay_in_a_new_process(*argv: str) -> subprocess.CompletedProcess[str]:
    """``fnn replay ARGV`` in a process of its own (tests/cli/child.py)."""
    return subprocess.run(
        [sys.executable, str(CHILD), "--", "replay", *argv, "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )


def test_a_run_replayed_in_a_fresh_process_is_bit_identical(tmp_path: Path) -> None:
    recorded = train(tmp_path / "run", "--epochs", "2")
    done = replay_in_a_new_process(str(tmp_path / "run"), "--out", str(tmp_path / "again"))
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first == (
        f"replay of {tmp_path / 'run'} in {tmp_path / 'again'}: bit-identical (2 epochs, "
        f"params sha256 {recorded['params_sha256']})"
    )
    assert "no recorded condition differs from this machine's" in done.stdout
    again = json.loads((tmp_path / "again" / "run.json").read_text())
    assert again["epoch_params_sha256"] == recorded["epoch_params_sha256"]
    assert len(recorded["epoch_params_sha256"]) == 2


def test_a_replay_in_a_sweep_is_marked_and_not_compared_as_another_seed(
    tmp_path: Path,
) -> None:
    """fnn replay SWEEP/RUN writes RUN-replay beside the run, in the sweep: compare leaves
    it out there (it is the same run again), and counts it when named."""
    sweep = tmp_path / "sweep"
    status, text = run("sweep", "--out", str(sweep), "--grid", "lr=0.01,0.02", "--",
                       "--epochs", "1", "--limit", "600", "--no-plots")  # fmt: skip
    assert status == 0, text
    source = sweep / "lr=0.01,seed=0"
    assert run("replay", str(source), "--quiet")[0] == 0
    again = json.loads((sweep / "lr=0.01,seed=0-replay" / "run.json").read_text())
    assert again["replay_of"] == str(source.resolve())
    found = fnn.experiments.find_runs([sweep])
    assert sorted(r.directory.name for r in found) == ["lr=0.01,seed=0", "lr=0.02,seed=0"]
    named = fnn.experiments.find_runs([sweep / "lr=0.01,seed=0-replay"])
    assert [r.record["replay_of"] for r in named] == [str(source.resolve())]
    apart = tmp_path / "replays"  # replays without their runs beside them: compared
    apart.mkdir()
    (sweep / "lr=0.01,seed=0-replay").rename(apart / "one")
    assert [r.directory.name for r in fnn.experiments.find_runs([apart])] == ["one"]


def test_a_stopped_resumed_and_extended_run_replays_stage_by_stage(tmp_path: Path) -> None:
    """Stopped after epoch 1 of 2, resumed, then extended to 3 epochs (its cosine schedule
    stretched from then on): the replay retraces the stages and repeats the bits; a
    replay that ignored the extension would differ from epoch 1."""
    out = tmp_path / "run"
    train(out, "--epochs", "2", "--stop-after", "1")
    resume(out)
    recorded = resume(out, "--epochs", "3")
    assert recorded["target_changes"] == [{"after": 2, "epochs": [2, 3]}]
    stages = _replay.stages(recorded, fnn.cli.Config.from_json(recorded["config"], "r"), None)
    assert stages == [_replay.Stage(2, 2, 1), _replay.Stage(3, 3, 1)]
    config = fnn.cli.Config.from_json(recorded["config"], "r")
    hand_edited = {**recorded, "target_changes": ["?", None, *recorded["target_changes"], 7]}
    assert _replay.stages(hand_edited, config, None) == stages  # malformed entries ignored
    status, printed = run("replay", str(out), "--quiet")
    assert status == 0 and "bit-identical (3 epochs" in printed, printed
    fresh = train(tmp_path / "fresh", "--epochs", "3")
    assert fresh["params_sha256"] != recorded["params_sha256"]  # what a naive replay gets


def test_another_thread_count_is_named_and_never_a_false_success(tmp_path: Path) -> None:
    if fnn.runtime.blas_threads() is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS: --threads does not reach it")
    fnn.runtime.set_blas_threads(2)
    two = fnn.runtime.blas_threads()
    fnn.runtime.set_blas_threads(1)
    if two != 2:
        pytest.skip("OpenBLAS runs one thread at most on this machine")
    recorded = train(tmp_path / "run", "--epochs", "2")
    status, printed = run("replay", str(tmp_path / "run"), "--threads", "2", "--quiet")
    fnn.runtime.set_blas_threads(1)
    again = json.loads((tmp_path / "run-replay" / "run.json").read_text())
    assert (
        "conditions that decide the bits and differ: the BLAS thread count 1 (recorded) -> 2 "
        "(here)" in printed
    )
    assert "the thread count (--threads) 1 (recorded) -> 2 (here)" in printed
    if again["params_sha256"] == recorded["params_sha256"]:  # two threads, the same sums
        assert status == 0 and "bit-identical" in printed
    else:  # what this machine's OpenBLAS does (SkylakeX kernels on an AMD EPYC)
        assert status == 1 and "bit-identical" not in printed
        assert ": differs from epoch 1 on (of 2 recorded)" in printed
        assert "params sha256" in printed


def test_another_shard_count_differs_from_the_first_epoch(tmp_path: Path) -> None:
    recorded = train(tmp_path / "run", "--epochs", "2")
    status, printed = run(
        "replay", str(tmp_path / "run"), "--shards", "2", "--out", str(tmp_path / "two"),
        "--quiet",
    )  # fmt: skip
    assert status == 1, printed
    lines = printed.splitlines()
    assert lines[0].endswith(": differs from epoch 1 on (of 2 recorded)")
    loss = recorded["epochs"][0]["loss"]
    assert any(line.startswith(f"  loss {loss!r} (recorded) vs ") for line in lines)
    assert "the shard count 1 (recorded) -> 2 (here)" in printed


def test_changed_data_are_refused_by_checksum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = write_own_data(tmp_path / "own")
    status, printed = run("train", "--data", str(own), "--out", str(tmp_path / "run"),
                          "--epochs", "1", "--batch-size", "16", "--quiet")  # fmt: skip
    assert status == 0, printed
    with np.load(own / "data.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["x_train"][0, 0, 0] ^= 1  # one bit of one pixel
    np.savez(own / "data.npz", **arrays)
    message = error_of(capsys, "replay", str(tmp_path / "run"))
    assert f"the data of {own.resolve()} differ from the run's (SHA-256 " in message
    assert "a replay needs the run's data" in message
    assert not (tmp_path / "run-replay").exists()  # refused before anything was written


def test_a_language_model_replays_by_eval_interval(tmp_path: Path, text: Path) -> None:
    recorded = train_text(tmp_path / "run", text)
    status, printed = run("replay", str(tmp_path / "run"), "--quiet")
    assert status == 0 and "bit-identical (3 eval intervals" in printed, printed
    status, printed = run(
        "replay", str(tmp_path / "run"), "--shards", "2", "--out", str(tmp_path / "two")
    )
    assert status == 1 and "differs from eval interval 1 (updates 1-10) on" in printed
    assert len(recorded["epoch_params_sha256"]) == 3


def test_replay_refuses_a_run_without_results_and_its_own_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(tmp_path / "run", "--epochs", "1")
    message = error_of(capsys, "replay", str(tmp_path / "run"), "--out", str(tmp_path / "run"))
    assert "is the run's own directory: replay into another" in message
    path = tmp_path / "run" / "run.json"
    record: dict[str, Any] = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in record.items() if k != "epochs"}))
    message = error_of(capsys, "replay", str(tmp_path / "run"))
    assert "records no trained epochs to compare" in message


def test_first_difference_compares_every_bit_of_each_metric() -> None:
    epoch = {"epoch": 0, "loss": 0.5, "accuracy": 1.0, "val_loss": float("nan")}
    a = {"epochs": [epoch, epoch], "params_sha256": "f"}
    assert _replay.first_difference(a, a) is None
    later = {"epochs": [epoch, {**epoch, "loss": np.nextafter(0.5, 1.0)}], "params_sha256": "f"}
    found = _replay.first_difference(a, later)
    assert found is not None and found[0] == 1 and found[1][0].startswith("loss 0.5 (recorded)")
    assert _replay.first_difference(a, {**a, "params_sha256": "e"}) == (
        1,
        ["the final params sha256 f (recorded) vs e (replay)"],
    )
    shorter = _replay.first_difference(a, {**a, "epochs": [epoch]})
    assert shorter == (1, ["the replay ends after 1 epochs"])
