"""The description of an fnn file (private): its top-level entries and the model entry."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from ..tree import TreeDef
from ._format import (
    FORMAT,
    MAX_NDIM,
    MAX_SPEC_DEPTH,
    MAX_SPEC_LAYERS,
    VERSION,
    FormatError,
    short,
)
from ._json import depth, parse
from ._tree_json import Leaf, from_json

_REQUIRED = frozenset({"format", "version", "tree", "metadata"})
_OPTIONAL = frozenset({"model"})
_MODEL_KEYS = frozenset({"spec", "in_shape", "dtype"})
_MODEL_DTYPES = ("float32", "float64")
_INPUT_DTYPES = ("float32", "float64", "int64")
"""What a model reads: floats of its params' dtype, or integer token ids (written as
int64, the dtype the command feeds; any integer dtype is read)."""
_MAX_IN_DIM = 2**31


@attrs.frozen(eq=False)
class ModelEntry:
    """What rebuilds a model: its layer ``spec``, the ``in_shape`` its ``init`` takes (batch
    axis excluded), its parameters' ``dtype`` (float32 or float64) and the dtype of its
    inputs (``int64`` for token ids; None in files written before it was recorded, which
    read floats)."""

    spec: dict[str, Any]
    in_shape: tuple[int, ...]
    dtype: np.dtype[Any]
    input_dtype: np.dtype[Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``"model"`` entry of the description."""
        entry = {"spec": self.spec, "in_shape": list(self.in_shape), "dtype": self.dtype.name}
        if self.input_dtype is not None:
            entry["input_dtype"] = self.input_dtype.name
        return entry


@attrs.frozen(eq=False)
class Description:
    """A checked ``fnn.json``: the tree's structure (classes by name) and leaves, the
    metadata, the model entry."""

    treedef: TreeDef
    leaves: tuple[Leaf, ...]
    metadata: dict[str, Any]
    model: ModelEntry | None


def count_layers(spec: Any) -> int:
    """How many layer specs (objects with a ``"layer"`` entry) ``spec`` holds, itself and
    nested ones, counted without recursion."""
    count = 0
    stack = [spec]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += "layer" in item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _model_entry(entry: Any, what: str) -> ModelEntry:
    def fail(message: str) -> FormatError:
        return FormatError(f"{what}: the 'model' entry {message}")

    if not isinstance(entry, dict) or set(entry) - {"input_dtype"} != _MODEL_KEYS:
        got = sorted(entry) if isinstance(entry, dict) else short(entry)
        raise fail(
            f"must be an object with the entries {sorted(_MODEL_KEYS)} (and 'input_dtype'), "
            f"got {got}"
        )
    spec, in_shape, dtype = entry["spec"], entry["in_shape"], entry["dtype"]
    if not isinstance(spec, dict):
        raise fail(f"needs a layer spec object, got {short(spec)}")
    if depth(spec, MAX_SPEC_DEPTH) > MAX_SPEC_DEPTH:
        raise fail(f"holds a layer spec that nests deeper than {MAX_SPEC_DEPTH} levels")
    layers = count_layers(spec)
    if layers > MAX_SPEC_LAYERS:
        raise fail(
            f"holds a layer spec of {layers} layers, more than the {MAX_SPEC_LAYERS} a model "
            "file may hold"
        )
    if (
        not isinstance(in_shape, list)
        or len(in_shape) > MAX_NDIM
        or not all(type(d) is int and 1 <= d <= _MAX_IN_DIM for d in in_shape)
    ):
        raise fail(f"needs 'in_shape' as a list of positive ints, got {short(in_shape)}")
    if dtype not in _MODEL_DTYPES:
        raise fail(f"needs 'dtype' 'float32' or 'float64', got {short(dtype)}")
    inputs = entry.get("input_dtype")
    if inputs is not None and inputs not in _INPUT_DTYPES:
        raise fail(f"needs 'input_dtype' one of {list(_INPUT_DTYPES)}, got {short(inputs)}")
    return ModelEntry(
        spec, tuple(in_shape), np.dtype(dtype), None if inputs is None else np.dtype(inputs)
    )


def parse_description(data: bytes, what: str) -> Description:
    """Parse and check the bytes of ``fnn.json`` (``what`` names the file in errors).

    Raises:
        FormatError: not strict JSON, another format or version, missing or unexpected
            entries, or a tree, metadata or model entry the format does not allow.
    """
    obj = parse(data, f"{what}: fnn.json")
    if not isinstance(obj, dict):
        raise FormatError(f"{what}: fnn.json must hold a JSON object, got {short(obj)}")
    if obj.get("format") != FORMAT:
        raise FormatError(
            f"{what}: not an fnn file: 'format' is {short(obj.get('format'))}, expected {FORMAT!r}"
        )
    version = obj.get("version")
    if type(version) is not int or version != VERSION:
        newer = " (written by a newer fnn?)" if type(version) is int and version > VERSION else ""
        raise FormatError(
            f"{what}: fnn format version {short(version)} is not supported{newer}; "
            f"this fnn reads version {VERSION}"
        )
    missing = sorted(_REQUIRED - set(obj))
    extra = sorted(set(obj) - _REQUIRED - _OPTIONAL)
    if missing or extra:
        raise FormatError(
            f"{what}: fnn.json misses the entries {missing} or has unexpected ones "
            f"{[k[:80] for k in extra]}"
        )
    metadata = obj["metadata"]
    if not isinstance(metadata, dict):
        raise FormatError(f"{what}: 'metadata' must be a JSON object, got {short(metadata)}")
    model = _model_entry(obj["model"], what) if "model" in obj else None
    treedef, leaves = from_json(obj["tree"], what)
    return Description(treedef, leaves, metadata, model)
