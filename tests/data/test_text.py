from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

import fnn
from fnn import data
from fnn.data import Text, TextSpec
from tests.support.files import LINUX, refused_in_child
from tests.support.web import Serve

SHAKESPEARE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tinyshakespeare.txt"
"""The real Tiny Shakespeare, in ``../shared/data`` beside the repository (as CI lays it
out)."""

needs_shakespeare = pytest.mark.skipif(
    not SHAKESPEARE.is_file(), reason=f"needs Tiny Shakespeare at {SHAKESPEARE}"
)

pytestmark = pytest.mark.usefixtures("isolated_env")

SMALL = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def spec_of(content: bytes, **changes: Any) -> TextSpec:
    """A known text called ``small`` whose file is ``small.txt`` with ``content``."""
    return attrs.evolve(
        TextSpec("small", "small.txt", sha256(content), remote="input.txt"), **changes
    )


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# --- the real text ---------------------------------------------------------------------


@needs_shakespeare
def test_the_real_tiny_shakespeare_is_encoded_as_nanogpt_does() -> None:
    text = data.load_text(SHAKESPEARE)
    raw = SHAKESPEARE.read_text(encoding="utf-8")
    assert len(raw) == 1_115_394 and len(text.ids) == 1_115_394
    assert text.vocab_size == 65 and text.chars == "".join(sorted(set(raw)))
    assert text.sha256 == data.TINY_SHAKESPEARE.sha256 == sha256(SHAKESPEARE.read_bytes())
    assert text.name == "tinyshakespeare" and text.path == SHAKESPEARE
    assert text.ids.dtype == np.int32 and not text.ids.flags.writeable
    stoi = {c: i for i, c in enumerate(sorted(set(raw)))}  # nanoGPT's prepare.py
    np.testing.assert_array_equal(text.ids, [stoi[c] for c in raw])
    assert text.decode(text.ids) == raw
    train, val = data.split_text(text.ids)
    assert (len(train), len(val)) == (1_003_854, 111_540)
    x, y = data.fixed_windows(val, 64)
    assert x.shape == y.shape == (1742, 64)


@needs_shakespeare
def test_the_real_text_is_found_by_name_and_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    here = SHAKESPEARE.parent
    text = data.load_text("tinyshakespeare", data_dir=here, download=False)
    assert text.path == here / "tinyshakespeare.txt" and text.name == "tinyshakespeare"
    monkeypatch.setenv("FNN_DATA", str(here))
    assert data.load_text("tinyshakespeare", download=False).path == here / "tinyshakespeare.txt"


@needs_shakespeare
def test_the_real_text_downloads_from_a_mirror(tmp_path: Path, serve: Serve) -> None:
    server = serve({"input.txt": SHAKESPEARE.read_bytes()}, "char-rnn")
    text = data.load_text("tinyshakespeare", mirrors=[server.url])
    cached = tmp_path / "xdg" / "fnn" / "tinyshakespeare" / "tinyshakespeare.txt"
    assert text.path == cached and text.sha256 == data.TINY_SHAKESPEARE.sha256
    assert server.requests == ["/files/input.txt"]


def test_the_known_text_is_char_rnn_tiny_shakespeare() -> None:
    spec = data.TINY_SHAKESPEARE
    assert spec.sha256 == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    assert [m + (spec.remote or "") for m in spec.mirrors] == [
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
    ]
    assert (spec.name, spec.file) == ("tinyshakespeare", "tinyshakespeare.txt")


# --- reading a file --------------------------------------------------------------------


def test_a_file_is_read_exactly(tmp_path: Path) -> None:
    content = "héllo\r\nwörld 🙂\n"
    path = write(tmp_path / "notes.txt", content.encode("utf-8"))
    text = data.load_text(str(path))
    assert text.chars == "".join(sorted(set(content))) == "\n\r dhlorwéö🙂"
    assert text.decode(text.ids) == content  # no newline translation
    assert text.ids.tolist() == [text.chars.index(c) for c in content]
    assert (text.name, text.path, text.sha256) == ("notes", path, sha256(path.read_bytes()))
    assert not text.ids.flags.writeable
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        text.chars = "ab"  # type: ignore[misc]
    bom = write(tmp_path / "bom.txt", b"\xef\xbb\xbf" + content.encode("utf-8"))
    with_bom = data.load_text(bom)
    assert with_bom.decode(with_bom.ids) == content and with_bom.chars == text.chars
    assert with_bom.sha256 == sha256(bom.read_bytes())  # of the file's bytes, mark included


