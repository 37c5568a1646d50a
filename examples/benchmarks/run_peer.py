"""Run one peer of the benchmark (or the floor) in this process; write its record as JSON.

``train_speed.py`` starts one process per peer and round, so every peer starts cold with
its thread count fixed before NumPy, PyTorch or JAX is imported. By hand::

    python examples/benchmarks/run_peer.py fnn --threads 1 --batch-size 128 --out fnn.json
    python examples/benchmarks/run_peer.py torch-cl --model cnn --train-size 1280 --out t.json

The thread count is set through the environment (OpenMP, OpenBLAS, MKL, XLA) and, with
``--cpus``, by pinning the process to those CPUs (XLA sizes its thread pool from the CPU
affinity mask, not from its flags); PyTorch also gets ``torch.set_num_threads``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

PEERS = ("fnn", "torch", "torch-cl", "jax", "jax-scan", "numpy")
"""The peers, by the name the command line uses (``numpy`` is the reference loop of
``peer_numpy.py``, not a target; ``torch-cl`` is PyTorch with ``channels_last``)."""

PEER_MODULES = {
    "fnn": "fnn",
    "torch": "torch",
    "torch-cl": "torch",
    "jax": "jax",
    "jax-scan": "jax",
    "numpy": "numpy",
}
"""The module each peer needs beyond NumPy: a peer whose module is missing is skipped."""

MODEL_PEERS = {
    "mlp": ("fnn", "torch", "jax", "jax-scan", "numpy"),
    "cnn": ("fnn", "torch", "torch-cl", "jax"),
}
"""The peers of each workload, the default of ``--peers``: ``torch-cl`` (a memory format of
images) runs only the CNN; the NumPy reference loop and the floor only the MLP; and
``jax-scan`` only the MLP: XLA's CPU backend runs the CNN's convolutions inside a
``lax.scan`` about 15x slower than in a jitted step (20 s against 1.3 s for 10 steps of
128 images, one thread, jax 0.10.2), which would measure that, not JAX at its best."""


def cpu_model() -> str:
    """The CPU's model name as ``fnn train`` records it in run.json (:func:`fnn.cli.cpu_model`:
    Linux's ``/proc/cpuinfo``, else what ``platform`` knows), or ``"unknown CPU"``: what every
    benchmark prints beside its figures. fnn is imported here, not by the peers that do not
    call this."""
    from fnn.cli import cpu_model as recorded

    return recorded() or "unknown CPU"


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that fix the thread count of every library the peers use."""
    n = str(threads)
    multi = "true" if threads > 1 else "false"
    return {
        "OMP_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "VECLIB_MAXIMUM_THREADS": n,
        "NUMEXPR_NUM_THREADS": n,
        "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={multi} intra_op_parallelism_threads={n}",
        "JAX_PLATFORMS": "cpu",
    }


def _blas_info() -> list[dict[str, Any]]:
    """threadpoolctl's view of the loaded BLAS/OpenMP pools, if threadpoolctl is installed."""
    try:
        import importlib

        threadpoolctl: Any = importlib.import_module("threadpoolctl")
    except ImportError:
        return []
    info: list[dict[str, Any]] = threadpoolctl.threadpool_info()
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=(*PEERS, "floor"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--train-size", type=int, help="training images (default: the model's)")
    parser.add_argument("--cpus", default="", help="pin to these CPUs, e.g. 0 or 0,1")
    parser.add_argument("--shards", type=int, default=1, help="fnn only: shards per batch")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON")
    args = parser.parse_args(argv)
    runs = (*MODEL_PEERS[args.model], *(("floor",) if args.model == "mlp" else ()))
    if args.peer not in runs:
        parser.error(f"{args.peer} does not run the {args.model} workload")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(thread_env(args.threads))  # before NumPy, PyTorch or JAX is imported
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})

    import workload as wl

    w = wl.Workload(
        batch_size=args.batch_size,
        epochs=args.epochs,
        threads=args.threads,
        seed=args.seed,
        model=args.model,
        train_size=wl.DEFAULT_TRAIN_SIZES[args.model]
        if args.train_size is None
        else args.train_size,
    )
    record: dict[str, Any] | None
    if args.shards != 1 and args.peer != "fnn":
        raise SystemExit("--shards applies to the fnn peer")
    if args.peer == "floor":
        import floor

        record = floor.run(w)
    elif args.peer == "fnn":
        import peer_fnn

        record = peer_fnn.run(w, args.shards)
        if record is None:  # an MPI process other than the first: it writes nothing
            return 0
    elif args.peer in ("torch", "torch-cl"):
        import peer_torch

        record = peer_torch.run(w, channels_last=args.peer == "torch-cl")
    elif args.peer == "numpy":
        import peer_numpy

        record = peer_numpy.run(w)
    else:
        import peer_jax

        record = peer_jax.run(w, scan=args.peer == "jax-scan")
    record["peer"] = args.peer
    record["cpus"] = sorted(os.sched_getaffinity(0))
    record["blas"] = _blas_info()
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
