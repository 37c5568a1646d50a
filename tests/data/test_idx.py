from __future__ import annotations

import gzip
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fnn import data
from fnn.data import DataError, read_idx, write_idx
from fnn.data._idx import read_idx_digest
from tests.support.files import LINUX, guarded, idx_header

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def idx_bytes(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file built by hand: magic, big-endian sizes, payload."""
    dims = b"".join(d.to_bytes(4, "big") for d in shape)
    return bytes([0, 0, code, len(shape)]) + dims + payload


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compress", [False, True])
def test_roundtrip_every_dtype(tmp_path: Path, dtype: Any, compress: bool) -> None:
    a = (np.arange(24).reshape(2, 3, 4) * 7 - 50).astype(dtype)
    path = write_idx(tmp_path / "a.idx", a, compress=compress)
    assert path == tmp_path / "a.idx"
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    assert b.shape == a.shape
    np.testing.assert_array_equal(a, b)
    assert not b.flags.writeable
    np.testing.assert_array_equal(read_idx(path.read_bytes()), a)  # bytes source


def test_big_endian_bytes_on_disk_and_any_input_byte_order(tmp_path: Path) -> None:
    expected = idx_bytes(0x0B, (2,), b"\x00\x01\xff\xfe")
    for a in (np.array([1, -2], "<i2"), np.array([1, -2], ">i2")):
        assert write_idx(tmp_path / "s.idx", a).read_bytes() == expected
    f = read_idx(idx_bytes(0x0D, (1,), b"\x3f\x80\x00\x00"))
    assert f.dtype == np.float32 and f.dtype.isnative and f[0] == 1.0


def test_shapes_one_dim_empty_and_non_contiguous(tmp_path: Path) -> None:
    for a in (
        np.arange(5, dtype=np.uint8),
        np.zeros((0, 28, 28), np.uint8),
        np.arange(12, dtype=np.int32).reshape(3, 4).T,
    ):
        for compress in (False, True):
            b = read_idx(write_idx(tmp_path / "x", a, compress=compress))
            assert b.shape == a.shape
            np.testing.assert_array_equal(a, b)


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    a = np.arange(6, dtype=np.uint8)
    write_idx(tmp_path / "packed.idx", a, compress=True)
    write_idx(tmp_path / "plain.gz", a, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed.idx"), a)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "plain.gz")), a)


def test_compressed_output_is_deterministic_and_atomic(tmp_path: Path) -> None:
    a = np.arange(100, dtype=np.float64)
    one = write_idx(tmp_path / "a.gz", a, compress=True).read_bytes()
    assert one[3] == 0 and one[4:8] == bytes(4)  # no name and no timestamp in the header
    two = write_idx(tmp_path / "a.gz", a, compress=True).read_bytes()
    assert one == two
    assert [p.name for p in tmp_path.iterdir()] == ["a.gz"]  # no temporary file left


def test_digest_is_sha256_of_the_decompressed_file() -> None:
    import hashlib

    raw = idx_bytes(0x08, (3,), b"\x01\x02\x03")
    for source in (raw, gz(raw)):
        array, digest = read_idx_digest(source)
        assert digest == hashlib.sha256(raw).hexdigest()
        assert array.tolist() == [1, 2, 3]


GOOD = idx_bytes(0x08, (2, 3), bytes(range(6)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"\x00\x00\x08", "truncated header: 3 bytes"),
        (b"\x01\x00\x08\x01" + bytes(8), "bad magic 01 00 08 01"),
        (b"PK\x03\x04" + bytes(8), "not an IDX file"),
        (idx_bytes(0x0A, (1,), b"\x00"), "unknown IDX type code 0x0A"),
        (b"\x00\x00\x08\x00", "declares 0 dimensions"),
        (bytes([0, 0, 8, 33]) + bytes(4 * 33), "declares 33 dimensions"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x02\x00", "truncated header: 2 dimensions need 8"),
        (GOOD[:-1], "truncated: shape (2, 3) of uint8 needs 6 bytes of data after the header"),
        (GOOD + b"\x00", "trailing data: more than the 6 bytes"),
        (idx_bytes(0x0E, (2**32 - 1,) * 4, b""), "more than max_bytes"),
        (gz(GOOD)[:-4], "corrupt gzip stream"),
        (gz(GOOD)[:-8] + b"\x00\x00\x00\x00" + gz(GOOD)[-4:], "corrupt gzip stream"),
        (gz(GOOD) + b"junk", "corrupt gzip stream"),
        (gz(GOOD)[:12], "corrupt gzip stream"),
        (gz(GOOD[:-1]), "truncated: shape (2, 3)"),
        (gz(GOOD + b"\x00" * 1000), "trailing data"),
        (gz(b""), "truncated header: 0 bytes"),
        (b"\x1f\x8b", "corrupt gzip stream"),
    ],
)
def test_bad_files_raise_value_error_naming_the_file(
    tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "bad-file.idx"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"bad-file\.idx") as info:
        read_idx(path)
    assert message in str(info.value)
    with pytest.raises(ValueError, match="<bytes>"):
        read_idx(data)


def test_max_bytes_bounds_the_payload() -> None:
    data = idx_bytes(0x0C, (10,), bytes(40))
    assert read_idx(data, max_bytes=40).shape == (10,)
    with pytest.raises(ValueError, match="40 bytes of data, more than max_bytes=39"):
        read_idx(data, max_bytes=39)
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        read_idx(data, max_bytes=-1)
    with pytest.raises(TypeError, match="max_bytes must be an int"):
        read_idx(data, max_bytes=1.5)  # type: ignore[arg-type]


def test_a_gzip_bomb_is_cut_off_after_one_extra_byte() -> None:
    # 1 GiB of zeros in 1024 gzip members (about 1 MB compressed) behind a header that
    # declares 10 bytes: the reader must stop at byte 11, not inflate the gigabyte.
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    bomb = gz(idx_bytes(0x08, (10,), bytes(10))) + zeros * 1024
    start = time.perf_counter()
    with pytest.raises(ValueError, match="trailing data"):
        read_idx(bomb)
    assert time.perf_counter() - start < 0.5


def test_missing_file_and_bad_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"IDX file .*nope\.idx does not exist"):
        read_idx(tmp_path / "nope.idx")
    with pytest.raises(TypeError, match="read_idx needs a path or bytes, got int"):
        read_idx(3)  # type: ignore[arg-type]


def test_write_rejects_what_idx_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="needs a NumPy array, got list"):
        write_idx(tmp_path / "x", [1, 2])  # type: ignore[arg-type]
    for bad in (np.zeros(2, np.int64), np.zeros(2, bool), np.zeros(2, np.uint16)):
        with pytest.raises(TypeError, match="IDX files hold uint8, int8, int16, int32"):
            write_idx(tmp_path / "x", bad)
    with pytest.raises(ValueError, match="1 to 32 dimensions, got shape"):
        write_idx(tmp_path / "x", np.array(3, np.uint8))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_idx(tmp_path / "no" / "x", np.zeros(2, np.uint8))
    assert list(tmp_path.iterdir()) == []


def valid_samples() -> list[bytes]:
    rng = np.random.default_rng(0)
    samples = []
    for code, dtype in [(0x08, ">u1"), (0x0B, ">i2"), (0x0D, ">f4"), (0x0E, ">f8")]:
        for shape in [(3,), (2, 2), (2, 1, 3)]:
            a = rng.integers(0, 100, size=shape).astype(dtype)
            raw = idx_bytes(code, shape, a.tobytes())
            samples += [raw, gz(raw)]
    return samples


def assert_only_documented_errors(data: bytes) -> None:
    """``read_idx`` either returns a read-only array or raises a ValueError naming the source."""
    error: ValueError | None = None
    try:
        out = read_idx(data, max_bytes=1 << 16)
    except ValueError as e:
        error = e
    if error is not None:
        assert str(error).startswith("<bytes>: ")
    else:
        assert isinstance(out, np.ndarray) and not out.flags.writeable


def test_fuzz_byte_mutations_give_arrays_or_value_errors() -> None:
    rng = random.Random(1234)
    samples = valid_samples()
    for _ in range(3000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            if op == 0 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op == 1 and data:
                del data[rng.randrange(len(data)) :]
            elif op == 2:
                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif data:
                i = rng.randrange(len(data))
                data[i] ^= 1 << rng.randrange(8)
        assert_only_documented_errors(bytes(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    assert_only_documented_errors(data)
    assert_only_documented_errors(b"\x00\x00" + data)
    assert_only_documented_errors(gz(b"\x00\x00" + data))


# -- hostile files: the header first, one buffer ----------------------------------------------


@pytest.mark.skipif(not LINUX, reason="sparse files and RLIMIT_AS as on Linux")
def test_a_sparse_6_gib_idx_file_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "huge.idx"
    size = 6 << 30
    with path.open("wb") as f:
        f.write(idx_header(0x08, (6, 1 << 30)))
        f.truncate(12 + size)  # sparse: no disk used
    code = """
        import sys
        from fnn.data import read_idx
        try:
            read_idx(sys.argv[1], max_bytes=int(sys.argv[2]))
        except ValueError as e:
            print(type(e).__name__, e)
    """
    found = guarded(code, str(path), str(1 << 30), timeout=30)
    assert found.startswith("DataError") and "more than max_bytes=1073741824" in found
    path.write_bytes(idx_header(0x08, (7, 1 << 30)))  # 7 GiB declared, 6 GiB there
    with path.open("r+b") as f:
        f.truncate(12 + size)
    found = guarded(code, str(path), str(8 << 30), timeout=30)
    assert "truncated: shape (7, 1073741824) of uint8 needs 7516192768 bytes" in found
    assert found.endswith("got 6442450944\n")


def gzip_bomb(path: Path, images: int) -> int:
    """A valid gzip IDX of ``images`` zero images of 28x28 (1 MiB members); its data size."""
    member = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    size = images * 784
    assert size % (1 << 20) == 0
    with path.open("wb") as f:
        f.write(gzip.compress(idx_header(0x08, (images, 28, 28)), mtime=0))
        for _ in range(size >> 20):
            f.write(member)
    return size


@pytest.mark.skipif(not LINUX, reason="ru_maxrss in KiB as on Linux")
def test_a_gzip_idx_is_inflated_into_one_buffer(tmp_path: Path) -> None:
    path = tmp_path / "bomb.idx.gz"
    declared = gzip_bomb(path, 1 << 18)  # 196 MiB of data from about 200 KB
    assert path.stat().st_size < 1 << 20
    code = """
        import resource, sys
        from fnn.data import read_idx
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        array = read_idx(sys.argv[1])
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(array.shape, array.nbytes, (after - before) * 1024)
    """
    shape, nbytes, grown = guarded(code, str(path)).rsplit(" ", 2)
    assert shape == "(262144, 28, 28)" and int(nbytes) == declared
    assert int(grown) < declared + (80 << 20)  # one buffer and a few 16 MiB chunks


def test_a_gzip_idx_declaring_more_than_max_bytes_is_refused_unread() -> None:
    bomb = gzip.compress(idx_header(0x08, (1000, 28, 28)), mtime=0) + b"\x00" * 10
    with pytest.raises(DataError, match="784000 bytes of data, more than max_bytes=1000"):
        data.read_idx(bomb, max_bytes=1000)


def test_big_endian_idx_is_swapped_in_place_and_read_only(tmp_path: Path) -> None:
    values = np.arange(6, dtype=">i4").reshape(2, 3)
    data.write_idx(tmp_path / "a.idx.gz", values, compress=True)
    out = data.read_idx(tmp_path / "a.idx.gz")
    assert out.dtype == np.dtype("=i4") and not out.flags.writeable
    np.testing.assert_array_equal(out, values)
