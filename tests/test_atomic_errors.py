"""fnn/_atomic.py: what a write that the file system refuses leaves behind, and says.

A full disk, an exceeded quota, a file-size limit or an I/O error names no file when the
OS raises it from ``write`` or ``fsync``; ``write_atomic`` re-raises it naming the file
being written, with the same errno, and removes its temporary file.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from fnn._atomic import write_atomic, write_bytes_atomic

LINUX = sys.platform.startswith("linux")


def only_the_old_file(directory: Path, target: Path) -> None:
    assert [p.name for p in directory.iterdir()] == [target.name]
    assert target.read_bytes() == b"old"


@pytest.mark.parametrize(
    "code",
    [errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)],
)
def test_a_refused_write_names_the_file_and_leaves_no_temporary(tmp_path: Path, code: int) -> None:
    target = tmp_path / "model.npz"
    target.write_bytes(b"old")

    def full(f: BinaryIO) -> None:
        f.write(b"the first part fits")
        raise OSError(code, os.strerror(code))

    with pytest.raises(OSError, match=os.strerror(code)) as info:
        write_atomic(target, full)
    assert info.value.errno == code and info.value.filename == str(target)
    assert str(info.value) == f"[Errno {code}] {os.strerror(code)}: {str(target)!r}"
    only_the_old_file(tmp_path, target)


def test_a_failing_fsync_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "run.json"
    target.write_bytes(b"old")

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match=r"Input/output error: '.*run\.json'") as info:
        write_bytes_atomic(target, b"new")
    assert info.value.errno == errno.EIO
    monkeypatch.undo()
    only_the_old_file(tmp_path, target)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        PermissionError(errno.EACCES, "Permission denied", "/elsewhere/source.bin"),
        OSError(errno.EIO, "Input/output error", "/elsewhere/source.bin"),
        OSError("a download's error, with no errno"),
    ],
)
def test_other_errors_of_the_writer_pass_unchanged(tmp_path: Path, error: OSError) -> None:
    """Only the file system's refusals name the file written: a download's network error
    or an error about another file is the writer's own, raised as it came."""
    target = tmp_path / "data.gz"
    target.write_bytes(b"old")

    def fails(f: BinaryIO) -> None:
        raise error

    with pytest.raises(type(error), match=str(error.args[-1])) as info:
        write_atomic(target, fails)
    assert info.value is error
    only_the_old_file(tmp_path, target)


def test_a_temporary_that_cannot_be_made_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of inodes (or a read-only file system), ``mkstemp`` fails naming the
    temporary it tried: the error names the file being written instead."""

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".f.bin.x.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(OSError, match=r"No space left on device: '.*/f\.bin'$") as info:
        write_bytes_atomic(tmp_path / "f.bin", b"x")
    assert info.value.errno == errno.ENOSPC


def run_child(script: str, *args: str, prefix: tuple[str, ...] = ()) -> str:
    child = subprocess.run(
        [*prefix, sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    return child.stdout


WRITE = """
    import os, sys
    from fnn._atomic import write_bytes_atomic
    target = sys.argv[1]
    try:
        write_bytes_atomic(target, b"x" * 1_000_000)
    except OSError as e:
        print(e.errno, e.filename == target, repr(str(e)))
    print(sorted(os.listdir(os.path.dirname(target))))
"""


@pytest.mark.skipif(not LINUX, reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_a_real_file_size_limit_names_the_file(tmp_path: Path) -> None:
    """``ulimit -f``: the kernel refuses the write past the limit with EFBIG."""
    script = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n" + textwrap.dedent(WRITE)
    )
    target = tmp_path / "model.npz"
    target.write_bytes(b"old")
    lines = run_child(script, str(target)).splitlines()
    assert lines[0].startswith(f"{errno.EFBIG} True "), lines
    assert "File too large" in lines[0] and "model.npz" in lines[0]
    assert lines[1] == "['model.npz']"
    assert target.read_bytes() == b"old"


@pytest.mark.skipif(not LINUX or shutil.which("unshare") is None, reason="needs unshare")
def test_a_real_full_file_system_names_the_file(tmp_path: Path) -> None:
    """A 64 KiB tmpfs, mounted in a user and mount namespace of a child process (skipped
    where user namespaces are not allowed): the kernel refuses the write with ENOSPC."""
    mount = tmp_path / "small"
    mount.mkdir()
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"no user namespaces here: {probe.stderr.decode(errors='replace')}")
    script = (
        "import subprocess, sys\n"
        "subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', sys.argv[2]],"
        " check=True)\n" + textwrap.dedent(WRITE)
    )
    target = mount / "model.npz"
    prefix = ("unshare", "--user", "--map-root-user", "--mount")
    lines = run_child(script, str(target), str(mount), prefix=prefix).splitlines()
    assert lines[0].startswith(f"{errno.ENOSPC} True "), lines
    assert "No space left on device" in lines[0] and "model.npz" in lines[0]
    assert lines[1] == "[]"


def test_a_temporary_that_cannot_be_removed_does_not_hide_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removing the temporary is best effort: the error the caller sees is the write's."""
    target = tmp_path / "f.bin"

    def full(f: BinaryIO) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(OSError, match="No space left on device") as info:
        write_atomic(target, full)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
