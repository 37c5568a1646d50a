"""The sharded training step: bit-identical for any number of processes (played by threads)
and of shard threads, every update path, evaluation shared out, resume across process
counts, and errors and threads in shards."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import losses, nn, optim, parallel, random
from tests.parallel.fake_comm import Channels, FakeComm, on_threads

Array = np.ndarray[Any, Any]

MODEL = nn.cnn((8, 8), 3, channels=(4,), dense_size=6, batch_norm=True, padding="same")

X = random.uniform(random.key(3), (80, 8, 8))

Y = random.permutation(random.key(3), 80) % 3


def fit(shards: int, comm: Any = None, epochs: int = 2, state: Any = None, **kw: Any) -> Any:
    return fnn.fit(MODEL, losses.softmax_cross_entropy, optim.adam(1e-2), X, Y,
                   key=random.key(3), epochs=epochs, batch_size=20, shards=shards, comm=comm,
                   state=state, **kw)  # fmt: skip


def test_sharded_fit_has_the_same_bits_on_1_2_and_4_threads_as_processes() -> None:
    states = [s for size in (1, 2, 4) for s in on_threads(size, lambda comm: fit(4, comm))]
    first = states[0]
    for other in states[1:]:
        assert fnn.tree.equal(other.params, first.params)
        assert fnn.tree.equal(other.opt, first.opt)  # the moments too
        assert fnn.tree.equal(other.model_state, first.model_state)
        assert repr(other.history) == repr(first.history)  # NaN val_loss: no ==
    assert first.history[-1].accuracy > 0  # counted through the reduction
    assert not fnn.tree.equal(fit(2).params, first.params)  # the bits depend on S


def count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of ``fnn.parallel.<name>`` by the sharded step (one entry per call)."""
    calls: list[int] = []
    real = getattr(parallel, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(f"fnn.parallel._step.{name}", counted)
    return calls


@pytest.mark.parametrize(
    ("opt", "rows", "scattered"),
    [
        (optim.adam(1e-2), 80, 32),  # 4 steps of 20 rows, 2 epochs, 4 processes
        (optim.adam(1e-2), 82, 32),  # plus a last batch of 2 rows: two shards empty
        (optim.adamw(1e-2), 80, 0),  # weight decay reads the params: the whole update
        (optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.1, 0.9)), 80, 0),
    ],
)
def test_every_update_path_gives_the_bits_of_one_process(
    monkeypatch: pytest.MonkeyPatch, opt: optim.Optimizer[Any], rows: int, scattered: int
) -> None:
    """Each process updates its slice of the params and moments and gathers the rest when
    it can (an elementwise optimizer, every shard nonempty); otherwise every process
    updates everything. Either way, the bits of one process."""
    x, y = random.uniform(random.key(4), (rows, 8, 8)), np.arange(rows) % 3

    def run(comm: Any) -> Any:
        return fnn.fit(PLAIN, losses.softmax_cross_entropy, opt, x, y, key=random.key(4),
                       epochs=2, batch_size=20, shards=4, comm=comm)  # fmt: skip

    one = run(None)
    calls = count_calls(monkeypatch, "gather_spans")
    for size in (2, 4):
        for state in on_threads(size, run):
            assert fnn.tree.equal(state.opt, one.opt)
            assert fnn.tree.equal(state.model_state, one.model_state)
            assert repr(state.history) == repr(one.history)
        if size == 4:
            assert len(calls) == scattered + scattered // 2  # on every thread
    assert scattered == 0 or not fnn.tree.equal(one.params, run_unsharded(opt, x, y))


PLAIN = nn.cnn((8, 8), 3, channels=(4,), dense_size=6, padding="same")
"""Without batch norm, whose training forward needs two rows a shard."""


def run_unsharded(opt: optim.Optimizer[Any], x: Array, y: Array) -> Any:
    return fnn.fit(PLAIN, losses.softmax_cross_entropy, opt, x, y, key=random.key(4),
                   epochs=2, batch_size=20).params  # fmt: skip


