"""The ZIP container (fnn/io/_archive.py) against hostile files: not an fnn file, pickles,
member names, compressed and encrypted members, sizes, and .npy members.

Every test builds a file that a careless loader would trip on (a pickle payload, a path
traversal, a size bomb) and checks the error type and message. Where a file could have
side effects if it were trusted, the test also proves that they did not happen.
"""

from __future__ import annotations

import io
import re
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
import fnn.io
from fnn import random
from fnn.io import FormatError
from tests.io.io_files import (
    FLOAT_LEAF,
    Members,
    central_entry,
    description,
    npy,
    npy_raw,
    patch,
    refused,
    rezip,
    sample,
    single_leaf,
    with_description,
)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"PK\x03\x04" + b"\0" * 40, b"\x93NUMPY", np.arange(5).tobytes()],
)
def test_not_a_zip(tmp_path: Path, key: random.Key, data: bytes) -> None:
    refused(tmp_path, data, "is not an fnn file \\(not a valid ZIP archive\\)", sample(key))


def test_a_plain_npy_file(tmp_path: Path, key: random.Key) -> None:
    refused(tmp_path, npy(np.ones(3)), "not a valid ZIP archive", sample(key))


def test_a_plain_npz_file(tmp_path: Path, key: random.Key) -> None:
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    data = (tmp_path / "plain.npz").read_bytes()
    refused(tmp_path, data, "unexpected member 'a.npy'", sample(key))


