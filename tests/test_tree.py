from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fnn import tree


@attrs.frozen(eq=False)
class Pair:
    w: Any = tree.field(weight=True)
    b: Any = tree.field()


@attrs.frozen(eq=False)
class WithStatic:
    x: Any
    name: str = tree.field(static=True, default="a")


class Point(NamedTuple):
    x: Any
    y: Any


def sample() -> Any:
    return {
        "b": (np.arange(3.0), None, [1.0, np.float32(2.0)]),
        "a": Pair(np.ones((2, 2)), np.zeros(2)),
        "c": Point(np.array(5), 7),
    }


def test_flatten_unflatten_round_trip() -> None:
    t = sample()
    leaves, treedef = tree.flatten(t)
    assert len(leaves) == treedef.num_leaves == 7
    back = tree.unflatten(treedef, leaves)
    assert tree.equal(back, t)
    assert isinstance(back["a"], Pair)
    assert isinstance(back["c"], Point)


def test_dict_leaves_come_in_sorted_key_order() -> None:
    assert tree.leaves({"z": 1, "a": 2, "m": 3}) == [2, 3, 1]
    assert tree.paths({"z": 1, "a": 2}) == ["['a']", "['z']"]


def test_paths_name_fields_and_indices() -> None:
    t = (None, Pair(np.ones(1), np.ones(1)), [np.ones(1)])
    assert tree.paths(t) == ["[1].w", "[1].b", "[2][0]"]
    assert tree.paths(np.ones(2)) == [""]


def test_none_is_an_empty_node() -> None:
    leaves, treedef = tree.flatten(None)
    assert leaves == [] and treedef.num_leaves == 0
    assert tree.map(lambda x: x + 1, (None, 1)) == (None, 2)


def test_map_over_several_trees() -> None:
    a = (np.ones(2), {"k": 2.0})
    b = (np.full(2, 3.0), {"k": 4.0})
    out = tree.map(lambda x, y: x * y, a, b)
    np.testing.assert_array_equal(out[0], [3.0, 3.0])
    assert out[1]["k"] == 8.0


