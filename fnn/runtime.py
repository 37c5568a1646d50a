"""Process-wide settings that make training faster, for the edge of a program.

fnn's core sets nothing global but one thing (training steps keep freed memory, below);
these two functions change how the whole process runs, so a program calls them once, at
its start (``fnn train`` does, from ``--threads``):

* :func:`set_blas_threads` — the number of threads NumPy's OpenBLAS uses for matrix
  products (:func:`blas_threads` reads it);
* :func:`keep_freed_memory` — ask the C library's allocator to keep freed memory for
  reuse instead of giving it back to the kernel (:func:`fnn.train_step` does this itself
  when a process makes its first step; call it for another limit).

Both return whether they applied (False where the library is not there: another BLAS,
another C library), and never raise for that.
"""

from __future__ import annotations

import os

from . import _blas, _malloc

__all__ = ["blas_threads", "keep_freed_memory", "memory_limit", "set_blas_threads"]


def set_blas_threads(n: int) -> bool:
    """Ask NumPy's OpenBLAS to use ``n`` threads (>= 1); returns whether it was found.

    Raises:
        ValueError: ``n`` is not an int >= 1.
    """
    return _blas.set_threads(n)


def blas_threads() -> int | None:
    """The number of threads NumPy's OpenBLAS uses for matrix products (None where NumPy's
    BLAS is not OpenBLAS). Training on threads (``fnn.train_step(..., threads=2)``) wants
    1: each thread's products then run on its own core."""
    return _blas.threads()


def keep_freed_memory(limit: int = _malloc.DEFAULT_LIMIT) -> bool:
    """Ask glibc's ``malloc`` (Linux) to serve blocks up to ``limit`` bytes from memory it
    keeps, and to keep up to ``limit`` bytes of freed memory, rather than map fresh pages
    for each large array and unmap them when it is freed (``mallopt`` with
    ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``).

    :func:`fnn.train_step` (and so :func:`fnn.fit`) already does this, with ``limit``
    ``2**30``, when a process makes its first step, unless the program called this
    function first: call it for another ``limit``, or for loops of your own around
    :func:`fnn.value_and_grad`. A convolutional network's training step allocates and
    frees tens of megabytes of temporaries (patch matrices, activations, their
    gradients); with glibc's defaults every step page-faults on them again (about 6,900
    minor faults and up to 15 ms of kernel time a step of ``fnn.nn.cnn()`` on batches of
    128 here; none after this call). The cost: the process keeps its peak memory instead
    of shrinking between steps. Returns whether glibc took both settings (False
    elsewhere).

    Raises:
        ValueError: ``limit`` is not an int >= 1.
    """
    return _malloc.keep_freed(limit)


def memory_limit() -> int | None:
    """The bytes this process may use at most: the smaller of the machine's physical
    memory and the address-space limit (``ulimit -v``); None where neither is known."""
    limits = []
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        if pages > 0 and page_size > 0:
            limits.append(pages * page_size)
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(soft)
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX
        pass
    return min(limits) if limits else None
