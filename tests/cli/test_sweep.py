"""``fnn sweep`` (fnn/cli/_sweep.py): runs over a grid and seeds on a pool of workers
with the bits of ``fnn train`` alone, skipped when finished and resumed when
interrupted (a worker or an MPI process killed with SIGKILL, a full disk), and each error
a user can cause in one line before anything is written."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import _atomic, cli, experiments, plots
from fnn.experiments import _sweep as sweep_module
from tests.parallel.test_mpi import MPIRUN, rank_pids
from tests.support.optional import needs_mpi
from tests.test_cli import write_own_data

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_own_data(tmp_path_factory.mktemp("data") / "own")


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def records(root: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(root.glob("*/run.json")):
        found[path.parent.name] = json.loads(path.read_text())
    return found


TRAIN = ("--epochs", "2", "--batch-size", "16", "--no-plots")


def test_a_sweep_gives_the_bits_of_each_run_alone_and_skips_them_again(
    tmp_path: Path, own: Path
) -> None:
    out = tmp_path / "sweep"
    status, text = run(
        "sweep", "--out", str(out), "--seeds", "0-1", "--grid", "optimizer=adam,sgd",
        "--grid", "lr=0.01,0.1", "--workers", "2", "--", "--data", str(own), *TRAIN,
    )  # fmt: skip
    assert status == 0, text
    found = records(out)
    assert len(found) == 8 and text.count(": trained, test accuracy") == 8
    assert "optimizer=sgd,lr=0.1,seed=1" in found
    assert json.loads((out / "sweep.json").read_text())["seeds"] == [0, 1]
    for name in ("optimizer=adam,lr=0.01,seed=0", "optimizer=sgd,lr=0.1,seed=1"):
        alone = tmp_path / name
        options = dict(part.split("=") for part in name.split(","))
        status, text = run(
            "train", "--out", str(alone), "--data", str(own), *TRAIN, "--quiet",
            "--optimizer", options["optimizer"], "--lr", options["lr"], "--seed", options["seed"],
        )  # fmt: skip
        assert status == 0, text
        record = json.loads((alone / "run.json").read_text())
        assert record["params_sha256"] == found[name]["params_sha256"]
        assert record["config"] == found[name]["config"]
    status, text = run(
        "sweep", "--out", str(out), "--seeds", "0-1", "--grid", "optimizer=adam,sgd",
        "--grid", "lr=0.01,0.1", "--", "--data", str(own), *TRAIN,
    )  # fmt: skip
    assert status == 0 and text.count("finished before, skipped") == 8, text
    assert records(out) == found


def error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    status, _ = run(*argv)
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--grid", "wings=1,2"), "--grid wings=1,2: fnn train has no option --wings"),
        (("--grid", "threads=1,2"), "--threads is how a run is trained, not a setting of it"),
        (
            ("--grid", "momentum=0.5,0.9"),
            "the setting --momentum 0.5: --momentum applies to",
        ),
        (("--grid", "lr=0.1,,0.2"), "expected distinct values separated by ','"),
        (
            ("--grid", "lr=0.001,1e-3"),
            "the settings --lr 0.001 and --lr 1e-3 are the same configuration",
        ),
        (("--grid", "batch_size=32,032"), "--batch-size 32 and --batch-size 032 are the same"),
        (("--grid", "lr"), "--grid expects OPTION=V1,V2,..., got 'lr'"),
        (("--grid", "lr=-1,0.1"), "the setting --lr -1: "),
        (("--grid", "seed=1,2"), "--grid seed=1,2: give the seeds with --seeds"),
        (("--seeds", "3-1"), "--seeds: expected ranges low-high"),
        (("--seeds", "0-x"), "--seeds: expected seeds like 0-4 or 0,3,7, got '0-x'"),
        (("--", "--out", "x"), "--out cannot be given to the sweep's runs"),
        (("--", "--lr", "0.1", "--grid", "lr=1"), "unrecognized arguments"),
        (("--grid", "lr=0.1", "--", "--lr", "0.2"), "--lr is given twice"),
        (("--", "--epochs", "0"), "--epochs: epochs must be >= 1"),
        (("--workers", "0"), "--workers must be an integer in [1, 4096], got 0"),
    ],
)
def test_errors_are_one_line_and_touch_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "sweep"
    text = error_of(capsys, "sweep", "--out", str(out), *extra)
    assert text.startswith("fnn sweep: error: ") and message in text, text
    assert not out.exists()


def test_a_directory_of_another_sweep_or_a_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], own: Path
) -> None:
    out = tmp_path / "sweep"
    base = ("sweep", "--out", str(out), "--workers", "1", "--", "--data", str(own), *TRAIN)
    assert run(*base)[0] == 0
    text = error_of(capsys, *base[:3], "--seeds", "0-1", *base[3:])
    assert f"{out} holds another sweep (its sweep.json names other runs or options: seeds" in text
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}")
    text = error_of(capsys, "sweep", "--out", str(tmp_path / "run"), "--", "--data", str(own))
    assert "holds a run of fnn train; choose another directory" in text
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    text = error_of(capsys, "sweep", "--out", str(tmp_path / "other"), "--", "--data", str(own))
    assert "is not empty and holds no sweep.json" in text
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_two_sweeps_on_one_directory_at_once_one_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], own: Path
) -> None:
    out = tmp_path / "sweep"
    out.mkdir()
    with sweep_module.sweep_lock(out):  # what a running sweep holds
        text = error_of(capsys, "sweep", "--out", str(out), "--", "--data", str(own))
    assert f"another sweep or search is running in {out}; wait for it to end" in text
    assert list(out.iterdir()) == []


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux's /proc")
def test_a_worker_killed_keeps_the_finished_runs_and_the_sweep_resumes(
    tmp_path: Path, own: Path
) -> None:
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "fnn", "sweep", "--out", str(out), "--seeds", "0-3",
            "--workers", "2", "--", "--data", str(own), "--epochs", "60", "--batch-size",
            "16", "--no-plots", "--validation-split", "0"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as job:  # fmt: skip
        deadline = time.monotonic() + 120
        while not list(out.glob("*/checkpoints/last.npz")) and time.monotonic() < deadline:
            time.sleep(0.02)
        workers = children(job.pid)
        assert workers, "no worker started"
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = job.communicate(timeout=120)
    assert job.returncode == 2, stderr
    assert stderr.count("\n") == 1 and "a worker process died" in stderr, stderr
    assert "run the same fnn sweep again to resume" in stderr
    kept = {n: r for n, r in records(out).items() if "params_sha256" in r}
    status, text = run(*argv[3:])
    assert status == 0, text
    assert ": resumed, test accuracy" in text
    after = records(out)
    assert all(after[n] == r for n, r in kept.items())  # finished runs untouched
    for name, record in after.items():  # every run with the bits of one never stopped
        alone = tmp_path / name
        status, text = run("train", "--out", str(alone), *argv[11:], "--quiet",
                           "--seed", name.split("=")[1])  # fmt: skip
        assert status == 0, text
        assert (
            json.loads((alone / "run.json").read_text())["params_sha256"]
            == (record["params_sha256"])
        )


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (exists and is not a zombie left to be reaped)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux's /proc")
def test_the_sweep_killed_takes_its_workers_and_runs_again(tmp_path: Path, own: Path) -> None:
    """kill -9 of the sweep's own process ends its workers too (they would hold the
    directory's lock, inherited through the fork, and refuse the same command again)."""
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "fnn", "sweep", "--out", str(out), "--seeds", "0-3",
            "--workers", "2", "--", "--data", str(own), "--epochs", "60", "--batch-size",
            "16", "--no-plots", "--validation-split", "0"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as job:  # fmt: skip
        deadline = time.monotonic() + 120
        while not list(out.glob("*/checkpoints/last.npz")) and time.monotonic() < deadline:
            time.sleep(0.02)
        workers = children(job.pid)
        assert workers, "no worker started"
        job.kill()
        job.wait(timeout=60)
    deadline = time.monotonic() + 30
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if running(pid)], "workers outlived the sweep"
    status, text = run(*argv[3:])
    assert status == 0, text
    assert ": resumed, test accuracy" in text


