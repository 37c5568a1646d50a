"""A tree in fnn.json (fnn/io/_tree_json.py) against hostile files: bad nodes and leaves,
type names never imported, and template mismatches as ValueErrors."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
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
    TOP,
    Members,
    _set,
    edited,
    npy,
    npy_raw,
    refused,
    rezip,
    sample,
    single_leaf,
)


def _dense(desc: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = desc["tree"]["children"][1]["children"][1]  # ['params'][1]
    assert node["type"] == "dense.DenseParams"
    return node


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
        (_set(W, "shape", [2**63]), "'shape' must be a list"),
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


def _empty_npy(dtype: str, shape: tuple[int, ...]) -> bytes:
    """A ``.npy`` member of no data whose header declares ``shape`` (NumPy cannot make it)."""
    return npy_raw(f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}", b"")


@pytest.mark.parametrize(
    ("dtype", "shape"),
    [("<f8", (0, 2**62)), ("|u1", (2**62, 0, 2)), ("<f8", (0, 2**40, 2**40)), ("<c16", (0, 2**59))],
)
def test_a_zero_size_leaf_declaring_too_much_is_refused(
    tmp_path: Path, dtype: str, shape: tuple[int, ...]
) -> None:
    """A zero-size leaf takes no bytes, so the file's size does not bound its axes; what its
    shape declares (non-zero axes times the item size) is bounded, naming the leaf."""
    leaf = {**FLOAT_LEAF, "dtype": dtype, "shape": list(shape)}
    refused(
        tmp_path,
        single_leaf(leaf, _empty_npy(dtype, shape)),
        re.escape("bad.npz: at the root in the tree: 'shape' [")
        + ".* declares \\d+ bytes \\(its non-zero axes times the item size\\), more than the "
        + str(2**62),
    )


@pytest.mark.parametrize(
    ("dtype", "shape"), [("<f8", (0, 2**59)), ("|u1", (2**61, 0, 2)), ("<f4", (0,) * 32)]
)
def test_a_zero_size_leaf_within_the_bound_loads(
    tmp_path: Path, dtype: str, shape: tuple[int, ...]
) -> None:
    path = tmp_path / "z.npz"
    path.write_bytes(
        single_leaf({**FLOAT_LEAF, "dtype": dtype, "shape": list(shape)}, _empty_npy(dtype, shape))
    )
    back = fnn.io.load(path)
    assert back.shape == shape and back.dtype == np.dtype(dtype) and back.size == 0
    assert fnn.io.load(fnn.io.save(tmp_path / "again.npz", back)).shape == shape


def test_saving_a_zero_size_array_declaring_too_much_is_refused(tmp_path: Path) -> None:
    """The bound holds for save too: what load would refuse is never written."""
    wide = np.empty((0, 2**62 + 1), np.uint8)  # NumPy makes it: 2**62 + 1 < 2**63
    with pytest.raises(ValueError, match=r"declares 4611686018427387905 bytes .* more than the"):
        fnn.io.save(tmp_path / "w.npz", {"a": wide})
    assert not (tmp_path / "w.npz").exists()


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
