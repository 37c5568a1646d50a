"""fnn.io's API (fnn/io/_api.py): round trips, templates, metadata, determinism, models,
deep trees, and every loader fuzzed with mutated files."""

from __future__ import annotations

import collections
import copy
import json
import os
import re
import tempfile
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fnn
import fnn.io
import fnn.io._api
import fnn.io._json
from fnn import nn, random, tree
from fnn.io import FormatError
from tests.io.io_files import Members, members, rezip

Local = collections.namedtuple("Local", ["a"])


class Pair(NamedTuple):
    first: Any
    second: Any


@attrs.frozen(eq=False)
class Scaled:
    """A user's own parameter record with a static field."""

    w: Any = tree.field(weight=True)
    factor: float = tree.field(static=True)
    names: Any = tree.field(static=True, default=("a", "b"))


def everything(key: random.Key) -> dict[str, Any]:
    """A tree with every kind of node and leaf the format holds."""
    k1, k2 = random.split(key)
    return {
        "mlp": nn.mlp((8, 3)).init(k1, (2, 2)),
        "key": random.split(k2, 3),
        "f32": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        "f64": np.array([np.pi, -0.0, np.inf, np.nan, 5e-324]),
        "f16": np.array([1.5, -2.25], np.float16),
        "ints": [np.arange(5, dtype=np.int8), np.arange(3, dtype=np.uint64) * 2**62],
        "bool": np.array([[True, False]]),
        "c64": np.array([1 + 2j], np.complex64),
        "big_endian": np.arange(4, dtype=">f4"),
        "empty": np.zeros((0, 3), np.float32),
        "zero_d": np.array(7.0),
        "python": (True, -(2**63), 2**63 - 1, 0.1, 1e308, 1 - 1j),
        "numpy_scalars": (np.float32(1.5), np.int16(-3), np.bool_(True), np.uint8(255)),
        "nothing": (None, (), [], {}),
        "nested": {"a": [{"b": (1.0, [np.ones(2)])}]},
    }


def test_round_trip_is_bit_identical(tmp_path: Path, key: random.Key) -> None:
    original = everything(key)
    fnn.io.save(tmp_path / "t.npz", original)
    for loaded in (
        fnn.io.load(tmp_path / "t.npz"),
        fnn.io.load(tmp_path / "t.npz", like=original),
        fnn.io.load(str(tmp_path / "t.npz"), like=original),
    ):
        assert tree.equal(loaded, original)
        assert tree.structure(loaded) == tree.structure(original)
        assert [type(x) for x in tree.leaves(loaded)] == [type(x) for x in tree.leaves(original)]


DTYPES = ["?", "i1", "u2", "<i4", ">i8", "f2", "<f4", ">f4", "f8", "c8", "c16"]


def random_trees() -> st.SearchStrategy[Any]:
    """Trees of every node kind with arrays of any saved dtype and shape, and scalars."""
    arrays = hnp.arrays(
        dtype=st.sampled_from(DTYPES).map(np.dtype),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
    )
    leaves = st.one_of(
        arrays,
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(),  # NaN and infinities included: equality is bitwise
        st.complex_numbers(allow_nan=False),
        arrays.filter(lambda a: a.ndim == 0).map(lambda a: a[()]),  # NumPy scalars
    )
    return st.recursive(
        leaves | st.none(),
        lambda kids: st.one_of(
            st.lists(kids, max_size=3),
            st.lists(kids, max_size=3).map(tuple),
            st.dictionaries(st.text(max_size=3), kids, max_size=3),
            st.tuples(kids, kids).map(lambda p: Pair(*p)),
            st.tuples(kids, st.floats(-1, 1)).map(lambda p: Scaled(p[0], p[1])),
        ),
        max_leaves=8,
    )


@settings(max_examples=60, deadline=None)
@given(random_trees())
def test_round_trip_property(value: Any) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "t.npz"
        fnn.io.save(path, value)
        loaded = fnn.io.load(path, like=value)
        assert tree.equal(loaded, value)
        assert tree.structure(loaded) == tree.structure(value)
        assert [type(x) for x in tree.leaves(loaded)] == [type(x) for x in tree.leaves(value)]
        first = path.read_bytes()
        fnn.io.save(path, loaded)  # what was loaded saves to the same bytes
        assert path.read_bytes() == first


