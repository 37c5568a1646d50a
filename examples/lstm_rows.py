"""An LSTM that reads each image row by row: a sequence of 28 steps of 28 pixels.

``serial(lstm(128, return_sequences=False), dense(10))``: the LSTM's last hidden state
(after the bottom row) is all the classifier sees. PyTorch's initialization (uniform on
``[-1/sqrt(128), 1/sqrt(128))`` for every LSTM weight and bias), Adam with a learning
rate cosine-decayed from 2e-3 to 0 over the run, batches of 128, 20 epochs, 10% of the
training set held out for validation, seed 0. NumPy's matrix products here are small
(``(128, 128) @ (128, 512)`` per step), so the script asks OpenBLAS for one thread and
glibc to keep freed memory (:mod:`fnn.runtime`), as ``fnn train`` does.

Run: ``python examples/lstm_rows.py`` (``--dataset mnist``, ``--epochs 3``, ...).
"""

from __future__ import annotations

from typing import Any

import _common

import fnn
from fnn import data, losses, nn, optim


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__, epochs=20, out="lstm_rows")
    p.add_argument(
        "--features", type=_common.count(1), default=128, help="LSTM hidden units (default 128)"
    )
    p.add_argument("--batch-size", type=_common.count(1), default=128, help="default 128")
    args = p.parse_args(argv)
    ds = _common.setup(args)
    fnn.runtime.set_blas_threads(1)
    fnn.runtime.keep_freed_memory()

    model = nn.serial(nn.lstm(args.features, return_sequences=False), nn.dense(10))
    n_fit = len(ds.x_train) - round(0.1 * len(ds.x_train))
    steps = args.epochs * data.num_batches(n_fit, args.batch_size)
    timer = fnn.callbacks.EpochTimes()
    state = fnn.fit(
        model,
        losses.softmax_cross_entropy,
        optim.adam(optim.cosine_decay(2e-3, steps)),
        ds.x_train,  # (n, 28, 28): 28 steps (rows) of 28 features (pixels)
        ds.y_train,
        key=fnn.random.key(args.seed),
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=0.1,
        callbacks=[fnn.callbacks.progress_bar(), timer],
    )
    test = fnn.evaluate(model, losses.softmax_cross_entropy, state.params, ds.x_test, ds.y_test)
    return _common.report(args, ds, model, state, test, timer)


if __name__ == "__main__":
    main()
