"""Processes played by threads: an in-process communicator with the MPI calls fnn makes
(blocking, and the nonblocking ones :func:`fnn.parallel.with_timeout` waits on), and a
function run on several such ranks at once."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


class Channels:
    """FIFO queues between threads, one per (source, destination, tag)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queues: dict[tuple[int, int, Any], queue.Queue[Array]] = {}

    def __call__(self, source: int, dest: int, tag: Any) -> queue.Queue[Array]:
        with self.lock:
            return self.queues.setdefault((source, dest, tag), queue.Queue())


class FakeComm:
    """An in-process communicator: rank ``rank`` of ``size`` threads."""

    def __init__(self, rank: int, size: int, channels: Channels) -> None:
        self.rank, self.size, self.channels = rank, size, channels
        self.sent = 0

    def Get_rank(self) -> int:  # noqa: N802
        return self.rank

    def Get_size(self) -> int:  # noqa: N802
        return self.size

    def Send(self, buf: Any, dest: int, tag: int = 0) -> None:  # noqa: N802
        self.sent += 1
        self.channels(self.rank, dest, tag).put(np.array(buf, copy=True))

    def Recv(self, buf: Any, source: int, tag: int) -> None:  # noqa: N802
        got = self.channels(source, self.rank, tag).get(timeout=60)
        assert isinstance(buf, np.ndarray) and buf.flags.c_contiguous  # as MPI needs
        assert (got.size, got.dtype) == (buf.size, buf.dtype), "MPI_ERR_TRUNCATE"
        buf[...] = got.reshape(buf.shape)

    def Bcast(self, buf: Any, root: int = 0) -> None:  # noqa: N802
        if self.rank == root:
            for other in range(self.size):
                if other != root:
                    self.channels(root, other, "bcast").put(np.array(buf, copy=True))
        else:
            buf[...] = self.channels(root, self.rank, "bcast").get(timeout=60)

    def Sendrecv(  # noqa: N802
        self, sendbuf: Any, dest: int, sendtag: int, recvbuf: Any, source: int, recvtag: int
    ) -> None:
        self.Send(sendbuf, dest, sendtag)
        self.Recv(recvbuf, source, recvtag)

    def Allgather(self, sendbuf: Any, recvbuf: Any) -> None:  # noqa: N802
        self.Iallgather(sendbuf, recvbuf).Wait()

    def Abort(self, errorcode: int = 0) -> None:  # noqa: N802
        raise AssertionError("abort")

    # nonblocking: a request's Test takes what has arrived, never waits

    def Isend(self, buf: Any, dest: int, tag: int = 0) -> FakeRequest:  # noqa: N802
        self.Send(buf, dest, tag)
        return FakeRequest([])

    def Irecv(self, buf: Any, source: int, tag: int) -> FakeRequest:  # noqa: N802
        return FakeRequest([(self.channels(source, self.rank, tag), buf)])

    def Ibcast(self, buf: Any, root: int = 0) -> FakeRequest:  # noqa: N802
        if self.rank != root:
            return FakeRequest([(self.channels(root, self.rank, "bcast"), buf)])
        self.Bcast(buf, root)
        return FakeRequest([])

    def Iallgather(self, sendbuf: Any, recvbuf: Any) -> FakeRequest:  # noqa: N802
        assert isinstance(recvbuf, np.ndarray) and recvbuf.flags.c_contiguous
        assert recvbuf.size == sendbuf.size * self.size, "MPI_ERR_TRUNCATE"
        rows = recvbuf.reshape(self.size, -1)
        rows[self.rank] = sendbuf.reshape(-1)
        for other in range(self.size):
            if other != self.rank:
                self.channels(self.rank, other, "allgather").put(np.array(sendbuf, copy=True))
        waits = [self.channels(r, self.rank, "allgather") for r in range(self.size)]
        return FakeRequest([(w, rows[r]) for r, w in enumerate(waits) if r != self.rank])


class FakeRequest:
    """A nonblocking call's request: done when each of its queues has given its buffer an
    array of the buffer's size and dtype (as MPI's receives need)."""

    def __init__(self, waits: list[tuple[queue.Queue[Array], Array]]) -> None:
        self.waits = waits

    def Test(self) -> bool:  # noqa: N802
        while self.waits:
            channel, buf = self.waits[0]
            try:
                got = channel.get_nowait()
            except queue.Empty:
                return False
            assert buf.flags.c_contiguous
            assert (got.size, got.dtype) == (buf.size, buf.dtype), "MPI_ERR_TRUNCATE"
            buf[...] = got.reshape(buf.shape)
            self.waits.pop(0)
        return True

    def Wait(self) -> None:  # noqa: N802
        deadline = time.monotonic() + 60
        while not self.Test():
            assert time.monotonic() < deadline, "no message within 60 s"
            time.sleep(0.0001)


def on_threads(size: int, work: Callable[[FakeComm | None], Any]) -> list[Any]:
    """``work(comm)`` on ``size`` threads, each its own rank (``work(None)`` for 1)."""
    if size == 1:
        return [work(None)]
    channels = Channels()
    results: list[Any] = [None] * size
    errors: list[BaseException] = []

    def run(rank: int) -> None:
        try:
            results[rank] = work(FakeComm(rank, size, channels))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
