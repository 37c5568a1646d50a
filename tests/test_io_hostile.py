"""Hostile files: each is refused with a documented error, and no code from it runs.

Every test builds a file that a careless loader would trip on (a pickle payload, a path
traversal, a size bomb, a type name to import) and checks the error type and message.
Where a file could have side effects if it were trusted, the test also proves that they
did not happen.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from io_files import (
    Members,
    central_entry,
    description,
    members,
    npy,
    npy_raw,
    patch,
    replace,
    rezip,
    with_description,
)

import fnn
import fnn.io
from fnn import nn, random, tree
from fnn.io import FormatError

FLOAT_LEAF = {"kind": "leaf", "index": 0, "as": "array", "dtype": "<f8", "shape": [10]}


def sample(key: random.Key) -> dict[str, Any]:
    return {"params": nn.mlp((4, 2)).init(key, (3,)), "step": 5, "key": random.key(1)}


@pytest.fixture
def valid(tmp_path: Path, key: random.Key) -> Members:
    """The members of a valid fnn file of ``sample(key)``."""
    path = tmp_path / "valid.npz"
    fnn.io.save(path, sample(key), {"epoch": 1})
    return members(path)


def refused(
    tmp_path: Path, data: bytes, message: str, template: Any = None, *, deep: bool = False
) -> None:
    """The loaders refuse ``data`` with a FormatError whose message matches ``message``.

    ``load`` (and ``load(like=template)`` when a template is given) always; for flaws that
    are found before any leaf is read (``deep=False``), ``load_metadata`` and
    ``load_model`` too.
    """
    path = tmp_path / "bad.npz"
    path.write_bytes(data)
    loaders: list[Callable[[Path], Any]] = [fnn.io.load]
    if template is not None:
        loaders.append(lambda p: fnn.io.load(p, like=template))
    if not deep:
        loaders += [fnn.io.load_metadata, fnn.io.load_model]
    for load in loaders:
        with pytest.raises(FormatError, match=message):
            load(path)


def single_leaf(leaf: dict[str, Any], member: bytes) -> bytes:
    desc = {"format": "fnn", "version": 1, "metadata": {}, "tree": leaf}
    return rezip([("fnn.json", json.dumps(desc).encode()), ("leaf_0.npy", member)])


# -- not an fnn file ------------------------------------------------------------------------


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


# -- pickles --------------------------------------------------------------------------------


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


# -- member names ---------------------------------------------------------------------------


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


# -- sizes ----------------------------------------------------------------------------------


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


# -- the description ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"not json", "fnn.json is not valid JSON"),
        (b"\xff\xfe{}", "fnn.json is not UTF-8 text"),
        (b"[]", "fnn.json must hold a JSON object, got \\[\\]"),
        (b'{"format": "fnn", "format": "fnn"}', "duplicate key 'format'"),
        (b'{"format": NaN}', "NaN is not JSON"),
        (b'{"format": 1e999}', "out of range"),
        (b'{"format": ' + b"1" * 5000 + b"}", "is not valid JSON"),
        (b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests deeper than 200"),
        (b'{"metadata": ' + b"[" * 300 + b"]" * 300 + b"}", "nests deeper than 200 levels"),
        (b'{"format": "numpy", "version": 1}', "not an fnn file: 'format' is 'numpy'"),
        (b'{"version": 1}', "'format' is None"),
        (b'{"format": "fnn", "version": 2}', "format version 2 is not supported \\(written by"),
        (b'{"format": "fnn", "version": "1"}', "format version '1' is not supported"),
        (b'{"format": "fnn", "version": true}', "format version True is not supported"),
        (b'{"format": "fnn", "version": 1}', "misses the entries \\['metadata', 'tree'\\]"),
    ],
)
def test_bad_descriptions(
    tmp_path: Path, key: random.Key, valid: Members, text: bytes, message: str
) -> None:
    refused(tmp_path, rezip(replace(valid, "fnn.json", text)), message, sample(key))


def edited(valid: Members, edit: Callable[[dict[str, Any]], None]) -> bytes:
    desc = description(valid)
    edit(desc)
    return rezip(with_description(valid, desc))


def _dense(desc: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = desc["tree"]["children"][1]["children"][1]  # ['params'][1]
    assert node["type"] == "dense.DenseParams"
    return node


def _set(target: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any) -> Any:
    def edit(desc: dict[str, Any]) -> None:
        target(desc)[key] = value

    return edit


TOP: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: d  # noqa: E731
ROOT: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: d["tree"]  # noqa: E731
W: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: _dense(d)["children"][0]  # noqa: E731


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set(TOP, "extra", 1), "has unexpected ones \\['extra'\\]"),
        (_set(TOP, "metadata", [1]), "'metadata' must be a JSON object, got \\[1\\]"),
        (_set(TOP, "tree", []), "at the root in the tree: expected a node object, got a list"),
        (_set(ROOT, "kind", "eval"), "unknown node kind 'eval'"),
        (_set(ROOT, "kind", "list"), "a 'list' node needs the entries .* unexpected \\['keys'\\]"),
        (_set(ROOT, "keys", ["step", "key", "params"]), "dict keys must be listed in sorted order"),
        (_set(ROOT, "keys", ["a", "a", "b"]), "'keys' holds a name twice"),
        (_set(ROOT, "keys", ["a", "b"]), "2 names for 3 children"),
        (_set(ROOT, "children", {}), "'children' must be a list"),
        (_set(W, "index", 7), "leaf 'index' must be 1 \\(flatten order\\), got 7"),
        (_set(W, "index", True), "leaf 'index' must be 1"),
        (_set(W, "as", "pickle"), "'as' must be one of"),
        (_set(W, "as", "float"), "a leaf saved as 'float' must have shape \\[\\]"),
        (_set(W, "dtype", "float32"), "'dtype' must be a bool, integer, float or complex"),
        (_set(W, "dtype", "<U8"), "'dtype' must be a bool"),
        (_set(W, "dtype", "<V8"), "'dtype' must be a bool"),
        (_set(W, "dtype", "<f3"), "'dtype' '<f3' is not a NumPy dtype"),
        (_set(W, "dtype", "<b1"), "'dtype' '<b1' is not in canonical form \\('\\|b1'\\)"),
        (_set(W, "shape", [-1, 4]), "'shape' must be a list of at most 32 non-negative ints"),
        (_set(W, "shape", [1.5]), "'shape' must be a list"),
        (_set(W, "shape", [1] * 33), "'shape' must be a list"),
        (_set(W, "shape", [2**70]), "'shape' must be a list"),
        (_set(W, "shape", "3, 4"), "'shape' must be a list"),
        (_set(_dense, "fields", ["w"]), "1 names for 2 children"),
        (_set(_dense, "fields", ["b", "w"]), "has fields \\['w', 'b'\\] and static fields \\[\\]"),
        (_set(_dense, "static", {"w": 1}), "fields \\['w'\\] are both static and children"),
        (_set(_dense, "static", {"x": 1}), "the file has \\['w', 'b'\\] and \\['x'\\]"),
        (_set(_dense, "static", []), "'static' must be an object"),
        (_set(_dense, "type", 12), "'type' must be a type name, got 12"),
        (_set(_dense, "type", ""), "'type' must be a type name"),
        (_set(_dense, "kind", "namedtuple"), "needs the entries .* unexpected \\['static'\\]"),
    ],
)
def test_bad_tree_entries(
    tmp_path: Path, valid: Members, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(edited(valid, edit))
    with pytest.raises(FormatError, match=message):
        fnn.io.load(path)


@pytest.mark.parametrize(
    ("leaf", "message"),
    [
        ({**FLOAT_LEAF, "as": "int", "shape": []}, "a Python int must be saved with dtype int64"),
        ({**FLOAT_LEAF, "as": "bool", "shape": []}, "a Python bool must be saved with dtype bool"),
        ({**FLOAT_LEAF, "as": "numpy", "shape": [2]}, "saved as 'numpy' must have shape \\[\\]"),
    ],
)
def test_bad_scalar_leaves(tmp_path: Path, leaf: dict[str, Any], message: str) -> None:
    refused(tmp_path, single_leaf(leaf, npy(np.ones(leaf["shape"]))), message, template=1.0)


@pytest.mark.parametrize(
    "name",
    ["os.system", "subprocess.Popen", "builtins.eval", "fnn.nn.dense", "fnn.nn.DenseParams "],
)
def test_unknown_type_names_are_never_imported(
    tmp_path: Path, key: random.Key, valid: Members, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[str] = []
    monkeypatch.setattr(os, "system", lambda *a: called.append("os.system"))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: called.append("Popen"))
    path = tmp_path / "bad.npz"
    path.write_bytes(edited(valid, _set(_dense, "type", name)))
    with pytest.raises(
        FormatError, match=f"at \\['params'\\]\\[1\\]: unknown type {re.escape(repr(name))}"
    ):
        fnn.io.load(path)
    with pytest.raises(ValueError, match=f"expected dense.DenseParams, got {re.escape(name)}"):
        fnn.io.load(path, like=sample(key))
    path.write_bytes(edited(valid, _as_namedtuple(name)))
    with pytest.raises(FormatError, match="unknown type"):
        fnn.io.load(path)
    assert called == []


def _as_namedtuple(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(desc: dict[str, Any]) -> None:
        node = _dense(desc)
        del node["static"]
        node["kind"] = "namedtuple"
        node["type"] = name

    return edit


def test_allow_listed_class_refusing_values(tmp_path: Path) -> None:
    """fnn.random.Key saved as a named tuple: the allow-listed class is not one."""
    desc = {
        "format": "fnn",
        "version": 1,
        "metadata": {},
        "tree": {"kind": "namedtuple", "type": "fnn.random.Key", "fields": [], "children": []},
    }
    path = tmp_path / "bad.npz"
    path.write_bytes(rezip([("fnn.json", json.dumps(desc).encode())]))
    with pytest.raises(
        FormatError, match=r"fnn\.random\.Key does not match the file's named tuple"
    ):
        fnn.io.load(path)


def test_template_mismatch_is_a_value_error_not_a_format_error(
    tmp_path: Path, key: random.Key, valid: Members
) -> None:
    path = tmp_path / "f.npz"
    path.write_bytes(rezip(valid))
    like = sample(key)
    like["extra"] = np.ones(2)
    with pytest.raises(
        ValueError,
        match="at the root: expected dict keys \\['extra', 'key', 'params', 'step'\\], got",
    ) as info:
        fnn.io.load(path, like=like)
    assert type(info.value) is ValueError


# -- models ---------------------------------------------------------------------------------


@pytest.fixture
def model_file(tmp_path: Path, key: random.Key) -> Members:
    model = nn.mlp((4, 2))
    path = tmp_path / "model.npz"
    fnn.io.save_model(path, model, model.init(key, (3,)), in_shape=(3,))
    return members(path)


def _model(desc: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = desc["model"]
    return entry


def _spec(desc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = desc["model"]["spec"]
    return spec


def _deep_spec(levels: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"layer": "relu"}
    for _ in range(levels):
        spec = {"layer": "serial", "layers": [spec]}
    return spec


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set(_spec, "layer", "os.system"), "cannot be rebuilt: unknown layer 'os.system'"),
        (
            _set(_model, "spec", {"layer": "serial", "layers": [{"layer": "subprocess.Popen"}]}),
            "unknown layer 'subprocess.Popen'",
        ),
        (_set(_spec, "layers", "relu"), "cannot be rebuilt: .* needs a list for 'layers'"),
        (_set(_spec, "exec", "print(1)"), "unexpected keys \\['exec'\\]"),
        (_set(_model, "spec", _deep_spec(40)), "nests deeper than 64 levels"),
        (_set(_model, "spec", [1]), "needs a layer spec object"),
        (_set(_model, "in_shape", [0]), "needs 'in_shape' as a list of positive ints"),
        (_set(_model, "in_shape", "3"), "needs 'in_shape' as a list of positive ints"),
        (
            _set(_model, "in_shape", [4]),
            "do not fit the model for in_shape \\(4,\\): params at \\[1\\].w: the model needs "
            "float32 \\(4, 4\\), got float32 \\(3, 4\\)",
        ),
        (
            _set(_model, "dtype", "float64"),
            "do not fit the model for in_shape \\(3,\\): params of dtype float32, the model entry "
            "says float64",
        ),
        (_set(_model, "dtype", "object"), "needs 'dtype' 'float32' or 'float64'"),
        (_set(_model, "extra", 1), "must be an object with the entries"),
        (_set(TOP, "model", None), "must be an object with the entries"),
        (
            _set(_model, "spec", {"layer": "dense", "features": 2**40}),
            "at the root: expected DenseParams, got a tuple",
        ),
        (
            _set(
                _model, "spec", {"layer": "serial", "layers": [{"layer": "dense", "features": 2}]}
            ),
            "at the root: expected a tuple with 1 children, got 4",
        ),
        (_set(_model, "spec", {"layer": "dense", "features": "many"}), "cannot be rebuilt"),
        (
            _set(_model, "spec", {"layer": "leaky_relu", "negative_slope": "nan"}),
            "cannot be rebuilt",
        ),
        (_set(_model, "spec", {"layer": "dense", "features": 4}), "do not fit the model"),
    ],
)
def test_bad_model_entries(
    tmp_path: Path, model_file: Members, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(edited(model_file, edit))
    with pytest.raises(FormatError, match=message):
        fnn.io.load_model(path)


@pytest.mark.parametrize(
    ("features", "in_shape", "message"),
    [
        (
            2**31,
            [3],
            "\\[1\\].w: the model needs float32 \\(3, 2147483648\\), got float32 \\(3, 4\\)",
        ),
        (4, [2**31, 2**31], "more entries than NumPy can index"),
    ],
)
def test_hostile_numbers_in_a_spec_allocate_nothing(
    tmp_path: Path, model_file: Members, features: int, in_shape: list[int], message: str
) -> None:
    """The file's own model with a hostile width or input shape: its init would build
    exabytes; the params are compared with the spec's shapes before init runs."""
    spec = description(model_file)["model"]["spec"]
    spec["layers"][1]["features"] = features
    desc = description(model_file)
    desc["model"] = {"spec": spec, "in_shape": in_shape, "dtype": "float64"}
    path = tmp_path / "bad.npz"
    path.write_bytes(rezip(with_description(model_file, desc)))
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match=f"in_shape \\({in_shape[0]},.*{message}"):
            fnn.io.load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_a_spec_that_refuses_its_in_shape(tmp_path: Path, model_file: Members) -> None:
    desc = description(model_file)
    desc["model"]["spec"]["layers"].pop(0)  # no flatten before the first dense
    desc["model"]["in_shape"] = [3, 1]
    path = tmp_path / "bad.npz"
    path.write_bytes(rezip(with_description(model_file, desc)))
    message = "does not accept in_shape \\(3, 1\\): dense expects inputs of shape \\(features,\\)"
    with pytest.raises(FormatError, match=message):
        fnn.io.load_model(path)


def test_model_file_params_load_alone(tmp_path: Path, key: random.Key, model_file: Members) -> None:
    path = tmp_path / "m.npz"
    path.write_bytes(rezip(model_file))
    params = fnn.io.load(path)
    assert tree.equal(params, nn.mlp((4, 2)).init(key, (3,)))
