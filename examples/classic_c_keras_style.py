"""Classic (c): the Keras tutorial's ``Sequential`` model, written with fnn.

Mirrors the first Keras MNIST tutorial::

    model = Sequential([Flatten(), Dense(128, "relu"), Dense(128, "relu"), Dense(10)])
    model.compile("adam", SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    model.summary(); model.fit(x_train, y_train, epochs=3); model.evaluate(x_test, y_test)

with Keras's choices: Glorot-uniform weights, Adam (learning rate 1e-3, epsilon
1e-7), batches of 32, 3 epochs, a progress bar per epoch, then the model saved.

Run: ``python examples/classic_c_keras_style.py`` (``--dataset mnist``, ...).
"""

from __future__ import annotations

from typing import Any

import _common

import fnn
from fnn import losses, nn, optim


def summary(layers: list[nn.Layer[Any, Any]], params: tuple[Any, ...], in_shape: Any) -> str:
    """Keras's ``model.summary()``: each layer's output shape and parameter count."""
    rows, shape = [], in_shape
    for layer, p in zip(layers, params):
        shape = layer.output_shape(shape)
        name = layer.spec["layer"] if layer.spec else "?"
        rows.append((name, str((None, *shape)), fnn.tree.size(p)))
    rows.append(("total", "", fnn.tree.size(params)))
    return _common.table(("layer", "output shape", "params"), rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _common.parser(__doc__, epochs=3, out="classic_c").parse_args(argv)
    ds = _common.setup(args)
    k_init, k_fit = fnn.random.split(fnn.random.key(args.seed))

    layers: list[nn.Layer[Any, Any]] = [
        nn.flatten(),
        nn.dense(128, weight_init="glorot_uniform"),
        nn.relu(),
        nn.dense(128, weight_init="glorot_uniform"),
        nn.relu(),
        nn.dense(10, weight_init="glorot_uniform"),
    ]
    model = nn.serial(*layers)
    params = model.init(k_init, (28, 28))
    print(summary(layers, params, (28, 28)))

    timer = fnn.callbacks.EpochTimes()
    state = fnn.fit(
        model,
        losses.softmax_cross_entropy,  # on logits, as from_logits=True
        optim.adam(1e-3, eps=1e-7),
        ds.x_train,
        ds.y_train,
        key=k_fit,
        params=params,
        epochs=args.epochs,
        batch_size=32,
        callbacks=[fnn.callbacks.progress_bar(), timer],
    )
    test = fnn.evaluate(model, losses.softmax_cross_entropy, state.params, ds.x_test, ds.y_test)
    path = fnn.io.save_model(args.out / "model.npz", model, state.params, in_shape=(28, 28))
    print(fnn.callbacks.history_table(state.history, timer.seconds))
    print(f"test loss {test.loss:.4f}  test accuracy {test.accuracy:.4f}  wrote {path}")
    return {
        "test_accuracy": test.accuracy,
        "history": state.history,
        "epoch_seconds": timer.mean,
        "parameters": fnn.tree.size(params),
        "model": path,
    }


if __name__ == "__main__":
    main()