@pytest.mark.parametrize("size", [2, 3, 4])
def test_evaluation_shared_out_gives_the_bits_of_one_process(size: int) -> None:
    """Each process evaluates its share of the chunks (here 5 chunks of 16 rows; with 4
    processes one has two chunks) and all add the chunks' sums in order."""
    params = PLAIN.init(random.key(5), (8, 8))
    rows = random.permutation(random.key(6), 80)[:70]  # indices: rows gathered per chunk
    chunks_seen: list[int] = []

    def loss(out: Array, y: Array) -> tuple[float, Array]:
        chunks_seen.append(len(out))
        return losses.softmax_cross_entropy(out, y)

    def run(comm: Any) -> Any:
        return fnn.evaluate(PLAIN, loss, params, X, Y, batch_size=16, indices=rows, comm=comm)

    one = run(None)
    assert len(chunks_seen) == 5
    chunks_seen.clear()
    for result in on_threads(size, run):
        assert (result.loss, result.accuracy) == (one.loss, one.accuracy)  # exact
    assert sorted(chunks_seen) == [6, 16, 16, 16, 16]  # each chunk once, over all processes
    assert one.accuracy == pytest.approx(
        float(np.mean(PLAIN.apply(params, X[rows]).argmax(1) == Y[rows]))
    )


def test_one_shard_is_the_unsharded_step_and_resumes_across_process_counts() -> None:
    plain = fnn.fit(MODEL, losses.softmax_cross_entropy, optim.adam(1e-2), X, Y,
                    key=random.key(3), epochs=2, batch_size=20)  # fmt: skip
    assert fnn.tree.equal(fit(1).params, plain.params)
    whole = fit(4)
    half = on_threads(2, lambda comm: fit(4, comm, epochs=1))[0]
    resumed = on_threads(4, lambda comm: fit(4, comm, state=half))
    assert all(fnn.tree.equal(r.params, whole.params) for r in resumed)


def test_a_penalty_is_added_once_to_the_sum() -> None:
    def penalty(p: Any) -> tuple[float, Any]:
        return losses.l2_penalty(p, 0.1)

    with_penalty = on_threads(2, lambda comm: fit(2, comm, epochs=1, penalty=penalty))
    alone = fit(2, epochs=1, penalty=penalty)
    assert fnn.tree.equal(with_penalty[1].params, alone.params)
    assert not fnn.tree.equal(alone.params, fit(2, epochs=1).params)


# -- shards on threads of one process ---------------------------------------------------------


