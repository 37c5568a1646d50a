"""save / load of trees and models, and load_metadata (private; see :mod:`fnn.io`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TypeVar, overload

import attrs
import numpy as np

from .. import _atomic, _checks, nn
from .. import tree as _tree
from .._types import Array
from ..tree import TreeDef
from ._archive import Archive, open_archive, write
from ._file import Description, ModelEntry, count_layers, parse_description
from ._format import (
    FORMAT,
    MAX_DEPTH,
    MAX_DESCRIPTION_BYTES,
    MAX_NDIM,
    MAX_SPEC_DEPTH,
    MAX_SPEC_LAYERS,
    MAX_TREE_DEPTH,
    VERSION,
    FormatError,
    check_path,
)
from ._json import check_json, encode, text_depth
from ._tree_json import Leaf, canonical, convert, leaf_of, named, place, resolve, to_json

T = TypeVar("T")

PathLike = str | os.PathLike[str]
"""A file path: a ``str`` or an ``os.PathLike[str]`` such as :class:`pathlib.Path`."""


@attrs.frozen(eq=False)
class _Described:
    """A tree taken apart: its structure (with classes, and as a file names them), its
    leaves' entries and their C-contiguous arrays."""

    treedef: TreeDef
    named: TreeDef
    leaves: tuple[Leaf, ...]
    arrays: tuple[Array, ...]


def _describe(tree: Any, what: str, why: str = "to be saved") -> _Described:
    """``tree`` taken apart (``what`` names it in errors, ``why`` says what it is taken
    apart for: ``"to be saved"``, or for ``load(like=...)`` ``"for a file to hold"``).

    Raises:
        ValueError: the tree nests deeper than a file can hold (checked without recursion).
        TypeError: something that is neither a tree node nor a leaf the format holds.
    """
    if _tree.depth(tree, MAX_TREE_DEPTH) > MAX_TREE_DEPTH:
        raise ValueError(
            f"the tree nests too deeply {why}: {what} has more than {MAX_TREE_DEPTH} "
            f"levels of nodes; a file's description holds at most {MAX_DEPTH} JSON levels "
            "(two per tree level)"
        )
    values, treedef = _tree.flatten(tree)
    paths = _tree.leaf_paths(treedef)
    pairs = [leaf_of(x, i, f"{what} at {place(p)}") for i, (x, p) in enumerate(zip(values, paths))]
    leaves = tuple(leaf for leaf, _ in pairs)
    return _Described(treedef, named(treedef, what), leaves, tuple(arr for _, arr in pairs))


def _mismatch(template: _Described, treedef: TreeDef, leaves: tuple[Leaf, ...]) -> str | None:
    """Where a file's tree first differs from a template's, in words such as
    ``"at [1].w: expected float32 (784, 128), got float64 (784, 127)"``, or None. A record
    the file names by an older alias of a registered type is that type; how a leaf comes
    back (array, NumPy scalar or Python number) may differ: the template wins."""
    return _tree.first_difference(template.named, template.leaves, canonical(treedef), leaves)


def _restore(template: _Described, arrays: list[Array]) -> Any:
    """A tree of the template's classes and static values holding the loaded arrays."""
    values = [convert(a, leaf.kind) for a, leaf in zip(arrays, template.leaves)]
    return template.treedef.build(iter(values))


def _metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(
            f"metadata must be a dict with str keys (or None), got {type(metadata).__name__}"
        )
    out: dict[str, Any] = check_json(metadata, "metadata", MAX_DEPTH - 1)
    return out


def _write(
    path: Path, described: _Described, metadata: Any, model: ModelEntry | None = None
) -> Path:
    description: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "tree": to_json(described.named, iter(described.leaves)),
        "metadata": _metadata(metadata),
    }
    if model is not None:
        description["model"] = model.to_json()
    data = encode(description)
    if text_depth(data) > MAX_DEPTH:
        raise ValueError(
            f"the tree nests too deeply to be saved: its description would take more than "
            f"{MAX_DEPTH} JSON levels (two per tree level, and one more for a leaf's shape)"
        )
    if len(data) > MAX_DESCRIPTION_BYTES:
        raise ValueError(
            f"the tree's description would take {len(data)} bytes, more than the "
            f"{MAX_DESCRIPTION_BYTES} a file may hold: save fewer, larger leaves"
        )

    def write_file(file: BinaryIO) -> None:
        write(file, data, described.arrays)

    return _atomic.write_atomic(path, write_file)


