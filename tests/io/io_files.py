"""Helpers for the io tests: take fnn files apart and put (possibly hostile) ones together."""

from __future__ import annotations

import io
import json
import struct
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
import fnn.io
from fnn import nn, random
from fnn.io import FormatError

Members = list[tuple[str, bytes]]


def members(path: Path) -> Members:
    """The (name, bytes) of every member of a ZIP file, in archive order."""
    with zipfile.ZipFile(path) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def rezip(parts: Sequence[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    """A ZIP archive of ``parts`` with correct CRCs (duplicate names allowed)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in parts:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                zf.writestr(info, data)
    return buf.getvalue()


def description(parts: Members) -> dict[str, Any]:
    """The parsed fnn.json of an archive's members."""
    desc: dict[str, Any] = json.loads(dict(parts)["fnn.json"])
    return desc


def replace(parts: Members, name: str, data: bytes) -> Members:
    """``parts`` with member ``name`` holding ``data``."""
    return [(n, data if n == name else d) for n, d in parts]


def with_description(parts: Members, desc: Any) -> Members:
    """``parts`` with fnn.json replaced by the JSON of ``desc``."""
    return replace(parts, "fnn.json", json.dumps(desc).encode())


def npy(arr: Any, allow_pickle: bool = False) -> bytes:
    """The bytes of ``np.save(arr)``."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_raw(header: str, data: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    """A ``.npy`` member with a hand-written header dict literal and raw data."""
    text = header.encode("latin1") + b"\n"
    fmt = "<H" if version == (1, 0) else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(text)) + text + data


def central_entry(data: bytes, name: str) -> int:
    """The offset of the central-directory header of member ``name`` in a ZIP file."""
    encoded = name.encode()
    offset = data.find(b"PK\x01\x02")
    while offset >= 0:
        (length,) = struct.unpack_from("<H", data, offset + 28)
        if data[offset + 46 : offset + 46 + length] == encoded:
            return offset
        offset = data.find(b"PK\x01\x02", offset + 4)
    raise KeyError(name)


def patch(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    """``data`` with ``struct.pack(fmt, *values)`` written at ``offset``."""
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


FLOAT_LEAF = {"kind": "leaf", "index": 0, "as": "array", "dtype": "<f8", "shape": [10]}


def sample(key: random.Key) -> dict[str, Any]:
    return {"params": nn.mlp((4, 2)).init(key, (3,)), "step": 5, "key": random.key(1)}


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


def edited(valid: Members, edit: Callable[[dict[str, Any]], None]) -> bytes:
    desc = description(valid)
    edit(desc)
    return rezip(with_description(valid, desc))


def _set(target: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any) -> Any:
    def edit(desc: dict[str, Any]) -> None:
        target(desc)[key] = value

    return edit


TOP: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: d  # noqa: E731