def test_a_path_that_looks_like_a_name_is_read_as_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "tinyshakespeare", b"abab")
    assert data.load_text(Path("tinyshakespeare")).chars == "ab"  # a Path is always a path
    with pytest.raises(FileNotFoundError, match="tinyshakespeare not found"):
        data.load_text("tinyshakespeare", download=False)  # a known name is the known text


def test_files_that_cannot_be_used(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"text file {tmp_path / 'no.txt'} does not exist"):
        data.load_text(tmp_path / "no.txt")
    with pytest.raises(data.DataError, match="is a directory; expected a regular file"):
        data.load_text(tmp_path)
    if LINUX:
        os.mkfifo(tmp_path / "fifo")  # refused at once, never waited on
        with pytest.raises(data.DataError, match=r"is a FIFO \(named pipe\); expected a regular"):
            data.load_text(tmp_path / "fifo")
    for content, message in [
        (b"", "the text is empty; expected at least 2 characters"),
        (b"\xef\xbb\xbf", "the text is empty"),
        (b"aaaa", r"holds 1 distinct character \('a'\); expected at least 2"),
    ]:
        path = write(tmp_path / "bad.txt", content)
        with pytest.raises(data.DataError, match=message) as info:
            data.load_text(path)
        assert str(info.value).startswith(f"{path}: ")


def test_invalid_utf8_names_the_file_and_the_byte_offset(tmp_path: Path) -> None:
    for content, offset, byte, reason in [
        (b"hello\xffworld", 5, "ff", "invalid start byte"),
        (b"\xef\xbb\xbfab\x80", 5, "80", "invalid start byte"),  # counted from the file's start
        (b"abc" + "é".encode()[:1], 3, "c3", "unexpected end of data"),
        (b"ab\xe2\x28\xa1", 2, "e2", "invalid continuation byte"),
        ("a\udc80b".encode("utf-8", "surrogatepass"), 1, "ed", "invalid continuation byte"),
    ]:
        path = write(tmp_path / "latin.txt", content)
        with pytest.raises(data.DataError) as info:
            data.load_text(path)
        assert str(info.value) == (
            f"{path}: not UTF-8 text: byte 0x{byte} at byte offset {offset} ({reason}); save "
            "the file as UTF-8"
        )


def test_the_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path / "small.txt", SMALL.encode())
    size = len(SMALL.encode())
    assert data.load_text(path, max_bytes=size).decode(data.load_text(path).ids) == SMALL
    with pytest.raises(data.DataError, match=f"{size} bytes, more than max_bytes={size - 1}"):
        data.load_text(path, max_bytes=size - 1)
    with pytest.raises(TypeError, match="max_bytes must be an int, got float"):
        data.load_text(path, max_bytes=1e6)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_bytes must be >= 0, got -1"):
        data.load_text(path, max_bytes=-1)


@pytest.mark.skipif(not LINUX, reason="sparse files, /dev/zero and RLIMIT_AS as on Linux")
def test_a_huge_file_or_a_device_is_refused_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:  # sparse: 4 GiB would not fit in the child's 2 GiB
        f.truncate(4 << 30)
    found = refused_in_child("fnn.data.load_text", huge)
    assert found == (
        f"DataError {huge}: {4 << 30} bytes, more than max_bytes={1 << 26}; pass a larger "
        "max_bytes if the file is genuine"
    )
    found = refused_in_child("fnn.data.load_text", Path("/dev/zero"))
    assert found == "DataError /dev/zero is a character device; expected a regular file"