def save(path: PathLike, tree: Any, metadata: Mapping[str, Any] | None = None) -> Path:
    """Save a tree to ``path`` atomically, with no pickle (the format: fnn/io/FORMAT.md).

    Args:
        path: the file to write (no suffix is added; ``.npz`` is customary). Its directory
            must exist; an existing file is replaced only once the new one is complete.
        tree: any fnn tree: ``None``, tuples, lists, dicts with ``str`` keys, named tuples
            and attrs classes, whose leaves are NumPy arrays of bool, integer, float or
            complex dtype, NumPy scalars, or Python ``bool``/``int``/``float``/``complex``.
            Static fields of attrs classes must hold JSON data.
        metadata: a dict of JSON data (``None``, ``bool``, ``int``, finite ``float``,
            ``str``, lists, tuples and dicts with ``str`` keys) stored with the tree;
            :func:`load_metadata` gives it back (tuples as lists). ``None`` stores ``{}``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Saving the same tree and metadata twice writes byte-identical files (same fnn and
    NumPy versions).

    Raises:
        TypeError: ``path`` is not a path; the tree holds something that is not a tree
            node or leaf, an object/string/structured dtype, or a static field or metadata
            that is not JSON data.
        ValueError: a Python int beyond int64, a non-finite float in metadata, nesting
            deeper than the format allows (checked without recursion, for any depth).
        FileNotFoundError: the directory of ``path`` does not exist.

    >>> import fnn, os, tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = fnn.io.save(os.path.join(tmp, "t.npz"), {"w": np.ones(3, np.float32), "step": 7})
    ...     path.name, fnn.io.load(path)
    ('t.npz', {'step': 7, 'w': array([1., 1., 1.], dtype=float32)})
    """
    return _write(check_path(path), _describe(tree, "tree"), metadata)


def _read(archive: Archive) -> Description:
    description = parse_description(archive.read_description(), str(archive.path))
    archive.check_members(description.leaves)
    return description


def _leaves(archive: Archive, description: Description) -> list[Any]:
    return [archive.read_leaf(leaf) for leaf in description.leaves]


@overload
def load(path: PathLike, like: None = None, *, finite: bool = False) -> Any: ...


@overload
def load(path: PathLike, like: T, *, finite: bool = False) -> T: ...


def load(path: PathLike, like: Any = None, *, finite: bool = False) -> Any:
    """Load a tree saved by :func:`save` (or :func:`save_model`: its params).

    Args:
        path: the file to read; only this file is read, never a temporary file beside it.
        like: a template tree. Given, the file must hold a tree of exactly its structure
            (node kinds, dict keys, types by name, static fields) with leaves of exactly
            its dtypes and shapes; the result is built with the template's own classes and
            static values, each leaf coming back as the template's does (array, NumPy
            scalar or Python number). Without it, the tree is rebuilt from the file alone:
            tuples, lists, dicts, and only the registered record types
            (:data:`fnn.io.TYPES`: fnn's own, and those added by :func:`fnn.nn.register`
            or :func:`fnn.tree.register_type`).
        finite: refuse a file whose float or complex leaves (arrays and numbers) hold NaN
            or infinity, as :func:`load_model` always does. Off by default: a tree file is
            any data, where a NaN may mean something (a missing value, a metric not
            measured). A training state is such a tree: its history's ``val_loss`` is
            NaN for a run without validation data, so load a checkpoint without
            ``finite`` and check it with :func:`fnn.train.check_finite`, which allows
            NaN only there.

    Returns:
        The tree. Its arrays are new read-only arrays (``.copy()`` gives a writable one);
        Python numbers come back as Python numbers, NumPy scalars as NumPy scalars.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        TypeError: ``path`` is not a path, or ``like`` is not a tree.
        IsADirectoryError: ``path`` is a directory.
        ValueError: the file does not match ``like``; the message names the first
            difference, e.g. ``[1].w: expected float32 (784, 128), got float64 (784, 127)``;
            or ``like`` nests deeper than a file can hold.
        FormatError: (a ValueError) the file is not a valid fnn file, or not a regular
            file (a FIFO, a device such as ``/dev/zero``), or, without ``like``, names a
            type outside the allow-list; with ``finite=True``, a leaf holds NaN or
            infinity (the message names the first such leaf, e.g. ``the leaf at
            ['params'][1].w``, and the value's index).

    >>> import fnn, os, tempfile
    >>> params = fnn.nn.mlp((3,)).init(fnn.random.key(0), (2,))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = fnn.io.save(os.path.join(tmp, "params.npz"), params)
    ...     back = fnn.io.load(path, like=params)
    >>> fnn.tree.equal(back, params), type(back[1]).__name__, back[1].w.flags.writeable
    (True, 'DenseParams', False)
    """
    target = check_path(path)
    template = None if like is None else _describe(like, "like", "for a file to hold")
    with open_archive(target) as archive:
        description = _read(archive)
        if template is None:
            treedef = resolve(description.treedef, str(target))
        else:
            found = _mismatch(template, description.treedef, description.leaves)
            if found is not None:
                raise ValueError(f"{target} does not match the template: {found}")
        values = _leaves(archive, description)
    if finite:
        paths = _tree.leaf_paths(description.treedef)
        try:
            _checks.finite_leaves((f"the leaf at {place(p)}", v) for p, v in zip(paths, values))
        except ValueError as e:
            raise FormatError(f"{target}: {e}") from None
    if template is not None:
        return _restore(template, values)
    leaves = [convert(a, leaf.kind) for a, leaf in zip(values, description.leaves)]
    try:
        return treedef.build(iter(leaves))
    except (TypeError, ValueError) as e:
        raise FormatError(f"{target}: a class refused the file's values: {e}") from None


