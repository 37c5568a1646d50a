"""What tests/parallel/test_mpi.py runs under ``mpirun`` (each process runs this file).

``python tests/parallel/mpi_script.py fit OUT SHARDS``: fnn.fit of a small CNN with batch norm and
dropout on synthetic data, over ``fnn.parallel.world()`` (None outside mpirun); process 0
writes the fingerprints of the params and the optimizer state and the history to OUT (JSON).

``python tests/parallel/mpi_script.py cli ARGS...``: ``fnn ARGS...`` on the synthetic stand-in for
Fashion-MNIST of tests/test_cli.py; ``cli-labels`` and ``cli-rows``: the same, process 1's
data with other labels or fewer rows; ``cli-stop``: process 1 stops itself (SIGSTOP) at its
third step.

``python tests/parallel/mpi_script.py fail OUT SHARDS``: as ``fit``, but process 1 raises at its
third step.

``python tests/parallel/mpi_script.py disagree OUT SHARDS``: as ``fit``, but process 1 has half
the training rows (fewer steps an epoch), and the processes first agree on the data's
SHA-256 and shapes (:func:`fnn.parallel.agree`; ``--no-agree``: they train without).

``python tests/parallel/mpi_script.py stop OUT SHARDS SECONDS``: as ``fit`` over
``with_timeout(world(), SECONDS)``, but process 1 stops itself (SIGSTOP) at its third step.

``python tests/parallel/mpi_script.py overhead REPEATS``: the median time of the reductions
of a training step on a 218 KB float32 vector, with and without ``with_timeout``
(process 0 prints a table).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

import fnn
from fnn import cli, losses, nn, optim, parallel, random


def model() -> nn.Layer[Any, Any]:
    return nn.cnn((8, 8), 3, channels=(4,), dense_size=6, batch_norm=True, padding="same")


def fit(
    out: Path,
    shards: int,
    fail_on: int | None = None,
    fewer_rows_on: int | None = None,
    agree: bool = True,
    stop_on: int | None = None,
    timeout: float | None = None,
) -> None:
    comm = parallel.with_timeout(parallel.world(), timeout)
    rank, _ = parallel.rank_and_size(comm)
    key = random.key(3)
    rows = 48 if rank == fewer_rows_on else 96
    x = random.uniform(key, (96, 8, 8))[:rows]
    y = (random.permutation(key, 96) % 3)[:rows]
    steps = [0]

    def loss(pred: Any, target: Any) -> tuple[float, Any]:
        steps[0] += 1
        if rank in (fail_on, stop_on) and steps[0] == 3:
            if rank == stop_on:
                os.kill(os.getpid(), signal.SIGSTOP)
            raise RuntimeError("a failure on purpose")
        return losses.softmax_cross_entropy(pred, target)

    with parallel.abort_on_error(comm):
        if agree:
            facts = {"sha256": fnn.tree.fingerprint((x, y)), "x": list(x.shape), "y": list(y.shape)}
            parallel.agree(comm, {"data": facts}, what="the training data")
        state = fnn.fit(model(), loss, optim.adam(1e-2), x, y, key=key, epochs=2,
                        batch_size=24, validation_split=0.25, shards=shards, comm=comm)  # fmt: skip
    if rank == 0:
        record = {
            "params": fnn.tree.fingerprint(state.params),
            "opt": fnn.tree.fingerprint(state.opt),  # the moments too
            "model_state": fnn.tree.fingerprint(state.model_state),
            "history": [[r.loss, r.accuracy, r.val_loss] for r in state.history],
        }
        out.write_text(json.dumps(record))


def overhead(repeats: int) -> None:
    """Time, on every process, each exchange of a training step on a 218 KB float32 vector
    (half the MLP's gradient): ``reduce_shards`` (every process sums all of it) and
    ``reduce_scatter_shards`` followed by ``gather_spans`` (the shared-out update), over
    the plain communicator and through ``with_timeout``, in interleaved rounds; process 0
    prints the medians in microseconds."""
    plain = parallel.world()
    assert plain is not None, "run under mpirun with a power of two processes"
    timed = parallel.with_timeout(plain, 300)
    rank, size = parallel.rank_and_size(plain)
    vector = random.normal(random.key(rank), (54_600,))  # 218,400 bytes
    mine = {s: [vector] for s in parallel.owned_shards(size, plain)}
    template = [np.empty_like(vector)]

    def reduce(comm: parallel.Communicator) -> None:
        parallel.reduce_shards(mine, size, [True] * size, template, comm)

    def scatter_gather(comm: parallel.Communicator) -> None:
        part, _ = parallel.reduce_scatter_shards({s: v[0] for s, v in mine.items()}, size, comm)
        parallel.gather_spans([part], len(vector), comm)

    cases: dict[str, Callable[[parallel.Communicator], None]] = {
        "reduce_shards": reduce, "reduce_scatter_shards + gather_spans": scatter_gather
    }  # fmt: skip
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(10):  # rounds: the VM's noise falls on both alike
        for name, case in cases.items():
            for label, comm in (("plain", plain), ("with_timeout", timed)):
                for _ in range(repeats // 10):
                    began = time.perf_counter()
                    case(comm)
                    times.setdefault((name, label), []).append(time.perf_counter() - began)
    if rank == 0:
        for name in cases:
            plain_us, timed_us = (statistics.median(times[name, label]) * 1e6
                                  for label in ("plain", "with_timeout"))  # fmt: skip
            print(f"{name}: {plain_us:.1f} us plain, {timed_us:.1f} us with_timeout "
                  f"({timed_us - plain_us:+.1f} us), median of {repeats}")  # fmt: skip


def main(argv: list[str]) -> int:
    if argv[0] == "fit":
        fit(Path(argv[1]), int(argv[2]))
        return 0
    if argv[0] == "fail":
        fit(Path(argv[1]), int(argv[2]), fail_on=1)
        return 0
    if argv[0] == "disagree":
        fit(Path(argv[1]), int(argv[2]), fewer_rows_on=1, agree="--no-agree" not in argv)
        return 0
    if argv[0] == "stop":
        fit(Path(argv[1]), int(argv[2]), stop_on=1, timeout=float(argv[3]))
        return 0
    if argv[0] == "overhead":
        overhead(int(argv[1]))
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests import test_cli

    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))

    def load(name: str, **kwargs: Any) -> fnn.data.Dataset:
        data = test_cli.synthetic(name)
        if argv[0] == "cli-labels" and rank == 1:  # labels of the same shape, shuffled
            y = np.roll(data.y_train, 1)
            sums = {"train-labels-idx1-ubyte": fnn.tree.fingerprint(y)}
            return attrs.evolve(data, y_train=y, sha256={**data.sha256, **sums})
        if argv[0] == "cli-rows" and rank == 1:  # fewer training images
            return attrs.evolve(data, x_train=data.x_train[:500], y_train=data.y_train[:500])
        return data

    fnn.data.load_dataset = load  # type: ignore[assignment]
    if argv[0] == "cli-stop" and rank == 1:  # process 1 stops itself at its third step
        calls = [0]
        real = fnn.losses.softmax_cross_entropy

        def stopping(pred: Any, target: Any) -> tuple[float, Any]:
            calls[0] += 1
            if calls[0] == 3:
                os.kill(os.getpid(), signal.SIGSTOP)
            return real(pred, target)

        fnn.losses.softmax_cross_entropy = stopping  # type: ignore[assignment]
    np.seterr(all="raise")
    return cli.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
