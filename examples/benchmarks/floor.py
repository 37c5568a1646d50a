"""The BLAS floor: the least time one epoch of the workload could take with NumPy's BLAS.

Measured in the benchmark's own run, at the workload's thread count:

* the float32 GEMM time of the step's matrix products, each timed alone at its exact
  shape and operand layout (the best of several timed loops): forward ``x @ W`` for
  each layer; backward ``dW = x.T @ dy`` for each layer and ``dx = dy @ W.T`` for every
  layer but the first (nobody needs the input's gradient);
* Adam's memory traffic, ``7 * 4 * n_params`` bytes a step (read params, grads and both
  moments; write params and both moments), over the copy bandwidth of ``np.copyto``
  (the bytes read plus the bytes written per second) between two float32 buffers the
  size of the parameter vector: the caches, where a step finds Adam's arrays (with this
  model they take 1.75 MB). The floor with the bandwidth of buffers far larger than the
  caches (main memory) is reported too, as ``floor_dram_epoch_seconds``: it is no floor
  at small batches (at batch 32, JAX's whole-epoch scan ran faster than it).

``floor = sum over the epoch's batches of (GEMM seconds of a step at that batch size +
Adam bytes / copy bandwidth)``. Everything else a step does (bias gradients, ReLU,
softmax, gathering the batch, Python) is above the floor.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any

import numpy as np
import workload as wl

DRAM_COPY_BYTES = 256 * 2**20
"""Size of each buffer of the main-memory copy bandwidth: well beyond the caches."""

ADAM_ARRAY_PASSES = 7
"""Adam's whole-array passes a step: reads params, grads, mu, nu; writes params, mu, nu."""


@dataclasses.dataclass(frozen=True)
class Matmul:
    """One matrix product of the step: ``(m, k) @ (k, n)``; ``form`` says which operand
    is a transposed view (``"a @ b"``, ``"a.T @ b"`` or ``"a @ b.T"``)."""

    name: str
    m: int
    k: int
    n: int
    form: str

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def step_matmuls(batch: int, sizes: tuple[int, ...]) -> list[Matmul]:
    """The matrix products of one training step of an MLP with layer widths ``sizes``.

    >>> [(p.name, p.m, p.k, p.n) for p in step_matmuls(32, (4, 3, 2))]
    [('layer 1 y = x @ W', 32, 4, 3), ('layer 2 y = x @ W', 32, 3, 2), \
('layer 2 dW = x.T @ dy', 3, 32, 2), ('layer 2 dx = dy @ W.T', 32, 2, 3), \
('layer 1 dW = x.T @ dy', 4, 32, 3)]
    """
    layers = list(enumerate(itertools.pairwise(sizes), start=1))
    products = [Matmul(f"layer {i} y = x @ W", batch, a, b, "a @ b") for i, (a, b) in layers]
    for i, (a, b) in reversed(layers):
        products.append(Matmul(f"layer {i} dW = x.T @ dy", a, batch, b, "a.T @ b"))
        if i > 1:
            products.append(Matmul(f"layer {i} dx = dy @ W.T", batch, b, a, "a @ b.T"))
    return products


def n_params(sizes: tuple[int, ...]) -> int:
    """Weights plus biases of the MLP: ``sum(a * b + b)``.

    >>> n_params((784, 128, 64, 10))
    109386
    """
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def adam_bytes(sizes: tuple[int, ...], itemsize: int = 4) -> int:
    """Adam's memory traffic of one step, in bytes."""
    return ADAM_ARRAY_PASSES * itemsize * n_params(sizes)


