"""Real processes under mpirun (when Open MPI's mpirun and mpi4py are there): the same bits
on 1, 2 and 4 processes, resume on another number of processes, and failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fnn
from tests.support.optional import needs_mpi

HERE = Path(__file__).resolve().parent

SCRIPT = HERE / "mpi_script.py"

MPIRUN = shutil.which("mpirun")


def mpirun(n: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert MPIRUN is not None
    command = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(n)]
    return subprocess.run(
        [*command, sys.executable, str(SCRIPT), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@needs_mpi
def test_fit_on_1_2_and_4_mpi_processes_ends_on_the_same_bits(tmp_path: Path) -> None:
    records = []
    for n in (1, 2, 4):
        out = tmp_path / f"{n}.json"
        done = mpirun(n, "fit", str(out), "4")
        assert done.returncode == 0, done.stderr
        records.append(json.loads(out.read_text()))
    assert records[0] == records[1] == records[2]


@needs_mpi
def test_fnn_train_resumes_on_another_number_of_processes(tmp_path: Path) -> None:
    args = ("--model", "cnn", "--batch-norm", "--shards", "4", "--epochs", "2",
            "--batch-size", "32", "--quiet", "--no-plots")  # fmt: skip
    done = mpirun(4, "cli", "train", "--out", str(tmp_path / "four"), *args)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout and done.stdout.count("test accuracy") == 1
    done = mpirun(2, "cli", "train", "--out", str(tmp_path / "part"), *args, "--stop-after", "1")
    assert done.returncode == 0, done.stderr
    done = mpirun(1, "cli", "train", "--resume", str(tmp_path / "part"), "--quiet", "--no-plots")
    assert done.returncode == 0, done.stderr
    records = [json.loads((tmp_path / d / "run.json").read_text()) for d in ("four", "part")]
    assert records[0]["params_sha256"] == records[1]["params_sha256"]
    assert records[0]["epochs"] == records[1]["epochs"]


@needs_mpi
def test_an_error_on_one_process_ends_the_run(tmp_path: Path) -> None:
    began = time.monotonic()
    done = mpirun(2, "fail", str(tmp_path / "out.json"), "2", timeout=60)
    assert done.returncode != 0
    assert "process 1 of 2: RuntimeError: a failure on purpose" in done.stderr
    assert time.monotonic() - began < 30
    assert not (tmp_path / "out.json").exists()


def rank_pids(marker: str, rank: int) -> list[int]:
    """The pids of the processes of rank ``rank`` whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in command and f"OMPI_COMM_WORLD_RANK={rank}\0".encode() in environ:
            found.append(int(entry.name))
    return found


@needs_mpi
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
def test_a_killed_process_ends_the_run_and_the_checkpoint_stays_whole(tmp_path: Path) -> None:
    assert MPIRUN is not None
    out = tmp_path / "killed"
    command = [MPIRUN, "--allow-run-as-root", "-n", "2", sys.executable, str(SCRIPT), "cli",
               "train", "--out", str(out), "--shards", "2", "--epochs", "1000",
               "--batch-size", "32", "--quiet", "--no-plots"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as job:
        checkpoint = out / "checkpoints" / "last.npz"
        deadline = time.monotonic() + 60
        while not checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert checkpoint.exists(), "no checkpoint within 60 s"
        pids = rank_pids(str(out), 1)
        assert len(pids) == 1
        os.kill(pids[0], signal.SIGKILL)
        began = time.monotonic()
        try:
            job.wait(timeout=30)
        finally:
            job.kill()
        assert job.returncode != 0
        assert time.monotonic() - began < 30
    state = fnn.io.load(checkpoint)  # written atomically: whole, whatever the kill hit
    assert isinstance(state, fnn.TrainState) and state.epoch >= 1


@needs_mpi
def test_processes_given_different_data_all_stop_with_one_line(tmp_path: Path) -> None:
    """Process 1 has half the training rows (fewer steps: MPI_ERR_TRUNCATE or a crash
    without agree); after agree on the data's SHA-256 every process reports the same line
    and the job ends with the abort's status, not a signal."""
    began = time.monotonic()
    done = mpirun(2, "disagree", str(tmp_path / "out.json"), "2", timeout=60)
    assert done.returncode == 2, done.stderr
    line = "DisagreementError: process 1 of 2 disagrees with process 0 on data.sha256 (the " \
           "training data): '"  # fmt: skip
    assert f"process 0 of 2: {line}" in done.stderr or f"process 1 of 2: {line}" in done.stderr
    assert "signal" not in done.stderr and "TRUNCATE" not in done.stderr
    assert time.monotonic() - began < 60
    assert not (tmp_path / "out.json").exists()


@needs_mpi
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
def test_a_stopped_process_ends_the_run_after_the_timeout(tmp_path: Path) -> None:
    """Process 1 stops itself (SIGSTOP) at its third step; process 0 gives up waiting
    after the 3 s timeout and aborts the job, the stopped process included."""
    out = tmp_path / "out.json"
    began = time.monotonic()
    done = mpirun(2, "stop", str(out), "2", "3", timeout=60)  # a hang fails here
    took = time.monotonic() - began
    assert done.returncode == 2, done.stderr
    assert "process 0 of 2: TimeoutError: process 0 of 2 gave up on Sendrecv with process 1 " \
           "after waiting 3 s (the timeout): it may be stopped" in done.stderr  # fmt: skip
    assert 3 < took < 45
    assert not out.exists()
    assert rank_pids(str(out), 1) == []  # the stopped process was ended too


@needs_mpi
@pytest.mark.parametrize(
    ("mode", "differs"),
    [("cli-labels", "data.sha256.train-labels-idx1-ubyte"), ("cli-rows", "data.arrays[0]")],
)
def test_fnn_train_processes_given_different_data_all_stop_before_training(
    tmp_path: Path, mode: str, differs: str
) -> None:
    out = tmp_path / "run"
    done = mpirun(2, mode, "train", "--out", str(out), "--shards", "2", "--epochs", "1",
                  "--quiet", timeout=120)  # fmt: skip
    assert done.returncode != 0 and -done.returncode not in (signal.SIGSEGV, signal.SIGBUS)
    lines = [line for line in done.stderr.splitlines() if line.startswith("fnn train: error")]
    assert lines and all(f"process 1 of 2 disagrees with process 0 on {differs}" in line
                         for line in lines), done.stderr  # fmt: skip
    assert "MPI_ERR" not in done.stderr
    assert not (out / "checkpoints" / "last.npz").exists()  # refused before training


@needs_mpi
def test_fnn_train_ends_when_a_process_stops(tmp_path: Path) -> None:
    out = tmp_path / "run"
    began = time.perf_counter()
    done = mpirun(2, "cli-stop", "train", "--out", str(out), "--shards", "2", "--epochs", "2",
                  "--quiet", "--timeout", "3", timeout=90)  # fmt: skip
    assert time.perf_counter() - began < 60
    assert done.returncode != 0
    assert "gave up on" in done.stderr and "after waiting 3 s (the timeout)" in done.stderr
