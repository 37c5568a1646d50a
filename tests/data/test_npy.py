""".npy arrays read within a size limit (fnn/data/_npy.py): the header first, then one
buffer; objects, strings and bad headers are DataErrors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from fnn import data
from fnn.data import DataError
from tests.support.files import LINUX, refused_in_child


def npy_bytes(shape: tuple[int, ...], dtype: str = "|u1", payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


@pytest.mark.skipif(not LINUX, reason="RLIMIT_AS as on Linux")
def test_a_npy_header_declaring_313_gb_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    path.write_bytes(npy_bytes((400_000_000, 28, 28)))
    found = refused_in_child("fnn.data.read_images", path)
    assert found.startswith("DataError"), found
    assert "313600000000 bytes of data, more than max_bytes=1073741824" in found


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (npy_bytes((5, 28, 28), payload=bytes(100)), "truncated: the .npy header declares"),
        (npy_bytes((1, 28, 28), payload=bytes(785)), "trailing data"),
        (npy_bytes((1, 2), "|O"), "never Python objects"),
        (npy_bytes((1, 2), "<U3"), "expected numbers"),
        (b"\x93NUMPY\x09\x00" + bytes(20), "version (9, 0) is not supported"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}    ", "malformed .npy header"),
    ],
)
def test_bad_npy_files_are_data_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.npy"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"bad\.npy") as info:
        data.read_images(path)
    assert message in str(info.value)