def test_python_and_numpy_scalars_come_back_as_they_went(tmp_path: Path) -> None:
    values = (True, 3, 2.5, 1j, np.float32(1.5), np.int64(4), np.bool_(False))
    fnn.io.save(tmp_path / "s.npz", values)
    loaded = fnn.io.load(tmp_path / "s.npz")
    assert loaded == values
    assert [type(x) for x in loaded] == [bool, int, float, complex, np.float32, np.int64, np.bool_]


@pytest.mark.parametrize("value", [None, (), [], {}, 1.0, np.ones(3), [[[]]]])
def test_trivial_trees(tmp_path: Path, value: Any) -> None:
    fnn.io.save(tmp_path / "t.npz", value)
    assert tree.equal(fnn.io.load(tmp_path / "t.npz"), value)


def test_mlp_params_and_keys(tmp_path: Path, key: random.Key) -> None:
    params = nn.mlp((128, 64, 10)).init(key, (28, 28))
    keys = random.split(random.fold_in(key, 5), 4)
    fnn.io.save(tmp_path / "p.npz", (params, keys))
    loaded_params, loaded_keys = fnn.io.load(tmp_path / "p.npz")
    assert tree.equal(loaded_params, params)
    assert all(isinstance(p, nn.DenseParams) for p in loaded_params[1::2])
    assert loaded_keys == keys
    assert np.array_equal(random.normal(loaded_keys[2], (3,)), random.normal(keys[2], (3,)))


def test_loaded_arrays_are_read_only(tmp_path: Path) -> None:
    fnn.io.save(tmp_path / "t.npz", {"w": np.ones((2, 2))})
    w = fnn.io.load(tmp_path / "t.npz")["w"]
    assert not w.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0] = 2.0
    writable = w.copy()
    writable[0, 0] = 2.0  # a copy is an ordinary array


def test_layouts_are_saved_in_c_order(tmp_path: Path) -> None:
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    views = (np.asfortranarray(base), base[:, ::2], base.T)
    fnn.io.save(tmp_path / "t.npz", views)
    for got, want in zip(fnn.io.load(tmp_path / "t.npz"), views):
        assert np.array_equal(got, want) and got.dtype == want.dtype
        assert got.flags.c_contiguous


def test_saving_twice_gives_identical_bytes(tmp_path: Path, key: random.Key) -> None:
    value = everything(key)
    fnn.io.save(tmp_path / "a.npz", value, {"epoch": 3, "loss": 0.25})
    os.utime(tmp_path / "a.npz", (0, 0))
    fnn.io.save(tmp_path / "b.npz", everything(key), {"loss": 0.25, "epoch": 3})
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.npz") as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_readable_with_plain_numpy_and_json(tmp_path: Path, key: random.Key) -> None:
    params = nn.mlp((4, 2)).init(key, (3,))
    fnn.io.save(tmp_path / "p.npz", params)
    with np.load(tmp_path / "p.npz") as npz:  # allow_pickle is False by default
        desc = json.loads(npz["fnn.json"])
        assert desc["format"] == "fnn" and desc["version"] == 1
        dense = desc["tree"]["children"][1]
        assert dense["type"] == "dense.DenseParams" and dense["fields"] == ["w", "b"]
        w_leaf = dense["children"][0]
        w = npz[f"leaf_{w_leaf['index']}"]
        assert w.dtype.str == w_leaf["dtype"] and list(w.shape) == w_leaf["shape"]
        assert np.array_equal(w, params[1].w)


def test_template_gives_its_own_types_and_leaf_kinds(tmp_path: Path) -> None:
    fnn.io.save(tmp_path / "t.npz", {"pair": Pair(np.ones(2), 3.0), "s": Scaled(np.ones(2), 0.5)})
    like = {"pair": Pair(np.zeros(2), np.array(0.0)), "s": Scaled(np.zeros(2), 0.5)}
    loaded = fnn.io.load(tmp_path / "t.npz", like=like)
    assert isinstance(loaded["pair"], Pair) and isinstance(loaded["s"], Scaled)
    assert isinstance(loaded["pair"].second, np.ndarray)  # the template's kind of leaf
    assert loaded["s"].names == ("a", "b")  # the template's static values, tuples included
    assert tree.structure(loaded) == tree.structure(like)


