"""Atomic writes (fnn/_atomic.py): a file is replaced whole or not at all, temporaries of
killed writers are cleaned up, and a save killed at any moment leaves the previous
checkpoint whole and loadable."""

from __future__ import annotations

import errno
import os
import selectors
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pytest

import fnn
import fnn.io
from fnn._atomic import _writer, remove_stale_temporaries, write_atomic, write_bytes_atomic
from fnn.io import FormatError


def test_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    write_bytes_atomic(target, b"one")
    write_bytes_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def broken(f: BinaryIO) -> None:
        f.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_atomic(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_missing_directory_and_directory_target(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_bytes_atomic(tmp_path / "missing" / "f.bin", b"x")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        write_bytes_atomic(tmp_path, b"x")


def test_a_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    """Writing to a link (or a chain of links) replaces the file it points to, atomically
    in that file's directory; the links stay links."""
    real, links = tmp_path / "real", tmp_path / "links"
    real.mkdir()
    links.mkdir()
    (real / "a.npz").write_bytes(b"old")
    (links / "one.npz").symlink_to("../real/a.npz")
    (links / "two.npz").symlink_to("one.npz")
    for name, data in (("one.npz", b"first"), ("two.npz", b"second")):
        assert write_bytes_atomic(links / name, data) == links / name
        assert (links / name).is_symlink() and (links / "one.npz").is_symlink()
        assert (real / "a.npz").read_bytes() == data and not (real / "a.npz").is_symlink()
    assert sorted(p.name for p in links.iterdir()) == ["one.npz", "two.npz"]
    assert [p.name for p in real.iterdir()] == ["a.npz"]
    tree = {"w": np.arange(3.0)}
    fnn.io.save(links / "two.npz", tree)
    assert (links / "two.npz").is_symlink()
    assert fnn.tree.equal(fnn.io.load(real / "a.npz"), tree)


def test_a_dangling_symlink_makes_its_file_and_a_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "new.bin").symlink_to("made.bin")
    write_bytes_atomic(tmp_path / "new.bin", b"x")
    assert (tmp_path / "new.bin").is_symlink() and (tmp_path / "made.bin").read_bytes() == b"x"
    (tmp_path / "nowhere.bin").symlink_to("missing/f.bin")
    with pytest.raises(FileNotFoundError, match=r"cannot write .*nowhere\.bin: the directory"):
        write_bytes_atomic(tmp_path / "nowhere.bin", b"x")
    (tmp_path / "dir.bin").symlink_to(".")
    with pytest.raises(IsADirectoryError, match=r"cannot write .*dir\.bin: it is a directory"):
        write_bytes_atomic(tmp_path / "dir.bin", b"x")
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    with pytest.raises(OSError, match="loop of symlinks") as e:
        write_bytes_atomic(tmp_path / "loop1", b"x")
    assert e.value.errno == errno.ELOOP and e.value.filename == str(tmp_path / "loop1")
    assert (tmp_path / "loop1").is_symlink() and (tmp_path / "loop2").is_symlink()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["dir.bin", "loop1", "loop2", "made.bin", "new.bin", "nowhere.bin"]


def test_a_symlink_to_a_fifo_is_refused_and_the_fifo_kept(tmp_path: Path) -> None:
    """Following a link to a FIFO (or a device: /dev/null as root) replaced it with a
    regular file."""
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link.npz").symlink_to("pipe")
    with pytest.raises(OSError, match="which is not a regular file") as e:
        write_bytes_atomic(tmp_path / "link.npz", b"x")
    assert e.value.errno == errno.EINVAL
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.npz", "pipe"]


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, check=True, text=True)  # fmt: skip
    return int(child.stdout)


def test_the_next_write_removes_the_temporaries_of_killed_writers_only(tmp_path: Path) -> None:
    target = tmp_path / "last.npz"
    target.write_bytes(b"old")
    host = _writer().rsplit("-", 1)[0]
    gone = dead_pid()
    stale = tmp_path / f".last.npz.{host}-{gone}.k3j_x9a1.tmp"
    stale.write_bytes(b"half a checkpoint")
    live = tmp_path / f".last.npz.{host}-{os.getppid()}.abc12345.tmp"  # a running writer's
    live.write_bytes(b"being written")
    elsewhere = tmp_path / f".last.npz.otherhost-{gone}.abc12345.tmp"  # another host's
    elsewhere.write_bytes(b"being written over NFS")
    other = tmp_path / f".best.npz.{host}-{gone}.abc12345.tmp"  # another file's temporary
    other.write_bytes(b"not ours")
    lookalike = tmp_path / f".last.npz.{host}-{gone}.zz.tmp"
    lookalike.symlink_to(target)  # a symlink is never removed
    unrelated = tmp_path / f".last.npz.{host}-{gone}.tmp.keep"
    unrelated.write_bytes(b"a user's file")

    write_bytes_atomic(target, b"new")

    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (target, live, elsewhere, other, lookalike, unrelated)
    )
    assert remove_stale_temporaries(tmp_path / "best.npz") == [other]
    assert remove_stale_temporaries(tmp_path / "nowhere" / "x.npz") == []


def test_a_temporary_that_cannot_be_removed_does_not_stop_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.bin"
    stale = tmp_path / f".f.bin.{_writer().rsplit('-', 1)[0]}-{dead_pid()}.abc.tmp"
    stale.write_bytes(b"another user's, in a sticky directory")
    real_unlink = os.unlink

    def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path) == stale:
            raise PermissionError(1, "Operation not permitted", str(path))
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", refuse)
    write_bytes_atomic(target, b"written")
    assert target.read_bytes() == b"written" and stale.exists()


def test_temporaries_name_their_writer(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    seen: list[str] = []

    def look(f: BinaryIO) -> None:
        seen.extend(p.name for p in tmp_path.iterdir())

    write_atomic(target, look)
    assert len(seen) == 1 and seen[0].startswith(f".f.bin.{_writer()}.")
    assert _writer().endswith(f"-{os.getpid()}")


# -- a save killed at any moment --------------------------------------------------------------
#
# A child process saves a ~24 MB tree over a checkpoint again and again; the parent
# SIGKILLs it. One round stops the child at a known point in the middle of writing the
# arrays (so a truncated temporary file is certain to be left behind); the other rounds
# kill it after a random delay. Each time, the checkpoint must load and equal one of the
# versions written, and the stray temporary file must not be what ``load`` reads.

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
