"""Data parallelism: the shard plan, the fixed-order reduction (on threads standing in for
processes, and on real MPI processes when mpirun and mpi4py are there), sharded training
bit-identical for any number of processes, resume across process counts, failures."""

from __future__ import annotations

import functools
import importlib.util
import io
import itertools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fnn
from fnn import cli, losses, nn, optim, parallel, random

Array = np.ndarray[Any, Any]
HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "mpi_script.py"


# -- the plan ------------------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "shards"), [(10, 4), (128, 2), (3, 4), (0, 2), (7, 7)])
def test_shard_bounds_are_contiguous_and_balanced(rows: int, shards: int) -> None:
    bounds = parallel.shard_bounds(rows, shards)
    assert len(bounds) == shards and bounds[0][0] == 0 and bounds[-1][1] == rows
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [hi - lo for lo, hi in bounds]
    assert sizes == sorted(sizes, reverse=True) and max(sizes) - min(sizes) <= 1


def test_the_plan_needs_the_processes_to_divide_the_shards() -> None:
    with pytest.raises(ValueError, match=r"multiple of the number of processes \(2\), got 3"):
        parallel.check_plan(3, FakeComm(0, 2, Channels()))
    with pytest.raises(ValueError, match="shards must be >= 1"):
        parallel.check_plan(0, None)
    assert parallel.owned_shards(8, FakeComm(1, 4, Channels())) == range(2, 4)


