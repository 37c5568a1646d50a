"""Shards of a batch computed at once on threads, as many as the machine has free cores
for (private; see :mod:`fnn.parallel`)."""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

R = TypeVar("R")

WINDOW = 0.25
"""Seconds of wall time over which the other processes' load is measured: ``/proc/stat``
counts in ticks of 10 ms, so a shorter window would read mostly rounding."""


def machine_busy_seconds() -> float | None:
    """CPU seconds all CPUs of the machine spent busy (the hypervisor's steal included)
    since boot, from ``/proc/stat``; None where there is none (not Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(fields) < 8:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class LoadGauge:
    """The cores other processes keep busy: the machine's busy CPU time less this
    process's (all its threads), over the wall time, measured over windows of at least
    ``WINDOW`` seconds; 0 until the first window ends, and where the machine's time is
    not known."""

    def __init__(self) -> None:
        self._start: tuple[float, float, float] | None = None
        self.others = 0.0

    def read(self) -> float:
        """The cores others took in the last window that ended (``/proc/stat`` is read
        only when a window ends)."""
        wall_now = time.perf_counter()
        if self._start is not None and wall_now - self._start[0] < WINDOW:
            return self.others
        busy = machine_busy_seconds()
        if busy is None:
            return 0.0
        now = (wall_now, busy, time.process_time())
        if self._start is None:
            self._start = now
        wall = now[0] - self._start[0]
        if wall >= WINDOW:
            theirs = (now[1] - self._start[1]) - (now[2] - self._start[2])
            self.others = max(theirs, 0.0) / wall
            self._start = now
        return self.others


def free_cores(others: float, cpus: int | None = None) -> int:
    """The cores left to this process when others keep ``others`` busy, rounded to the
    nearest (at least 1)."""
    count = (os.cpu_count() or 1) if cpus is None else cpus
    return max(1, int(count - others + 0.5))


class ShardThreads:
    """Calls of one function computed up to ``workers`` at once, on a thread pool made on
    first use (and made again in a forked child, which inherits no threads).

    When other processes leave fewer than 2 cores free (:class:`LoadGauge`), the calls
    run one after the other on the calling thread instead: on a 2-core machine with one
    competing CPU-bound process, two shards on two threads waited for the one sharing a
    core and took longer than one thread alone. The results do not depend on where the
    calls ran."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.gauge = LoadGauge()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def map(self, fn: Callable[[int], R], items: Sequence[int]) -> list[R]:
        """``[fn(i) for i in items]``, computed on the pool (or, on a busy machine, on the
        calling thread) under the calling thread's NumPy floating-point error settings
        (``np.errstate``; threads do not inherit them). Every call is awaited before an
        error is raised: the first, in ``items``' order."""
        if free_cores(self.gauge.read()) < 2:
            return _one_by_one(fn, items)
        pool = self._pool
        if pool is None or self._pid != os.getpid():
            pool = self._pool = ThreadPoolExecutor(self.workers, "fnn-shard")
            self._pid = os.getpid()
        errors, handler = np.geterr(), np.geterrcall()

        def run(i: int) -> R:
            settings = np.errstate(**errors)
            if handler is not None:
                settings = np.errstate(call=handler, **errors)
            with settings:
                return fn(i)

        futures = [pool.submit(run, i) for i in items]
        try:
            concurrent.futures.wait(futures)
        except BaseException:  # interrupted: drop the calls not yet started
            for future in futures:
                future.cancel()
            raise
        return [future.result() for future in futures]


def _one_by_one(fn: Callable[[int], R], items: Sequence[int]) -> list[R]:
    """``[fn(i) for i in items]`` on this thread, every call made before the first error
    (in ``items``' order) is raised, as on the pool."""
    results: list[R] = []
    first: Exception | None = None
    for i in items:
        try:
            results.append(fn(i))
        except Exception as error:  # the others still run, as they would on the pool
            first = first or error
    if first is not None:
        raise first
    return results