@pytest.fixture
def blas_threads(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Make ``fnn.runtime.blas_threads`` report a count (1 by default): the warning about
    competing BLAS threads depends on it, and the tests here check bits, not speed."""

    def report(count: int) -> None:
        monkeypatch.setattr("fnn._blas.threads", lambda: count)

    report(1)
    return report


def recording_loss(names: set[str]) -> Any:
    """Softmax cross-entropy that records the name of each thread it runs on."""

    @functools.wraps(losses.softmax_cross_entropy)
    def loss(out: Array, y: Array) -> tuple[float, Array]:
        names.add(threading.current_thread().name)
        return losses.softmax_cross_entropy(out, y)

    return loss


@pytest.mark.usefixtures("blas_threads")
def test_shards_on_threads_have_the_bits_of_one_thread() -> None:
    """Dropout keys, batch statistics and the gradient sum do not depend on how many shards
    run at once, nor on how the processes run theirs."""
    one = fit(4)
    for threads in (2, 3, 4):
        names: set[str] = set()
        state = fnn.fit(MODEL, recording_loss(names), optim.adam(1e-2), X, Y,
                        key=random.key(3), epochs=2, batch_size=20, shards=4,
                        threads=threads)  # fmt: skip
        assert fnn.tree.equal(state.opt, one.opt)
        assert fnn.tree.equal(state.model_state, one.model_state)
        assert repr(state.history) == repr(one.history)
        assert len(names) >= 2 and all(n.startswith("fnn-shard") for n in names), names
    for state in on_threads(2, lambda comm: fit(4, comm, threads=2)):  # 2 processes x 2
        assert fnn.tree.equal(state.opt, one.opt)
        assert repr(state.history) == repr(one.history)


@pytest.mark.usefixtures("blas_threads")
def test_an_error_in_a_shard_on_a_thread_reaches_the_caller() -> None:
    def loss(out: Array, y: Array) -> tuple[float, Array]:
        if len(out) == 4:  # the last two shards of the last batch, of 18 rows
            raise ArithmeticError("shard 3 failed")
        return losses.softmax_cross_entropy(out, y)

    with pytest.raises(ArithmeticError, match="shard 3 failed"):
        fnn.fit(PLAIN, loss, optim.adam(1e-2), X[:78], Y[:78], key=random.key(3), epochs=1,
                batch_size=20, shards=4, threads=4, accuracy=True)  # fmt: skip


@pytest.mark.usefixtures("blas_threads")
def test_shards_on_threads_keep_the_callers_errstate_and_finish_before_an_error() -> None:
    """A shard's floating-point error is the one it raises on the calling thread (the
    tests' strict numerics raise on overflow), and no shard is left running after it."""

    def overflowing(out: Array, y: Array) -> tuple[float, Array]:
        np.multiply(out, np.float32(3e38))  # overflows: raises under np.errstate(over="raise")
        return losses.softmax_cross_entropy(out, y)

    for threads in (1, 2):
        with pytest.raises(FloatingPointError, match="overflow"):
            fnn.fit(PLAIN, overflowing, optim.adam(1e-2), X, Y, key=random.key(3), epochs=1,
                    batch_size=20, shards=2, threads=threads, accuracy=True)  # fmt: skip
    finished: list[int] = []

    def slow_or_failing(out: Array, y: Array) -> tuple[float, Array]:
        if np.array_equal(y, Y[:10]):  # the first shard of the first batch (no shuffle)
            raise ArithmeticError("one shard failed")
        time.sleep(0.2)
        finished.append(len(out))
        return losses.softmax_cross_entropy(out, y)

    with pytest.raises(ArithmeticError, match="one shard failed"):
        fnn.fit(PLAIN, slow_or_failing, optim.adam(1e-2), X, Y, key=random.key(3), epochs=1,
                batch_size=20, shuffle=False, shards=2, threads=2, accuracy=True)  # fmt: skip
    assert finished == [10]  # the other shard ran to its end before the error was raised


def test_a_step_with_threads_runs_in_a_forked_child() -> None:
    """The pool is made again in a child process, which inherits no threads."""
    script = (
        "import os, signal, sys, time, fnn\n"
        "from fnn import losses, nn, optim, random\n"
        "fnn.runtime.set_blas_threads(1)\n"
        "model = nn.mlp((8, 3))\n"
        "x, y = random.uniform(random.key(0), (16, 4)), random.permutation(random.key(0), 16) % 3\n"
        "def loss(out, y):\n"
        "    time.sleep(0.05)  # both shards at once: the pool spawns both its threads\n"
        "    return losses.softmax_cross_entropy(out, y)\n"
        "opt = optim.adam(1e-2)\n"
        "step = fnn.train_step(model, loss, opt, shards=2, threads=2)\n"
        "state = fnn.train_state(opt, model.init(random.key(1), (4,)), random.key(2))\n"
        "parent = step(state, (x, y))\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    signal.alarm(20)  # a pool without threads would wait forever\n"
        "    again = step(state, (x, y))\n"
        "    os._exit(0 if fnn.tree.equal(again.params, parent.params) else 3)\n"
        "_, status = os.waitpid(child, 0)\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert done.returncode == 0


@pytest.mark.usefixtures("blas_threads")
def test_threads_are_checked() -> None:
    opt = optim.adam(1e-2)
    with pytest.raises(ValueError, match=r"threads=2 computes shards .* but shards=1"):
        fnn.train_step(PLAIN, losses.softmax_cross_entropy, opt, threads=2)
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        fnn.train_step(PLAIN, losses.softmax_cross_entropy, opt, shards=2, threads=0)
    with pytest.raises(TypeError, match="threads must be an int, got float"):
        fnn.train_step(PLAIN, losses.softmax_cross_entropy, opt, shards=2, threads=2.0)  # type: ignore[arg-type]
    # one shard per process: nothing runs at once, so nothing to warn about
    fnn.train_step(PLAIN, losses.softmax_cross_entropy, opt, shards=2, threads=2,
                   comm=FakeComm(0, 2, Channels()))  # fmt: skip


def test_shards_on_threads_run_openblas_at_one_thread_and_give_its_count_back() -> None:
    """While the shards run on threads, NumPy's OpenBLAS uses one thread (its own threads
    would compete with the shards' for the cores); before and after, the program's count."""
    script = (
        "import fnn, numpy as np\n"
        "from fnn import _blas, losses, nn, optim, random\n"
        "assert _blas.set_threads(2)\n"
        "seen = []\n"
        "def loss(out, y):\n"
        "    seen.append(_blas.threads())\n"
        "    return losses.softmax_cross_entropy(out, y)\n"
        "model, opt = nn.mlp((8, 3)), optim.adam(1e-2)\n"
        "x, y = np.ones((16, 4), np.float32), np.arange(16) % 3\n"
        "state = fnn.train_state(opt, model.init(random.key(1), (4,)), random.key(2))\n"
        "for shards, threads in ((2, 2), (2, 1)):\n"
        "    step = fnn.train_step(model, loss, opt, shards=shards, threads=threads)\n"
        "    step(state, (x, y))\n"
        "    assert _blas.threads() == 2\n"
        "assert seen == [1, 1, 2, 2], seen\n"
    )
    subprocess.run([sys.executable, "-c", script], timeout=60, check=True)
