from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pytest

from fnn._atomic import write_atomic, write_bytes_atomic


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
