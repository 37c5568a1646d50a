"""Where one training step of the CNN workload spends its time: GEMMs against the rest.

The step is ``fnn.train_step`` of ``nn.cnn()`` with Adam(1e-3) on a batch of 128 random
``(28, 28)`` images (the values do not change the work), timed as the best of several
passes over 20 batches. The GEMMs are found in the step itself: one training forward
gives each ``conv2d``'s patch matrices (one per chunk of the batch, in the layout the
layer uses) and each ``dense`` layer's input; every matrix product of the step is then
timed alone on arrays of exactly those shapes and layouts (best of several loops):

* ``conv2d``: ``patches @ kernels`` (forward), ``patches.T @ dz`` (the kernels' and
  biases' gradient) and, for every conv layer but the first, ``dz`` times each kernel
  offset's ``w[p, q].T`` (the input gradient; one stacked ``np.matmul``);
* ``dense``: ``x @ w``, ``x.T @ dy`` and, but for the first, ``dy @ w.T``.

``rest = step - GEMMs``: patch copies, pooling, ReLU, dropout, the loss, Adam, Python.
The GEMMs' GFLOP/s is ``2 m k n`` summed over them over their time. Each thread count
runs in a process of its own with its BLAS threads fixed before NumPy loads.

Run: ``python examples/benchmarks/cnn_split.py`` (``--threads 1,2``, ``--json PATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BATCH = 128


def best_seconds(run: Callable[[], object], loops: int = 5, repeat: int = 7) -> float:
    """The least mean time of ``run`` over ``repeat`` timed loops of ``loops`` calls."""
    run()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(loops):
            run()
        best = min(best, (time.perf_counter() - start) / loops)
    return best


def step_gemms(model: Any, params: Any, x: Any, key: Any) -> list[tuple[str, Any, Any]]:
    """``(name, a, b)`` for every matrix product ``a @ b`` of one training step, on fresh
    arrays of the step's exact shapes and layouts (``b`` may be a stack of matrices)."""
    import numpy as np

    _, _, residuals = model.forward(params, x, None, key)
    rng = np.random.default_rng(0)
    gemms: list[tuple[str, Any, Any]] = []
    first = True
    assert model.spec is not None  # nn.cnn is made of registered layers
    for i, (spec, p, r) in enumerate(zip(model.spec["layers"], params, residuals)):
        name = f"{spec['layer']}[{i}]"
        if spec["layer"] == "conv2d":
            kernels = np.concatenate([p.w.reshape(-1, p.w.shape[3]), p.b[None]])
            kh, kw, c, f = p.w.shape
            stack = p.w.reshape(kh * kw, c, f).transpose(0, 2, 1)
            for cols in r[0]:  # the patches of each chunk, as the layer keeps them
                dz = rng.standard_normal((len(cols), f), dtype=np.float32)
                gemms += [(f"{name} forward", cols, kernels), (f"{name} dw", cols.T, dz)]
                if not first:
                    gemms.append((f"{name} dx", dz, stack))
            first = False
        elif spec["layer"] == "dense":
            inputs = r
            dy = rng.standard_normal((len(inputs), p.w.shape[1]), dtype=np.float32)
            gemms += [(f"{name} forward", inputs, p.w), (f"{name} dw", inputs.T, dy)]
            if not first:
                gemms.append((f"{name} dx", dy, p.w.T))
            first = False
    return gemms


def flops(a: Any, b: Any) -> int:
    """``2 m k n`` for ``a (m, k) @ b (k, n)``, times the stack of ``b``."""
    stack = int(b.shape[0]) if b.ndim == 3 else 1
    return 2 * int(a.shape[0]) * int(a.shape[1]) * int(b.shape[-1]) * stack


def measure(threads: int) -> dict[str, Any]:
    """Time the step and its GEMMs in this process (BLAS threads already fixed)."""
    import numpy as np

    import fnn
    from fnn import losses, nn, optim

    model = nn.cnn()  # no fnn.runtime call: train_step keeps freed memory itself
    key = fnn.random.key(0)
    params = model.init(key, (28, 28))
    images = fnn.random.uniform(key, (20 * BATCH, 28, 28))
    labels = fnn.random.permutation(key, 20 * BATCH) % 10
    batches = [(images[i : i + BATCH], labels[i : i + BATCH]) for i in range(0, len(images), BATCH)]
    opt = optim.adam(1e-3)
    step = fnn.train_step(model, losses.softmax_cross_entropy, opt)
    start_state = fnn.train_state(opt, params, key)

    def epoch() -> None:
        fnn.train_epoch(step, start_state, batches)

    step_seconds = best_seconds(epoch, loops=1, repeat=5) / len(batches)
    rows: list[dict[str, Any]] = []
    for name, a, b in step_gemms(model, params, images[:BATCH], key):
        seconds = best_seconds(partial(np.matmul, a, b))
        rows.append({"gemm": name, "shape": [*a.shape, *b.shape], "seconds": seconds,
                     "flops": flops(a, b)})  # fmt: skip
    gemm_seconds = float(sum(row["seconds"] for row in rows))
    total_flops = int(sum(row["flops"] for row in rows))
    return {
        "threads": threads,
        "step_seconds": step_seconds,
        "gemm_seconds": gemm_seconds,
        "rest_seconds": step_seconds - gemm_seconds,
        "gemm_gflops": total_flops / gemm_seconds / 1e9,
        "gemm_flops": total_flops,
        "gemms": rows,
    }


def summary(by_name: dict[str, list[float]], record: dict[str, Any]) -> str:
    """The printed report of one thread count."""
    lines = [
        f"{record['threads']} thread(s): step {record['step_seconds'] * 1e3:.1f} ms = GEMMs "
        f"{record['gemm_seconds'] * 1e3:.1f} ms "
        f"({record['gemm_seconds'] / record['step_seconds']:.0%}, "
        f"{record['gemm_flops'] / 1e9:.2f} GFLOP at {record['gemm_gflops']:.0f} GFLOP/s) "
        f"+ the rest {record['rest_seconds'] * 1e3:.1f} ms"
    ]
    for name, (seconds, count, work) in by_name.items():
        lines.append(
            f"  {name:<20} {count:>3} GEMMs  {seconds * 1e3:6.2f} ms  "
            f"{work / seconds / 1e9:5.0f} GFLOP/s"
        )
    return "\n".join(lines)


def grouped(record: dict[str, Any]) -> dict[str, list[float]]:
    """Seconds, count and flops per GEMM name (chunks of one layer together)."""
    out: dict[str, list[float]] = {}
    for row in record["gemms"]:
        entry = out.setdefault(row["gemm"], [0.0, 0, 0])
        entry[0] += row["seconds"]
        entry[1] += 1
        entry[2] += row["flops"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    parser.add_argument("--json", type=Path, help="write the records here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child)))
        return 0
    try:
        counts = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads expects integers like 1,2, got {args.threads!r}")
    if min(counts) < 1:
        parser.error(f"--threads expects counts >= 1, got {args.threads!r}")
    sys.path.insert(0, str(HERE))
    import run_peer

    records = []
    for threads in counts:
        env = {**os.environ, **run_peer.thread_env(threads)}
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(threads)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        record = json.loads(done.stdout)
        records.append(record)
        print(summary(grouped(record), record))
    if args.json:
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