def test_arguments(tmp_path: Path) -> None:
    path = write(tmp_path / "small.txt", SMALL.encode())
    with pytest.raises(TypeError, match=r"a path or a known text's name \(tinyshakespeare\)"):
        data.load_text(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="data_dir and mirrors are for a known text's name"):
        data.load_text(path, data_dir=tmp_path, mirrors=["http://127.0.0.1/"])
    with pytest.raises(ValueError, match="cache_dir are for a known text's name"):
        data.load_text(path, cache_dir=tmp_path)
    spec = spec_of(SMALL.encode())
    with pytest.raises(TypeError, match="mirrors must be a list of base URLs"):
        data.load_text(spec, mirrors="http://127.0.0.1/")
    with pytest.raises(ValueError, match="http:// or https:// URL, got 'file:///etc/'"):
        data.load_text(spec, mirrors=["file:///etc/"])
    with pytest.raises(TypeError, match="download must be True or False"):
        data.load_text(spec, download=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be a positive, finite number"):
        data.load_text(spec, timeout=0)
    with pytest.raises(FileNotFoundError, match=r"data_dir .*nowhere is not a directory"):
        data.load_text(spec, data_dir=tmp_path / "nowhere")


# --- a known text: search, verification, download --------------------------------------


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    content = SMALL.encode()
    spec = spec_of(content, system_dirs=(str(tmp_path / "system"),))
    places = [
        tmp_path / "explicit" / "small",
        tmp_path / "explicit",
        tmp_path / "env" / "small",
        tmp_path / "env",
        tmp_path / "xdg" / "fnn" / "small",
        tmp_path / "system",
    ]
    for place in places:
        write(place / "small.txt", content)
    monkeypatch.setenv("FNN_DATA", str(tmp_path / "env"))
    for place in places:
        text = data.load_text(spec, data_dir=tmp_path / "explicit", download=False)
        assert text.path == place / "small.txt" and text.decode(text.ids) == SMALL
        (place / "small.txt").unlink()
    with pytest.raises(FileNotFoundError) as info:
        data.load_text(spec, data_dir=tmp_path / "explicit", download=False)
    assert str(info.value).splitlines() == [
        "small not found: looked for small.txt in these directories, in order:",
        *(
            f"  {i}. {p} ({where}): 0 of 1 files, missing small.txt"
            for i, (p, where) in enumerate(
                zip(places, ["data_dir"] * 2 + ["$FNN_DATA"] * 2 + ["cache", "system"]), 1
            )
        ),
        "Download not attempted (download=False).",
        "To get the files:",
        "  - put small.txt in a directory and pass data_dir=... or set FNN_DATA to it (or to "
        "its parent, with the file in small/), or",
        "  - pass the file's path: load_text('path/to/small.txt'), or",
        "  - call again with download=True where a mirror is reachable: (none known)",
    ]


def test_a_found_file_that_fails_its_checksum_is_an_error_not_skipped(tmp_path: Path) -> None:
    content = SMALL.encode()
    spec = spec_of(content)
    other = write(tmp_path / "here" / "small.txt", content.replace(b"First", b"Fifth"))
    write(tmp_path / "xdg" / "fnn" / "small" / "small.txt", content)  # a good copy, later
    with pytest.raises(data.DataError) as info:
        data.load_text(spec, data_dir=tmp_path / "here", download=False)
    assert str(info.value) == (
        f"{other}: checksum mismatch for small: the SHA-256 of its bytes is "
        f"{sha256(other.read_bytes())}, expected {spec.sha256}; the file is damaged or another "
        "file: replace it with a fresh copy"
    )
    assert data.load_text(spec, download=False).path.parent == tmp_path / "xdg" / "fnn" / "small"


def test_download_verifies_caches_and_does_not_download_twice(tmp_path: Path, serve: Serve) -> None:
    content = SMALL.encode()
    server = serve({"input.txt": content}, "good")
    spec = spec_of(content, mirrors=(server.url,))
    text = data.load_text(spec)
    cache = tmp_path / "xdg" / "fnn" / "small"
    assert text.path == cache / "small.txt" and text.decode(text.ids) == SMALL
    assert text.sha256 == sha256(content) and text.name == "small"
    assert server.requests == ["/files/input.txt"]
    assert [p.name for p in cache.iterdir()] == ["small.txt"]
    again = data.load_text(spec, mirrors=[server.url.rstrip("/")])
    assert again.path == text.path and server.requests == ["/files/input.txt"]
    elsewhere = data.load_text(spec, cache_dir=tmp_path / "c")
    assert elsewhere.path == tmp_path / "c" / "small" / "small.txt"


def test_a_bad_download_is_refused_and_nothing_is_left_behind(tmp_path: Path, serve: Serve) -> None:
    content = SMALL.encode()
    spec = spec_of(content)
    wrong = content.replace(b"First", b"Fifth")
    bad = serve({"input.txt": wrong}, "bad")
    missing = serve({}, "empty")
    cache = tmp_path / "c"
    with pytest.raises(FileNotFoundError) as info:
        data.load_text(spec, cache_dir=cache, mirrors=[bad.url, missing.url])
    lines = str(info.value).splitlines()
    assert lines[0] == "small not found: looked for small.txt in these directories, in order:"
    assert lines[2] == "Download failed:"
    assert lines[3] == (
        f"  {bad.url}input.txt: checksum mismatch: SHA-256 {sha256(wrong)} ({len(wrong)} "
        f"bytes), expected {spec.sha256}"
    )
    assert lines[4] == f"  {missing.url}input.txt: HTTPError: File not found"
    assert list((cache / "small").iterdir()) == []  # no file, no temporary
    over = f"more than {len(content) - 1} bytes, the max_bytes given; pass a larger max_bytes"
    with pytest.raises(FileNotFoundError, match=over):
        data.load_text(spec, cache_dir=cache, mirrors=[bad.url], max_bytes=len(content) - 1)
    assert list((cache / "small").iterdir()) == []
    with pytest.raises(FileNotFoundError, match="Download failed:\n  no mirrors to download from"):
        data.load_text(spec, cache_dir=cache)
    good = serve({"input.txt": content}, "good")
    text = data.load_text(spec, cache_dir=cache, mirrors=[bad.url, good.url])
    assert text.path == cache / "small" / "small.txt"
    assert [p.name for p in (cache / "small").iterdir()] == ["small.txt"]


# --- the vocabulary ----------------------------------------------------------------------


def small_text(tmp_path: Path, content: str = SMALL) -> Text:
    return data.load_text(write(tmp_path / "small.txt", content.encode()))


def test_encode_and_decode(tmp_path: Path) -> None:
    text = small_text(tmp_path)
    assert text.vocab_size == len(set(SMALL)) == len(text.chars)
    ids = text.encode("hear me")
    assert ids.dtype == np.int32 and ids.tolist() == [text.chars.index(c) for c in "hear me"]
    assert text.decode(ids) == "hear me"
    assert text.decode(ids.tolist()) == "hear me"
    assert text.decode(ids.astype(np.uint8)) == "hear me"
    assert text.decode([]) == "" and text.encode("").shape == (0,)
    with pytest.raises(ValueError, match="the character 'Z'") as info:
        text.encode("hear me, Zed")
    assert str(info.value) == (
        f"encode: the character 'Z' (U+005A) at position 9 is not in the vocabulary of 'small' "
        f"({text.vocab_size} characters: {text.chars!r})"
    )
    with pytest.raises(ValueError, match=r"the character '\\udc80' \(U\+DC80\) at position 1"):
        text.encode("a\udc80")
    with pytest.raises(ValueError, match=r"the character '~' \(U\+007E\) at position 0 "):
        text.encode("~")  # above every character of the vocabulary
    with pytest.raises(TypeError, match="encode needs a str, got bytes"):
        text.encode(b"hear")  # type: ignore[arg-type]
    v = text.vocab_size
    for ids_, bad, at in [([0, v, 1], v, 1), ([3, 2, -1], -1, 2)]:
        with pytest.raises(ValueError, match="decode: the ids must be in") as info:
            text.decode(ids_)
        assert str(info.value) == (
            f"decode: the ids must be in [0, {v}) (the vocabulary), got {bad} at position {at}"
        )
    with pytest.raises(TypeError, match="integer ids, got list of dtype float64"):
        text.decode([1.0, 2.0])
    for not_ids in [None, "ab", 3]:
        with pytest.raises(TypeError, match="decode needs a 1-d sequence of integer ids"):
            text.decode(not_ids)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"decode needs a 1-d sequence of ids, got shape \(1, 2\)"):
        text.decode(np.zeros((1, 2), np.int32))