def epoch_batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(batch size, how many)`` pairs of one epoch over ``n`` examples (last batch kept).

    >>> epoch_batches(60000, 128), epoch_batches(60000, 32)
    ([(128, 468), (96, 1)], [(32, 1875)])
    """
    pairs = [(batch_size, n // batch_size)]
    if n % batch_size:
        pairs.append((n % batch_size, 1))
    return pairs


def epoch_floor(
    gemm_seconds: dict[int, float], batches: list[tuple[int, int]], adam_seconds: float
) -> float:
    """The floor of one epoch: ``sum(count * (gemm_seconds[size] + adam_seconds))``."""
    return sum(count * (gemm_seconds[size] + adam_seconds) for size, count in batches)


def _best_seconds(call: Any, min_seconds: float, trials: int) -> float:
    """The best over ``trials`` of the mean time of ``call()`` in a loop that lasts at
    least ``min_seconds``."""
    call()
    reps = 1
    while True:
        start = time.perf_counter()
        for _ in range(reps):
            call()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
        reps *= 2
    best = elapsed / reps
    for _ in range(trials - 1):
        start = time.perf_counter()
        for _ in range(reps):
            call()
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def time_matmul(
    p: Matmul, rng: np.random.Generator, min_seconds: float = 0.02, trials: int = 7
) -> float:
    """The best time of ``p`` with NumPy float32 ``matmul`` into a preallocated output."""

    def array(rows: int, cols: int) -> wl.F32:
        return rng.standard_normal((rows, cols), dtype=np.float32)

    if p.form == "a @ b":
        a, b = array(p.m, p.k), array(p.k, p.n)
    elif p.form == "a.T @ b":  # dW = x.T @ dy: x is (batch, in), C order
        a, b = array(p.k, p.m).T, array(p.k, p.n)
    elif p.form == "a @ b.T":  # dx = dy @ W.T: W is (in, out), C order
        a, b = array(p.m, p.k), array(p.n, p.k).T
    else:
        raise ValueError(f"unknown form {p.form!r}")
    out = np.empty((p.m, p.n), np.float32)
    return _best_seconds(lambda: np.matmul(a, b, out=out), min_seconds, trials)


def copy_bandwidth(nbytes: int, min_seconds: float = 0.05, trials: int = 5) -> float:
    """Bytes read plus bytes written per second by ``np.copyto`` of float32 buffers."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.zeros_like(src)
    return 2 * src.nbytes / _best_seconds(lambda: np.copyto(dst, src), min_seconds, trials)


def run(w: wl.Workload) -> dict[str, Any]:
    """Measure the floor of ``w`` (at the thread count the process was started with)."""
    rng = np.random.default_rng(w.seed)
    batches = epoch_batches(w.train_size, w.batch_size)
    gemm_seconds: dict[int, float] = {}
    products: list[dict[str, Any]] = []
    for size, _ in batches:
        total = 0.0
        for p in step_matmuls(size, w.sizes):
            seconds = time_matmul(p, rng)
            total += seconds
            products.append({**dataclasses.asdict(p), "flops": p.flops, "seconds": seconds})
        gemm_seconds[size] = total
    bandwidth = copy_bandwidth(4 * n_params(w.sizes))
    dram_bandwidth = copy_bandwidth(DRAM_COPY_BYTES)
    adam_seconds = adam_bytes(w.sizes) / bandwidth
    flops = sum(p.flops for p in step_matmuls(w.batch_size, w.sizes))
    steps = sum(count for _, count in batches)
    gemm_epoch = epoch_floor(gemm_seconds, batches, 0.0)
    return {
        "kind": "floor",
        "workload": w.to_json(),
        "flops_per_step": flops,
        "flops_per_epoch": sum(
            count * sum(p.flops for p in step_matmuls(size, w.sizes)) for size, count in batches
        ),
        "steps_per_epoch": steps,
        "gemm_seconds_per_step": gemm_seconds[w.batch_size],
        "gemm_flops_per_second": flops / gemm_seconds[w.batch_size],
        "gemm_epoch_seconds": gemm_epoch,
        "copy_bytes_per_second": bandwidth,
        "dram_copy_bytes_per_second": dram_bandwidth,
        "adam_bytes_per_step": adam_bytes(w.sizes),
        "adam_epoch_seconds": steps * adam_seconds,
        "floor_epoch_seconds": epoch_floor(gemm_seconds, batches, adam_seconds),
        "floor_dram_epoch_seconds": epoch_floor(
            gemm_seconds, batches, adam_bytes(w.sizes) / dram_bandwidth
        ),
        "products": products,
        "versions": {"numpy": np.__version__},
    }