def fingerprint_alone(directory: Path, *argv: str) -> str:
    """The params fingerprint of ``fnn train --out directory *argv`` run alone."""
    status, text = run("train", "--out", str(directory), *argv, "--quiet")
    assert status == 0, text
    return str(json.loads((directory / "run.json").read_text())["params_sha256"])


def files_of(directory: Path) -> dict[str, bytes]:
    """The bytes of a run's ``run.json`` and ``model.npz``."""
    return {name: (directory / name).read_bytes() for name in ("run.json", "model.npz")}


class NoSpace:
    """A file whose writes fail as on a full disk (ENOSPC)."""

    def __init__(self, file: Any) -> None:
        self.file = file

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)

    def __enter__(self) -> NoSpace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fill_disk(monkeypatch: pytest.MonkeyPatch, root: Path, fills_at: Path) -> dict[str, bool]:
    """Make every file fnn writes under ``root`` fail with ENOSPC from the first write of
    ``fills_at`` on (through fnn's one writer, :func:`fnn._atomic.write_atomic`, whose
    temporary files this follows by ``/proc/self/fd``); returns the disk's state, whose
    ``"full"`` set to False gives the space back for good."""
    disk = {"full": False, "filled": False}

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        file = os.fdopen(fd, *args, **kwargs)
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if path.parent == fills_at.parent and path.name.startswith(f".{fills_at.name}."):
            disk["full"] |= not disk["filled"]
            disk["filled"] = True
        return NoSpace(file) if disk["full"] and root in path.parents else file

    writer_os = types.ModuleType("os")
    writer_os.__dict__.update(os.__dict__)
    writer_os.__dict__["fdopen"] = fdopen
    monkeypatch.setattr(_atomic, "os", writer_os)
    return disk


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs Linux's /proc")
def test_a_full_disk_names_the_run_keeps_the_finished_ones_and_the_sweep_resumes(
    tmp_path: Path, own: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk fills as the third run writes its model: that run and the next fail in one
    line naming the first; run again with space, the sweep resumes the one (it has its
    checkpoint) and trains the other, each with the bits of fnn train alone."""
    out = tmp_path / "sweep"
    train = ("--data", str(own), *TRAIN)
    argv = ("sweep", "--out", str(out), "--seeds", "0-3", "--workers", "1", "--", *train)
    disk = fill_disk(monkeypatch, out, out / "seed=2" / "model.npz")
    text = error_of(capsys, *argv)
    assert text.startswith("fnn sweep: error: 2 of 4 runs failed; the first, seed=2: "), text
    assert f"No space left on device: '{out / 'seed=2' / 'model.npz'}'" in text
    assert disk["full"]
    kept = {name: files_of(out / name) for name in ("seed=0", "seed=1")}
    for name, files in kept.items():  # whole: the model holds the params run.json names
        record = json.loads(files["run.json"])
        model = fnn.io.load_model(out / name / "model.npz")
        assert fnn.tree.fingerprint(model.params) == record["params_sha256"]
    assert not (out / "seed=2" / "model.npz").exists()
    disk["full"] = False  # space again
    status, text = run(*argv)
    assert status == 0, text
    assert text.count("finished before, skipped") == 2
    assert "seed=2: resumed, test accuracy" in text and "seed=3: trained, test" in text
    assert {name: files_of(out / name) for name in kept} == kept
    for name, record in records(out).items():
        seed = name.split("=")[1]
        assert (
            fingerprint_alone(tmp_path / name, *train, "--seed", seed) == (record["params_sha256"])
        )


def test_workers_default_to_one_per_core() -> None:
    assert experiments.default_workers() == len(os.sched_getaffinity(0))
    with contextlib.suppress(AttributeError):
        assert experiments.default_workers() >= 1


@needs_mpi
def test_under_mpirun_the_processes_share_the_runs(
    tmp_path: Path, own: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this fnn, wherever the venv's points
    out = tmp_path / "sweep"
    args = ("sweep", "--out", str(out), "--seeds", "0-2", "--grid", "lr=0.01,0.1", "--",
            "--data", str(own), *TRAIN)  # fmt: skip
    assert MPIRUN is not None
    done = subprocess.run(
        [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", "2", sys.executable, "-m",
         "fnn", *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("process 0: [") == 3 and done.stdout.count("process 1: [") == 3
    found = records(out)
    assert len(found) == 6
    alone = tmp_path / "alone"
    status, text = run("train", "--out", str(alone), "--data", str(own), *TRAIN, "--quiet",
                       "--lr", "0.1", "--seed", "1")  # fmt: skip
    assert status == 0, text
    fingerprint = json.loads((alone / "run.json").read_text())["params_sha256"]
    assert found["lr=0.1,seed=1"]["params_sha256"] == fingerprint
    assert found["lr=0.1,seed=1"]["conditions"]["processes"] == 1


@needs_mpi
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
def test_a_process_killed_under_mpirun_keeps_the_finished_runs_and_the_sweep_resumes(
    tmp_path: Path, own: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process finishes a short run, then process 1 is killed in its long run: both
    short runs stay as they were, and the same sweep run again skips them and resumes the
    long runs to the bits of fnn train alone."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this fnn, wherever the venv's points
    out = tmp_path / "sweep"
    train = ("--data", str(own), "--batch-size", "16", "--no-plots", "--validation-split", "0")
    args = ("sweep", "--out", str(out), "--seeds", "0-1", "--grid", "epochs=2,100", "--", *train)
    assert MPIRUN is not None
    command = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", "2", sys.executable,
               "-m", "fnn", *args]  # fmt: skip
    long = out / "epochs=100,seed=1"  # process 1's second run
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as job:  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while not (long / "checkpoints" / "last.npz").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            pids = rank_pids(str(out), 1)
            assert len(pids) == 1, pids
            os.kill(pids[0], signal.SIGKILL)
            job.communicate(timeout=60)
        finally:
            job.kill()
    assert job.returncode != 0
    kept = {n: files_of(out / n) for n in ("epochs=2,seed=0", "epochs=2,seed=1")}
    assert "params_sha256" not in json.loads((long / "run.json").read_text())
    done = subprocess.run([*command[:-len(args)], *args], capture_output=True, text=True,
                          timeout=300, check=False, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "epochs=2,seed=0: finished before, skipped" in done.stdout, done.stdout
    assert "epochs=2,seed=1: finished before, skipped" in done.stdout
    assert "epochs=100,seed=1: resumed, test accuracy" in done.stdout
    assert {n: files_of(out / n) for n in kept} == kept
    found = records(out)
    assert len(found) == 4
    for name in ("epochs=100,seed=0", "epochs=100,seed=1"):
        seed = name.split("=")[2]
        fingerprint = fingerprint_alone(tmp_path / name, *train, "--epochs", "100", "--seed", seed)
        assert found[name]["params_sha256"] == fingerprint


def test_compare_a_sweep_and_a_run_made_by_hand(
    tmp_path: Path, own: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    status, text = run("sweep", "--out", str(out), "--seeds", "0-2", "--grid", "lr=0.01,0.1",
                       "--workers", "1", "--", "--data", str(own), *TRAIN)  # fmt: skip
    assert status == 0, text
    hand = tmp_path / "hand"
    hand.mkdir()
    (hand / "run.json").write_text(json.dumps({"config": {"lr": 0.5}, "test": {"accuracy": 0.5}}))
    status, text = run("compare", str(out), str(hand))
    assert status == 0, text
    lines = text.splitlines()
    assert lines[0] == "7 runs, 3 settings"
    assert lines[1].split()[:5] == ["lr", "runs", "test", "accuracy", "test"]
    accuracies = [r["test"]["accuracy"] for n, r in records(out).items() if "lr=0.1," in n]
    mean, std = np.mean(accuracies), np.std(accuracies, ddof=1)
    assert lines[4].split()[:5] == ["0.1", "3", f"{mean:.4f}", "±", f"{std:.4f}"]
    assert lines[5].split() == ["0.5", "1", "0.5000", "-", "-", "-", "-"]
    for name in ("comparison.csv", "comparison.md", "curves.png", "finals.png"):
        assert (out / name).is_file(), name
    assert (out / "comparison.md").read_text().count("\n") == 5
    monkeypatch.setattr(plots, "_pyplot", lambda: (_ for _ in ()).throw(
        plots.PlottingUnavailableError("matplotlib is not installed")))  # fmt: skip
    status, text = run("compare", str(out), "--out", str(tmp_path / "elsewhere"))
    assert status == 0 and "note: matplotlib is not installed" in text
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == [
        "comparison.csv", "comparison.md"
    ]  # fmt: skip
    capsys.readouterr()
    assert run("compare", str(tmp_path / "nothing"))[0] == 2
    assert capsys.readouterr().err == (
        f"fnn compare: error: {tmp_path / 'nothing'} is not a directory\n"
    )


def test_a_finished_runs_line_gives_its_accuracy_or_its_validation_loss() -> None:
    """A classifier's line gives test accuracy; a language model's (no test set) its
    validation loss, not an empty score."""
    from fnn.cli import _sweep

    said = _sweep._said
    common = {"status": "trained", "seconds": 2.5}
    assert said({**common, "accuracy": 0.9, "validation_loss": None}) == (
        "trained, test accuracy 0.9000 (2.50 s)"
    )
    assert said({**common, "accuracy": None, "validation_loss": 1.9}) == (
        "trained, validation loss 1.9000 (2.50 s)"
    )
    assert said({**common, "accuracy": None, "validation_loss": None}) == "trained (2.50 s)"