def test_truncated(tmp_path: Path, key: random.Key, valid: Members) -> None:
    data = rezip(valid)
    for cut in (1, 30, len(data) // 3, len(data) // 2, len(data) - 23, len(data) - 1):
        refused(tmp_path, data[:cut], "is not an fnn file|truncated|Bad CRC", sample(key))


def test_corrupted_data_fails_the_crc(tmp_path: Path, key: random.Key, valid: Members) -> None:
    data = bytearray(rezip(valid))
    local = data.find(b"leaf_1.npy")  # the name in the member's local header
    data_start = data.index(b"\n", local) + 1  # past the name and the .npy header
    data[data_start + 3] ^= 0xFF
    path = tmp_path / "bad.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"Bad CRC-32 for file 'leaf_1\.npy'"):
        fnn.io.load(path)
    with pytest.raises(FormatError, match="Bad CRC-32"):
        fnn.io.load(path, like=sample(key))


def test_corrupted_description_fails_the_crc(tmp_path: Path, valid: Members) -> None:
    data = bytearray(rezip(valid))
    data[data.find(b'"format"') + 2] ^= 0x01
    path = tmp_path / "bad.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"fnn\.json cannot be read: Bad CRC-32"):
        fnn.io.load_metadata(path)


# -- pickles ----------------------------------------------------------------------------------


class _CreateFile:
    """Unpickling this object creates the file at ``path`` (``open(path, "w")``)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def pickle_payload(marker: Path) -> bytes:
    return npy(np.array([_CreateFile(str(marker)), None], dtype=object), allow_pickle=True)


def test_the_pickle_payload_is_live(tmp_path: Path) -> None:
    """The payload used below does create its file when unpickled: the test is real."""
    marker = tmp_path / "proof"
    loaded = np.load(io.BytesIO(pickle_payload(marker)), allow_pickle=True)
    loaded[0].close()
    assert marker.exists()


@pytest.mark.parametrize(
    ("leaf", "message"),
    [
        ({**FLOAT_LEAF, "dtype": "|O", "shape": [2]}, "'dtype' must be a bool, integer, float"),
        ({**FLOAT_LEAF, "dtype": "|O8", "shape": [2]}, "'dtype' must be a bool, integer, float"),
        ({**FLOAT_LEAF, "shape": [2]}, "the .npy header declares dtype\\('O'\\) \\(2,\\)"),
        ({**FLOAT_LEAF, "shape": [10**6]}, "member leaf_0.npy holds \\d+ bytes, but a float64"),
    ],
)
def test_pickled_object_arrays_never_unpickle(
    tmp_path: Path, leaf: dict[str, Any], message: str
) -> None:
    marker = tmp_path / "created-by-pickle"
    data = single_leaf(leaf, pickle_payload(marker))
    refused(tmp_path, data, message, template=np.ones(leaf["shape"]), deep=True)
    assert not marker.exists()


def test_pickle_header_with_matching_size(tmp_path: Path) -> None:
    """An object header whose member has exactly the size of the described float data."""
    marker = tmp_path / "created-by-pickle"
    payload = pickle_payload(marker)
    data = payload[10 + len(payload[10:].split(b"\n")[0]) + 1 :]  # the pickle bytes
    padded = data + b"\0" * (-len(data) % 8)
    member = npy_raw("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", padded)
    leaf = {**FLOAT_LEAF, "shape": [len(padded) // 8]}
    refused(
        tmp_path, single_leaf(leaf, member), "the .npy header declares dtype\\('O'\\)", deep=True
    )
    assert not marker.exists()


# -- member names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../evil.npy",
        "../../tmp/evil.npy",
        "/tmp/evil.npy",
        "leaf_0.npy/../../evil.npy",
        "sub/leaf_0.npy",
        "C:\\evil.npy",
        "leaf_01.npy",
        "leaf_-1.npy",
        "fnn.json/",
        "LEAF_0.NPY",
    ],
)
def test_unexpected_member_names(
    tmp_path: Path, key: random.Key, valid: Members, name: str
) -> None:
    refused(tmp_path, rezip([*valid, (name, npy(np.ones(2)))]), "unexpected member", sample(key))
    assert not (tmp_path.parent / "evil.npy").exists()
    assert not Path("/tmp/evil.npy").exists()


def test_null_byte_in_a_member_name(tmp_path: Path, key: random.Key, valid: Members) -> None:
    """zipfile cuts a name at a NUL byte; the reader refuses such names whole."""
    parts = [("leaf_0.npyX../evil" if n == "leaf_0.npy" else n, d) for n, d in valid]
    data = rezip(parts).replace(b"leaf_0.npyX../evil", b"leaf_0.npy\0../evil")
    refused(tmp_path, data, "unexpected member 'leaf_0.npy\\\\x00../evil'", sample(key))


@pytest.mark.parametrize("name", ["fnn.json", "leaf_0.npy"])
def test_duplicate_members(tmp_path: Path, key: random.Key, valid: Members, name: str) -> None:
    extra = (name, dict(valid)[name])
    refused(
        tmp_path, rezip([*valid, extra]), f"holds the member {name} more than once", sample(key)
    )
    refused(tmp_path, rezip([extra, *valid]), "more than once", sample(key))


def test_missing_and_extra_members(tmp_path: Path, key: random.Key, valid: Members) -> None:
    without = [(n, d) for n, d in valid if n != "leaf_2.npy"]
    refused(tmp_path, rezip(without), re.escape("misses the member(s) ['leaf_2.npy']"), sample(key))
    extra = [*valid, ("leaf_99.npy", npy(np.ones(2)))]
    refused(tmp_path, rezip(extra), re.escape("unexpected member(s) ['leaf_99.npy']"), sample(key))
    no_json = [(n, d) for n, d in valid if n != "fnn.json"]
    refused(tmp_path, rezip(no_json), "the archive has no fnn.json", sample(key))


def test_compressed_members(tmp_path: Path, key: random.Key, valid: Members) -> None:
    """Deflated members (the stuff of zip bombs) are refused before they are inflated."""
    refused(
        tmp_path, rezip(valid, zipfile.ZIP_DEFLATED), "is compressed \\(method 8\\)", sample(key)
    )
    bomb = [*valid[:1], ("leaf_0.npy", b"\0" * 10_000_000), *valid[2:]]
    tracemalloc.start()
    try:
        refused(tmp_path, rezip(bomb, zipfile.ZIP_DEFLATED), "is compressed", sample(key))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_encrypted_member(tmp_path: Path, key: random.Key, valid: Members) -> None:
    data = rezip(valid)
    entry = central_entry(data, "leaf_0.npy")
    refused(
        tmp_path, patch(data, entry + 8, "<H", 1), "member leaf_0.npy is encrypted", sample(key)
    )


# -- sizes ------------------------------------------------------------------------------------


def test_member_claiming_gigabytes(tmp_path: Path, key: random.Key, valid: Members) -> None:
    data = rezip(valid)
    entry = central_entry(data, "leaf_1.npy")
    huge = patch(data, entry + 20, "<II", 0xF000_0000, 0xF000_0000)  # compressed, uncompressed
    tracemalloc.start()
    try:
        refused(tmp_path, huge, "member leaf_1.npy claims 4026531840 bytes .* past the end of")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    one_size = patch(data, entry + 24, "<I", 0xF000_0000)  # uncompressed size alone
    refused(tmp_path, one_size, "member leaf_1.npy is compressed", sample(key))


def test_members_claiming_more_than_the_file_in_all(tmp_path: Path, valid: Members) -> None:
    data = rezip(valid)
    total = len(data)
    for name in ("leaf_0.npy", "leaf_1.npy", "leaf_2.npy"):
        entry = central_entry(data, name)
        data = patch(data, entry + 20, "<II", total // 2, total // 2)
        data = patch(data, entry + 42, "<I", 0)  # every member at offset 0
    refused(tmp_path, data, "the members claim \\d+ bytes in all, more than the")


def test_npy_shape_claiming_more_than_the_member_holds(tmp_path: Path) -> None:
    """Description and header agree on a 8 GB array; the member holds 80 bytes."""
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }"
    member = npy_raw(header, np.ones(10).tobytes())
    leaf = {**FLOAT_LEAF, "shape": [10**9]}
    tracemalloc.start()
    try:
        refused(
            tmp_path,
            single_leaf(leaf, member),
            "member leaf_0.npy holds \\d+ bytes, but a float64 \\(1000000000,\\) leaf takes "
            "8000000000 bytes",
            template=np.ones(10),  # the sizes are refused before any template is compared
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_npy_header_disagreeing_with_the_description(tmp_path: Path) -> None:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }"
    member = npy_raw(header, np.ones(10).tobytes())
    refused(
        tmp_path,
        single_leaf(FLOAT_LEAF, member),
        re.escape(
            "the .npy header declares dtype('float64') (1000000000,), the description float64 (10,)"
        ),
        deep=True,
    )
    swapped = npy_raw("{'descr': '>f8', 'fortran_order': False, 'shape': (10,), }", bytes(80))
    refused(
        tmp_path,
        single_leaf(FLOAT_LEAF, swapped),
        "the .npy header declares dtype\\('>f8'\\)",
        deep=True,
    )


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (b"\x93NUMPX\x01\x00" + bytes(200), "the magic string is not correct"),
        (b"\x93NUMPY\x03\x00" + bytes(200), "\\.npy version \\(3, 0\\) is not supported"),
        (b"\x93NUMPY\x02\x00\xf0\xff\xff\xff" + bytes(200), "a \\.npy header of 4294967280 bytes"),
        (npy_raw("{'descr': '<f8'}", bytes(80)), "Header does not contain the correct keys"),
        (npy_raw("[1, 2, 3]" + " " * 60, bytes(80)), "Header is not a dictionary"),
        (npy_raw("__import__('os').system('echo hacked')", bytes(80)), "malformed node or string"),
        (
            npy_raw(
                "{'descr': [('a', '<f8', (4611686018427387904,))], 'fortran_order': False, "
                "'shape': (10,)}",
                bytes(80),
            ),
            "does not fit into a C int|descr is not a valid dtype descriptor",
        ),
        (
            npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (10,), }", bytes(79)),
            "holds 79 bytes of data, but float64 \\(10,\\) takes 80",
        ),
        (
            npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (10,), }", b""),
            "holds \\d+ bytes, but a float64 \\(10,\\) leaf takes 80 bytes",
        ),
        (
            npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (10,), }", bytes(81)),
            "holds 81 bytes of data, but float64 \\(10,\\) takes 80",
        ),
    ],
)
def test_bad_npy_members(tmp_path: Path, member: bytes, message: str) -> None:
    refused(tmp_path, single_leaf(FLOAT_LEAF, member), message, template=np.ones(10), deep=True)


def test_fortran_order_members_are_read_in_fortran_order(tmp_path: Path) -> None:
    """A hand-made Fortran-order member (np.save writes those) is valid and read right."""
    arr = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    leaf = {**FLOAT_LEAF, "shape": [2, 3]}
    path = tmp_path / "f.npz"
    path.write_bytes(single_leaf(leaf, npy(arr)))
    assert np.array_equal(fnn.io.load(path), arr)


def test_description_too_large(tmp_path: Path, valid: Members) -> None:
    desc = description(valid)
    desc["metadata"] = {"padding": "x" * (16 * 2**20)}
    refused(tmp_path, rezip(with_description(valid, desc)), "fnn.json takes \\d+ bytes, more than")


def test_an_array_numpy_cannot_make_is_a_format_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever passes the description's checks, an error rebuilding a leaf's array (here
    NumPy's "array is too big", past a bound raised for the test) names the file and leaf."""
    monkeypatch.setattr(fnn.io._tree_json, "MAX_LEAF_SPAN", 2**70)
    shape = (0, 2**62)
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}"
    leaf = {**FLOAT_LEAF, "shape": list(shape)}
    refused(
        tmp_path,
        single_leaf(leaf, npy_raw(header, b"")),
        "bad.npz: member leaf_0.npy: array is too big",
        deep=True,
    )