def test_a_text_record_checks_its_fields() -> None:
    ids = np.array([0, 1, 1], np.int32)
    Text("ab", ids, "ab", Path("ab.txt"), "0" * 64)
    assert ids.flags.writeable  # the caller's array is untouched
    for chars in ("ba", "aab", ""):
        with pytest.raises(ValueError, match="distinct characters in sorted order"):
            Text(chars, ids, "ab", Path("ab.txt"), "0" * 64)
    with pytest.raises(TypeError, match=r"Text\.chars must be a str, got list"):
        Text(["a", "b"], ids, "ab", Path("ab.txt"), "0" * 64)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Text\.ids must be a 1-d int32 array, got int64 \(3,\)"):
        Text("ab", ids.astype(np.int64), "ab", Path("ab.txt"), "0" * 64)
    with pytest.raises(ValueError, match=r"Text\.ids must be in \[0, 2\) .* got 2 at position 2"):
        Text("ab", np.array([0, 1, 2], np.int32), "ab", Path("ab.txt"), "0" * 64)


# --- split and windows -------------------------------------------------------------------


def test_split_text_is_nanogpts_split() -> None:
    ids = np.arange(1001, dtype=np.int32)
    train, val = data.split_text(ids)
    assert (len(train), len(val)) == (900, 101)  # int(1001 * 0.9) = 900
    np.testing.assert_array_equal(np.concatenate([train, val]), ids)
    assert np.shares_memory(train, ids) and np.shares_memory(val, ids)
    train, val = data.split_text(ids, fraction=0.5)
    assert (len(train), len(val)) == (500, 501)
    assert [len(p) for p in data.split_text(np.arange(2), 0.5)] == [1, 1]


