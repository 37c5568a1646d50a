"""The fnn peer: the workload trained through fnn's public training API, as a user would.

``step = fnn.train_step(model, loss, optim.adam(lr))`` and one
``fnn.train_epoch(step, state, fnn.data.batches(key, x, y, batch_size))`` per epoch, so
whatever fnn's internals do at run time is what gets timed. The permutation of each
epoch is drawn inside ``fnn.data.batches``, so it is inside the timed epoch (every peer
times its own permutation). Threads are fixed by the process that starts this one.
"""

from __future__ import annotations

from typing import Any

import workload as wl


def run(w: wl.Workload) -> dict[str, Any]:
    import fnn
    from fnn import data, losses, nn, optim

    d = wl.load_data()
    model = nn.mlp(w.sizes[1:])  # flatten, dense(128), relu, dense(64), relu, dense(10)
    k_init, k_data = fnn.random.split(fnn.random.key(w.seed))
    params = model.init(k_init, (w.sizes[0],))  # He-normal weights, zero biases
    opt = optim.adam(w.lr)
    step = fnn.train_step(model, losses.softmax_cross_entropy, opt)
    state = fnn.train_state(opt, params, k_data)

    rss = wl.rss_bytes()
    clock = wl.EpochClock()
    for epoch in range(w.epochs):
        with clock:
            batches = data.batches(
                fnn.random.fold_in(k_data, epoch), d.x_train, d.y_train, w.batch_size
            )
            state = fnn.train_epoch(step, state, batches)

    logits = model.apply(state.params, d.x_test)
    return wl.result("fnn", w, clock, logits, d.y_test, {"fnn": fnn.__version__}, rss)
