"""Classic (b): the small 784-64-32-10 MLP of the early tutorials, ReLU against sigmoid.

Mirrors the from-scratch MNIST network with two small hidden layers, trained by plain
SGD (learning rate 0.01, batches of 100, 20 epochs) on the whole training set. The
classic versions used the logistic sigmoid; this script trains the same network once
per activation (ReLU with He-normal init, sigmoid with Glorot-uniform init, the same
seed), prints a table and plots both loss curves into ``losses.png``: a sigmoid
network learns far more slowly with plain SGD.

Run: ``python examples/classic_b_sigmoid.py`` (``--activation sigmoid`` for one run).
"""

from __future__ import annotations

from typing import Any

import _common

import fnn
from fnn import losses, nn, optim


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = _common.parser(__doc__, epochs=20, out="classic_b")
    parser.add_argument("--activation", choices=("relu", "sigmoid", "both"), default="both")
    args = parser.parse_args(argv)
    ds = _common.setup(args)

    results: dict[str, Any] = {}
    for activation in ("relu", "sigmoid") if args.activation == "both" else (args.activation,):
        model = nn.mlp((64, 32, 10), activation)
        timer = fnn.callbacks.EpochTimes()
        state = fnn.fit(
            model,
            losses.softmax_cross_entropy,
            optim.sgd(0.01),
            ds.x_train,
            ds.y_train,
            key=fnn.random.key(args.seed),
            epochs=args.epochs,
            batch_size=100,
            callbacks=[fnn.callbacks.log_epochs(print), timer],
        )
        test = fnn.evaluate(model, losses.softmax_cross_entropy, state.params, ds.x_test, ds.y_test)
        results[activation] = {
            "history": state.history,
            "test_accuracy": test.accuracy,
            "epoch_seconds": timer.mean,
        }
    rows = [
        (name, r["history"][0].loss, r["history"][-1].loss, r["test_accuracy"], r["epoch_seconds"])
        for name, r in results.items()
    ]
    header = ("activation", "first loss", "final loss", "test accuracy", "s/epoch")
    print(_common.table(header, rows))
    histories = {name: r["history"] for name, r in results.items()}
    path = args.out / "losses.png"
    _common.plot(lambda: fnn.plots.compare(histories, path, title="ReLU against sigmoid, SGD"))
    return results


if __name__ == "__main__":
    main()
