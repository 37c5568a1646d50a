"""Classic (a): the L2-regularised MLP trained by plain SGD, saved and loaded again.

Mirrors the from-scratch NumPy MNIST classifier that many tutorials build: a
784-128-64-10 ReLU network with a softmax output, cross-entropy plus an L2 penalty
``(lambda / 2) * sum(w**2)`` on the weights (lambda 0.01, biases not penalised), plain
mini-batch SGD with learning rate 0.01 (batches of 32), 20% of the training set held
out for validation, then ``save``/``load`` of the model and ``predict`` /
``predict_proba`` on test images.

Run: ``python examples/classic_a_l2_sgd.py`` (``--dataset mnist``, ``--epochs 5``, ...).
"""

from __future__ import annotations

from typing import Any

import _common
import numpy as np

import fnn
from fnn import losses, nn, optim


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _common.parser(__doc__, epochs=20, out="classic_a").parse_args(argv)
    ds = _common.setup(args)

    model = nn.mlp((128, 64, 10))
    timer = fnn.callbacks.EpochTimes()
    state = fnn.fit(
        model,
        losses.softmax_cross_entropy,
        optim.sgd(0.01),
        ds.x_train,
        ds.y_train,
        key=fnn.random.key(args.seed),
        epochs=args.epochs,
        batch_size=32,
        validation_split=0.2,
        penalty=lambda p: losses.l2_penalty(p, 0.01),  # train loss: CE + L2; val_loss: CE
        callbacks=[fnn.callbacks.log_epochs(print), timer],
    )
    path = fnn.io.save_model(args.out / "model.npz", model, state.params, in_shape=(28, 28))
    loaded_model, loaded_params, _ = fnn.io.load_model(path)

    probs = fnn.predict_proba(model, state.params, ds.x_test)
    loaded_probs = fnn.predict_proba(loaded_model, loaded_params, ds.x_test)
    labels = fnn.predict(loaded_model, loaded_params, ds.x_test)
    identical = bool(np.array_equal(probs, loaded_probs))
    accuracy = fnn.metrics.accuracy(labels, ds.y_test)

    rows = [
        (i, ds.classes[ds.y_test[i]], ds.classes[labels[i]], float(probs[i].max()))
        for i in range(min(5, len(labels)))
    ]
    print(_common.table(("test image", "true", "predicted", "probability"), rows))
    print(f"wrote {path}; the loaded model's probabilities are identical: {identical}")
    print(f"test accuracy {accuracy:.4f}  ({timer.mean:.1f} s per epoch)")
    return {
        "test_accuracy": accuracy,
        "history": state.history,
        "epoch_seconds": timer.mean,
        "model": path,
        "identical_after_load": identical,
        "probabilities": loaded_probs,
    }


if __name__ == "__main__":
    main()