def test_template_mismatch_names_the_path(tmp_path: Path, key: random.Key) -> None:
    saved = (None, nn.DenseParams(np.zeros((784, 127)), np.zeros(127)))
    fnn.io.save(tmp_path / "t.npz", saved)
    like = nn.serial(nn.flatten(), nn.dense(128)).init(key, (784,))
    expected = "[1].w: expected float32 (784, 128), got float64 (784, 127)"
    with pytest.raises(ValueError, match=re.escape(expected)) as info:
        fnn.io.load(tmp_path / "t.npz", like=like)
    assert not isinstance(info.value, FormatError)
    assert str(tmp_path / "t.npz") in str(info.value)


@pytest.mark.parametrize(
    ("saved", "like", "message"),
    [
        (
            {"a": 1.0, "b": 2.0},
            {"a": 1.0, "c": 2.0},
            "at the root: expected dict keys ['a', 'c'], got ['a', 'b']",
        ),
        ({"a": 1.0}, {"a": 1.0, "m": 0.0}, "expected dict keys ['a', 'm'], got ['a']"),
        ([1.0, 2.0], [1.0], "at the root: expected a list with 1 children, got 2"),
        ((1.0,), [1.0], "at the root: expected a list, got a tuple"),
        ({"x": None}, {"x": np.ones(2)}, "at ['x']: expected an array leaf, got None"),
        ({"x": np.ones(2)}, {"x": None}, "at ['x']: expected None, got an array leaf"),
        (
            [np.ones(2, np.int32)],
            [np.ones(2, np.int64)],
            "[0]: expected int64 (2,), got int32 (2,)",
        ),
        ([np.ones(2, ">f4")], [np.ones(2, "<f4")], "[0]: expected float32 (2,), got >f4 (2,)"),
        ([1], [1.0], "[0]: expected float64 (), got int64 ()"),
        (Pair(1.0, 2.0), (1.0, 2.0), "at the root: expected a tuple, got tests.io.test_api.Pair"),
        (
            nn.DenseParams(np.ones((1, 1)), np.ones(1)),
            Scaled(np.ones(1), 0.5),
            "expected tests.io.test_api.Scaled, got dense.DenseParams",
        ),
        (
            Scaled(np.ones(1), 0.5),
            Scaled(np.ones(1), 0.25),
            "the static fields of tests.io.test_api.Scaled differ: expected {'factor': 0.25,"
            " 'names': ('a', 'b')}, got {'factor': 0.5",
        ),
    ],
)
def test_template_mismatches(tmp_path: Path, saved: Any, like: Any, message: str) -> None:
    fnn.io.save(tmp_path / "t.npz", saved)
    with pytest.raises(ValueError, match=re.escape(message)):
        fnn.io.load(tmp_path / "t.npz", like=like)


def test_without_template_only_allow_listed_types(tmp_path: Path) -> None:
    fnn.io.save(tmp_path / "t.npz", [Scaled(np.ones(2), 0.5)])
    with pytest.raises(
        FormatError, match=r"at \[0\]: unknown type 'tests.io.test_api.Scaled'.*pass like="
    ):
        fnn.io.load(tmp_path / "t.npz")
    fnn.io.save(tmp_path / "n.npz", Local(1.0))
    with pytest.raises(FormatError, match=r"unknown type 'tests\.io\.test_api\.Local'"):
        fnn.io.load(tmp_path / "n.npz")