def test_split_text_errors() -> None:
    with pytest.raises(TypeError, match="split_text: ids must be a NumPy array, got list"):
        data.split_text([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="split_text: ids must be integers, got dtype float32"):
        data.split_text(np.zeros(10, np.float32))
    with pytest.raises(ValueError, match=r"split_text: ids must have shape \(n,\), got \(2, 5\)"):
        data.split_text(np.zeros((2, 5), np.int32))
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="fraction must be strictly between 0 and 1"):
            data.split_text(np.arange(10), bad)
    with pytest.raises(TypeError, match="fraction must be a number"):
        data.split_text(np.arange(10), "0.9")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="leaves 0 to train and 5 to validate"):
        data.split_text(np.arange(5), 0.1)


def test_random_windows_are_consecutive_ids_at_offsets_drawn_from_the_key() -> None:
    ids = np.arange(1000, 1050, dtype=np.int32)
    key = fnn.random.key(7)
    x, y = data.random_windows(key, ids, context=8, batch_size=16)
    assert x.shape == y.shape == (16, 8) and x.dtype == y.dtype == np.int32
    starts = fnn.random.generator(key).integers(0, 50 - 8, size=16)  # [0, n - context - 1]
    windows = np.stack([ids[o : o + 9] for o in starts])
    np.testing.assert_array_equal(x, windows[:, :-1])
    np.testing.assert_array_equal(y, windows[:, 1:])
    assert not x.flags.writeable and not y.flags.writeable
    assert not np.shares_memory(x, ids)
    x64, _ = data.random_windows(key, ids.astype(np.int64), 8, 16)
    assert x64.dtype == np.int64 and (x64 == x).all()


