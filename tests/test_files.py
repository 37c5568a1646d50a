"""Regular files only (fnn/_files.py): every reader refuses a FIFO, /dev/zero and a
directory at once, and reads a growing file only to its size at open."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import fnn
import fnn.io
from fnn import data
from fnn.data import DataError
from tests.support.files import LINUX, NPY_NAMES, refused_in_child


def special_file(tmp_path: Path, which: str, name: str) -> Path:
    """A FIFO, or a symlink to ``/dev/zero``, at ``tmp_path / name``."""
    path = tmp_path / name
    if which == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    return path


SPECIAL = [("fifo", "a FIFO (named pipe)"), ("zero", "a character device")]


@pytest.mark.skipif(not LINUX, reason="FIFOs and /dev/zero as on Linux")
@pytest.mark.parametrize(("which", "what"), SPECIAL)
@pytest.mark.parametrize(
    ("function", "error"),
    [
        ("fnn.io.load", "FormatError"),
        ("fnn.io.load_model", "FormatError"),
        ("fnn.io.load_metadata", "FormatError"),
        ("fnn.data.read_idx", "DataError"),
        ("fnn.data.read_images", "DataError"),
        ("fnn.data.load_directory", "DataError"),
    ],
)
def test_a_fifo_or_dev_zero_is_refused_at_once(
    tmp_path: Path, which: str, what: str, function: str, error: str
) -> None:
    if function.endswith("load_directory"):
        for name in NPY_NAMES[1:]:
            np.save(tmp_path / name, np.zeros(1, np.uint8))
        special_file(tmp_path, which, NPY_NAMES[0])
        path = tmp_path
    else:
        path = special_file(tmp_path, which, "model.npz")
    found = refused_in_child(function, path)
    assert found.startswith(error), found
    assert what in found and "expected a regular file" in found, found
    if which == "zero":
        assert "a link to /dev/zero" in found


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a directory"):  # as open() says it
        fnn.io.load(tmp_path)
    with pytest.raises(DataError, match="is a directory; expected a regular file"):
        data.read_idx(tmp_path)
    with pytest.raises(DataError, match="is a directory; expected a regular file"):
        data.read_images(tmp_path)


def test_a_growing_file_is_read_only_to_its_size_at_open(tmp_path: Path) -> None:
    from fnn import _files

    path = tmp_path / "grows"
    path.write_bytes(b"abc")
    with _files.open_regular(path, DataError) as file:
        with path.open("ab") as more:
            more.write(b"def")
        assert file.read() == b"abc"
        assert file.seek(0, os.SEEK_END) == 3