def test_allow_list() -> None:
    """fnn's own types, by their stable names (a layer's records by the layer's name, and
    the names older development versions of 0.1.0 gave them); users' types join through
    registration."""
    layers = {"dense", "conv2d", "batch_norm", "layer_norm", "norm"}
    own = {
        name: cls
        for name, cls in fnn.io.TYPES.items()
        if name.startswith("fnn.") or name.split(".")[0] in layers
    }
    assert own == {
        "dense.DenseParams": nn.DenseParams,
        "dense.WeightParams": nn.WeightParams,
        "norm.ScaleParams": nn.ScaleParams,
        "conv2d.Conv2DParams": nn.Conv2DParams,
        "batch_norm.BatchNormParams": nn.BatchNormParams,
        "batch_norm.BatchNormState": nn.BatchNormState,
        "layer_norm.LayerNormParams": nn.LayerNormParams,
        "fnn.nn.DenseParams": nn.DenseParams,
        "fnn.nn.Conv2DParams": nn.Conv2DParams,
        "fnn.nn.BatchNormParams": nn.BatchNormParams,
        "fnn.nn.BatchNormState": nn.BatchNormState,
        "fnn.nn.LayerNormParams": nn.LayerNormParams,
        "fnn.random.Key": random.Key,
        "fnn.optim.OptState": fnn.optim.OptState,
        "fnn.optim.EmptyState": fnn.optim.EmptyState,
        "fnn.optim.AdamState": fnn.optim.AdamState,
        "fnn.optim.TraceState": fnn.optim.TraceState,
        "fnn.optim.RmsState": fnn.optim.RmsState,
        "fnn.optim.AdagradState": fnn.optim.AdagradState,
        "fnn.train.TrainState": fnn.train.TrainState,
        "fnn.train.Metrics": fnn.train.Metrics,
        "fnn.train.EpochMetrics": fnn.train.EpochMetrics,
        "fnn.train.Best": fnn.train.Best,
    }
    for cls in fnn.io.TYPES.values():
        assert attrs.has(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
        assert fnn.tree.type_name(cls) in fnn.io.TYPES
    with pytest.raises(TypeError):
        fnn.io.TYPES["os.system"] = os.system  # type: ignore[index]


def test_metadata_round_trip(tmp_path: Path) -> None:
    meta = {
        "epoch": 3,
        "loss": 0.125,
        "name": "mlp ✓",
        "ok": True,
        "none": None,
        "shape": (28, 28),
        "nested": {"lr": [1e-3, 1e-4]},
        "big": 2**64 - 1,
    }
    fnn.io.save(tmp_path / "t.npz", np.ones(1), meta)
    got = fnn.io.load_metadata(tmp_path / "t.npz")
    assert got == {**meta, "shape": [28, 28]}
    fnn.io.save(tmp_path / "none.npz", np.ones(1))
    assert fnn.io.load_metadata(tmp_path / "none.npz") == {}


@pytest.mark.parametrize(
    ("metadata", "error", "message"),
    [
        ([1, 2], TypeError, "metadata must be a dict with str keys (or None), got list"),
        ({"n": np.int64(3)}, TypeError, "metadata['n']: expected JSON data"),
        ({"n": np.float64(3)}, TypeError, "got float64 (convert NumPy values with .item()"),
        ({"a": [{1, 2}]}, TypeError, "metadata['a'][0]: expected JSON data"),
        ({"a": {1: 2}}, TypeError, "metadata['a']: JSON object keys must be str, got the key 1"),
        ({"a": np.ones(2)}, TypeError, "got ndarray"),
        ({"a": float("nan")}, ValueError, "metadata['a']: JSON has no nan"),
        ({"a": float("inf")}, ValueError, "JSON has no inf"),
        ({"a": 2**64}, ValueError, "ints must fit in 64 bits"),
    ],
)
def test_metadata_must_be_json(
    tmp_path: Path, metadata: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        fnn.io.save(tmp_path / "t.npz", np.ones(1), metadata)
    assert list(tmp_path.iterdir()) == []


def test_metadata_that_contains_itself_or_nests_too_deeply(tmp_path: Path) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match=r"nests deeper than \d+ levels"):
        fnn.io.save(tmp_path / "t.npz", None, {"loop": loop})
    deep: Any = 0
    for _ in range(300):
        deep = [deep]
    with pytest.raises(ValueError, match="nests deeper"):
        fnn.io.save(tmp_path / "t.npz", None, {"deep": deep})


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ({"o": np.array([1, "a"], dtype=object)}, TypeError, "['o']: cannot save dtype object"),
        ([np.array(["a", "b"])], TypeError, "at [0]: cannot save dtype <U1"),
        (np.zeros(2, dtype=[("a", "f4")]), TypeError, "cannot save dtype"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), TypeError, "cannot save dtype"),
        ({"x": object()}, TypeError, "object is not part of an fnn tree"),
        ({1: np.ones(1)}, TypeError, "fnn trees need dicts with str keys"),
        ([2**63], ValueError, "at [0]: a Python int leaf must fit in int64"),
        (
            Scaled(np.ones(1), 0.5, names=frozenset({"a"})),
            TypeError,
            "static field 'names': expected JSON",
        ),
        (Scaled(np.ones(1), float("nan")), ValueError, "static field 'factor': JSON has no nan"),
    ],
)
def test_save_refuses(tmp_path: Path, value: Any, error: type[Exception], message: str) -> None:
    target = tmp_path / "t.npz"
    target.write_bytes(b"old")
    with pytest.raises(error, match=re.escape(message)):
        fnn.io.save(target, value)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