def test_random_windows_reach_every_offset_and_no_further() -> None:
    ids = np.arange(10)
    x, y = data.random_windows(fnn.random.key(0), ids, context=3, batch_size=2000)
    assert sorted(set(x[:, 0].tolist())) == list(range(7))  # offsets 0 to n - context - 1
    assert int(y.max()) == 9
    x, y = data.random_windows(fnn.random.key(0), ids, context=9, batch_size=3)
    assert x.tolist() == [list(range(9))] * 3 and y.tolist() == [list(range(1, 10))] * 3


def test_random_windows_are_deterministic(key: fnn.random.Key) -> None:
    ids = np.random.default_rng(0).integers(0, 65, 5000).astype(np.int32)
    first = data.random_windows(key, ids, 64, 12)
    again = data.random_windows(fnn.random.key(0), ids.copy(), 64, 12)
    assert [a.tobytes() for a in first] == [a.tobytes() for a in again]
    other = data.random_windows(fnn.random.fold_in(key, 1), ids, 64, 12)
    assert first[0].tobytes() != other[0].tobytes()


def test_fixed_windows_cover_the_split_exactly() -> None:
    for n, context in [(10, 3), (11, 5), (12, 5), (6, 5), (1000, 64), (1001, 1)]:
        ids = np.arange(n, dtype=np.int32) * 3
        x, y = data.fixed_windows(ids, context)
        m = (n - 1) // context
        assert x.shape == y.shape == (m, context) and x.dtype == np.int32
        for i in range(m):  # window i is ids[i * context : i * context + context + 1]
            window = ids[i * context : i * context + context + 1]
            assert x[i].tolist() == window[:-1].tolist() and y[i].tolist() == window[1:].tolist()
        assert m * context + context + 1 > n  # no further window fits
        np.testing.assert_array_equal(x.ravel(), ids[: m * context])
        np.testing.assert_array_equal(y.ravel(), ids[1 : m * context + 1])
        assert n - 1 - m * context == (n - 1) % context < context  # targets left out
        assert not x.flags.writeable and not y.flags.writeable
        assert ids.flags.writeable and np.shares_memory(x, ids)  # views, nothing copied
    x, y = data.fixed_windows(np.arange(20)[::2], 3)  # a strided view works too
    assert x.tolist() == [[0, 2, 4], [6, 8, 10], [12, 14, 16]]
    assert y.tolist() == [[2, 4, 6], [8, 10, 12], [14, 16, 18]]


@pytest.mark.parametrize("windows", ["random", "fixed"])
def test_window_errors(windows: str) -> None:
    name = f"{windows}_windows"

    def call(ids: Any, context: Any, batch_size: Any = 2) -> Any:
        if windows == "random":
            return data.random_windows(fnn.random.key(0), ids, context, batch_size)
        return data.fixed_windows(ids, context)

    with pytest.raises(ValueError, match="needs at least 5 ids") as info:
        call(np.arange(4), 4)
    assert str(info.value) == (
        f"{name}: a window of context 4 needs at least 5 ids (context + 1), got 4"
    )
    assert call(np.arange(5), 4)[0].shape[1] == 4
    for context in (0, -1):
        with pytest.raises(ValueError, match=f"context must be >= 1, got {context}"):
            call(np.arange(10), context)
    for wrong in (2.0, True, "2"):
        with pytest.raises(TypeError, match="context must be an int"):
            call(np.arange(10), wrong)
    with pytest.raises(TypeError, match=f"{name}: ids must be a NumPy array, got list"):
        call(list(range(10)), 2)
    with pytest.raises(TypeError, match=f"{name}: ids must be integers, got dtype float64"):
        call(np.zeros(10), 2)
    with pytest.raises(ValueError, match=rf"{name}: ids must have shape \(n,\), got \(2, 5\)"):
        call(np.zeros((2, 5), np.int64), 2)
    if windows == "random":
        for batch in (0, -3):
            with pytest.raises(ValueError, match=f"batch_size must be >= 1, got {batch}"):
                call(np.arange(10), 2, batch)
        with pytest.raises(TypeError, match="batch_size must be an int"):
            call(np.arange(10), 2, 2.0)
        with pytest.raises(TypeError, match=r"expected an fnn\.random\.Key"):
            data.random_windows(0, np.arange(10), 2, 2)  # type: ignore[arg-type]
