"""Fuzzing the loader: mutated files raise only the documented errors, and stay small.

Three seeded mutation loops start from valid files (a tree with every kind of node and
leaf, and a model): raw byte mutations of the whole file (flips, truncations,
insertions, zeroed and duplicated ranges, 32-bit fields set to huge values), the same
mutations of one member re-packed into a ZIP with correct CRCs (so they reach the JSON
and ``.npy`` parsers instead of failing the CRC), and edits of the parsed description
(any entry replaced by a hostile value, deleted, or given a sibling). Every loader is
called on every mutant: each may succeed or raise :class:`fnn.io.FormatError`, and
``load(like=)`` may also raise the ValueError of a template mismatch; nothing else may
escape, and no call may allocate much more than the file's size (measured with
tracemalloc, which sees NumPy's allocations too, on every fourth case to keep the suite
fast).

``FNN_FUZZ_CASES=5000 pytest tests/test_io_fuzz.py`` runs longer loops.
"""

from __future__ import annotations

import copy
import json
import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from io_files import Members, members, rezip

import fnn
import fnn.io
from fnn import nn, random
from fnn.io import FormatError

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
