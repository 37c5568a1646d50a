"""glibc's allocator keeping freed memory for reuse (private; used by :func:`fnn.train_step`
and :func:`fnn.runtime.keep_freed_memory`).

By default glibc's ``malloc`` maps fresh zero-filled pages for a large array and returns
them to the kernel when it is freed (``M_MMAP_THRESHOLD``), and gives back the free memory
at the top of its heap beyond ``M_TRIM_THRESHOLD``. A convolutional network's training
step allocates and frees tens of megabytes of temporaries (patch matrices, activations,
their gradients), so every step page-faults on them again: ``nn.cnn()`` on batches of 128
took about 6,900 minor page faults a step (28 MB of fresh pages, 15 ms of kernel time
when the machine is busy) on a 2-core AMD EPYC, and none with both thresholds raised.

fnn's training step raises them once per process, when the first step is made
(:func:`keep_freed_for_training`), unless the program set them itself
(:func:`keep_freed`, which :func:`fnn.runtime.keep_freed_memory` calls). This is the one
process-wide setting the library makes; the cost is memory kept: the process keeps the
step's peak of temporaries instead of shrinking between steps (25 MB more resident
between the CNN's steps above, the same peak), and up to ``DEFAULT_LIMIT`` bytes of freed
memory after training.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["DEFAULT_LIMIT", "keep_freed", "keep_freed_for_training"]

DEFAULT_LIMIT = 2**30
"""Bytes: blocks up to this size come from kept memory, and up to this much freed memory
is kept."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_settled: list[bool] = []
"""Holds one entry once this process's thresholds were set (by a step or the program):
whether glibc took them. The setting is the process's, so it is recorded once, with it,
and a step does not try again where the C library is not glibc."""


def keep_freed(limit: int = DEFAULT_LIMIT) -> bool:
    """Set glibc's ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` to ``limit`` bytes (at
    most ``2**31 - 1``); returns whether glibc took both (False where the C library is
    not glibc), and never raises for that.

    Raises:
        ValueError: ``limit`` is not an int >= 1.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an int >= 1 (bytes), got {limit!r}")
    _settled[:] = [_set_thresholds(min(limit, 2**31 - 1))]
    return _settled[0]


def _set_thresholds(value: int) -> bool:
    """Both thresholds to ``value`` through glibc's ``mallopt``; False without it."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, value)) and bool(mallopt(_M_TRIM_THRESHOLD, value))


def keep_freed_for_training() -> bool:
    """:func:`keep_freed` with ``DEFAULT_LIMIT``, unless this process's thresholds were
    already set (by an earlier step, or by the program with its own limit); returns whether
    they are set."""
    return _settled[0] if _settled else keep_freed(DEFAULT_LIMIT)
