"""What tests/parallel/test_mpi.py runs under ``mpirun`` (each process runs this file).

``python tests/parallel/mpi_script.py fit OUT SHARDS``: fnn.fit of a small CNN with batch norm and
dropout on synthetic data, over ``fnn.parallel.world()`` (None outside mpirun); process 0
writes the fingerprints of the params and the optimizer state and the history to OUT (JSON).

``python tests/parallel/mpi_script.py cli ARGS...``: ``fnn ARGS...`` on the synthetic stand-in for
Fashion-MNIST of tests/test_cli.py.

``python tests/parallel/mpi_script.py fail``: as ``fit``, but process 1 raises at its third step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

import fnn
from fnn import cli, losses, nn, optim, parallel, random


def model() -> nn.Layer[Any]:
    return nn.cnn((8, 8), 3, channels=(4,), dense_size=6, batch_norm=True, padding="same")


def fit(out: Path, shards: int, fail_on: int | None = None) -> None:
    comm = parallel.world()
    rank, _ = parallel.rank_and_size(comm)
    key = random.key(3)
    x = random.uniform(key, (96, 8, 8))
    y = random.permutation(key, 96) % 3
    steps = [0]

    def loss(pred: Any, target: Any) -> tuple[float, Any]:
        steps[0] += 1
        if fail_on is not None and rank == fail_on and steps[0] == 3:
            raise RuntimeError("a failure on purpose")
        return losses.softmax_cross_entropy(pred, target)

    with parallel.abort_on_error(comm):
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


def main(argv: list[str]) -> int:
    if argv[0] == "fit":
        fit(Path(argv[1]), int(argv[2]))
        return 0
    if argv[0] == "fail":
        fit(Path(argv[1]), int(argv[2]), fail_on=1)
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests import test_cli

    fnn.data.load_dataset = lambda name, **kwargs: test_cli.synthetic(name)
    np.seterr(all="raise")
    return cli.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