def load_metadata(path: PathLike) -> dict[str, Any]:
    """The metadata saved with a tree or model (``{}`` if none), without reading its arrays.

    The whole description is checked as :func:`load` checks it.

    Raises:
        FileNotFoundError, TypeError, FormatError: as :func:`load`.
    """
    with open_archive(check_path(path)) as archive:
        return _read(archive).metadata


def load_in_shape(path: PathLike) -> tuple[int, ...]:
    """The input shape (batch axis excluded) a model file's model was saved for, without
    reading its arrays (what ``fnn predict`` resizes pictures to).

    Raises:
        FileNotFoundError, TypeError: as :func:`load`.
        FormatError: not a valid fnn file, or a tree file without a model.
    """
    target = check_path(path)
    with open_archive(target) as archive:
        entry = _read(archive).model
    if entry is None:
        raise FormatError(
            f"{target} holds a tree, not a model (no 'model' entry): load it with fnn.io.load"
        )
    return entry.in_shape


def load_input_dtype(path: PathLike) -> np.dtype[Any]:
    """The dtype of the inputs a model file's model reads, without reading its arrays:
    ``int64`` for a model over token ids (any integer dtype does), else its params'
    float dtype (files written before this was recorded hold float models).

    Raises:
        FileNotFoundError, TypeError, FormatError: as :func:`load_in_shape`.
    """
    target = check_path(path)
    with open_archive(target) as archive:
        entry = _read(archive).model
    if entry is None:
        raise FormatError(
            f"{target} holds a tree, not a model (no 'model' entry): load it with fnn.io.load"
        )
    return entry.dtype if entry.input_dtype is None else entry.input_dtype


def input_dtype(model: nn.Layer[Any, Any], in_shape: tuple[int, ...], dtype: Any) -> np.dtype[Any]:
    """What ``model`` reads for examples of ``in_shape``: int64 token ids for a model that
    begins with an embedding, else floats of its params' ``dtype``."""
    return np.dtype(np.int64 if model.declared(in_shape).ids is not None else dtype)


def _in_shape(in_shape: Any) -> tuple[int, ...]:
    if not isinstance(in_shape, tuple) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in in_shape
    ):
        raise TypeError(f"in_shape must be a tuple of ints, got {in_shape!r}")
    if len(in_shape) > MAX_NDIM or not all(d >= 1 for d in in_shape):
        raise ValueError(f"in_shape must hold at most {MAX_NDIM} positive ints, got {in_shape}")
    return tuple(int(d) for d in in_shape)


def _params_dtype(described: _Described) -> np.dtype[Any]:
    floats = {leaf.dtype for leaf in described.leaves if leaf.dtype.kind == "f"}
    if not floats:
        return np.dtype(np.float32)
    if len(floats) > 1 or not floats <= {np.dtype(np.float32), np.dtype(np.float64)}:
        found = ", ".join(sorted(str(d) for d in floats))
        raise TypeError(f"params must be all float32 or all float64 to be saved, got {found}")
    return floats.pop()


def _saved_tree(model: nn.Layer[Any, Any], params: Any, state: Any) -> Any:
    """What a model file's tree holds: the params, or for a stateful model both."""
    return {"params": params, "state": state} if model.stateful else params


def _model_of(entry: ModelEntry, what: str) -> nn.Layer[Any, Any]:
    """The model a file's entry describes, rebuilt from registered layer names only."""
    try:
        return nn.from_spec(entry.spec)
    except (ValueError, TypeError) as e:
        raise FormatError(f"{what}: the model spec cannot be rebuilt: {e}") from None


