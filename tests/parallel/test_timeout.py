"""fnn.parallel.with_timeout (fnn/parallel/_timeout.py): a process whose partner never
answers raises TimeoutError after the timeout instead of waiting forever; when the
partners answer, the exchanges give the bits they give without it (processes played by
threads)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import losses, optim, parallel, random
from tests.parallel.fake_comm import Channels, FakeComm, on_threads
from tests.parallel.test_step import MODEL, X, Y

Array = np.ndarray[Any, Any]


def alone(rank: int = 0, size: int = 2, seconds: float = 0.2) -> parallel.Communicator:
    """Process ``rank`` of ``size`` whose partners never answer, waiting ``seconds``."""
    return parallel.with_timeout(FakeComm(rank, size, Channels()), seconds)


def gives_up(call: Callable[[], object], message: str, seconds: float = 0.2) -> None:
    """``call()`` raises TimeoutError with ``message`` after about ``seconds``."""
    began = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        call()
    assert str(caught.value) == message
    assert seconds <= time.monotonic() - began < seconds + 2


def test_a_partner_that_never_answers_ends_the_wait_with_a_timeout_error() -> None:
    buf = np.zeros(4, np.float32)
    tail = "after waiting 0.2 s (the timeout): it may be stopped, hung or far slower"
    gives_up(
        lambda: alone().Recv(buf, source=1, tag=0),
        f"process 0 of 2 gave up on Recv from process 1 {tail}",
    )
    gives_up(
        lambda: alone(1).Sendrecv(buf, 0, 0, np.zeros(4, np.float32), 0, 0),
        f"process 1 of 2 gave up on Sendrecv with process 0 {tail}",
    )
    gives_up(
        lambda: alone(2, 3).Bcast(buf, root=0),
        f"process 2 of 3 gave up on Bcast from process 0 {tail}",
    )
    gives_up(
        lambda: parallel.agree(alone(1, 4), {"seed": 0}),  # agree's Allgather
        "process 1 of 4 gave up on Allgather with the other processes after waiting 0.2 s "
        "(the timeout): one may be stopped, hung or far slower",
    )


def test_a_reduction_on_a_stopped_partner_times_out_on_every_path() -> None:
    """reduce_shards (partner swaps and, for 3 processes, Send/Recv and Bcast), the
    reduce-scatter and the gather: each gives up instead of waiting forever."""
    template = [np.zeros(8, np.float32)]
    values = {0: [np.ones(8, np.float32)]}
    for size in (2, 3):
        with pytest.raises(TimeoutError, match=f"process 0 of {size} gave up on"):
            parallel.reduce_shards(values, size, [True] * size, template, alone(0, size))
    with pytest.raises(TimeoutError, match="process 0 of 2 gave up on Sendrecv with process 1"):
        parallel.reduce_scatter_shards({0: np.ones(8, np.float32)}, 2, alone())
    with pytest.raises(TimeoutError, match="process 0 of 2 gave up on Sendrecv with process 1"):
        parallel.gather_spans([np.ones(4, np.float32)], 8, alone())


def fit(comm: parallel.Communicator | None, opt: optim.Optimizer[Any], shards: int) -> Any:
    return fnn.fit(MODEL, losses.softmax_cross_entropy, opt, X, Y, key=random.key(3), epochs=2,
                   batch_size=20, validation_split=0.25, shards=shards, comm=comm)  # fmt: skip


@pytest.mark.parametrize("opt", [optim.adam(1e-2), optim.adamw(1e-2)])
@pytest.mark.parametrize("size", [2, 3])
def test_answered_exchanges_give_the_same_bits_through_the_timeout(
    size: int, opt: optim.Optimizer[Any]
) -> None:
    """fit (partner swaps or Send/Recv/Bcast, the shared-out update's gathers, evaluation)
    and agree, on processes whose exchanges all go through the timeout."""
    shards = 2 * size
    one = fit(None, opt, shards)

    def run(comm: FakeComm | None) -> Any:
        assert comm is not None
        timed = parallel.with_timeout(comm, 30)
        parallel.agree(timed, {"seed": 3})
        return fit(timed, opt, shards)

    for state in on_threads(size, run):
        assert fnn.tree.equal(state.opt, one.opt)
        assert fnn.tree.equal(state.model_state, one.model_state)
        assert repr(state.history) == repr(one.history)


def test_no_timeout_is_the_communicator_itself_and_the_seconds_are_checked() -> None:
    comm = FakeComm(0, 2, Channels())
    assert parallel.with_timeout(comm, None) is comm
    assert parallel.with_timeout(comm, 0) is comm
    assert parallel.with_timeout(None, 300) is None
    with pytest.raises(ValueError, match=r"seconds must be >= 0 and finite, got -1"):
        parallel.with_timeout(comm, -1)
    with pytest.raises(ValueError, match=r"seconds must be >= 0 and finite, got inf"):
        parallel.with_timeout(comm, float("inf"))
    with pytest.raises(TypeError, match="seconds must be a number, got str '5'"):
        parallel.with_timeout(comm, "5")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"needs a communicator with nonblocking calls .* Isend"):
        parallel.with_timeout(object(), 5)  # type: ignore[call-overload]
    timed = parallel.with_timeout(comm, 5)
    assert parallel.rank_and_size(timed) == (0, 2)


def test_a_timeout_is_reported_and_aborts_every_process() -> None:
    """abort_on_error reports the TimeoutError and calls the communicator's Abort (the
    fake raises AssertionError("abort"))."""
    reported: list[str] = []
    timed = alone(1, 2)
    with (
        pytest.raises(AssertionError, match="abort"),
        parallel.abort_on_error(timed, reported.append),
    ):
        timed.Recv(np.zeros(1), source=0, tag=0)
    assert reported == [
        "process 1 of 2: TimeoutError: process 1 of 2 gave up on Recv from process 0 after "
        "waiting 0.2 s (the timeout): it may be stopped, hung or far slower\n"
    ]