def test_save_refuses_too_deep_trees(tmp_path: Path) -> None:
    deep: Any = np.ones(1)
    for _ in range(40):
        deep = [deep]
    fnn.io.save(tmp_path / "ok.npz", deep)
    assert tree.equal(fnn.io.load(tmp_path / "ok.npz"), deep)
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match="the tree nests too deeply to be saved"):
        fnn.io.save(tmp_path / "deep.npz", deep)


def test_path_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"expected a path as str or os\.PathLike"):
        fnn.io.save(123, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got bytes"):
        fnn.io.load(b"t.npz")  # type: ignore[call-overload]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fnn.io.save(tmp_path / "no" / "t.npz", None)
    with pytest.raises(FileNotFoundError):
        fnn.io.load(tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError):
        fnn.io.load_metadata(tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError):
        fnn.io.load_model(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        fnn.io.load(tmp_path)
    with pytest.raises(TypeError, match="is not part of an fnn tree"):
        fnn.io.load(tmp_path / "missing.npz", like={"x": "a string"})


def test_save_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "t.npz"
    fnn.io.save(target, {"v": np.ones(3)})
    fnn.io.save(target, {"v": np.zeros(3)})
    assert tree.equal(fnn.io.load(target), {"v": np.zeros(3)})
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_model_round_trip(tmp_path: Path, key: random.Key, dtype: Any) -> None:
    model = nn.serial(
        nn.flatten(),
        nn.dense(16, weight_init="glorot_uniform"),
        nn.leaky_relu(0.2),
        nn.serial(nn.dense(8), nn.tanh()),
        nn.dense(3),
        nn.log_softmax(),
    )
    params = model.init(key, (4, 5), dtype)
    path = fnn.io.save_model(
        tmp_path / "m.npz", model, params, in_shape=(4, 5), metadata={"accuracy": 0.5}
    )
    assert path == tmp_path / "m.npz"
    loaded, loaded_params, _ = fnn.io.load_model(path)
    assert loaded.spec == model.spec
    assert tree.equal(loaded_params, params)
    x = random.normal(key, (7, 4, 5), dtype)
    assert np.array_equal(loaded.apply(loaded_params, x), model.apply(params, x))
    assert fnn.io.load_metadata(path) == {"accuracy": 0.5}
    assert tree.equal(fnn.io.load(path), params)
    assert tree.equal(fnn.io.load(path, like=params), params)


def test_model_files_are_deterministic(tmp_path: Path, key: random.Key) -> None:
    model = nn.mlp((5, 2))
    params = model.init(key, (3,))
    fnn.io.save_model(tmp_path / "a.npz", model, params, in_shape=(3,))
    fnn.io.save_model(tmp_path / "b.npz", model, params, in_shape=(3,))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_save_model_refuses(tmp_path: Path, key: random.Key) -> None:
    model = nn.mlp((5, 2))
    params = model.init(key, (3,))
    custom = nn.dense(2, weight_init=lambda k, shape, dtype: np.zeros(shape, dtype))
    with pytest.raises(ValueError, match=r"model\.spec is None"):
        fnn.io.save_model(tmp_path / "m.npz", custom, custom.init(key, (3,)), in_shape=(3,))
    with pytest.raises(TypeError, match=r"save_model expected an fnn\.nn\.Layer, got dict"):
        fnn.io.save_model(tmp_path / "m.npz", {}, params, in_shape=(3,))  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=re.escape(
            "do not fit the model for in_shape (4,): params at [1].w: the model needs float32 "
            "(4, 5), got float32 (3, 5)"
        ),
    ):
        fnn.io.save_model(tmp_path / "m.npz", model, params, in_shape=(4,))
    with pytest.raises(TypeError, match="in_shape must be a tuple of ints, got 3"):
        fnn.io.save_model(tmp_path / "m.npz", model, params, in_shape=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="in_shape must hold at most 32 positive ints"):
        fnn.io.save_model(tmp_path / "m.npz", model, params, in_shape=(0,))
    mixed = (None, params[1], None, tree.astype(params[3], np.float64))
    with pytest.raises(TypeError, match="params must be all float32 or all float64"):
        fnn.io.save_model(tmp_path / "m.npz", model, mixed, in_shape=(3,))
    assert list(tmp_path.iterdir()) == []


def test_load_model_of_a_tree_file(tmp_path: Path) -> None:
    fnn.io.save(tmp_path / "t.npz", {"w": np.ones(2)})
    with pytest.raises(FormatError, match="holds a tree, not a model"):
        fnn.io.load_model(tmp_path / "t.npz")


@pytest.mark.parametrize("levels", [300, 900, 5000])
def test_saving_a_deep_tree_is_the_documented_value_error(tmp_path: Path, levels: int) -> None:
    deep: Any = np.ones(1)
    for _ in range(levels):
        deep = [deep]
    with pytest.raises(ValueError, match="the tree nests too deeply to be saved"):
        fnn.io.save(tmp_path / "deep.npz", deep)
    with pytest.raises(ValueError, match="the tree nests too deeply for a file to hold: like") as e:
        fnn.io.load(tmp_path / "deep.npz", like=deep)
    assert "saved" not in str(e.value)
    assert not (tmp_path / "deep.npz").exists()


def test_a_list_that_contains_itself_is_too_deep(tmp_path: Path) -> None:
    loop: list[Any] = [np.ones(1)]
    loop.append(loop)
    with pytest.raises(ValueError, match="the tree nests too deeply to be saved"):
        fnn.io.save(tmp_path / "loop.npz", loop)
    assert fnn.tree.depth(loop, 10) == 11


# -- fuzzing the loaders ----------------------------------------------------------------------
#
# Three seeded mutation loops start from valid files (a tree with every kind of node and
# leaf, and a model): raw byte mutations of the whole file (flips, truncations,
# insertions, zeroed and duplicated ranges, 32-bit fields set to huge values), the same
# mutations of one member re-packed into a ZIP with correct CRCs (so they reach the JSON
# and ``.npy`` parsers instead of failing the CRC), and edits of the parsed description
# (any entry replaced by a hostile value, deleted, or given a sibling). Every loader is
# called on every mutant: each may succeed or raise :class:`fnn.io.FormatError`, and
# ``load(like=)`` may also raise the ValueError of a template mismatch; nothing else may
# escape, and no call may allocate much more than the file's size (measured with
# tracemalloc, which sees NumPy's allocations too, on every fourth case to keep the suite
# fast). ``FNN_FUZZ_CASES=5000 pytest tests/io/test_api.py -k fuzz`` runs longer loops.

MEMORY_LIMIT = 4_000_000  # bytes a single call may allocate at its peak; files are ~10 kB

CASES = int(os.environ.get("FNN_FUZZ_CASES", "60"))  # mutants per seed and kind of mutation

HOSTILE_VALUES: list[Any] = [
    None, True, 0, -1, 1, 7, 2**31, 2**63, 2**70, -(2**63), 0.5, 1e308, "", "x" * 300,
    "os.system", "subprocess.Popen", "<f8", "|O", ">i8", "leaf", "attrs", "namedtuple",
    "fnn.nn.DenseParams", "fnn.random.Key", [], [0], [-1], [2**40, 2**40], [1] * 40,
    {}, {"kind": "leaf"}, {"kind": "none"}, {"layer": "dense", "features": 2**40},
    [[[[[[[[[[0]]]]]]]]]],
]  # fmt: skip


def sample(key: random.Key) -> dict[str, Any]:
    k1, k2 = random.split(key)

    return {
        "params": nn.mlp((3, 2)).init(k1, (2,)),
        "key": random.split(k2)[0],
        "ints": np.arange(4, dtype=np.int16),
        "scalars": (1.5, 2, True, np.float32(0.5)),
        "nested": {"a": [None, np.ones((2, 0))], "b": np.array([[1 + 1j]])},
    }


def loaders(template: Any) -> dict[str, Callable[[Path], Any]]:
    return {
        "load": fnn.io.load,
        "load(like=)": lambda p: fnn.io.load(p, like=template),
        "load_metadata": fnn.io.load_metadata,
        "load_model": fnn.io.load_model,
    }


def check_file(path: Path, template: Any, what: str, traced: bool = True) -> int:
    """Call every loader on ``path``; return how many refused it.

    With ``traced``, also check that no call allocates more than MEMORY_LIMIT at its peak.
    """
    refusals = 0
    for name, load in loaders(template).items():
        mismatch: ValueError | None = None
        if traced:
            tracemalloc.start()
        try:
            load(path)
        except FormatError:
            refusals += 1
        except ValueError as e:
            mismatch = e
            refusals += 1
        except Exception as e:  # pragma: no cover - the failure this test looks for
            pytest.fail(f"{name} raised {type(e).__name__} on {what}: {e}")
        finally:
            _, peak = tracemalloc.get_traced_memory()  # (0, 0) when not tracing
            tracemalloc.stop()
        if mismatch is not None:  # only a template mismatch may be a plain ValueError
            assert name == "load(like=)", (what, mismatch)
            assert "does not match the template" in str(mismatch), (what, mismatch)
        assert peak < MEMORY_LIMIT, (name, what, peak)
    return refusals


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random mutation of ``data``."""
    out = bytearray(data)
    n = len(out)
    at = int(rng.integers(0, max(n, 1)))
    span = int(rng.integers(1, 64))
    kind = int(rng.integers(0, 7))
    if kind == 0:  # flip a few bits
        for i in rng.integers(0, n, size=int(rng.integers(1, 9))):
            out[int(i)] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:  # truncate
        del out[at:]
    elif kind == 2:  # insert random bytes
        out[at:at] = rng.bytes(span)
    elif kind == 3:  # zero a range
        out[at : at + span] = bytes(len(out[at : at + span]))
    elif kind == 4:  # duplicate a range
        out[at:at] = out[at : at + span]
    elif kind == 5:  # a 32-bit field set to a huge or boundary value
        value = int(rng.choice([0xFFFF_FFFF, 0xF000_0000, 0x7FFF_FFFF, 0x8000_0000, 0]))
        out[at : at + 4] = value.to_bytes(4, "little")
    else:  # overwrite a range with random bytes
        out[at : at + span] = rng.bytes(len(out[at : at + span]))
    return bytes(out)


@pytest.fixture
def files(tmp_path: Path, key: random.Key) -> dict[str, Members]:
    tree = sample(key)
    fnn.io.save(tmp_path / "tree.npz", tree, {"epoch": 1, "tags": ["a"]})
    model = nn.mlp((3, 2))
    fnn.io.save_model(tmp_path / "model.npz", model, model.init(key, (2,)), in_shape=(2,))
    return {
        "tree": members(tmp_path / "tree.npz"),
        "model": members(tmp_path / "model.npz"),
    }


def templates(key: random.Key) -> dict[str, Any]:
    return {"tree": sample(key), "model": nn.mlp((3, 2)).init(key, (2,))}


def test_valid_files_load(tmp_path: Path, key: random.Key, files: dict[str, Members]) -> None:
    for name, parts in files.items():
        path = tmp_path / f"{name}.check.npz"
        path.write_bytes(rezip(parts))
        refusals = check_file(path, templates(key)[name], name)
        assert refusals == (1 if name == "tree" else 0)  # only load_model refuses a tree file


@pytest.mark.parametrize("seed", range(2))
def test_fuzz_file_bytes(
    tmp_path: Path, key: random.Key, files: dict[str, Members], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    refused = 0
    for i in range(CASES):
        name = "tree" if i % 3 else "model"
        data = rezip(files[name])
        for _ in range(int(rng.integers(1, 4))):
            data = mutate(data, rng)
        path = tmp_path / "fuzz.npz"
        path.write_bytes(data)
        what = f"{name} bytes, seed {seed}, case {i}"
        refused += check_file(path, templates(key)[name], what, traced=i % 4 == 0)
    assert refused > 2 * CASES  # most mutants are refused by most loaders


@pytest.mark.parametrize("seed", range(2))
def test_fuzz_members(
    tmp_path: Path, key: random.Key, files: dict[str, Members], seed: int
) -> None:
    rng = np.random.default_rng(100 + seed)
    for i in range(CASES):
        name = "tree" if i % 3 else "model"
        parts = list(files[name])
        index = 0 if i % 2 else int(rng.integers(0, len(parts)))  # fnn.json half the time
        member, data = parts[index]
        for _ in range(int(rng.integers(1, 3))):
            data = mutate(data, rng)
        parts[index] = (member, data)
        path = tmp_path / "fuzz.npz"
        path.write_bytes(rezip(parts))
        what = f"{name} member {member}, seed {seed}, case {i}"
        check_file(path, templates(key)[name], what, traced=i % 4 == 0)


def entries(value: Any, trail: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The trail of keys/indices to every entry of a JSON value."""
    yield trail
    if isinstance(value, dict):
        for k, v in value.items():
            yield from entries(v, (*trail, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from entries(v, (*trail, i))


def edit(desc: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """``desc`` with one random entry replaced, deleted or given a sibling."""
    out = copy.deepcopy(desc)
    trails = [t for t in entries(out) if t]
    trail = trails[int(rng.integers(0, len(trails)))]
    parent = out
    for step in trail[:-1]:
        parent = parent[step]
    last = trail[-1]
    action = int(rng.integers(0, 4))
    value = copy.deepcopy(HOSTILE_VALUES[int(rng.integers(0, len(HOSTILE_VALUES)))])
    if action == 0 and isinstance(parent, dict):
        del parent[last]
    elif action == 1 and isinstance(parent, dict):
        parent[str(value)[:20] if not isinstance(value, str) else value] = value
    elif action == 2 and isinstance(parent, list):
        parent.insert(last, value)
    else:
        parent[last] = value
    return out


@pytest.mark.parametrize("seed", range(2))
def test_fuzz_description(
    tmp_path: Path, key: random.Key, files: dict[str, Members], seed: int
) -> None:
    rng = np.random.default_rng(200 + seed)
    for i in range(CASES):
        name = "tree" if i % 3 else "model"
        parts = list(files[name])
        desc = json.loads(parts[0][1])
        for _ in range(int(rng.integers(1, 3))):
            desc = edit(desc, rng)
        parts[0] = ("fnn.json", json.dumps(desc).encode())
        path = tmp_path / "fuzz.npz"
        path.write_bytes(rezip(parts))
        what = f"{name} description, seed {seed}, case {i}"
        check_file(path, templates(key)[name], what, traced=i % 4 == 0)


def test_the_documented_depth_limits(tmp_path: Path) -> None:
    """FORMAT.md: 99 levels of nodes above a None, 98 above a leaf; metadata 199 levels
    itself included; layers nested 32 deep."""

    def nested(levels: int, end: Any) -> Any:
        for _ in range(levels):
            end = [end]
        return end

    path = tmp_path / "d.npz"
    for levels, end in ((99, None), (98, np.ones(1))):
        fnn.io.save(path, nested(levels, end))
        assert fnn.tree.depth(fnn.io.load(path)) == levels
        with pytest.raises(ValueError, match="nests too deeply to be saved"):
            fnn.io.save(path, nested(levels + 1, end))
    fnn.io.save(path, None, {"a": nested(198, 0)})
    assert fnn.io._json.depth(fnn.io.load_metadata(path)) == 199
    with pytest.raises(ValueError, match="nests deeper than 199 levels"):
        fnn.io.save(path, None, {"a": nested(199, 0)})
    for layers in (32, 33):
        model: fnn.nn.Layer[Any, Any] = fnn.nn.dense(2)
        for _ in range(layers - 1):
            model = fnn.nn.serial(model)
        params = model.init(fnn.random.key(0), (3,))
        if layers == 32:
            fnn.io.save_model(path, model, params, in_shape=(3,))
            assert fnn.io.load_model(path).model.spec == model.spec
        else:
            with pytest.raises(ValueError, match="nests deeper than 64 levels"):
                fnn.io.save_model(path, model, params, in_shape=(3,))