def _check_saved(model: nn.Layer[Any, Any], saved: Any, entry: ModelEntry, what: str) -> None:
    """Raise a FormatError unless the tree ``saved`` (placeholders of a file's leaves)
    holds params (and state) that fit ``model`` for the entry's input shape and dtype:
    :meth:`fnn.nn.Layer.mismatch`, before any array is read."""
    if model.stateful and not (isinstance(saved, dict) and set(saved) == {"params", "state"}):
        raise FormatError(f"{what}: a stateful model's file holds {{'params', 'state'}}")
    params, state = (saved["params"], saved["state"]) if model.stateful else (saved, None)
    try:
        found = model.mismatch(params, state, entry.in_shape)
    except (ValueError, TypeError) as e:
        raise FormatError(
            f"{what}: the model does not accept in_shape {entry.in_shape}: {e}"
        ) from None
    if found is None and nn.params_dtype(params, entry.dtype) != entry.dtype:
        found = f"params of dtype {nn.params_dtype(params)}, the model entry says {entry.dtype}"
    if found is None and entry.input_dtype is not None:
        reads = input_dtype(model, entry.in_shape, entry.dtype)
        if reads != entry.input_dtype:
            found = f"a model that reads {reads} inputs, the model entry says {entry.input_dtype}"
    if found is not None:
        raise FormatError(
            f"{what}: the params and state do not fit the model for in_shape "
            f"{entry.in_shape}: {found}"
        )


def _check_finite(params: Any, state: Any) -> None:
    """Raise a ValueError for the first leaf of ``params`` or ``state`` holding NaN or
    infinity, named by its path in them (``params[1].w``, ``state[2].var``), with the first
    bad value's index and the count: what a model file may not hold."""
    parts = {"params": params, "state": state}
    _checks.finite_leaves(
        (name + path, leaf)
        for name, part in parts.items()
        for path, leaf in zip(_tree.paths(part), _tree.leaves(part))
    )


class LoadedModel(NamedTuple):
    """What :func:`load_model` returns: the model, its params, and its state (``None`` for
    models without state)."""

    model: nn.Layer[Any, Any]
    params: Any
    state: Any


