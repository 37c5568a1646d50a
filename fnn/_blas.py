"""The BLAS thread count of the running process (private; used by the ``fnn`` command).

NumPy's wheels bundle OpenBLAS, which starts one thread per core. For the small matrix
products of the models fnn targets, extra BLAS threads barely help and, on a busy
machine, spin-waiting threads can make a step many times slower. OpenBLAS exports a
``*set_num_threads*`` function; this module finds the OpenBLAS that NumPy loaded and
calls it (what ``threadpoolctl`` does, for this one library).
"""

from __future__ import annotations

import ctypes
import functools
import re
from pathlib import Path
from typing import Any

import numpy as np

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def _loaded_openblas() -> list[Path]:
    """Paths of OpenBLAS libraries mapped into this process (Linux), else bundled ones."""
    np.dot(np.ones(2), np.ones(2))  # make sure NumPy has loaded its BLAS
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        maps = ""
    found = sorted({Path(p) for p in re.findall(r"(/\S*openblas\S*\.(?:so|dylib)\S*)", maps)})
    if found:
        return found
    bundled = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    return sorted(bundled.glob("*openblas*")) if bundled.is_dir() else []


@functools.cache
def _function(names: tuple[str, ...]) -> Any:
    """The first function of ``names`` that NumPy's OpenBLAS exports, or None (looked up
    once: a training step on threads asks at every step)."""
    for path in _loaded_openblas():
        try:
            library = ctypes.CDLL(str(path))
        except OSError:
            continue
        for name in names:
            function = getattr(library, name, None)
            if function is not None:
                return function
    return None


def set_threads(n: int) -> bool:
    """Ask NumPy's OpenBLAS to use ``n`` threads; returns whether one was found and set."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the BLAS thread count must be an int >= 1, got {n!r}")
    setter = _function(_SETTERS)
    if setter is None:
        return False
    setter.argtypes = [ctypes.c_int]
    setter.restype = None
    setter(n)
    return True


def threads() -> int | None:
    """The number of threads NumPy's OpenBLAS uses, or None where it is not OpenBLAS."""
    getter = _function(tuple(name.replace("_set_", "_get_") for name in _SETTERS))
    if getter is None:
        return None
    getter.argtypes = []
    getter.restype = ctypes.c_int
    return int(getter())


def _text(names: tuple[str, ...]) -> str | None:
    """The string an OpenBLAS ``get`` function of ``names`` returns, or None."""
    getter = _function(names)
    if getter is None:
        return None
    getter.argtypes = []
    getter.restype = ctypes.c_char_p
    value = getter()
    return value.decode("ascii", "replace").strip() if isinstance(value, bytes) else None


def _build_of_numpy() -> tuple[str | None, str | None]:
    """The BLAS NumPy was built against, by its build record: ``(name, version)``."""
    try:
        show: Any = np.show_config  # NumPy 1.26's stubs know no mode
        config: Any = show(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return str(blas.get("name")) or None, str(blas.get("version")) or None
    except (TypeError, KeyError, AttributeError, ValueError):  # NumPy < 1.25: no dicts
        return None, None


def build() -> dict[str, str | None]:
    """The BLAS that computes NumPy's matrix products in this process: ``library``
    (``"OpenBLAS"``, or the name NumPy's build records), ``version`` and ``core`` (the
    kernels OpenBLAS chose for this CPU, e.g. ``"Haswell"``; None where unknown). Each
    decides the bits of a product: another library, release or core sums in another order.
    """
    config = _text(tuple(name.replace("_set_num_threads", "_get_config") for name in _SETTERS))
    core = _text(tuple(name.replace("_set_num_threads", "_get_corename") for name in _SETTERS))
    if config is not None:
        words = config.split()
        version = words[1] if len(words) > 1 and words[0] == "OpenBLAS" else None
        return {"library": "OpenBLAS", "version": version, "core": core}
    name, version = _build_of_numpy()
    return {"library": name, "version": version, "core": core}
