"""A run of ``fnn train`` stopped at any moment can be finished (fnn/cli/_train.py,
_rundir.py, _output.py): killed at every one of its writes, before or after the rename,
``--resume`` (or, before the run's first checkpoint, the same command again) ends with
the bits of a run that never stopped; a closed, broken or full stdout never fails a run.
Each run is a process of its own (tests/cli/child.py), as a user's is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fnn
from tests.support.optional import needs_matplotlib

CHILD = Path(__file__).with_name("child.py")
ARGS = ("--epochs", "2", "--batch-size", "64", "--quiet")


def child(
    *argv: str, faults: tuple[str, ...] = (), timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHILD), *faults, "--", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )


def outcome(directory: Path) -> dict[str, Any]:
    """What a finished run leaves: its record's results, its model's params, its plots."""
    record = json.loads((directory / "run.json").read_text())
    params = fnn.io.load_model(directory / "model.npz").params
    return {
        "params_sha256": record["params_sha256"],
        "epoch_params_sha256": record["epoch_params_sha256"],  # kept across a kill too
        "timed_epochs": sorted(record["timing"]["epoch_seconds"]),
        "model": fnn.tree.fingerprint(params),
        "epochs": record["epochs"],
        "test": record["test"],
        "confusion": record["confusion_matrix"],
        "config": record["config"],
        "plots": sorted(p.name for p in directory.glob("*.png")),
    }


@needs_matplotlib
def test_a_run_killed_at_any_write_finishes_bit_identically(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    log = tmp_path / "writes.txt"
    done = child("train", "--out", str(whole), *ARGS, faults=("--count-writes", str(log)))
    assert done.returncode == 0, done.stderr
    expected = outcome(whole)
    assert expected["model"] == expected["params_sha256"]
    writes = [Path(line).name for line in log.read_text().splitlines()]
    # the record, a checkpoint per epoch, then the final phase: model, record, plots
    assert writes == ["run.json", "last.npz", "last.npz", "model.npz", "run.json",
                      "curves.png", "confusion.png"]  # fmt: skip
    for at, _ in enumerate(writes, 1):
        for when in ("before", "after"):
            out = tmp_path / f"killed-{at}-{when}"
            killed = child(
                "train", "--out", str(out), *ARGS,
                faults=("--kill-at", str(at), "--kill-when", when),
            )  # fmt: skip
            assert killed.returncode == -9, (at, when, killed.stderr)
            finished = child("train", "--resume", str(out), "--quiet")
            if finished.returncode != 0:  # killed before the first checkpoint: run it again
                assert "nothing to resume" in finished.stderr or "not found" in finished.stderr
                finished = child("train", "--out", str(out), *ARGS)
            assert finished.returncode == 0, (at, when, finished.stderr)
            assert outcome(out) == {**expected, "config": expected["config"]}, (at, when)
            leftovers = [p.name for p in out.rglob("*") if ".tmp" in p.name]
            assert leftovers == [], (at, when)


def test_resume_of_a_finished_run_does_only_what_is_left(tmp_path: Path) -> None:
    done = child("train", "--out", str(tmp_path), *ARGS, "--no-plots")
    assert done.returncode == 0, done.stderr
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "model.npz", tmp_path / "run.json")}
    again = child("train", "--resume", str(tmp_path), "--quiet", "--no-plots")
    assert again.returncode == 0, again.stderr
    assert "(training complete)" in again.stdout and "test accuracy" in again.stdout
    assert f"kept (the run was finished) {tmp_path / 'model.npz'}" in again.stdout
    assert "wrote" in done.stdout and "wrote" not in again.stdout
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before  # nothing redone: the model and the results were there


@pytest.mark.parametrize(
    "shell",
    [
        "{command} | head -n 1",  # a pipe closed after one line: "Broken pipe"
        "{command} | true",  # a pipe closed before the first line
        "{command} >&-",  # stdout closed
        "{command} > /dev/full",  # every write fails: "No space left on device"
    ],
)
def test_printing_never_fails_a_run(tmp_path: Path, shell: str) -> None:
    command = " ".join(
        [sys.executable, str(CHILD), "--", "train", "--out", str(tmp_path), *ARGS, "--no-plots"]
    )
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell.format(command=command)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["test"]["accuracy"] > 0.5 and (tmp_path / "model.npz").is_file()


@needs_matplotlib
def test_a_language_model_killed_at_any_write_finishes_bit_identically(tmp_path: Path) -> None:
    """The same for a language model's run (fit_steps, a checkpoint per interval, its
    validation results and curves): every write point, before and after the rename."""
    text = tmp_path / "verse.txt"
    text.write_text("the cat sat on the mat; the dog lay by the log.\n" * 60, encoding="utf-8")
    args = (
        "--model", "gpt", "--text", str(text), "--steps", "12", "--eval-every", "6",
        "--warmup", "2", "--layers", "1", "--heads", "2", "--features", "8", "--context", "8",
        "--batch-size", "4", "--quiet",
    )  # fmt: skip

    def result(directory: Path) -> dict[str, Any]:
        record = json.loads((directory / "run.json").read_text())
        params = fnn.io.load_model(directory / "model.npz").params
        kept = ("params_sha256", "epoch_params_sha256", "epochs", "validation", "train_loss",
                "config")  # fmt: skip
        return {
            **{k: record[k] for k in kept},
            "timed_intervals": sorted(record["timing"]["epoch_seconds"]),
            "model": fnn.tree.fingerprint(params),
            "plots": sorted(p.name for p in directory.glob("*.png")),
        }

    whole = tmp_path / "whole"
    log = tmp_path / "writes.txt"
    done = child("train", "--out", str(whole), *args, faults=("--count-writes", str(log)))
    assert done.returncode == 0, done.stderr
    expected = result(whole)
    writes = [Path(line).name for line in log.read_text().splitlines()]
    assert writes == ["run.json", "last.npz", "last.npz", "model.npz", "run.json", "curves.png"]
    for at, _ in enumerate(writes, 1):
        for when in ("before", "after"):
            out = tmp_path / f"killed-{at}-{when}"
            killed = child(
                "train", "--out", str(out), *args,
                faults=("--kill-at", str(at), "--kill-when", when),
            )  # fmt: skip
            assert killed.returncode == -9, (at, when, killed.stderr)
            finished = child("train", "--resume", str(out), "--quiet")
            if finished.returncode != 0:  # killed before the first checkpoint: run it again
                assert "not found" in finished.stderr, finished.stderr
                finished = child("train", "--out", str(out), *args)
            assert finished.returncode == 0, (at, when, finished.stderr)
            assert result(out) == expected, (at, when)
