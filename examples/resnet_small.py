"""A small residual network: residual blocks with batch norm, then global average pooling.

The network: a stem (conv 32 3x3 "same", batch norm, ReLU, max-pool 2: 14x14x32); a
residual block at 32 channels (conv 3x3, batch norm, ReLU, conv 3x3, batch norm, plus the
input, then ReLU); a block that halves the size and doubles the channels (the first conv
with stride 2 and the shortcut a 1x1 conv with stride 2: 7x7x64); another block at 64
channels; global average pooling (64) and a dense layer to the 10 classes. Adam with a
learning rate cosine-decayed from 2e-3, batches of 128, 10% held out for validation.

Run: ``python examples/resnet_small.py`` (``--epochs 3``, ``--limit 5000``, ...).
"""

from __future__ import annotations

from typing import Any

import _common

import fnn
from fnn import data, losses, nn, optim


def block(channels: int, stride: int = 1, shortcut: bool = False) -> nn.Layer[Any, Any]:
    """conv, batch norm, ReLU, conv, batch norm, added to the input (or to a 1x1 conv of it
    when ``shortcut``), then ReLU."""
    body = nn.serial(
        nn.conv2d(channels, 3, stride, "same"),
        nn.batch_norm(),
        nn.relu(),
        nn.conv2d(channels, 3, 1, "same"),
        nn.batch_norm(),
    )
    side = nn.conv2d(channels, 1, stride) if shortcut else None
    return nn.serial(nn.residual(body, shortcut=side), nn.relu())


def resnet(classes: int = 10) -> nn.Layer[Any, Any]:
    """The network of the module docstring, for (28, 28) single-channel images."""
    return nn.serial(
        nn.reshape((28, 28, 1)),
        nn.conv2d(32, 3, 1, "same"),
        nn.batch_norm(),
        nn.max_pool(2),
        nn.relu(),
        block(32),
        block(64, stride=2, shortcut=True),
        block(64),
        nn.global_avg_pool(),
        nn.dense(classes),
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _common.parser(__doc__, epochs=8, out="resnet_small").parse_args(argv)
    ds = _common.setup(args)

    model = resnet(len(ds.classes))
    n_fit = len(ds.x_train) - round(0.1 * len(ds.x_train))
    steps = args.epochs * data.num_batches(n_fit, 128)
    timer = fnn.callbacks.EpochTimes()
    state = fnn.fit(
        model,
        losses.softmax_cross_entropy,
        optim.adam(optim.cosine_decay(2e-3, steps)),
        ds.x_train,
        ds.y_train,
        key=fnn.random.key(args.seed),
        epochs=args.epochs,
        batch_size=128,
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
    path = fnn.io.save_model(
        args.out / "model.npz",
        model,
        state.params,
        in_shape=(28, 28),
        model_state=state.model_state,
        metadata={"dataset": args.dataset, "classes": ds.classes},
    )
    print(fnn.callbacks.history_table(state.history, timer.seconds))
    print(f"test accuracy {test.accuracy:.4f}  test loss {test.loss:.4f}  wrote {path}")
    _common.plot(lambda: fnn.plots.history(state.history, args.out / "curves.png"))
    return {
        "test_accuracy": test.accuracy,
        "history": state.history,
        "epoch_seconds": timer.mean,
        "model": path,
        "params": fnn.tree.size(state.params),
    }


if __name__ == "__main__":
    main()
