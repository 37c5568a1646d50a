"""Shards of a batch computed at once on threads (private; see :mod:`fnn.parallel`)."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

R = TypeVar("R")


class ShardThreads:
    """Calls of one function computed up to ``workers`` at once, on a thread pool made on
    first use (and made again in a forked child, which inherits no threads)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def map(self, fn: Callable[[int], R], items: Sequence[int]) -> list[R]:
        """``[fn(i) for i in items]``, computed on the pool under the calling thread's
        NumPy floating-point error settings (``np.errstate``; threads do not inherit them).
        Every call is awaited before an error is raised: the first, in ``items``' order."""
        pool = self._pool
        if pool is None or self._pid != os.getpid():
            pool = self._pool = ThreadPoolExecutor(self.workers, "fnn-shard")
            self._pid = os.getpid()
        errors, handler = np.geterr(), np.geterrcall()

        def run(i: int) -> R:
            settings: dict[str, Any] = dict(errors)
            if handler is not None:
                settings["call"] = handler
            with np.errstate(**settings):
                return fn(i)

        futures = [pool.submit(run, i) for i in items]
        try:
            concurrent.futures.wait(futures)
        except BaseException:  # interrupted: drop the calls not yet started
            for future in futures:
                future.cancel()
            raise
        return [future.result() for future in futures]
