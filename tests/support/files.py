"""Files for the hardening tests of fnn's readers: IDX headers and files, the layouts of a
data directory, and a child process for the calls that would hang or eat the machine's
memory if a guard regressed (a time limit and 2 GiB of address space)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
import fnn.io

LINUX = sys.platform.startswith("linux")

IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

NPY_NAMES = ("x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy")


def guarded(code: str, *args: str, timeout: float = 60.0) -> str:
    """Run ``code`` in a fresh Python limited to 2 GiB of address space; its stdout.

    A child that runs past ``timeout`` (a blocked FIFO) or fails (out of memory reading
    ``/dev/zero``) fails the test instead of hanging or swapping the suite.
    """
    script = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n" + textwrap.dedent(code)
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    root = Path(fnn.__file__).resolve().parents[1]  # the child imports this very fnn
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=root,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout} s: the reader blocks")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


CALL = """
import importlib, sys
module, name = sys.argv[1].rsplit(".", 1)
function = getattr(importlib.import_module(module), name)
try:
    function(sys.argv[2])
except ValueError as e:
    print(type(e).__name__, e)
else:
    print("no error")
"""


def refused_in_child(function: str, path: Path) -> str:
    """What ``function(path)`` raises, as ``"<ErrorName> <message>"``, from a guarded child."""
    return guarded(CALL, function, str(path)).strip()


def idx_header(code: int, shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


def idx_file(array: np.ndarray[Any, Any]) -> bytes:
    return idx_header(0x08, array.shape) + array.astype(np.uint8).tobytes()


def arrays(
    n_train: int = 6, n_test: int = 4, image: tuple[int, ...] = (5, 4), classes: int = 3
) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    return {
        "x_train": rng.integers(0, 256, (n_train, *image), np.uint8),
        "y_train": np.arange(n_train, dtype=np.int64) % classes,
        "x_test": rng.integers(0, 256, (n_test, *image), np.uint8),
        "y_test": np.arange(n_test, dtype=np.int64) % classes,
    }


def write_layout(directory: Path, layout: str, values: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    ordered = [values[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    if layout in ("idx", "idx.gz"):
        for name, array in zip(IDX_NAMES, ordered):
            raw = idx_file(array)
            if layout == "idx.gz":
                (directory / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
            else:
                (directory / name).write_bytes(raw)
    elif layout == "npy":
        for name, array in zip(NPY_NAMES, ordered):
            np.save(directory / name, array)
    elif layout == "npz":
        np.savez(directory / "data.npz", **values)
    else:
        np.savez_compressed(directory / "data.npz", **values)
