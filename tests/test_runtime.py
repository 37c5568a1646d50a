"""Runtime settings (fnn/runtime.py, fnn/_blas.py): BLAS threads, freed memory, the memory
limit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fnn import _blas


def test_set_threads_reaches_numpys_openblas() -> None:
    script = (
        "import numpy as np, re\n"
        "from fnn import _blas\n"
        "assert _blas.set_threads(1)\n"
        "libs = _blas._loaded_openblas()\n"
        "import ctypes\n"
        "lib = ctypes.CDLL(str(libs[0]))\n"
        "names = [n.replace('set', 'get') for n in _blas._SETTERS]\n"
        "getter = next(getattr(lib, n) for n in names if hasattr(lib, n))\n"
        "getter.restype = ctypes.c_int\n"
        "assert getter() == 1, getter()\n"
        "assert _blas.set_threads(2) and getter() == 2\n"
        "assert _blas.threads() == 2\n"
        "assert _blas.set_threads(1) and _blas.threads() == 1\n"
        "import fnn\n"
        "assert fnn.runtime.blas_threads() == 1\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def test_bad_thread_counts() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="thread count must be an int >= 1"):
            _blas.set_threads(bad)  # type: ignore[arg-type]


def test_runtime_settings_apply_here_and_check_their_arguments() -> None:
    from fnn import runtime

    script = (
        "import fnn\n"
        "assert fnn.runtime.keep_freed_memory()\n"
        "assert fnn.runtime.set_blas_threads(1)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)  # glibc, OpenBLAS
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="limit must be an int >= 1"):
            runtime.keep_freed_memory(bad)  # type: ignore[arg-type]


def test_the_memory_limit_follows_ulimit() -> None:
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (2**32, 2**32)); "
        "from fnn import runtime; print(runtime.memory_limit())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(done.stdout) == 2**32


_FAULTS_PER_STEP = """
import resource, sys
import numpy as np
import fnn
from fnn import losses, nn, optim
if sys.argv[1] != "default":
    assert fnn.runtime.keep_freed_memory(int(sys.argv[1]))
model, key, opt = nn.cnn(), fnn.random.key(0), optim.adam(1e-3)
x = fnn.random.uniform(key, (64, 28, 28)).astype(np.float32)
y = np.arange(64) % 10
state = fnn.train_state(opt, model.init(key, (28, 28)), key)
step = fnn.train_step(model, losses.softmax_cross_entropy, opt)
for _ in range(3):
    state = step(state, (x, y))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    state = step(state, (x, y))
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def _faults_per_step(limit: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _FAULTS_PER_STEP, limit],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(done.stdout)


def test_training_steps_keep_freed_memory_unless_the_program_set_its_own_limit() -> None:
    # The step sets glibc's thresholds itself: steps after the first reuse the memory the
    # previous one freed (a count of page faults, not a time). A program's own setting
    # wins: with 4 KiB thresholds every step maps its temporaries afresh.
    assert _faults_per_step("default") < 100
    assert _faults_per_step(str(4096)) > 1000


def test_a_c_library_without_mallopt_is_reported_once_not_taken_for_glibc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where glibc's mallopt is missing, keep_freed says False, and a step's later call
    says False too (without trying again), not True."""
    from fnn import _malloc

    tries: list[int] = []
    monkeypatch.setattr(_malloc, "_settled", [])

    def no_mallopt(value: int) -> bool:
        tries.append(value)
        return False

    monkeypatch.setattr(_malloc, "_set_thresholds", no_mallopt)
    assert _malloc.keep_freed(2**20) is False
    assert _malloc.keep_freed_for_training() is False
    assert tries == [2**20]
