"""Classic (d): the optimizer comparison, four update rules on one task.

Mirrors the from-scratch projects that implement SGD with momentum and learning-rate
decay, Adagrad, RMSprop and Adam, then train one network with each: here the
784-128-64-10 ReLU MLP, batches of 128, 10% held out for validation, the same seed
(the same initial params, split and shuffles) for every optimizer. It prints a table
(final train loss, validation and test accuracy, seconds) and plots the loss curves
of every optimizer into ``optimizers.png`` (when matplotlib is installed).

Run: ``python examples/classic_d_optimizers.py`` (``--epochs 3``, ``--dataset mnist``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import _common

import fnn
from fnn import losses, nn, optim

OPTIMIZERS: dict[str, Callable[[], optim.Optimizer[Any]]] = {
    "sgd+momentum+decay": lambda: optim.sgd(optim.inverse_time_decay(0.05, 1e-3), momentum=0.9),
    "adagrad": lambda: optim.adagrad(0.01),
    "rmsprop": lambda: optim.rmsprop(1e-3, rho=0.9),
    "adam": lambda: optim.adam(1e-3),
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _common.parser(__doc__, epochs=10, out="classic_d").parse_args(argv)
    ds = _common.setup(args)
    model = nn.mlp((128, 64, 10))

    rows, histories = [], {}
    for name, make in OPTIMIZERS.items():
        began = time.perf_counter()
        state = fnn.fit(
            model,
            losses.softmax_cross_entropy,
            make(),
            ds.x_train,
            ds.y_train,
            key=fnn.random.key(args.seed),
            epochs=args.epochs,
            batch_size=128,
            validation_split=0.1,
            callbacks=[fnn.callbacks.log_epochs(functools.partial(print, f"{name}:"))],
        )
        seconds = time.perf_counter() - began
        test = fnn.evaluate(model, losses.softmax_cross_entropy, state.params, ds.x_test, ds.y_test)
        last = state.history[-1]
        rows.append((name, last.loss, last.val_accuracy, test.accuracy, f"{seconds:.1f}"))
        histories[name] = state.history
    header = ("optimizer", "train loss", "val accuracy", "test accuracy", "seconds")
    print(_common.table(header, rows))
    path = args.out / "optimizers.png"
    plot = _common.plot(lambda: fnn.plots.compare(histories, path, title="loss by optimizer"))
    return {"rows": rows, "histories": histories, "plot": plot}


if __name__ == "__main__":
    main()