def test_mismatched_structures_name_where_they_differ() -> None:
    a = (Pair(np.ones(1), np.ones(1)), None)
    b = (Pair(np.ones(1), None), None)
    with pytest.raises(ValueError, match=r"at \[0\]\.b: expected an array leaf, got None"):
        tree.map(lambda x, y: x, a, b)
    with pytest.raises(ValueError, match=r"at the root: expected a tuple with 2 children, got 3"):
        tree.assert_same_structure((1, 2), (1, 2, 3))
    with pytest.raises(ValueError, match=r"expected dict keys \['a'\], got \['b'\]"):
        tree.add({"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match="expected Pair, got a tuple"):
        tree.assert_same_structure(Pair(1, 2), (1, 2))


def test_static_fields_are_structure_not_children() -> None:
    t = WithStatic(np.ones(2), "x")
    assert len(tree.leaves(t)) == 1
    doubled = tree.map(lambda v: v * 2, t)
    assert doubled.name == "x"
    assert tree.structure(t) != tree.structure(WithStatic(np.ones(2), "y"))
    with pytest.raises(ValueError, match="the static fields of WithStatic differ"):
        tree.assert_same_structure(t, WithStatic(np.ones(2), "y"))


@pytest.mark.parametrize(("first", "second"), [(0.0, -0.0), (1, True), (1.0, 1)])
def test_equal_static_values_of_other_kinds_are_rebuilt_as_they_were(
    first: Any, second: Any
) -> None:
    """0.0 == -0.0 and 1 == True: structures compare equal, but each tree is rebuilt with
    its own static values, whatever was built (and cached) before it."""
    for value in (first, second):
        t = WithStatic(np.ones(2), value)
        back = tree.unflatten(tree.structure(t), [np.ones(2)])
        flat, layout = tree.ravel(t)
        for rebuilt in (back, layout.unravel(flat)):
            assert repr(rebuilt.name) == repr(value)


def test_num_leaves_counts_without_flattening() -> None:
    assert tree.num_leaves(sample()) == 7
    assert tree.num_leaves(WithStatic(np.ones(3))) == 1  # static fields are not leaves
    assert tree.num_leaves(None) == 0
    assert tree.num_leaves(np.ones((2, 2))) == 1


@pytest.mark.parametrize("bad", ["text", {1, 2}, object(), b"bytes"])
def test_unsupported_values_are_rejected(bad: Any) -> None:
    with pytest.raises(TypeError, match="is not part of an fnn tree"):
        tree.flatten((1.0, bad))
    with pytest.raises(TypeError, match="is not part of an fnn tree"):
        tree.num_leaves([Pair(1.0, bad)])


def test_dict_keys_must_be_strings() -> None:
    with pytest.raises(TypeError, match="str keys; got the key 1"):
        tree.flatten({1: np.ones(1)})


def test_unflatten_checks_the_leaf_count() -> None:
    treedef = tree.structure((1, 2))
    with pytest.raises(ValueError, match="expected 2 leaves"):
        tree.unflatten(treedef, [1])


def test_arithmetic() -> None:
    a = {"x": np.array([1.0, 2.0], np.float32), "y": np.array(3.0, np.float32)}
    b = {"x": np.array([0.5, 0.5], np.float32), "y": np.array(1.0, np.float32)}
    np.testing.assert_array_equal(tree.add(a, b)["x"], [1.5, 2.5])
    np.testing.assert_array_equal(tree.sub(a, b)["x"], [0.5, 1.5])
    scaled = tree.scale(np.float64(0.5), a)
    assert scaled["x"].dtype == np.float32  # no float64 promotion
    np.testing.assert_array_equal(scaled["x"], [0.5, 1.0])
    zeros = tree.zeros_like(a)
    assert zeros["x"].dtype == np.float32 and not zeros["x"].any()
    assert tree.vdot(a, b) == pytest.approx(1.5 + 3.0)
    assert tree.global_norm(a) == pytest.approx(np.sqrt(1 + 4 + 9))
    assert tree.size(a) == 3


def test_weight_mask_marks_weight_fields_only() -> None:
    t = (Pair(np.ones(2), np.ones(2)), None, {"p": Pair(np.ones(1), 2.0)})
    assert tree.leaves(tree.weight_mask(t)) == [True, False, True, False]


def test_equal_is_bitwise_and_allclose_is_not() -> None:
    a = (np.array([1.0, 2.0]),)
    assert tree.equal(a, (np.array([1.0, 2.0]),))
    assert not tree.equal(a, (np.array([1.0, 2.0], np.float32),))
    assert not tree.equal(a, (np.array([1.0, 2.0 + 1e-12]),))
    assert tree.allclose(a, (np.array([1.0, 2.0 + 1e-12]),))
    assert not tree.equal(a, [np.array([1.0, 2.0])])
    assert tree.max_abs_difference(a, (np.array([1.0, 2.5]),)) == 0.5


def test_astype_converts_floats_only() -> None:
    t = (np.ones(2, np.float32), np.arange(2))
    out = tree.astype(t, np.float64)
    assert out[0].dtype == np.float64 and out[1].dtype == t[1].dtype


def test_ravel_and_unravel() -> None:
    t = (Pair(np.arange(6.0).reshape(2, 3), np.ones(3)), None)
    flat, layout = tree.ravel(t)
    np.testing.assert_array_equal(flat[:6], np.arange(6.0))
    assert layout.size == 9
    flat.flags.writeable = False
    back = layout.unravel(flat)
    assert tree.equal(back, t)
    assert back[0].w.base is flat  # views, not copies
    with pytest.raises(ValueError, match="read-only"):
        back[0].w[0, 0] = 1.0
    np.testing.assert_array_equal(layout.ravel(t), flat)
    bad = (Pair(np.ones((3, 2)), np.ones(3)), None)
    with pytest.raises(ValueError, match=r"at \[0\]\.w: expected float64 of shape \(2, 3\)"):
        layout.ravel(bad)


def test_ravel_rejects_mixed_and_integer_dtypes() -> None:
    with pytest.raises(TypeError, match="one floating dtype, got float32, float64"):
        tree.ravel((np.ones(1, np.float32), np.ones(1)))
    with pytest.raises(TypeError, match="expected floating leaves, got int64"):
        tree.ravel((np.ones(1, np.int64),))


def test_functions_leave_their_inputs_unchanged() -> None:
    a = sample()
    before = tree.map(np.copy, a)
    tree.add(a, a)
    tree.scale(3.0, a)
    tree.global_norm(a)
    tree.ravel(a["a"])
    assert tree.equal(a, before)


def nested_trees() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.floats(allow_nan=False, width=32),
        st.integers(-5, 5).map(lambda n: np.arange(abs(n) + 1, dtype=np.float32) * n),
    )
    return st.recursive(
        leaves | st.none(),
        lambda kids: st.one_of(
            st.lists(kids, max_size=3),
            st.lists(kids, max_size=3).map(tuple),
            st.dictionaries(st.text("abc", min_size=1, max_size=2), kids, max_size=3),
            st.tuples(kids, kids).map(lambda p: Pair(*p)),
        ),
        max_leaves=8,
    )


@given(nested_trees())
def test_round_trip_property(t: Any) -> None:
    leaves, treedef = tree.flatten(t)
    back = tree.unflatten(treedef, leaves)
    assert tree.equal(back, t)
    assert tree.structure(back) == treedef
    assert len(tree.paths(t)) == len(leaves)
    assert tree.num_leaves(t) == len(leaves)
    assert tree.equal(tree.map(lambda x: x, t), t)


def test_fingerprint_tracks_bits_shapes_dtypes_and_structure() -> None:
    a = (np.arange(4.0), {"k": np.ones(2, np.float32)})
    assert tree.fingerprint(a) == tree.fingerprint(tree.map(np.copy, a))
    assert len(tree.fingerprint(a)) == 64
    changed = (
        np.arange(4.0),
        {"k": np.array([1.0, np.nextafter(np.float32(1), np.float32(2))], np.float32)},
    )
    others = [
        changed,
        (np.arange(4.0).reshape(2, 2), {"k": np.ones(2, np.float32)}),
        (np.arange(4.0), {"k": np.ones(2, np.float64)}),
        [np.arange(4.0), {"k": np.ones(2, np.float32)}],
    ]
    assert len({tree.fingerprint(t) for t in [a, *others]}) == 5
