"""The description of an fnn file (fnn/io/_file.py, fnn/io/_json.py) against hostile files:
bad JSON and entries, model entries, and specs too long or too deep."""

from __future__ import annotations

import json
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fnn
import fnn.io
import fnn.io._json
from fnn import nn, random, tree
from fnn.io import FormatError
from tests.io.io_files import (
    TOP,
    Members,
    _set,
    description,
    edited,
    members,
    refused,
    replace,
    rezip,
    sample,
    with_description,
)


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


@pytest.mark.parametrize(
    ("value", "levels"),
    [
        (0, 0),
        ("[[[{{", 0),
        ([], 1),
        ({'a\\"[': ["]]]", {"b": [[]]}]}, 5),
        ([[[0]], "\\", [1]], 3),
        ({"k": ["[" * 300]}, 2),
    ],
)
def test_text_depth_counts_brackets_outside_strings(value: Any, levels: int) -> None:
    text = json.dumps(value).encode()
    assert fnn.io._json.text_depth(text) == fnn.io._json.depth(value) == levels


def test_text_depth_across_chunks() -> None:
    """The running level carries over from one chunk of the one pass to the next."""
    text = b"[" * 150 + b"0," * 2**20 + b"[" * 60 + b"]" * 210
    assert fnn.io._json.text_depth(text) == 210
    assert fnn.io._json.text_depth(b'{"a":' + b"[]," * 2**20 + b"[[[]]]}") == 4


def test_too_deep_text_is_refused_before_it_is_parsed(
    tmp_path: Path, valid: Members, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("json.loads ran on a description too deep to parse")

    text = b'{"metadata": {"a": "]]]", "b": ' + b"[" * 200 + b"]" * 200 + b"}}"
    data = rezip(replace(valid, "fnn.json", text))
    monkeypatch.setattr(json, "loads", parse)  # the module fnn.io._json parses with
    refused(tmp_path, data, "fnn.json nests deeper than 200 levels")


def test_checking_a_description_costs_little_beyond_its_objects(tmp_path: Path) -> None:
    """The depth of a description is found from its text, not with an object per value: a
    description of 300,000 empty objects (0.9 MB) peaks at about 26 bytes a byte of text
    (21 with the 'metadata' objects, which are the cost of any parse); walking the parsed
    value with a tuple per value took 48."""
    items = ",".join(["{}"] * 300_000)
    text = '{"format":"fnn","metadata":{"a":[' + items + ']},"tree":{"kind":"none"},"version":1}'
    path = tmp_path / "wide.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fnn.json", text)
    tracemalloc.start()
    try:
        assert len(fnn.io.load_metadata(path)["a"]) == 300_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * len(text)


@pytest.mark.parametrize("bad", [2**64, -(2**63) - 1, 2**70, -(2**64) + 1])
def test_save_keeps_to_the_int_range_load_reads_the_old_writers_too(
    tmp_path: Path, valid: Members, bad: int
) -> None:
    """An int of a description is what an int64 or a uint64 holds, -2**63 to 2**64 - 1:
    save refuses others; load reads those down to -(2**64 - 1) too (fnn's save wrote
    them until 2026-12-08) and refuses the rest (it read any int before)."""
    edges = {"least": -(2**63), "most": 2**64 - 1, "nested": [{"a": 2**63}]}
    path = fnn.io.save(tmp_path / "edges.npz", None, edges)
    assert fnn.io.load_metadata(path) == edges
    with pytest.raises(
        ValueError, match=f"metadata\\['n'\\]: ints must fit in 64 bits .*got {bad}"
    ):
        fnn.io.save(tmp_path / "bad.npz", None, {"n": bad})
    desc = description(valid)
    desc["metadata"] = {"n": [bad]}
    if -(2**64 - 1) <= bad < -(2**63):  # what the writer took until 2026-12-08
        old = tmp_path / "old.npz"
        old.write_bytes(rezip(with_description(valid, desc)))
        assert fnn.io.load_metadata(old) == {"n": [bad]}
        return
    message = (
        f"fnn.json is not valid JSON: the int {bad} does not fit in 64 bits \\(int64 or uint64"
    )
    refused(tmp_path, rezip(with_description(valid, desc)), message)


# -- model entries ----------------------------------------------------------------------------


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
        (
            _set(_spec, "layer", "os.system"),
            "cannot be rebuilt: in a spec: unknown layer 'os.system'",
        ),
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
        (4, [2**31, 2**31], "fewer than 2\\*\\*63 entries"),
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
    desc["model"]["spec"]["layers"].insert(0, {"layer": "conv2d", "features": 2, "kernel_size": 3})
    desc["model"]["in_shape"] = [3, 1]
    path = tmp_path / "bad.npz"
    path.write_bytes(rezip(with_description(model_file, desc)))
    message = "does not accept in_shape \\(3, 1\\): conv2d expects"
    with pytest.raises(FormatError, match=message):
        fnn.io.load_model(path)


def test_model_file_params_load_alone(tmp_path: Path, key: random.Key, model_file: Members) -> None:
    path = tmp_path / "m.npz"
    path.write_bytes(rezip(model_file))
    params = fnn.io.load(path)
    assert tree.equal(params, nn.mlp((4, 2)).init(key, (3,)))


def relu_model_file(path: Path, layers: int) -> Path:
    """A model file whose spec is ``serial`` of ``layers`` relus (and a matching tree)."""
    description = {
        "format": "fnn",
        "version": 1,
        "metadata": {},
        "model": {
            "spec": {"layer": "serial", "layers": [{"layer": "relu"}] * layers},
            "in_shape": [4],
            "dtype": "float32",
        },
        "tree": {"kind": "tuple", "children": [{"kind": "none"}] * layers},
    }
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fnn.json", json.dumps(description))
    return path


def test_a_spec_of_too_many_layers_is_refused_before_any_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(fnn.io.load_model(relu_model_file(tmp_path / "ok.npz", 9_999)).params) == 9_999

    def never(spec: Any) -> Any:
        raise AssertionError("a layer was built")

    monkeypatch.setattr(nn, "from_spec", never)
    path = relu_model_file(tmp_path / "long.npz", 10_000)
    with pytest.raises(FormatError, match="spec of 10001 layers, more than the 10000"):
        fnn.io.load_model(path)
    with pytest.raises(FormatError, match="10001 layers"):
        fnn.io.load_metadata(path)


def test_save_model_refuses_a_spec_it_could_not_load(tmp_path: Path, key: Any) -> None:
    model = nn.serial(*[nn.relu()] * 10_001)
    with pytest.raises(ValueError, match=r"model\.spec holds 10002 layers, more than the 10000"):
        fnn.io.save_model(tmp_path / "m.npz", model, model.init(key, (3,)), in_shape=(3,))


def test_an_unterminated_string_is_scanned_once() -> None:
    """The depth scan's string pattern takes an unterminated string (escaped quotes to
    the end) in one match: with its closing quote required, each quote began a rescan
    to the end (18.8 s for an 80 KB description, days for 16 MiB)."""
    from fnn.io import _json

    hostile = b'"' + b'\\"[' * 50_000
    assert _json._STRING.fullmatch(hostile) is not None
    assert _json.text_depth(hostile) == 0  # its brackets are inside the string
    assert _json.text_depth(b'[{"a": "]["}, [1, "\\"[["]]') == 2
