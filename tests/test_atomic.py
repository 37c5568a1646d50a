from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from fnn._atomic import _writer, remove_stale_temporaries, write_atomic, write_bytes_atomic


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
