"""The small CNN of ``fnn train --model cnn``, and what dropout and batch norm do to it.

The network (``fnn.nn.cnn(padding="same")``): conv 32 3x3, ReLU, max-pool 2, conv 64
3x3, ReLU, max-pool 2, dense 128, ReLU, dropout, dense 10; Adam with a learning rate
cosine-decayed from 1e-3, batches of 64, 10% of the training set held out for validation,
seed 0: the recipe of ``fnn train --model cnn``. By default it trains that network
(dropout 0.5, no batch norm) and saves it; with ``--compare`` it trains four variants (no
dropout, no batch norm; dropout; batch norm; both) and draws their training and
validation losses and accuracies in ``compare_loss.png`` and ``compare_accuracy.png``: the
gap between the curves is what dropout and batch norm act on.

Run: ``python examples/cnn.py`` (``--epochs 5``, ``--limit 5000``, ``--compare``, ...).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import _common

import fnn
from fnn import data, losses, nn, optim

VARIANTS = {"plain": (0.0, False), "dropout": (0.5, False), "batch norm": (0.0, True),
            "both": (0.5, True)}  # fmt: skip
"""Each variant's dropout rate and whether it uses batch norm."""
BATCH = 64


def train(ds: _common.Data, epochs: int, seed: int, dropout: float, batch_norm: bool) -> Any:
    """Train one CNN; returns the model, the final state, the test result and epoch times."""
    model = nn.cnn(
        ds.x_train.shape[1:],
        len(ds.classes),
        dropout=dropout,
        batch_norm=batch_norm,
        padding="same",
    )
    n_fit = len(ds.x_train) - round(0.1 * len(ds.x_train))
    steps = epochs * data.num_batches(n_fit, BATCH)
    timer = fnn.callbacks.EpochTimes()
    state = fnn.fit(
        model,
        losses.softmax_cross_entropy,
        optim.adam(optim.cosine_decay(1e-3, steps)),
        ds.x_train,
        ds.y_train,
        key=fnn.random.key(seed),
        epochs=epochs,
        batch_size=BATCH,
        validation_split=0.1,
        callbacks=[fnn.callbacks.progress_bar(), timer],
    )
    test = fnn.evaluate(
        model,
        losses.softmax_cross_entropy,
        state.params,
        ds.x_test,
        ds.y_test,
        model_state=state.model_state,
    )
    return model, state, test, timer


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__, epochs=15, out="cnn")
    p.add_argument("--compare", action="store_true", help="train the four variants")
    args = p.parse_args(argv)
    ds = _common.setup(args)

    if not args.compare:
        model, state, test, timer = train(ds, args.epochs, args.seed, 0.5, False)
        return _common.report(args, ds, model, state, test, timer)

    histories, rows = {}, []
    for name, (rate, norm) in VARIANTS.items():
        print(f"-- {name}")
        _, state, test, timer = train(ds, args.epochs, args.seed, rate, norm)
        histories[name] = state.history
        last = state.history[-1]
        best = max(r.val_accuracy for r in state.history)
        rows.append(
            (name, last.accuracy, last.val_accuracy, best, last.val_loss - last.loss,
             test.accuracy, timer.mean)
        )  # fmt: skip
    header = ("variant", "train acc", "val acc", "best val", "val-train loss", "test acc", "s/ep")
    print(_common.table(header, rows))
    for metric in ("loss", "accuracy"):
        _common.plot(
            partial(fnn.plots.compare, histories, args.out / f"compare_{metric}.png", metric=metric)
        )
    return {"histories": histories, "rows": rows}


if __name__ == "__main__":
    main()
