"""A save killed at any moment leaves the previous checkpoint whole and loadable.

A child process saves a ~24 MB tree over a checkpoint again and again; the parent
SIGKILLs it. One round stops the child at a known point in the middle of writing the
arrays (so a truncated temporary file is certain to be left behind); the other rounds
kill it after a random delay. Each time, the checkpoint must load and equal one of the
versions written, and the stray temporary file must not be what ``load`` reads.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
import fnn.io
from fnn.io import FormatError

CHILD = r"""
import sys, time
import numpy as np
import fnn._atomic
import fnn.io

path, mode, first = sys.argv[1], sys.argv[2], int(sys.argv[3])


def version(v):
    a = np.full((1000, 1000), v, np.float64)
    return {"a": a, "b": np.full((1000, 2000), v, np.float32), "v": v}


class Pausing:
    # Forwards to the real temporary file; stops for good after 8 MB have been written.
    def __init__(self, file):
        self.file, self.written = file, 0

    def write(self, data):
        out = self.file.write(data)
        self.written += len(data)
        if self.written > 8_000_000:
            print("paused", flush=True)
            time.sleep(60)
        return out

    def __getattr__(self, name):
        return getattr(self.file, name)


if mode == "pause":
    real = fnn._atomic.write_atomic
    fnn._atomic.write_atomic = lambda p, write: real(p, lambda f: write(Pausing(f)))

v = first
while True:
    print("start", v, flush=True)
    fnn.io.save(path, version(v))
    print("done", v, flush=True)
    v += 1
"""


def version(v: int) -> dict[str, Any]:
    """The tree the child saves as version ``v`` (about 24 MB)."""
    return {
        "a": np.full((1000, 1000), v, np.float64),
        "b": np.full((1000, 2000), v, np.float32),
        "v": v,
    }


class Child:
    """The saving child process and the lines it has printed."""

    def __init__(self, path: Path, mode: str, first: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), mode, str(first)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.pending = b""

    def wait_for(self, wanted: str, timeout: float = 30.0) -> None:
        """Read the child's output until it has printed the line ``wanted``."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(timeout=deadline - time.monotonic()):
                    continue
                chunk = os.read(fd, 4096)  # unbuffered: no line waits in a Python buffer
                if not chunk:
                    self.proc.wait()
                    pytest.fail(f"the child exited ({self.proc.returncode}) early: {self.lines}")
                *complete, self.pending = (self.pending + chunk).split(b"\n")
                self.lines += [line.decode() for line in complete]
                if wanted in self.lines:
                    return
        self.kill()
        pytest.fail(f"the child printed no {wanted!r} line in {timeout} s: {self.lines}")

    def kill(self) -> None:
        """SIGKILL the child and collect the lines it printed before it died."""
        self.proc.send_signal(signal.SIGKILL)
        out, _ = self.proc.communicate()
        self.lines += [line.decode() for line in (self.pending + out).split(b"\n")]
        assert self.proc.returncode == -signal.SIGKILL

    def versions(self, word: str) -> list[int]:
        """The versions named by the lines ``"<word> <v>"``, in order."""
        return [int(line.split()[1]) for line in self.lines if line.startswith(word + " ")]


def temp_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def check_checkpoint(path: Path, candidates: range) -> int:
    """The checkpoint loads, with and without a template, as one of ``candidates``."""
    loaded = fnn.io.load(path)
    v = loaded["v"]
    assert v in candidates
    assert fnn.tree.equal(loaded, version(v))
    assert fnn.tree.equal(fnn.io.load(path, like=version(0)), version(v))
    return int(v)


def test_kill_in_the_middle_of_writing_the_arrays(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    fnn.io.save(path, version(0))
    child = Child(path, "pause", first=1)
    child.wait_for("paused")
    child.kill()
    assert child.versions("start") == [1] and child.versions("done") == []
    assert check_checkpoint(path, range(1)) == 0
    strays = temp_files(path)
    assert len(strays) == 1
    assert 8_000_000 < strays[0].stat().st_size < path.stat().st_size
    with pytest.raises(FormatError, match="not a valid ZIP archive"):
        fnn.io.load(strays[0])  # a truncated archive, refused as such
    assert sorted(os.listdir(tmp_path)) == sorted([path.name, strays[0].name])


def test_kill_at_random_moments(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    fnn.io.save(path, version(0))
    rng = np.random.default_rng(20240607)
    done = 0
    for _ in range(3):
        child = Child(path, "loop", first=done + 1)
        child.wait_for(f"start {done + 2}")  # at least one save finished in this round
        time.sleep(float(rng.uniform(0.0, 0.08)))
        child.kill()
        started, finished = child.versions("start"), child.versions("done")
        assert finished  # the round replaced the checkpoint at least once
        v = check_checkpoint(path, range(finished[-1], started[-1] + 1))
        done = max(v, finished[-1])
        for stray in temp_files(path):
            assert stray.name.startswith(".ckpt.npz.") and stray.name.endswith(".tmp")
        assert {p.name for p in tmp_path.iterdir()} - {s.name for s in temp_files(path)} == {
            path.name
        }