def test_world_is_none_outside_mpirun_and_names_the_missing_mpi4py(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert parallel.launched_processes({}) == 1
    assert parallel.launched_processes({"OMPI_COMM_WORLD_SIZE": "4"}) == 4
    assert parallel.launched_processes({"PMI_SIZE": "3"}) == 3
    assert parallel.world({"OMPI_COMM_WORLD_SIZE": "1"}) is None

    def missing(name: str) -> Any:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr("importlib.import_module", missing)
    with pytest.raises(ImportError, match=r"mpirun with 4 processes.*pip install 'fnn\[mpi\]'"):
        parallel.world({"OMPI_COMM_WORLD_SIZE": "4"})
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(["train", "--quiet"], out=io.StringIO()) == 2
    assert "fnn train: error: started by mpirun with 4 processes" in err.getvalue()


# -- processes played by threads -------------------------------------------------------------


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

    def Abort(self, errorcode: int = 0) -> None:  # noqa: N802
        raise AssertionError("abort")


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


def shard_vectors(shards: int) -> dict[int, list[Array]]:
    """Per-shard float32 vectors of very different magnitudes: the order of additions
    shows in the bits."""
    vectors = {}
    for s in range(shards):
        scale = np.float32(10.0 ** (3 * (s % 3) - 3))
        v = random.normal(random.key(s), (1000,)) * scale
        vectors[s] = [v, np.array([s + 0.1], np.float64)]
    return vectors


def tree_sum(vectors: dict[int, list[Array]], lo: int, hi: int) -> list[Array]:
    """The module docstring's order, written out: [lo, mid) + [mid, hi)."""
    if hi - lo == 1:
        return vectors[lo]
    mid = (lo + hi) // 2
    return [a + b for a, b in zip(tree_sum(vectors, lo, mid), tree_sum(vectors, mid, hi))]


@pytest.mark.parametrize(("shards", "sizes"), [(4, (1, 2, 4)), (6, (1, 2, 3, 6)), (8, (1, 4, 8))])
def test_reduce_shards_has_the_same_bits_for_any_number_of_processes(
    shards: int, sizes: tuple[int, ...]
) -> None:
    vectors = shard_vectors(shards)
    template = [np.empty_like(v) for v in vectors[0]]
    expected = tree_sum(vectors, 0, shards)
    left_fold = vectors[0][0].copy()
    for s in range(1, shards):
        left_fold = left_fold + vectors[s][0]
    assert left_fold.tobytes() != expected[0].tobytes()  # the order matters for these

    for size in sizes:

        def work(comm: FakeComm | None, size: int = size) -> list[Array]:
            mine = parallel.owned_shards(shards, comm)
            local = {s: vectors[s] for s in mine}
            return parallel.reduce_shards(local, shards, [True] * shards, template, comm)

        for result in on_threads(size, work):
            assert [r.tobytes() for r in result] == [e.tobytes() for e in expected], size


def test_empty_shards_are_left_out_on_any_number_of_processes() -> None:
    vectors = shard_vectors(4)
    nonempty = [True, False, True, False]
    template = [np.empty_like(v) for v in vectors[0]]
    expected = [a + b for a, b in zip(vectors[0], vectors[2])]
    for size in (1, 2, 4):

        def work(comm: FakeComm | None) -> list[Array]:
            local = {s: vectors[s] for s in parallel.owned_shards(4, comm) if nonempty[s]}
            return parallel.reduce_shards(local, 4, nonempty, template, comm)

        for result in on_threads(size, work):
            assert [r.tobytes() for r in result] == [e.tobytes() for e in expected]


@pytest.mark.parametrize(
    ("shards", "size", "length"),
    [(2, 2, 1000), (4, 4, 7), (8, 8, 1000), (8, 4, 3), (8, 8, 3), (8, 8, 1), (4, 4, 0)],
)
def test_reduce_scatter_then_gather_give_the_bits_of_reduce_shards(
    shards: int, size: int, length: int
) -> None:
    vectors = {s: v[0][:length] for s, v in shard_vectors(shards).items()}
    expected = tree_sum({s: [v] for s, v in vectors.items()}, 0, shards)[0]
    spans = [parallel.span(length, r, size) for r in range(size)]
    assert sorted(spans)[0][0] == 0 and sorted(spans)[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(sorted(spans)))  # a tiling

    def work(comm: FakeComm | None) -> tuple[Array, tuple[int, int], list[Array]]:
        assert comm is not None and parallel.scatters(comm)
        local = {s: vectors[s] for s in parallel.owned_shards(shards, comm)}
        part, span = parallel.reduce_scatter_shards(local, shards, comm)
        doubled = part * 2
        return part, span, parallel.gather_spans([part, doubled], length, comm)

    for rank, (part, span, whole) in enumerate(on_threads(size, work)):
        assert span == spans[rank]
        assert part.tobytes() == expected[span[0] : span[1]].tobytes()
        assert whole[0].tobytes() == expected.tobytes()
        assert whole[1].tobytes() == (expected * 2).tobytes()


def test_scatters_only_for_a_power_of_two_processes() -> None:
    assert not parallel.scatters(None)
    assert [parallel.scatters(FakeComm(0, n, Channels())) for n in (1, 2, 3, 4, 6, 8)] == [
        False, True, False, True, False, True,
    ]  # fmt: skip


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
    monkeypatch: pytest.MonkeyPatch, opt: optim.Optimizer, rows: int, scattered: int
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


def run_unsharded(opt: optim.Optimizer, x: Array, y: Array) -> Any:
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


# -- shards on threads of one process -------------------------------------------------------


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


def test_threads_are_checked_and_competing_blas_threads_are_named(
    blas_threads: Callable[[int], None],
) -> None:
    opt = optim.adam(1e-2)
    with pytest.raises(ValueError, match=r"threads=2 computes shards .* but shards=1"):
        fnn.train_step(PLAIN, losses.softmax_cross_entropy, opt, threads=2)
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        fnn.train_step(PLAIN, losses.softmax_cross_entropy, opt, shards=2, threads=0)
    with pytest.raises(TypeError, match="threads must be an int, got float"):
        fnn.train_step(PLAIN, losses.softmax_cross_entropy, opt, shards=2, threads=2.0)  # type: ignore[arg-type]
    blas_threads(4)
    with pytest.warns(RuntimeWarning, match=r"2 shards at once .* uses 4 threads .*"
                      r"set_blas_threads\(1\)") as caught:  # fmt: skip
        fnn.train_step(PLAIN, losses.softmax_cross_entropy, opt, shards=2, threads=2)
    with pytest.warns(RuntimeWarning, match="2 shards at once") as through_fit:
        fnn.fit(PLAIN, losses.softmax_cross_entropy, opt, X[:8], Y[:8], key=random.key(0),
                epochs=1, batch_size=8, shards=2, threads=2)  # fmt: skip
    assert caught[0].filename == through_fit[0].filename == __file__  # the caller's line
    # one shard per process: nothing runs at once, so nothing to warn about
    fnn.train_step(PLAIN, losses.softmax_cross_entropy, opt, shards=2, threads=2,
                   comm=FakeComm(0, 2, Channels()))  # fmt: skip


def test_fnn_train_splits_its_threads_between_shards_and_blas() -> None:
    four = FakeComm(0, 4, Channels())
    plans = [parallel.thread_plan(t, s, c) for t, s, c in
             [(1, 1, None), (2, 1, None), (2, 2, None), (4, 2, None), (3, 2, None),
              (2, 4, four), (2, 8, four)]]  # fmt: skip
    assert plans == [(1, 1), (1, 2), (2, 1), (2, 1), (2, 1), (1, 2), (2, 1)]
    with pytest.raises(ValueError, match=r"shards must be a multiple of .*2"):
        parallel.thread_plan(2, 1, FakeComm(0, 2, Channels()))
    with pytest.raises(cli.UsageError, match=r"--shards 1: shards must be a multiple of .*2"):
        cli.thread_plan(2, 1, FakeComm(0, 2, Channels()))


# -- real processes (mpirun) -----------------------------------------------------------------

MPIRUN = shutil.which("mpirun")
needs_mpi = pytest.mark.skipif(
    MPIRUN is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs Open MPI's mpirun and mpi4py (pip install 'fnn[mpi]')",
)


def mpirun(n: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert MPIRUN is not None
    command = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(n)]
    return subprocess.run(
        [*command, sys.executable, str(SCRIPT), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@needs_mpi
def test_fit_on_1_2_and_4_mpi_processes_ends_on_the_same_bits(tmp_path: Path) -> None:
    records = []
    for n in (1, 2, 4):
        out = tmp_path / f"{n}.json"
        done = mpirun(n, "fit", str(out), "4")
        assert done.returncode == 0, done.stderr
        records.append(json.loads(out.read_text()))
    assert records[0] == records[1] == records[2]


@needs_mpi
def test_fnn_train_resumes_on_another_number_of_processes(tmp_path: Path) -> None:
    args = ("--model", "cnn", "--batch-norm", "--shards", "4", "--epochs", "2",
            "--batch-size", "32", "--quiet", "--no-plots")  # fmt: skip
    done = mpirun(4, "cli", "train", "--out", str(tmp_path / "four"), *args)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout and done.stdout.count("test accuracy") == 1
    done = mpirun(2, "cli", "train", "--out", str(tmp_path / "part"), *args, "--stop-after", "1")
    assert done.returncode == 0, done.stderr
    done = mpirun(1, "cli", "train", "--resume", str(tmp_path / "part"), "--quiet", "--no-plots")
    assert done.returncode == 0, done.stderr
    records = [json.loads((tmp_path / d / "run.json").read_text()) for d in ("four", "part")]
    assert records[0]["params_sha256"] == records[1]["params_sha256"]
    assert records[0]["epochs"] == records[1]["epochs"]


@needs_mpi
def test_an_error_on_one_process_ends_the_run(tmp_path: Path) -> None:
    began = time.monotonic()
    done = mpirun(2, "fail", str(tmp_path / "out.json"), "2", timeout=60)
    assert done.returncode != 0
    assert "process 1 of 2: RuntimeError: a failure on purpose" in done.stderr
    assert time.monotonic() - began < 30
    assert not (tmp_path / "out.json").exists()


def rank_pids(marker: str, rank: int) -> list[int]:
    """The pids of the processes of rank ``rank`` whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in command and f"OMPI_COMM_WORLD_RANK={rank}\0".encode() in environ:
            found.append(int(entry.name))
    return found


@needs_mpi
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
def test_a_killed_process_ends_the_run_and_the_checkpoint_stays_whole(tmp_path: Path) -> None:
    assert MPIRUN is not None
    out = tmp_path / "killed"
    command = [MPIRUN, "--allow-run-as-root", "-n", "2", sys.executable, str(SCRIPT), "cli",
               "train", "--out", str(out), "--shards", "2", "--epochs", "1000",
               "--batch-size", "32", "--quiet", "--no-plots"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as job:
        checkpoint = out / "checkpoints" / "last.npz"
        deadline = time.monotonic() + 60
        while not checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert checkpoint.exists(), "no checkpoint within 60 s"
        pids = rank_pids(str(out), 1)
        assert len(pids) == 1
        os.kill(pids[0], signal.SIGKILL)
        began = time.monotonic()
        try:
            job.wait(timeout=30)
        finally:
            job.kill()
        assert job.returncode != 0
        assert time.monotonic() - began < 30
    state = fnn.io.load(checkpoint)  # written atomically: whole, whatever the kill hit
    assert isinstance(state, fnn.TrainState) and state.epoch >= 1
