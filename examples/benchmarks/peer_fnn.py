"""The fnn peer: the workload trained through fnn's public training API, as a user would.

``step = fnn.train_step(model, loss, optim.adam(lr))`` and one
``fnn.train_epoch(step, state, fnn.data.batches(key, x, y, batch_size))`` per epoch, so
whatever fnn's internals do at run time is what gets timed. The permutation of each
epoch is drawn inside ``fnn.data.batches``, so it is inside the timed epoch (every peer
times its own permutation). Threads are fixed by the process that starts this one.

The MLP is ``nn.mlp``; the CNN is built from ``fnn.nn``'s public layers (``nn.cnn()``
where fnn exports it, which builds the same network): ``reshape`` to ``(28, 28, 1)``,
``conv2d(32, 3)``, ``max_pool(2)``, ``relu``, ``conv2d(64, 3)``, ``max_pool(2)``,
``relu``, ``flatten``, ``dense(128)``, ``relu``, ``dropout(0.5)``, ``dense(10)``. ReLU and
2x2 max-pooling commute (values and gradients), so fnn pools first, the other peers
after the ReLU: the same function, fnn's ReLU runs on a quarter of the entries
(``nn.cnn`` also pools inside the convolution, ``conv2d(..., pool=2)``). The dropout
masks come from the training state's key, one per step.

At ``T > 1`` threads the CNN trains as ``fnn train --model cnn --shards T --threads T``
does: ``T`` shards of each batch on ``T`` threads (``fnn.train_step(..., shards=T,
threads=T)``), NumPy's OpenBLAS at one thread, so that every core runs the shards'
patch copies, pooling and elementwise work as well as their GEMMs; the shards' sum is
the same gradient, with the same keys per shard on any thread count (:func:`plan`). The
MLP keeps one shard and ``T`` BLAS threads (its millisecond step loses more to thread
handoffs than it gains).

With ``shards > 1`` each step splits its batch into that many shards
(``fnn.train_step(..., shards=S, comm=fnn.parallel.world())``): started by ``mpirun -n N``
(``parallel_speed.py``), the N processes compute ``S / N`` shards each and process 0
writes the record.

The peer calls no :mod:`fnn.runtime` function: it times what a script that imports fnn
gets. The step itself has glibc keep freed memory (no page faults on a CNN step's
temporaries) and, while shards run on threads, OpenBLAS use one thread.
"""

from __future__ import annotations

from typing import Any

import workload as wl


def _has_cnn() -> bool:
    """Whether fnn exports ``nn.cnn`` (it builds the CNN workload's network)."""
    from fnn import nn

    return hasattr(nn, "cnn")


def build_model(w: wl.Workload) -> tuple[Any, tuple[int, ...]]:
    """The fnn model of ``w`` and the shape of one input example."""
    from fnn import nn

    if w.model == "mlp":
        return nn.mlp(w.sizes[1:]), (w.sizes[0],)  # flatten, dense, relu, ..., dense(10)
    if _has_cnn() and (w.channels, w.dense_size, w.dropout) == ((32, 64), 128, 0.5):
        cnn: Any = getattr(nn, "cnn", None)
        return cnn(), wl.IMAGE_SHAPE
    layers: list[Any] = [nn.reshape((*wl.IMAGE_SHAPE, 1))]
    for features in w.channels:
        layers += [nn.conv2d(features, 3, pool=2), nn.relu()]
    layers += [nn.flatten(), nn.dense(w.dense_size), nn.relu()]
    layers += [nn.dropout(w.dropout)] if w.dropout else []
    layers.append(nn.dense(10))
    return nn.serial(*layers), wl.IMAGE_SHAPE


def plan(w: wl.Workload, shards: int, processes: int) -> tuple[int, int]:
    """``(shards, threads)`` of the step: the CNN on one process with ``T > 1`` threads
    trains ``T`` shards of each batch on ``T`` threads, one BLAS thread each (the shards'
    whole-array work runs on every core, not only the matrix products); otherwise
    ``shards`` on one thread, with ``T`` BLAS threads."""
    if w.model == "cnn" and w.threads > 1 and shards == 1 and processes == 1:
        return w.threads, w.threads
    return shards, 1


def run(w: wl.Workload, shards: int = 1) -> dict[str, Any] | None:
    """Train and time ``w``; the record (None on MPI processes other than the first)."""
    import fnn
    from fnn import data, losses, optim

    comm = fnn.parallel.world()
    rank, processes = fnn.parallel.rank_and_size(comm)
    shards, threads = plan(w, shards, processes)  # no fnn.runtime call: the user's path
    d = wl.load_data(w.model, w.train_size)
    model, in_shape = build_model(w)
    k_init, k_data = fnn.random.split(fnn.random.key(w.seed))
    params = model.init(k_init, in_shape)  # He-normal weights, zero biases
    opt = optim.adam(w.lr)
    step = fnn.train_step(
        model, losses.softmax_cross_entropy, opt, shards=shards, comm=comm, threads=threads
    )
    state = fnn.train_state(opt, params, k_data)

    rss = wl.rss_bytes()
    clock = wl.EpochClock()
    for epoch in range(w.epochs):
        with clock:
            batches = data.batches(
                fnn.random.fold_in(k_data, epoch), d.x_train, d.y_train, w.batch_size
            )
            state = fnn.train_epoch(step, state, batches)

    final = state.params
    logits = wl.in_chunks(lambda x: model.apply(final, x), d.x_test, w.eval_chunk)
    built = "nn.mlp" if w.model == "mlp" else ("nn.cnn" if _has_cnn() else "nn.serial")
    versions = {"fnn": fnn.__version__}
    if rank:
        return None
    return wl.result(
        "fnn", w, clock, logits, d.y_test, versions, rss, built_with=built, shards=shards,
        processes=processes, shard_threads=threads,
    )  # fmt: skip
