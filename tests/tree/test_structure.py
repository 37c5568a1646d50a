"""fnn.tree's structure (fnn/tree/_structure.py): flatten and unflatten, paths, static
fields, weight masks, what is not a tree, and errors that name where trees differ."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fnn import tree
from tests.tree.samples import MetadataPair, Pair, Point, WithStatic, sample


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


def test_weight_mask_marks_weight_fields_only() -> None:
    t = (Pair(np.ones(2), np.ones(2)), None, {"p": Pair(np.ones(1), 2.0)})
    assert tree.leaves(tree.weight_mask(t)) == [True, False, True, False]


def test_attrs_fields_with_fnns_metadata_are_the_fields_tree_field_makes() -> None:
    """``attrs.field(metadata=tree.WEIGHT)`` (or ``STATIC``, merged with metadata of
    one's own) declares what ``tree.field(weight=True)`` (``static=True``) does."""
    assert tree.record_fields(MetadataPair) == (("w", "b"), ("w", "b"), ("name",), (True, False))
    assert tree.record_fields(Pair).weights == tree.record_fields(MetadataPair).weights
    assert tree.record_fields(WithStatic).static == tree.record_fields(MetadataPair).static
    assert attrs.fields(MetadataPair).w.metadata["unit"] == "m"
    t = MetadataPair(np.ones(2), np.ones(2), "x")
    assert tree.leaves(tree.weight_mask(t)) == [True, False]
    assert tree.structure(t) != tree.structure(MetadataPair(np.ones(2), np.ones(2), "y"))


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


def test_a_static_field_must_hold_a_hashable_value() -> None:
    """A static field is part of the structure (compared, cached): a list there failed
    deep inside map with a bare 'unhashable type', naming neither record nor field."""

    @attrs.frozen(eq=False)
    class Config:
        w: Any = attrs.field(metadata=tree.WEIGHT)
        sizes: Any = attrs.field(metadata=tree.STATIC)

    fine = Config(np.ones(2), (1, 2))
    assert tree.equal(tree.map(lambda a: 2 * a, fine).w, np.full(2, 2.0))
    with pytest.raises(TypeError, match=r"Config\.sizes is a static field .* got list"):
        tree.map(lambda a: 2 * a, Config(np.ones(2), [1, 2]))