def save_model(
    path: PathLike,
    model: nn.Layer[Any, Any],
    params: Any,
    *,
    in_shape: tuple[int, ...],
    model_state: Any = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save a model (its layer spec, input shape and dtype) with its params, atomically.

    The file is a tree file (:func:`save`) of ``params`` (for a stateful model, of
    ``{"params": params, "state": model_state}``) whose description also holds
    ``model.spec``, ``in_shape`` and the params' dtype: :func:`load_model` rebuilds the
    model from registered layer names, and :func:`load` reads the tree alone.

    Args:
        path: the file to write.
        model: a layer whose ``spec`` is not ``None`` (built from registered layers,
            see :func:`fnn.nn.register`, with named initializers).
        params: the model's params, float32 or float64, as ``model.init`` shapes them for
            ``in_shape``.
        in_shape: the input shape ``model.init`` takes (batch axis excluded).
        model_state: the state of a stateful model (``train_state.model_state``).
        metadata: JSON data, as for :func:`save`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``model`` is not a Layer; bad ``in_shape``, params or metadata types; a
            state for a model without one.
        ValueError: ``model.spec`` is ``None``, nests too deeply or holds more than
            10,000 layers; no state for a
            stateful model; ``params`` (or the state) do not fit the model rebuilt from
            its spec (the message names the first difference); ``params`` or the state
            hold NaN or infinity, which :func:`load_model` refuses (the message names the
            first such leaf, e.g. ``params[1].w``, and the value's index). Nothing is
            written then.

    >>> import fnn, os, tempfile
    >>> model = fnn.nn.mlp((3,))
    >>> params = model.init(fnn.random.key(0), (2,))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = fnn.io.save_model(os.path.join(tmp, "m.npz"), model, params, in_shape=(2,))
    ...     fnn.io.load_in_shape(path), fnn.tree.equal(fnn.io.load(path), params)
    ((2,), True)
    """
    target = check_path(path)
    if not isinstance(model, nn.Layer):
        raise TypeError(f"save_model expected an fnn.nn.Layer, got {type(model).__name__}")
    if model.spec is None:
        raise ValueError(
            "model.spec is None: the model holds a layer that cannot be described by name "
            "(a layer whose constructor is not registered with fnn.nn.register, or a "
            "custom initializer function); register it, or save its params with "
            "fnn.io.save and rebuild the model in code"
        )
    spec = check_json(model.spec, "model.spec", MAX_SPEC_DEPTH)
    if not isinstance(spec, dict):
        raise TypeError(f"model.spec must be a dict, got {type(model.spec).__name__}")
    layers = count_layers(spec)
    if layers > MAX_SPEC_LAYERS:
        raise ValueError(
            f"model.spec holds {layers} layers, more than the {MAX_SPEC_LAYERS} a model file "
            "may hold"
        )
    shape = _in_shape(in_shape)
    described = _describe(_saved_tree(model, params, model.check_state(model_state)), "params")
    dtype = _params_dtype(described)
    try:
        same = nn.from_spec(spec)
    except (ValueError, TypeError) as e:
        raise ValueError(f"save_model: the model spec cannot be rebuilt: {e}") from None
    found = same.mismatch(params, model_state, shape)
    if found is not None:
        raise ValueError(
            f"save_model: the params and state do not fit the model for in_shape {shape}: {found}"
        )
    try:
        _check_finite(params, model_state)
    except ValueError as e:
        raise ValueError(
            f"save_model: {e}: load_model refuses params or state holding NaN or infinity "
            "(fnn.io.save writes any tree)"
        ) from None
    entry = ModelEntry(spec, shape, dtype, input_dtype(same, shape, dtype))
    return _write(target, described, metadata, entry)


def load_model(path: PathLike) -> LoadedModel:
    """Load a model saved by :func:`save_model`: ``(model, params, state)``.

    The model is rebuilt with :func:`fnn.nn.from_spec` from registered layer names (no
    code from the file runs). The file's params (and state) are compared with the shapes
    the model reports for the saved input shape and dtype (:attr:`fnn.nn.Layer.shapes`,
    which allocates nothing) before any array is read: a hostile spec cannot make this
    allocate more than the file's params take. The metadata comes from
    :func:`load_metadata`. Params and state must be finite: a model whose weights hold
    NaN or infinity predicts NaN, so it is refused (:func:`load` reads such a file as it
    is, unless told ``finite=True``).

    Args:
        path: the file to read.

    Returns:
        A :class:`LoadedModel` ``(model, params, state)``: the rebuilt layer, its params
        (new read-only arrays, in the saved dtype) and its model state (``None`` for a
        model without).

    Raises:
        FileNotFoundError, TypeError: as :func:`load`.
        FormatError: not a valid fnn file, a tree file without a model, a spec of more
            than 10,000 layers (refused before any layer is built), a spec that names an
            unknown layer or does not accept its input shape, params that do not fit
            the model, or params or state holding NaN or infinity (the message names the
            first such leaf, e.g. ``params[1].w`` or ``state[2].var``, and the value's
            index).

    >>> import fnn, os, tempfile
    >>> model = fnn.nn.serial(fnn.nn.dense(3), fnn.nn.batch_norm())
    >>> params, state = model.init(fnn.random.key(0), (2,)), model.init_state((2,))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "m.npz")
    ...     _ = fnn.io.save_model(path, model, params, in_shape=(2,), model_state=state)
    ...     loaded = fnn.io.load_model(path)
    >>> loaded.model.spec == model.spec, fnn.tree.equal(loaded.params, params)
    (True, True)
    >>> loaded.state[1].var.tolist()
    [1.0, 1.0, 1.0]
    """
    target = check_path(path)
    with open_archive(target) as archive:
        description = _read(archive)
        entry = description.model
        if entry is None:
            raise FormatError(
                f"{target} holds a tree, not a model (no 'model' entry): load it with fnn.io.load"
            )
        model = _model_of(entry, str(target))
        treedef = resolve(description.treedef, str(target))
        shapes = [nn.placeholder(leaf.shape, leaf.dtype) for leaf in description.leaves]
        try:
            _check_saved(model, treedef.build(iter(shapes)), entry, str(target))
        except (TypeError, ValueError) as e:
            if isinstance(e, FormatError):
                raise
            raise FormatError(f"{target}: a class refused the file's values: {e}") from None
        values = _leaves(archive, description)
        leaves = [convert(a, leaf.kind) for a, leaf in zip(values, description.leaves)]
        saved = treedef.build(iter(leaves))
    loaded = (
        LoadedModel(model, saved["params"], saved["state"])
        if model.stateful
        else LoadedModel(model, saved, None)
    )
    try:
        _check_finite(loaded.params, loaded.state)
    except ValueError as e:
        raise FormatError(f"{target}: {e}") from None
    return loaded
