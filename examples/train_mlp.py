"""``fnn train``'s default run as a short script on the library API.

The 784-128-64-10 ReLU MLP (He-normal init), Adam with a learning rate cosine-decayed
from 2e-3 to 0 over the run, batches of 128, 20 epochs, 10% of the training set held
out for validation, seed 0. With the same data, seed and epochs it ends with exactly
the params of ``fnn train --dataset fashion-mnist`` (the same keys drive the same
init, split and shuffles).

Run: ``python examples/train_mlp.py`` (``--dataset mnist``, ``--epochs 3``, ...).
"""

from __future__ import annotations

from typing import Any

import _common

import fnn
from fnn import data, losses, nn, optim


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _common.parser(__doc__, epochs=20, out="train_mlp").parse_args(argv)
    ds = _common.setup(args)

    model = nn.mlp((128, 64, 10))  # flatten, dense 128, relu, dense 64, relu, dense 10
    n_fit = len(ds.x_train) - round(0.1 * len(ds.x_train))
    steps = args.epochs * data.num_batches(n_fit, 128)
    optimizer = optim.adam(optim.cosine_decay(2e-3, steps))
    timer = fnn.callbacks.EpochTimes()
    state = fnn.fit(
        model,
        losses.softmax_cross_entropy,
        optimizer,
        ds.x_train,
        ds.y_train,
        key=fnn.random.key(args.seed),
        epochs=args.epochs,
        batch_size=128,
        validation_split=0.1,
        callbacks=[fnn.callbacks.progress_bar(), timer],
    )
    test = fnn.evaluate(model, losses.softmax_cross_entropy, state.params, ds.x_test, ds.y_test)
    return {
        **_common.report(args, ds, model, state, test, timer),
        "params_sha256": fnn.tree.fingerprint(state.params),
    }


if __name__ == "__main__":
    main()
