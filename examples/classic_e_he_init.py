"""Classic (e): one hidden layer with He initialisation, curves and a confusion matrix.

Mirrors the from-scratch 784-128-10 network that introduces He initialisation
(weights ``N(0, 2 / fan_in)``) for its ReLU layer and trains by mini-batch SGD
(learning rate 0.1, batches of 64, reshuffled every epoch, 10% held out for
validation), then plots the loss and accuracy curves (``curves.png``) and prints and
plots the test set's confusion matrix (``confusion.png``).

Run: ``python examples/classic_e_he_init.py`` (``--epochs 3``, ``--dataset mnist``).
"""

from __future__ import annotations

from typing import Any

import _common

import fnn
from fnn import losses, nn, optim


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _common.parser(__doc__, epochs=10, out="classic_e").parse_args(argv)
    ds = _common.setup(args)

    model = nn.mlp((128, 10), "relu", weight_init="he_normal")
    timer = fnn.callbacks.EpochTimes()
    state = fnn.fit(
        model,
        losses.softmax_cross_entropy,
        optim.sgd(0.1),
        ds.x_train,
        ds.y_train,
        key=fnn.random.key(args.seed),
        epochs=args.epochs,
        batch_size=64,
        shuffle=True,  # a new order every epoch, derived from the key and the epoch
        validation_split=0.1,
        callbacks=[timer],
    )
    print(fnn.callbacks.history_table(state.history, timer.seconds))

    predicted = fnn.predict(model, state.params, ds.x_test)
    matrix = fnn.metrics.confusion_matrix(ds.y_test, predicted, 10)
    names = [name[:7] for name in ds.classes]
    rows = [(names[i], *matrix[i]) for i in range(10)]
    print("confusion matrix (rows: true class, columns: predicted)")
    print(_common.table(("", *names), rows))
    accuracy = fnn.metrics.accuracy(predicted, ds.y_test)
    print(f"test accuracy {accuracy:.4f}  ({timer.mean:.1f} s per epoch)")

    curves = _common.plot(lambda: fnn.plots.history(state.history, args.out / "curves.png"))
    confusion = _common.plot(
        lambda: fnn.plots.confusion_matrix(matrix, args.out / "confusion.png", ds.classes)
    )
    return {
        "test_accuracy": accuracy,
        "history": state.history,
        "epoch_seconds": timer.mean,
        "confusion_matrix": matrix,
        "plots": [curves, confusion],
    }


if __name__ == "__main__":
    main()
