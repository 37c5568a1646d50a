"""Minor page faults per training step on the path a library user takes (issue 26).

Each row is a process of its own (the allocator's settings are the process's): synthetic
images (the workload's shapes, so no dataset is needed), the model built as a user
builds it (``nn.cnn()``: conv 32, pool, conv 64, pool, dense 128, dropout, dense 10,
"valid"; ``nn.mlp((128, 64, 10))`` on 784 inputs), Adam(1e-3), batches of 128, trained
through the library's routes:

* ``train_epoch``: ``fnn.train_step`` + ``fnn.train_epoch`` over ``fnn.data.batches``;
* ``fit``: ``fnn.fit`` (validation split 0.1, no callbacks).

and three settings of glibc's allocator:

* ``library``: what a user gets without knowing any knob (the step raises glibc's
  thresholds itself when it is made);
* ``keep_freed_memory``: the program also calls ``fnn.runtime.keep_freed_memory()``
  first, as ``fnn train`` does;
* ``glibc default``: the library's setting held off (the state of fnn before issue 26),
  to show what it saves.

After warm-up epochs (``--warmup``, 3: with shards on 2 threads, each thread's
allocator arena grows for a couple of epochs, as the shards land on either thread), it
reads ``resource.getrusage`` around the next epochs and prints,
per step: minor page faults, milliseconds and the kernel's (system) milliseconds; and
the resident memory between epochs (``VmRSS``) and the peak (``ru_maxrss``): what the
setting keeps. ``--threads 2`` trains the CNN as 2 shards on 2 threads (one BLAS
thread), the MLP with 2 BLAS threads.

Run: ``python examples/benchmarks/page_faults.py`` (about a minute on 2 cores);
``--threads 1,2``, ``--images 2560``, ``--epochs 2``, ``--warmup 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

SETTINGS = ("library", "keep_freed_memory", "glibc default")
ROUTES = ("train_epoch", "fit")
MODELS = ("cnn", "mlp")


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(
    model_name: str, route: str, setting: str, threads: int, images: int, epochs: int, warmup: int
) -> dict[str, Any]:
    """Train in this process and return the row (see the module docstring)."""
    import numpy as np

    import fnn
    from fnn import _malloc, data, losses, nn, optim

    if setting == "keep_freed_memory":
        fnn.runtime.keep_freed_memory()
    elif setting == "glibc default":
        _malloc._settled[:] = [True]  # the step then leaves glibc's thresholds alone
    shards = threads if model_name == "cnn" else 1
    fnn.runtime.set_blas_threads(1 if shards > 1 else threads)
    model: nn.Layer[Any, Any] = nn.cnn() if model_name == "cnn" else nn.mlp((128, 64, 10))
    shape = (28, 28) if model_name == "cnn" else (784,)
    key = fnn.random.key(0)
    # float32 draws straight away: freeing a large float64 array first would raise
    # glibc's dynamic mmap threshold and hide part of what the setting changes
    x = np.random.default_rng(0).random((images, *shape), np.float32)
    y = np.arange(images) % 10
    opt = optim.adam(1e-3)
    loss = losses.softmax_cross_entropy
    batch = 128
    if route == "fit":
        steps = -(-int(images * 0.9) // batch)

        def run(epoch_count: int, state: Any) -> Any:
            return fnn.fit(
                model, loss, opt, x, y, key=key, epochs=epoch_count, batch_size=batch,
                validation_split=0.1, shards=shards, threads=shards,
            )  # fmt: skip

        run(warmup, None)  # warm-up, the allocator's too
        before, rss0 = resource.getrusage(resource.RUSAGE_SELF), _rss_mb()
        began = time.perf_counter()
        run(epochs, None)
        count = steps * epochs
    else:
        steps = -(-images // batch)
        step = fnn.train_step(model, loss, opt, shards=shards, threads=shards)
        state = fnn.train_state(opt, model.init(key, shape), key)
        for epoch in range(warmup):
            batches = data.batches(fnn.random.fold_in(key, 1000 + epoch), x, y, batch)
            state = fnn.train_epoch(step, state, batches)
        before, rss0 = resource.getrusage(resource.RUSAGE_SELF), _rss_mb()
        began = time.perf_counter()
        for epoch in range(epochs):
            batches = data.batches(fnn.random.fold_in(key, epoch), x, y, batch)
            state = fnn.train_epoch(step, state, batches)
        count = steps * epochs
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "model": model_name,
        "route": route,
        "setting": setting,
        "threads": threads,
        "faults_per_step": (after.ru_minflt - before.ru_minflt) / count,
        "ms_per_step": 1e3 * seconds / count,
        "system_ms_per_step": 1e3 * (after.ru_stime - before.ru_stime) / count,
        "rss_mb": _rss_mb(),
        "rss_before_mb": rss0,
        "peak_mb": after.ru_maxrss / 1024,
    }


def _child(args: list[str]) -> dict[str, Any]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": args[3], "OMP_NUM_THREADS": args[3]}
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True, text=True, env=env, check=True, timeout=1800,
    )  # fmt: skip
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1", help="e.g. 1,2")
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3, help="epochs before measuring")
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        model, route, setting, *numbers = args.child
        threads, images, epochs, warmup = (int(n) for n in numbers)
        print(json.dumps(measure(model, route, setting, threads, images, epochs, warmup)))
        return 0
    try:
        counts = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads expects integers like 1,2, got {args.threads!r}")
    if min(counts) < 1 or min(args.images, args.epochs) < 1 or args.warmup < 0:
        parser.error("--threads, --images and --epochs must be >= 1 and --warmup >= 0")
    from train_speed import machine  # beside this file

    info = machine()
    print(f"CPU: {info['cpu']}; {info['cpus']} CPUs; load average {info['load_average'][0]:.2f}")
    print(
        f"{'model':5} {'route':11} {'allocator':17} {'thr':>3} {'faults/step':>11} "
        f"{'ms/step':>8} {'sys ms':>7} {'RSS MiB':>7} {'peak MiB':>8}"
    )
    for threads in counts:
        for model in MODELS:
            for route in ROUTES:
                for setting in SETTINGS:
                    numbers = (threads, args.images, args.epochs, args.warmup)
                    r = _child([model, route, setting, *map(str, numbers)])
                    print(
                        f"{model:5} {route:11} {setting:17} {threads:>3} "
                        f"{r['faults_per_step']:>11.1f} {r['ms_per_step']:>8.2f} "
                        f"{r['system_ms_per_step']:>7.2f} {r['rss_mb']:>7.0f} {r['peak_mb']:>8.0f}",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
