"""One writer per run directory (fnn/cli/_rundir.py): a second ``fnn train`` into a
directory another is writing into refuses in one line, and a killed writer leaves no lock
behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli.test_finish import ARGS, CHILD, child


def test_two_runs_into_one_directory_one_refuses(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, str(CHILD), "--hold", "60", "--", "train", "--out", str(tmp_path), *ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        record = (tmp_path / "run.json").read_bytes()
        second = child("train", "--out", str(tmp_path), *ARGS, "--seed", "3")
        assert second.returncode == 2
        assert second.stderr == (
            f"fnn train: error: another fnn train is writing into {tmp_path}; wait for it to "
            "end, or choose another --out\n"
        )
        assert (tmp_path / "run.json").read_bytes() == record  # the first run's, untouched
        resumed = child("train", "--resume", str(tmp_path), "--quiet")
        assert resumed.returncode == 2 and "another fnn train is writing into" in resumed.stderr
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    third = child("train", "--out", str(tmp_path), *ARGS, "--no-plots")  # the lock went with it
    assert third.returncode == 0, third.stderr
    assert json.loads((tmp_path / "run.json").read_text())["test"]["accuracy"] > 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "model.npz", "run.json"]
